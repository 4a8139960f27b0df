//! `GET /api/columns/{shard}/{schema}/{table}/{column}/history`: the samples the daemon
//! holds of one column's growth history (the poller's, read through the store's handle) and
//! the forecast drawn from it, as the column page charts them. From memory: no database is
//! read.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use chrono::{DateTime, Utc};
use serde_json::json;

use super::{AppState, error};
use crate::growth::Samples;
use crate::inventory::ColumnId;
use crate::measure::ColumnReport;
use crate::state::Store;

/// Column `id` of `shard` as the latest state holds it, and its history's samples (none
/// while the daemon holds no history of it: before its first poll, or in a replica that
/// does not poll its shard). `Err` names what is not known.
pub fn column_and_samples(
    store: &Store,
    shard: &str,
    id: &ColumnId,
) -> Result<(ColumnReport, Samples), String> {
    // One lock at a time: the poller takes the histories' without the store's.
    let column = crate::plan::locate(&store.read(), shard, id)?.clone();
    let (now, wall) = (tokio::time::Instant::now(), Utc::now());
    let histories = store.histories().lock().unwrap_or_else(|e| e.into_inner());
    let samples = histories
        .get(shard)
        .and_then(|tracker| tracker.get(id))
        .map(|h| h.samples(now, wall))
        .unwrap_or_default();
    Ok((column, samples))
}

/// The JSON of a column's history: `points` (`[rfc3339, value]`, oldest first),
/// `last_jump`, and `forecast` (`null` until the column's growth is measured).
pub fn json(column: &ColumnReport, samples: &Samples, now: DateTime<Utc>) -> serde_json::Value {
    let points: Vec<serde_json::Value> =
        samples.points.iter().map(|(t, v)| json!([t, v])).collect();
    let forecast = column.growth_per_second.map(|g| {
        json!({
            "from": [column.observed_at, column.current],
            "growth_per_second": g,
            "seconds_to_exhaustion": column.seconds_to_exhaustion,
            "exhausts_at": column.exhausts_at(),
            "max": column.max,
        })
    });
    let mut doc = json!({
        "generated_at": now,
        "shard": &*column.shard,
        "schema": &*column.id.schema,
        "table": &*column.id.table,
        "column": &*column.id.column,
        "max": column.max,
        "points": points,
        "last_jump": samples.last_jump,
        "forecast": forecast,
    });
    // A PostgreSQL column's database; a MySQL column has none, and no such field.
    if let (Some(database), Some(fields)) = (column.id.database(), doc.as_object_mut()) {
        fields.insert("database".to_string(), json!(database));
    }
    doc
}

pub(super) async fn handler(
    State(state): State<AppState>,
    Path((shard, schema, table, column)): Path<(String, String, String, String)>,
    Query(at): Query<crate::api::InDatabase>,
) -> Response {
    let id = at.column(&schema, &table, &column);
    match column_and_samples(&state.store, &shard, &id) {
        Ok((column, samples)) => Json(json(&column, &samples, Utc::now())).into_response(),
        Err(message) => error(StatusCode::NOT_FOUND, message),
    }
}
