//! The registry's shard and source families: their names and help, publishing a shard's
//! or a source's state into them, and dropping the series of those a reload removed.

use prometheus::{GaugeVec, IntCounterVec, Registry};

use super::{Metrics, counter, gauge, status_value};
use crate::headroom::Status;
use crate::state::{Removed, ShardState, Snapshot, SourceState};

/// Per source (and per server of a source).
pub(super) struct SourceGauges {
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
pub(super) struct ShardGauges {
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
    /// Per PostgreSQL database: `age(datfrozenxid)`.
    xid_age: GaugeVec,
    /// Per PostgreSQL database: `mxid_age(datminmxid)`.
    multixact_age: GaugeVec,
    /// Per PostgreSQL database: the worse status of its two ages.
    wraparound_status: GaugeVec,
}

impl SourceGauges {
    pub(super) fn new(r: &Registry) -> SourceGauges {
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
    pub(super) fn new(r: &Registry) -> ShardGauges {
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
            xid_age: gauge(
                r,
                "headroom_database_xid_age",
                "age(datfrozenxid) of a PostgreSQL database: transactions since its oldest unfrozen transaction ID; the server stops at 2^31.",
                &["shard", "database"],
            ),
            multixact_age: gauge(
                r,
                "headroom_database_multixact_age",
                "mxid_age(datminmxid) of a PostgreSQL database: MultiXact IDs since its oldest one; the server stops at 2^31.",
                &["shard", "database"],
            ),
            wraparound_status: gauge(
                r,
                "headroom_database_wraparound_status",
                "headroom's verdict on a PostgreSQL database's transaction-ID and MultiXact ages, the worse of the two: 0 ok, 1 warning, 2 critical, 3 exhausted.",
                &["shard", "database"],
            ),
        }
    }
}

impl Metrics {
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

    /// Sets the shard and source families from `snapshot`, at each scrape: the metrics
    /// follow what the store publishes and no one pushes them. A shard is published once
    /// polled, a source once one of its servers has been read, as before their first poll
    /// nothing is known.
    pub(super) fn observe(&self, snapshot: &Snapshot) {
        // Databases come and go with each poll: their series are written afresh.
        self.shard.xid_age.reset();
        self.shard.multixact_age.reset();
        self.shard.wraparound_status.reset();
        for shard in snapshot.shards.iter().filter(|s| s.polled) {
            self.publish_shard(shard);
        }
        for source in &snapshot.sources {
            if source.servers.iter().any(|s| s.polled) {
                self.publish_source(source);
            }
        }
    }

    /// Publishes a shard's state; its error counter follows the state's count of failed
    /// polls. Its columns are written from the state at each scrape (see
    /// [`Metrics::render`]).
    fn publish_shard(&self, shard: &ShardState) {
        let name = shard.name.as_str();
        let errors = self.shard.poll_errors.with_label_values(&[name]);
        // Visible at 0 before the first failure; never lowered (a counter).
        errors.inc_by(shard.poll_errors.saturating_sub(errors.get()));
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
        for d in shard.databases.iter().flatten() {
            let l = [name, d.database.as_str()];
            self.shard
                .xid_age
                .with_label_values(&l)
                .set(d.xid.age as f64);
            self.shard
                .multixact_age
                .with_label_values(&l)
                .set(d.multixact.age as f64);
            self.shard
                .wraparound_status
                .with_label_values(&l)
                .set(f64::from(d.status.number()));
        }
    }

    /// Publishes a source and its servers.
    fn publish_source(&self, source: &SourceState) {
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
}
