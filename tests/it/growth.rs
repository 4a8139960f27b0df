//! Growth, forecasts and headroom's verdict on real MariaDB: the status metrics follow
//! `[[overrides]]`, a jump (`ALTER TABLE … AUTO_INCREMENT`) is not growth, and forecasts
//! survive a restart (and so does a time-based incident).

use std::path::Path;
use std::time::Duration;

use headroom::headroom::Status;
use headroom::poller::Poller;
use headroom::state::Store;
use headroom_sandbox::MariaDb;
use headroom_sandbox::pagerduty::Receiver;
use serde_json::Value;

use crate::harness::{
    TestApp, find_column, metric_value, settings, settings_with_env, spawn_app, start_servers,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_metrics_carry_headroom_verdict_after_overrides() {
    let servers = start_servers(&["status-metrics"]);
    // 2^31 − 1 = 2147483647: archive at 80%, hot at 60%, plain at 80%.
    servers[0]
        .exec(
            "CREATE DATABASE app;
CREATE TABLE app.archive (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=1717986918;
CREATE TABLE app.hot (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=1288490189;
CREATE TABLE app.plain (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=1717986918;",
        )
        .expect("seed");
    let app = spawn_app(settings(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\
         [[overrides]]\ncolumns = [\"app.archive.*\"]\nwarning = 0.75\ncritical = 0.95\n\
         [[overrides]]\ncolumns = [\"app.hot.*\"]\nwarning = 0.40\ncritical = 0.55\n\
         [[shards]]\nname = \"s1\"\nurl = \"{}\"\n",
        servers[0].url("root", None)
    )))
    .await;
    app.wait_ready().await;
    let (_, doc) = app.get_json("/api/columns").await;
    assert_eq!(
        find_column(&doc, "s1", "app.archive.id")["status"],
        "warning"
    );
    assert_eq!(find_column(&doc, "s1", "app.hot.id")["status"], "critical");
    assert_eq!(find_column(&doc, "s1", "app.plain.id")["status"], "warning");
    let (_, text) = app.get_text("/metrics").await;
    let status = |table| {
        metric_value(
            &text,
            "headroom_column_status",
            &[
                ("shard", "s1"),
                ("schema", "app"),
                ("table", table),
                ("column", "id"),
                ("kind", "auto_increment"),
            ],
        )
    };
    assert_eq!(status("archive"), Some(1.0));
    assert_eq!(status("hot"), Some(2.0));
    assert_eq!(status("plain"), Some(1.0));
    assert_eq!(
        metric_value(&text, "headroom_column_time_status", &[("table", "hot")]),
        None,
        "not growing: no time verdict is written"
    );
    assert!(text.contains("# TYPE headroom_column_time_status gauge"));
    app.stop().await;
}

/// Inserts `rows` rows into `app.events` every `every`, until aborted.
async fn insert_steadily(
    db: &MariaDb,
    rows: usize,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    let pool = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(1)
        .connect(&db.url("root", Some("app")))
        .await
        .expect("insert pool");
    // Built from a row count only: no outside text reaches it.
    let values = vec!["()"; rows].join(",");
    let sql = format!("INSERT INTO events () VALUES {values}");
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        loop {
            ticker.tick().await;
            let _ = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .execute(&pool)
                .await;
        }
    })
}

/// Lets `n` more polls of the first shard happen.
async fn polls(app: &TestApp, n: usize) {
    for _ in 0..n {
        let before = app.store.read().shards[0].last_poll;
        app.wait_until("another poll", |app| {
            let now = app.store.read().shards[0].last_poll;
            async move { now != before }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alter_auto_increment_on_a_growing_table_is_a_jump_not_growth() {
    let servers = start_servers(&["jump"]);
    servers[0]
        .exec(
            "CREATE DATABASE app;
CREATE TABLE app.events (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY);",
        )
        .expect("seed");
    // About 50 IDs a second.
    let inserts = insert_steadily(&servers[0], 5, Duration::from_millis(100)).await;
    let app = spawn_app(settings(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[poll]\ninterval = \"300ms\"\n\
         [[shards]]\nname = \"s1\"\nurl = \"{}\"\n",
        servers[0].url("root", None)
    )))
    .await;
    app.wait_ready().await;
    polls(&app, 8).await;
    let (_, doc) = app.get_json("/api/columns").await;
    let before = find_column(&doc, "s1", "app.events.id").clone();
    assert!(
        before["growth_per_second"].as_f64().unwrap_or(0.0) > 0.0,
        "{before}"
    );
    assert_eq!(before["last_jump"], Value::Null);

    servers[0]
        .exec("ALTER TABLE app.events AUTO_INCREMENT = 1000000000;")
        .expect("alter");
    polls(&app, 4).await;
    let (_, doc) = app.get_json("/api/columns").await;
    let c = find_column(&doc, "s1", "app.events.id");
    let jump = &c["last_jump"];
    let from = jump["from"].as_u64().expect("last_jump.from");
    let to = jump["to"].as_u64().expect("last_jump.to");
    assert!(from < 1_000_000, "{c}");
    assert!((1_000_000_000..1_000_100_000).contains(&to), "{c}");
    assert!(
        chrono::DateTime::parse_from_rfc3339(jump["at"].as_str().unwrap_or("")).is_ok(),
        "{c}"
    );
    let growth = c["growth_per_second"].as_f64().unwrap_or(f64::MAX);
    assert!(growth < 500.0, "the jump is not growth: {c}");
    assert!(c["current"].as_u64().unwrap_or(0) >= 1_000_000_000);
    assert_eq!(c["status"], "ok", "{c}");
    let text = app.metrics_text();
    assert_eq!(
        metric_value(&text, "headroom_column_time_status", &[("table", "events")]),
        None,
        "no time-based status"
    );
    assert_eq!(
        metric_value(&text, "headroom_column_status", &[("table", "events")]),
        None,
        "written only when not ok"
    );
    inserts.abort();
    app.stop().await;
}

const KEY: &str = "R0UT1NGKEY0123456789abcdef012345";
const EVENTS: &str = "headroom/column/s1/app.events.id";

/// headroom over `db` with its state (and history) under `dir`, paging `receiver`.
fn restart_toml(db: &MariaDb, receiver: &Receiver, dir: &Path) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[poll]\ninterval = \"300ms\"\nquery_timeout = \"2s\"\n\
         [state]\npath = \"{}\"\n\
         [pagerduty]\nrouting_key_env = \"PD_KEY\"\nurl = \"{}\"\nretry_initial = \"50ms\"\n\
         max_events_per_minute = 6000\n\
         [[shards]]\nname = \"s1\"\nurl = \"{}\"\n",
        dir.join("state.json").display(),
        receiver.url(),
        db.url("root", None)
    )
}

/// The growth rate of `app.events.id` in `store`.
fn events_growth(store: &Store) -> Option<f64> {
    store.read().shards[0]
        .columns
        .iter()
        .find(|c| c.id.table == "events")
        .and_then(|c| c.growth_per_second)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_forecast_and_a_time_based_incident_stays_open() {
    let servers = start_servers(&["restart"]);
    // SMALLINT UNSIGNED (65535) growing about 50 IDs a second: ok by ratio for the whole
    // test, critical by time (it runs out in about 20 minutes).
    servers[0]
        .exec(
            "CREATE DATABASE app;
CREATE TABLE app.events (id SMALLINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY);",
        )
        .expect("seed");
    let inserts = insert_steadily(&servers[0], 5, Duration::from_millis(100)).await;
    let receiver = Receiver::start(0).await.expect("receiver");
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = restart_toml(&servers[0], &receiver, dir.path());
    let first = spawn_app(settings_with_env(&toml, &[("PD_KEY", KEY)])).await;
    first
        .wait_until("the time-based trigger", |_| {
            let n = receiver.count("trigger", EVENTS);
            async move { n == 1 }
        })
        .await;
    polls(&first, 20).await;
    let (_, doc) = first.get_json("/api/columns").await;
    let c = find_column(&doc, "s1", "app.events.id");
    assert!(c["used_ratio"].as_f64().unwrap_or(1.0) < 0.70, "{c}");
    assert_eq!(c["status"], "critical", "by time alone: {c}");
    let store = first.store.clone();
    first.stop().await;
    let before = events_growth(&store).expect("forecast before the restart");
    assert!(dir.path().join("state.json.history").exists());

    // The first poll of a new process on the same state path.
    let settings = std::sync::Arc::new(settings_with_env(&toml, &[("PD_KEY", KEY)]));
    let store = Store::new(&settings);
    let poller = Poller::new(settings, store.clone()).expect("poller");
    poller.poll_once().await;
    poller.close().await;
    let after = events_growth(&store).expect("a forecast at the first poll");
    assert!(
        (after - before).abs() <= before * 0.05,
        "{before}/s before the restart, {after}/s after"
    );
    let column = store.read().shards[0]
        .columns
        .iter()
        .find(|c| c.id.table == "events")
        .cloned()
        .expect("events column");
    assert_eq!(column.status, Status::Critical);

    // A restarted app keeps the incident open: no resolve, no second trigger.
    let second = spawn_app(settings_with_env(&toml, &[("PD_KEY", KEY)])).await;
    polls(&second, 5).await;
    let (_, incidents) = second.get_json("/api/incidents").await;
    let pd = &incidents["notifiers"][0];
    assert_eq!(pd["open"][0]["dedup_key"], EVENTS, "{incidents}");
    assert_eq!(pd["undelivered"], 0, "{incidents}");
    assert_eq!(receiver.count("resolve", EVENTS), 0);
    assert_eq!(receiver.count("trigger", EVENTS), 1);
    inserts.abort();
    second.stop().await;
}
