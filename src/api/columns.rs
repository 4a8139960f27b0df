//! `GET /api/columns`: every measured column, filtered and sorted by query parameters.
//! Every parameter is checked; an unknown or malformed one gets a 400 that names it.

use std::collections::HashSet;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{AppState, error};
use crate::headroom::Status;
use crate::measure::{ColumnReport, Kind};
use crate::state::Snapshot;

/// How columns are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// Highest used ratio first (the default): the columns closest to running out.
    #[default]
    Ratio,
    /// By shard, schema, table, column.
    Name,
    /// Soonest `exhausts_at` first; columns that do not grow last, by ratio.
    Exhaustion,
}

/// The parsed query string.
#[derive(Debug, Clone, Default)]
pub struct ColumnQuery {
    pub shard: Option<String>,
    pub schema: Option<String>,
    pub table: Option<String>,
    pub column: Option<String>,
    /// Any of these kinds (`kind=reference,foreign_key`).
    pub kinds: Option<HashSet<Kind>>,
    /// Any of these statuses (`status=critical,exhausted`).
    pub statuses: Option<HashSet<Status>>,
    pub min_ratio: Option<f64>,
    pub sort: Sort,
    pub limit: Option<usize>,
}

const PARAMETERS: &str = "shard, schema, table, column, kind, status, min_ratio, sort, limit";

impl ColumnQuery {
    /// Parses `a=b&c=d`; every problem is reported with the parameter that holds it.
    pub fn parse(query: &str) -> Result<ColumnQuery, String> {
        let mut q = ColumnQuery::default();
        let mut seen = HashSet::new();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            if !seen.insert(key.to_string()) {
                return Err(format!("parameter {key} is given twice"));
            }
            let value = value.trim().to_string();
            match key.as_ref() {
                "shard" => q.shard = Some(value),
                "schema" => q.schema = Some(value),
                "table" => q.table = Some(value),
                "column" => q.column = Some(value),
                "kind" => {
                    q.kinds = Some(
                        list(&value)
                            .map(|v| v.parse::<Kind>().map_err(|e| format!("kind: {e}")))
                            .collect::<Result<_, _>>()?,
                    )
                }
                "status" => {
                    q.statuses = Some(
                        list(&value)
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

    fn keeps(&self, c: &ColumnReport) -> bool {
        self.shard.as_ref().is_none_or(|s| *s == c.shard)
            && self.schema.as_ref().is_none_or(|s| *s == c.schema)
            && self.table.as_ref().is_none_or(|t| *t == c.table)
            && self.column.as_ref().is_none_or(|t| *t == c.column)
            && self.kinds.as_ref().is_none_or(|k| k.contains(&c.kind))
            && self.statuses.as_ref().is_none_or(|s| s.contains(&c.status))
            && self.min_ratio.is_none_or(|r| c.used_ratio >= r)
    }
}

fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|v| !v.is_empty())
}

/// The columns of every shard that `query` keeps, in its order, up to its limit; and how
/// many matched before the limit.
pub fn select_columns(snapshot: &Snapshot, query: &ColumnQuery) -> (Vec<ColumnReport>, usize) {
    let mut selected: Vec<&ColumnReport> = snapshot
        .shards
        .iter()
        .flat_map(|s| s.columns.iter())
        .filter(|c| query.keeps(c))
        .collect();
    let by_name = |a: &&ColumnReport, b: &&ColumnReport| {
        (&a.shard, &a.schema, &a.table, &a.column).cmp(&(&b.shard, &b.schema, &b.table, &b.column))
    };
    // Exact comparison of current/max as fractions: a.current * b.max vs b.current * a.max,
    // in u128 where (2^64 - 1)^2 fits. Highest first.
    let by_ratio = |a: &&ColumnReport, b: &&ColumnReport| {
        let left = clamp(a.current) * u128::from(b.max);
        let right = clamp(b.current) * u128::from(a.max);
        right.cmp(&left)
    };
    match query.sort {
        Sort::Name => selected.sort_by(by_name),
        Sort::Ratio => selected.sort_by(|a, b| by_ratio(a, b).then_with(|| by_name(a, b))),
        Sort::Exhaustion => selected.sort_by(|a, b| {
            let soon = |c: &ColumnReport| c.seconds_to_exhaustion.unwrap_or(u64::MAX);
            soon(a)
                .cmp(&soon(b))
                .then_with(|| by_ratio(a, b))
                .then_with(|| by_name(a, b))
        }),
    }
    let total = selected.len();
    let limit = query.limit.unwrap_or(usize::MAX);
    (selected.into_iter().take(limit).cloned().collect(), total)
}

#[derive(Serialize)]
struct Body {
    generated_at: DateTime<Utc>,
    /// Columns that matched before `limit` applied.
    total: usize,
    columns: Vec<ColumnReport>,
}

pub(super) async fn handler(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let query = match ColumnQuery::parse(raw.as_deref().unwrap_or("")) {
        Ok(q) => q,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let (columns, total) = select_columns(&state.store.read(), &query);
    Json(Body {
        generated_at: Utc::now(),
        total,
        columns,
    })
    .into_response()
}

/// A current value as a non-negative `u128` no larger than `u64::MAX`.
fn clamp(current: i128) -> u128 {
    current.clamp(0, i128::from(u64::MAX)) as u128
}
