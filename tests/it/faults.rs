//! Faults on real servers: a shard stopped mid-run, a shard slower than the timeout, a user
//! without grants, a wrong password, and shutdown while a poll hangs.

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
                    .any(|c| c.id.table == "orders" && c.current == 5000)
        }
    })
    .await;
    assert!(app.store.read().shards[1].last_error.is_none());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_slower_than_the_timeout_does_not_hold_up_the_others() {
    let servers = start_servers(&["frozen", "fast"]);
    for s in &servers {
        s.exec(COUNTERS_SQL).expect("seed");
    }
    // The frozen shard is listed (and, one at a time, polled) first: if it held the poll
    // up, the fast one would never be read again.
    let toml = two_shards_toml(
        &servers[0].url("root", None),
        &servers[1].url("root", None),
        // The whole poll's limit is above the query's, so the query's timeout is the one
        // that fires (the schedule's own limit is tested in schedule.rs).
        "concurrency = 1\nshard_timeout = \"5s\"",
    );
    servers[0].freeze();
    let app = spawn_app(settings(&toml)).await;
    let success = |app: &crate::harness::TestApp| app.store.read().shards[1].last_success;
    app.wait_until("the fast shard is read", |app| {
        let polled = success(app).is_some();
        async move { polled }
    })
    .await;
    let first = success(&app);
    app.wait_until(
        "the fast shard is read again, after the frozen one",
        |app| {
            let later = success(app) > first;
            async move { later }
        },
    )
    .await;
    let second = success(&app);
    app.wait_until("and again", |app| {
        let later = success(app) > second;
        async move { later }
    })
    .await;
    {
        let snap = app.store.read();
        assert!(snap.shards[1].up);
        assert_eq!(snap.shards[1].columns.len(), 2);
        assert!(!snap.shards[0].up);
        let error = snap.shards[0].last_error.clone().unwrap_or_default();
        assert!(error.contains("no answer within 1s"), "{error}");
    }

    servers[0].thaw();
    app.wait_until("the thawed shard is read", |app| {
        let up = app.store.read().shards[0].up;
        async move { up }
    })
    .await;
    app.stop().await;
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
    assert_eq!(
        wrong_pw["last_error"],
        "connecting: server error 1045 (28000): access denied to the monitoring user",
        "{wrong_pw}"
    );
    assert_eq!(wrong_pw["last_error_class"], "access_denied");
    assert_eq!(wrong_pw["last_error_code"], 1045);

    // No password anywhere the outside can read.
    let (_, metrics) = app.get_text("/metrics").await;
    let (_, shards_text) = app.get_text("/api/shards").await;
    for text in [&metrics, &shards_text] {
        assert!(
            !text.contains("m0nitor-pw") && !text.contains("wr0ng-pw"),
            "{text}"
        );
    }

    // The grant docs/configuration.md names is enough.
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
    assert!(error.starts_with("connecting: "), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_says_connection_refused() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[poll]\nquery_timeout = \"5s\"\n\
         [[shards]]\nname = \"closed\"\nurl = \"mysql://monitor@127.0.0.1:{port}\"\n"
    );
    let (poller, store) = poller(&toml);
    poller.poll_once().await;
    let snap = store.read();
    let shard = &snap.shards[0];
    assert!(!shard.up);
    assert_eq!(
        shard.last_error.as_deref(),
        Some("connecting: connection refused")
    );
    assert_eq!(shard.last_error_class, Some("connection_refused"));
    assert_eq!(shard.last_error_code, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_error_is_published_as_its_class_and_number_never_its_text() {
    let servers = start_servers(&["denied"]);
    let db = &servers[0];
    // The monitoring user may insert into the table but not read it: the MAX() dive on its
    // indexed reference column is refused, and the server's message names the table.
    db.exec(
        "CREATE DATABASE app;
CREATE TABLE app.`secret#{table}` (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, user_id INT, KEY (user_id));
CREATE USER 'monitor'@'127.0.0.1';
GRANT INSERT ON app.`secret#{table}` TO 'monitor'@'127.0.0.1';",
    )
    .expect("seed");
    let port = db.port();
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[poll]\nquery_timeout = \"5s\"\n\
         [[shards]]\nname = \"denied\"\nurl = \"mysql://monitor@127.0.0.1:{port}\"\nschemas = [\"app\"]\n\
         [[sources]]\nname = \"t\"\nkind = \"ticket_server\"\nservers = [\"mysql://monitor@127.0.0.1:1/t\"]\ntable = \"T\"\n\
         [[references]]\nsource = \"t\"\ncolumns = [\"app.*.user_id\"]\n"
    );
    let app = spawn_app(settings(&toml)).await;
    app.wait_ready().await;
    let (_, doc) = app.get_json("/api/shards").await;
    let shard = &doc["shards"][0];
    assert_eq!(shard["up"], false);
    assert_eq!(
        shard["last_error"],
        "reading MAX(app.secret#{table}.user_id): server error 1142 (42000): the monitoring user lacks SELECT",
        "{shard}"
    );
    assert_eq!(shard["last_error_class"], "access_denied");
    assert_eq!(shard["last_error_code"], 1142);
    let (_, sources) = app.get_json("/api/sources").await;
    let server = &sources["sources"][0]["servers"][0];
    assert_eq!(server["last_error"], "connecting: connection refused");
    assert_eq!(server["last_error_class"], "connection_refused");
    // The server's own words ("SELECT command denied to user ... for table ...") are kept in.
    let (_, text) = app.get_text("/api/shards").await;
    assert!(!text.contains("command denied"), "{text}");
    app.stop().await;
}
