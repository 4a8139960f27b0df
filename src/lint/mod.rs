//! `headroom lint`: the CI gate. One poll of every configured shard (whatever `[cluster]`
//! says), then pure rules over the snapshot ([`findings`]): an ID column narrower than what
//! feeds it, an auto-increment column of a type not in `[lint] allowed_auto_increment`, a
//! signed ID column, a shard without strict mode. `[lint] allow` entries accept known
//! exceptions. Exit 0 no finding left, 1 at least one, 2 a bad configuration or a shard or
//! source server unreachable. The renderers (text, JSON, JUnit XML) are in `render.rs`.

pub mod render;

use std::sync::Arc;

use serde::Serialize;

use crate::config::{Allow, LintSettings, Settings};
use crate::escape::escape;
use crate::headroom::IntType;
use crate::measure::{ColumnReport, Kind};
use crate::poller::Poller;
use crate::state::{ShardState, Snapshot};

/// What a finding is about, in the order findings of one column are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The column cannot hold every value its source or parent can produce.
    NarrowerThanFeeder,
    /// An auto-increment column of a type not in `allowed_auto_increment`.
    AutoIncrementType,
    /// A signed ID column: half its range is never used.
    SignedId,
    /// A shard without `STRICT_TRANS_TABLES` or `STRICT_ALL_TABLES`: a value too large is
    /// clamped to the maximum instead of refused.
    NotStrict,
    /// A sequence that ends before its column's type does (PostgreSQL: `AS integer`
    /// behind a `bigint` column): the sequence runs out first.
    SequenceNarrowerThanColumn,
    /// A `CYCLE` sequence feeding an ID column: when it wraps it hands out IDs already used.
    CycleSequence,
}

impl Rule {
    pub const fn as_str(self) -> &'static str {
        match self {
            Rule::NarrowerThanFeeder => "narrower_than_feeder",
            Rule::AutoIncrementType => "auto_increment_type",
            Rule::SignedId => "signed_id",
            Rule::NotStrict => "not_strict",
            Rule::SequenceNarrowerThanColumn => "sequence_narrower_than_column",
            Rule::CycleSequence => "cycle_sequence",
        }
    }
}

/// One finding: about a column, or (`schema`, `table`, `column`, `column_type` and `kind`
/// `None`) about a shard. Names are exact; renderers escape them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: Rule,
    pub shard: String,
    /// A PostgreSQL column's database (absent from the JSON otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    pub schema: Option<String>,
    pub table: Option<String>,
    pub column: Option<String>,
    /// As information_schema writes it, e.g. `int(11)`.
    pub column_type: Option<String>,
    pub kind: Option<Kind>,
    /// What is wrong, as a sentence.
    pub message: String,
    /// For a `reference`: the ticket source that feeds the column.
    pub source: Option<String>,
    /// For a `foreign_key` or `inferred` column: its parent, `schema.table.column`.
    pub parent: Option<String>,
    /// Accepted by a `[lint] allow` entry: listed, but not a failure.
    pub allowed: bool,
    /// The allow entry's reason, when `allowed`.
    pub reason: Option<String>,
}

impl Finding {
    /// `schema`, `table` and `column`, or `None` for a shard finding.
    pub fn target(&self) -> Option<(&str, &str, &str)> {
        match (&self.schema, &self.table, &self.column) {
            (Some(s), Some(t), Some(c)) => Some((s, t, c)),
            _ => None,
        }
    }

    /// `schema.table.column` (`database.schema.table.column` on PostgreSQL), or `None`
    /// for a shard finding.
    pub fn column_name(&self) -> Option<String> {
        let database = self.database.as_ref().map(|d| format!("{d}."));
        self.target()
            .map(|(s, t, c)| format!("{}{s}.{t}.{c}", database.unwrap_or_default()))
    }

    fn sort_key(&self) -> (&str, [&Option<String>; 4], Rule) {
        let names = [&self.database, &self.schema, &self.table, &self.column];
        (&self.shard, names, self.rule)
    }
}

/// Every finding of `snapshot`, each marked allowed when an entry of `settings.allow`
/// accepts it (the first that does gives the reason), ordered by shard, schema, table,
/// column and rule (a shard's own finding first). Pure.
pub fn findings(snapshot: &Snapshot, settings: &LintSettings) -> Vec<Finding> {
    let mut out = Vec::new();
    for shard in &snapshot.shards {
        if shard.strict_mode == Some(false) {
            out.push(not_strict(shard));
        }
        for c in shard.columns.iter() {
            if c.type_mismatch {
                out.push(finding(c, Rule::NarrowerThanFeeder, narrower(c)));
            }
            let allowed_type = settings.allowed_auto_increment.contains(&c.int_type);
            if matches!(c.kind, Kind::AutoIncrement | Kind::Sequence) && !allowed_type {
                out.push(finding(
                    c,
                    Rule::AutoIncrementType,
                    auto_increment(c, settings),
                ));
            }
            if let Some(message) = signed(c, allowed_type) {
                out.push(finding(c, Rule::SignedId, message));
            }
            if c.limited_by == Some(crate::measure::LimitedBy::Sequence) {
                out.push(finding(
                    c,
                    Rule::SequenceNarrowerThanColumn,
                    sequence_narrower(c),
                ));
            }
            if c.cycle {
                out.push(finding(c, Rule::CycleSequence, cycle(c)));
            }
        }
    }
    for f in &mut out {
        let allow = settings
            .allow
            .iter()
            .find(|a| a.matches(&f.shard, f.target()));
        if let Some(allow) = allow {
            f.reason = Some(allow.reason.clone());
            f.allowed = true;
        }
    }
    out.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    out
}

/// The allow entries that accept none of `findings`: stale exceptions, warned about.
pub fn stale<'a>(findings: &[Finding], settings: &'a LintSettings) -> Vec<&'a Allow> {
    settings
        .allow
        .iter()
        .filter(|a| !findings.iter().any(|f| a.matches(&f.shard, f.target())))
        .collect()
}

fn finding(c: &ColumnReport, rule: Rule, message: String) -> Finding {
    let (source, parent) = match c.kind {
        Kind::Reference => (c.source.as_deref().map(str::to_string), None),
        Kind::ForeignKey | Kind::Inferred => (None, c.source.as_deref().map(str::to_string)),
        Kind::Sequence => (c.source.as_deref().map(str::to_string), None),
        Kind::AutoIncrement => (None, None),
    };
    Finding {
        rule,
        shard: c.shard.to_string(),
        database: c.id.database().map(str::to_string),
        schema: Some(c.id.schema.to_string()),
        table: Some(c.id.table.to_string()),
        column: Some(c.id.column.to_string()),
        column_type: Some(c.column_type.to_string()),
        kind: Some(c.kind),
        message,
        source,
        parent,
        allowed: false,
        reason: None,
    }
}

fn not_strict(shard: &ShardState) -> Finding {
    let mode = shard.sql_mode.as_deref().unwrap_or("");
    Finding {
        rule: Rule::NotStrict,
        shard: shard.name.clone(),
        database: None,
        schema: None,
        table: None,
        column: None,
        column_type: None,
        kind: None,
        message: format!(
            "sql_mode {mode:?} has neither STRICT_TRANS_TABLES nor STRICT_ALL_TABLES: a value too large for a column is stored as its maximum instead of refused"
        ),
        source: None,
        parent: None,
        allowed: false,
        reason: None,
    }
}

/// The `narrower_than_feeder` message: the column's maximum and its feeder's.
fn narrower(c: &ColumnReport) -> String {
    let what = match (c.kind, c.source.as_deref()) {
        (Kind::Reference, Some(s)) => format!("its source {s}"),
        (Kind::ForeignKey | Kind::Inferred, Some(p)) => format!("its parent {p}"),
        _ => "what feeds it".to_string(),
    };
    match c.feeder_max() {
        Some(max) => format!(
            "{} holds at most {}, {what} up to {max}",
            c.column_type, c.max
        ),
        None => format!(
            "{} holds at most {}, less than {what} can hold",
            c.column_type, c.max
        ),
    }
}

/// The `sequence_narrower_than_column` message.
fn sequence_narrower(c: &ColumnReport) -> String {
    format!(
        "its sequence {} ends at {}, before its {} type does ({}): ALTER SEQUENCE … AS bigint",
        c.source.as_deref().unwrap_or("?"),
        c.max,
        c.column_type,
        c.int_type.max()
    )
}

/// The `cycle_sequence` message.
fn cycle(c: &ColumnReport) -> String {
    format!(
        "its sequence {} is CYCLE: when it reaches its end it starts over and hands out IDs already used",
        c.source.as_deref().unwrap_or("?")
    )
}

fn auto_increment(c: &ColumnReport, settings: &LintSettings) -> String {
    let allowed: Vec<String> = settings
        .allowed_auto_increment
        .iter()
        .map(|t| t.normalized())
        .collect();
    let what = if c.kind == Kind::Sequence {
        "sequence-fed"
    } else {
        "auto-increment"
    };
    // A PostgreSQL type as PostgreSQL names it (`integer`), a MySQL one normalized.
    let type_name = if c.kind == Kind::Sequence {
        c.column_type.to_string()
    } else {
        c.int_type.normalized()
    };
    format!(
        "{what} {type_name} (max {}) is not in [lint] allowed_auto_increment ({})",
        c.max,
        allowed.join(", ")
    )
}

/// The `signed_id` message, or `None` when the column is unsigned or excused: an
/// auto-increment of a signed type explicitly allowed (`allowed_type`), or a foreign key or
/// inferred reference of exactly its parent's signed type (the parent is judged by its own
/// rules). No two integer types have the same maximum, so the parent's maximum says its
/// type. A column fed by a ticket source is never excused: sources hand out unsigned IDs.
fn signed(c: &ColumnReport, allowed_type: bool) -> Option<String> {
    if c.int_type.unsigned {
        return None;
    }
    let excused = match c.kind {
        Kind::AutoIncrement => allowed_type,
        Kind::ForeignKey | Kind::Inferred => c.feeder_max() == Some(c.max),
        Kind::Reference => false,
        // PostgreSQL has no unsigned type: a sequence's column cannot be made unsigned.
        Kind::Sequence => true,
    };
    if excused {
        return None;
    }
    let unsigned = IntType::new(c.int_type.width, true);
    Some(format!(
        "signed {} uses half its range: IDs are never negative ({} holds up to {})",
        c.int_type.normalized(),
        unsigned.normalized(),
        unsigned.max()
    ))
}

/// How `lint` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Junit,
}

/// What `lint` prints and how it ends.
pub struct Outcome {
    /// The report, on stdout.
    pub output: String,
    /// Unreachable servers, stale allow entries and columns that could not be measured
    /// (so not linted), on stderr.
    pub errors: String,
    /// 0 no finding left, 1 at least one, 2 a server unreachable.
    pub exit_code: u8,
}

/// Polls every configured shard once (`[cluster]` ignored) and lints the result.
pub async fn run(mut settings: Settings, format: Format) -> anyhow::Result<Outcome> {
    settings.set_member(None);
    let settings = Arc::new(settings);
    let snapshot = Poller::snapshot_once(Arc::clone(&settings)).await?;
    Ok(report(&snapshot, &settings.lint, format))
}

/// The outcome of linting `snapshot`: pure, so the exit codes are tested without a
/// database.
pub fn report(snapshot: &Snapshot, settings: &LintSettings, format: Format) -> Outcome {
    let unreachable = snapshot.unreachable_errors();
    if !unreachable.is_empty() {
        return Outcome {
            output: String::new(),
            errors: unreachable,
            exit_code: 2,
        };
    }
    let found = findings(snapshot, settings);
    let stale = stale(&found, settings).into_iter().map(|a| {
        format!(
            "headroom: warning: [lint] allow {} matches no finding: a stale exception\n",
            escape(&a.label())
        )
    });
    let unmeasured = snapshot.shards.iter().flat_map(|s| {
        s.unresolved.iter().map(move |u| {
            format!(
                "headroom: warning: shard {}: not linted: {}\n",
                escape(&s.name),
                escape(u)
            )
        })
    });
    let errors = stale.chain(unmeasured).collect();
    let shards = snapshot.shards.len();
    let output = match format {
        Format::Text => render::text(&found, shards),
        Format::Json => render::json(&found, shards),
        Format::Junit => render::junit(&found, &snapshot.shards),
    };
    Outcome {
        output,
        errors,
        exit_code: u8::from(found.iter().any(|f| !f.allowed)),
    }
}

#[cfg(test)]
mod tests;
