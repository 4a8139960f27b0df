//! `GET /api/columns/{shard}/{schema}/{table}/{column}`: one column as /api/columns shows
//! it, with its widening plan (the document `headroom plan --format json` writes for it).
//! The column's definition is read from its shard on demand, each query bounded by
//! `poll.query_timeout`. Path segments are percent-decoded, so any name can be asked for.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};

use super::{AppState, error};
use crate::inventory::ColumnId;
use crate::plan;

pub(super) async fn handler(
    State(state): State<AppState>,
    Path((shard, schema, table, column)): Path<(String, String, String, String)>,
) -> Response {
    let id = ColumnId::new(&schema, &table, &column);
    let snapshot = state.store.read().clone();
    let (report, entry) = match plan::find(&snapshot, &shard, &id) {
        Ok(found) => found,
        Err(message) => return error(StatusCode::NOT_FOUND, message),
    };
    let Some(entry) = entry else {
        return Json(plan::unplanned(report)).into_response();
    };
    let settings = Arc::clone(&state.settings.read().unwrap_or_else(|e| e.into_inner()));
    let widenings: Vec<&plan::Widening> = entry.widenings.iter().collect();
    match plan::read(&settings, &widenings, None).await {
        Ok(found) => Json(plan::write_one(&settings, &entry, &found)).into_response(),
        Err(message) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("reading the column definitions: {message}"),
        ),
    }
}
