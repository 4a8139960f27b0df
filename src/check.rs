//! `headroom check`: one poll of everything, a table (or the /api/columns JSON document) of
//! the columns at warning or worse, and an exit code for cron and for DBAs:
//! 0 all ok, 1 warning, 2 critical or exhausted or a shard or source server unreachable.
//! Names in the table are escaped ([`crate::escape`]): a terminal shows them, never obeys
//! them.

use std::fmt::Write as _;
use std::sync::Arc;

use chrono::Utc;
use serde_json::json;

use crate::config::Settings;
use crate::escape::escape;
use crate::headroom::Status;
use crate::poller::Poller;
use crate::select::{ColumnQuery, select_columns};
use crate::state::Snapshot;

/// What `check` prints and how it ends.
pub struct Outcome {
    pub output: String,
    pub exit_code: u8,
}

/// Polls once and reports.
pub async fn run(settings: Settings, all: bool, as_json: bool) -> anyhow::Result<Outcome> {
    let settings = Arc::new(settings);
    let snapshot = Poller::snapshot_once(Arc::clone(&settings)).await?;
    Ok(report(&snapshot, all, as_json))
}

/// Renders a snapshot; pure, so the exit-code rules are tested without a database.
pub fn report(snapshot: &Snapshot, all: bool, as_json: bool) -> Outcome {
    let query = ColumnQuery {
        statuses: (!all).then(|| [Status::Warning, Status::Critical, Status::Exhausted].into()),
        ..ColumnQuery::default()
    };
    let (columns, total) = select_columns(snapshot, &query);
    let worst = snapshot
        .shards
        .iter()
        .flat_map(|s| s.columns.iter())
        .map(|c| c.status)
        .max()
        .unwrap_or(Status::Ok);
    let down = snapshot.unreachable();
    let exit_code = match worst {
        _ if !down.is_empty() => 2,
        Status::Critical | Status::Exhausted => 2,
        Status::Warning => 1,
        Status::Ok => 0,
    };

    let output = if as_json {
        let doc = json!({ "generated_at": Utc::now(), "total": total, "columns": columns });
        format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        )
    } else {
        let mut out = String::new();
        if columns.is_empty() {
            let _ = writeln!(
                out,
                "{}",
                if all {
                    "No ID columns found."
                } else {
                    "No column at warning or worse."
                }
            );
        } else {
            out.push_str(&table(&columns));
        }
        for line in &down {
            let _ = writeln!(out, "UNREACHABLE {}", escape(line));
        }
        out
    };
    Outcome { output, exit_code }
}

fn table(columns: &[crate::measure::ColumnReport]) -> String {
    let header = [
        "STATUS", "SHARD", "COLUMN", "TYPE", "KIND", "SOURCE", "CURRENT", "MAX", "USED",
        "RUNS OUT", "MISMATCH",
    ];
    let rows: Vec<[String; 11]> = columns
        .iter()
        .map(|c| {
            [
                c.status.to_string(),
                escape(&c.shard).into_owned(),
                escape(&c.name()).into_owned(),
                escape(&c.column_type).into_owned(),
                c.kind.as_str().to_string(),
                c.source
                    .as_deref()
                    .map_or_else(|| "-".to_string(), |s| escape(s).into_owned()),
                c.current.to_string(),
                c.max.to_string(),
                crate::headroom::percent(c.used_ratio),
                c.seconds_to_exhaustion
                    .map_or_else(|| "-".to_string(), crate::growth::humanize),
                if c.type_mismatch { "yes" } else { "" }.to_string(),
            ]
        })
        .collect();
    crate::escape::table(&header, &rows)
}
