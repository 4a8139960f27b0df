//! The safety nets of Etsy's remediation list, on real MariaDB: a shard without strict mode
//! (a clamped value is reported exhausted, with the reason, on the API, the metrics and the
//! page) and ticket sources whose servers can hand out the same ID (the reason, the gauge,
//! a critical page that resolves once the servers are fixed).

use std::time::{Duration, Instant};

use headroom::policy::CLAMPED_REASON;
use headroom_sandbox::pagerduty::Receiver;
use headroom_sandbox::{self as sandbox, MariaDb};
use serde_json::Value;

use crate::harness::{TestApp, find_column, metric_value, settings, spawn_app, start_servers};

/// The child table, named as a hostile user may name it: the name is in the page text.
const ORDERS: &str = "or`d\"ers {table}#--";

/// `ORDERS` as an identifier in SQL.
fn orders() -> String {
    format!("app.`{}`", ORDERS.replace('`', "``"))
}

/// A parent `users.user_id` INT and a child `ORDERS.user_id` INT with a declared foreign
/// key: the child is measured by MAX(parent).
fn users_and_orders_sql() -> String {
    format!(
        "CREATE DATABASE app;
CREATE TABLE app.users (user_id INT NOT NULL PRIMARY KEY) ENGINE=InnoDB;
CREATE TABLE {} (
  order_id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  user_id INT NOT NULL,
  KEY user_id (user_id),
  CONSTRAINT orders_user FOREIGN KEY (user_id) REFERENCES app.users (user_id)
) ENGINE=InnoDB;",
        orders()
    )
}

/// Waits until `f` holds, up to 30 s.
async fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The webhook events with this action and dedup key.
fn events(hook: &Receiver, action: &str, key: &str) -> Vec<Value> {
    hook.events()
        .into_iter()
        .filter(|e| e["action"] == action && e["dedup_key"] == key)
        .collect()
}

fn head(hook: &Receiver, dir: &tempfile::TempDir) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[poll]\ninterval = \"300ms\"\nquery_timeout = \"2s\"\n\
         [state]\npath = \"{}\"\n[webhook]\nurl = \"{}\"\nretry_initial = \"50ms\"\n",
        dir.path().join("state.json").display(),
        hook.hook_url()
    )
}

fn shard_toml(name: &str, url: &str) -> String {
    format!("[[shards]]\nname = \"{name}\"\nurl = \"{url}\"\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_clamped_at_int_max_on_a_lax_shard_is_exhausted_with_the_reason_and_a_strict_shard_is_not()
 {
    let servers = start_servers(&["lax", "strict"]);
    let (lax, strict) = (&servers[0], &servers[1]);
    lax.exec(&users_and_orders_sql()).expect("seeding lax");
    strict
        .exec(&users_and_orders_sql())
        .expect("seeding strict");
    // Without strict mode, 3000000000 goes into the INT columns as 2147483647, silently.
    lax.exec(&format!(
        "SET GLOBAL sql_mode = ''; SET SESSION sql_mode = '';
INSERT INTO app.users VALUES (3000000000);
INSERT INTO {} VALUES (1, 3000000000);",
        orders()
    ))
    .expect("inserting on the lax shard");
    assert_eq!(
        lax.exec(&format!("SELECT MAX(user_id) FROM {}", orders()))
            .expect("reading")
            .trim(),
        "2147483647",
        "the value was clamped"
    );
    // In strict mode the same insert fails; the maximum itself is an ordinary value.
    assert!(
        strict
            .exec("INSERT INTO app.users VALUES (3000000000)")
            .is_err()
    );
    strict
        .exec(&format!(
            "INSERT INTO app.users VALUES (2147483647);
INSERT INTO {} VALUES (1, 2147483647);",
            orders()
        ))
        .expect("inserting on the strict shard");

    let hook = Receiver::start_webhook(0).await.expect("webhook");
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = head(&hook, &dir)
        + &shard_toml("lax", &lax.url("root", None))
        + &shard_toml("strict", &strict.url("root", None))
        // Never read: its strict mode stays unknown.
        + &shard_toml("gone", "mysql://root@127.0.0.1:1/");
    let app = spawn_app(settings(&toml)).await;
    app.wait_ready().await;

    let (status, doc) = app.get_json("/api/shards").await;
    assert_eq!(status, 200);
    let shard = |name: &str| -> Value {
        doc["shards"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("{name} not in {doc:#}"))
    };
    assert_eq!(shard("lax")["strict_mode"], false);
    assert_eq!(shard("lax")["sql_mode"], "");
    assert_eq!(shard("strict")["strict_mode"], true);
    assert!(
        shard("strict")["sql_mode"]
            .as_str()
            .unwrap_or("")
            .split(',')
            .any(|m| m == "STRICT_TRANS_TABLES"),
        "{doc:#}"
    );
    assert_eq!(shard("gone")["strict_mode"], Value::Null);

    let (_, columns) = app.get_json("/api/columns").await;
    let clamped = find_column(&columns, "lax", &format!("app.{ORDERS}.user_id"));
    assert_eq!(clamped["kind"], "foreign_key");
    assert_eq!(clamped["current"].as_u64(), Some(2_147_483_647));
    assert_eq!(clamped["max"].as_u64(), Some(2_147_483_647));
    assert_eq!(clamped["remaining"].as_i64(), Some(0));
    assert_eq!(clamped["status"], "exhausted");
    assert_eq!(clamped["clamped"], true);
    assert_eq!(clamped["reason"], CLAMPED_REASON);
    let at_max = find_column(&columns, "strict", &format!("app.{ORDERS}.user_id"));
    assert_eq!(at_max["current"].as_u64(), Some(2_147_483_647));
    assert_eq!(at_max["status"], "critical");
    assert_eq!(at_max["clamped"], false);
    assert_eq!(at_max["reason"], Value::Null);

    let text = app.metrics_text();
    let strict_gauge =
        |shard: &str| metric_value(&text, "headroom_shard_strict_mode", &[("shard", shard)]);
    assert_eq!(strict_gauge("lax"), Some(0.0));
    assert_eq!(strict_gauge("strict"), Some(1.0));
    assert_eq!(strict_gauge("gone"), None, "{text}");
    let column_status = |shard: &str| {
        metric_value(
            &text,
            "headroom_column_status",
            // As the exposition format escapes it.
            &[
                ("shard", shard),
                ("table", &ORDERS.replace('"', "\\\"")),
                ("column", "user_id"),
            ],
        )
    };
    assert_eq!(column_status("lax"), Some(3.0));
    assert_eq!(column_status("strict"), Some(2.0));

    // The page says why a column that is not past its maximum is exhausted.
    let lax_key = format!("headroom/column/lax/app.{ORDERS}.user_id");
    let strict_key = format!("headroom/column/strict/app.{ORDERS}.user_id");
    eventually("both pages", || {
        !events(&hook, "trigger", &lax_key).is_empty()
            && !events(&hook, "trigger", &strict_key).is_empty()
    })
    .await;
    let page = &events(&hook, "trigger", &lax_key)[0];
    assert_eq!(page["severity"], "critical");
    assert_eq!(page["level"], 3);
    assert_eq!(
        page["summary"],
        format!(
            "app.{ORDERS}.user_id on lax: EXHAUSTED. It holds 2147483647, the exact maximum of INT, on a shard without strict mode: larger IDs were probably clamped to it and stored wrong"
        )
    );
    assert_eq!(page["custom_details"]["clamped"], true);
    assert_eq!(page["custom_details"]["reason"], CLAMPED_REASON);
    let page = &events(&hook, "trigger", &strict_key)[0];
    assert_eq!(page["level"], 2);
    assert!(
        !page["summary"]
            .as_str()
            .unwrap_or("")
            .contains("strict mode"),
        "{page:#}"
    );
    app.stop().await;
}

/// Where the ticket servers' counters start: just below 2^31 − 1.
const START: u64 = 2_147_483_000;

/// A ticket server at [`START`] with this global increment and offset (what headroom's
/// session takes when it connects), after handing out one ticket; returns it and the ticket.
fn ticket_server(server: &MariaDb, increment: u8, offset: u8) -> u64 {
    server
        .exec(&sandbox::ticket_server_sql(offset, START))
        .expect("seeding ticket server");
    server
        .exec(&format!(
            "SET GLOBAL auto_increment_increment = {increment}; SET GLOBAL auto_increment_offset = {offset};"
        ))
        .expect("setting the sequence");
    sandbox::hand_out_tickets(server, 1).expect("handing out a ticket")
}

fn source_toml(name: &str, servers: &[&MariaDb]) -> String {
    let urls: Vec<String> = servers
        .iter()
        .map(|s| format!("\"{}\"", s.url("root", Some("tickets"))))
        .collect();
    format!(
        "[[sources]]\nname = \"{name}\"\nkind = \"ticket_server\"\nservers = [{}]\ntable = \"Tickets64\"\n",
        urls.join(", ")
    )
}

fn source<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["sources"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("{name} not in {doc:#}"))
}

fn label(server: &MariaDb) -> String {
    format!("127.0.0.1:{}", server.port())
}

async fn sources(app: &TestApp) -> Value {
    let (status, doc) = app.get_json("/api/sources").await;
    assert_eq!(status, 200);
    doc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colliding_ticket_pairs_are_reported_with_their_reason_and_page_and_a_correct_pair_does_not()
 {
    let servers = start_servers(&["t-odd", "t-even", "t-odd-too", "t-one", "t-one-too"]);
    let [odd, even, odd_too, one, one_too] = &servers[..] else {
        unreachable!("five servers")
    };
    // Flickr's pair: odd and even IDs. The same offset twice, and increment 1 twice, collide.
    assert_eq!(ticket_server(odd, 2, 1), START + 1);
    assert_eq!(ticket_server(even, 2, 2), START);
    assert_eq!(ticket_server(odd_too, 2, 1), START + 1);
    assert_eq!(ticket_server(one, 1, 1), START);
    assert_eq!(ticket_server(one_too, 1, 1), START);

    let hook = Receiver::start_webhook(0).await.expect("webhook");
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = head(&hook, &dir)
        // The pager evaluates after each shard poll: one of the ticket servers serves.
        + &shard_toml("tickets-odd", &odd.url("root", None))
        + &source_toml("flickr", &[odd, even])
        + &source_toml("same_offset", &[odd, odd_too])
        + &source_toml("increment_one", &[one, one_too]);
    let app = spawn_app(settings(&toml)).await;
    app.wait_ready().await;
    let same_key = "headroom/collision/same_offset";
    let one_key = "headroom/collision/increment_one";
    eventually("both collision pages", || {
        !events(&hook, "trigger", same_key).is_empty()
            && !events(&hook, "trigger", one_key).is_empty()
    })
    .await;

    let doc = sources(&app).await;
    let flickr = source(&doc, "flickr");
    assert_eq!(flickr["collision_risk"], false, "{doc:#}");
    assert_eq!(flickr["collision_reason"], Value::Null);
    let servers_of = |s: &Value| -> Vec<(String, u64, u64)> {
        s["servers"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|srv| {
                        (
                            srv["server"].as_str().unwrap_or("").to_string(),
                            srv["auto_increment_increment"].as_u64().unwrap_or(0),
                            srv["auto_increment_offset"].as_u64().unwrap_or(0),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        servers_of(flickr),
        [(label(odd), 2, 1), (label(even), 2, 2)]
    );

    let same = source(&doc, "same_offset");
    assert_eq!(same["collision_risk"], true);
    assert_eq!(
        same["collision_reason"],
        format!(
            "{} and {} hand out the same IDs: the same auto_increment_offset modulo their auto_increment_increment 2 (1 and 1)",
            label(odd),
            label(odd_too),
        )
    );
    let one_reason = source(&doc, "increment_one")["collision_reason"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        one_reason.starts_with(&format!(
            "{} has auto_increment_increment 1, fewer than the source's 2 servers: some servers hand out the same IDs; {} has auto_increment_increment 1",
            label(one),
            label(one_too)
        )),
        "{one_reason}"
    );
    assert_eq!(source(&doc, "increment_one")["collision_risk"], true);

    let text = app.metrics_text();
    let risk = |s: &str| metric_value(&text, "headroom_source_collision_risk", &[("source", s)]);
    assert_eq!(risk("flickr"), Some(0.0));
    assert_eq!(risk("same_offset"), Some(1.0));
    assert_eq!(risk("increment_one"), Some(1.0));

    let page = &events(&hook, "trigger", same_key)[0];
    assert_eq!(page["severity"], "critical");
    assert_eq!(page["class"], "id_collision");
    assert_eq!(
        page["summary"],
        format!(
            "ID source same_offset: its servers can hand out the same ID. {}",
            same["collision_reason"].as_str().unwrap_or("")
        )
    );
    assert_eq!(
        page["custom_details"]["servers"][1]["auto_increment_offset"],
        1
    );
    assert!(events(&hook, "trigger", "headroom/collision/flickr").is_empty());

    // The second server is given its own offset, and its next ticket is even: the risk is
    // gone at the next read (a new session each time) and the page resolves.
    odd_too
        .exec("SET GLOBAL auto_increment_offset = 2;")
        .expect("fixing the offset");
    assert_eq!(
        sandbox::hand_out_tickets(odd_too, 1).expect("ticket"),
        START + 4
    );
    eventually("the resolve", || {
        !events(&hook, "resolve", same_key).is_empty()
    })
    .await;
    let doc = sources(&app).await;
    assert_eq!(source(&doc, "same_offset")["collision_risk"], false);
    assert_eq!(source(&doc, "same_offset")["collision_reason"], Value::Null);
    assert_eq!(
        metric_value(
            &app.metrics_text(),
            "headroom_source_collision_risk",
            &[("source", "same_offset")]
        ),
        Some(0.0)
    );
    assert_eq!(events(&hook, "trigger", same_key).len(), 1);
    assert!(events(&hook, "resolve", one_key).is_empty());
    app.stop().await;
}
