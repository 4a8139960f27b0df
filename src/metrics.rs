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

use crate::cluster::Member;
use crate::config::{MetricColumns, MetricsSettings};
use crate::headroom::{Ppm, Status};
use crate::measure::ColumnReport;
use crate::state::{Removed, ShardState, Snapshot, SourceState};
use chrono::Utc;

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

/// Per source (and per server of a source).
struct SourceGauges {
    current: GaugeVec,
    up: GaugeVec,
    max: GaugeVec,
    remaining: GaugeVec,
    used_ratio: GaugeVec,
    growth: GaugeVec,
    seconds_to_exhaustion: GaugeVec,
    status: GaugeVec,
    /// 1 when the source's servers can hand out the same ID.
    collision_risk: GaugeVec,
}

/// Per shard.
struct ShardGauges {
    up: GaugeVec,
    poll_duration: GaugeVec,
    last_success: GaugeVec,
    /// Per shard and status, every status present (0 included).
    columns: GaugeVec,
    /// Whatever `[metrics] columns` says: the worst column of the shard.
    max_used_ratio: GaugeVec,
    poll_errors: IntCounterVec,
    /// 1 when the shard's sql_mode is strict; absent until it has been read.
    strict_mode: GaugeVec,
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

impl SourceGauges {
    fn new(r: &Registry) -> SourceGauges {
        SourceGauges {
            current: gauge(
                r,
                "headroom_source_current",
                "Highest ID a server of the source has handed out.",
                &["source", "server"],
            ),
            up: gauge(
                r,
                "headroom_source_up",
                "1 when the last read of the source server succeeded.",
                &["source", "server"],
            ),
            max: gauge(
                r,
                "headroom_source_max",
                "Largest value the source's generating column can hold.",
                &["source"],
            ),
            remaining: gauge(
                r,
                "headroom_source_remaining",
                "IDs the source can still hand out.",
                &["source"],
            ),
            used_ratio: gauge(
                r,
                "headroom_source_used_ratio",
                "Highest ID over all servers divided by the type maximum.",
                &["source"],
            ),
            growth: gauge(
                r,
                "headroom_source_growth_per_second",
                "IDs per second the source hands out, over its history.",
                &["source"],
            ),
            seconds_to_exhaustion: gauge(
                r,
                "headroom_source_seconds_to_exhaustion",
                "Seconds until the source runs out at its growth rate; absent while it does not grow.",
                &["source"],
            ),
            status: gauge(
                r,
                "headroom_source_status",
                "headroom's verdict on the source: 0 ok, 1 warning, 2 critical, 3 exhausted.",
                &["source"],
            ),
            collision_risk: gauge(
                r,
                "headroom_source_collision_risk",
                "1 when two servers of the source can hand out the same ID (see collision_reason on /api/sources); absent until a server is read.",
                &["source"],
            ),
        }
    }
}

impl ShardGauges {
    fn new(r: &Registry) -> ShardGauges {
        ShardGauges {
            poll_errors: counter(
                r,
                "headroom_poll_errors_total",
                "Polls of a shard that failed (down, timed out, or lacking a grant).",
                &["shard"],
            ),
            up: gauge(
                r,
                "headroom_shard_up",
                "1 when the last poll of the shard succeeded.",
                &["shard"],
            ),
            poll_duration: gauge(
                r,
                "headroom_shard_poll_duration_seconds",
                "Duration of the last poll of the shard.",
                &["shard"],
            ),
            last_success: gauge(
                r,
                "headroom_shard_last_success_timestamp_seconds",
                "Unix time of the last successful poll of the shard.",
                &["shard"],
            ),
            columns: gauge(
                r,
                "headroom_shard_columns",
                "ID columns measured on the shard at its last successful poll, per status.",
                &["shard", "status"],
            ),
            max_used_ratio: gauge(
                r,
                "headroom_shard_max_used_ratio",
                "Highest used ratio of the shard's columns at its last successful poll (0 without columns).",
                &["shard"],
            ),
            strict_mode: gauge(
                r,
                "headroom_shard_strict_mode",
                "1 when the shard's sql_mode has STRICT_TRANS_TABLES or STRICT_ALL_TABLES, 0 when values too large are clamped; absent until read.",
                &["shard"],
            ),
        }
    }
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

    /// Drops every series of what a new configuration removed: each per-shard family of
    /// the removed shards, each per-source one of the removed sources and servers (the
    /// per-column families are written from the store, which no longer holds them).
    pub fn forget(&self, removed: &Removed) {
        for name in &removed.shards {
            let l = [name.as_str()];
            let _ = self.shard.poll_errors.remove_label_values(&l);
            for vec in [
                &self.shard.up,
                &self.shard.poll_duration,
                &self.shard.last_success,
                &self.shard.max_used_ratio,
                &self.shard.strict_mode,
            ] {
                let _ = vec.remove_label_values(&l);
            }
            for status in Status::ALL {
                let _ = self
                    .shard
                    .columns
                    .remove_label_values(&[name.as_str(), status.as_str()]);
            }
        }
        for (source, server) in &removed.servers {
            let l = [source.as_str(), server.as_str()];
            let _ = self.source.current.remove_label_values(&l);
            let _ = self.source.up.remove_label_values(&l);
        }
        for name in &removed.sources {
            let g = &self.source;
            for vec in [
                &g.max,
                &g.remaining,
                &g.used_ratio,
                &g.growth,
                &g.seconds_to_exhaustion,
                &g.status,
                &g.collision_risk,
            ] {
                let _ = vec.remove_label_values(&[name.as_str()]);
            }
        }
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

    /// Publishes a shard's state; `failed` adds one to its error counter. Its columns are
    /// written from the state at each scrape (see [`Metrics::render`]).
    pub fn publish_shard(&self, shard: &ShardState, failed: bool) {
        let name = shard.name.as_str();
        if failed {
            self.shard.poll_errors.with_label_values(&[name]).inc();
        } else {
            // Make the counter visible at 0 before the first failure.
            self.shard.poll_errors.with_label_values(&[name]).inc_by(0);
        }
        self.shard
            .up
            .with_label_values(&[name])
            .set(if shard.up { 1.0 } else { 0.0 });
        if let Some(d) = shard.poll_duration_seconds {
            self.shard.poll_duration.with_label_values(&[name]).set(d);
        }
        if let Some(strict) = shard.strict_mode {
            self.shard
                .strict_mode
                .with_label_values(&[name])
                .set(if strict { 1.0 } else { 0.0 });
        }
        if let Some(t) = shard.last_success {
            self.shard
                .last_success
                .with_label_values(&[name])
                .set(t.timestamp_millis() as f64 / 1000.0);
        }
        let mut counts = [0usize; Status::ALL.len()];
        let mut worst: f64 = 0.0;
        for c in shard.columns.iter() {
            counts[usize::from(c.status.number())] += 1;
            worst = worst.max(c.used_ratio);
        }
        for (status, count) in Status::ALL.into_iter().zip(counts) {
            self.shard
                .columns
                .with_label_values(&[name, status.as_str()])
                .set(count as f64);
        }
        self.shard
            .max_used_ratio
            .with_label_values(&[name])
            .set(worst);
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

    /// Publishes a source and its servers.
    pub fn publish_source(&self, source: &SourceState) {
        let name = source.name.as_str();
        for server in &source.servers {
            let l = [name, server.server.as_str()];
            if server.polled {
                self.source
                    .up
                    .with_label_values(&l)
                    .set(if server.up { 1.0 } else { 0.0 });
            }
            if let Some(current) = server.current {
                self.source
                    .current
                    .with_label_values(&l)
                    .set(current as f64);
            }
        }
        if let Some(max) = source.max {
            self.source.max.with_label_values(&[name]).set(max as f64);
        }
        if let Some(remaining) = source.remaining {
            self.source
                .remaining
                .with_label_values(&[name])
                .set(remaining as f64);
        }
        if let Some(ratio) = source.used_ratio {
            self.source.used_ratio.with_label_values(&[name]).set(ratio);
        }
        if source
            .servers
            .iter()
            .any(|s| s.auto_increment_increment.is_some())
        {
            self.source
                .collision_risk
                .with_label_values(&[name])
                .set(if source.collision_risk { 1.0 } else { 0.0 });
        }
        if let Some(status) = source.status {
            self.source
                .status
                .with_label_values(&[name])
                .set(status_value(status));
        }
        for (vec, value) in [
            (&self.source.growth, source.growth_per_second),
            (
                &self.source.seconds_to_exhaustion,
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
        // Each exported column's label set, written once: `labels[spans[i]]`.
        let mut labels = String::new();
        let mut spans = Vec::new();
        let mut columns = Vec::new();
        let settings = *self.settings.read().unwrap_or_else(|e| e.into_inner());
        for c in snapshot.shards.iter().flat_map(|s| s.columns.iter()) {
            if !Metrics::exports(&settings, c) {
                continue;
            }
            let start = labels.len();
            for (key, val) in [
                ("shard", &*c.shard),
                ("schema", &c.id.schema),
                ("table", &c.id.table),
                ("column", &c.id.column),
                ("kind", c.kind.as_str()),
            ] {
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

/// A status as a registry gauge takes it ([`Status::number`]).
fn status_value(status: Status) -> f64 {
    f64::from(status.number())
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
    fn a_source_exports_its_status() {
        let settings = crate::config::testing::settings(
            "[[sources]]\nname = \"tickets\"\nkind = \"ticket_server\"\n\
             servers = [\"mysql://u@t:3306/tickets\"]\ntable = \"Tickets64\"\n",
        );
        let store = crate::state::Store::new(&settings);
        // 90 % of INT: critical by the default ratio thresholds.
        store.source_server_read(
            "tickets",
            "t:3306",
            Ok((
                1_932_735_283,
                crate::headroom::IntType::new(crate::headroom::Width::Int, false),
                "int(11)".to_string(),
            )),
            chrono::Utc::now(),
        );
        let forecast = crate::growth::Forecast::NONE;
        let status = settings.policy.source_status(
            crate::headroom::Headroom::new(1_932_735_283, 2_147_483_647),
            &forecast,
        );
        store.source_assessed("tickets", forecast, status, chrono::Utc::now());
        let metrics = Metrics::new();
        metrics.publish_source(&store.read().sources[0]);
        let text = metrics.render(&store.read());
        assert!(
            text.contains("headroom_source_status{source=\"tickets\"} 2\n"),
            "{text}"
        );
    }

    /// A store with one shard `s` holding INT columns at these currents (max 2147483647);
    /// `t2` is type-mismatched, `t3` grows to run out within 30 days.
    fn fleet(currents: &[i128]) -> (crate::state::Store, Snapshot) {
        use crate::headroom::{IntType, Width};
        let settings = crate::config::testing::settings("");
        let store = crate::state::Store::new(&settings);
        let columns = currents
            .iter()
            .enumerate()
            .map(|(i, &current)| {
                let id = crate::inventory::ColumnId::new("app", &format!("t{i}"), "id");
                let int = IntType::new(Width::Int, false);
                crate::measure::fixture::column("s", id, int, current)
                    .type_mismatch(i == 2)
                    .forecast(crate::growth::Forecast {
                        seconds_to_exhaustion: (i == 3).then_some(30 * 86_400),
                        growth_per_second: (i == 3).then_some(800.0),
                        ..crate::growth::Forecast::NONE
                    })
                    .build()
            })
            .collect();
        store.shard_succeeded(
            "s",
            columns,
            Vec::new(),
            std::time::Duration::from_millis(1),
            chrono::Utc::now(),
        );
        let snapshot = store.read().clone();
        (store, snapshot)
    }

    fn rendered(settings: MetricsSettings, snapshot: &Snapshot) -> String {
        let metrics = Metrics::with_settings(settings);
        metrics.publish_shard(&snapshot.shards[0], false);
        metrics.render(snapshot)
    }

    fn has_series(text: &str, table: &str) -> bool {
        text.lines().any(|l| {
            l.starts_with("headroom_column_current{") && l.contains(&format!("table=\"{table}\""))
        })
    }

    #[test]
    fn at_risk_exports_only_columns_at_warning_mismatched_or_running_out() {
        // t0 at 1 %, t1 at 75 % (warning), t2 mismatched, t3 runs out in 30 days, t4 at 50 %.
        let (_store, snap) = fleet(&[21_474_836, 1_610_612_736, 10, 10, 1_073_741_824]);
        let at_risk = MetricsSettings {
            columns: MetricColumns::AtRisk,
            ..MetricsSettings::default()
        };
        let text = rendered(at_risk, &snap);
        let exported: Vec<bool> = (0..5)
            .map(|i| has_series(&text, &format!("t{i}")))
            .collect();
        assert_eq!(exported, [false, true, true, true, false], "{text}");
        let with_min = MetricsSettings {
            min_ratio: Ppm::from_ratio(0.5).unwrap(),
            ..at_risk
        };
        let text = rendered(with_min, &snap);
        let exported: Vec<bool> = (0..5)
            .map(|i| has_series(&text, &format!("t{i}")))
            .collect();
        assert_eq!(exported, [false, true, true, true, true], "{text}");
        let text = rendered(MetricsSettings::default(), &snap);
        assert!(
            (0..5).all(|i| has_series(&text, &format!("t{i}"))),
            "{text}"
        );
    }

    #[test]
    fn shard_aggregates_count_every_status_and_the_worst_ratio_whatever_is_exported() {
        let (_store, snap) = fleet(&[21_474_836, 1_610_612_736, 2_000_000_000]);
        let at_risk = MetricsSettings {
            columns: MetricColumns::AtRisk,
            ..MetricsSettings::default()
        };
        let text = rendered(at_risk, &snap);
        for line in [
            "headroom_shard_columns{shard=\"s\",status=\"ok\"} 1\n",
            "headroom_shard_columns{shard=\"s\",status=\"warning\"} 1\n",
            "headroom_shard_columns{shard=\"s\",status=\"critical\"} 1\n",
            "headroom_shard_columns{shard=\"s\",status=\"exhausted\"} 0\n",
        ] {
            assert!(text.contains(line), "{line} missing in {text}");
        }
        let worst = 2_000_000_000f64 / 2_147_483_647f64;
        assert!(
            text.contains(&format!(
                "headroom_shard_max_used_ratio{{shard=\"s\"}} {worst}\n"
            )),
            "{text}"
        );
    }

    #[test]
    fn sparse_column_families_are_written_only_when_set_and_remaining_is_gone() {
        let (_store, snap) = fleet(&[10, 10, 10]);
        let text = rendered(MetricsSettings::default(), &snap);
        let count = |family: &str| {
            text.lines()
                .filter(|l| l.starts_with(&format!("{family}{{")))
                .count()
        };
        assert_eq!(count("headroom_column_current"), 3);
        assert_eq!(count("headroom_column_status"), 0, "every column is ok");
        assert_eq!(count("headroom_column_growth_per_second"), 0);
        assert_eq!(count("headroom_column_type_mismatch"), 1);
        assert_eq!(count("headroom_column_silenced"), 0);
        assert_eq!(count("headroom_column_remaining"), 0);
        assert!(text.contains(
            "headroom_column_max{shard=\"s\",schema=\"app\",table=\"t0\",column=\"id\",kind=\"auto_increment\"} 2147483647\n"
        ));
    }

    #[test]
    fn a_reload_drops_the_series_of_what_it_removed_and_keeps_the_rest() {
        let shards = |names: &[&str], servers: &str| {
            let mut toml = String::new();
            for n in names {
                toml.push_str(&format!(
                    "[[shards]]\nname = \"{n}\"\nurl = \"mysql://u@h/\"\n"
                ));
            }
            toml.push_str(&format!(
                "[[sources]]\nname = \"tickets\"\nkind = \"ticket_server\"\n\
                 servers = [{servers}]\ntable = \"Tickets64\"\n"
            ));
            crate::config::from_toml_str(&toml, &|_| None).expect("settings")
        };
        let before = shards(&["s", "t"], "\"mysql://u@a:1/x\", \"mysql://u@b:1/x\"");
        let store = crate::state::Store::new(&before);
        let metrics = Metrics::new();
        let at = chrono::Utc::now();
        for name in ["s", "t"] {
            store.shard_succeeded(name, Vec::new(), Vec::new(), Default::default(), at);
        }
        for server in ["a:1", "b:1"] {
            let int = crate::headroom::IntType::new(crate::headroom::Width::Int, false);
            store.source_server_read("tickets", server, Ok((5, int, "int".into())), at);
        }
        let snapshot = store.read().clone();
        for shard in &snapshot.shards {
            metrics.publish_shard(shard, false);
        }
        metrics.publish_source(&snapshot.sources[0]);
        let text = metrics.render(&store.read());
        assert!(
            text.contains("headroom_shard_up{shard=\"s\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("server=\"a:1\""), "{text}");

        let after = shards(&["t", "u"], "\"mysql://u@b:1/x\"");
        let removed = store.reconfigure(&after);
        assert_eq!(removed.shards, ["s"]);
        assert_eq!(
            removed.servers,
            [("tickets".to_string(), "a:1".to_string())]
        );
        assert!(removed.sources.is_empty());
        metrics.forget(&removed);
        let text = metrics.render(&store.read());
        assert!(!text.contains("shard=\"s\""), "{text}");
        assert!(!text.contains("server=\"a:1\""), "{text}");
        assert!(
            text.contains("headroom_shard_up{shard=\"t\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("headroom_source_current{server=\"b:1\",source=\"tickets\"} 5\n"),
            "{text}"
        );
        let snap = store.read();
        let kept: Vec<(&str, bool)> = snap
            .shards
            .iter()
            .map(|s| (s.name.as_str(), s.polled))
            .collect();
        assert_eq!(kept, [("t", true), ("u", false)]);
        assert_eq!(snap.sources[0].servers.len(), 1);
        assert_eq!(snap.sources[0].servers[0].current, Some(5));
    }

    #[test]
    fn statuses_are_numbered_in_order_of_urgency() {
        assert_eq!(
            Status::ALL.map(status_value),
            [0.0, 1.0, 2.0, 3.0],
            "the alert rules compare these numbers"
        );
    }

    #[test]
    fn samples_are_written_as_prometheus_reads_them() {
        assert_eq!(sample(2_147_483_647.0), "2147483647");
        assert_eq!(sample(0.5), "0.5");
        assert_eq!(sample(-11.0), "-11");
        assert_eq!(sample(f64::INFINITY), "+Inf");
    }
}
