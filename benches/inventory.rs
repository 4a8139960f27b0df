//! The inventory of one big shard, against its floor and against mysqld_exporter: a
//! throwaway mariadbd gets `N` tables (one client session fed one generated script), then
//! each round measures, in turn:
//! - the floor: the statements [`headroom::mysql::catalog::read`] sends, through one plain
//!   `mariadb --batch` process, the SQL on its standard input (and each family on its own,
//!   to show which one costs what);
//! - headroom: `headroom::mysql::catalog::read`, the production path, over a
//!   [`headroom::mysql::Connector`] session;
//! - Debian's `prometheus-mysqld-exporter` with only `--collect.auto_increment.columns`,
//!   one scrape of its /metrics (skipped with a note when it is not installed).
//!
//! and prints the medians and their ratios; then what a poll adds for strict mode
//! (`mysql::sql_mode::read`) and what each ticket read costs for opening a new session.
//! Then, with the table caches sized, the whole poll, with its index dives: every table gets
//! a row and its indexed `user_id` becomes a reference column (a `[[references]]` rule, a
//! ticket table on the same server), and a round measures
//! - the floor: every statement a steady-state shard poll sends (the inventory's,
//!   `SELECT VERSION()`, `@@GLOBAL.sql_mode`, and its share of the dives:
//!   `mysql::dives::dive_sql`, `ceil(tables / slots)` columns), through one `mariadb`
//!   process; and the same with the ticket server's reads;
//! - headroom: [`headroom::poller::Poller::poll_once`], the production path, after a first
//!   poll that read every column (printed too), with `poll.reread_within` 10 times the
//!   interval: the shard's poll as `headroom_shard_poll_duration_seconds` measures it (what
//!   the shard's `poll_duration_seconds` holds), and the whole `poll_once` (the ticket
//!   server's read, storing and the metrics too);
//!
//! and prints the whole poll's ratio to the floor.
//!
//! Asserts nothing about time.
//!
//! `cargo bench --bench inventory` runs 5,000 tables (`-- 20000` for another size, `-- dives`
//! for the dives alone; `scripts/bench.sh` wraps it); under `cargo test` it runs once with 30
//! tables, a smoke test of a few seconds.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;

use headroom::inventory::{ColumnId, SchemaFilter};
use headroom::mysql::catalog::{self, Statement};
use headroom::mysql::dives as maxima;
use headroom::mysql::{Connector, ServerVersion};
use headroom::poller::Poller;
use headroom::state::Store;
use headroom_sandbox::MariaDb;

/// Integer columns per table (and one VARCHAR that headroom ignores).
const TABLE: &str = "(id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, \
user_id BIGINT NOT NULL, shop_id INT NOT NULL, quantity SMALLINT NOT NULL, \
note VARCHAR(40), KEY (user_id))";
const INT_COLUMNS_PER_TABLE: usize = 4;

/// Sessions that create the tables side by side: creating a table waits on the disk more
/// than on a core.
const CREATORS: usize = 4;

/// The SQL script that creates the tables `t` of schema `etsy` with `t % CREATORS == part`:
/// one session, one batch.
fn create_script(tables: usize, part: usize) -> String {
    let mut sql = String::with_capacity(tables * 200 / CREATORS);
    sql.push_str("USE etsy;\n");
    for t in (part..tables).step_by(CREATORS) {
        sql.push_str(&format!(
            "CREATE TABLE t{t:06} {TABLE} AUTO_INCREMENT={};\n",
            1_000 + t
        ));
    }
    sql
}

/// A statement with its `?` replaced by its bound values as string literals: what a plain
/// client sends for it. The binds are schema names this bench chose, the placeholders the
/// only `?` in headroom's statements.
fn inline(statement: &Statement) -> String {
    let mut out = String::with_capacity(statement.sql.len() + 64);
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

/// Runs `sql` through one `mariadb --batch` process over TCP, fed on its standard input (a
/// poll's dives are longer than one command-line argument may be); returns its output size.
fn client(port: u16, sql: &str) -> usize {
    use std::io::Write;
    let mut child = Command::new("mariadb")
        .args([
            "--no-defaults",
            "--user=root",
            "--host=127.0.0.1",
            "--batch",
        ])
        .arg(format!("--port={port}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running the mariadb client");
    // Written by a thread of its own: the client answers while it reads, and would block
    // on a full pipe that nobody reads.
    let stdin = child.stdin.take();
    let out = std::thread::scope(|scope| {
        scope.spawn(move || {
            if let Some(mut stdin) = stdin {
                stdin.write_all(sql.as_bytes()).expect("sending the SQL");
            }
        });
        child
            .wait_with_output()
            .expect("running the mariadb client")
    });
    assert!(
        out.status.success(),
        "mariadb client: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout.len()
}

/// Seconds that `f` took.
fn secs(f: impl FnOnce()) -> f64 {
    let started = Instant::now();
    f();
    started.elapsed().as_secs_f64()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// Debian's mysqld_exporter with only the auto_increment collector, killed when dropped.
struct Exporter {
    child: Child,
    port: u16,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const EXPORTER: &str = "prometheus-mysqld-exporter";

impl Exporter {
    fn start(mysql_port: u16) -> Option<Exporter> {
        let port = free_port();
        let child = Command::new(EXPORTER)
            .env(
                "DATA_SOURCE_NAME",
                format!("root@tcp(127.0.0.1:{mysql_port})/"),
            )
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--config.my-cnf=/dev/null")
            // Everything on by default off; only the auto_increment collector on.
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
            .stderr(Stdio::piped())
            .spawn()
            .ok()?;
        let mut exporter = Exporter { child, port };
        // Until it listens (its start is not what is measured).
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(exporter);
            }
            if let Ok(Some(_)) = exporter.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = exporter.child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                println!("mysqld_exporter exited: {err}");
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// One scrape of /metrics with curl; returns the auto_increment series it held.
    fn scrape(&self) -> usize {
        let out = Command::new("curl")
            .args(["-sS", "--fail", "--max-time", "600"])
            .arg(format!("http://127.0.0.1:{}/metrics", self.port))
            .output()
            .expect("running curl");
        assert!(out.status.success(), "scraping mysqld_exporter failed");
        let body = String::from_utf8_lossy(&out.stdout);
        body.lines()
            .filter(|l| l.starts_with("mysql_info_schema_auto_increment_column{"))
            .count()
    }
}

/// Polls per `reread_within` window in the dives round: `reread_within = 10 × interval`.
const SLOTS: usize = 10;

/// Rows for every table, and a ticket table (`BIGINT`, as the reference columns: no type
/// mismatch, so no column is at risk) on the same server.
fn dive_data(server: &MariaDb, tables: usize) {
    std::thread::scope(|scope| {
        let parts: Vec<_> = (0..CREATORS)
            .map(|part| {
                scope.spawn(move || {
                    let mut sql = String::from("BEGIN;\n");
                    for t in (part..tables).step_by(CREATORS) {
                        sql.push_str(&format!(
                            "INSERT INTO etsy.t{t:06} (user_id, shop_id, quantity) VALUES ({}, 7, 1);\n",
                            2_000_000 + t
                        ));
                    }
                    sql.push_str("COMMIT;\n");
                    server.exec(&sql)
                })
            })
            .collect();
        for part in parts {
            part.join().expect("a thread").expect("inserting the rows");
        }
    });
    server
        .exec(
            "CREATE DATABASE tickets;
CREATE TABLE tickets.Tickets64 (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  stub CHAR(1) NOT NULL DEFAULT '', UNIQUE KEY stub (stub)) AUTO_INCREMENT=1000;",
        )
        .expect("the ticket table");
}

/// A headroom poller for the shard's `etsy` schema, its `user_id` columns references.
fn dive_poller(server: &MariaDb) -> (Poller, Store) {
    let toml = format!(
        "[poll]\ninterval = \"60s\"\nreread_within = \"{}s\"\nquery_timeout = \"600s\"\nshard_timeout = \"600s\"\n\
         [[shards]]\nname = \"big\"\nurl = \"{}\"\nschemas = [\"etsy\"]\n\
         [[sources]]\nname = \"tickets\"\nkind = \"ticket_server\"\nservers = [\"{}\"]\ntable = \"Tickets64\"\n\
         [[references]]\nsource = \"tickets\"\ncolumns = [\"etsy.*.user_id\"]\n",
        60 * SLOTS,
        server.url("root", None),
        server.url("root", Some("tickets")),
    );
    let settings =
        Arc::new(headroom::config::from_toml_str(&toml, &|_| None).expect("the bench's settings"));
    let store = Store::new(&settings);
    let poller = Poller::one_shot(Arc::clone(&settings), store.clone()).expect("a poller");
    (poller, store)
}

/// `SELECT` statements the server has run so far.
fn selects(server: &MariaDb) -> u64 {
    let out = server
        .exec("SHOW GLOBAL STATUS LIKE 'Com_select'")
        .expect("the status");
    out.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The SQL a plain client sends for the ticket server's read: the statements of
/// `mysql::ticket::read`, its table's names inlined.
fn ticket_sql() -> String {
    use headroom::mysql::ticket;
    let binds = || vec!["tickets".to_string(), "Tickets64".to_string()];
    let statement = |sql: &str| Statement {
        family: "ticket",
        sql: sql.to_string(),
        binds: binds(),
    };
    format!(
        "{};\n{};\n{};\n",
        inline(&statement(ticket::TICKET_COLUMN_SQL)),
        inline(&statement(ticket::COUNTER_SQL)),
        ticket::highest_sql("tickets", "Tickets64", "id"),
    )
}

/// The whole poll's round: floor and headroom's steady-state poll over `tables` reference
/// columns.
fn measure_dives(server: &MariaDb, tables: usize, runs: usize, inventory_sql: &str) {
    dive_data(server, tables);
    let port = server.port();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (poller, store) = dive_poller(server);
    // Polls once; returns how long `poll_once` took and the shard's poll as the
    // `headroom_shard_poll_duration_seconds` metric has it.
    let poll = || {
        let took = secs(|| runtime.block_on(poller.poll_once()));
        let snapshot = store.read();
        let shard = &snapshot.shards[0];
        assert!(shard.up, "the dives poll failed: {:?}", shard.last_error);
        assert_eq!(shard.column_count, 2 * tables, "{:?}", shard.unresolved);
        let metric = shard
            .poll_duration_seconds
            .expect("a polled shard's duration");
        (took, metric)
    };
    // The share of the columns one steady-state poll reads, spread over the shard.
    let share = tables.div_ceil(SLOTS);
    let some: Vec<ColumnId> = (0..share)
        .map(|i| ColumnId::new("etsy", &format!("t{:06}", i * SLOTS), "user_id"))
        .collect();
    let all: Vec<ColumnId> = (0..tables)
        .map(|t| ColumnId::new("etsy", &format!("t{t:06}"), "user_id"))
        .collect();
    let dives = |columns: &[ColumnId]| -> String {
        columns
            .chunks(50)
            .map(|batch| format!("{};\n", maxima::dive_sql(batch)))
            .collect()
    };
    // What the shard poll sends besides the catalog's statements: the version (read with
    // the catalog) and the strict mode.
    let poll_sql = format!(
        "{inventory_sql}\n{};\n{};\n",
        headroom::mysql::connect::VERSION_SQL,
        headroom::mysql::sql_mode::SQL_MODE_SQL
    );
    let floor_sql = format!("{poll_sql}{}", dives(&some));
    let floor_sources_sql = format!("{}{floor_sql}", ticket_sql());
    let floor_all_sql = format!("{poll_sql}{}", dives(&all));
    client(port, &floor_all_sql);
    let (first, _) = poll();
    let before = selects(server);
    poll();
    let statements = selects(server).saturating_sub(before);
    // The same statements through headroom's own readers, without the computation.
    let url = url::Url::parse(&server.url("root", None)).expect("a URL");
    let timeout = Duration::from_secs(600);
    let connector = Connector::new(&url, None, timeout).expect("a connector");
    let filter = SchemaFilter::Only(vec!["etsy".to_string()]);
    let queries = || {
        runtime.block_on(async {
            let mut session = connector.acquire().await.expect("a session");
            catalog::read(&mut session, &filter, timeout)
                .await
                .expect("the inventory");
            headroom::mysql::sql_mode::read(&mut session, timeout)
                .await
                .expect("the sql_mode");
            let read = maxima::read(&mut session, &some, timeout).await;
            assert_eq!(read.expect("the dives").len(), share);
            session.release();
        })
    };
    queries();
    let mut floor = Vec::new();
    let mut floor_sources = Vec::new();
    let mut floor_all = Vec::new();
    let mut shard_polls = Vec::new();
    let mut polls = Vec::new();
    let mut reads = Vec::new();
    // Each round runs everything once, in turn, so that the machine's moods fall on all.
    for _ in 0..runs {
        floor.push(secs(|| {
            client(port, &floor_sql);
        }));
        let (took, metric) = poll();
        polls.push(took);
        shard_polls.push(metric);
        floor_sources.push(secs(|| {
            client(port, &floor_sources_sql);
        }));
        reads.push(secs(queries));
        floor_all.push(secs(|| {
            client(port, &floor_all_sql);
        }));
    }
    runtime.block_on(poller.close());
    let (floor, floor_sources, floor_all) =
        (median(floor), median(floor_sources), median(floor_all));
    let (shard_poll, whole, reads) = (median(shard_polls), median(polls), median(reads));
    println!(
        "-- the whole poll: {tables} indexed reference columns, reread_within = {SLOTS} intervals"
    );
    println!(
        "{:<52} {:>10.3} s",
        format!("floor: the shard poll's statements ({share} dives)"),
        floor
    );
    println!(
        "{:<52} {:>10.3} s",
        "floor: the same and the ticket server's", floor_sources
    );
    println!(
        "{:<52} {:>10.3} s",
        format!("floor: inventory + all {tables} dives"),
        floor_all
    );
    println!(
        "{:<52} {:>10.3} s",
        "headroom: first poll (every column dived)", first
    );
    println!(
        "{:<52} {:>10.3} s",
        "  the shard poll's queries alone, headroom's readers", reads
    );
    println!(
        "{:<52} {:>10.3} s",
        "headroom: the shard poll (its poll_duration_seconds)", shard_poll
    );
    println!(
        "{:<52} {:>10.3} s",
        "headroom: Poller::poll_once (the ticket server too)", whole
    );
    println!(
        "{:<52} {:>10}",
        "  SELECT statements, steady-state poll_once", statements
    );
    println!(
        "{:<52} {:>10.2} x",
        "whole poll: shard poll / floor",
        shard_poll / floor
    );
    println!(
        "{:<52} {:>10.2} x",
        "  poll_once / floor with the ticket server",
        whole / floor_sources
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
    // The index dives alone, without the inventory's rounds and mysqld_exporter.
    let dives_only = args.iter().any(|a| a == "dives");
    let tables = args
        .iter()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(if full { 5_000 } else { 30 });
    let runs = if !full {
        1
    } else if tables > 10_000 {
        3
    } else {
        5
    };
    if !headroom_sandbox::available() {
        println!("inventory bench skipped: no MariaDB binaries (apt-get install mariadb-server)");
        return;
    }
    let mut server = MariaDb::install("inventory-bench").expect("installing mariadbd");
    server.boot().expect("booting mariadbd");
    let port = server.port();
    let version = server.exec("SELECT VERSION()").expect("version");
    let version_text = version.trim();
    println!(
        "headroom inventory bench: one shard of {tables} tables x {INT_COLUMNS_PER_TABLE} integer columns, \
         MariaDB {version_text}, median of {runs} run(s)"
    );

    let took = secs(|| {
        server.exec("CREATE DATABASE etsy").expect("the schema");
        std::thread::scope(|scope| {
            let server = &server;
            let parts: Vec<_> = (0..CREATORS)
                .map(|part| scope.spawn(move || server.exec(&create_script(tables, part))))
                .collect();
            for part in parts {
                part.join()
                    .expect("a creating thread")
                    .expect("creating the tables");
            }
        });
    });
    println!(
        "{:<44} {:>10.2} s ({:.0} tables/s, {CREATORS} client sessions)",
        "creating the tables",
        took,
        tables as f64 / took
    );

    let filter = SchemaFilter::AllButSystem;
    let statements = catalog::statements(&filter, ServerVersion::parse(version_text));
    let inlined: Vec<(&str, String)> = statements
        .iter()
        .map(|s| (s.family, format!("{};", inline(s))))
        .collect();
    let all: String = inlined
        .iter()
        .map(|(_, s)| s.as_str())
        .collect::<Vec<_>>()
        .join("\n");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let url = url::Url::parse(&server.url("root", None)).expect("a URL");
    let timeout = Duration::from_secs(600);
    let connector = Connector::new(&url, None, timeout).expect("a connector");
    let headroom_read = || {
        runtime.block_on(async {
            let mut session = connector.acquire().await.expect("a session");
            let inv = catalog::read(&mut session, &filter, timeout)
                .await
                .expect("the inventory");
            session.release();
            inv
        })
    };

    let exporter = if !full || dives_only {
        println!("mysqld_exporter: skipped (cargo test, or the dives alone)");
        None
    } else if Command::new(EXPORTER).arg("--version").output().is_ok() {
        Exporter::start(port)
    } else {
        println!(
            "mysqld_exporter: not installed (apt-get install prometheus-mysqld-exporter), skipped"
        );
        None
    };

    let measure = || {
        // One untimed round first: the same warm caches for everyone.
        client(port, &all);
        let inv = headroom_read();
        assert_eq!(inv.columns.len(), tables * INT_COLUMNS_PER_TABLE);
        assert_eq!(
            inv.columns
                .iter()
                .filter(|c| c.auto_increment.is_some())
                .count(),
            tables
        );
        if let Some(e) = &exporter {
            let series = e.scrape();
            // It reads every schema, the server's own included.
            assert!(
                series >= tables,
                "mysqld_exporter's auto_increment series: {series}"
            );
        }

        let mut floor = Vec::new();
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        let mut families: Vec<Vec<f64>> = vec![Vec::new(); inlined.len()];
        for _ in 0..runs {
            floor.push(secs(|| {
                client(port, &all);
            }));
            ours.push(secs(|| {
                headroom_read();
            }));
            if let Some(e) = &exporter {
                theirs.push(secs(|| {
                    e.scrape();
                }));
            }
            for (i, (_, sql)) in inlined.iter().enumerate() {
                families[i].push(secs(|| {
                    client(port, sql);
                }));
            }
        }

        for (i, (family, _)) in inlined.iter().enumerate() {
            let label = format!("  floor, {family} alone");
            println!("{label:<44} {:>10.3} s", median(families[i].clone()));
        }
        let floor = median(floor);
        let ours = median(ours);
        println!(
            "{:<44} {:>10.3} s",
            "floor: the same statements, mariadb client", floor
        );
        println!("{:<44} {:>10.3} s", "headroom: catalog::read", ours);
        println!("{:<44} {:>10.2} x", "headroom / floor", ours / floor);
        if theirs.is_empty() {
            println!(
                "{:<44} {:>10}",
                "mysqld_exporter auto_increment scrape", "skipped"
            );
        } else {
            let theirs = median(theirs);
            println!(
                "{:<44} {:>10.3} s",
                "mysqld_exporter auto_increment scrape", theirs
            );
            println!(
                "{:<44} {:>10.2} x",
                "mysqld_exporter / headroom",
                theirs / ours
            );
        }
    };
    let caches = |server: &MariaDb| {
        server
            .exec("SELECT @@table_open_cache, @@table_definition_cache, @@open_files_limit")
            .expect("the cache sizes")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" / ")
    };
    println!(
        "-- the server's defaults (table_open_cache / table_definition_cache / open_files_limit: {})",
        caches(&server)
    );
    if !dives_only {
        measure();
    }
    let sized = tables + 1_000;
    server
        .exec(&format!(
            "SET GLOBAL table_open_cache = GREATEST(@@table_open_cache, {sized}); \
             SET GLOBAL table_definition_cache = GREATEST(@@table_definition_cache, {sized});"
        ))
        .expect("sizing the table caches");
    println!(
        "-- table caches sized to the shard, as a server with this many tables should be ({})",
        caches(&server)
    );
    if !dives_only {
        measure();

        // What strict mode and ticket collisions add: one more small query per shard poll
        // (`@@GLOBAL.sql_mode`, on the kept session, its ping included), and a new session
        // opened and closed for each ticket server read.
        let mut modes = Vec::new();
        let mut sessions = Vec::new();
        for _ in 0..runs.max(20) {
            modes.push(secs(|| {
                runtime.block_on(async {
                    let mut session = connector.acquire().await.expect("a session");
                    headroom::mysql::sql_mode::read(&mut session, timeout)
                        .await
                        .expect("the sql_mode");
                    session.release();
                })
            }));
            sessions.push(secs(|| {
                runtime.block_on(async {
                    let fresh = Connector::new(&url, None, timeout).expect("a connector");
                    fresh.acquire().await.expect("a session").release();
                    fresh.close(Duration::from_secs(2)).await;
                })
            }));
        }
        println!(
            "{:<44} {:>10.6} s",
            "headroom: sql_mode::read (one per poll)",
            median(modes)
        );
        println!(
            "{:<44} {:>10.6} s",
            "a new session, opened and closed",
            median(sessions)
        );
    }
    drop(exporter);
    // The whole poll's ratio is the figure this bench is read for: more rounds.
    measure_dives(&server, tables, if full { runs + 2 } else { 1 }, &all);
    server.stop();
}
