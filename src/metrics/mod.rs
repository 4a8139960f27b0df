//! Every Prometheus metric headroom exports, defined in one place. The names are a contract
//! that alert rules and dashboards depend on.
//!
//! Values are kept as exact integers everywhere else; they become `f64` only here.
//!
//! Shard and source series live in a `prometheus` registry. The per-column families are
//! written straight from the state at each scrape instead: there can be hundreds of
//! thousands of them, rendering them directly is an order of magnitude cheaper than through
//! the registry, and a column that no longer exists (a dropped table) is simply not written.
//!
//! # Layout
//! - this file: the registry, its construction, and what the reload, the cluster, the pager
//!   and the state file record; rendering;
//! - `gauges`: the shard and source families, publishing into them and forgetting them;
//! - `columns`: the per-column families, written at each scrape.

mod columns;
mod gauges;
#[cfg(test)]
mod tests;

use prometheus::{Encoder, GaugeVec, IntCounterVec, Opts, Registry, TextEncoder};

use crate::cluster::Member;
use crate::config::MetricsSettings;
use crate::headroom::Status;
use crate::state::Snapshot;
use chrono::Utc;
use gauges::{ShardGauges, SourceGauges};

/// The registry and every metric in it.
pub struct Metrics {
    registry: Registry,
    /// Which columns get per-column series; a reload may change it.
    settings: std::sync::RwLock<MetricsSettings>,
    /// `headroom_config_last_reload_successful` and its timestamp.
    reload: ReloadGauges,
    source: SourceGauges,
    shard: ShardGauges,
    pager_events: IntCounterVec,
    pager_queue: GaugeVec,
    /// No labels: absent until the pager's first successful write.
    state_last_save: GaugeVec,
    /// No labels: present (at 0) once a pager exists.
    state_save_errors: IntCounterVec,
    /// The shards this replica owns, labelled with its place in the cluster.
    cluster_shards: GaugeVec,
    /// The shards the configuration names, this replica's or not.
    configured_shards: GaugeVec,
}

/// The outcome of the last configuration reload (the start counts as one).
struct ReloadGauges {
    successful: GaugeVec,
    last_success: GaugeVec,
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let vec = GaugeVec::new(Opts::new(name, help), labels).expect("metric definition is valid");
    registry
        .register(Box::new(vec.clone()))
        .expect("metric names are unique");
    vec
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let vec =
        IntCounterVec::new(Opts::new(name, help), labels).expect("metric definition is valid");
    registry
        .register(Box::new(vec.clone()))
        .expect("metric names are unique");
    vec
}

impl Metrics {
    /// Every column exported (the default `[metrics]`).
    pub fn new() -> Metrics {
        Metrics::with_settings(MetricsSettings::default())
    }

    /// Per-column series as `[metrics]` says.
    pub fn with_settings(settings: MetricsSettings) -> Metrics {
        let r = Registry::new();
        let reload = ReloadGauges {
            successful: gauge(
                &r,
                "headroom_config_last_reload_successful",
                "1 when the last configuration reload (or the start) succeeded, 0 when it was rejected.",
                &[],
            ),
            last_success: gauge(
                &r,
                "headroom_config_last_reload_success_timestamp_seconds",
                "Unix time of the last successful configuration reload, or of the start.",
                &[],
            ),
        };
        let metrics = Metrics {
            settings: std::sync::RwLock::new(settings),
            reload,
            source: SourceGauges::new(&r),
            shard: ShardGauges::new(&r),
            pager_events: counter(
                &r,
                "headroom_pager_events_total",
                "Events sent to a notifier: result delivered, rejected (400, dropped) or retry.",
                &["notifier", "action", "result"],
            ),
            pager_queue: gauge(
                &r,
                "headroom_pager_queue_depth",
                "Events waiting for delivery to a notifier (kept in the state file).",
                &["notifier"],
            ),
            state_last_save: gauge(
                &r,
                "headroom_state_last_save_success_timestamp_seconds",
                "Unix time of the last successful write of the pager's state file or journal.",
                &[],
            ),
            state_save_errors: counter(
                &r,
                "headroom_state_save_errors_total",
                "Writes of the pager's state file or journal that failed.",
                &[],
            ),
            cluster_shards: gauge(
                &r,
                "headroom_cluster_member_shards",
                "Shards this replica owns: member I of N (0 of 1 when the fleet is not split).",
                &["member", "members"],
            ),
            configured_shards: gauge(
                &r,
                "headroom_cluster_configured_shards",
                "Shards the configuration names, over all members.",
                &[],
            ),
            registry: r,
        };
        metrics.reloaded(true);
        metrics
    }

    /// Records a configuration reload (or the start): rejected, or taken now.
    pub fn reloaded(&self, successful: bool) {
        let gauge = self.reload.successful.with_label_values::<&str>(&[]);
        gauge.set(if successful { 1.0 } else { 0.0 });
        if successful {
            self.reload
                .last_success
                .with_label_values::<&str>(&[])
                .set(Utc::now().timestamp_millis() as f64 / 1000.0);
        }
    }

    /// A new configuration's `[metrics]`.
    pub fn set_settings(&self, settings: MetricsSettings) {
        *self.settings.write().unwrap_or_else(|e| e.into_inner()) = settings;
    }

    /// Publishes this replica's share of the fleet (replacing an earlier one).
    pub fn publish_cluster(&self, member: Option<Member>, owned: usize, configured: usize) {
        let member = member.unwrap_or(Member {
            index: 0,
            members: 1,
        });
        self.cluster_shards.reset();
        self.cluster_shards
            .with_label_values(&[&member.index.to_string(), &member.members.to_string()])
            .set(owned as f64);
        self.configured_shards
            .with_label_values::<&str>(&[])
            .set(configured as f64);
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

    /// Shows the state-file metrics: the error counter at 0 (a pager exists).
    pub fn state_file_used(&self) {
        self.state_save_errors
            .with_label_values::<&str>(&[])
            .inc_by(0);
    }

    /// A write of the state file or its journal succeeded at `unix_seconds`.
    pub fn state_saved(&self, unix_seconds: f64) {
        self.state_last_save
            .with_label_values::<&str>(&[])
            .set(unix_seconds);
    }

    /// A write of the state file or its journal failed.
    pub fn state_save_failed(&self) {
        self.state_save_errors.with_label_values::<&str>(&[]).inc();
    }

    /// The text exposition format: the registry's families, then the column families
    /// written from `snapshot`.
    pub fn render(&self, snapshot: &Snapshot) -> String {
        self.observe(snapshot);
        let mut buf = Vec::new();
        // Encoding gathered families into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        let mut out = String::from_utf8(buf).unwrap_or_default();
        let settings = *self.settings.read().unwrap_or_else(|e| e.into_inner());
        columns::write(&mut out, &settings, snapshot);
        out
    }
}

/// A status as a registry gauge takes it ([`Status::number`]).
fn status_value(status: Status) -> f64 {
    f64::from(status.number())
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
