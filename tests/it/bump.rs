//! `headroom bump` against real MariaDB: the plan of a dry run, raising every counter above
//! INT's maximum with each ticket server keeping its offset, a second run that changes
//! nothing, the refusal on a configuration that is not all `dev`, an unreachable server,
//! missing grants, a counter another session raises while bump works (never lowered), and
//! the point of it all: afterwards a ticket ID no longer fits an INT column.

use std::time::{Duration, Instant};

use headroom_sandbox::{self as sandbox, MariaDb};
use sqlx::{Connection, Executor, MySqlConnection};

use crate::harness::{Cluster, start_servers};

/// A table whose name holds a backtick, a quote and a template placeholder.
const HOSTILE: &str = "we`ird'{table}";

/// Runs `headroom bump --config <toml> args...`: exit code, stdout, stderr.
fn bump(toml: &str, args: &[&str]) -> (i32, String, String) {
    crate::harness::headroom("bump", toml, args)
}

/// Marks every shard and source of a configuration `environment = "dev"`.
fn dev(toml: &str) -> String {
    toml.replace("[[shards]]\n", "[[shards]]\nenvironment = \"dev\"\n")
        .replace("[[sources]]\n", "[[sources]]\nenvironment = \"dev\"\n")
}

/// A table's AUTO_INCREMENT as information_schema reports it.
fn counter(server: &MariaDb, schema: &str, table: &str) -> u64 {
    let sql = format!(
        "SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{schema}' AND TABLE_NAME = '{}'",
        table.replace('\\', "\\\\").replace('\'', "\\'")
    );
    let out = server.exec(&sql).expect("reading AUTO_INCREMENT");
    out.trim()
        .parse()
        .unwrap_or_else(|_| panic!("AUTO_INCREMENT of {schema}.{table}: {out:?}"))
}

/// The report's row for `column` on `server`, split into its cells (two or more spaces
/// apart).
fn row(stdout: &str, server: &str, column: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|line| {
            line.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .find(|cells| cells.len() >= 8 && cells[0] == server && cells[1] == column)
        .unwrap_or_else(|| panic!("no row for {server} {column} in:\n{stdout}"))
}

/// The cluster's two shards, the second watching only `etsy`; extra tables: a BIGINT
/// counter in a second schema on each shard, one already past 2^31 on shard-01, and one
/// with a hostile name.
fn seed(cluster: &Cluster) -> String {
    for shard in &cluster.shards {
        shard
            .exec(
                "CREATE DATABASE other;
CREATE TABLE other.events (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=500;",
            )
            .expect("seeding other");
    }
    cluster.shards[0]
        .exec(&format!(
            "CREATE TABLE etsy.big_events (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=5000000000;
CREATE TABLE etsy.{} (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, v INT) AUTO_INCREMENT=42;",
            headroom::mysql::ident(HOSTILE)
        ))
        .expect("seeding shard-01");
    dev(&cluster.toml("")).replace(
        "name = \"shard-02\"\n",
        "name = \"shard-02\"\nschemas = [\"etsy\"]\n",
    )
}

fn ticket_label(cluster: &Cluster, i: usize) -> String {
    format!("tickets64 127.0.0.1:{}", cluster.tickets[i].port())
}

#[test]
fn a_dry_run_prints_the_plan_and_changes_nothing() {
    let cluster = Cluster::start();
    let toml = seed(&cluster);

    let (code, stdout, stderr) = bump(&toml, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.starts_with("Counters above 2147483647 (dry run: nothing is changed)\n"),
        "{stdout}"
    );
    // The ticket pair: offsets 1 and 2 of 2, counters at 2147483000.
    assert_eq!(
        row(&stdout, &ticket_label(&cluster, 0), "tickets.Tickets64.id")[2..],
        [
            "bigint(20) unsigned",
            "2",
            "1",
            "2147483000",
            "2147483649",
            "would raise"
        ]
    );
    assert_eq!(
        row(&stdout, &ticket_label(&cluster, 1), "tickets.Tickets64.id")[2..],
        [
            "bigint(20) unsigned",
            "2",
            "2",
            "2147483000",
            "2147483648",
            "would raise"
        ]
    );
    assert_eq!(
        row(&stdout, "shard-01", "etsy.audit_log.entry_id")[2..],
        [
            "bigint(20) unsigned",
            "1",
            "1",
            "1",
            "2147483648",
            "would raise"
        ]
    );
    assert_eq!(
        row(&stdout, "shard-01", "etsy.activity_feed.feed_id")[2..],
        [
            "int(11)",
            "1",
            "1",
            "1900000000",
            "-",
            "left alone: its type holds at most 2147483647"
        ]
    );
    assert_eq!(
        row(&stdout, "shard-01", "etsy.big_events.id")[5..],
        ["5000000000", "-", "left alone: already above"]
    );
    assert_eq!(
        row(&stdout, "shard-01", &format!("etsy.{HOSTILE}.id"))[5..],
        ["42", "2147483648", "would raise"]
    );
    assert_eq!(
        row(&stdout, "shard-01", "other.events.id")[5..],
        ["500", "2147483648", "would raise"]
    );
    // shard-02 watches only etsy.
    assert!(!stdout.contains("shard-02  other.events.id"), "{stdout}");
    // 2 ticket servers, audit_log ×2, other.events, the hostile table.
    assert!(
        stdout.ends_with(
            "6 counters to raise; 1 already above 2147483647; 4 too narrow to go above it (left alone: see headroom lint).\nRun again with --apply to raise them.\n"
        ),
        "{stdout}"
    );

    assert_eq!(
        counter(&cluster.tickets[0], "tickets", "Tickets64"),
        2_147_483_000
    );
    assert_eq!(
        counter(&cluster.tickets[1], "tickets", "Tickets64"),
        2_147_483_000
    );
    for shard in &cluster.shards {
        assert_eq!(counter(shard, "etsy", "audit_log"), 1);
        assert_eq!(counter(shard, "other", "events"), 500);
    }
    assert_eq!(counter(&cluster.shards[0], "etsy", HOSTILE), 42);
}

#[test]
fn apply_raises_every_counter_above_int_max_keeping_offsets_and_a_second_run_changes_nothing() {
    let mut cluster = Cluster::start();
    let toml = seed(&cluster);

    let (code, stdout, stderr) = bump(&toml, &["--apply"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.starts_with("Counters above 2147483647\n"),
        "{stdout}"
    );
    assert_eq!(
        row(&stdout, &ticket_label(&cluster, 0), "tickets.Tickets64.id")[5..],
        ["2147483000", "2147483649", "raised"]
    );
    assert!(
        stdout.ends_with(
            "Raised 6 counters; 1 already above 2147483647; 4 too narrow to go above it (left alone: see headroom lint).\n"
        ),
        "{stdout}"
    );

    // Each ticket server hands out the first ID above INT's maximum in its own series, also
    // after a restart before any ticket was handed out: the server keeps the counter
    // (MariaDB 10.2.4+, MySQL 8), so the ticket row need not move.
    assert_eq!(
        counter(&cluster.tickets[0], "tickets", "Tickets64"),
        2_147_483_649
    );
    assert_eq!(
        counter(&cluster.tickets[1], "tickets", "Tickets64"),
        2_147_483_648
    );
    cluster.tickets[0].restart().expect("restarting ticket-a");
    // The sandbox sets the step with SET GLOBAL; a real server reads it from its my.cnf.
    cluster.tickets[0]
        .exec("SET GLOBAL auto_increment_increment = 2; SET GLOBAL auto_increment_offset = 1;")
        .expect("restoring the step");
    assert_eq!(cluster.hand_out(1), vec![2_147_483_649, 2_147_483_648]);
    assert_eq!(cluster.hand_out(2), vec![2_147_483_653, 2_147_483_652]);
    // REPLACE INTO still keeps one row per stub.
    for t in &cluster.tickets {
        assert_eq!(
            t.exec("SELECT COUNT(*) FROM tickets.Tickets64")
                .expect("count")
                .trim(),
            "1"
        );
    }

    // Shard tables: the next insert gets an ID above INT's maximum.
    let id = cluster.shards[1]
        .exec("INSERT INTO etsy.audit_log (user_id) VALUES (7); SELECT LAST_INSERT_ID();")
        .expect("insert");
    assert_eq!(id.trim(), "2147483648");
    let id = cluster.shards[0]
        .exec(&format!(
            "INSERT INTO etsy.{} (v) VALUES (1); SELECT LAST_INSERT_ID();",
            headroom::mysql::ident(HOSTILE)
        ))
        .expect("insert into the hostile table");
    assert_eq!(id.trim(), "2147483648");
    assert_eq!(
        counter(&cluster.shards[0], "other", "events"),
        2_147_483_648
    );
    // Left alone: outside shard-02's schemas, already above, too narrow.
    assert_eq!(counter(&cluster.shards[1], "other", "events"), 500);
    assert_eq!(
        counter(&cluster.shards[0], "etsy", "big_events"),
        5_000_000_000
    );
    assert_eq!(
        counter(&cluster.shards[0], "etsy", "activity_feed"),
        1_900_000_000
    );
    assert_eq!(counter(&cluster.shards[0], "etsy", "teams"), 13_400);

    // Idempotent: nothing left to raise, and nothing moves.
    let (code, stdout, stderr) = bump(&toml, &["--apply"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.ends_with(
            "Nothing to change: 7 counters already above 2147483647; 4 too narrow to go above it (left alone: see headroom lint).\n"
        ),
        "{stdout}"
    );
    assert_eq!(
        counter(&cluster.tickets[0], "tickets", "Tickets64"),
        2_147_483_655
    );
    assert_eq!(
        counter(&cluster.shards[1], "etsy", "audit_log"),
        2_147_483_649
    );
}

#[test]
fn bump_is_refused_unless_every_shard_and_source_is_dev() {
    let servers = start_servers(&["shard", "ticket"]);
    servers[0]
        .exec(sandbox::ETSY_SCHEMA_SQL)
        .expect("seed shard");
    servers[1]
        .exec(&sandbox::ticket_server_sql(1, 1_000))
        .expect("seed ticket server");
    let head = "[poll]\nquery_timeout = \"5s\"\n";
    let toml = format!(
        "{head}[[shards]]\nname = \"shard-01\"\nurl = \"{url}\"\nenvironment = \"dev\"\n[[shards]]\nname = \"shard-02\"\nurl = \"{url}\"\nenvironment = \"staging\"\n[[sources]]\nname = \"tickets64\"\nkind = \"ticket_server\"\nservers = [\"{ticket}\"]\ntable = \"Tickets64\"\n",
        url = servers[0].url("root", None),
        ticket = servers[1].url("root", Some("tickets")),
    );
    for args in [&[][..], &["--apply"][..]] {
        let (code, stdout, stderr) = bump(&toml, args);
        assert_eq!(code, 2, "{args:?}: {stdout}{stderr}");
        assert_eq!(stdout, "");
        assert_eq!(
            stderr,
            "headroom: bump refused: it raises counters, so every [[shards]] and [[sources]] must have environment = \"dev\"; not dev: shard shard-02 (staging), source tickets64 (production)\n"
        );
    }
    assert_eq!(counter(&servers[0], "etsy", "audit_log"), 1);
    assert_eq!(counter(&servers[1], "tickets", "Tickets64"), 1_000);

    // A value that is not an environment is a configuration error naming its key.
    let (code, _, stderr) = bump(&toml.replace("\"staging\"", "\"prod\""), &[]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("shards[1].environment: \"prod\" is not an environment: expected \"dev\", \"staging\" or \"production\""),
        "{stderr}"
    );
}

#[test]
fn an_unreachable_server_is_named_and_nothing_is_changed() {
    let mut servers = start_servers(&["shard", "ticket"]);
    servers[0]
        .exec(sandbox::ETSY_SCHEMA_SQL)
        .expect("seed shard");
    servers[1]
        .exec(&sandbox::ticket_server_sql(1, 1_000))
        .expect("seed ticket server");
    let toml = dev(&format!(
        "[poll]\nquery_timeout = \"5s\"\n[[shards]]\nname = \"shard-01\"\nurl = \"{}\"\n[[sources]]\nname = \"tickets64\"\nkind = \"ticket_server\"\nservers = [\"{}\"]\ntable = \"Tickets64\"\n",
        servers[0].url("root", None),
        servers[1].url("root", Some("tickets")),
    ));
    let port = servers[1].port();
    servers[1].stop();
    let (code, stdout, stderr) = bump(&toml, &["--apply"]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        format!(
            "headroom: source tickets64 server 127.0.0.1:{port}: connecting: connection refused\nheadroom: nothing was changed\n"
        )
    );
    assert_eq!(counter(&servers[0], "etsy", "audit_log"), 1);
}

#[test]
fn a_raise_the_user_may_not_make_is_reported_failed_and_the_others_are_made() {
    let servers = start_servers(&["shard"]);
    let shard = &servers[0];
    shard.exec(sandbox::ETSY_SCHEMA_SQL).expect("seed shard");
    shard
        .exec(
            "CREATE DATABASE other;
CREATE TABLE other.events (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY);
CREATE USER 'dev'@'127.0.0.1';
GRANT SELECT, LOCK TABLES ON etsy.* TO 'dev'@'127.0.0.1';
GRANT SELECT, LOCK TABLES, ALTER ON other.* TO 'dev'@'127.0.0.1';",
        )
        .expect("seed user");
    let toml = dev(&format!(
        "[[shards]]\nname = \"shard-01\"\nurl = \"{}\"\n",
        shard.url("dev", None)
    ));
    let (code, stdout, stderr) = bump(&toml, &["--apply"]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert_eq!(
        stderr,
        "headroom: shard shard-01: raising AUTO_INCREMENT of etsy.audit_log: the user lacks ALTER on the table (server error 1142)\n"
    );
    assert_eq!(
        row(&stdout, "shard-01", "etsy.audit_log.entry_id")[5..],
        ["1", "2147483648", "FAILED"]
    );
    assert_eq!(
        row(&stdout, "shard-01", "other.events.id")[5..],
        ["1", "2147483648", "raised"]
    );
    assert!(
        stdout.ends_with("Raised 1 counter; 0 already above 2147483647; 2 too narrow to go above it (left alone: see headroom lint); 1 FAILED (see the errors).\n"),
        "{stdout}"
    );
    assert_eq!(counter(shard, "etsy", "audit_log"), 1);
    assert_eq!(counter(shard, "other", "events"), 2_147_483_648);
}

#[test]
fn a_raise_without_the_lock_tables_grant_names_the_grant_and_changes_nothing() {
    let servers = start_servers(&["shard"]);
    let shard = &servers[0];
    shard
        .exec(
            "CREATE DATABASE other;
CREATE TABLE other.events (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=500;
CREATE USER 'dev'@'127.0.0.1';
GRANT SELECT, ALTER ON other.* TO 'dev'@'127.0.0.1';",
        )
        .expect("seed user");
    let toml = dev(&format!(
        "[[shards]]\nname = \"shard-01\"\nurl = \"{}\"\n",
        shard.url("dev", None)
    ));
    let (code, stdout, stderr) = bump(&toml, &["--apply"]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert_eq!(
        stderr,
        "headroom: shard shard-01: raising AUTO_INCREMENT of other.events: the user lacks LOCK TABLES on database other (server error 1044); bump locks each table while it reads and raises its counter\n"
    );
    assert_eq!(
        row(&stdout, "shard-01", "other.events.id")[5..],
        ["500", "2147483648", "FAILED"]
    );
    assert_eq!(counter(shard, "other", "events"), 500);
}

#[test]
fn after_the_bump_a_ticket_id_no_longer_fits_an_int_column_in_strict_mode() {
    let servers = start_servers(&["shard", "ticket"]);
    let (shard, ticket) = (&servers[0], &servers[1]);
    shard.exec(sandbox::ETSY_SCHEMA_SQL).expect("seed shard");
    ticket
        .exec(&sandbox::ticket_server_sql(1, 1_000))
        .expect("seed ticket server");
    let insert = |id: u64| {
        shard.exec(&format!(
            "SET SESSION sql_mode = 'STRICT_TRANS_TABLES';
INSERT INTO etsy.activity_feed (actor_id) VALUES ({id});"
        ))
    };
    // Before: small ticket IDs hide that activity_feed.actor_id is a signed INT.
    let before = sandbox::hand_out_tickets(ticket, 1).expect("ticket");
    assert_eq!(before, 1_001);
    insert(before).expect("a small ticket ID fits an INT");

    let toml = dev(&format!(
        "[[shards]]\nname = \"shard-01\"\nurl = \"{}\"\n[[sources]]\nname = \"tickets64\"\nkind = \"ticket_server\"\nservers = [\"{}\"]\ntable = \"Tickets64\"\n",
        shard.url("root", None),
        ticket.url("root", Some("tickets")),
    ));
    let (code, stdout, stderr) = bump(&toml, &["--apply"]);
    assert_eq!(code, 0, "{stdout}{stderr}");

    // After: the next ticket is past INT's maximum, and storing it fails, as it should.
    let after = sandbox::hand_out_tickets(ticket, 1).expect("ticket");
    assert_eq!(after, 2_147_483_649);
    let error = insert(after).expect_err("a ticket above INT's maximum must not fit");
    assert!(
        error
            .to_string()
            .contains("ERROR 1264 (22003) at line 2: Out of range value for column 'actor_id'"),
        "{error}"
    );
    // Without strict mode the same insert clamps it silently: what strict mode prevents.
    shard
        .exec(&format!(
            "SET SESSION sql_mode = ''; INSERT INTO etsy.activity_feed (actor_id) VALUES ({after});"
        ))
        .expect("non-strict insert");
    let stored = shard
        .exec("SELECT MAX(actor_id) FROM etsy.activity_feed")
        .expect("select");
    assert_eq!(stored.trim(), "2147483647");
}

/// Runs one statement on `conn` (a name in it quoted by the caller).
async fn run(conn: &mut MySqlConnection, sql: String) {
    conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone())))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Waits (up to 60 s) until a session other than `conn`'s waits for a table's metadata
/// lock, i.e. until bump stands blocked on a table `conn` holds locked.
async fn wait_for_a_blocked_session(conn: &mut MySqlConnection) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let blocked: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST
             WHERE STATE = 'Waiting for table metadata lock' AND ID <> CONNECTION_ID()",
        )
        .fetch_one(&mut *conn)
        .await
        .expect("reading the process list");
        if blocked > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for bump to wait for the table"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A shard with `tables` (each a BIGINT UNSIGNED counter at 7, in schema `d`), a dev
/// configuration watching `d`, and a session of its own on it.
async fn shard_with(tables: &[String]) -> (MariaDb, String, MySqlConnection) {
    let servers = start_servers(&["shard"]);
    let shard = servers.into_iter().next().expect("one server");
    let mut sql = "CREATE DATABASE d;\n".to_string();
    for table in tables {
        sql.push_str(&format!(
            "CREATE TABLE {} (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY) ENGINE=InnoDB AUTO_INCREMENT=7;\n",
            headroom::mysql::qualified("d", table)
        ));
    }
    shard.exec(&sql).expect("seeding the tables");
    let toml = dev(&format!(
        "[poll]\nquery_timeout = \"30s\"\n[[shards]]\nname = \"shard-01\"\nurl = \"{}\"\nschemas = [\"d\"]\n",
        shard.url("root", None)
    ));
    let other = MySqlConnection::connect(&shard.url("root", None))
        .await
        .expect("connecting the other session");
    (shard, toml, other)
}

/// The other session holds the table locked while bump reads it and plans to raise it from
/// 7, raises it to 5000000000 once bump waits for the table, then lets go: bump must take
/// 5000000000 as the counter and leave it, not set its planned 2147483648 over it (the ALTER
/// TABLE on InnoDB sets a counter lower than it stands when no row holds a higher ID).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counter_raised_by_another_session_while_bump_waits_for_its_table_is_not_lowered() {
    let (shard, toml, mut other) = shard_with(&[HOSTILE.to_string()]).await;
    let table = headroom::mysql::qualified("d", HOSTILE);
    run(&mut other, format!("LOCK TABLES {table} WRITE")).await;

    let bumping = tokio::task::spawn_blocking(move || bump(&toml, &["--apply"]));
    wait_for_a_blocked_session(&mut other).await;
    run(
        &mut other,
        format!("ALTER TABLE {table} AUTO_INCREMENT = 5000000000"),
    )
    .await;
    run(&mut other, "UNLOCK TABLES".to_string()).await;
    let (code, stdout, stderr) = bumping.await.expect("bump");

    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(counter(&shard, "d", HOSTILE), 5_000_000_000);
    assert_eq!(
        row(&stdout, "shard-01", &format!("d.{HOSTILE}.id"))[5..],
        ["5000000000", "-", "left alone: already above"]
    );
    assert!(
        stdout.ends_with("Nothing to change: 1 counter already above 2147483647.\n"),
        "{stdout}"
    );
}

/// Bump and another session raise the same 12 counters at the same time, in opposite
/// orders (the other session holds the first table until bump waits for it, then raises
/// from the last one down), over 10 rounds: whichever of the two reaches a counter first, it
/// ends at the higher value, 5000000000. Where the two meet, a bump that reads a counter
/// outside a lock lowered it in some rounds of most runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_raised_by_another_session_during_a_bump_all_end_at_the_higher_value() {
    let tables: Vec<String> = (0..12).map(|i| format!("t{i:02}")).collect();
    let (shard, toml, mut other) = shard_with(&tables).await;
    let mut lowered: Vec<(usize, &String, u64)> = Vec::new();
    for round in 0..10 {
        for table in &tables {
            // No row holds an ID, so the counter goes back down to 7.
            run(
                &mut other,
                format!("ALTER TABLE d.{table} AUTO_INCREMENT = 7"),
            )
            .await;
        }
        run(&mut other, "LOCK TABLES d.t00 WRITE".to_string()).await;
        let toml = toml.clone();
        let bumping = tokio::task::spawn_blocking(move || bump(&toml, &["--apply"]));
        wait_for_a_blocked_session(&mut other).await;
        run(&mut other, "UNLOCK TABLES".to_string()).await;
        for table in tables.iter().rev() {
            run(
                &mut other,
                format!("ALTER TABLE d.{table} AUTO_INCREMENT = 5000000000"),
            )
            .await;
        }
        let (code, stdout, stderr) = bumping.await.expect("bump");
        assert_eq!(code, 0, "round {round}: {stdout}{stderr}");
        lowered.extend(
            tables
                .iter()
                .map(|t| (round, t, counter(&shard, "d", t)))
                .filter(|(_, _, n)| *n != 5_000_000_000),
        );
    }
    assert_eq!(lowered, vec![]);
}
