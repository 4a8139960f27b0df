//! A whole fleet, end to end: throwaway mariadbd servers get `SHARDS` shards (one schema
//! each) of `TABLES` tables, each table an `INT UNSIGNED` auto-increment key and a foreign
//! key to the previous table (two measured columns per table); then the release `headroom`
//! binary runs against them as a daemon, and the bench reads what an operator would:
//! - the first full poll (until /readyz), and each shard's poll duration on /api/shards;
//! - its own CPU per full poll in steady state (from /proc, over whole intervals during
//!   which nothing else talks to it) and per measured column, and its resident memory;
//! - /metrics (size, gzipped size, time), /api/columns?limit=100 and the whole /api/columns;
//! - the floor: each shard's inventory statements through one plain `mariadb` client
//!   process, [`CONCURRENCY`] at once as headroom polls, and Debian's
//!   `prometheus-mysqld-exporter` (auto_increment collector only, one per server, scraped
//!   at once), in the same run; the ratios are of wall-clock times.
//!
//! `cargo bench --bench fleet` runs 200 shards x 250 tables on 4 servers (100,000 measured
//! columns; `-- SHARDS TABLES SERVERS` for another size); under `cargo test` it runs 4 x 5
//! on one server as a smoke test. Prints figures; asserts only what it read.

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use headroom::inventory::SchemaFilter;
use headroom::mysql::ServerVersion;
use headroom::mysql::catalog::{self, Statement};
use headroom_sandbox::MariaDb;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_headroom");
const EXPORTER: &str = "prometheus-mysqld-exporter";
/// Measured columns of a shard of `tables` tables: every auto-increment key, and every
/// foreign key (the first table has none).
fn measured(tables: usize) -> usize {
    (2 * tables).saturating_sub(1)
}
/// Client sessions creating tables on each server at once.
const CREATORS: usize = 3;
/// headroom's shard polls in flight.
const CONCURRENCY: usize = 8;

/// headroom's poll interval during the bench: long enough for a full round of the big
/// fleet, short under `cargo test`.
fn interval_secs(full: bool) -> u64 {
    if full { 20 } else { 2 }
}

struct Size {
    shards: usize,
    tables: usize,
    servers: usize,
    full: bool,
}

fn size() -> Size {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
    let numbers: Vec<usize> = args.iter().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (shards, tables, servers) = if full { (200, 250, 4) } else { (4, 5, 1) };
    Size {
        shards: numbers.first().copied().unwrap_or(shards),
        tables: numbers.get(1).copied().unwrap_or(tables),
        servers: numbers.get(2).copied().unwrap_or(servers).max(1),
        full,
    }
}

/// The script that creates the tables of shard schemas `schemas` (each `TABLES` tables in
/// a chain of foreign keys).
fn create_script(schemas: &[usize], tables: usize) -> String {
    let mut sql = String::new();
    for &s in schemas {
        sql.push_str(&format!("CREATE DATABASE s{s:03}; USE s{s:03};\n"));
        for t in 0..tables {
            let parent = if t == 0 {
                String::new()
            } else {
                format!(", FOREIGN KEY (parent_id) REFERENCES t{:04} (id)", t - 1)
            };
            sql.push_str(&format!(
                "CREATE TABLE t{t:04} (id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, \
                 parent_id INT UNSIGNED, note VARCHAR(20), KEY (parent_id){parent}) \
                 AUTO_INCREMENT = {};\n",
                1_000 + s * 10 + t
            ));
        }
    }
    sql
}

/// The shard schemas on server `server` of `servers`.
fn schemas_of(server: usize, servers: usize, shards: usize) -> Vec<usize> {
    (0..shards).filter(|s| s % servers == server).collect()
}

fn secs(f: impl FnOnce()) -> f64 {
    let started = Instant::now();
    f();
    started.elapsed().as_secs_f64()
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// A statement with its `?` replaced by its bound values, as a plain client sends it.
fn inline(statement: &Statement) -> String {
    let mut out = String::new();
    let mut binds = statement.binds.iter();
    for c in statement.sql.chars() {
        match c {
            '?' => {
                let value = binds.next().expect("one value per placeholder");
                out.push('\'');
                out.push_str(&value.replace('\\', "\\\\").replace('\'', "''"));
                out.push('\'');
            }
            c => out.push(c),
        }
    }
    out
}

fn client(port: u16, sql: &str) {
    let out = Command::new("mariadb")
        .args([
            "--no-defaults",
            "--user=root",
            "--host=127.0.0.1",
            "--batch",
        ])
        .arg(format!("--port={port}"))
        .arg("-e")
        .arg(sql)
        .output()
        .expect("running the mariadb client");
    assert!(
        out.status.success(),
        "mariadb client: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// User + system CPU seconds so far, from /proc.
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.0.id())).expect("stat");
        // The fields after the command name (which is in parentheses).
        let after = &stat[stat.rfind(')').expect("comm") + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks: u64 =
            fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        ticks as f64 / hz
    }

    /// Resident memory in bytes, from /proc.
    fn rss_bytes(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .expect("VmRSS")
    }
}

fn exporter(mysql_port: u16) -> Option<(Proc, u16)> {
    let port = free_port();
    let child = Command::new(EXPORTER)
        .env(
            "DATA_SOURCE_NAME",
            format!("root@tcp(127.0.0.1:{mysql_port})/"),
        )
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--config.my-cnf=/dev/null")
        .args([
            "--no-collect.global_status",
            "--no-collect.global_variables",
            "--no-collect.slave_status",
            "--no-collect.info_schema.innodb_cmp",
            "--no-collect.info_schema.innodb_cmpmem",
            "--no-collect.info_schema.query_response_time",
            "--collect.auto_increment.columns",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let proc = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((proc, port));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn main() {
    let size = size();
    if !headroom_sandbox::available() {
        println!("fleet bench skipped: no MariaDB binaries (apt-get install mariadb-server)");
        return;
    }
    let names: Vec<String> = (0..size.servers).map(|i| format!("fleet-{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let servers = headroom_sandbox::start_many(&names).expect("starting mariadbd");
    let version = servers[0].exec("SELECT VERSION()").expect("version");
    let per_server = size.shards.div_ceil(size.servers) * size.tables + 1_000;
    println!(
        "headroom fleet bench: {} shards x {} tables ({} measured columns) on {} MariaDB {} servers",
        size.shards,
        size.tables,
        size.shards * measured(size.tables),
        size.servers,
        version.trim()
    );
    let took = secs(|| create(&servers, &size, per_server));
    println!(
        "{:<46} {:>10.1} s ({:.0} tables/s)",
        "creating the fleet",
        took,
        (size.shards * size.tables) as f64 / took
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &servers, &size);
    let floor = floor(&servers, &size, version.trim());
    let exporter_secs = if size.full {
        exporters(&servers)
    } else {
        println!("mysqld_exporter: skipped under cargo test");
        None
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(daemon(&config, &size, floor, exporter_secs));
    drop(servers);
}

/// Creates every shard schema: each server's share split over [`CREATORS`] sessions, all
/// servers at once; table caches sized to what each server holds.
fn create(servers: &[MariaDb], size: &Size, per_server: usize) {
    std::thread::scope(|scope| {
        let mut jobs = Vec::new();
        for (i, server) in servers.iter().enumerate() {
            server
                .exec(&format!(
                    "SET GLOBAL table_open_cache = GREATEST(@@table_open_cache, {per_server}); \
                     SET GLOBAL table_definition_cache = GREATEST(@@table_definition_cache, {per_server});"
                ))
                .expect("sizing the table caches");
            let schemas = schemas_of(i, servers.len(), size.shards);
            for part in 0..CREATORS {
                let mine: Vec<usize> = schemas
                    .iter()
                    .copied()
                    .skip(part)
                    .step_by(CREATORS)
                    .collect();
                let sql = create_script(&mine, size.tables);
                jobs.push(scope.spawn(move || server.exec(&sql)));
            }
        }
        for job in jobs {
            job.join()
                .expect("a creating thread")
                .expect("creating tables");
        }
    });
}

fn write_config(dir: &Path, servers: &[MariaDb], size: &Size) -> std::path::PathBuf {
    let mut toml = format!(
        "[server]\nlisten = \"127.0.0.1:{}\"\n[poll]\ninterval = \"{}s\"\n\
         query_timeout = \"60s\"\nconcurrency = {CONCURRENCY}\n[state]\npath = \"{}\"\n",
        free_port(),
        interval_secs(size.full),
        dir.join("state.json").display()
    );
    for s in 0..size.shards {
        let server = &servers[s % servers.len()];
        toml.push_str(&format!(
            "[[shards]]\nname = \"shard-{s:03}\"\nurl = \"{}\"\nschemas = [\"s{s:03}\"]\n",
            server.url("root", None)
        ));
    }
    let path = dir.join("headroom.toml");
    std::fs::write(&path, toml).expect("config");
    path
}

/// Each shard's statements through one `mariadb` client process, [`CONCURRENCY`] shards at
/// once; returns (wall seconds, the sum of the per-shard seconds).
fn floor(servers: &[MariaDb], size: &Size, version: &str) -> (f64, f64) {
    let version = ServerVersion::parse(version);
    let jobs: Vec<(u16, String)> = (0..size.shards)
        .map(|s| {
            let filter = SchemaFilter::from_config(Some(&vec![format!("s{s:03}")]));
            let sql: Vec<String> = catalog::statements(&filter, version)
                .iter()
                .map(|st| format!("{};", inline(st)))
                .collect();
            (servers[s % servers.len()].port(), sql.join("\n"))
        })
        .collect();
    // One untimed round: the same warm caches for headroom after it.
    for (port, sql) in jobs.iter().take(CONCURRENCY) {
        client(*port, sql);
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let total = std::sync::Mutex::new(0.0f64);
    let wall = secs(|| {
        std::thread::scope(|scope| {
            for _ in 0..CONCURRENCY {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((port, sql)) = jobs.get(i) else {
                            break;
                        };
                        let took = secs(|| client(*port, sql));
                        *total.lock().expect("lock") += took;
                    }
                });
            }
        });
    });
    let total = *total.lock().expect("lock");
    println!(
        "{:<46} {:>10.2} s wall, {:.2} s summed over shards",
        "floor: every shard's statements, mariadb client", wall, total
    );
    (wall, total)
}

/// One mysqld_exporter per server, all scraped at once (as one Prometheus would); the
/// wall seconds until the last scrape ends.
fn exporters(servers: &[MariaDb]) -> Option<f64> {
    if Command::new(EXPORTER).arg("--version").output().is_err() {
        println!(
            "mysqld_exporter: not installed (apt-get install prometheus-mysqld-exporter), skipped"
        );
        return None;
    }
    let running: Vec<(Proc, u16)> = servers
        .iter()
        .map(|s| exporter(s.port()))
        .collect::<Option<_>>()?;
    let scrape = |port: u16| {
        let out = Command::new("curl")
            .args(["-sS", "--fail", "--max-time", "900", "-o", "/dev/null"])
            .arg(format!("http://127.0.0.1:{port}/metrics"))
            .status()
            .expect("curl");
        assert!(out.success(), "scraping mysqld_exporter");
    };
    let all = || {
        std::thread::scope(|scope| {
            for (_, port) in &running {
                scope.spawn(|| scrape(*port));
            }
        })
    };
    // One untimed round: the same warm caches.
    all();
    let wall = secs(all);
    println!(
        "{:<46} {:>10.2} s wall ({} servers at once)",
        "mysqld_exporter auto_increment scrapes",
        wall,
        servers.len()
    );
    Some(wall)
}

async fn get(client: &reqwest::Client, url: &str, gzip: bool) -> (f64, Vec<u8>) {
    let started = Instant::now();
    let mut request = client.get(url);
    if gzip {
        request = request.header("Accept-Encoding", "gzip");
    }
    let response = request.send().await.expect("GET");
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    let body = response.bytes().await.expect("body").to_vec();
    (started.elapsed().as_secs_f64(), body)
}

async fn daemon(config: &Path, size: &Size, floor: (f64, f64), exporter: Option<f64>) {
    let text = std::fs::read_to_string(config).expect("config");
    let listen = text
        .lines()
        .find_map(|l| l.strip_prefix("listen = "))
        .map(|l| l.trim_matches('"').to_string())
        .expect("listen");
    let base = format!("http://{listen}");
    let started = Instant::now();
    let mut stderr = tempfile::tempfile().expect("log file");
    let daemon = Proc(
        Command::new(BIN)
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(stderr.try_clone().expect("log file"))
            .spawn()
            .expect("starting headroom"),
    );
    let http = reqwest::Client::builder()
        .no_gzip()
        .build()
        .expect("client");
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            break;
        }
        if started.elapsed() > Duration::from_secs(1200) {
            let mut log = String::new();
            let _ = std::io::Seek::rewind(&mut stderr);
            let _ = stderr.read_to_string(&mut log);
            panic!("headroom never became ready: {log}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first = started.elapsed().as_secs_f64();
    println!(
        "{:<46} {:>10.2} s",
        "headroom: first poll of every shard (/readyz)", first
    );
    let (_, shards) = get(&http, &format!("{base}/api/shards"), false).await;
    let shards: Value = serde_json::from_slice(&shards).expect("shards JSON");
    let list = shards["shards"].as_array().expect("shards");
    assert_eq!(list.len(), size.shards);
    let summed: f64 = list
        .iter()
        .map(|s| s["poll_duration_seconds"].as_f64().expect("a duration"))
        .sum();
    let columns: usize = list
        .iter()
        .map(|s| s["column_count"].as_u64().expect("count") as usize)
        .sum();
    assert_eq!(columns, size.shards * measured(size.tables));
    println!(
        "{:<46} {:>10.2} s summed over shards ({:.2} x floor's sum)",
        "headroom: shard poll durations",
        summed,
        summed / floor.1
    );
    if let Some(theirs) = exporter {
        println!(
            "{:<46} {:>10.2} x",
            "mysqld_exporter / headroom (wall)",
            theirs / first
        );
    }
    steady(&daemon, columns, size.full).await;
    endpoints(&http, &base, columns).await;
    println!(
        "{:<46} {:>10.1} MB ({:.0} B per column, after the polls above)",
        "headroom resident memory",
        daemon.rss_bytes() as f64 / 1e6,
        daemon.rss_bytes() as f64 / columns as f64
    );
}

/// Headroom's own CPU over whole intervals in which nothing else talks to it.
async fn steady(daemon: &Proc, columns: usize, full: bool) {
    let rounds: u64 = if full { 3 } else { 1 };
    let cpu = daemon.cpu_seconds();
    tokio::time::sleep(Duration::from_secs(interval_secs(full) * rounds)).await;
    let per_round = (daemon.cpu_seconds() - cpu) / rounds as f64;
    println!(
        "{:<46} {:>10.3} s ({:.0} ns per column per poll)",
        "headroom CPU per full poll, steady state",
        per_round,
        per_round * 1e9 / columns as f64
    );
}

async fn endpoints(http: &reqwest::Client, base: &str, columns: usize) {
    let (took, body) = get(http, &format!("{base}/metrics"), false).await;
    println!(
        "{:<46} {:>10.3} s, {:.1} MB ({:.0} B per column)",
        "GET /metrics",
        took,
        body.len() as f64 / 1e6,
        body.len() as f64 / columns as f64
    );
    let (_, gz) = get(http, &format!("{base}/metrics"), true).await;
    println!(
        "{:<46} {:>10.1} MB",
        "GET /metrics, gzip",
        gz.len() as f64 / 1e6
    );
    let (took, _) = get(http, &format!("{base}/api/columns?limit=100"), false).await;
    println!("{:<46} {:>10.3} s", "GET /api/columns?limit=100", took);
    let (took, body) = get(http, &format!("{base}/api/columns"), false).await;
    println!(
        "{:<46} {:>10.3} s, {:.1} MB",
        "GET /api/columns (every column)",
        took,
        body.len() as f64 / 1e6
    );
}
