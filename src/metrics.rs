//! Every Prometheus metric headroom exports, defined in one place. The names are a contract
//! that alert rules and dashboards depend on.
//!
//! Values are kept as exact integers everywhere else; they become `f64` only here.
//!
//! Shard and source series live in a `prometheus` registry. The per-column families are
//! written straight from the state at each scrape instead: there can be hundreds of
//! thousands of them, rendering them directly is an order of magnitude cheaper than through
//! the registry, and a column that no longer exists (a dropped table) is simply not written.

use std::fmt::Write as _;

use prometheus::{Encoder, GaugeVec, IntCounterVec, Opts, Registry, TextEncoder};

use crate::measure::ColumnReport;
use crate::state::{ShardState, Snapshot, SourceState};

/// The per-column gauges: name, help, and the value taken from a column (`None`: no
/// sample for that column).
type ColumnFamily = (&'static str, &'static str, fn(&ColumnReport) -> Option<f64>);

const COLUMN_FAMILIES: [ColumnFamily; 8] = [
    (
        "headroom_column_current",
        "Largest value the column must be able to hold now.",
        |c| Some(c.current as f64),
    ),
    (
        "headroom_column_max",
        "Largest value the column's type can hold.",
        |c| Some(c.max as f64),
    ),
    (
        "headroom_column_remaining",
        "Type maximum minus current; negative once exhausted.",
        |c| Some(c.remaining as f64),
    ),
    (
        "headroom_column_used_ratio",
        "Current divided by the type maximum.",
        |c| Some(c.used_ratio),
    ),
    (
        "headroom_column_type_mismatch",
        "1 when the column's type is narrower than its source's or parent's.",
        |c| Some(if c.type_mismatch { 1.0 } else { 0.0 }),
    ),
    (
        "headroom_column_growth_per_second",
        "IDs per second the column's current grows by, over its history.",
        |c| c.growth_per_second,
    ),
    (
        "headroom_column_seconds_to_exhaustion",
        "Seconds until the column runs out at its growth rate; absent while it does not grow.",
        |c| c.seconds_to_exhaustion.map(|s| s as f64),
    ),
    (
        "headroom_column_silenced",
        "1 while a [[silences]] entry keeps the column from paging.",
        |c| Some(if c.silenced.is_some() { 1.0 } else { 0.0 }),
    ),
];

/// The registry and every metric in it.
pub struct Metrics {
    registry: Registry,
    source_current: GaugeVec,
    source_up: GaugeVec,
    source_max: GaugeVec,
    source_remaining: GaugeVec,
    source_used_ratio: GaugeVec,
    source_growth: GaugeVec,
    source_seconds_to_exhaustion: GaugeVec,
    shard_up: GaugeVec,
    shard_poll_duration: GaugeVec,
    shard_last_success: GaugeVec,
    shard_columns: GaugeVec,
    poll_errors: IntCounterVec,
    pager_events: IntCounterVec,
    pager_queue: GaugeVec,
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let vec = GaugeVec::new(Opts::new(name, help), labels).expect("metric definition is valid");
    registry
        .register(Box::new(vec.clone()))
        .expect("metric names are unique");
    vec
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new();
        let poll_errors = IntCounterVec::new(
            Opts::new(
                "headroom_poll_errors_total",
                "Polls of a shard that failed (down, timed out, or lacking a grant).",
            ),
            &["shard"],
        )
        .expect("metric definition is valid");
        r.register(Box::new(poll_errors.clone()))
            .expect("metric names are unique");
        let pager_events = IntCounterVec::new(
            Opts::new(
                "headroom_pager_events_total",
                "Events sent to a notifier: result delivered, rejected (400, dropped) or retry.",
            ),
            &["notifier", "action", "result"],
        )
        .expect("metric definition is valid");
        r.register(Box::new(pager_events.clone()))
            .expect("metric names are unique");
        Metrics {
            source_current: gauge(
                &r,
                "headroom_source_current",
                "Highest ID a server of the source has handed out.",
                &["source", "server"],
            ),
            source_up: gauge(
                &r,
                "headroom_source_up",
                "1 when the last read of the source server succeeded.",
                &["source", "server"],
            ),
            source_max: gauge(
                &r,
                "headroom_source_max",
                "Largest value the source's generating column can hold.",
                &["source"],
            ),
            source_remaining: gauge(
                &r,
                "headroom_source_remaining",
                "IDs the source can still hand out.",
                &["source"],
            ),
            source_used_ratio: gauge(
                &r,
                "headroom_source_used_ratio",
                "Highest ID over all servers divided by the type maximum.",
                &["source"],
            ),
            source_growth: gauge(
                &r,
                "headroom_source_growth_per_second",
                "IDs per second the source hands out, over its history.",
                &["source"],
            ),
            source_seconds_to_exhaustion: gauge(
                &r,
                "headroom_source_seconds_to_exhaustion",
                "Seconds until the source runs out at its growth rate; absent while it does not grow.",
                &["source"],
            ),
            shard_up: gauge(
                &r,
                "headroom_shard_up",
                "1 when the last poll of the shard succeeded.",
                &["shard"],
            ),
            shard_poll_duration: gauge(
                &r,
                "headroom_shard_poll_duration_seconds",
                "Duration of the last poll of the shard.",
                &["shard"],
            ),
            shard_last_success: gauge(
                &r,
                "headroom_shard_last_success_timestamp_seconds",
                "Unix time of the last successful poll of the shard.",
                &["shard"],
            ),
            shard_columns: gauge(
                &r,
                "headroom_shard_columns",
                "ID columns measured on the shard at its last successful poll.",
                &["shard"],
            ),
            poll_errors,
            pager_events,
            pager_queue: gauge(
                &r,
                "headroom_pager_queue_depth",
                "Events waiting for delivery to a notifier (kept in the state file).",
                &["notifier"],
            ),
            registry: r,
        }
    }

    /// Publishes a shard's state; `failed` adds one to its error counter. Its columns are
    /// written from the state at each scrape (see [`Metrics::render`]).
    pub fn publish_shard(&self, shard: &ShardState, failed: bool) {
        let name = shard.name.as_str();
        if failed {
            self.poll_errors.with_label_values(&[name]).inc();
        } else {
            // Make the counter visible at 0 before the first failure.
            self.poll_errors.with_label_values(&[name]).inc_by(0);
        }
        self.shard_up
            .with_label_values(&[name])
            .set(if shard.up { 1.0 } else { 0.0 });
        if let Some(d) = shard.poll_duration_seconds {
            self.shard_poll_duration.with_label_values(&[name]).set(d);
        }
        if let Some(t) = shard.last_success {
            self.shard_last_success
                .with_label_values(&[name])
                .set(t.timestamp_millis() as f64 / 1000.0);
        }
        self.shard_columns
            .with_label_values(&[name])
            .set(shard.columns.len() as f64);
    }

    /// Counts one try to deliver an event.
    pub fn pager_event(&self, notifier: &str, action: &str, result: &str) {
        self.pager_events
            .with_label_values(&[notifier, action, result])
            .inc();
    }

    /// Sets a notifier's outbox depth.
    pub fn pager_queue_depth(&self, notifier: &str, depth: usize) {
        self.pager_queue
            .with_label_values(&[notifier])
            .set(depth as f64);
    }

    /// Publishes a source and its servers.
    pub fn publish_source(&self, source: &SourceState) {
        let name = source.name.as_str();
        for server in &source.servers {
            let l = [name, server.server.as_str()];
            if server.polled {
                self.source_up
                    .with_label_values(&l)
                    .set(if server.up { 1.0 } else { 0.0 });
            }
            if let Some(current) = server.current {
                self.source_current
                    .with_label_values(&l)
                    .set(current as f64);
            }
        }
        if let Some(max) = source.max {
            self.source_max.with_label_values(&[name]).set(max as f64);
        }
        if let Some(remaining) = source.remaining {
            self.source_remaining
                .with_label_values(&[name])
                .set(remaining as f64);
        }
        if let Some(ratio) = source.used_ratio {
            self.source_used_ratio.with_label_values(&[name]).set(ratio);
        }
        for (vec, value) in [
            (&self.source_growth, source.growth_per_second),
            (
                &self.source_seconds_to_exhaustion,
                source.seconds_to_exhaustion.map(|s| s as f64),
            ),
        ] {
            match value {
                Some(v) => vec.with_label_values(&[name]).set(v),
                None => {
                    let _ = vec.remove_label_values(&[name]);
                }
            }
        }
    }

    /// The text exposition format: the registry's families, then the column families
    /// written from `snapshot`.
    pub fn render(&self, snapshot: &Snapshot) -> String {
        let mut buf = Vec::new();
        // Encoding gathered families into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        let mut out = String::from_utf8(buf).unwrap_or_default();
        let columns: Vec<&ColumnReport> = snapshot
            .shards
            .iter()
            .flat_map(|s| s.columns.iter())
            .collect();
        out.reserve(columns.len() * COLUMN_FAMILIES.len() * 120);
        let mut labels = String::new();
        for (name, help, value) in COLUMN_FAMILIES {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            for c in &columns {
                if value(c).is_none() {
                    continue;
                }
                labels.clear();
                for (key, val) in [
                    ("shard", c.shard.as_str()),
                    ("schema", &c.schema),
                    ("table", &c.table),
                    ("column", &c.column),
                    ("kind", c.kind.as_str()),
                ] {
                    if !labels.is_empty() {
                        labels.push(',');
                    }
                    labels.push_str(key);
                    labels.push_str("=\"");
                    escape_label(&mut labels, val);
                    labels.push('"');
                }
                if let Some(v) = value(c) {
                    let _ = writeln!(out, "{name}{{{labels}}} {}", sample(v));
                }
            }
        }
        out
    }
}

/// A label value as the exposition format wants it: backslash, quote and newline escaped.
fn escape_label(out: &mut String, value: &str) {
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
fn sample(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{v}")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        escape_label(&mut out, "we\"ird\\na\nme");
        assert_eq!(out, "we\\\"ird\\\\na\\nme");
    }

    #[test]
    fn samples_are_written_as_prometheus_reads_them() {
        assert_eq!(sample(2_147_483_647.0), "2147483647");
        assert_eq!(sample(0.5), "0.5");
        assert_eq!(sample(-11.0), "-11");
        assert_eq!(sample(f64::INFINITY), "+Inf");
    }
}
