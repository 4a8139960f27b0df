//! The latest known state of every shard and source: what the poller writes after each
//! read and what the API, the metrics and `check` read. A shard that fails keeps its last
//! known columns (each with its `observed_at`); a source that fails keeps its last value.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Settings;
use crate::growth::Forecast;
use crate::headroom::{Headroom, Status};
use crate::measure::{ColumnReport, SourceValue};
use crate::policy::Limits;

/// Shared, cheaply cloned handle on the state.
#[derive(Clone)]
pub struct Store {
    inner: Arc<RwLock<Snapshot>>,
    /// The default limits, for sources.
    limits: Limits,
}

/// Everything known at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub shards: Vec<ShardState>,
    pub sources: Vec<SourceState>,
}

/// One shard as `/api/shards` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ShardState {
    pub name: String,
    /// The URL without its password.
    pub url: String,
    /// Whether the shard has been polled at least once, successfully or not.
    pub polled: bool,
    /// Whether the last poll succeeded.
    pub up: bool,
    pub last_poll: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    /// The last poll's error, if it failed; never contains a password.
    pub last_error: Option<String>,
    pub poll_duration_seconds: Option<f64>,
    pub column_count: usize,
    /// Columns the last successful poll could not measure, with the reason.
    pub unresolved: Vec<String>,
    /// Failed polls since start.
    pub poll_errors: u64,
    /// The last known columns; served while the shard is down.
    #[serde(skip)]
    pub columns: Vec<ColumnReport>,
}

/// One ID source as `/api/sources` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SourceState {
    pub name: String,
    pub kind: &'static str,
    /// The highest ID handed out over all servers, from their latest readings.
    pub current: Option<i128>,
    pub max: Option<u64>,
    pub remaining: Option<i128>,
    pub used_ratio: Option<f64>,
    pub status: Option<Status>,
    pub column_type: Option<String>,
    /// IDs per second over the source's history.
    pub growth_per_second: Option<f64>,
    pub seconds_to_exhaustion: Option<u64>,
    pub exhausts_at: Option<DateTime<Utc>>,
    pub servers: Vec<ServerState>,
}

/// One server of a source.
#[derive(Debug, Clone, Serialize)]
pub struct ServerState {
    /// `host:port`, the `server` label.
    pub server: String,
    pub url: String,
    pub polled: bool,
    pub up: bool,
    /// The last value this server reported.
    pub current: Option<i128>,
    #[serde(skip)]
    pub max: Option<u64>,
    pub column_type: Option<String>,
    pub observed_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

impl Store {
    pub fn new(settings: &Settings) -> Store {
        let shards = settings
            .shards
            .iter()
            .map(|s| ShardState {
                name: s.name.clone(),
                url: s.endpoint.to_string(),
                polled: false,
                up: false,
                last_poll: None,
                last_success: None,
                last_error: None,
                poll_duration_seconds: None,
                column_count: 0,
                unresolved: Vec::new(),
                poll_errors: 0,
                columns: Vec::new(),
            })
            .collect();
        let sources = settings
            .sources
            .iter()
            .map(|s| SourceState {
                name: s.name.clone(),
                kind: s.kind.as_str(),
                current: None,
                max: None,
                remaining: None,
                used_ratio: None,
                status: None,
                column_type: None,
                growth_per_second: None,
                seconds_to_exhaustion: None,
                exhausts_at: None,
                servers: s
                    .servers
                    .iter()
                    .map(|e| ServerState {
                        server: e.label(),
                        url: e.to_string(),
                        polled: false,
                        up: false,
                        current: None,
                        max: None,
                        column_type: None,
                        observed_at: None,
                        last_error: None,
                    })
                    .collect(),
            })
            .collect();
        Store {
            inner: Arc::new(RwLock::new(Snapshot { shards, sources })),
            limits: settings.policy.default,
        }
    }

    /// A read lock on the state. Hold it briefly: the poller waits for it.
    pub fn read(&self) -> RwLockReadGuard<'_, Snapshot> {
        // A panic while holding the lock leaves data that is still whole (every write
        // replaces values), so a poisoned lock is used as it is.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Snapshot> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a successful poll of `shard`, replacing its columns.
    pub fn shard_succeeded(
        &self,
        shard: &str,
        columns: Vec<ColumnReport>,
        unresolved: Vec<String>,
        took: Duration,
        at: DateTime<Utc>,
    ) {
        let mut snap = self.write();
        if let Some(s) = snap.shards.iter_mut().find(|s| s.name == shard) {
            s.polled = true;
            s.up = true;
            s.last_poll = Some(at);
            s.last_success = Some(at);
            s.last_error = None;
            s.poll_duration_seconds = Some(took.as_secs_f64());
            s.column_count = columns.len();
            s.unresolved = unresolved;
            s.columns = columns;
        }
    }

    /// Records a failed poll of `shard`; its last known columns stay.
    pub fn shard_failed(&self, shard: &str, error: String, took: Duration, at: DateTime<Utc>) {
        let mut snap = self.write();
        if let Some(s) = snap.shards.iter_mut().find(|s| s.name == shard) {
            s.polled = true;
            s.up = false;
            s.last_poll = Some(at);
            s.last_error = Some(error);
            s.poll_duration_seconds = Some(took.as_secs_f64());
            s.poll_errors += 1;
        }
    }

    /// Records what one server of a source said (`Ok((current, max, column_type))`) or why
    /// it could not be read, and recomputes the source's value over its servers.
    pub fn source_server_read(
        &self,
        source: &str,
        server: &str,
        result: Result<(i128, u64, String), String>,
        at: DateTime<Utc>,
    ) {
        let limits = self.limits;
        let mut snap = self.write();
        let Some(src) = snap.sources.iter_mut().find(|s| s.name == source) else {
            return;
        };
        if let Some(srv) = src.servers.iter_mut().find(|s| s.server == server) {
            srv.polled = true;
            match result {
                Ok((current, max, column_type)) => {
                    srv.up = true;
                    srv.current = Some(current);
                    srv.max = Some(max);
                    srv.column_type = Some(column_type);
                    srv.observed_at = Some(at);
                    srv.last_error = None;
                }
                Err(error) => {
                    srv.up = false;
                    srv.last_error = Some(error);
                }
            }
        }
        // The highest ID any server has handed out, and the widest generating type.
        let current = src.servers.iter().filter_map(|s| s.current).max();
        let widest = src
            .servers
            .iter()
            .filter_map(|s| s.max.map(|m| (m, s.column_type.clone())))
            .max_by_key(|(m, _)| *m);
        src.current = current;
        src.max = widest.as_ref().map(|(m, _)| *m);
        src.column_type = widest.and_then(|(_, t)| t);
        if let (Some(current), Some(max)) = (src.current, src.max) {
            let h = Headroom::new(current, max);
            src.remaining = Some(h.remaining());
            src.used_ratio = Some(h.used_ratio());
            src.status = Some(limits.status(h, src.seconds_to_exhaustion));
        }
    }

    /// Stores a source's forecast and the status it leads to.
    pub fn source_forecast(&self, source: &str, forecast: Forecast, at: DateTime<Utc>) {
        let limits = self.limits;
        let mut snap = self.write();
        let Some(src) = snap.sources.iter_mut().find(|s| s.name == source) else {
            return;
        };
        src.growth_per_second = forecast.growth_per_second;
        src.seconds_to_exhaustion = forecast.seconds_to_exhaustion;
        src.exhausts_at = forecast.exhausts_at(at);
        if let (Some(current), Some(max)) = (src.current, src.max) {
            src.status =
                Some(limits.status(Headroom::new(current, max), src.seconds_to_exhaustion));
        }
    }

    /// The latest value of every source that has been read at least once.
    pub fn source_values(&self) -> HashMap<String, SourceValue> {
        self.read()
            .sources
            .iter()
            .filter_map(|s| {
                Some((
                    s.name.clone(),
                    SourceValue {
                        current: s.current?,
                        max: s.max?,
                    },
                ))
            })
            .collect()
    }

    /// True once every shard has been polled once, successfully or not.
    pub fn ready(&self) -> bool {
        self.read().shards.iter().all(|s| s.polled)
    }
}
