//! The per-column families, written straight from the state at each scrape (see the
//! module's documentation for why not through the registry): which columns are exported,
//! each family's name, help and value, and the text they are written in.

use std::fmt::Write as _;

use crate::config::{MetricColumns, MetricsSettings};
use crate::headroom::{Ppm, Status};
use crate::measure::ColumnReport;
use crate::state::Snapshot;

/// One sample of a per-column gauge: exact integers stay integers in the text.
enum Sample {
    Int(i128),
    Float(f64),
}

/// The per-column gauges: name, help, and the value taken from a column (`None`: no
/// sample for that column). Derived in PromQL rather than written: `remaining` is
/// `max - current`, the growth rate `(max - current) / seconds_to_exhaustion`, and (unless
/// `[metrics] used_ratio = true`) the used ratio `current / max`.
/// `type_mismatch` and `silenced` are sparse (written only when 1), `status` and
/// `time_status` only when not ok: the rules read them with `== n` and `unless`, and
/// `headroom_shard_columns{shard,status}` counts every status.
type ColumnFamily = (
    &'static str,
    &'static str,
    fn(&ColumnReport) -> Option<Sample>,
);

/// Written only with `[metrics] used_ratio = true`: `current / max` in PromQL otherwise.
const USED_RATIO: &str = "headroom_column_used_ratio";

const COLUMN_FAMILIES: [ColumnFamily; 8] = [
    (
        "headroom_column_current",
        "Largest value the column must be able to hold now.",
        |c| Some(Sample::Int(c.current)),
    ),
    (
        "headroom_column_max",
        "Largest value the column's type can hold.",
        |c| Some(Sample::Int(i128::from(c.max))),
    ),
    (USED_RATIO, "Current divided by the type maximum.", |c| {
        Some(Sample::Float(c.used_ratio))
    }),
    (
        "headroom_column_type_mismatch",
        "1 when the column's type is narrower than its source's or parent's; absent otherwise.",
        |c| c.type_mismatch.then_some(Sample::Int(1)),
    ),
    (
        "headroom_column_seconds_to_exhaustion",
        "Seconds until the column runs out at its growth rate; absent while it does not grow.",
        |c| c.seconds_to_exhaustion.map(|s| Sample::Int(i128::from(s))),
    ),
    (
        "headroom_column_status",
        "headroom's verdict after overrides: 1 warning, 2 critical, 3 exhausted; absent when ok.",
        |c| match c.status {
            Status::Ok => None,
            s => Some(Sample::Int(i128::from(s.number()))),
        },
    ),
    (
        "headroom_column_time_status",
        "The verdict of the time thresholds alone, after overrides: 1 warning, 2 critical; absent when ok.",
        |c| match c.time_status {
            Status::Ok => None,
            s => Some(Sample::Int(i128::from(s.number()))),
        },
    ),
    (
        "headroom_column_silenced",
        "1 while a [[silences]] entry keeps the column from paging; absent otherwise.",
        |c| c.silenced.is_some().then_some(Sample::Int(1)),
    ),
];

/// Writes the per-column families of every column of `snapshot` that `settings` exports.
pub(super) fn write(out: &mut String, settings: &MetricsSettings, snapshot: &Snapshot) {
    // Each exported column's label set, written once: `labels[spans[i]]`.
    let mut labels = String::new();
    let mut spans = Vec::new();
    let mut columns = Vec::new();
    for c in snapshot.shards.iter().flat_map(|s| s.columns.iter()) {
        if !exports(settings, c) {
            continue;
        }
        let start = labels.len();
        // `database` names a PostgreSQL column's database; a MySQL series has no such label.
        let database = c.id.database().map(|d| ("database", d));
        for (key, val) in [("shard", &*c.shard)].into_iter().chain(database).chain([
            ("schema", c.id.schema.as_str()),
            ("table", c.id.table.as_str()),
            ("column", c.id.column.as_str()),
            ("kind", c.kind.as_str()),
        ]) {
            if labels.len() > start {
                labels.push(',');
            }
            labels.push_str(key);
            labels.push_str("=\"");
            escape_label(&mut labels, val);
            labels.push('"');
        }
        spans.push(start..labels.len());
        columns.push(c);
    }
    out.reserve(labels.len() * 6 + columns.len() * 6 * 40);
    for (name, help, value) in COLUMN_FAMILIES {
        if name == USED_RATIO && !settings.used_ratio {
            continue;
        }
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (c, span) in columns.iter().zip(&spans) {
            let Some(v) = value(c) else { continue };
            out.push_str(name);
            out.push('{');
            out.push_str(&labels[span.clone()]);
            out.push_str("} ");
            let _ = match v {
                Sample::Int(n) => writeln!(out, "{n}"),
                Sample::Float(f) => writeln!(out, "{}", sample(f)),
            };
        }
    }
}

/// Whether `c` gets its per-column series.
fn exports(settings: &MetricsSettings, c: &ColumnReport) -> bool {
    match settings.columns {
        MetricColumns::All => true,
        MetricColumns::AtRisk => {
            let min = settings.min_ratio.get();
            c.status != Status::Ok
                || c.time_status != Status::Ok
                || c.type_mismatch
                || (min > 0
                    && c.current.max(0) * i128::from(Ppm::ONE)
                        >= i128::from(min) * i128::from(c.max))
        }
    }
}

/// A label value as the exposition format wants it: backslash, quote and newline escaped.
pub(super) fn escape_label(out: &mut String, value: &str) {
    for ch in value.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A sample value: integers without a fraction, the rest as Rust prints them.
pub(super) fn sample(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{v}")
    }
}
