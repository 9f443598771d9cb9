//! A private PostgreSQL cluster, created and started from the system's PostgreSQL binaries
//! when no `DATABASE_URL` is given, so that a new user needs nothing but the binaries.
//!
//! The cluster lives in `<data dir>/postgres`, listens on a free loopback port with
//! password authentication, and is reused by the next run. PostgreSQL refuses to run as
//! root, so when Rapport runs as root the cluster runs as the `postgres` system user.

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

/// Name of the database and role Rapport uses inside its private cluster.
pub const DATABASE: &str = "rapport";
const MIN_MAJOR: u32 = 15;
const INSTALL_HINT: &str = "Install PostgreSQL 15 or newer (Debian/Ubuntu: `apt-get install postgresql`; \
Fedora: `dnf install postgresql-server`; macOS: `brew install postgresql@16`), put its bin folder \
(the one holding initdb and pg_ctl) on PATH, or set DATABASE_URL to an existing server.";

/// Why the private cluster could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("PostgreSQL server binaries (initdb, pg_ctl) were not found. {INSTALL_HINT}")]
    NotFound,
    #[error(
        "PostgreSQL {found} at {bin} is too old; Rapport needs {MIN_MAJOR} or newer. {INSTALL_HINT}"
    )]
    TooOld { found: u32, bin: String },
    #[error(
        "the cluster in {dir} was made by PostgreSQL {cluster}, but the binaries found are PostgreSQL {binaries}; \
         install PostgreSQL {cluster}, or move the folder away to start afresh"
    )]
    VersionMismatch {
        dir: String,
        cluster: u32,
        binaries: u32,
    },
    #[error(
        "running as root, the cluster must run as the `postgres` system user, which does not exist; create it (useradd --system postgres) or run Rapport as an ordinary user"
    )]
    NoPostgresUser,
    #[error(
        "the embedded cluster must run as `postgres`, which cannot reach {dir}; set RAPPORT_DATA_DIR to a folder it can reach, or DATABASE_URL"
    )]
    Unreachable { dir: String },
    #[error("{step} failed: {detail}")]
    Command { step: String, detail: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A running private cluster.
#[derive(Debug, Clone)]
pub struct EmbeddedPostgres {
    bin_dir: PathBuf,
    cluster_dir: PathBuf,
    port: u16,
    password: String,
    run_as: Option<nix::unistd::User>,
    started_here: bool,
}

impl EmbeddedPostgres {
    /// Creates the cluster in `data_dir/postgres` if needed, starts it unless it already runs,
    /// and makes sure the `rapport` database exists. Blocking: call it off the async runtime.
    pub fn start(data_dir: &Path) -> Result<Self, EmbeddedError> {
        let bin_dir = find_binaries()?;
        let binaries_major = major_version(&bin_dir)?;
        fs::create_dir_all(data_dir)?;
        let data_dir = data_dir.canonicalize()?;
        let run_as = cluster_user()?;
        let cluster_dir = cluster_location(&data_dir, run_as.as_ref())?;
        let password_file = data_dir.join("postgres.password");

        let mut cluster = Self {
            bin_dir,
            cluster_dir,
            port: 0,
            password: String::new(),
            run_as,
            started_here: false,
        };
        if !cluster.cluster_dir.join("PG_VERSION").exists() {
            cluster.init(&password_file)?;
        }
        cluster.password = fs::read_to_string(&password_file)?.trim().to_owned();
        let cluster_major: u32 = fs::read_to_string(cluster.cluster_dir.join("PG_VERSION"))?
            .trim()
            .parse()
            .unwrap_or(0);
        if cluster_major != binaries_major {
            return Err(EmbeddedError::VersionMismatch {
                dir: cluster.cluster_dir.display().to_string(),
                cluster: cluster_major,
                binaries: binaries_major,
            });
        }
        match cluster.running_port() {
            Some(port) => cluster.port = port,
            None => {
                cluster.port = free_port()?;
                cluster.pg_ctl_start()?;
                cluster.started_here = true;
            }
        }
        Ok(cluster)
    }

    /// The cluster's own folder.
    pub fn cluster_dir(&self) -> &Path {
        &self.cluster_dir
    }

    /// URL of the `rapport` database (the role owns it; initdb created both).
    pub fn url(&self) -> String {
        self.url_for(DATABASE)
    }

    /// URL of another database of the cluster, as the `rapport` superuser.
    pub fn url_for(&self, database: &str) -> String {
        format!(
            "postgres://{DATABASE}:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }

    /// The TCP port the cluster listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether this process started the cluster (and so should stop it).
    pub fn started_here(&self) -> bool {
        self.started_here
    }

    /// The `pg_ctl stop` command for this cluster, for a watcher process to run later.
    pub fn stop_command(&self) -> Command {
        self.stop_command_with("fast")
    }

    fn stop_command_with(&self, mode: &str) -> Command {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("-D")
            .arg(&self.cluster_dir)
            .args(["-m", mode, "-w", "stop"]);
        cmd
    }

    /// Stops the cluster in a `pg_ctl` shutdown mode (`smart`, `fast`, `immediate`) whoever
    /// started it; with [`Self::start_again`] and [`Self::restart`], for tests that take the
    /// database away from a running API.
    pub fn stop_with(&self, mode: &str) -> Result<(), EmbeddedError> {
        run(self.stop_command_with(mode), "pg_ctl stop").map(|_| ())
    }

    /// Starts the stopped cluster again on its port.
    pub fn start_again(&self) -> Result<(), EmbeddedError> {
        self.pg_ctl_start()
    }

    /// `pg_ctl restart` in a shutdown mode, on the same port.
    pub fn restart(&self, mode: &str) -> Result<(), EmbeddedError> {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("-D")
            .arg(&self.cluster_dir)
            .arg("-l")
            .arg(self.cluster_dir.join("server.log"))
            .args(["-w", "-t", "60", "-m", mode, "-o"])
            .arg(format!("-p {}", self.port))
            .arg("restart");
        run(cmd, "pg_ctl restart").map(|_| ())
    }

    /// Starts a detached watcher that stops the cluster once process `pid` has exited, for
    /// callers (such as the test suite) that have no clean shutdown of their own.
    pub fn stop_after_exit_of(&self, pid: u32) -> Result<(), EmbeddedError> {
        let script =
            "while [ -d /proc/$0 ]; do sleep 1; done; exec \"$1\" -D \"$2\" -m fast -w stop";
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(script)
            .arg(pid.to_string())
            .arg(self.bin_dir.join("pg_ctl"))
            .arg(&self.cluster_dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if let Some(user) = &self.run_as {
            sh.uid(user.uid.as_raw())
                .gid(user.gid.as_raw())
                .current_dir(&self.cluster_dir);
        }
        sh.spawn()?;
        Ok(())
    }

    /// Stops the cluster if this process started it.
    pub fn stop(&self) -> Result<(), EmbeddedError> {
        if self.started_here {
            run(self.stop_command(), "pg_ctl stop")?;
        }
        Ok(())
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin_dir.join(program));
        if let Some(user) = &self.run_as {
            cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
            cmd.env("HOME", &user.dir);
            // The server's working directory must be readable by its user.
            cmd.current_dir(&self.cluster_dir);
        }
        cmd
    }

    fn init(&self, password_file: &Path) -> Result<(), EmbeddedError> {
        let _ = fs::remove_dir_all(&self.cluster_dir);
        fs::create_dir_all(&self.cluster_dir)?;
        fs::set_permissions(&self.cluster_dir, fs::Permissions::from_mode(0o700))?;
        let password = random_password();
        write_private(password_file, &password)?;
        // initdb reads the superuser password from a file its own user can read.
        let pwfile = self.cluster_dir.with_extension("initdb");
        write_private(&pwfile, &password)?;
        if let Some(user) = &self.run_as {
            chown(
                &self.cluster_dir,
                Some(user.uid.as_raw()),
                Some(user.gid.as_raw()),
            )?;
            chown(&pwfile, Some(user.uid.as_raw()), Some(user.gid.as_raw()))?;
        }
        let mut initdb = self.command("initdb");
        initdb
            .arg("-D")
            .arg(&self.cluster_dir)
            .args([
                "-U",
                DATABASE,
                "-E",
                "UTF8",
                "--locale=C",
                "--auth=scram-sha-256",
            ])
            .arg(format!("--pwfile={}", pwfile.display()));
        let result = run(initdb, "initdb");
        let _ = fs::remove_file(&pwfile);
        result?;
        // Loopback TCP only; no Unix socket, so no shared socket folder is needed.
        let mut conf = fs::OpenOptions::new()
            .append(true)
            .open(self.cluster_dir.join("postgresql.conf"))?;
        writeln!(
            conf,
            "\n# Added by Rapport\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n\
             max_connections = 200\nshared_buffers = 256MB\nlogging_collector = off"
        )?;
        // Create the application database once, on a short-lived start.
        let port = free_port()?;
        self.pg_ctl_start_on(port)?;
        let mut createdb = self.command("createdb");
        createdb
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                DATABASE,
                DATABASE,
            ])
            .env("PGPASSWORD", &password);
        let created = run(createdb, "createdb");
        run(self.stop_command(), "pg_ctl stop")?;
        created.map(|_| ())
    }

    fn pg_ctl_start(&self) -> Result<(), EmbeddedError> {
        self.pg_ctl_start_on(self.port)
    }

    fn pg_ctl_start_on(&self, port: u16) -> Result<(), EmbeddedError> {
        let log = self.cluster_dir.join("server.log");
        let mut cmd = self.command("pg_ctl");
        cmd.arg("-D")
            .arg(&self.cluster_dir)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o"])
            .arg(format!("-p {port}"))
            .arg("start");
        run(cmd, "pg_ctl start")
            .map_err(|e| match e {
                EmbeddedError::Command { step, detail } => EmbeddedError::Command {
                    step,
                    detail: format!("{detail}\n(see {})", log.display()),
                },
                other => other,
            })
            .map(|_| ())
    }

    /// The port of a postmaster already running on this cluster, from `postmaster.pid`.
    fn running_port(&self) -> Option<u16> {
        let pid_file = fs::read_to_string(self.cluster_dir.join("postmaster.pid")).ok()?;
        let mut status = self.command("pg_ctl");
        status.arg("-D").arg(&self.cluster_dir).arg("status");
        let alive = status.output().ok()?.status.success();
        if !alive {
            return None;
        }
        pid_file.lines().nth(3)?.trim().parse().ok()
    }
}

fn run(mut cmd: Command, step: &str) -> Result<Output, EmbeddedError> {
    let output = cmd.output().map_err(|e| EmbeddedError::Command {
        step: step.to_owned(),
        detail: e.to_string(),
    })?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(EmbeddedError::Command {
            step: step.to_owned(),
            detail: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stderr).trim(),
                String::from_utf8_lossy(&output.stdout).trim()
            ),
        })
    }
}

/// Where the cluster's files live: `data_dir/postgres`, unless the cluster runs as another
/// user (we are root) who cannot reach the data folder — a checkout in `/root`, mode 0700 —
/// in which case they go in that user's home, `~postgres/rapport/<digest of data_dir>/postgres`
/// (the password file stays in the data folder).
fn cluster_location(
    data_dir: &Path,
    run_as: Option<&nix::unistd::User>,
) -> Result<PathBuf, EmbeddedError> {
    let own = data_dir.join("postgres");
    let Some(user) = run_as else { return Ok(own) };
    if reachable_by(data_dir, user) {
        return Ok(own);
    }
    let digest = Sha256::digest(data_dir.as_os_str().as_encoded_bytes());
    let tag: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let home = &user.dir;
    let parent = home.join("rapport").join(tag);
    let made: Vec<PathBuf> = [home.clone(), home.join("rapport"), parent.clone()]
        .into_iter()
        .filter(|dir| !dir.exists())
        .collect();
    fs::create_dir_all(&parent)?;
    for dir in &made {
        chown(dir, Some(user.uid.as_raw()), Some(user.gid.as_raw()))?;
    }
    if !reachable_by(&parent, user) {
        return Err(EmbeddedError::Unreachable {
            dir: parent.display().to_string(),
        });
    }
    tracing::info!(cluster = %parent.display(), "the data folder is out of the postgres user's reach; the embedded cluster lives here");
    Ok(parent.join("postgres"))
}

/// Whether `user` may enter `dir`: every folder on the way grants it search (execute).
fn reachable_by(dir: &Path, user: &nix::unistd::User) -> bool {
    dir.ancestors().all(|folder| {
        let Ok(meta) = fs::metadata(folder) else {
            return false;
        };
        let mode = meta.permissions().mode();
        let bit = if meta.uid() == user.uid.as_raw() {
            0o100
        } else if meta.gid() == user.gid.as_raw() {
            0o010
        } else {
            0o001
        };
        mode & bit != 0
    })
}

/// The user the cluster runs as: `postgres` when we are root, else ourselves.
fn cluster_user() -> Result<Option<nix::unistd::User>, EmbeddedError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    match nix::unistd::User::from_name("postgres") {
        Ok(Some(user)) => Ok(Some(user)),
        _ => Err(EmbeddedError::NoPostgresUser),
    }
}

/// Finds a folder holding `initdb`, `pg_ctl` and `postgres`: PATH first, then the usual
/// install folders, newest version first.
pub fn find_binaries() -> Result<PathBuf, EmbeddedError> {
    let has_all = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres", "createdb"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };
    let from_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|dir| dir.join("pg_ctl").canonicalize().ok())
        .filter_map(|pg_ctl| pg_ctl.parent().map(Path::to_path_buf));
    let mut versioned: Vec<PathBuf> = ["/usr/lib/postgresql", "/usr/pgsql", "/opt/homebrew/opt"]
        .iter()
        .filter_map(|root| fs::read_dir(root).ok())
        .flat_map(|entries| entries.filter_map(Result::ok).map(|e| e.path().join("bin")))
        .collect();
    versioned.sort_by_key(|p| std::cmp::Reverse(leading_number(p)));
    let fixed = [
        "/usr/local/pgsql/bin",
        "/usr/local/bin",
        "/opt/homebrew/bin",
    ]
    .map(PathBuf::from);
    from_path
        .chain(versioned)
        .chain(fixed)
        .find(|dir| has_all(dir))
        .ok_or(EmbeddedError::NotFound)
}

fn leading_number(path: &Path) -> u32 {
    path.parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .map(|n| n.chars().filter(char::is_ascii_digit).collect::<String>())
        .and_then(|digits| {
            digits
                .get(..2.min(digits.len()))
                .and_then(|d| d.parse().ok())
        })
        .unwrap_or(0)
}

fn major_version(bin_dir: &Path) -> Result<u32, EmbeddedError> {
    let output = run(
        {
            let mut c = Command::new(bin_dir.join("pg_ctl"));
            c.arg("--version");
            c
        },
        "pg_ctl --version",
    )?;
    let text = String::from_utf8_lossy(&output.stdout);
    let major = parse_major(&text);
    if major < MIN_MAJOR {
        return Err(EmbeddedError::TooOld {
            found: major,
            bin: bin_dir.display().to_string(),
        });
    }
    Ok(major)
}

/// `pg_ctl (PostgreSQL) 15.20 (Debian ...)` → 15.
fn parse_major(version_line: &str) -> u32 {
    version_line
        .split_whitespace()
        .find_map(|word| word.split('.').next()?.parse().ok())
        .unwrap_or(0)
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn random_password() -> String {
    crate::secrets::random_token(24)
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)?;
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    file.write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_version_is_read_from_pg_ctl_output() {
        assert_eq!(
            parse_major("pg_ctl (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"),
            15
        );
        assert_eq!(parse_major("pg_ctl (PostgreSQL) 17.2"), 17);
        assert_eq!(parse_major("garbage"), 0);
    }

    #[test]
    fn install_folders_sort_newest_first() {
        assert_eq!(leading_number(Path::new("/usr/lib/postgresql/16/bin")), 16);
        assert_eq!(
            leading_number(Path::new("/opt/homebrew/opt/postgresql@17/bin")),
            17
        );
    }
}
