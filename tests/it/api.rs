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
    bad_request(&app, "kind=snowflake", "kind").await;
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
        None,
        "remaining is max - current in PromQL"
    );
    assert_eq!(
        metric_value(&text, "headroom_column_used_ratio", &small),
        None,
        "the used ratio is current / max in PromQL"
    );
    let with_ratio = headroom::metrics::Metrics::with_settings(headroom::config::MetricsSettings {
        used_ratio: true,
        ..Default::default()
    });
    assert_eq!(
        metric_value(
            &with_ratio.render(&app.store.read()),
            "headroom_column_used_ratio",
            &small
        ),
        Some(100.0 / 127.0),
        "[metrics] used_ratio = true writes it"
    );
    assert_eq!(
        metric_value(&text, "headroom_column_type_mismatch", &small),
        None,
        "type_mismatch is written only when 1"
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

/// A headroom whose only shard is unreachable: enough for the API's answers to bad input.
async fn app_without_database() -> TestApp {
    spawn_app(settings(
        "[server]\nlisten = \"127.0.0.1:0\"\n[poll]\ninterval = \"1h\"\n[[shards]]\nname = \"s1\"\nurl = \"mysql://monitor@127.0.0.1:1\"\n",
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn column_filters_match_exactly_and_an_empty_kind_or_status_gets_400() {
    let servers = start_servers(&["exact"]);
    servers[0].exec(SCHEMA_SQL).expect("seed");
    let app = spawn_app(settings(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[[shards]]\nname = \"s1\"\nurl = \"{}\"\n",
        servers[0].url("root", None)
    )))
    .await;
    app.wait_ready().await;
    let (_, doc) = app.get_json("/api/columns?shard=s1&table=medium").await;
    assert_eq!(names(&doc), ["shop.medium.id"]);
    for query in [
        "shard=%20s1",
        "shard=s1%20",
        "table=%20medium",
        "schema=shop%09",
        "shard=",
    ] {
        let (status, doc) = app.get_json(&format!("/api/columns?{query}")).await;
        assert_eq!(status, 200, "{query}");
        assert_eq!(names(&doc).len(), 0, "{query}: {doc}");
        assert_eq!(doc["total"], 0, "{query}");
    }
    bad_request(
        &app,
        "status=",
        "status is empty: give one value or a comma-separated list",
    )
    .await;
    bad_request(
        &app,
        "kind=",
        "kind is empty: give one value or a comma-separated list",
    )
    .await;
    bad_request(
        &app,
        "status=critical,",
        "status: \"critical,\" has an empty item",
    )
    .await;
    bad_request(
        &app,
        "status=critical,%20warning",
        "unknown status \" warning\"",
    )
    .await;
    bad_request(&app, "limit=%205", "limit").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_on_shards_sources_and_incidents_get_400_naming_the_parameter() {
    let app = app_without_database().await;
    for endpoint in ["/api/shards", "/api/sources", "/api/incidents"] {
        let (status, body) = app.get_json(&format!("{endpoint}?shard=s1&x=1")).await;
        assert_eq!(status, 400, "{endpoint}");
        assert_eq!(
            body,
            serde_json::json!({
                "error": format!("unknown parameter \"shard\": {endpoint} accepts no parameters")
            })
        );
        let (status, _) = app.get_json(&format!("{endpoint}?")).await;
        assert_eq!(status, 200, "{endpoint} with an empty query");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_not_allowed_gets_405_with_the_json_error_and_the_allow_header() {
    let app = app_without_database().await;
    let client = reqwest::Client::new();
    for path in ["/api/columns", "/metrics", "/healthz"] {
        let resp = client.post(app.url(path)).send().await.expect("POST");
        assert_eq!(resp.status().as_u16(), 405, "{path}");
        assert_eq!(
            resp.headers().get("allow").and_then(|v| v.to_str().ok()),
            Some("GET,HEAD"),
            "{path}"
        );
        let body: serde_json::Value = resp.json().await.expect("JSON body");
        assert_eq!(
            body,
            serde_json::json!({
                "error": "method POST is not allowed here: every endpoint answers GET (and HEAD)"
            })
        );
    }
    app.stop().await;
}

/// A headroom polling `SCHEMA_SQL` once (interval one hour), so that answers do not change.
async fn app_polled_once(name: &str) -> (TestApp, Vec<headroom_sandbox::MariaDb>) {
    let servers = start_servers(&[name]);
    servers[0].exec(SCHEMA_SQL).expect("seed");
    let app = spawn_app(settings(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[poll]\ninterval = \"1h\"\n[[shards]]\nname = \"s1\"\nurl = \"{}\"\n",
        servers[0].url("root", None)
    )))
    .await;
    app.wait_ready().await;
    (app, servers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_skips_after_sorting_keeps_total_and_bad_offsets_get_400() {
    let (app, _servers) = app_polled_once("offset").await;
    let (status, doc) = app.get_json("/api/columns?limit=2&offset=1").await;
    assert_eq!(status, 200);
    assert_eq!(doc["total"], 6);
    assert_eq!(names(&doc), ["shop.child.small_id", "shop.small.id"]);
    // Without a limit (streamed): the rest after the offset.
    let (status, doc) = app.get_json("/api/columns?offset=4").await;
    assert_eq!(status, 200);
    assert_eq!(doc["total"], 6);
    assert_eq!(names(&doc), ["shop.child.id", "shop.big.id"]);
    let (_, doc) = app.get_json("/api/columns?offset=6").await;
    assert_eq!((doc["total"].as_u64(), names(&doc).len()), (Some(6), 0));
    let (_, doc) = app.get_json("/api/columns?offset=99&limit=1").await;
    assert_eq!((doc["total"].as_u64(), names(&doc).len()), (Some(6), 0));
    let (_, doc) = app
        .get_json("/api/columns?sort=name&offset=1&limit=1&schema=shop")
        .await;
    assert_eq!(
        (doc["total"].as_u64(), names(&doc)),
        (Some(5), vec!["shop.child.id".to_string()])
    );
    for bad in [
        "offset=-1",
        "offset=abc",
        "offset=1.5",
        "offset=",
        "offset=1&offset=2",
    ] {
        bad_request(&app, bad, "offset").await;
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlimited_answer_is_streamed_and_holds_every_page_in_order() {
    let (app, _servers) = app_polled_once("stream").await;
    let resp = reqwest::get(app.url("/api/columns?sort=name"))
        .await
        .expect("GET");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    // Streamed: no length known in advance.
    assert!(resp.headers().get("content-length").is_none());
    let whole: serde_json::Value = resp.json().await.expect("one JSON document");
    assert_eq!(whole["total"], 6);
    assert!(whole["generated_at"].is_string());
    let mut paged = Vec::new();
    for offset in [0, 2, 4] {
        let (_, page) = app
            .get_json(&format!("/api/columns?sort=name&limit=2&offset={offset}"))
            .await;
        paged.extend(page["columns"].as_array().cloned().unwrap_or_default());
    }
    assert_eq!(
        whole["columns"].as_array().cloned().unwrap_or_default(),
        paged
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_gzipped_when_the_scraper_asks_and_decompress_to_the_same_text() {
    use std::io::Read as _;
    let (app, _servers) = app_polled_once("gzip").await;
    let (_, plain) = app.get_text("/metrics").await;
    let resp = reqwest::Client::new()
        .get(app.url("/metrics"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()
            .get("content-encoding")
            .and_then(|v| v.to_str().ok()),
        Some("gzip")
    );
    let zipped = resp.bytes().await.expect("body");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&zipped[..])
        .read_to_string(&mut text)
        .expect("gzip");
    assert_eq!(text, plain);
    assert!(zipped.len() < plain.len());
    // Not asked: not compressed.
    let resp = reqwest::get(app.url("/metrics")).await.expect("GET");
    assert!(resp.headers().get("content-encoding").is_none());
    app.stop().await;
}

/// A load as real clients send it: Python `requests`, `curl --compressed` and a browser's
/// `Accept-Encoding`, many at once, on every JSON endpoint, with matches and without. Each
/// answer arrives whole and decodes to one JSON document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_with_real_clients_headers_gets_every_answer_whole() {
    use std::io::Read as _;
    let (app, _servers) = app_polled_once("load").await;
    let client = reqwest::Client::new();
    let headers = [
        ("python-requests/2.32.3", "gzip, deflate"),
        ("curl/8.5.0", "deflate, gzip, br, zstd"),
        ("Mozilla/5.0", "gzip, deflate, br"),
    ];
    let paths = [
        ("/api/columns", 6),
        ("/api/columns?status=exhausted", 0),
        ("/api/columns?sort=name&limit=1", 1),
        ("/api/shards", 1),
        ("/api/sources", 0),
        ("/api/incidents", 0),
    ];
    let mut requests = Vec::new();
    for round in 0..40 {
        for (path, expected) in paths {
            let (agent, encoding) = headers[round % headers.len()];
            let request = client
                .get(app.url(path))
                .header("user-agent", agent)
                .header("accept-encoding", encoding)
                .header("accept", "*/*");
            requests.push(async move {
                let resp = request.send().await.expect("GET");
                let status = resp.status().as_u16();
                let gzipped = resp.headers().get("content-encoding").is_some();
                let raw = resp.bytes().await.expect("a whole body");
                let mut body = Vec::new();
                if gzipped {
                    flate2::read::GzDecoder::new(&raw[..])
                        .read_to_end(&mut body)
                        .expect("a whole gzip stream");
                } else {
                    body = raw.to_vec();
                }
                let doc: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
                (path, expected, status, doc)
            });
        }
    }
    let answers = futures::future::join_all(requests).await;
    assert_eq!(answers.len(), 240);
    for (path, expected, status, doc) in answers {
        assert_eq!(status, 200, "{path}");
        let list = ["columns", "shards", "sources", "notifiers"]
            .iter()
            .find_map(|k| doc[*k].as_array());
        assert_eq!(list.map(Vec::len), Some(expected), "{path}: {doc}");
    }
    app.stop().await;
}
