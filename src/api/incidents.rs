//! `/api/incidents`: every notifier's open incidents and undelivered events, as JSON, from
//! what the pager reads out of its books ([`Pager::incidents`]).

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Json, Response};
use chrono::Utc;
use serde_json::json;

use super::{AppState, reject_parameters};
use crate::pager::Pager;

/// Open incidents and undelivered events per notifier (an empty list without notifiers).
pub(super) async fn handler(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    if let Some(response) = reject_parameters("/api/incidents", raw.as_deref()) {
        return response;
    }
    let notifiers = state.pager.as_deref().map_or_else(|| json!([]), json);
    Json(json!({ "generated_at": Utc::now(), "notifiers": notifiers })).into_response()
}

/// Each notifier's `notifier`, `min_severity`, `open` incidents (`dedup_key`, `severity`,
/// `summary`, `class`, `link`, `triggered_at`) and `undelivered` count.
pub fn json(pager: &Pager) -> serde_json::Value {
    let notifiers: Vec<serde_json::Value> = pager
        .incidents()
        .into_iter()
        .map(|n| {
            let open: Vec<serde_json::Value> = n
                .open
                .iter()
                .map(|e| {
                    json!({
                        "dedup_key": e.dedup_key,
                        "severity": e.severity,
                        "summary": e.summary,
                        "class": e.class,
                        "link": e.link,
                        "triggered_at": e.created_at,
                    })
                })
                .collect();
            json!({
                "notifier": n.notifier,
                "min_severity": n.min_severity,
                "open": open,
                "undelivered": n.undelivered,
            })
        })
        .collect();
    json!(notifiers)
}
