//! `headroom infer`: what the inference guesses on every configured shard (whatever
//! `[cluster]` says), for a DBA to review once: each guess with its evidence and the
//! candidates passed over, each ambiguous column with its candidates, and the
//! `[[inference.rules]]` pins that would settle the ambiguous ones, ready to paste. The
//! catalog is read as a poll reads it (one read-only session per shard, the same reader and
//! bounds) and [`crate::inference::infer`] is the daemon's own. Exit 0, or 2 when a shard
//! cannot be read (a bad configuration is 2 before anything is read). Names are escaped
//! for the terminal in the text; the pins are TOML, where every unsafe character is a
//! `\u` escape.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use futures::StreamExt as _;
use serde_json::json;

use crate::config::{Settings, ShardSettings};
use crate::engine::Connector;
use crate::escape::{escape, terminal_safe};
use crate::inference::{Inference, infer};
use crate::inventory::{Inventory, SchemaFilter};

/// Shards read at once.
const AT_ONCE: usize = 8;

/// How `infer` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// What one shard's inference found.
#[derive(Debug, Clone)]
pub struct ShardInference {
    pub shard: String,
    pub inference: Inference,
}

/// Every configured shard's inference, and the shards that could not be read.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// In configuration order.
    pub shards: Vec<ShardInference>,
    /// `(shard, why)`, the why in headroom's words (never the server's text).
    pub unreadable: Vec<(String, String)>,
}

/// What `infer` prints and how it ends.
pub struct Outcome {
    /// The report, on stdout.
    pub output: String,
    /// The shards that could not be read, on stderr.
    pub errors: String,
    /// 0 every shard read, 2 one could not be.
    pub exit_code: u8,
}

/// Reads every configured shard's catalog (`[cluster]` ignored) and infers.
pub async fn read(mut settings: Settings) -> Report {
    settings.set_member(None);
    let settings = &settings;
    let results: Vec<(String, Result<Vec<Inventory>, String>)> =
        futures::stream::iter(settings.shards.iter())
            .map(|shard| async move { (shard.name.clone(), inventory(shard, settings).await) })
            .buffered(AT_ONCE)
            .collect()
            .await;
    let mut report = Report::default();
    for (shard, result) in results {
        match result {
            Ok(inventories) => report.shards.push(ShardInference {
                inference: infer_all(&inventories, settings),
                shard,
            }),
            Err(why) => report.unreadable.push((shard, why)),
        }
    }
    report
}

/// The inference of a shard's inventories (one per PostgreSQL database), each on its own
/// as a poll guesses them, joined.
fn infer_all(inventories: &[Inventory], settings: &Settings) -> Inference {
    let mut all = Inference::default();
    for inventory in inventories {
        let one = infer(inventory, &settings.inference, &settings.references);
        all.parents.extend(one.parents);
        all.ambiguous.extend(one.ambiguous);
        all.runners_up.extend(one.runners_up);
    }
    all.ambiguous.sort_by(|a, b| a.column.cmp(&b.column));
    all
}

/// One shard's inventories, read as a poll reads them, bounded by `poll.shard_timeout`.
async fn inventory(shard: &ShardSettings, settings: &Settings) -> Result<Vec<Inventory>, String> {
    let timeout = settings.poll.query_timeout;
    let connector = Connector::watching(
        &shard.endpoint.url,
        shard.endpoint.expose_password(),
        timeout,
        shard.databases.as_deref(),
    )
    .map_err(|e| crate::db::ErrorReport::from(&e).message)?;
    let filter = SchemaFilter::from_config(shard.schemas.as_ref());
    let read = async {
        let mut session = connector
            .acquire()
            .await
            .map_err(|e| crate::db::ErrorReport::from(&e).message)?;
        let catalog = session
            .catalog(&filter, timeout)
            .await
            .map_err(|e| e.report().message)?;
        session.release();
        Ok(catalog.inventories)
    };
    let limit = settings.poll.shard_timeout;
    let result = match tokio::time::timeout(limit, read).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "reading the catalog took longer than poll.shard_timeout ({}s)",
            limit.as_secs()
        )),
    };
    connector.close(timeout).await;
    result
}

/// Reads and reports.
pub async fn run(settings: Settings, format: Format) -> Outcome {
    let report = read(settings).await;
    let errors: String = report
        .unreadable
        .iter()
        .map(|(shard, why)| {
            format!(
                "headroom: shard {}: not read: {}\n",
                escape(shard),
                escape(why)
            )
        })
        .collect();
    let output = match format {
        Format::Text => text(&report),
        Format::Json => json(&report),
    };
    Outcome {
        output,
        errors,
        exit_code: if report.unreadable.is_empty() { 0 } else { 2 },
    }
}

/// Every inferred column of a shard, sorted by name.
fn sorted(
    inference: &Inference,
) -> Vec<(&crate::inventory::ColumnId, &crate::inference::Inferred)> {
    let mut all: Vec<_> = inference.parents.iter().collect();
    all.sort_by(|a, b| a.0.cmp(b.0));
    all
}

/// The report for people: per shard, each guess, its evidence and what it passed over, each
/// ambiguous column, then the pins.
pub fn text(report: &Report) -> String {
    let mut out = String::new();
    for s in &report.shards {
        let i = &s.inference;
        let _ = writeln!(
            out,
            "SHARD {}: {} inferred, {} ambiguous",
            escape(&s.shard),
            i.parents.len(),
            i.ambiguous.len()
        );
        for (column, guess) in sorted(i) {
            let _ = writeln!(out, "\n  {}", escape(&column.to_string()));
            let _ = writeln!(
                out,
                "    parent       {}",
                escape(&guess.parent.to_string())
            );
            let _ = writeln!(out, "    evidence     {}", escape(&guess.evidence));
            for r in i.runners_up.get(column).into_iter().flatten() {
                let _ = writeln!(
                    out,
                    "    passed over  {} ({}): {}",
                    escape(&r.parent.to_string()),
                    escape(&r.evidence),
                    r.passed_over
                );
            }
        }
        for a in &i.ambiguous {
            let _ = writeln!(out, "\n  AMBIGUOUS {}", escape(&a.column));
            for c in &a.candidates {
                let _ = writeln!(out, "    candidate    {}", escape(c));
            }
        }
        out.push('\n');
    }
    if report.shards.is_empty() {
        out.push_str("No shard read.\n");
    }
    out.push_str(&pins(report));
    out
}

/// The report for tools: per shard, `inferred` (each with `evidence` and `runners_up`) and
/// `ambiguous`; `rules`, the pins as TOML text; `unreadable` shards.
pub fn json(report: &Report) -> String {
    let shards: Vec<_> = report
        .shards
        .iter()
        .map(|s| {
            let inferred: Vec<_> = sorted(&s.inference)
                .into_iter()
                .map(|(column, guess)| {
                    let runners: Vec<_> = s
                        .inference
                        .runners_up
                        .get(column)
                        .into_iter()
                        .flatten()
                        .map(|r| {
                            json!({
                                "parent": r.parent.to_string(),
                                "evidence": r.evidence,
                                "passed_over": r.passed_over,
                            })
                        })
                        .collect();
                    json!({
                        "column": column.to_string(),
                        "parent": guess.parent.to_string(),
                        "evidence": guess.evidence,
                        "runners_up": runners,
                    })
                })
                .collect();
            json!({
                "shard": s.shard,
                "inferred": inferred,
                "ambiguous": s.inference.ambiguous,
            })
        })
        .collect();
    let unreadable: Vec<_> = report
        .unreadable
        .iter()
        .map(|(shard, why)| json!({ "shard": shard, "error": why }))
        .collect();
    let doc = json!({ "shards": shards, "rules": pins(report), "unreadable": unreadable });
    format!(
        "{}\n",
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    )
}

/// The `[[inference.rules]]` that pin the ambiguous columns: one per column name (a pin
/// covers every column of that name, on every shard) and set of candidates, the first
/// candidate written and the others commented out, for the DBA to choose.
pub fn pins(report: &Report) -> String {
    // (lower-case name, candidates) → the ambiguous columns, "shard: schema.table.column".
    // The name is written as the first column of the group has it (a pin matches it
    // whatever the ASCII case).
    let mut groups: BTreeMap<(String, Vec<String>), (String, Vec<String>)> = BTreeMap::new();
    for s in &report.shards {
        for a in &s.inference.ambiguous {
            // A name with a `.` in a part cannot be split back: left unpinnable ("").
            let name = match a.column.split('.').collect::<Vec<_>>().as_slice() {
                [_, _, column] => *column,
                _ => "",
            };
            groups
                .entry((name.to_ascii_lowercase(), a.candidates.clone()))
                .or_insert_with(|| (name.to_string(), Vec::new()))
                .1
                .push(format!("{}: {}", s.shard, a.column));
        }
    }
    if groups.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "# [[inference.rules]] that pin the ambiguous columns, to paste into the configuration:\n\
         # each pins every column of its name, on every shard, to the parent written; keep\n\
         # the parent you choose (the others are commented out below it).\n",
    );
    for ((_, candidates), (name, columns)) in groups {
        out.push('\n');
        for c in &columns {
            let _ = writeln!(out, "# {}", escape(c));
        }
        if !pinnable(&name) || candidates.iter().any(|c| !pinnable_parent(c)) {
            let _ = writeln!(
                out,
                "# not expressible as a rule: a name holds `{{`, `}}` or a `.` inside a part; declare the foreign key instead"
            );
            continue;
        }
        let _ = writeln!(out, "[[inference.rules]]");
        let _ = writeln!(out, "column = {}", toml_string(&name));
        for (i, parent) in candidates.iter().enumerate() {
            let hash = if i == 0 { "" } else { "# " };
            let _ = writeln!(out, "{hash}parent = {}", toml_string(parent));
        }
    }
    out
}

/// Whether a column name can be written as a pin's `column`: no placeholder braces.
fn pinnable(name: &str) -> bool {
    !name.is_empty() && !name.contains(['{', '}'])
}

/// Whether `schema.table.column` splits back into its three parts and has no braces.
fn pinnable_parent(parent: &str) -> bool {
    parent.split('.').count() == 3 && pinnable(parent)
}

/// `text` as a TOML basic string; quotes, backslashes and every character unsafe for a
/// terminal written as escapes.
pub fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    let mut buf = [0u8; 4];
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if !terminal_safe(c.encode_utf8(&mut buf)) => {
                let code = u32::from(c);
                if code > 0xFFFF {
                    let _ = write!(out, "\\U{code:08X}");
                } else {
                    let _ = write!(out, "\\u{code:04X}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests;
