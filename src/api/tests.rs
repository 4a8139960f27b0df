//! The whole router in process, as a client sees it: every endpoint through the
//! compression layer with the `Accept-Encoding` headers real clients send, and every error
//! as a JSON body, the framework's own rejections included.

use std::io::Read as _;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt as _;

use super::{AppState, router};
use crate::metrics::Metrics;

/// What Python `requests`, `curl --compressed`, browsers and Prometheus send, and nothing.
const ENCODINGS: [Option<&str>; 5] = [
    Some("gzip, deflate"),
    Some("deflate, gzip, br, zstd"),
    Some("gzip, deflate, br"),
    Some("gzip"),
    None,
];

/// The router over a store whose shard `s` holds `n` columns.
fn app(n: usize) -> axum::Router {
    let (store, _) = super::columns::tests::store(n);
    let settings = crate::config::testing::settings("");
    router(AppState {
        store,
        metrics: Arc::new(Metrics::new()),
        pager: None,
        reload: None,
        settings: Arc::new(std::sync::RwLock::new(Arc::new(settings))),
        plans: Arc::new(super::plan_cache::Plans::new()),
    })
}

/// Status, content type and the body as sent, decoded when it came gzipped.
async fn call(
    app: axum::Router,
    method: &str,
    uri: &str,
    encoding: Option<&str>,
) -> (StatusCode, String, Vec<u8>) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(encoding) = encoding {
        request = request.header(header::ACCEPT_ENCODING, encoding);
    }
    let response = app
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (content_type, content_encoding) = (
        header(header::CONTENT_TYPE),
        header(header::CONTENT_ENCODING),
    );
    let raw = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("the whole body");
    let body = match content_encoding.as_str() {
        "" => raw.to_vec(),
        "gzip" => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&raw[..])
                .read_to_end(&mut out)
                .expect("a whole gzip stream");
            out
        }
        other => panic!("an encoding nobody asked for: {other}"),
    };
    (status, content_type, body)
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "not one JSON document ({e}): {:?}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )
    })
}

#[tokio::test]
async fn a_streamed_answer_of_any_size_arrives_whole_in_every_encoding() {
    for n in [0, 1, 100_000] {
        let app = app(n);
        let queries: &[&str] = if n > 1 {
            &[""]
        } else {
            &["", "?status=critical", "?sort=name&offset=1"]
        };
        // Every header for the small answers; for the large one, each answer the layer can
        // choose (gzip or none): the others pick the same.
        let encodings: &[Option<&str>] = if n > 1 {
            &[Some("gzip, deflate"), None]
        } else {
            &ENCODINGS
        };
        for &query in queries {
            for &encoding in encodings {
                let uri = format!("/api/columns{query}");
                let (status, content_type, body) = call(app.clone(), "GET", &uri, encoding).await;
                assert_eq!(status, StatusCode::OK, "{uri} {encoding:?}");
                assert_eq!(content_type, "application/json");
                let doc = json(&body);
                let expected = match query {
                    "?status=critical" => 0,
                    "?sort=name&offset=1" => n.saturating_sub(1),
                    _ => n,
                };
                let columns = doc["columns"].as_array().expect("columns");
                assert_eq!(
                    columns.len(),
                    expected,
                    "{uri} {encoding:?} with {n} columns"
                );
            }
        }
    }
}

#[tokio::test]
async fn every_endpoint_answers_whole_in_every_encoding() {
    let app = app(3);
    for path in [
        "/metrics",
        "/api/columns",
        "/api/columns?limit=2",
        "/api/columns/s/app/t0001/id",
        "/api/shards",
        "/api/sources",
        "/api/incidents",
        "/healthz",
        "/readyz",
    ] {
        for encoding in ENCODINGS {
            let (status, _, body) = call(app.clone(), "GET", path, encoding).await;
            assert_eq!(status, StatusCode::OK, "{path} {encoding:?}");
            if path == "/metrics" {
                let text = String::from_utf8(body).expect("text");
                assert!(text.contains("headroom_"), "{path} {encoding:?}");
            } else {
                json(&body);
            }
        }
    }
}

#[tokio::test]
async fn every_error_is_a_json_body_including_the_frameworks_rejections() {
    let app = app(1);
    let cases: [(&str, &str, StatusCode); 7] = [
        // A path segment that is not UTF-8 once decoded.
        (
            "GET",
            "/api/columns/s/app/t0000/%ff",
            StatusCode::BAD_REQUEST,
        ),
        ("GET", "/api/columns?limit=x", StatusCode::BAD_REQUEST),
        ("GET", "/api/shards?x=1", StatusCode::BAD_REQUEST),
        ("GET", "/nowhere", StatusCode::NOT_FOUND),
        ("DELETE", "/api/columns", StatusCode::METHOD_NOT_ALLOWED),
        ("GET", "/-/reload", StatusCode::METHOD_NOT_ALLOWED),
        (
            "GET",
            "/api/columns/s/app/t0000/nope",
            StatusCode::NOT_FOUND,
        ),
    ];
    for (method, uri, expected) in cases {
        for encoding in [Some("gzip"), None] {
            let (status, content_type, body) = call(app.clone(), method, uri, encoding).await;
            assert_eq!(status, expected, "{method} {uri}");
            assert_eq!(content_type, "application/json", "{method} {uri}");
            let doc = json(&body);
            let message = doc["error"].as_str().unwrap_or_default();
            assert!(!message.is_empty(), "{method} {uri}: {doc}");
        }
    }
}
