//! Faults on real servers: a shard stopped mid-run, a shard slower than the timeout, a user
//! without grants, a wrong password, and shutdown while a poll hangs.

use std::time::Duration;

use crate::harness::{find_column, metric_value, poller, settings, spawn_app, start_servers};

const COUNTERS_SQL: &str = "CREATE DATABASE app;
CREATE TABLE app.orders (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=1000;
CREATE TABLE app.users (id SMALLINT NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=30000;";

fn two_shards_toml(a: &str, b: &str, extra: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[poll]\ninterval = \"500ms\"\nquery_timeout = \"1s\"\n{extra}\n\
         [[shards]]\nname = \"shard-01\"\nurl = \"{a}\"\n[[shards]]\nname = \"shard-02\"\nurl = \"{b}\"\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_stopped_mid_run_shows_down_keeps_its_columns_and_recovers() {
    let mut servers = start_servers(&["up", "stopping"]);
    for s in &servers {
        s.exec(COUNTERS_SQL).expect("seed");
    }
    let toml = two_shards_toml(
        &servers[0].url("root", None),
        &servers[1].url("root", None),
        "",
    );
    let app = spawn_app(settings(&toml)).await;
    app.wait_ready().await;
    let (_, before) = app.get_json("/api/columns").await;
    let observed = find_column(&before, "shard-02", "app.orders.id")["observed_at"].clone();

    servers[1].stop();
    let shard_down = |app: &crate::harness::TestApp| {
        let store = app.store.clone();
        async move {
            let snap = store.read();
            !snap.shards[1].up && snap.shards[0].up
        }
    };
    app.wait_until("shard-02 down", shard_down).await;

    let (_, shards) = app.get_json("/api/shards").await;
    let down = &shards["shards"][1];
    assert_eq!(down["name"], "shard-02");
    assert_eq!(down["up"], false);
    assert!(!down["last_error"].as_str().unwrap_or("").is_empty());
    assert!(down["last_success"].is_string());
    assert_eq!(shards["shards"][0]["up"], true);

    // The last known columns stay served, with the moment they were observed.
    let (_, during) = app.get_json("/api/columns?shard=shard-02").await;
    let orders = find_column(&during, "shard-02", "app.orders.id");
    assert_eq!(orders["current"].as_u64(), Some(1000));
    assert_eq!(orders["observed_at"], observed);

    let (_, metrics) = app.get_text("/metrics").await;
    assert_eq!(
        metric_value(&metrics, "headroom_shard_up", &[("shard", "shard-02")]),
        Some(0.0)
    );
    assert_eq!(
        metric_value(&metrics, "headroom_shard_up", &[("shard", "shard-01")]),
        Some(1.0)
    );
    assert!(
        metric_value(
            &metrics,
            "headroom_poll_errors_total",
            &[("shard", "shard-02")]
        )
        .unwrap_or(0.0)
            >= 1.0
    );
    assert_eq!(
        metric_value(
            &metrics,
            "headroom_poll_errors_total",
            &[("shard", "shard-01")]
        ),
        Some(0.0)
    );
    assert!(
        metric_value(
            &metrics,
            "headroom_column_current",
            &[("shard", "shard-02"), ("table", "orders")]
        )
        .is_some()
    );

    // Back up: retried at the next poll, with fresh values.
    servers[1].restart().expect("restart");
    servers[1]
        .exec("ALTER TABLE app.orders AUTO_INCREMENT = 5000;")
        .expect("alter");
    app.wait_until("shard-02 back with the new counter", |app| {
        let store = app.store.clone();
        async move {
            let snap = store.read();
            snap.shards[1].up
                && snap.shards[1]
                    .columns
                    .iter()
                    .any(|c| c.table == "orders" && c.current == 5000)
        }
    })
    .await;
    assert!(app.store.read().shards[1].last_error.is_none());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_slower_than_the_timeout_does_not_hold_up_the_others() {
    let servers = start_servers(&["fast", "frozen"]);
    for s in &servers {
        s.exec(COUNTERS_SQL).expect("seed");
    }
    let toml = two_shards_toml(
        &servers[0].url("root", None),
        &servers[1].url("root", None),
        "concurrency = 1",
    );
    let (poller, store) = poller(&toml);

    servers[1].freeze();
    // The poll must end on its own: each query and connection is bounded by query_timeout.
    tokio::time::timeout(Duration::from_secs(60), poller.poll_once())
        .await
        .expect("a frozen shard held the poll up");
    {
        let snap = store.read();
        assert!(snap.shards[0].up);
        assert_eq!(snap.shards[0].columns.len(), 2);
        assert!(!snap.shards[1].up);
        let error = snap.shards[1].last_error.clone().unwrap_or_default();
        assert!(error.contains("no answer within 1s"), "{error}");
    }

    servers[1].thaw();
    poller.poll_once().await;
    assert!(
        store.read().shards[1].up,
        "{:?}",
        store.read().shards[1].last_error
    );
    poller.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_grants_sees_the_shard_down_until_granted_select() {
    let servers = start_servers(&["grants"]);
    let db = &servers[0];
    db.exec(&format!(
        "{COUNTERS_SQL}
CREATE USER 'monitor'@'127.0.0.1' IDENTIFIED BY 'm0nitor-pw';
CREATE TABLE app.refs (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, user_id SMALLINT NOT NULL,
  FOREIGN KEY (user_id) REFERENCES app.users (id));"
    ))
    .expect("seed");
    let url = format!("mysql://monitor:m0nitor-pw@127.0.0.1:{}", db.port());
    let wrong = format!("mysql://monitor:wr0ng-pw@127.0.0.1:{}", db.port());
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[poll]\ninterval = \"500ms\"\nquery_timeout = \"2s\"\n\
         [[shards]]\nname = \"granted\"\nurl = \"{url}\"\nschemas = [\"app\"]\n\
         [[shards]]\nname = \"wrong-password\"\nurl = \"{wrong}\"\n"
    );
    let app = spawn_app(settings(&toml)).await;
    app.wait_ready().await;
    let (_, shards) = app.get_json("/api/shards").await;
    let granted = &shards["shards"][0];
    assert_eq!(granted["up"], false);
    assert!(
        granted["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("schema app not visible"),
        "{granted}"
    );
    let wrong_pw = &shards["shards"][1];
    assert_eq!(wrong_pw["up"], false);
    assert!(
        wrong_pw["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("Access denied"),
        "{wrong_pw}"
    );

    // No password anywhere the outside can read.
    let (_, metrics) = app.get_text("/metrics").await;
    let (_, shards_text) = app.get_text("/api/shards").await;
    for text in [&metrics, &shards_text] {
        assert!(
            !text.contains("m0nitor-pw") && !text.contains("wr0ng-pw"),
            "{text}"
        );
    }

    // The grant the README names is enough.
    db.exec("GRANT SELECT ON app.* TO 'monitor'@'127.0.0.1';")
        .expect("grant");
    app.wait_until("granted shard up", |app| {
        let store = app.store.clone();
        async move { store.read().shards[0].up }
    })
    .await;
    let (_, doc) = app.get_json("/api/columns?shard=granted").await;
    let refs = find_column(&doc, "granted", "app.refs.user_id");
    assert_eq!(refs["kind"], "foreign_key");
    assert_eq!(refs["current"].as_u64(), Some(30_000));
    assert_eq!(refs["status"], "critical");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_that_requires_tls_is_read_over_tls_when_the_url_asks_for_it() {
    let mut servers = start_servers(&["tls"]);
    let db = &mut servers[0];
    db.exec(COUNTERS_SQL).expect("seed");
    db.require_tls().expect("TLS");
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[poll]\nquery_timeout = \"5s\"\n\
         [[shards]]\nname = \"tls\"\nurl = \"{}?ssl-mode=required\"\n\
         [[shards]]\nname = \"plain\"\nurl = \"{}?ssl-mode=disabled\"\n",
        db.url("root", None),
        db.url("root", None)
    );
    let (poller, store) = poller(&toml);
    poller.poll_once().await;
    poller.close().await;
    let snap = store.read();
    assert!(snap.shards[0].up, "{:?}", snap.shards[0].last_error);
    assert_eq!(snap.shards[0].columns.len(), 2);
    assert!(!snap.shards[1].up);
    // The server refuses the unencrypted connection (MariaDB words it as access denied).
    let error = snap.shards[1].last_error.clone().unwrap_or_default();
    assert!(error.contains("shard plain: connecting"), "{error}");
}
