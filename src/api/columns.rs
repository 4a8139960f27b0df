//! `GET /api/columns`: every measured column, filtered and sorted by query parameters
//! (answered by [`crate::select`]). Every parameter is checked; an unknown or malformed one
//! gets a 400 that names it.

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use serde::Serialize;

use super::{AppState, error};
use crate::headroom::Status;
use crate::measure::{ColumnReport, Kind};
use crate::select::{ColumnQuery, Sort, select, select_columns};
use crate::state::Store;

const PARAMETERS: &str =
    "shard, database, schema, table, column, kind, status, min_ratio, sort, offset, limit";

/// Columns written per chunk of a streamed answer.
const CHUNK_COLUMNS: usize = 512;

/// Parses `a=b&c=d`; every problem is reported with the parameter that holds it.
pub fn parse(query: &str) -> Result<ColumnQuery, String> {
    let mut q = ColumnQuery::default();
    let mut seen = HashSet::new();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if !seen.insert(key.to_string()) {
            return Err(format!("parameter {key} is given twice"));
        }
        // Values are taken exactly as sent: ` shard-01` is not `shard-01`.
        let value = value.into_owned();
        match key.as_ref() {
            "shard" => q.shard = Some(value),
            "database" => q.database = Some(value),
            "schema" => q.schema = Some(value),
            "table" => q.table = Some(value),
            "column" => q.column = Some(value),
            "kind" => {
                q.kinds = Some(
                    list("kind", &value)?
                        .map(|v| v.parse::<Kind>().map_err(|e| format!("kind: {e}")))
                        .collect::<Result<_, _>>()?,
                )
            }
            "status" => {
                q.statuses = Some(
                    list("status", &value)?
                        .map(|v| v.parse::<Status>().map_err(|e| format!("status: {e}")))
                        .collect::<Result<_, _>>()?,
                )
            }
            "min_ratio" => match value.parse::<f64>() {
                Ok(r) if r.is_finite() && r >= 0.0 => q.min_ratio = Some(r),
                _ => {
                    return Err(format!(
                        "min_ratio: {value:?} is not a number of at least 0, such as 0.85"
                    ));
                }
            },
            "sort" => {
                q.sort = match value.as_str() {
                    "ratio" => Sort::Ratio,
                    "name" => Sort::Name,
                    "exhaustion" => Sort::Exhaustion,
                    other => {
                        return Err(format!(
                            "sort: unknown order {other:?}: expected ratio, name or exhaustion"
                        ));
                    }
                }
            }
            "offset" => match value.parse::<usize>() {
                Ok(n) => q.offset = n,
                _ => {
                    return Err(format!(
                        "offset: {value:?} is not a whole number of at least 0"
                    ));
                }
            },
            "limit" => match value.parse::<usize>() {
                Ok(n) if n >= 1 => q.limit = Some(n),
                _ => {
                    return Err(format!(
                        "limit: {value:?} is not a whole number of at least 1"
                    ));
                }
            },
            other => {
                return Err(format!(
                    "unknown parameter {other:?}: expected one of {PARAMETERS}"
                ));
            }
        }
    }
    Ok(q)
}

/// The items of a comma-separated list, exactly as written; an empty list or an empty item
/// (`status=`, `status=critical,`) is an error naming `key`, not a filter that keeps
/// nothing (or everything).
fn list<'a>(key: &str, value: &'a str) -> Result<impl Iterator<Item = &'a str>, String> {
    if value.is_empty() {
        return Err(format!(
            "{key} is empty: give one value or a comma-separated list"
        ));
    }
    if value.split(',').any(str::is_empty) {
        return Err(format!("{key}: {value:?} has an empty item"));
    }
    Ok(value.split(','))
}

#[derive(Serialize)]
struct Body {
    generated_at: DateTime<Utc>,
    /// Columns that matched before `offset` and `limit` applied.
    total: usize,
    columns: Vec<ColumnReport>,
}

pub(super) async fn handler(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let query = match parse(raw.as_deref().unwrap_or("")) {
        Ok(q) => q,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    if query.limit.is_some() {
        // A page: only its columns are cloned.
        let (columns, total) = select_columns(&state.store.read(), &query);
        return Json(Body {
            generated_at: Utc::now(),
            total,
            columns,
        })
        .into_response();
    }
    stream(state.store.clone(), &query)
}

/// Where a selected column sits.
#[derive(Clone, Copy)]
struct Position {
    shard: u32,
    index: u32,
}

/// The same body as [`Body`], streamed in chunks of [`CHUNK_COLUMNS`] columns. The order is
/// computed once (8 bytes per matched column) and the answer keeps each shard's columns as
/// they were then (a shared list, not a copy): a shard polled again while the answer is
/// being sent does not change or cut it, the store's lock is not held while writing, and
/// memory stays bounded (at most the lists of the shards replaced meanwhile are kept a
/// little longer).
fn stream(store: Store, query: &ColumnQuery) -> Response {
    let (positions, lists, total) = {
        let snapshot = store.read();
        let (picks, total) = select(&snapshot, query);
        let positions: Vec<Position> = picks
            .iter()
            .map(|p| Position {
                shard: p.shard as u32,
                index: p.index as u32,
            })
            .collect();
        let lists: Vec<Arc<Vec<ColumnReport>>> = snapshot
            .shards
            .iter()
            .map(|s| Arc::clone(&s.columns))
            .collect();
        (positions, lists, total)
    };
    let mut head = Vec::with_capacity(96);
    head.extend_from_slice(b"{\"generated_at\":");
    let _ = serde_json::to_writer(&mut head, &Utc::now());
    head.extend_from_slice(format!(",\"total\":{total},\"columns\":[").as_bytes());
    // Fused: the compression layer polls a body again after its end, and a bare `unfold`
    // panics when polled past `None`.
    let chunks = futures::stream::unfold((Some(head), 0usize), move |(head, next)| {
        let step = chunk(&positions, &lists, head, next);
        async move { step }
    })
    .fuse();
    (
        [(header::CONTENT_TYPE, "application/json")],
        axum::body::Body::from_stream(chunks),
    )
        .into_response()
}

type Chunk = (Result<Bytes, std::io::Error>, (Option<Vec<u8>>, usize));

/// The next piece of a streamed answer: the head, then the columns from `next` on, then the
/// closing brackets.
fn chunk(
    positions: &[Position],
    lists: &[Arc<Vec<ColumnReport>>],
    head: Option<Vec<u8>>,
    next: usize,
) -> Option<Chunk> {
    if let Some(head) = head {
        return Some((Ok(Bytes::from(head)), (None, next)));
    }
    if next > positions.len() {
        return None;
    }
    if next == positions.len() {
        return Some((Ok(Bytes::from_static(b"]}")), (None, next + 1)));
    }
    let end = (next + CHUNK_COLUMNS).min(positions.len());
    let mut chunk = Vec::with_capacity((end - next) * 700);
    for (i, p) in positions[next..end].iter().enumerate() {
        let Some(column) = lists
            .get(p.shard as usize)
            .and_then(|l| l.get(p.index as usize))
        else {
            // Positions were taken from these very lists: this cannot happen.
            return Some((
                Err(std::io::Error::other("a selected column is missing")),
                (None, usize::MAX),
            ));
        };
        if next + i > 0 {
            chunk.push(b',');
        }
        if let Err(e) = serde_json::to_writer(&mut chunk, column) {
            return Some((Err(std::io::Error::other(e)), (None, usize::MAX)));
        }
    }
    Some((Ok(Bytes::from(chunk)), (None, end)))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::headroom::{IntType, Width};

    /// A store whose shard `s` holds `n` INT columns `app.tNNNN.id`.
    pub(in crate::api) fn store(n: usize) -> (Store, Vec<ColumnReport>) {
        let settings = crate::config::testing::settings("");
        let store = Store::new(&settings);
        let columns: Vec<ColumnReport> = (0..n)
            .map(|i| {
                let id = crate::inventory::ColumnId::new("app", &format!("t{i:04}"), "id");
                let int = IntType::new(Width::Int, false);
                crate::measure::fixture::column("s", id, int, i as i128).build()
            })
            .collect();
        store.shard_succeeded(
            "s",
            columns.clone(),
            Vec::new(),
            std::time::Duration::from_millis(1),
            Utc::now(),
        );
        (store, columns)
    }

    #[tokio::test]
    async fn a_streamed_answer_comes_in_chunks_and_is_one_json_document() {
        let (store, _) = store(CHUNK_COLUMNS * 2 + 10);
        let query = parse("sort=name&offset=5").expect("query");
        let mut body = stream(store, &query).into_body().into_data_stream();
        let mut chunks = 0;
        let mut text = Vec::new();
        while let Some(chunk) = body.next().await {
            text.extend_from_slice(&chunk.expect("chunk"));
            chunks += 1;
        }
        // The head, three chunks of columns, and the closing brackets.
        assert_eq!(chunks, 5);
        let doc: serde_json::Value = serde_json::from_slice(&text).expect("one JSON document");
        assert_eq!(doc["total"], CHUNK_COLUMNS * 2 + 10);
        let columns = doc["columns"].as_array().expect("columns");
        assert_eq!(columns.len(), CHUNK_COLUMNS * 2 + 5);
        assert_eq!(columns[0]["table"], "t0005");
        assert_eq!(columns[columns.len() - 1]["table"], "t1033");
    }

    #[tokio::test]
    async fn a_shard_polled_again_mid_answer_leaves_the_answer_whole_and_of_one_poll() {
        let (store, columns) = store(CHUNK_COLUMNS * 2);
        let mut body = stream(store.clone(), &ColumnQuery::default())
            .into_body()
            .into_data_stream();
        let mut text = Vec::new();
        let head = body.next().await.expect("head").expect("head");
        assert!(head.starts_with(b"{\"generated_at\":"));
        text.extend_from_slice(&head);
        text.extend_from_slice(&body.next().await.expect("first chunk").expect("chunk"));
        // The next poll finds half the columns gone and the rest observed later.
        let later = Utc::now() + chrono::Duration::minutes(1);
        let mut fewer = columns[..CHUNK_COLUMNS].to_vec();
        for c in &mut fewer {
            c.observed_at = later;
        }
        store.shard_succeeded(
            "s",
            fewer,
            Vec::new(),
            std::time::Duration::from_millis(1),
            later,
        );
        while let Some(chunk) = body.next().await {
            text.extend_from_slice(&chunk.expect("chunk"));
        }
        let doc: serde_json::Value = serde_json::from_slice(&text).expect("one JSON document");
        let sent = doc["columns"].as_array().expect("columns");
        assert_eq!(
            sent.len(),
            CHUNK_COLUMNS * 2,
            "the poll the answer started with"
        );
        let later = serde_json::to_value(later).expect("time");
        assert!(sent.iter().all(|c| c["observed_at"] != later));
        assert_eq!(store.read().shards[0].columns.len(), CHUNK_COLUMNS);
    }
}
