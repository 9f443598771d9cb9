//! The `rapport` command line: `serve` (default), `migrate`, `openapi`, `user create`.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rapport::auth::Role;
use rapport::config::Settings;
use rapport::customers::queries::ListFilters;
use rapport::customers::{Level, Stage, Tier};
use rapport::users::{NewUser, create_user};
use rapport::{db, openapi, server, telemetry};
use validator::Validate;

#[derive(Parser)]
#[command(
    name = "rapport",
    version,
    about = "Customer-relationship backend: customers, complaints, visits and a membership club"
)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Start the HTTP API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Fire the complaint escalation steps that are due, once, on two connections, and exit
    /// (the server does this every 15 seconds; this is for cron and for measuring).
    Escalate,
    /// Mark missed visits and plan the occurrences of recurring plans up to the horizon, once,
    /// and exit (the server does this every minute; this is for cron and for measuring).
    VisitJobs,
    /// Run the club's jobs once (expire lapsed points on two connections, review tiers, move
    /// waitlist offers on, pay birthday bonuses) and exit (the server does this every minute).
    ClubJobs,
    /// Run the background work of an instance (escalations, visit and club jobs, webhook
    /// deliveries) without serving HTTP, beside the API instances on `DATABASE_URL`.
    Worker,
    /// Print the OpenAPI document.
    Openapi,
    /// Exit 0 when the server at RAPPORT_LISTEN answers `/healthz` (for container health checks).
    Healthcheck,
    /// Manage staff users.
    User {
        #[command(subcommand)]
        action: UserCommand,
    },
    /// Import data from CSV.
    Import {
        #[command(subcommand)]
        what: ImportCommand,
    },
    /// Export data as CSV to standard output.
    Export {
        #[command(subcommand)]
        what: ExportCommand,
    },
    /// Fill the database with realistic generated customers and orders.
    Seed {
        /// How many customers to add.
        #[arg(long, default_value_t = 10_000)]
        customers: i64,
        /// Paid, fulfilled or refunded orders per customer.
        #[arg(long, default_value_t = 2)]
        orders_per_customer: i64,
        /// Complaints per customer (most of them closed).
        #[arg(long, default_value_t = 0)]
        complaints_per_customer: i64,
        /// Visits per customer (over three years, most completed; needs owners, so it seeds
        /// the agents who own the customers).
        #[arg(long, default_value_t = 0)]
        visits_per_customer: i64,
        /// Earnings (each a lot of 100 points) per club member; with any, every second
        /// customer is a member.
        #[arg(long, default_value_t = 0)]
        lots_per_member: i64,
    },
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Upsert customers by (source, external_ref) from a CSV file; bad rows are reported by line.
    Customers { file: std::path::PathBuf },
}

#[derive(Subcommand)]
enum ExportCommand {
    /// Write live customers as CSV, optionally filtered.
    Customers(ExportFilters),
}

#[derive(clap::Args)]
struct ExportFilters {
    #[arg(long)]
    q: Option<String>,
    #[arg(long, value_parser = |s: &str| Level::parse(s).ok_or("unknown level"))]
    level: Option<Level>,
    #[arg(long, value_parser = |s: &str| Tier::parse(s).ok_or("unknown tier"))]
    tier: Option<Tier>,
    #[arg(long, value_parser = |s: &str| Stage::parse(s).ok_or("unknown stage"))]
    stage: Option<Stage>,
    #[arg(long)]
    region: Option<String>,
    #[arg(long)]
    tag: Option<String>,
    #[arg(long)]
    owner_id: Option<uuid::Uuid>,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a staff user. The password is read from standard input unless given.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[arg(long)]
        password: Option<String>,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| "role must be admin, manager or agent".to_owned())
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.settings.log_format);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => server::serve(cli.settings).await,
        Command::Migrate => migrate(&cli.settings).await,
        Command::Escalate => escalate(&cli.settings).await,
        Command::VisitJobs => visit_jobs(&cli.settings).await,
        Command::ClubJobs => club_jobs(&cli.settings).await,
        Command::Worker => server::work(cli.settings).await,
        Command::Openapi => {
            print!("{}", openapi::document_json());
            Ok(())
        }
        Command::Healthcheck => healthcheck(&cli.settings),
        Command::Import {
            what: ImportCommand::Customers { file },
        } => import_customers(&cli.settings, &file).await,
        Command::Export {
            what: ExportCommand::Customers(filters),
        } => export_customers(&cli.settings, filters).await,
        Command::Seed {
            customers,
            orders_per_customer,
            complaints_per_customer,
            visits_per_customer,
            lots_per_member,
        } => {
            let per = rapport::seed::PerCustomer {
                orders: orders_per_customer,
                complaints: complaints_per_customer,
                visits: visits_per_customer,
                lots_per_member,
            };
            seed(&cli.settings, customers, per).await
        }
        Command::User {
            action:
                UserCommand::Create {
                    email,
                    role,
                    password,
                },
        } => create(&cli.settings, email, role, password).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// A progress bar on standard error (hidden when it is not a terminal).
fn progress_bar(total: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    let template = format!(
        "{{elapsed_precise}} [{{bar:40}}] {{pos}}/{{len}} {what} ({{per_sec}}, eta {{eta}})"
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// A one-connection pool on the database for a command-line job.
async fn job_connection(url: &str, wait: std::time::Duration) -> Result<db::PooledConn, String> {
    // No statement timeout: a large import or export may run for a while.
    let pool = db::build_pool(url, 1, wait, std::time::Duration::ZERO)?;
    pool.get().await.map_err(|e| e.to_string())
}

async fn import_customers(settings: &Settings, file: &std::path::Path) -> Result<(), String> {
    let data = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let rows = data
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        .saturating_sub(1) as u64;
    let wait = settings.db_pool_timeout;
    with_database(settings, |url| async move {
        let mut conn = job_connection(&url, wait).await?;
        let bar = progress_bar(rows, "rows");
        let report =
            rapport::customers::csv::import(&mut conn, data.as_slice(), |n| bar.set_position(n))
                .await
                .map_err(|e| e.to_string())?;
        bar.finish_and_clear();
        for (line, reason) in &report.failed {
            eprintln!("line {line}: {reason}");
        }
        eprintln!(
            "{} created, {} updated, {} failed",
            report.created,
            report.updated,
            report.failed.len()
        );
        if report.failed.is_empty() {
            Ok(())
        } else {
            Err(format!("{} rows were not imported", report.failed.len()))
        }
    })
    .await
}

async fn export_customers(settings: &Settings, filters: ExportFilters) -> Result<(), String> {
    let filters = ListFilters {
        q: filters.q,
        level: filters.level,
        tier: filters.tier,
        stage: filters.stage,
        region: filters.region,
        tag: filters.tag,
        owner_id: filters.owner_id.map(Into::into),
        ..ListFilters::default()
    };
    let wait = settings.db_pool_timeout;
    with_database(settings, |url| async move {
        let mut conn = job_connection(&url, wait).await?;
        let bar = indicatif::ProgressBar::new_spinner();
        let stdout = std::io::stdout().lock();
        let written =
            rapport::customers::csv::export(&mut conn, &filters, stdout, |n| bar.set_position(n))
                .await?;
        bar.finish_and_clear();
        eprintln!("{written} customers exported");
        Ok(())
    })
    .await
}

async fn seed(
    settings: &Settings,
    customers: i64,
    per: rapport::seed::PerCustomer,
) -> Result<(), String> {
    const BATCH: i64 = 20_000;
    let counts = [per.orders, per.complaints, per.visits, per.lots_per_member];
    if customers < 0 || counts.iter().any(|n| !(0..=100).contains(n)) {
        return Err(
            "--customers must be positive, --orders-per-customer, --complaints-per-customer, --visits-per-customer and --lots-per-member between 0 and 100".into(),
        );
    }
    let wait = settings.db_pool_timeout;
    with_database(settings, |url| async move {
        // No statement timeout: an index build on a million rows takes a while.
        let pool = db::build_pool(
            &url,
            rapport::seed::CONNECTIONS,
            wait,
            std::time::Duration::ZERO,
        )?;
        let started = std::time::Instant::now();
        let bar = progress_bar(0, "steps");
        rapport::seed::seed(&pool, customers, per, BATCH, |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })
        .await?;
        bar.finish_and_clear();
        eprintln!(
            "seeded {customers} customers with {} orders, {} complaints, {} visits and {} members with {} lots in {:.1} s",
            customers * per.orders,
            customers * per.complaints,
            customers * per.visits,
            if per.lots_per_member > 0 { (customers + 1) / 2 } else { 0 },
            (customers + 1) / 2 * per.lots_per_member,
            started.elapsed().as_secs_f64()
        );
        Ok(())
    })
    .await
}

fn healthcheck(settings: &Settings) -> Result<(), String> {
    use std::io::{Read, Write};
    let mut address = settings.listen;
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let timeout = std::time::Duration::from_secs(3);
    let mut stream =
        std::net::TcpStream::connect_timeout(&address, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    match reply.split_whitespace().nth(1) {
        Some("200") => Ok(()),
        other => Err(format!("unhealthy: status {}", other.unwrap_or("none"))),
    }
}

/// Runs `work` against the database, stopping an embedded cluster started for it.
async fn with_database<F, Fut>(settings: &Settings, work: F) -> Result<(), String>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let (url, cluster) = server::database_url(settings).await?;
    let result = match db::run_migrations(&url).await {
        Ok(()) => work(url).await,
        Err(e) => Err(e),
    };
    if let Some(cluster) = cluster {
        let _ = tokio::task::spawn_blocking(move || cluster.stop()).await;
    }
    result
}

async fn migrate(settings: &Settings) -> Result<(), String> {
    with_database(settings, |_| async {
        println!("database is up to date");
        Ok(())
    })
    .await
}

async fn escalate(settings: &Settings) -> Result<(), String> {
    with_database(settings, |url| async move {
        let mut one = db::connect(&url, std::time::Duration::ZERO, "rapport escalate")
            .await
            .map_err(|e| e.to_string())?;
        let mut two = db::connect(&url, std::time::Duration::ZERO, "rapport escalate")
            .await
            .map_err(|e| e.to_string())?;
        let started = std::time::Instant::now();
        let fired = rapport::complaints::escalation::run_due_on(
            &mut [&mut one, &mut two],
            chrono::Utc::now(),
        )
        .await
        .map_err(|e| e.to_string())?;
        println!(
            "fired {fired} escalation steps in {:.2} s",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    })
    .await
}

async fn visit_jobs(settings: &Settings) -> Result<(), String> {
    let visits = rapport::visits::VisitSettings::from(settings);
    with_database(settings, |url| async move {
        let connect = || db::connect(&url, std::time::Duration::ZERO, "rapport visit-jobs");
        let mut one = connect().await.map_err(|e| e.to_string())?;
        let mut two = connect().await.map_err(|e| e.to_string())?;
        let started = std::time::Instant::now();
        let (missed, planned) = rapport::visits::jobs::run_due_on(
            &mut [&mut one, &mut two],
            visits,
            chrono::Utc::now(),
        )
        .await
        .map_err(|e| e.to_string())?;
        println!(
            "marked {missed} visits missed and planned {planned} occurrences in {:.2} s",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    })
    .await
}

async fn club_jobs(settings: &Settings) -> Result<(), String> {
    with_database(settings, |url| async move {
        let connect = || db::connect(&url, std::time::Duration::ZERO, "rapport club-jobs");
        let mut one = connect().await.map_err(|e| e.to_string())?;
        let mut two = connect().await.map_err(|e| e.to_string())?;
        let started = std::time::Instant::now();
        let work = rapport::club::jobs::run_due_on(&mut [&mut one, &mut two], chrono::Utc::now())
            .await
            .map_err(|e| e.to_string())?;
        println!(
            "expired {} lots, noticed {} downgrades, reviewed {} tiers, moved {} offers on, paid {} birthday bonuses in {:.2} s",
            work.lots_expired,
            work.downgrades_noticed,
            work.tiers_reviewed,
            work.offers_expired,
            work.birthday_bonuses,
            started.elapsed().as_secs_f64()
        );
        Ok(())
    })
    .await
}

async fn create(
    settings: &Settings,
    email: String,
    role: Role,
    password: Option<String>,
) -> Result<(), String> {
    let password = match password {
        Some(p) => p,
        None => {
            if std::io::stdin().is_terminal() {
                eprint!("password: ");
            }
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| e.to_string())?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let new = NewUser {
        email: email.into(),
        password: password.into(),
        role,
        time_zone: None,
        display_name: None,
    };
    new.validate().map_err(|e| format!("invalid user: {e}"))?;
    let settings = settings.clone();
    with_database(&settings, |url| async move {
        let pool = db::build_pool(
            &url,
            1,
            settings.db_pool_timeout,
            settings.db_statement_timeout,
        )?;
        let mut conn = pool.get().await.map_err(|e| e.to_string())?;
        let user = create_user(&mut conn, &rapport::kit::write::Writer::system(), new)
            .await
            .map_err(|e| e.problem().detail)?;
        println!("created {} user {} ({})", user.role, user.email, user.id);
        Ok(())
    })
    .await
}
