//! The `headroom plan` command: one poll (as `check`), the definitions of the columns to
//! widen read from their shards, and the plan as text or JSON. Names in the text are
//! escaped ([`crate::escape`]); the JSON holds them exactly.

use std::fmt::Write as _;
use std::sync::Arc;

use chrono::Utc;
use serde_json::json;

use super::{Change, Planned, Widening};
use crate::config::Settings;
use crate::escape::escape;
use crate::policy::ColumnGlobs;
use crate::poller::Poller;

/// What `plan` prints and how it ends.
pub struct Outcome {
    /// The plan, on stdout.
    pub output: String,
    /// Why it could not be made, on stderr.
    pub errors: String,
    /// 0 printed; 2 a server unreachable.
    pub exit_code: u8,
}

/// Polls once, reads the definitions, and writes the plan.
pub async fn run(
    settings: Settings,
    as_json: bool,
    globs: Option<&ColumnGlobs>,
) -> anyhow::Result<Outcome> {
    let settings = Arc::new(settings);
    let snapshot = Poller::snapshot_once(Arc::clone(&settings)).await?;
    let errors = snapshot.unreachable_errors();
    if !errors.is_empty() {
        return Ok(Outcome {
            output: String::new(),
            errors,
            exit_code: 2,
        });
    }
    let entries = super::select(&snapshot, globs);
    let widenings: Vec<&Widening> = super::to_read(&entries);
    let found = match super::read(&settings, &widenings, None).await {
        Ok(found) => found,
        Err(e) => {
            return Ok(Outcome {
                output: String::new(),
                errors: format!("headroom: {}\n", escape(&e.to_string())),
                exit_code: 2,
            });
        }
    };
    let planned = super::write(&settings, &entries, &found);
    let rate = settings.plan.rebuild_mb_per_second;
    let output = if as_json {
        let doc = json!({
            "generated_at": Utc::now(),
            "rebuild_mb_per_second": rate,
            "columns": planned,
        });
        format!("{}\n", serde_json::to_string_pretty(&doc)?)
    } else {
        text(&planned, rate)
    };
    Ok(Outcome {
        output,
        errors: String::new(),
        exit_code: 0,
    })
}

/// `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn change_text(out: &mut String, c: &Change, rate: u64) {
    let name = format!("{}.{}.{}", c.schema, c.table, c.column);
    let _ = writeln!(
        out,
        "   {} {}: {} -> {}",
        escape(&c.shard),
        escape(&name),
        escape(&c.from_type),
        c.to_type
    );
    if let (Some(size), Some(secs)) = (&c.table_size, c.rebuild_seconds_estimate) {
        let _ = writeln!(
            out,
            "     table: {} rows, {} bytes data+index, {}; rebuilds the table: {} at {rate} MiB/s",
            grouped(size.rows),
            grouped(size.bytes()),
            if size.engine.is_empty() {
                "engine unknown".to_string()
            } else {
                escape(&size.engine).into_owned()
            },
            crate::growth::humanize(secs.max(1)),
        );
    }
    for line in [&c.statement, &c.gh_ost, &c.pt_online_schema_change]
        .into_iter()
        .flatten()
    {
        let _ = writeln!(out, "     {}", escape(line));
    }
    if let Some(note) = &c.note {
        let _ = writeln!(out, "     note: {}", escape(note));
    }
}

/// The plan for people.
pub fn text(planned: &[Planned], rate: u64) -> String {
    let mut out = String::new();
    if planned.is_empty() {
        out.push_str("No column at warning or worse or mismatched: nothing to widen.\n");
        return out;
    }
    for (i, p) in planned.iter().enumerate() {
        let c = &p.column;
        let _ = writeln!(
            out,
            "{}. {} {} {} ({}): {}",
            i + 1,
            escape(&c.shard),
            escape(&c.name()),
            escape(&c.column_type),
            c.status,
            escape(&p.plan.reason)
        );
        let runs_out = c
            .exhausts_at()
            .map_or_else(|| "-".to_string(), |t| t.to_rfc3339());
        let _ = writeln!(
            out,
            "   runs out: {runs_out}; target: {}",
            p.plan.target_type
        );
        if let Some(same) = &p.plan.same_as {
            let _ = writeln!(out, "   widens with {} (above)\n", escape(same));
            continue;
        }
        if p.plan.changes.is_empty() {
            let _ = writeln!(out, "   nothing wider exists: it cannot be widened");
        }
        for change in &p.plan.changes {
            change_text(&mut out, change, rate);
        }
        if !p.plan.foreign_keys.is_empty() {
            let _ = writeln!(
                out,
                "   {} foreign key(s) hold these columns: run in this order",
                p.plan.foreign_keys.len()
            );
            for step in &p.plan.steps {
                let _ = writeln!(
                    out,
                    "     {}: {}",
                    escape(&step.shard),
                    escape(&step.statement)
                );
            }
        }
        out.push('\n');
    }
    out
}
