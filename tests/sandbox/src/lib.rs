//! Throwaway servers for the test suite and the demo: MariaDB here, PostgreSQL clusters in
//! [`postgres`], a PagerDuty stand-in in [`pagerduty`]. MariaDB: `mariadb-install-db` into a
//! temporary directory, `mariadbd` on a free loopback port, killed when dropped (and, on
//! Linux, when the process that started it dies). A crate of its own, a dev-dependency only:
//! nothing here is compiled into the daemon.
//!
//! The binaries come from the machine's MariaDB packages; `HEADROOM_MARIADB_BIN` may name a
//! directory that holds them.

pub mod pagerduty;
pub mod postgres;

pub use postgres::{PasswordAuth, Postgres, PostgresOptions};

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Why a sandbox server could not be started or used.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "{0} not found: install the mariadb-server package (apt-get install mariadb-server) or set HEADROOM_MARIADB_BIN"
    )]
    Missing(&'static str),
    #[error(
        "{0} not found: install the postgresql and postgresql-client packages (apt-get install postgresql postgresql-client) or set HEADROOM_POSTGRES_BIN to a folder holding initdb and postgres"
    )]
    MissingPostgres(&'static str),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} failed: {output}")]
    Failed { what: String, output: String },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SandboxError {
    let what = what.into();
    move |source| SandboxError::Io { what, source }
}

/// Finds a MariaDB program on `HEADROOM_MARIADB_BIN`, `PATH`, or the usual sbin folders.
fn find(program: &'static str) -> Result<PathBuf, SandboxError> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("HEADROOM_MARIADB_BIN") {
        dirs.push(PathBuf::from(dir));
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.extend(["/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .ok_or(SandboxError::Missing(program))
}

/// Starts servers named `names`: installs them side by side (about a second each), then
/// boots them on this thread, which must outlive them (see [`MariaDb::boot`]).
pub fn start_many(names: &[&str]) -> Result<Vec<MariaDb>, SandboxError> {
    let installs: Vec<_> = names
        .iter()
        .map(|name| {
            let name = name.to_string();
            std::thread::spawn(move || MariaDb::install(&name))
        })
        .collect();
    let mut servers = Vec::with_capacity(names.len());
    for (handle, name) in installs.into_iter().zip(names) {
        let mut server = handle.join().map_err(|_| SandboxError::Failed {
            what: format!("installing {name}"),
            output: "the install thread panicked".to_string(),
        })??;
        server.boot()?;
        servers.push(server);
    }
    Ok(servers)
}

/// A configuration for Etsy-like `shards` (named shard-01, shard-02, ...) and a ticket pair
/// `tickets` (the source `tickets64`), after `head` (the [server] and [poll] tables).
pub fn cluster_toml(head: &str, shards: &[MariaDb], tickets: &[MariaDb]) -> String {
    let mut text = head.to_string();
    for (i, s) in shards.iter().enumerate() {
        text.push_str(&format!(
            "[[shards]]\nname = \"shard-{:02}\"\nurl = \"{}\"\n",
            i + 1,
            s.url("root", None)
        ));
    }
    let servers: Vec<String> = tickets
        .iter()
        .map(|t| format!("\"{}\"", t.url("root", Some("tickets"))))
        .collect();
    text.push_str(&format!(
        "[[sources]]\nname = \"tickets64\"\nkind = \"ticket_server\"\nservers = [{}]\ntable = \"Tickets64\"\n",
        servers.join(", ")
    ));
    text.push_str(ETSY_REFERENCES_TOML);
    text
}

/// Whether the MariaDB binaries the sandbox needs are installed.
pub fn available() -> bool {
    ["mariadbd", "mariadb-install-db", "mariadb"]
        .iter()
        .all(|p| find(p).is_ok())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn free_port() -> Result<u16, SandboxError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io("finding a free port"))?;
    let port = listener
        .local_addr()
        .map_err(io("finding a free port"))?
        .port();
    Ok(port)
}

/// A running throwaway MariaDB server.
pub struct MariaDb {
    /// A short name for messages and log files.
    name: String,
    /// Holds the data directory, socket and log; removed on drop.
    dir: TempDir,
    port: u16,
    /// The server process while it runs.
    child: Option<Child>,
    /// More `mariadbd` options, applied at the next boot or restart.
    extra_args: Vec<String>,
}

impl MariaDb {
    /// Installs a fresh data directory without starting the server: the slow half, safe to
    /// run on another thread (see [`start_many`]).
    pub fn install(name: &str) -> Result<MariaDb, SandboxError> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("headroom-{name}-"))
            .tempdir()
            .map_err(io("creating a temporary directory"))?;
        let install = find("mariadb-install-db")?;
        // Concurrent bootstraps sharing /tmp collide on their temporary tables.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).map_err(io("creating the server's tmpdir"))?;
        let mut cmd = Command::new(&install);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", dir.path().join("data").display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .arg("--innodb-log-file-size=8M");
        if is_root() {
            cmd.arg("--user=root");
        }
        let out = cmd.output().map_err(io("running mariadb-install-db"))?;
        if !out.status.success() {
            return Err(SandboxError::Failed {
                what: "mariadb-install-db".to_string(),
                output: format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            });
        }
        Ok(MariaDb {
            name: name.to_string(),
            dir,
            port: 0,
            child: None,
            extra_args: Vec::new(),
        })
    }

    /// Starts an installed server on a free port. On Linux the server is killed when the
    /// calling thread ends, so call this from the thread that owns the server's lifetime.
    pub fn boot(&mut self) -> Result<(), SandboxError> {
        // A port found free can be taken before mariadbd binds it; try a few.
        let mut last = None;
        for _ in 0..3 {
            self.port = free_port()?;
            match self.launch() {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(SandboxError::Missing("mariadbd")))
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("mysqld.sock")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("error.log")
    }

    /// Starts `mariadbd` on the data directory and waits until it answers.
    fn launch(&mut self) -> Result<(), SandboxError> {
        let mariadbd = find("mariadbd")?;
        let mut cmd = Command::new(mariadbd);
        cmd.arg("--no-defaults")
            .arg(format!(
                "--datadir={}",
                self.dir.path().join("data").display()
            ))
            .arg(format!(
                "--tmpdir={}",
                self.dir.path().join("tmp").display()
            ))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", self.socket().display()))
            .arg(format!(
                "--pid-file={}",
                self.dir.path().join("mysqld.pid").display()
            ))
            .arg(format!("--log-error={}", self.log().display()))
            .arg("--innodb-buffer-pool-size=16M")
            .arg("--innodb-log-file-size=8M")
            .arg("--innodb-flush-log-at-trx-commit=2")
            .arg("--skip-log-bin")
            .arg("--skip-name-resolve")
            .arg("--performance-schema=0")
            .arg("--max-connections=200")
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if is_root() {
            cmd.arg("--user=root");
        }
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill the server
            // when the thread that started it exits, so a crashed test leaves none behind.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
        }
        let child = cmd.spawn().map_err(io("starting mariadbd"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(SandboxError::Failed {
                    what: format!("mariadbd {} ({status})", self.name),
                    output: self.log_tail(),
                });
            }
            if self.exec("SELECT 1").is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(SandboxError::Failed {
                    what: format!("mariadbd {} did not answer within 60s", self.name),
                    output: self.log_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A `mysql://` URL for `user` (no password) and optional database path.
    pub fn url(&self, user: &str, database: Option<&str>) -> String {
        format!(
            "mysql://{user}@127.0.0.1:{}/{}",
            self.port,
            database.unwrap_or("")
        )
    }

    /// The `mariadb` command line that reaches this server as root, for people.
    pub fn client_command(&self) -> String {
        format!(
            "mariadb --no-defaults --user=root --socket={}",
            self.socket().display()
        )
    }

    /// Runs SQL (several statements allowed) as root through the socket; returns the
    /// tab-separated output without column names.
    pub fn exec(&self, sql: &str) -> Result<String, SandboxError> {
        let client = find("mariadb")?;
        let mut child = Command::new(client)
            .arg("--no-defaults")
            .arg("--user=root")
            .arg(format!("--socket={}", self.socket().display()))
            .arg("--batch")
            .arg("--skip-column-names")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io("running the mariadb client"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(sql.as_bytes())
                .map_err(io("sending SQL to the mariadb client"))?;
        }
        let out = child
            .wait_with_output()
            .map_err(io("running the mariadb client"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(SandboxError::Failed {
                what: format!("SQL on {}", self.name),
                output: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }
    }

    /// Stops the server cleanly (SIGTERM, then SIGKILL after 20 s): a real stopped process.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, libc::SIGCONT);
            signal(&child, libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same data directory and port.
    pub fn restart(&mut self) -> Result<(), SandboxError> {
        self.stop();
        self.launch()
    }

    /// Makes a self-signed CA and server certificate (with the `openssl` command) in the
    /// server's directory and restarts it with TLS required for TCP clients.
    pub fn require_tls(&mut self) -> Result<(), SandboxError> {
        let dir = self.dir.path().join("tls");
        std::fs::create_dir_all(&dir).map_err(io("creating the TLS directory"))?;
        let openssl = |args: &[&str]| -> Result<(), SandboxError> {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .map_err(io("running openssl"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(SandboxError::Failed {
                    what: format!("openssl {}", args.join(" ")),
                    output: String::from_utf8_lossy(&out.stderr).into_owned(),
                })
            }
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=headroom-test-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ])?;
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ])?;
        // Extensions make it an X.509 v3 certificate, the only version rustls accepts.
        std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\n")
            .map_err(io("writing the certificate extensions"))?;
        openssl(&[
            "x509",
            "-extfile",
            "server.ext",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "server.pem",
        ])?;
        let arg = |name: &str, file: &str| format!("--{name}={}", dir.join(file).display());
        let args = [
            arg("ssl-ca", "ca.pem"),
            arg("ssl-cert", "server.pem"),
            arg("ssl-key", "server.key"),
            "--require-secure-transport=ON".to_string(),
        ];
        self.extra_args.extend(args);
        self.restart()
    }

    /// Freezes the server (SIGSTOP): connections and queries hang, as on an overloaded host.
    pub fn freeze(&self) {
        if let Some(child) = &self.child {
            signal(child, libc::SIGSTOP);
        }
    }

    /// Resumes a frozen server.
    pub fn thaw(&self) {
        if let Some(child) = &self.child {
            signal(child, libc::SIGCONT);
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn signal(child: &Child, sig: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: sending a signal to our own child process; an exited pid is harmless here
        // because the child is not yet reaped, so the pid cannot have been reused.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// Sends `sig` to the process group `child` leads (a server started with its own group).
fn signal_group(child: &Child, sig: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: as in `signal`: the leader is not yet reaped, so its group id is still
        // this server's.
        unsafe {
            libc::kill(-pid, sig);
        }
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.kill();
    }
}

/// SQL that turns a fresh server into one half of a Flickr ticket pair: a `tickets`
/// database with `Tickets64`, handing out `offset`, `offset + 2`, ... from `start` on.
pub fn ticket_server_sql(offset: u8, start: u64) -> String {
    format!(
        "SET GLOBAL auto_increment_increment = 2;
SET GLOBAL auto_increment_offset = {offset};
CREATE DATABASE tickets;
CREATE TABLE tickets.Tickets64 (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  stub CHAR(1) NOT NULL DEFAULT '',
  UNIQUE KEY stub (stub)
) ENGINE=InnoDB AUTO_INCREMENT={start};
"
    )
}

/// Hands out `n` tickets on a ticket server (each in a new session, as applications do,
/// so the global increment and offset apply) and returns the last one.
pub fn hand_out_tickets(server: &MariaDb, n: usize) -> Result<u64, SandboxError> {
    let mut sql = String::new();
    for _ in 0..n.max(1) {
        sql.push_str("REPLACE INTO tickets.Tickets64 (stub) VALUES ('a');\n");
    }
    sql.push_str("SELECT LAST_INSERT_ID();\n");
    let out = server.exec(&sql)?;
    out.trim().parse().map_err(|_| SandboxError::Failed {
        what: "reading LAST_INSERT_ID()".to_string(),
        output: out,
    })
}

/// Hands out `n` tickets over `pool` (a connection to the ticket database) with one
/// multi-row REPLACE (each row takes a new ID and replaces the one before), and returns the
/// highest ticket now handed out.
pub async fn hand_out_tickets_async(pool: &sqlx::MySqlPool, n: u32) -> Result<u64, sqlx::Error> {
    let rows = vec!["('a')"; n.max(1) as usize].join(", ");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "REPLACE INTO Tickets64 (stub) VALUES {rows}"
    )))
    .execute(pool)
    .await?;
    let id: u64 = sqlx::query_scalar("SELECT CAST(MAX(id) AS UNSIGNED) FROM Tickets64")
        .fetch_one(pool)
        .await?;
    Ok(id)
}

/// An Etsy-like shard schema, the shape of the August 2012 outage:
/// - `shops`, `treasuries`: BIGINT UNSIGNED keys that store ticket IDs (fine);
/// - `treasury_comments.treasury_id`: INT UNSIGNED storing ticket IDs, indexed (the latent
///   mismatch: over half used once tickets pass 2^31);
/// - `activity_feed.actor_id`: INT (signed) storing ticket IDs: exhausted past 2^31 − 1;
/// - `activity_feed.feed_id`: an INT auto-increment counter close to its maximum;
/// - `teams` / `team_members`: a small auto-increment and a foreign key to it;
/// - `listings.shop_id`: a foreign key to `shops`, whose IDs come from the tickets;
/// - `audit_log.user_id`: INT UNSIGNED storing ticket IDs with no index (never scanned).
pub const ETSY_SCHEMA_SQL: &str = "
CREATE DATABASE etsy;
CREATE TABLE etsy.shops (
  shop_id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  name VARCHAR(64) NOT NULL
) ENGINE=InnoDB;
CREATE TABLE etsy.treasuries (
  treasury_id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  shop_id BIGINT UNSIGNED NOT NULL,
  title VARCHAR(64) NOT NULL,
  KEY shop_id (shop_id)
) ENGINE=InnoDB;
CREATE TABLE etsy.treasury_comments (
  comment_id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  treasury_id INT UNSIGNED NOT NULL,
  body VARCHAR(255) NOT NULL DEFAULT '',
  KEY treasury_id (treasury_id)
) ENGINE=InnoDB;
CREATE TABLE etsy.activity_feed (
  feed_id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  actor_id INT NOT NULL,
  verb VARCHAR(16) NOT NULL DEFAULT 'favorited',
  KEY actor_id (actor_id)
) ENGINE=InnoDB AUTO_INCREMENT=1900000000;
CREATE TABLE etsy.teams (
  team_id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(64) NOT NULL
) ENGINE=InnoDB AUTO_INCREMENT=13400;
CREATE TABLE etsy.team_members (
  team_id INT NOT NULL,
  user_id BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (team_id, user_id),
  CONSTRAINT team_members_team FOREIGN KEY (team_id) REFERENCES etsy.teams (team_id)
) ENGINE=InnoDB;
CREATE TABLE etsy.listings (
  listing_id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  shop_id BIGINT UNSIGNED NOT NULL,
  CONSTRAINT listings_shop FOREIGN KEY (shop_id) REFERENCES etsy.shops (shop_id)
) ENGINE=InnoDB;
CREATE TABLE etsy.audit_log (
  entry_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id INT UNSIGNED NOT NULL,
  action VARCHAR(32) NOT NULL DEFAULT ''
) ENGINE=InnoDB;
";

/// The `[[references]]` rule that goes with [`ETSY_SCHEMA_SQL`].
pub const ETSY_REFERENCES_TOML: &str = r#"
[[references]]
source = "tickets64"
columns = ["etsy.*.*_id"]
exclude = ["etsy.teams.*"]
"#;
