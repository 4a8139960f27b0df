//! `GET /api/columns/{shard}/{schema}/{table}/{column}`: one column as /api/columns shows
//! it, with its widening plan (the document `headroom plan --format json` writes for it).
//! The plan comes from [`super::plan_cache`]: computed once per poll, the definitions read
//! from the shards through the per-shard session budget, each query bounded by
//! `poll.query_timeout`. Path segments are percent-decoded, so any name can be asked for.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};

use super::plan_cache::Failure;
use super::{AppState, error};

pub(super) async fn handler(
    State(state): State<AppState>,
    Path((shard, schema, table, column)): Path<(String, String, String, String)>,
    Query(at): Query<crate::api::InDatabase>,
) -> Response {
    let id = at.column(&schema, &table, &column);
    let settings = Arc::clone(&state.settings.read().unwrap_or_else(|e| e.into_inner()));
    match state.plans.get(&state.store, settings, &shard, &id).await {
        Ok(planned) => Json(planned).into_response(),
        Err(Failure::NotFound(message)) => error(StatusCode::NOT_FOUND, message),
        Err(Failure::Busy(busy)) => {
            let mut response = error(StatusCode::SERVICE_UNAVAILABLE, busy.to_string());
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(busy.retry_after_seconds()),
            );
            response
        }
        Err(failure @ Failure::Read(_)) => {
            error(StatusCode::SERVICE_UNAVAILABLE, failure.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::super::plan_cache::{Plans, tests as cache};
    use super::*;
    use crate::metrics::Metrics;
    use crate::state::Store;

    #[tokio::test(start_paused = true)]
    async fn a_busy_shard_is_answered_503_with_retry_after_and_a_json_error() {
        let settings = cache::settings();
        let store = Store::new(&settings);
        cache::poll(&store, &settings);
        let plans = Arc::new(Plans::new());
        let held = plans
            .budget()
            .acquire("a", Duration::from_secs(1))
            .await
            .expect("a free shard");
        let router = super::super::router(AppState {
            store,
            metrics: Arc::new(Metrics::new()),
            pager: None,
            reload: None,
            settings: Arc::new(std::sync::RwLock::new(settings)),
            plans,
        });
        let request = Request::get("/api/columns/a/shop/full/id")
            .body(Body::empty())
            .expect("a request");
        let response = router.oneshot(request).await.expect("a response");
        drop(held);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers().get(header::RETRY_AFTER),
            Some(&HeaderValue::from_static("2"))
        );
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("the body");
        assert_eq!(
            body.as_ref(),
            br#"{"error":"shard a: another request is reading it; try again in 2s"}"#
        );
    }
}
