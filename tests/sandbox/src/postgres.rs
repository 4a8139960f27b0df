//! Throwaway PostgreSQL clusters for the tests: a copy of a data directory made once per
//! process by `initdb`, a `postgres` server on a free loopback port with its unix socket in
//! the cluster's temporary directory, stopped (immediate shutdown) and removed when
//! dropped, and killed on Linux when the thread that started it dies. Never the server
//! that may already run on the machine (port 5432 is taken, so never chosen).
//!
//! The binaries are Debian's (`/usr/lib/postgresql/<version>/bin`, the newest installed),
//! or those in `HEADROOM_POSTGRES_BIN`. PostgreSQL refuses to run as root: when the tests
//! do, `initdb`, the copy and the server run as the `postgres` account that Debian's
//! packages create (`nobody` where it is missing), in a directory under `/tmp` that account
//! owns, so that no parent folder (a 0700 home, a private `TMPDIR`) is out of its reach.

use std::ffi::{CStr, CString, OsString};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::{SandboxError, free_port, io, is_root, signal_group};

/// The superuser `initdb` makes, trusted on the unix socket: what [`Postgres::exec`] uses.
pub const SUPERUSER: &str = "postgres";

/// How a role's password is stored and asked for (see [`Postgres::create_login`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordAuth {
    /// Stored as an MD5 hash, asked for with `md5` in pg_hba.conf.
    Md5,
    /// Stored as a SCRAM-SHA-256 verifier, asked for with `scram-sha-256`.
    Scram,
}

impl PasswordAuth {
    /// The value of `password_encryption` that stores a password this way.
    fn encryption(self) -> &'static str {
        match self {
            PasswordAuth::Md5 => "md5",
            PasswordAuth::Scram => "scram-sha-256",
        }
    }

    /// The pg_hba.conf method that asks for it.
    fn hba_method(self) -> &'static str {
        match self {
            PasswordAuth::Md5 => "md5",
            PasswordAuth::Scram => "scram-sha-256",
        }
    }
}

/// What a cluster is started with.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// `max_connections`; `shared_buffers` grows with it (16 MB at least).
    pub max_connections: u32,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            max_connections: 100,
        }
    }
}

/// The account the clusters run as when the tests run as root.
#[derive(Debug, Clone)]
struct Account {
    name: String,
    uid: u32,
    gid: u32,
}

/// Where the binaries are, and the account to run them as (`None`: this process's own).
#[derive(Debug, Clone)]
struct Install {
    bin: PathBuf,
    psql: PathBuf,
    account: Option<Account>,
}

/// A data directory `initdb` made once in this process, copied for every cluster: a copy
/// takes a tenth of the time of an `initdb`.
struct Template {
    /// The folder holding `data`; removed when the process exits (see [`remove_template`]).
    dir: PathBuf,
}

static TEMPLATE: OnceLock<Result<Template, String>> = OnceLock::new();

/// Whether the PostgreSQL binaries the sandbox needs (`initdb`, `postgres`, `psql`) are
/// installed.
pub fn available() -> bool {
    bin_dir(std::env::var_os("HEADROOM_POSTGRES_BIN"))
        .and_then(|bin| find_psql(&bin))
        .is_ok()
}

/// Finds the folder of `initdb` and `postgres`: `override_dir` alone when given (from
/// `HEADROOM_POSTGRES_BIN`), else the newest `/usr/lib/postgresql/<version>/bin`, else a
/// folder on `PATH` holding both.
fn bin_dir(override_dir: Option<OsString>) -> Result<PathBuf, SandboxError> {
    let has = |dir: &Path, program: &str| dir.join(program).is_file();
    let complete = |dir: &Path| -> Result<(), SandboxError> {
        for program in ["initdb", "postgres"] {
            if !has(dir, program) {
                return Err(SandboxError::MissingPostgres(program));
            }
        }
        Ok(())
    };
    if let Some(dir) = override_dir {
        let dir = PathBuf::from(dir);
        complete(&dir)?;
        return Ok(dir);
    }
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let version: Vec<u32> = name
                .split('.')
                .map(|part| part.parse().ok())
                .collect::<Option<_>>()?;
            let bin = entry.path().join("bin");
            complete(&bin).is_ok().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(dir) = std::env::split_paths(&path).find(|dir| complete(dir).is_ok()) {
        return Ok(dir);
    }
    let initdb_on_path = std::env::split_paths(&path).any(|dir| has(&dir, "initdb"));
    Err(SandboxError::MissingPostgres(if initdb_on_path {
        "postgres"
    } else {
        "initdb"
    }))
}

/// `psql` beside the server binaries (no wrapper script to start), else on `PATH`.
fn find_psql(bin: &Path) -> Result<PathBuf, SandboxError> {
    let beside = bin.join("psql");
    if beside.is_file() {
        return Ok(beside);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("psql"))
        .find(|p| p.is_file())
        .ok_or(SandboxError::MissingPostgres("psql"))
}

fn install() -> Result<Install, SandboxError> {
    let bin = bin_dir(std::env::var_os("HEADROOM_POSTGRES_BIN"))?;
    let psql = find_psql(&bin)?;
    let account = if is_root() {
        Some(
            ["postgres", "nobody"]
                .iter()
                .find_map(|name| account(name))
                .ok_or_else(|| SandboxError::Failed {
                    what: "finding an account to run PostgreSQL as".to_string(),
                    output:
                        "neither `postgres` nor `nobody` exists; PostgreSQL refuses to run as root"
                            .to_string(),
                })?,
        )
    } else {
        None
    };
    Ok(Install { bin, psql, account })
}

/// The uid and gid of the account `name`, if it exists.
fn account(name: &str) -> Option<Account> {
    let cname = CString::new(name).ok()?;
    // SAFETY: passwd is plain data (integers and pointers); all zeros is a valid value.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; `buf` outlives the reads of `pwd` below.
    let rc = unsafe {
        libc::getpwnam_r(
            cname.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return None;
    }
    // SAFETY: getpwnam_r succeeded, so pw_name points into `buf`, NUL-terminated.
    let found = unsafe { CStr::from_ptr(pwd.pw_name) }
        .to_string_lossy()
        .into_owned();
    Some(Account {
        name: found,
        uid: pwd.pw_uid,
        gid: pwd.pw_gid,
    })
}

/// A temporary directory the cluster's account owns (mode 0700). Under `/tmp` when that
/// account is another one: every parent must be searchable by it.
fn owned_tempdir(prefix: &str, account: Option<&Account>) -> Result<TempDir, SandboxError> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix);
    let dir = match account {
        Some(_) => builder.tempdir_in("/tmp"),
        None => builder.tempdir(),
    }
    .map_err(io("creating a temporary directory"))?;
    if let Some(a) = account {
        std::os::unix::fs::chown(dir.path(), Some(a.uid), Some(a.gid)).map_err(io(format!(
            "handing {} to {}",
            dir.path().display(),
            a.name
        )))?;
    }
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
        .map_err(io("setting a temporary directory's mode"))?;
    Ok(dir)
}

/// A command that runs as the cluster's account, in `cwd` (which that account can reach),
/// with no `PG*` variable of the caller's environment to steer it.
fn command_as(program: &Path, account: Option<&Account>, cwd: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(cwd);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            cmd.env_remove(key);
        }
    }
    if let Some(a) = account {
        // std drops the supplementary groups of root when the uid changes.
        cmd.uid(a.uid).gid(a.gid);
        cmd.env("HOME", cwd)
            .env("USER", &a.name)
            .env("LOGNAME", &a.name);
    }
    cmd
}

fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The template, made on first use; later calls wait for it or reuse it.
fn template(inst: &Install) -> Result<&'static Template, SandboxError> {
    TEMPLATE
        .get_or_init(|| make_template(inst).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| SandboxError::Failed {
            what: "initdb (the template cluster)".to_string(),
            output: e.clone(),
        })
}

fn make_template(inst: &Install) -> Result<Template, SandboxError> {
    // Kept past this function: the process's exit removes it (a static is never dropped).
    let template = Template {
        dir: owned_tempdir("headroom-pg-template-", inst.account.as_ref())?.keep(),
    };
    let out = command_as(
        &inst.bin.join("initdb"),
        inst.account.as_ref(),
        &template.dir,
    )
    .arg("--pgdata=data")
    .arg(format!("--username={SUPERUSER}"))
    .arg("--auth=trust")
    .arg("--encoding=UTF8")
    .arg("--locale=C")
    // Only tests write here: no fsync, and 1 MB WAL segments to copy instead of 16 MB.
    .arg("--no-sync")
    .arg("--wal-segsize=1")
    .stdin(Stdio::null())
    .output()
    .map_err(io("running initdb"))?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&template.dir);
        return Err(SandboxError::Failed {
            what: "initdb".to_string(),
            output: output_text(&out),
        });
    }
    // SAFETY: registers a plain function that runs once at exit and only removes a folder.
    unsafe {
        libc::atexit(remove_template);
    }
    Ok(template)
}

extern "C" fn remove_template() {
    if let Some(Ok(template)) = TEMPLATE.get() {
        let _ = std::fs::remove_dir_all(&template.dir);
    }
}

/// Quotes an SQL identifier: in double quotes, each `"` doubled.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes an SQL string literal (standard_conforming_strings is on): each `'` doubled.
fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Quotes a libpq connection-string value: in single quotes, `\` and `'` escaped.
fn conninfo_value(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Percent-encodes a URL component: everything but the unreserved characters.
fn url_component(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A running throwaway PostgreSQL cluster.
pub struct Postgres {
    /// A short name for messages and the directory's name.
    name: String,
    /// The binaries and the account they run as.
    inst: Install,
    /// Holds `data`, the unix socket, `server.log` and `tls`; removed on drop.
    dir: TempDir,
    port: u16,
    /// The postmaster while it runs; it leads a process group of its own, with its backends.
    child: Option<Child>,
    options: PostgresOptions,
    /// pg_hba.conf lines placed before the catch-all trust of TCP clients.
    hba_rules: Vec<String>,
    /// Whether TCP clients must use TLS (see [`Postgres::require_tls`]).
    tls: bool,
    /// Bumped at each reload and written into postgresql.conf, so that a new session that
    /// sees it proves the postmaster has read the files (pg_hba.conf with them).
    generation: u64,
}

impl Postgres {
    /// Starts a cluster with the default options.
    pub fn start(name: &str) -> Result<Postgres, SandboxError> {
        Postgres::start_with(name, PostgresOptions::default())
    }

    /// Copies the template into a new temporary directory and starts a server on a free
    /// port. On Linux the server is killed when the calling thread ends, so call this from
    /// the thread that owns the cluster's lifetime (the test's).
    pub fn start_with(name: &str, options: PostgresOptions) -> Result<Postgres, SandboxError> {
        let inst = install()?;
        let template = template(&inst)?;
        let dir = owned_tempdir(&format!("headroom-pg-{name}-"), inst.account.as_ref())?;
        // cp -a keeps the 0700 mode the server insists on, and the account's ownership.
        let out = command_as(Path::new("cp"), inst.account.as_ref(), dir.path())
            .arg("-a")
            .arg(template.dir.join("data"))
            .arg(dir.path().join("data"))
            .output()
            .map_err(io("copying the template cluster"))?;
        if !out.status.success() {
            return Err(SandboxError::Failed {
                what: format!("copying the template cluster for {name}"),
                output: output_text(&out),
            });
        }
        let mut cluster = Postgres {
            name: name.to_string(),
            inst,
            dir,
            port: 0,
            child: None,
            options,
            hba_rules: Vec::new(),
            tls: false,
            generation: 0,
        };
        // A port found free can be taken before the server binds it; try a few.
        let mut last = None;
        for _ in 0..3 {
            cluster.port = free_port()?;
            match cluster.launch() {
                Ok(()) => return Ok(cluster),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(SandboxError::MissingPostgres("postgres")))
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn tls_dir(&self) -> PathBuf {
        self.dir.path().join("tls")
    }

    /// Writes postgresql.conf and pg_hba.conf from the cluster's settings (the files exist
    /// in the copy, so they keep the account as their owner).
    fn write_config(&self) -> Result<(), SandboxError> {
        let options = &self.options;
        let shared_buffers_mb = options.max_connections.div_ceil(32).max(16);
        let quote = |path: &Path| format!("'{}'", path.display().to_string().replace('\'', "''"));
        let mut conf = format!(
            "# Written by the test sandbox at each start: a throwaway cluster, speed over safety.
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = {socket_dir}
max_connections = {max_connections}
shared_buffers = {shared_buffers_mb}MB
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
logging_collector = off
timezone = 'UTC'
log_timezone = 'UTC'
lc_messages = 'C'
headroom.generation = '{generation}'
",
            port = self.port,
            socket_dir = quote(self.dir.path()),
            max_connections = options.max_connections,
            generation = self.generation,
        );
        if self.tls {
            conf.push_str(&format!(
                "ssl = on\nssl_cert_file = {}\nssl_key_file = {}\n",
                quote(&self.tls_dir().join("server.crt")),
                quote(&self.tls_dir().join("server.key")),
            ));
        }
        let tcp = if self.tls { "hostssl" } else { "host" };
        let mut hba = String::from(
            "# Written by the test sandbox: the socket is trusted (the sandbox's own psql).\n\
             local all all trust\n",
        );
        for rule in &self.hba_rules {
            hba.push_str(&format!("{tcp} {rule}\n"));
        }
        hba.push_str(&format!("{tcp} all all 127.0.0.1/32 trust\n"));
        std::fs::write(self.data().join("postgresql.conf"), conf)
            .map_err(io("writing postgresql.conf"))?;
        std::fs::write(self.data().join("pg_hba.conf"), hba).map_err(io("writing pg_hba.conf"))?;
        Ok(())
    }

    /// Starts `postgres` on the data directory and waits until it says it is ready.
    fn launch(&mut self) -> Result<(), SandboxError> {
        self.write_config()?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .map_err(io("opening the server log"))?;
        let mut cmd = command_as(
            &self.inst.bin.join("postgres"),
            self.inst.account.as_ref(),
            self.dir.path(),
        );
        cmd.arg("-D")
            .arg(self.data())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            // Its own process group: freeze, thaw and the last kill reach the backends too.
            .process_group(0);
        #[cfg(target_os = "linux")]
        // SAFETY: prctl is async-signal-safe; it runs after the uid change (which would
        // clear it) and asks the kernel to kill the server when the thread that started it
        // exits, so a crashed test leaves none behind.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(io("starting postgres"))?;
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(SandboxError::Failed {
                    what: format!("postgres {} ({status})", self.name),
                    output: self.log_tail(),
                });
            }
            if self.says_ready(pid) {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(SandboxError::Failed {
                    what: format!("postgres {} was not ready within 60s", self.name),
                    output: self.log_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether postmaster.pid names `pid` and says `ready` (what `pg_ctl start -w` reads):
    /// written once the server accepts connections.
    fn says_ready(&self, pid: u32) -> bool {
        let Ok(text) = std::fs::read_to_string(self.data().join("postmaster.pid")) else {
            return false;
        };
        let lines: Vec<&str> = text.lines().collect();
        lines.first().map(|l| l.trim()) == Some(pid.to_string().as_str())
            && lines.get(7).map(|l| l.trim()) == Some("ready")
    }

    /// The last lines of the server's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The server's whole log so far (its stderr): what a test reads to count the
    /// statements a role sent once `log_statement = 'all'` is set for it.
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    /// The TCP port (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The postmaster's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.data()
    }

    /// The uid the server runs as: the `postgres` (or `nobody`) account when the tests run
    /// as root, else this process's own.
    pub fn os_uid(&self) -> u32 {
        match &self.inst.account {
            Some(a) => a.uid,
            // SAFETY: geteuid has no preconditions and cannot fail.
            None => unsafe { libc::geteuid() },
        }
    }

    /// A `postgres://` URL for `user` (no password) and `database`, both percent-encoded.
    pub fn url(&self, user: &str, database: &str) -> String {
        format!(
            "postgres://{}@127.0.0.1:{}/{}",
            url_component(user),
            self.port,
            url_component(database)
        )
    }

    /// The CA certificate (PEM) that signed the server's, once [`Postgres::require_tls`]
    /// made them.
    pub fn ca_pem(&self) -> Option<PathBuf> {
        self.tls.then(|| self.tls_dir().join("ca.crt"))
    }

    /// The `psql` command line that reaches this cluster as the superuser, for people.
    pub fn client_command(&self) -> String {
        format!(
            "psql -X -h {} -p {} -U {SUPERUSER} postgres",
            self.dir.path().display(),
            self.port
        )
    }

    /// The `psql` the sandbox runs (beside the server binaries where it is there, so no
    /// wrapper script starts first): what a benchmark times a plain client with.
    pub fn psql(&self) -> &Path {
        &self.inst.psql
    }

    /// Runs SQL (several statements allowed) as the superuser in the `postgres` database
    /// through the unix socket; returns the rows, one a line, fields tab-separated.
    pub fn exec(&self, sql: &str) -> Result<String, SandboxError> {
        self.exec_in("postgres", sql)
    }

    /// Runs SQL as the superuser in `database`; stops at the first error.
    pub fn exec_in(&self, database: &str, sql: &str) -> Result<String, SandboxError> {
        // A connection string, not a bare name: a database called `a=b` stays a name.
        let conninfo = format!(
            "host={} port={} user={} dbname={}",
            conninfo_value(&self.dir.path().display().to_string()),
            self.port,
            conninfo_value(SUPERUSER),
            conninfo_value(database)
        );
        let mut child = command_as(&self.inst.psql, None, Path::new("/"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-w",
                "-v",
                "ON_ERROR_STOP=1",
                "-F",
                "\t",
            ])
            .arg("-d")
            .arg(conninfo)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io("running psql"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(sql.as_bytes())
                .map_err(io("sending SQL to psql"))?;
        }
        let out = child.wait_with_output().map_err(io("running psql"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(SandboxError::Failed {
                what: format!("SQL on {} (database {database:?})", self.name),
                output: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }
    }

    /// Creates a database named `name` (quoted: any name will do).
    pub fn create_database(&self, name: &str) -> Result<(), SandboxError> {
        self.exec(&format!("CREATE DATABASE {}", ident(name)))
            .map(|_| ())
    }

    /// Creates a role that logs in with `password`, stored as `auth` says, and makes TCP
    /// clients logging in as it give that password (pg_hba.conf, reloaded). The socket
    /// stays trusted for the sandbox's own psql.
    pub fn create_login(
        &mut self,
        role: &str,
        password: &str,
        auth: PasswordAuth,
    ) -> Result<(), SandboxError> {
        // pg_hba.conf has no escape for a double quote in a name, nor for a line break.
        if role.contains(['"', '\n', '\r']) {
            return Err(SandboxError::Failed {
                what: format!("requiring a password of role {role:?}"),
                output: "pg_hba.conf cannot name a role holding a double quote or a line break"
                    .to_string(),
            });
        }
        self.exec(&format!(
            "SET password_encryption = {};\nCREATE ROLE {} LOGIN PASSWORD {};",
            literal(auth.encryption()),
            ident(role),
            literal(password)
        ))?;
        self.hba_rules
            .push(format!("all \"{role}\" 127.0.0.1/32 {}", auth.hba_method()));
        self.reload()
    }

    /// Makes a CA and a server certificate for 127.0.0.1 and localhost (in the cluster's
    /// `tls` folder; the CA at [`Postgres::ca_pem`]), turns TLS on and refuses TCP clients
    /// without it (`hostssl` lines only).
    pub fn require_tls(&mut self) -> Result<(), SandboxError> {
        let failed = |e: rcgen::Error| SandboxError::Failed {
            what: "making the test certificates".to_string(),
            output: e.to_string(),
        };
        let ca_key = rcgen::KeyPair::generate().map_err(failed)?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "headroom-test-ca");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).map_err(failed)?;
        let key = rcgen::KeyPair::generate().map_err(failed)?;
        let mut params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .map_err(failed)?;
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &*ca).map_err(failed)?;
        let dir = self.tls_dir();
        std::fs::create_dir_all(&dir).map_err(io("creating the TLS directory"))?;
        let files = [
            ("ca.crt", ca.pem(), 0o644),
            ("server.crt", cert.pem(), 0o644),
            // The server refuses a key others can read.
            ("server.key", key.serialize_pem(), 0o600),
        ];
        for (file, text, mode) in files {
            let path = dir.join(file);
            std::fs::write(&path, text).map_err(io(format!("writing {file}")))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .map_err(io(format!("setting the mode of {file}")))?;
        }
        if let Some(a) = &self.inst.account {
            for path in [dir.clone(), dir.join("server.crt"), dir.join("server.key")] {
                std::os::unix::fs::chown(&path, Some(a.uid), Some(a.gid)).map_err(io(format!(
                    "handing {} to {}",
                    path.display(),
                    a.name
                )))?;
            }
        }
        self.tls = true;
        self.reload()
    }

    /// Rewrites the configuration files, has the server read them again (SIGHUP), and
    /// waits until a new session sees this reload's generation: the postmaster reads
    /// pg_hba.conf in the same step, before it starts that session.
    pub fn reload(&mut self) -> Result<(), SandboxError> {
        self.generation += 1;
        self.write_config()?;
        if let Some(child) = &self.child {
            crate::signal(child, libc::SIGHUP);
        }
        let want = self.generation.to_string();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let seen = self.exec("SHOW headroom.generation")?;
            if seen.trim() == want {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(SandboxError::Failed {
                    what: format!("reloading {} (generation {want})", self.name),
                    output: self.log_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server with a fast shutdown (SIGINT: sessions ended, socket removed), then
    /// SIGKILL after 20 s: a real stopped process, connections refused.
    pub fn stop(&mut self) {
        self.shut_down(libc::SIGINT, Duration::from_secs(20));
    }

    /// Starts the server again on the same data directory and port.
    pub fn restart(&mut self) -> Result<(), SandboxError> {
        self.stop();
        self.launch()
    }

    /// Freezes the server and its sessions (SIGSTOP to its process group): connections and
    /// queries hang, as on an overloaded host.
    pub fn freeze(&self) {
        if let Some(child) = &self.child {
            signal_group(child, libc::SIGSTOP);
        }
    }

    /// Resumes a frozen server.
    pub fn thaw(&self) {
        if let Some(child) = &self.child {
            signal_group(child, libc::SIGCONT);
        }
    }

    /// Sends `sig` to the postmaster (thawed first), waits for it up to `patience`, then
    /// kills what is left of its process group.
    fn shut_down(&mut self, sig: libc::c_int, patience: Duration) {
        if let Some(mut child) = self.child.take() {
            signal_group(&child, libc::SIGCONT);
            crate::signal(&child, sig);
            let deadline = Instant::now() + patience;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            signal_group(&child, libc::SIGKILL);
            let _ = child.wait();
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal_group(&child, libc::SIGKILL);
            let _ = child.wait();
        }
    }
}

impl Drop for Postgres {
    /// An immediate shutdown (SIGQUIT, what `pg_ctl stop -m immediate` sends): the
    /// postmaster ends its backends and removes its shared memory; then the directory goes.
    fn drop(&mut self) {
        self.shut_down(libc::SIGQUIT, Duration::from_secs(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_without_the_binaries_is_refused_naming_the_package() {
        let empty = tempfile::tempdir().expect("tempdir");
        let err = bin_dir(Some(empty.path().as_os_str().to_owned()))
            .expect_err("an empty folder holds no initdb");
        assert_eq!(
            err.to_string(),
            "initdb not found: install the postgresql and postgresql-client packages \
             (apt-get install postgresql postgresql-client) or set HEADROOM_POSTGRES_BIN \
             to a folder holding initdb and postgres"
        );
    }

    #[test]
    fn identifiers_double_their_quotes() {
        assert_eq!(ident(r#"a"b""c"#), r#""a""b""""c""#);
    }

    #[test]
    fn connection_string_values_escape_quotes_and_backslashes() {
        assert_eq!(conninfo_value(r"it's a\b"), r"'it\'s a\\b'");
    }

    #[test]
    fn url_components_keep_only_unreserved_characters() {
        assert_eq!(
            url_component("a b/é?@:x-_.~"),
            "a%20b%2F%C3%A9%3F%40%3Ax-_.~"
        );
    }
}
