//! Paging on real MariaDB through a local receiver that speaks PagerDuty's Events API v2:
//! one trigger per column, resolve after widening, re-trigger on a rising severity,
//! retries through 500s and 429s, no retry on 400, no loss or duplicate across a restart
//! during an outage, silences, blind shards, the webhook, and forecast accuracy.

use std::path::Path;
use std::time::{Duration, Instant};

use headroom_sandbox::MariaDb;
use headroom_sandbox::pagerduty::{Mode, Receiver};
use serde_json::Value;

use crate::harness::{Cluster, TestApp, metric_value, settings_with_env, spawn_app, start_servers};

const KEY: &str = "R0UT1NGKEY0123456789abcdef012345";
const ORDERS: &str = "headroom/column/s1/app.orders.id";

/// One shard: `app.orders.id` INT at 2e9 (critical), `app.users.id` SMALLINT at 100 (ok).
fn seeded_shard(name: &str) -> Vec<MariaDb> {
    let servers = start_servers(&[name]);
    servers[0]
        .exec(
            "CREATE DATABASE app;
CREATE TABLE app.orders (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=2000000000;
CREATE TABLE app.users (id SMALLINT NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=100;",
        )
        .expect("seed");
    servers
}

fn toml(shards: &[&MariaDb], receiver_url: &str, state: &Path, extra: &str) -> String {
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nexternal_url = \"https://headroom.example\"\n\
         [poll]\ninterval = \"300ms\"\nquery_timeout = \"2s\"\n\
         [state]\npath = \"{}\"\n\
         [pagerduty]\nrouting_key_env = \"PD_KEY\"\nurl = \"{receiver_url}\"\n\
         retry_initial = \"50ms\"\nretry_max = \"200ms\"\nmax_events_per_minute = 6000\nblind_after = \"1s\"\ntimeout = \"300ms\"\n{extra}\n",
        state.display()
    );
    for (i, s) in shards.iter().enumerate() {
        text.push_str(&format!(
            "[[shards]]\nname = \"s{}\"\nurl = \"{}\"\n",
            i + 1,
            s.url("root", None)
        ));
    }
    text
}

/// The configuration of headroom over `shard`, paging `receiver`, its state file `dir/file`.
fn paging_toml(
    shard: &MariaDb,
    receiver: &Receiver,
    dir: &tempfile::TempDir,
    file: &str,
    extra: &str,
) -> String {
    toml(&[shard], &receiver.url(), &dir.path().join(file), extra)
}

/// headroom over `shard`, paging `receiver`, its state file `dir/file`.
async fn paging_app(
    shard: &MariaDb,
    receiver: &Receiver,
    dir: &tempfile::TempDir,
    file: &str,
    extra: &str,
) -> TestApp {
    app(&paging_toml(shard, receiver, dir, file, extra)).await
}

async fn app(toml: &str) -> TestApp {
    spawn_app(settings_with_env(toml, &[("PD_KEY", KEY)])).await
}

/// Waits until `f` holds, up to 30 s.
async fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Lets `n` more polls of shard `i` happen.
async fn polls(app: &TestApp, i: usize, n: usize) {
    for _ in 0..n {
        let before = app.store.read().shards[i].last_poll;
        eventually("another poll", || {
            app.store.read().shards[i].last_poll != before
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trigger_per_critical_column_and_one_resolve_after_an_alter_to_bigint() {
    let servers = seeded_shard("pd-once");
    let receiver = Receiver::start(0).await.expect("receiver");
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.json");
    let app = app(&toml(&[&servers[0]], &receiver.url(), &state, "")).await;

    eventually("the trigger", || receiver.count("trigger", ORDERS) == 1).await;
    polls(&app, 0, 6).await;
    assert_eq!(
        receiver.count("trigger", ORDERS),
        1,
        "one trigger however many polls"
    );
    assert_eq!(receiver.events().len(), 1, "nothing for the ok column");

    let trigger = &receiver.events()[0];
    assert_eq!(trigger["routing_key"], KEY);
    let payload = &trigger["payload"];
    assert_eq!(payload["severity"], "critical");
    assert_eq!(payload["source"], "s1");
    assert_eq!(payload["component"], "app.orders.id");
    assert_eq!(payload["group"], "s1");
    assert_eq!(payload["class"], "id_column");
    let summary = payload["summary"].as_str().unwrap_or("");
    assert!(
        summary.starts_with("app.orders.id on s1: 93.1% of INT used"),
        "{summary}"
    );
    assert_eq!(payload["custom_details"]["max"], 2_147_483_647u64);
    assert_eq!(payload["custom_details"]["current"], 2_000_000_000u64);
    assert!(
        payload["custom_details"]["what_to_do"]
            .as_str()
            .unwrap_or("")
            .contains("BIGINT")
    );
    assert_eq!(
        trigger["links"][0]["href"],
        "https://headroom.example/api/columns?shard=s1&schema=app&table=orders&column=id"
    );
    assert_eq!(
        trigger["links"][1]["href"], "https://headroom.example/api/columns/s1/app/orders/id",
        "the column's widening plan"
    );
    assert_eq!(
        trigger["links"][2]["href"], "https://headroom.example/columns/s1/app/orders/id",
        "the column's page"
    );
    assert_eq!(
        payload["custom_details"]["page_url"],
        "https://headroom.example/columns/s1/app/orders/id"
    );

    let (_, incidents) = app.get_json("/api/incidents").await;
    let pd = &incidents["notifiers"][0];
    assert_eq!(pd["notifier"], "pagerduty");
    assert_eq!(pd["open"][0]["dedup_key"], ORDERS);
    assert_eq!(pd["open"][0]["severity"], "critical");
    assert_eq!(pd["undelivered"], 0);

    servers[0]
        .exec("ALTER TABLE app.orders MODIFY id BIGINT NOT NULL AUTO_INCREMENT;")
        .expect("widen");
    eventually("the resolve", || receiver.count("resolve", ORDERS) == 1).await;
    polls(&app, 0, 4).await;
    let (_, incidents) = app.get_json("/api/incidents").await;
    assert_eq!(incidents["notifiers"][0]["open"], serde_json::json!([]));
    assert_eq!(receiver.count("resolve", ORDERS), 1);
    assert_eq!(receiver.count("trigger", ORDERS), 1);

    let (_, metrics) = app.get_text("/metrics").await;
    let delivered = |action| {
        metric_value(
            &metrics,
            "headroom_pager_events_total",
            &[
                ("notifier", "pagerduty"),
                ("action", action),
                ("result", "delivered"),
            ],
        )
    };
    assert_eq!(delivered("trigger"), Some(1.0));
    assert_eq!(delivered("resolve"), Some(1.0));
    assert_eq!(
        metric_value(
            &metrics,
            "headroom_pager_queue_depth",
            &[("notifier", "pagerduty")]
        ),
        Some(0.0)
    );
    app.stop().await;
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(&state).expect("state file")).expect("json");
    assert_eq!(
        saved["notifiers"]["pagerduty"]["incidents"],
        serde_json::json!({})
    );
    assert!(
        !std::fs::read_to_string(&state)
            .unwrap_or_default()
            .contains(KEY),
        "no routing key at rest"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rise_in_severity_triggers_the_same_key_again() {
    let servers = seeded_shard("pd-rise");
    servers[0]
        .exec("ALTER TABLE app.orders AUTO_INCREMENT = 1610612740;")
        .expect("to 75%");
    let receiver = Receiver::start(0).await.expect("receiver");
    let dir = tempfile::tempdir().expect("tempdir");
    let extra = "min_severity = \"warning\"";
    let app = paging_app(&servers[0], &receiver, &dir, "s.json", extra).await;
    eventually("a warning", || receiver.count("trigger", ORDERS) == 1).await;
    assert_eq!(receiver.events()[0]["payload"]["severity"], "warning");

    servers[0]
        .exec("ALTER TABLE app.orders AUTO_INCREMENT = 1950000000;")
        .expect("to 91%");
    eventually("a critical", || receiver.count("trigger", ORDERS) == 2).await;
    polls(&app, 0, 4).await;
    let triggers: Vec<Value> = receiver
        .events()
        .into_iter()
        .filter(|e| e["dedup_key"] == ORDERS)
        .collect();
    assert_eq!(triggers.len(), 2);
    assert_eq!(triggers[1]["payload"]["severity"], "critical");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_retries_through_500s_and_429s_but_drops_a_400() {
    let servers = seeded_shard("pd-retry");
    let receiver = Receiver::start(0).await.expect("receiver");
    receiver.set_mode(Mode::Fail);
    let dir = tempfile::tempdir().expect("tempdir");
    let app = paging_app(&servers[0], &receiver, &dir, "s.json", "").await;

    eventually("three failed tries", || receiver.requests() >= 3).await;
    receiver.set_mode(Mode::RateLimited);
    let after_500s = receiver.requests();
    eventually("a throttled try", || receiver.requests() > after_500s + 1).await;
    assert!(receiver.events().is_empty());
    assert_eq!(app.pager().outbox_len("pagerduty"), 1, "still queued");
    // A receiver that never answers: each try ends at the notifier's timeout.
    receiver.set_mode(Mode::Hang);
    let before_hang = receiver.requests();
    eventually("two hung tries", || receiver.requests() >= before_hang + 2).await;
    assert!(receiver.events().is_empty());
    receiver.set_mode(Mode::Accept);
    eventually("delivered at last", || {
        receiver.count("trigger", ORDERS) == 1
    })
    .await;
    eventually("outbox empty", || app.pager().outbox_len("pagerduty") == 0).await;
    let (_, metrics) = app.get_text("/metrics").await;
    let retries = metric_value(
        &metrics,
        "headroom_pager_events_total",
        &[
            ("notifier", "pagerduty"),
            ("action", "trigger"),
            ("result", "retry"),
        ],
    )
    .unwrap_or(0.0);
    assert!(retries >= 4.0, "{retries}");

    // A 400 is final: the resolve is dropped and counted, not retried.
    receiver.set_mode(Mode::Reject);
    servers[0]
        .exec("ALTER TABLE app.orders MODIFY id BIGINT NOT NULL AUTO_INCREMENT;")
        .expect("widen");
    eventually("the resolve dropped", || {
        let text = app.metrics_text();
        metric_value(
            &text,
            "headroom_pager_events_total",
            &[("action", "resolve"), ("result", "rejected")],
        ) == Some(1.0)
    })
    .await;
    let requests = receiver.requests();
    polls(&app, 0, 4).await;
    assert_eq!(receiver.requests(), requests, "no retry after a 400");
    assert_eq!(app.pager().outbox_len("pagerduty"), 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_while_the_receiver_is_down_loses_and_duplicates_nothing() {
    let servers = seeded_shard("pd-restart");
    // A port with nothing behind it: the receiver is down.
    let port = Receiver::start(0).await.expect("probe").port();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let url = format!("http://127.0.0.1:{port}/v2/enqueue");
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.json");
    let config = toml(&[&servers[0]], &url, &state, "");

    let first = app(&config).await;
    eventually("the trigger queued", || {
        first.pager().outbox_len("pagerduty") == 1
    })
    .await;
    polls(&first, 0, 3).await;
    first.stop().await;
    let saved = std::fs::read_to_string(&state).expect("state file");
    assert!(saved.contains(ORDERS), "{saved}");

    // Restarted, still during the outage: the open incident is not queued again.
    let second = app(&config).await;
    second.wait_ready().await;
    polls(&second, 0, 3).await;
    assert_eq!(second.pager().outbox_len("pagerduty"), 1);

    let receiver = Receiver::start(port)
        .await
        .expect("receiver back on its port");
    eventually("the saved trigger delivered", || {
        receiver.count("trigger", ORDERS) == 1
    })
    .await;
    polls(&second, 0, 4).await;
    assert_eq!(receiver.count("trigger", ORDERS), 1, "no duplicate");

    servers[0]
        .exec("ALTER TABLE app.orders MODIFY id BIGINT NOT NULL AUTO_INCREMENT;")
        .expect("widen");
    eventually("the resolve", || receiver.count("resolve", ORDERS) == 1).await;
    second.stop().await;
    assert_eq!(receiver.events().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silenced_column_is_shown_but_does_not_page() {
    let servers = seeded_shard("pd-silence");
    servers[0]
        .exec("CREATE TABLE app.carts (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=2100000000;")
        .expect("second critical column");
    let receiver = Receiver::start(0).await.expect("receiver");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = paging_toml(&servers[0], &receiver, &dir, "s.json", "")
        + "[[silences]]\ncolumns = [\"app.orders.*\"]\nuntil = \"2099-01-01T00:00:00Z\"\nreason = \"migration to BIGINT under way\"\n\
           [[silences]]\ncolumns = [\"app.carts.*\"]\nuntil = \"2001-01-01T00:00:00Z\"\nreason = \"long over\"\n";
    let app = app(&config).await;
    eventually("the unsilenced column pages", || {
        receiver.count("trigger", "headroom/column/s1/app.carts.id") == 1
    })
    .await;
    polls(&app, 0, 4).await;
    assert_eq!(receiver.count("trigger", ORDERS), 0);

    let (_, doc) = app.get_json("/api/columns?table=orders").await;
    let orders = &doc["columns"][0];
    assert_eq!(orders["status"], "critical", "still measured and shown");
    assert_eq!(
        orders["silenced"]["reason"],
        "migration to BIGINT under way"
    );
    assert_eq!(orders["silenced"]["until"], "2099-01-01T00:00:00Z");
    let (_, metrics) = app.get_text("/metrics").await;
    assert_eq!(
        metric_value(&metrics, "headroom_column_silenced", &[("table", "orders")]),
        Some(1.0)
    );
    assert_eq!(
        metric_value(&metrics, "headroom_column_silenced", &[("table", "carts")]),
        None,
        "written only while silenced"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_unreachable_past_blind_after_pages_as_its_own_incident() {
    let mut servers = start_servers(&["pd-blind-1", "pd-blind-2"]);
    for s in &servers {
        s.exec("CREATE DATABASE app; CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY);")
            .expect("seed");
    }
    let receiver = Receiver::start(0).await.expect("receiver");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = toml(
        &[&servers[0], &servers[1]],
        &receiver.url(),
        &dir.path().join("s.json"),
        "",
    );
    let app = app(&config).await;
    app.wait_ready().await;
    servers[1].stop();
    eventually("the blind page", || {
        receiver.count("trigger", "headroom/blind/s2") == 1
    })
    .await;
    let page = receiver
        .events()
        .into_iter()
        .find(|e| e["dedup_key"] == "headroom/blind/s2")
        .expect("page");
    assert_eq!(page["payload"]["class"], "blind_shard");
    assert!(
        page["payload"]["summary"]
            .as_str()
            .unwrap_or("")
            .contains("cannot read shard s2")
    );
    assert_eq!(receiver.count("trigger", "headroom/blind/s1"), 0);

    servers[1].restart().expect("restart");
    eventually("the blind page resolved", || {
        receiver.count("resolve", "headroom/blind/s2") == 1
    })
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_notifier_follows_the_same_lifecycle() {
    let servers = seeded_shard("hook");
    let hook = Receiver::start_webhook(0).await.expect("webhook");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[poll]\ninterval = \"300ms\"\n\
         [state]\npath = \"{}\"\n[webhook]\nurl = \"{}\"\nretry_initial = \"50ms\"\n\
         [[shards]]\nname = \"s1\"\nurl = \"{}\"\n",
        dir.path().join("s.json").display(),
        hook.hook_url(),
        servers[0].url("root", None)
    );
    let app = app(&config).await;
    eventually("a trigger", || !hook.events().is_empty()).await;
    let e = &hook.events()[0];
    assert_eq!(e["action"], "trigger");
    assert_eq!(e["dedup_key"], ORDERS);
    assert_eq!(e["severity"], "critical");
    assert_eq!(e["class"], "id_column");
    assert!(
        e["summary"]
            .as_str()
            .unwrap_or("")
            .contains("app.orders.id on s1")
    );
    assert!(e["created_at"].is_string());
    servers[0]
        .exec("ALTER TABLE app.orders MODIFY id BIGINT NOT NULL AUTO_INCREMENT;")
        .expect("widen");
    eventually("a resolve", || {
        hook.events().iter().any(|e| e["action"] == "resolve")
    })
    .await;
    assert_eq!(hook.events().len(), 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steadily_advancing_ticket_server_is_forecast_within_ten_percent() {
    use sqlx::mysql::MySqlPoolOptions;
    use std::sync::{Arc, Mutex};

    let cluster = Cluster::start_at(1_000_000_000);
    let mut pools = Vec::new();
    for t in &cluster.tickets {
        let pool = MySqlPoolOptions::new()
            .max_connections(1)
            .connect(&t.url("root", Some("tickets")))
            .await
            .expect("ticket pool");
        pools.push(pool);
    }
    // Hand out 20 tickets on each server every 100 ms, noting (time, highest ID).
    let samples: Arc<Mutex<Vec<(Instant, u64)>>> = Arc::default();
    let traffic = {
        let samples = Arc::clone(&samples);
        tokio::spawn(async move {
            loop {
                let mut highest = 0;
                for pool in &pools {
                    let id = headroom_sandbox::hand_out_tickets_async(pool, 20)
                        .await
                        .expect("tickets");
                    highest = highest.max(id);
                }
                samples
                    .lock()
                    .expect("samples")
                    .push((Instant::now(), highest));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let app = spawn_app(settings_with_env(
        &cluster
            .toml("")
            .replace("interval = \"1s\"", "interval = \"250ms\""),
        &[],
    ))
    .await;
    app.wait_ready().await;
    let from = samples.lock().expect("samples").len();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let (_, sources) = app.get_json("/api/sources").await;
    let (_, doc) = app
        .get_json("/api/columns?shard=shard-01&table=activity_feed")
        .await;
    traffic.abort();

    let samples = samples.lock().expect("samples").clone();
    let (t0, v0) = samples[from];
    let (t1, v1) = samples[samples.len() - 1];
    let true_rate = (v1 - v0) as f64 / t1.duration_since(t0).as_secs_f64();
    let growth = sources["sources"][0]["growth_per_second"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(
        (growth - true_rate).abs() / true_rate < 0.10,
        "forecast {growth}/s, true {true_rate}/s"
    );
    let actor = doc["columns"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["column"] == "actor_id"))
        .expect("actor_id")
        .clone();
    let current = actor["current"].as_f64().unwrap_or(0.0);
    let expected = (2_147_483_647.0 - current) / true_rate;
    let got = actor["seconds_to_exhaustion"].as_f64().unwrap_or(0.0);
    assert!(
        (got - expected).abs() / expected < 0.10,
        "forecast {got} s, expected {expected} s"
    );
    assert!(actor["exhausts_at"].is_string());

    // Soonest first: the INT signed columns that store tickets lead.
    let (_, soonest) = app.get_json("/api/columns?sort=exhaustion&limit=2").await;
    for c in soonest["columns"].as_array().expect("columns") {
        assert_eq!(c["column"], "actor_id", "{soonest}");
    }
    let (_, metrics) = app.get_text("/metrics").await;
    // The growth rate as PromQL derives it: (max - current) / seconds_to_exhaustion.
    let actor_metric = |family| {
        metric_value(
            &metrics,
            family,
            &[
                ("shard", "shard-01"),
                ("table", "activity_feed"),
                ("column", "actor_id"),
            ],
        )
        .unwrap_or(0.0)
    };
    let growth_metric = (actor_metric("headroom_column_max")
        - actor_metric("headroom_column_current"))
        / actor_metric("headroom_column_seconds_to_exhaustion");
    assert!(
        (growth_metric - true_rate).abs() / true_rate < 0.10,
        "{growth_metric}"
    );
    assert!(
        metric_value(
            &metrics,
            "headroom_column_seconds_to_exhaustion",
            &[("shard", "shard-01"), ("column", "actor_id")]
        )
        .is_some()
    );
    assert!(
        metric_value(
            &metrics,
            "headroom_column_seconds_to_exhaustion",
            &[("table", "teams")]
        )
        .is_none(),
        "absent while a column does not grow"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_while_a_shard_is_down_resolves_nothing_it_cannot_see() {
    let mut servers = seeded_shard("pd-blind-restart");
    let receiver = Receiver::start(0).await.expect("receiver");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = paging_toml(&servers[0], &receiver, &dir, "s.json", "");
    let first = app(&config).await;
    eventually("the trigger", || receiver.count("trigger", ORDERS) == 1).await;
    first.stop().await;

    servers[0].stop();
    let second = app(&config).await;
    polls(&second, 0, 6).await;
    assert_eq!(
        receiver.count("resolve", ORDERS),
        0,
        "a column it cannot see is not fixed"
    );
    // Blind for longer than blind_after (1s): its own page.
    eventually("the blind page", || {
        receiver.count("trigger", "headroom/blind/s1") == 1
    })
    .await;
    assert_eq!(receiver.count("resolve", ORDERS), 0);

    servers[0].restart().expect("restart");
    eventually("the blind page resolved", || {
        receiver.count("resolve", "headroom/blind/s1") == 1
    })
    .await;
    polls(&second, 0, 4).await;
    assert_eq!(
        receiver.count("trigger", ORDERS),
        1,
        "still open, not paged again"
    );
    assert_eq!(receiver.count("resolve", ORDERS), 0, "still critical");
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_side_by_side_open_one_incident() {
    let servers = seeded_shard("pd-ha");
    let receiver = Receiver::start(0).await.expect("receiver");
    let dir = tempfile::tempdir().expect("tempdir");
    let a = paging_app(&servers[0], &receiver, &dir, "a.json", "").await;
    let b = paging_app(&servers[0], &receiver, &dir, "b.json", "").await;
    eventually("both replicas sent", || {
        receiver.count("trigger", ORDERS) == 2
    })
    .await;
    assert_eq!(receiver.incidents_opened(), 1, "one incident for the pair");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_running_out_pages_as_its_own_incident() {
    let servers = start_servers(&["pd-src-shard", "pd-src-ticket"]);
    servers[0]
        .exec("CREATE DATABASE app; CREATE TABLE app.t (id BIGINT AUTO_INCREMENT PRIMARY KEY);")
        .expect("shard");
    // A ticket server whose generator is an INT UNSIGNED at 95 %.
    servers[1]
        .exec(
            "CREATE DATABASE tickets;
CREATE TABLE tickets.Tickets32 (id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  stub CHAR(1) NOT NULL DEFAULT '', UNIQUE KEY (stub)) AUTO_INCREMENT=4080648000;
REPLACE INTO tickets.Tickets32 (stub) VALUES ('a');",
        )
        .expect("tickets");
    let receiver = Receiver::start(0).await.expect("receiver");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = paging_toml(&servers[0], &receiver, &dir, "s.json", "")
        + &format!(
            "[[sources]]\nname = \"tickets32\"\nkind = \"ticket_server\"\nservers = [\"{}\"]\ntable = \"Tickets32\"\n",
            servers[1].url("root", Some("tickets"))
        );
    let app = app(&config).await;
    eventually("the source page", || {
        receiver.count("trigger", "headroom/source/tickets32") == 1
    })
    .await;
    let page = receiver.events()[0].clone();
    assert_eq!(page["payload"]["class"], "id_source");
    assert_eq!(page["payload"]["severity"], "critical");
    let summary = page["payload"]["summary"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        summary.starts_with("ID source tickets32: 95.0% of INT UNSIGNED handed out"),
        "{summary}"
    );
    let (_, sources) = app.get_json("/api/sources").await;
    assert_eq!(sources["sources"][0]["status"], "critical");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_pagerduty_within_its_own_timeout_gets_one_copy_whatever_the_webhook_timeout() {
    let servers = seeded_shard("pd-slow");
    // PagerDuty answers after 2 s: within its 10 s timeout, past the webhook's 1 s.
    let receiver = Receiver::start(0).await.expect("receiver");
    receiver.set_mode(Mode::Delay(Duration::from_secs(2)));
    let hook = Receiver::start_webhook(0).await.expect("webhook");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = paging_toml(&servers[0], &receiver, &dir, "s.json", "")
        .replace("timeout = \"300ms\"", "timeout = \"10s\"")
        + &format!(
            "[webhook]\nurl = \"{}\"\ntimeout = \"1s\"\nretry_initial = \"50ms\"\n",
            hook.hook_url()
        );
    let app = app(&config).await;
    eventually("the trigger delivered", || {
        app.pager().outbox_len("pagerduty") == 0 && receiver.count("trigger", ORDERS) == 1
    })
    .await;
    eventually("the webhook's copy", || hook.events().len() == 1).await;
    polls(&app, 0, 4).await;
    assert_eq!(receiver.requests(), 1, "one request, no retry");
    assert_eq!(receiver.count("trigger", ORDERS), 1);
    let text = app.metrics_text();
    let pd = |result| {
        metric_value(
            &text,
            "headroom_pager_events_total",
            &[
                ("notifier", "pagerduty"),
                ("action", "trigger"),
                ("result", result),
            ],
        )
    };
    assert_eq!(pd("delivered"), Some(1.0));
    assert_eq!(pd("retry"), None);
    app.stop().await;
}
