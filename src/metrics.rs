//! Every Prometheus metric headroom exports, defined in one place. The names are a contract
//! that alert rules and dashboards depend on.
//!
//! Values are kept as exact integers everywhere else; they become `f64` only here. Column
//! series are published per shard and the series of columns that no longer exist (a dropped
//! table, a column widened to another kind) are removed, so /metrics shows what is there.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use prometheus::{Encoder, GaugeVec, IntCounterVec, Opts, Registry, TextEncoder};

use crate::state::{ShardState, SourceState};

const COLUMN_LABELS: [&str; 5] = ["shard", "schema", "table", "column", "kind"];

/// The registry and every metric in it.
pub struct Metrics {
    registry: Registry,
    column_current: GaugeVec,
    column_max: GaugeVec,
    column_remaining: GaugeVec,
    column_used_ratio: GaugeVec,
    column_type_mismatch: GaugeVec,
    source_current: GaugeVec,
    source_up: GaugeVec,
    source_max: GaugeVec,
    source_remaining: GaugeVec,
    source_used_ratio: GaugeVec,
    shard_up: GaugeVec,
    shard_poll_duration: GaugeVec,
    shard_last_success: GaugeVec,
    shard_columns: GaugeVec,
    poll_errors: IntCounterVec,
    /// Label sets published per shard, to remove the series of vanished columns.
    published: Mutex<HashMap<String, HashSet<[String; 5]>>>,
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
        Metrics {
            column_current: gauge(
                &r,
                "headroom_column_current",
                "Largest value the column must be able to hold now.",
                &COLUMN_LABELS,
            ),
            column_max: gauge(
                &r,
                "headroom_column_max",
                "Largest value the column's type can hold.",
                &COLUMN_LABELS,
            ),
            column_remaining: gauge(
                &r,
                "headroom_column_remaining",
                "Type maximum minus current; negative once exhausted.",
                &COLUMN_LABELS,
            ),
            column_used_ratio: gauge(
                &r,
                "headroom_column_used_ratio",
                "Current divided by the type maximum.",
                &COLUMN_LABELS,
            ),
            column_type_mismatch: gauge(
                &r,
                "headroom_column_type_mismatch",
                "1 when the column's type is narrower than its source's or parent's.",
                &COLUMN_LABELS,
            ),
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
            registry: r,
            published: Mutex::new(HashMap::new()),
        }
    }

    /// Publishes a shard's state and columns; `failed` adds one to its error counter.
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

        let mut now = HashSet::with_capacity(shard.columns.len());
        for c in &shard.columns {
            let labels = [
                c.shard.clone(),
                c.schema.clone(),
                c.table.clone(),
                c.column.clone(),
                c.kind.as_str().to_string(),
            ];
            let l: [&str; 5] = [&labels[0], &labels[1], &labels[2], &labels[3], &labels[4]];
            self.column_current
                .with_label_values(&l)
                .set(c.current as f64);
            self.column_max.with_label_values(&l).set(c.max as f64);
            self.column_remaining
                .with_label_values(&l)
                .set(c.remaining as f64);
            self.column_used_ratio
                .with_label_values(&l)
                .set(c.used_ratio);
            self.column_type_mismatch
                .with_label_values(&l)
                .set(if c.type_mismatch { 1.0 } else { 0.0 });
            now.insert(labels);
        }
        let mut published = self.published.lock().unwrap_or_else(|e| e.into_inner());
        let before = published.insert(name.to_string(), now);
        let now = &published[name];
        for gone in before.unwrap_or_default().difference(now) {
            let l: [&str; 5] = [&gone[0], &gone[1], &gone[2], &gone[3], &gone[4]];
            for vec in [
                &self.column_current,
                &self.column_max,
                &self.column_remaining,
                &self.column_used_ratio,
                &self.column_type_mismatch,
            ] {
                let _ = vec.remove_label_values(&l);
            }
        }
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
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        // Encoding gathered families into a Vec cannot fail.
        let _ = encoder.encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
