//! Typed configuration. Every setting is a command-line flag and an environment variable
//! (clap's `env`), so containers use the environment and developers use flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines for a terminal.
    Text,
    /// One JSON object per line for log collectors.
    Json,
}

/// Settings shared by every sub-command.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// PostgreSQL connection URL. When unset, Rapport runs a private cluster in the data folder.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Address the HTTP server listens on.
    #[arg(
        long,
        env = "RAPPORT_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: SocketAddr,

    /// Folder for the embedded PostgreSQL cluster and the generated JWT secret.
    #[arg(long, env = "RAPPORT_DATA_DIR", default_value = "data", global = true)]
    pub data_dir: PathBuf,

    /// HMAC secret for access tokens (at least 32 bytes). Generated and kept in the data folder when unset.
    #[arg(
        long,
        env = "RAPPORT_JWT_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub jwt_secret: Option<String>,

    /// Lifetime of access tokens (e.g. `900`, `15m`, `1h`).
    #[arg(long, env = "RAPPORT_ACCESS_TOKEN_TTL", default_value = "15m", value_parser = parse_duration, global = true)]
    pub access_token_ttl: Duration,

    /// Lifetime of member tokens (`POST /member-tokens`), which a customer's app uses on `/me`.
    #[arg(long, env = "RAPPORT_MEMBER_TOKEN_TTL", default_value = "1h", value_parser = parse_duration, global = true)]
    pub member_token_ttl: Duration,

    /// Lifetime of refresh tokens (e.g. `30d`).
    #[arg(long, env = "RAPPORT_REFRESH_TOKEN_TTL", default_value = "30d", value_parser = parse_duration, global = true)]
    pub refresh_token_ttl: Duration,

    /// E-mail of an admin created at start-up when no user exists yet.
    #[arg(long, env = "RAPPORT_BOOTSTRAP_ADMIN_EMAIL", global = true)]
    pub bootstrap_admin_email: Option<String>,

    /// Password of the bootstrap admin.
    #[arg(
        long,
        env = "RAPPORT_BOOTSTRAP_ADMIN_PASSWORD",
        global = true,
        hide_env_values = true
    )]
    pub bootstrap_admin_password: Option<String>,

    /// Origins allowed by CORS, comma-separated (e.g. `https://console.example.com`). Empty: none.
    #[arg(
        long,
        env = "RAPPORT_CORS_ORIGINS",
        value_delimiter = ',',
        global = true
    )]
    pub cors_origins: Vec<String>,

    /// Log format.
    #[arg(
        long,
        env = "RAPPORT_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,

    /// Database connections for requests, shared out among the HTTP workers (each gets its own
    /// pool of at least 2); start-up, probes, housekeeping and the background jobs and the webhook worker use 7 more, and reads by id share
    /// one more. Fewer is faster while queries are short (measured in docs/performance.md);
    /// raise it for long requests (exports) or a larger database server.
    #[arg(long, env = "RAPPORT_DB_POOL_SIZE", default_value_t = 8, global = true)]
    pub db_pool_size: usize,

    /// How long a request waits for a free database connection before it gets `503`.
    #[arg(long, env = "RAPPORT_DB_POOL_TIMEOUT", default_value = "5s", value_parser = parse_duration, global = true)]
    pub db_pool_timeout: Duration,

    /// `statement_timeout` set on every database connection.
    #[arg(long, env = "RAPPORT_DB_STATEMENT_TIMEOUT", default_value = "30s", value_parser = parse_duration, global = true)]
    pub db_statement_timeout: Duration,

    /// Requests a principal (or an unauthenticated IP) may make per minute, sustained. 0 disables limiting.
    #[arg(
        long,
        env = "RAPPORT_RATE_LIMIT_PER_MINUTE",
        default_value_t = 1200,
        global = true
    )]
    pub rate_limit_per_minute: u32,

    /// Requests a principal may make in a burst above the sustained rate.
    #[arg(
        long,
        env = "RAPPORT_RATE_LIMIT_BURST",
        default_value_t = 120,
        global = true
    )]
    pub rate_limit_burst: u32,

    /// Login attempts allowed per e-mail address per minute (against password guessing).
    #[arg(
        long,
        env = "RAPPORT_LOGIN_ATTEMPTS_PER_MINUTE",
        default_value_t = 10,
        global = true
    )]
    pub login_attempts_per_minute: u32,

    /// Largest request body accepted, in bytes (batch endpoints allow eight times more).
    #[arg(long, env = "RAPPORT_MAX_BODY_BYTES", default_value_t = 1024 * 1024, global = true)]
    pub max_body_bytes: usize,

    /// HTTP worker threads (default: one per CPU core, less one when the database is on this
    /// machine).
    #[arg(long, env = "RAPPORT_WORKERS", global = true)]
    pub workers: Option<usize>,

    /// How long after its scheduled end a planned or confirmed visit without a check-in is
    /// marked `missed`.
    #[arg(long, env = "RAPPORT_VISIT_GRACE", default_value = "2h", value_parser = parse_duration, global = true)]
    pub visit_grace: Duration,

    /// How far ahead the occurrences of recurring visit plans are kept planned.
    #[arg(long, env = "RAPPORT_VISIT_HORIZON_DAYS", default_value_t = 90, value_parser = clap::value_parser!(u16).range(1..=366), global = true)]
    pub visit_horizon_days: u16,

    /// The waits before each retry of a webhook delivery, comma-separated (jittered by up to
    /// a tenth either way); the delivery fails after the last.
    #[arg(
        long,
        env = "RAPPORT_WEBHOOK_RETRY_SCHEDULE",
        default_value = "5s,5m,30m,2h,5h,10h,10h,10h",
        value_delimiter = ',',
        value_parser = parse_duration,
        global = true
    )]
    pub webhook_retry_schedule: Vec<Duration>,

    /// A webhook endpoint that has failed for this long without a success is disabled.
    #[arg(long, env = "RAPPORT_WEBHOOK_DISABLE_AFTER", default_value = "5d", value_parser = parse_duration, global = true)]
    pub webhook_disable_after: Duration,

    /// Allow webhook URLs on loopback, private, link-local and other special-purpose addresses
    /// (development and private networks only).
    #[arg(
        long,
        env = "RAPPORT_WEBHOOK_ALLOW_PRIVATE",
        default_value_t = false,
        action = clap::ArgAction::Set,
        global = true
    )]
    pub webhook_allow_private: bool,

    /// Connect and total timeout of one webhook delivery attempt.
    #[arg(long, env = "RAPPORT_WEBHOOK_TIMEOUT", default_value = "15s", value_parser = parse_duration, global = true)]
    pub webhook_timeout: Duration,

    /// Webhook delivery attempts in flight at once, per instance.
    #[arg(
        long,
        env = "RAPPORT_WEBHOOK_CONCURRENCY",
        default_value_t = 64,
        global = true
    )]
    pub webhook_concurrency: usize,

    /// Whether `serve` runs the background jobs and webhook delivery (`on`, so that one
    /// process is the whole product); `off` leaves them to `rapport worker` processes beside
    /// the API instances. Accepts on/off, true/false, yes/no, 1/0.
    #[arg(
        long,
        env = "RAPPORT_JOBS",
        default_value = "on",
        value_parser = clap::builder::BoolishValueParser::new(),
        action = clap::ArgAction::Set,
        global = true
    )]
    pub jobs: bool,
}

impl Settings {
    /// Settings as the command line would give them, for tests and tools.
    pub fn from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            settings: Settings,
        }
        let argv = std::iter::once(std::ffi::OsString::from("rapport"))
            .chain(args.into_iter().map(Into::into));
        <Wrapper as clap::Parser>::try_parse_from(argv).map(|w| w.settings)
    }
}

/// Parses `250ms`, `90`, `90s`, `15m`, `12h` or `30d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 90s, 15m, 12h or 30d"))?;
    let seconds = match unit {
        "ms" => return Ok(Duration::from_millis(value)),
        "" | "s" => value,
        "m" => value * 60,
        "h" => value * 3600,
        "d" => value * 86_400,
        _ => {
            return Err(format!(
                "unknown unit `{unit}` in `{text}`: use ms, s, m, h or d"
            ));
        }
    };
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("900").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("15 minutes").is_err());
        assert!(parse_duration("m").is_err());
    }

    #[test]
    fn defaults_match_the_readme() {
        let s = Settings::from_args(["--jwt-secret", "x"]).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.access_token_ttl, Duration::from_secs(900));
        assert_eq!(s.refresh_token_ttl, Duration::from_secs(30 * 86_400));
        assert_eq!(s.max_body_bytes, 1 << 20);
        assert_eq!(s.webhook_retry_schedule.len(), 8);
        let total: Duration = s.webhook_retry_schedule.iter().sum();
        assert!(
            total > Duration::from_secs(24 * 3600),
            "retries span more than a day"
        );
        assert_eq!(s.webhook_disable_after, Duration::from_secs(5 * 86_400));
        assert!(!s.webhook_allow_private);
        assert!(s.jobs, "one process is the whole product by default");
    }

    #[test]
    fn jobs_switch_off_in_the_words_operators_use() {
        for off in ["off", "false", "no", "0"] {
            let s = Settings::from_args(["--jwt-secret", "x", "--jobs", off]).unwrap();
            assert!(!s.jobs, "{off}");
        }
        let s = Settings::from_args(["--jwt-secret", "x", "--jobs", "on"]).unwrap();
        assert!(s.jobs);
        assert!(Settings::from_args(["--jwt-secret", "x", "--jobs", "maybe"]).is_err());
    }
}
