//! Index dives spread over `poll.reread_within`, on real MariaDB: a shard of many INT
//! reference columns far from full, polled every second with a window of four polls. Each
//! column's `observed_at` is checked against the server's own general log (when its
//! `MAX()` was really sent); a column at warning is read on every poll; a value planted in
//! one column shows within a window, and from then on is read on every poll.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use headroom::measure::ColumnReport;
use headroom::mysql::{ident, qualified};
use headroom::state::ShardState;
use headroom_sandbox::MariaDb;

use crate::harness::{TestApp, find_column, settings, spawn_app, start_servers};

/// Reference columns in rotation (one more, in a table with a hostile name, besides).
const TABLES: usize = 40;
/// 0.1 % of INT's maximum.
const FAR: i64 = 2_147_483;
/// 74.5 %: at warning.
const WARNING: i64 = 1_600_000_000;
/// `reread_within` / `interval`.
const SLOTS: u64 = 4;
const HOSTILE: &str = "odd`tab{table} #--";

fn schema_sql() -> String {
    let mut sql = String::from(
        "CREATE DATABASE tickets;
CREATE TABLE tickets.Tickets32 (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  stub CHAR(1) NOT NULL DEFAULT '', UNIQUE KEY stub (stub)) AUTO_INCREMENT=1000;
CREATE DATABASE app;
CREATE TABLE app.seq (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=10;
",
    );
    let mut table = |name: &str, value: i64| {
        sql.push_str(&format!(
            "CREATE TABLE {0} (id BIGINT NOT NULL PRIMARY KEY, user_id INT NOT NULL, KEY (user_id));
INSERT INTO {0} VALUES (1, {value});
",
            qualified("app", name)
        ));
    };
    for t in 0..TABLES {
        table(&format!("t{t:02}"), FAR);
    }
    table(HOSTILE, FAR);
    table("w", WARNING);
    sql
}

fn toml(db: &MariaDb) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\
         [poll]\ninterval = \"1s\"\nquery_timeout = \"5s\"\nreread_within = \"{SLOTS}s\"\n\
         [[shards]]\nname = \"dives\"\nurl = \"{}\"\nschemas = [\"app\"]\n\
         [[sources]]\nname = \"tickets32\"\nkind = \"ticket_server\"\nservers = [\"{}\"]\ntable = \"Tickets32\"\n\
         [[references]]\nsource = \"tickets32\"\ncolumns = [\"app.*.user_id\"]\n",
        db.url("root", None),
        db.url("root", Some("tickets")),
    )
}

/// One finished successful poll as the store held it right after.
struct Poll {
    /// The shard's polls so far (the stamp of this one).
    number: u64,
    /// When its values were read: `app.seq.id`'s `observed_at`.
    moment: DateTime<Utc>,
    /// `observed_at` and `current` of every reference column, by table.
    columns: BTreeMap<String, (DateTime<Utc>, i128)>,
}

impl Poll {
    fn of(shard: &ShardState) -> Option<Poll> {
        if !shard.up {
            return None;
        }
        let column = |r: &ColumnReport| (r.observed_at, r.current);
        let moment = shard
            .columns
            .iter()
            .find(|r| r.id.table == "seq")?
            .observed_at;
        let columns = shard
            .columns
            .iter()
            .filter(|r| r.id.column == "user_id")
            .map(|r| (r.id.table.clone(), column(r)))
            .collect();
        Some(Poll {
            number: shard.polls,
            moment,
            columns,
        })
    }
}

/// Waits for the shard's next finished poll; `None` if it failed.
async fn next_poll(app: &TestApp, rx: &mut tokio::sync::watch::Receiver<u64>) -> Option<Poll> {
    tokio::time::timeout(std::time::Duration::from_secs(30), rx.changed())
        .await
        .expect("a poll within 30 s")
        .expect("the store is alive");
    let snapshot = app.store.read();
    Poll::of(&snapshot.shards[0])
}

/// When each column's `MAX()` was last sent before `until` (microseconds since the epoch), from
/// the server's general log.
fn last_dives(db: &MariaDb, tables: &[String], until: DateTime<Utc>) -> BTreeMap<String, i64> {
    let log = db
        .exec(
            "SELECT CAST(UNIX_TIMESTAMP(event_time) * 1000000 AS SIGNED), argument \
             FROM mysql.general_log WHERE argument LIKE 'SELECT CAST(0 AS CHAR), CAST(MAX(%'",
        )
        .expect("reading the general log");
    let mut last = BTreeMap::new();
    for line in log.lines() {
        let (at, statement) = line.split_once('\t').expect("two fields");
        let at: i64 = at.parse().expect("microseconds");
        if at > until.timestamp_micros() {
            continue;
        }
        for table in tables {
            let dive = format!(
                "CAST(MAX({}) AS CHAR) FROM {}",
                ident("user_id"),
                qualified("app", table)
            );
            if statement.contains(&dive) {
                let slot = last.entry(table.clone()).or_insert(at);
                *slot = (*slot).max(at);
            }
        }
    }
    last
}

/// The shard seeded, its general log on, and a headroom that has polled it once.
async fn start() -> (Vec<MariaDb>, TestApp, tokio::sync::watch::Receiver<u64>) {
    let servers = start_servers(&["dives"]);
    let db = &servers[0];
    db.exec(&schema_sql()).expect("seeding");
    db.exec("SET GLOBAL log_output = 'TABLE'; SET GLOBAL general_log = 'ON';")
        .expect("the general log");
    let app = spawn_app(settings(&toml(db))).await;
    app.wait_ready().await;
    let mut rx = app.store.subscribe();
    rx.mark_unchanged();
    (servers, app, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dives_are_spread_over_the_window_and_each_observed_at_is_when_the_column_was_read() {
    let (servers, app, mut rx) = start().await;
    let db = &servers[0];
    // Two windows of polls, each as the store held it right after.
    let mut polls: BTreeMap<u64, Poll> = BTreeMap::new();
    for _ in 0..4 * SLOTS {
        if polls.len() > 2 * SLOTS as usize {
            break;
        }
        if let Some(poll) = next_poll(&app, &mut rx).await {
            polls.insert(poll.number, poll);
        }
    }
    assert!(polls.len() > 2 * SLOTS as usize, "too many failed polls");
    let rotating = TABLES + 1;
    let quota = rotating.div_ceil(SLOTS as usize);
    let mut spread = 0;
    for (number, poll) in &polls {
        assert_eq!(poll.columns.len(), rotating + 1);
        // The column at warning is read at every poll.
        assert_eq!(
            poll.columns["w"],
            (poll.moment, i128::from(WARNING)),
            "{number}"
        );
        // Every column was read at this poll or within the window's polls before it.
        if let Some(oldest) = (number + 1).checked_sub(SLOTS).and_then(|n| polls.get(&n)) {
            for (table, (observed_at, current)) in &poll.columns {
                assert!(*observed_at >= oldest.moment, "{table} at poll {number}");
                assert_eq!(
                    *current,
                    i128::from(if table == "w" { WARNING } else { FAR })
                );
            }
        }
        let Some(before) = number.checked_sub(1).and_then(|n| polls.get(&n)) else {
            continue;
        };
        // Between two polls in a row, only a share of the columns is read again.
        let moved: Vec<&String> = poll
            .columns
            .iter()
            .filter(|(table, (observed_at, _))| {
                *table != "w" && before.columns[*table].0 != *observed_at
            })
            .map(|(table, _)| table)
            .collect();
        assert!(!moved.is_empty(), "no column read at poll {number}");
        assert!(moved.len() < rotating, "every column read at poll {number}");
        for table in &moved {
            assert_eq!(poll.columns[*table].0, poll.moment, "{table}");
        }
        if moved.len() == quota {
            spread += 1;
        }
    }
    assert!(spread > 0, "no poll read exactly {quota} columns");

    // Each column's observed_at is the end of the poll that last sent its MAX(): after that
    // statement, with no other poll ending in between.
    let last = polls.values().next_back().expect("polls");
    let moments: BTreeSet<i64> = polls
        .values()
        .map(|p| p.moment.timestamp_micros())
        .collect();
    let tables: Vec<String> = last.columns.keys().cloned().collect();
    let sent = last_dives(db, &tables, last.moment);
    for (table, (observed_at, _)) in &last.columns {
        let (sent_at, observed_at) = (sent[table], observed_at.timestamp_micros());
        assert!(
            sent_at <= observed_at,
            "{table}: MAX() sent at {sent_at}, observed_at {observed_at}"
        );
        let between: Vec<&i64> = moments.range(sent_at..observed_at).collect();
        assert!(
            between.is_empty(),
            "{table}: MAX() sent at {sent_at}, observed_at {observed_at}, polls ended in between: {between:?}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_planted_in_a_far_from_full_column_shows_within_the_window() {
    let (servers, app, mut rx) = start().await;
    let db = &servers[0];
    let planted_in = "t17";
    let before_update = Utc::now();
    db.exec(&format!("UPDATE app.{planted_in} SET user_id = 2147000000"))
        .expect("planting");
    // The poll under way may have read the column before the UPDATE; a window of polls
    // after it reads every column.
    let mut waited = 0;
    loop {
        waited += 1;
        assert!(
            waited <= SLOTS + 1,
            "not read within {SLOTS} polls after the UPDATE"
        );
        let Some(poll) = next_poll(&app, &mut rx).await else {
            continue;
        };
        let (observed_at, current) = poll.columns[planted_in];
        if current == 2_147_000_000 {
            assert!(observed_at > before_update);
            break;
        }
    }
    // Critical now: read on every poll.
    for _ in 0..2 {
        if let Some(poll) = next_poll(&app, &mut rx).await {
            assert_eq!(poll.columns[planted_in], (poll.moment, 2_147_000_000));
        }
    }
    let (status, doc) = app.get_json("/api/columns?shard=dives").await;
    assert_eq!(status, 200);
    let planted = find_column(&doc, "dives", &format!("app.{planted_in}.user_id"));
    assert_eq!(planted["current"].as_i64(), Some(2_147_000_000));
    assert_eq!(planted["status"], "critical");
    let hostile = find_column(&doc, "dives", &format!("app.{HOSTILE}.user_id"));
    assert_eq!(hostile["current"].as_i64(), Some(FAR));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_dive_fails_the_poll_when_its_turn_comes_and_the_last_values_stay_served() {
    let servers = start_servers(&["dives-refused"]);
    let db = &servers[0];
    db.exec(&schema_sql()).expect("seeding");
    // SELECT table by table, and INSERT, so that a table stays visible without SELECT.
    let mut grants = String::from(
        "CREATE USER 'monitor'@'127.0.0.1';\nGRANT SELECT ON tickets.* TO 'monitor'@'127.0.0.1';\n",
    );
    let mut tables: Vec<String> = (0..TABLES).map(|t| format!("t{t:02}")).collect();
    tables.extend(["seq", "w", HOSTILE].map(String::from));
    for table in &tables {
        grants.push_str(&format!(
            "GRANT SELECT, INSERT ON {} TO 'monitor'@'127.0.0.1';\n",
            qualified("app", table)
        ));
    }
    db.exec(&grants).expect("grants");
    let port = db.port();
    let toml = toml(db).replace(
        &db.url("root", None),
        &format!("mysql://monitor@127.0.0.1:{port}/"),
    );
    let app = spawn_app(settings(&toml)).await;
    app.wait_ready().await;
    let mut rx = app.store.subscribe();
    rx.mark_unchanged();
    let before = next_poll(&app, &mut rx).await.expect("a successful poll");

    db.exec("REVOKE SELECT ON app.t05 FROM 'monitor'@'127.0.0.1'")
        .expect("revoking");
    let mut failed = false;
    for _ in 0..=SLOTS + 1 {
        tokio::time::timeout(std::time::Duration::from_secs(30), rx.changed())
            .await
            .expect("a poll within 30 s")
            .expect("the store is alive");
        let snapshot = app.store.read();
        let shard = &snapshot.shards[0];
        if !shard.up {
            assert_eq!(shard.last_error_class, Some("access_denied"));
            assert_eq!(shard.last_error_code, Some(1142));
            failed = true;
            break;
        }
    }
    assert!(
        failed,
        "the refused dive did not fail a poll within a window"
    );
    // The last successful poll's columns stay served, each with its own observed_at.
    let (_, doc) = app.get_json("/api/columns?shard=dives").await;
    let (_, shards) = app.get_json("/api/shards").await;
    assert_eq!(shards["shards"][0]["up"], false);
    let t05 = find_column(&doc, "dives", "app.t05.user_id");
    assert_eq!(t05["current"].as_i64(), Some(FAR));
    let observed: DateTime<Utc> = t05["observed_at"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("observed_at");
    assert!(observed >= before.columns["t05"].0);

    db.exec("GRANT SELECT ON app.t05 TO 'monitor'@'127.0.0.1'")
        .expect("granting");
    app.wait_until("the shard is up again", |app| {
        let up = app.store.read().shards[0].up;
        async move { up }
    })
    .await;
    app.stop().await;
}
