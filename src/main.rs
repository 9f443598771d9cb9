//! The `rapport` command line: `serve` (default), `migrate`, `openapi`, `user create`.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rapport::auth::Role;
use rapport::config::Settings;
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
    /// Print the OpenAPI document.
    Openapi,
    /// Exit 0 when the server at RAPPORT_LISTEN answers `/healthz` (for container health checks).
    Healthcheck,
    /// Manage staff users.
    User {
        #[command(subcommand)]
        action: UserCommand,
    },
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
        Command::Openapi => {
            print!("{}", openapi::document_json());
            Ok(())
        }
        Command::Healthcheck => healthcheck(&cli.settings),
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
        email,
        password,
        role,
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
        let user = create_user(&mut conn, new)
            .await
            .map_err(|e| e.problem().detail)?;
        println!("created {} user {} ({})", user.role, user.email, user.id);
        Ok(())
    })
    .await
}
