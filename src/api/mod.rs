//! The HTTP surface: the pages ([`crate::pages`]), `/metrics`, the JSON API under `/api`,
//! and the health endpoints. Handlers only read the [`Store`]; only the one-column plan
//! reads a column's definition from its shard, on demand, through [`plan_cache`] (once per
//! poll, within the per-shard session budget). The JSON of a column row is written in
//! `row`, for every command that prints one; a column's history in `history`.

pub mod columns;
pub mod history;
pub mod incidents;
mod plan;
pub mod plan_cache;
mod row;

use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde_json::json;
use tower_http::compression::CompressionLayer;

use crate::metrics::Metrics;
use crate::pager::Pager;
use crate::pages;
use crate::reload;
use crate::state::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    /// Present when a notifier is configured.
    pub pager: Option<Arc<Pager>>,
    /// Present when `POST /-/reload` is enabled (`--web.enable-lifecycle`).
    pub reload: Option<reload::Handle>,
    /// The running settings, swapped by a reload.
    pub settings: SharedSettings,
    /// One-column plans, kept per poll, and the budget of sessions requests may open.
    pub plans: Arc<plan_cache::Plans>,
}

pub use crate::reload::SharedSettings;

/// The router with every route.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::fleet::handler))
        .route("/shards", get(pages::shards::handler))
        .route("/sources", get(pages::sources::handler))
        .route("/incidents", get(pages::incidents::handler))
        .route("/static/{name}", get(pages::layout::asset))
        .route("/metrics", get(metrics))
        .route("/api/columns", get(columns::handler))
        .route(
            "/api/columns/{shard}/{schema}/{table}/{column}",
            get(plan::handler),
        )
        .route(
            "/api/columns/{shard}/{schema}/{table}/{column}/history",
            get(history::handler),
        )
        .route(
            "/columns/{shard}/{schema}/{table}/{column}",
            get(pages::column::handler),
        )
        .route("/api/shards", get(shards))
        .route("/api/sources", get(sources))
        .route("/api/incidents", get(incidents::handler))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/-/reload", post(reload_config).get(reload_get))
        .fallback(not_found)
        // After the routes: it applies to every route registered before it.
        .method_not_allowed_fallback(method_not_allowed)
        // Inside compression, so that what it rewrites is compressed too.
        .layer(axum::middleware::map_response(json_errors))
        // gzip when the client asks (`Accept-Encoding: gzip`, as Prometheus does): /metrics
        // shrinks about 25-fold.
        .layer(CompressionLayer::new())
        .with_state(state)
}

/// A JSON error body: `{"error": "..."}`.
/// The query of a one-column path: `?database=` names a PostgreSQL column's database
/// (a MySQL column has none). Any other parameter is refused.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InDatabase {
    pub database: Option<String>,
}

impl InDatabase {
    /// The column `schema.table.column` of this database.
    pub fn column(self, schema: &str, table: &str, column: &str) -> crate::inventory::ColumnId {
        crate::inventory::ColumnId::in_database(
            self.database.map(Arc::from),
            schema.to_string(),
            table.to_string(),
            column.to_string(),
        )
    }
}

pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// The longest error body of another kind that is carried into the JSON error.
const FOREIGN_ERROR_LIMIT: usize = 4096;

/// Every error answer as `{"error": ...}` with `application/json` (a page's as a page): the
/// handlers' own are already, and this rewrites the rest, the framework's rejections of a path, a query, a
/// method or a body (their text becomes the message, or the status's reason when they have
/// none).
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    // A page's error is a page (text/html), for the person reading it.
    let is_ours = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_ours {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, FOREIGN_ERROR_LIMIT)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    let mut rewritten = error(status, message);
    // Keep what the rejection said besides its body (`Allow`, `Retry-After`, ...).
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewritten.headers_mut().insert(name, value.clone());
        }
    }
    rewritten
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(&state.store.read()),
    )
        .into_response()
}

/// A 400 naming the first parameter when `raw` holds any: `endpoint` takes none, and a
/// parameter silently ignored would look like a filter that matched.
fn reject_parameters(endpoint: &str, raw: Option<&str>) -> Option<Response> {
    let (key, _) = url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()).next()?;
    Some(error(
        StatusCode::BAD_REQUEST,
        format!("unknown parameter {key:?}: {endpoint} accepts no parameters"),
    ))
}

async fn shards(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    if let Some(response) = reject_parameters("/api/shards", raw.as_deref()) {
        return response;
    }
    let snap = state.store.read();
    Json(json!({ "generated_at": Utc::now(), "shards": snap.shards })).into_response()
}

async fn sources(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    if let Some(response) = reject_parameters("/api/sources", raw.as_deref()) {
        return response;
    }
    let snap = state.store.read();
    Json(json!({ "generated_at": Utc::now(), "sources": snap.sources })).into_response()
}

async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// 200 once every shard has been polled once, successfully or not; 503 before, naming the
/// shards still waiting, and 503 while the pager's state file cannot be written.
async fn readyz(State(state): State<AppState>) -> Response {
    // Pages queued now would not survive a restart: say so until a write succeeds.
    if let Some(why) = state.pager.as_ref().and_then(|p| p.state_problem()) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "state file not writable", "error": why })),
        )
            .into_response();
    }
    let snap = state.store.read();
    let waiting: Vec<&str> = snap
        .shards
        .iter()
        .filter(|s| !s.polled)
        .map(|s| s.name.as_str())
        .collect();
    if waiting.is_empty() {
        Json(json!({ "status": "ready" })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "waiting for first poll", "shards": waiting })),
        )
            .into_response()
    }
}

/// Reloads the configuration (`--web.enable-lifecycle` only): 200 with the warnings, 500
/// with every problem of a configuration rejected (the running one stays).
async fn reload_config(State(state): State<AppState>) -> Response {
    let Some(handle) = state.reload else {
        return error(
            StatusCode::FORBIDDEN,
            "the lifecycle API is not enabled: start headroom with --web.enable-lifecycle",
        );
    };
    match handle.reload().await {
        Ok(warnings) => Json(json!({ "status": "reloaded", "warnings": warnings })).into_response(),
        Err(problems) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({
                "error": "the configuration was not reloaded: the running one stays",
                "problems": problems,
            })),
        )
            .into_response(),
    }
}

/// `/-/reload` changes things: never on a GET.
async fn reload_get() -> Response {
    let mut response = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method GET is not allowed here: /-/reload answers POST",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
    response
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such endpoint: try the pages /, /columns/{shard}/{schema}/{table}/{column}, /shards, /sources and /incidents, or /metrics, /api/columns, /api/shards, /api/sources, /api/incidents, /healthz or /readyz",
    )
}

/// A known path with a method it does not answer; axum adds the `Allow` header.
async fn method_not_allowed(method: Method) -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method {method} is not allowed here: every endpoint answers GET (and HEAD)"),
    )
}

#[cfg(test)]
mod tests;
