//! The HTTP API: /api/columns filters, sorting, limits and 400s; /api/shards, /api/sources,
//! health; and /metrics names and values, including columns that disappear.

use crate::harness::{TestApp, metric_value, settings, spawn_app, start_servers};

const SCHEMA_SQL: &str = "CREATE DATABASE shop;
CREATE TABLE shop.small (id TINYINT NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=100;
CREATE TABLE shop.medium (id SMALLINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=50000;
CREATE TABLE shop.big (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=10;
CREATE TABLE shop.child (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, small_id TINYINT NOT NULL,
  FOREIGN KEY (small_id) REFERENCES shop.small (id));
CREATE DATABASE other;
CREATE TABLE other.t (id MEDIUMINT NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=8000000;";

fn names(doc: &serde_json::Value) -> Vec<String> {
    doc["columns"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    format!(
                        "{}.{}.{}",
                        c["schema"].as_str().unwrap_or(""),
                        c["table"].as_str().unwrap_or(""),
                        c["column"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn bad_request(app: &TestApp, query: &str, mentions: &str) {
    let (status, body) = app.get_json(&format!("/api/columns?{query}")).await;
    assert_eq!(status, 400, "{query}");
    let error = body["error"].as_str().unwrap_or("");
    assert!(error.contains(mentions), "{query}: {error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn columns_are_filtered_sorted_and_limited_and_bad_parameters_get_400() {
    let servers = start_servers(&["api"]);
    servers[0].exec(SCHEMA_SQL).expect("seed");
    let app = spawn_app(settings(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[[shards]]\nname = \"s1\"\nurl = \"{}\"\n",
        servers[0].url("root", None)
    )))
    .await;
    let (status, _) = app.get_json("/healthz").await;
    assert_eq!(status, 200);
    app.wait_ready().await;
    let (status, ready) = app.get_json("/readyz").await;
    assert_eq!((status, ready["status"].as_str()), (200, Some("ready")));

    // Default: highest ratio first. other.t 8000000/8388607, small 100/127 (and child.small_id
    // 100/127, ties by name), medium 50000/65535, child.id 1/2^31, big 10/2^63.
    let (status, doc) = app.get_json("/api/columns").await;
    assert_eq!(status, 200);
    assert!(doc["generated_at"].is_string());
    assert_eq!(
        names(&doc),
        [
            "other.t.id",
            "shop.child.small_id",
            "shop.small.id",
            "shop.medium.id",
            "shop.child.id",
            "shop.big.id"
        ]
    );
    let first = &doc["columns"][0];
    for field in [
        "shard",
        "schema",
        "table",
        "column",
        "column_type",
        "kind",
        "source",
        "current",
        "max",
        "remaining",
        "used_ratio",
        "status",
        "type_mismatch",
        "observed_at",
    ] {
        assert!(first.get(field).is_some(), "field {field} missing: {first}");
    }
    assert_eq!(first["column_type"], "mediumint(9)");
    assert_eq!(first["source"], serde_json::Value::Null);
    assert_eq!(doc["columns"][1]["source"], "shop.small.id");

    let (_, doc) = app.get_json("/api/columns?sort=name").await;
    assert_eq!(names(&doc)[0], "other.t.id");
    assert_eq!(names(&doc)[1], "shop.big.id");
    let (_, doc) = app
        .get_json("/api/columns?schema=shop&kind=foreign_key")
        .await;
    assert_eq!(names(&doc), ["shop.child.small_id"]);
    let (_, doc) = app.get_json("/api/columns?table=medium").await;
    assert_eq!(names(&doc), ["shop.medium.id"]);
    let (_, doc) = app
        .get_json("/api/columns?table=child&column=small_id")
        .await;
    assert_eq!(names(&doc), ["shop.child.small_id"]);
    let (_, doc) = app.get_json("/api/columns?status=critical").await;
    assert_eq!(names(&doc), ["other.t.id"]);
    let (_, doc) = app.get_json("/api/columns?status=warning,critical").await;
    assert_eq!(
        names(&doc),
        [
            "other.t.id",
            "shop.child.small_id",
            "shop.small.id",
            "shop.medium.id"
        ]
    );
    let (_, doc) = app.get_json("/api/columns?min_ratio=0.78").await;
    assert_eq!(
        names(&doc),
        ["other.t.id", "shop.child.small_id", "shop.small.id"]
    );
    let (_, doc) = app.get_json("/api/columns?limit=2").await;
    assert_eq!(names(&doc), ["other.t.id", "shop.child.small_id"]);
    assert_eq!(doc["total"], 6);
    let (_, doc) = app.get_json("/api/columns?shard=nope").await;
    assert_eq!(names(&doc).len(), 0);

    bad_request(&app, "colour=red", "unknown parameter \"colour\"").await;
    bad_request(&app, "status=fine", "status").await;
    bad_request(&app, "kind=sequence", "kind").await;
    bad_request(&app, "min_ratio=lots", "min_ratio").await;
    bad_request(&app, "min_ratio=-1", "min_ratio").await;
    bad_request(&app, "limit=0", "limit").await;
    bad_request(&app, "limit=ten", "limit").await;
    bad_request(&app, "sort=size", "sort").await;
    bad_request(&app, "shard=a&shard=b", "given twice").await;

    let (status, body) = app.get_json("/api/nothing").await;
    assert_eq!(status, 404);
    assert!(body["error"].is_string());

    let (_, shards) = app.get_json("/api/shards").await;
    let s1 = &shards["shards"][0];
    assert_eq!(s1["name"], "s1");
    assert_eq!(s1["up"], true);
    assert_eq!(s1["column_count"], 6);
    assert!(s1["poll_duration_seconds"].as_f64().is_some());
    assert!(s1["last_success"].is_string());
    assert_eq!(s1["last_error"], serde_json::Value::Null);
    let (_, sources) = app.get_json("/api/sources").await;
    assert_eq!(sources["sources"].as_array().map(Vec::len), Some(0));
    let (status, incidents) = app.get_json("/api/incidents").await;
    assert_eq!(status, 200);
    assert_eq!(incidents["notifiers"], serde_json::json!([]));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_carry_the_contract_names_and_a_dropped_table_disappears() {
    let servers = start_servers(&["metrics"]);
    servers[0].exec(SCHEMA_SQL).expect("seed");
    let app = spawn_app(settings(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[poll]\ninterval = \"300ms\"\n[[shards]]\nname = \"s1\"\nurl = \"{}\"\n",
        servers[0].url("root", None)
    )))
    .await;
    app.wait_ready().await;
    let (status, text) = app.get_text("/metrics").await;
    assert_eq!(status, 200);
    for name in [
        "headroom_column_current",
        "headroom_column_max",
        "headroom_column_remaining",
        "headroom_column_used_ratio",
        "headroom_column_type_mismatch",
        "headroom_shard_up",
        "headroom_shard_poll_duration_seconds",
        "headroom_shard_last_success_timestamp_seconds",
        "headroom_poll_errors_total",
    ] {
        assert!(text.contains(&format!("# TYPE {name} ")), "{name} missing");
    }
    assert!(text.contains("# TYPE headroom_poll_errors_total counter"));
    let small = [
        ("shard", "s1"),
        ("schema", "shop"),
        ("table", "small"),
        ("column", "id"),
        ("kind", "auto_increment"),
    ];
    assert_eq!(
        metric_value(&text, "headroom_column_current", &small),
        Some(100.0)
    );
    assert_eq!(
        metric_value(&text, "headroom_column_max", &small),
        Some(127.0)
    );
    assert_eq!(
        metric_value(&text, "headroom_column_remaining", &small),
        Some(27.0)
    );
    assert_eq!(
        metric_value(&text, "headroom_column_used_ratio", &small),
        Some(100.0 / 127.0)
    );
    assert_eq!(
        metric_value(&text, "headroom_column_type_mismatch", &small),
        Some(0.0)
    );
    assert!(
        metric_value(
            &text,
            "headroom_shard_last_success_timestamp_seconds",
            &[("shard", "s1")]
        )
        .unwrap_or(0.0)
            > 1.7e9
    );

    servers[0].exec("DROP TABLE other.t;").expect("drop");
    app.wait_until("other.t gone from /metrics", |app| {
        let url = app.url("/metrics");
        async move {
            let text = reqwest::get(url)
                .await
                .expect("GET")
                .text()
                .await
                .expect("body");
            metric_value(&text, "headroom_column_current", &[("schema", "other")]).is_none()
        }
    })
    .await;
    let (_, doc) = app.get_json("/api/columns?schema=other").await;
    assert_eq!(doc["columns"].as_array().map(Vec::len), Some(0));
    let (_, text) = app.get_text("/metrics").await;
    assert!(metric_value(&text, "headroom_column_current", &small).is_some());
    assert!(!text.contains("schema=\"other\""));
    app.stop().await;
}
