//! The one-column endpoint under a flood: a shard capped at `max_connections = 40`, 240
//! requests for a column that needs widening, 60 at a time, while an application account
//! keeps connecting. The monitor must not be what fills the shard's connection slots.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use futures::StreamExt;
use sqlx::Connection;

use crate::harness::{settings, spawn_app, start_servers};

/// `shop.small.id` (TINYINT at 100 of 127: warning) and its foreign-key child.
const SCHEMA_SQL: &str = "CREATE DATABASE shop;
CREATE TABLE shop.small (id TINYINT NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=100;
CREATE TABLE shop.child (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, small_id TINYINT NOT NULL,
  FOREIGN KEY (small_id) REFERENCES shop.small (id));
CREATE USER 'app'@'%' IDENTIFIED BY 'app-secret';
GRANT SELECT ON shop.* TO 'app'@'%';
SET GLOBAL max_connections = 40;";

const REQUESTS: usize = 240;
const PARALLEL: usize = 60;

/// `Max_used_connections` on `server`.
fn max_used_connections(server: &headroom_sandbox::MariaDb) -> u64 {
    let out = server
        .exec("SHOW GLOBAL STATUS LIKE 'Max_used_connections'")
        .expect("reading Max_used_connections");
    out.split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("unexpected SHOW STATUS output: {out:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_plan_requests_holds_one_session_per_shard_and_never_refuses_the_application() {
    let servers = start_servers(&["plan-flood"]);
    let shard = &servers[0];
    shard.exec(SCHEMA_SQL).expect("seeding the shard");
    let app = spawn_app(settings(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[poll]\ninterval = \"10m\"\n\
         [[shards]]\nname = \"s1\"\nurl = \"{}\"\n",
        shard.url("root", None)
    )))
    .await;
    app.wait_ready().await;
    // Counted from here: the poll and the seeding are not the flood's.
    shard.exec("FLUSH STATUS").expect("FLUSH STATUS");

    // The application's own account, connecting anew in a loop through the flood.
    let stop = Arc::new(AtomicBool::new(false));
    let connected = Arc::new(AtomicUsize::new(0));
    let application = tokio::spawn({
        let url = format!("mysql://app:app-secret@127.0.0.1:{}/shop", shard.port());
        let (stop, connected) = (Arc::clone(&stop), Arc::clone(&connected));
        async move {
            let mut errors = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match sqlx::MySqlConnection::connect(&url).await {
                    Ok(conn) => {
                        connected.fetch_add(1, Ordering::Relaxed);
                        let _ = conn.close().await;
                    }
                    Err(e) => errors.push(e.to_string()),
                }
            }
            errors
        }
    });
    app.wait_until("the application connected once", |_| {
        let connected = Arc::clone(&connected);
        async move { connected.load(Ordering::Relaxed) > 0 }
    })
    .await;

    let client = reqwest::Client::new();
    let url = app.url("/api/columns/s1/shop/small/id");
    let answers: Vec<(u16, Option<String>, String)> = futures::stream::iter(0..REQUESTS)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let resp = client.get(&url).send().await.expect("GET");
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                (status, retry_after, resp.text().await.expect("body"))
            }
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    stop.store(true, Ordering::Relaxed);
    let refused = application.await.expect("the application task");

    let used = max_used_connections(shard);
    assert!(
        refused.is_empty(),
        "the application was refused {} times (Max_used_connections {used}), first: {:?}",
        refused.len(),
        refused.first()
    );
    assert!(used <= 10, "Max_used_connections reached {used}");
    let mut plans = Vec::new();
    for (status, retry_after, body) in &answers {
        let doc: serde_json::Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {body}"));
        match status {
            200 => plans.push(body.as_str()),
            503 => {
                assert!(retry_after.is_some(), "a 503 without Retry-After: {body}");
                assert!(doc["error"].is_string(), "{body}");
            }
            _ => panic!("unexpected {status}: {body}"),
        }
    }
    // One column: every request waits for the one computation, which has the shard's
    // session to itself, so none is refused.
    assert_eq!(
        plans.len(),
        REQUESTS,
        "200s among {} answers",
        answers.len()
    );
    let first: serde_json::Value = serde_json::from_str(plans[0]).expect("JSON");
    assert_eq!(first["plan"]["target_type"], "BIGINT");
    assert_eq!(
        first["plan"]["changes"].as_array().map(Vec::len),
        Some(2),
        "shop.small.id and its child: {first}"
    );
    assert!(
        plans.iter().all(|p| *p == plans[0]),
        "the 200s differ: {} distinct bodies",
        plans.iter().collect::<std::collections::HashSet<_>>().len()
    );
    app.stop().await;
}
