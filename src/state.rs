//! The latest known state of every shard and source: what the poller writes after each
//! read and what the API, the metrics and `check` read. A shard that fails keeps its last
//! known columns (each with its `observed_at`); a source that fails keeps its last value.
//!
//! The columns' growth histories are the poller's, recorded at each poll; the store holds
//! their handle ([`Store::histories`]) so that a request can read a column's samples.
//!
//! Each finished shard poll is published on a `watch` channel ([`Store::subscribe`]): the
//! pager, and anything else that acts on news, waits there instead of being called by the
//! poller.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Settings;
use crate::db::ErrorReport;
use crate::growth::{ColumnHistories, Jump};
use crate::headroom::{IntType, Status};
use crate::measure::{ColumnReport, ShardResult, SourceValue};

/// Shared, cheaply cloned handle on the state.
#[derive(Clone)]
pub struct Store {
    inner: Arc<RwLock<Snapshot>>,
    /// Counts finished shard polls; subscribers wake on each.
    published: Arc<tokio::sync::watch::Sender<u64>>,
    /// The columns' growth histories: the poller's working memory, which it records into
    /// (every poller made on this store shares them, so a reload keeps them in place);
    /// held here so that a request can read a column's samples.
    histories: ColumnHistories,
}

/// Everything known at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub shards: Vec<ShardState>,
    pub sources: Vec<SourceState>,
}

impl Snapshot {
    /// The shards and source servers the last poll could not read, one line each
    /// (`shard shard-01: connection refused ...`; names not escaped): what makes `check`,
    /// `plan` and `lint` end with 2.
    pub fn unreachable(&self) -> Vec<String> {
        let shards = self.shards.iter().filter(|s| !s.up).map(|s| {
            format!(
                "shard {}: {}",
                s.name,
                s.last_error.as_deref().unwrap_or("not polled")
            )
        });
        let servers = self.sources.iter().flat_map(|src| {
            src.servers.iter().filter(|s| !s.up).map(move |s| {
                format!(
                    "source {} server {}: {}",
                    src.name,
                    s.server,
                    s.last_error.as_deref().unwrap_or("not polled")
                )
            })
        });
        shards.chain(servers).collect()
    }

    /// [`Snapshot::unreachable`] as the commands write it on stderr, one escaped line each:
    /// `headroom: unreachable shard s1: ...`.
    pub fn unreachable_errors(&self) -> String {
        self.unreachable()
            .iter()
            .map(|l| format!("headroom: unreachable {}\n", crate::escape::escape(l)))
            .collect()
    }
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
    /// The last poll's error, if it failed: what failed, its class, the server's error
    /// number and a short message. Never the server's own text (it may quote a
    /// statement), never a password.
    pub last_error: Option<String>,
    /// The class of `last_error`: `timeout`, `connection_refused`, `network`, `tls`,
    /// `access_denied`, `server`, `protocol`, `decode`, `config` or `not_visible`.
    pub last_error_class: Option<&'static str>,
    /// The server's error number behind `last_error` (e.g. 1045), when it sent one.
    pub last_error_code: Option<u16>,
    pub poll_duration_seconds: Option<f64>,
    pub column_count: usize,
    /// Columns the last successful poll could not measure, with the reason.
    pub unresolved: Vec<String>,
    /// Columns with more than one equally good inferred parent (not guessed), as the last
    /// successful inventory found them.
    pub ambiguous: Vec<crate::inference::Ambiguous>,
    /// Failed polls since start.
    pub poll_errors: u64,
    /// When the shard's next poll starts (while a poll runs, and for an instant after its
    /// result is stored, the time that poll was due): at once at first, then its place in
    /// every interval, or later while it keeps failing (backoff). `None` until the shard
    /// is scheduled (`headroom check` polls once).
    pub next_poll_at: Option<DateTime<Utc>>,
    /// Failed polls in a row, the count the backoff is computed from; 0 after a success.
    pub consecutive_failures: u32,
    /// Whether the shard's `@@GLOBAL.sql_mode` holds `STRICT_TRANS_TABLES` or
    /// `STRICT_ALL_TABLES`; `None` until it has been read. Without it, values too large for
    /// a column are clamped to its maximum instead of refused.
    pub strict_mode: Option<bool>,
    /// The shard's `@@GLOBAL.sql_mode` as last read.
    pub sql_mode: Option<String>,
    /// A PostgreSQL shard's databases with their wraparound ages, as last read; absent on
    /// MySQL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub databases: Option<Vec<crate::wraparound::DatabaseState>>,
    /// Polls finished since start, successful or not: the stamp of what is known now.
    #[serde(skip)]
    pub polls: u64,
    /// The last known columns; served while the shard is down. Shared, so that a long
    /// answer (a streamed /api/columns) can keep the poll it started with while the next
    /// one is stored.
    #[serde(skip)]
    pub columns: Arc<Vec<ColumnReport>>,
    /// When it was first configured (the start, or the reload that added it): a shard
    /// never read is blind from then.
    #[serde(skip)]
    pub watched_since: DateTime<Utc>,
}

/// What a new configuration removed, for the metrics to forget.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removed {
    /// Shards no longer configured.
    pub shards: Vec<String>,
    /// Sources no longer configured.
    pub sources: Vec<String>,
    /// `(source, server)` pairs no longer configured, also of removed sources.
    pub servers: Vec<(String, String)>,
}

/// Records a successful poll's columns on `s`; returns the unresolved columns it replaced.
fn succeeded(
    s: &mut ShardState,
    columns: Vec<ColumnReport>,
    unresolved: Vec<String>,
    took: Duration,
    at: DateTime<Utc>,
) -> Vec<String> {
    s.polled = true;
    s.up = true;
    s.last_poll = Some(at);
    s.last_success = Some(at);
    s.last_error = None;
    s.last_error_class = None;
    s.last_error_code = None;
    s.poll_duration_seconds = Some(took.as_secs_f64());
    s.column_count = columns.len();
    s.columns = Arc::new(columns);
    s.polls += 1;
    std::mem::replace(&mut s.unresolved, unresolved)
}

/// A shard never polled.
fn fresh_shard(s: &crate::config::ShardSettings) -> ShardState {
    ShardState {
        name: s.name.clone(),
        url: s.endpoint.to_string(),
        polled: false,
        up: false,
        last_poll: None,
        last_success: None,
        last_error: None,
        last_error_class: None,
        last_error_code: None,
        poll_duration_seconds: None,
        column_count: 0,
        unresolved: Vec::new(),
        ambiguous: Vec::new(),
        poll_errors: 0,
        next_poll_at: None,
        consecutive_failures: 0,
        strict_mode: None,
        databases: None,
        sql_mode: None,
        polls: 0,
        columns: Arc::default(),
        watched_since: Utc::now(),
    }
}

/// A source never read.
fn fresh_source(s: &crate::config::SourceSettings) -> SourceState {
    SourceState {
        name: s.name.clone(),
        kind: s.kind.as_str(),
        current: None,
        max: None,
        remaining: None,
        used_ratio: None,
        status: None,
        column_type: None,
        int_type: None,
        growth_per_second: None,
        seconds_to_exhaustion: None,
        exhausts_at: None,
        last_jump: None,
        collision_risk: false,
        collision_reason: None,
        reads: 0,
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
                int_type: None,
                observed_at: None,
                last_error: None,
                last_error_class: None,
                last_error_code: None,
                auto_increment_increment: None,
                auto_increment_offset: None,
                last_id: None,
            })
            .collect(),
    }
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
    /// The same, parsed (for people: `BIGINT UNSIGNED`).
    #[serde(skip)]
    pub int_type: Option<IntType>,
    /// IDs per second over the source's history.
    pub growth_per_second: Option<f64>,
    pub seconds_to_exhaustion: Option<u64>,
    pub exhausts_at: Option<DateTime<Utc>>,
    /// The latest jump kept out of the growth rate, within the last week.
    pub last_jump: Option<Jump>,
    /// Whether the servers can hand out the same ID ([`crate::sources::collision`]), from
    /// the latest readings of each.
    pub collision_risk: bool,
    /// Why, when `collision_risk`; `None` otherwise.
    pub collision_reason: Option<String>,
    pub servers: Vec<ServerState>,
    /// Rounds of reads assessed since start: the stamp of what is known now.
    #[serde(skip)]
    pub reads: u64,
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
    #[serde(skip)]
    pub int_type: Option<IntType>,
    pub observed_at: Option<DateTime<Utc>>,
    /// As for shards: safe text, class (`not_found` when the ticket table is missing) and
    /// the server's error number.
    pub last_error: Option<String>,
    pub last_error_class: Option<&'static str>,
    pub last_error_code: Option<u16>,
    /// The step of the server's IDs (`auto_increment_increment` of headroom's session, as
    /// every new session takes it), from its last good read.
    pub auto_increment_increment: Option<u64>,
    /// The start of the server's IDs (`auto_increment_offset`), likewise.
    pub auto_increment_offset: Option<u64>,
    /// The last ID the ticket table shows (`MAX(id)`), from the last good read; `None`
    /// while it is empty. What the collision rule compares, never `current`'s estimate.
    #[serde(skip)]
    pub last_id: Option<i128>,
}

impl Store {
    pub fn new(settings: &Settings) -> Store {
        let shards = settings.shards.iter().map(fresh_shard).collect();
        let sources = settings.sources.iter().map(fresh_source).collect();
        Store {
            inner: Arc::new(RwLock::new(Snapshot { shards, sources })),
            published: Arc::new(tokio::sync::watch::Sender::new(0)),
            histories: ColumnHistories::default(),
        }
    }

    /// The columns' growth histories, per shard: what the poller records into, and what a
    /// column's chart reads. Lock it briefly: a shard's report step waits for it.
    pub fn histories(&self) -> &ColumnHistories {
        &self.histories
    }

    /// Takes a new configuration's shards and sources, in its order: a shard or a source
    /// (and a source's server) that stays keeps its state, a new one starts unknown, and
    /// what is gone is dropped and returned (its metrics go too). Publishes, so that the
    /// pager sees the new set.
    pub fn reconfigure(&self, settings: &Settings) -> Removed {
        let mut snap = self.write();
        let mut old_shards = std::mem::take(&mut snap.shards);
        snap.shards = settings
            .shards
            .iter()
            .map(|s| match old_shards.iter().position(|o| o.name == s.name) {
                Some(i) => ShardState {
                    url: s.endpoint.to_string(),
                    ..old_shards.swap_remove(i)
                },
                None => fresh_shard(s),
            })
            .collect();
        let mut removed = Removed {
            shards: old_shards.into_iter().map(|s| s.name).collect(),
            ..Removed::default()
        };
        let mut old_sources = std::mem::take(&mut snap.sources);
        snap.sources = settings
            .sources
            .iter()
            .map(
                |s| match old_sources.iter().position(|o| o.name == s.name) {
                    Some(i) => {
                        let mut kept = old_sources.swap_remove(i);
                        let mut fresh = fresh_source(s);
                        for server in &mut fresh.servers {
                            if let Some(j) =
                                kept.servers.iter().position(|o| o.server == server.server)
                            {
                                *server = ServerState {
                                    url: server.url.clone(),
                                    ..kept.servers.swap_remove(j)
                                };
                            }
                        }
                        removed
                            .servers
                            .extend(kept.servers.drain(..).map(|o| (s.name.clone(), o.server)));
                        SourceState {
                            servers: fresh.servers,
                            ..kept
                        }
                    }
                    None => fresh_source(s),
                },
            )
            .collect();
        for source in old_sources {
            removed.servers.extend(
                source
                    .servers
                    .into_iter()
                    .map(|o| (source.name.clone(), o.server)),
            );
            removed.sources.push(source.name);
        }
        drop(snap);
        self.publish();
        removed
    }

    /// A receiver that sees a change after every finished shard poll (successful or not),
    /// once the store holds its result.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.published.subscribe()
    }

    fn publish(&self) {
        self.published.send_modify(|n| *n += 1);
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

    /// When `shard` is polled next and its failures in a row, once it has been polled (a
    /// shard that stays through a reload keeps them).
    pub fn shard_schedule(&self, shard: &str) -> Option<(DateTime<Utc>, u32)> {
        let snap = self.read();
        let s = snap.shards.iter().find(|s| s.name == shard && s.polled)?;
        Some((s.next_poll_at?, s.consecutive_failures))
    }

    /// Records when `shard` is polled next, and after how many failures in a row.
    pub fn shard_scheduled(&self, shard: &str, next_poll_at: DateTime<Utc>, failures: u32) {
        let mut snap = self.write();
        if let Some(s) = snap.shards.iter_mut().find(|s| s.name == shard) {
            s.next_poll_at = Some(next_poll_at);
            s.consecutive_failures = failures;
        }
    }

    /// Stores one finished poll of `shard`, successful or not, in one write, and publishes
    /// it; returns the columns the shard's previous poll could not measure (for a caller
    /// that says when that set changes). A failed poll keeps the last known columns.
    pub fn shard_polled(
        &self,
        shard: &str,
        outcome: Result<ShardResult, ErrorReport>,
        took: Duration,
        at: DateTime<Utc>,
    ) -> Vec<String> {
        let mut snap = self.write();
        let mut previous = Vec::new();
        if let Some(s) = snap.shards.iter_mut().find(|s| s.name == shard) {
            match outcome {
                Ok(result) => {
                    previous = succeeded(s, result.columns, result.unresolved, took, at);
                    s.ambiguous = result.ambiguous;
                    s.sql_mode = result.mode;
                    s.strict_mode = Some(result.strict);
                    s.databases = result.databases;
                }
                Err(error) => {
                    previous = s.unresolved.clone();
                    s.polled = true;
                    s.up = false;
                    s.last_poll = Some(at);
                    s.last_error = Some(error.message);
                    s.last_error_class = Some(error.class);
                    s.last_error_code = error.code;
                    s.poll_duration_seconds = Some(took.as_secs_f64());
                    s.poll_errors += 1;
                    s.polls += 1;
                }
            }
        }
        drop(snap);
        self.publish();
        previous
    }

    /// Stores a successful poll of `shard` that found `columns`, leaving what else a poll
    /// reads (mode, ambiguous guesses) as it was: for tests and benches, which build
    /// columns by hand.
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
            succeeded(s, columns, unresolved, took, at);
        }
        drop(snap);
        self.publish();
    }

    /// Stores a failed poll of `shard` (tests): [`Store::shard_polled`] with `error`.
    pub fn shard_failed(&self, shard: &str, error: ErrorReport, took: Duration, at: DateTime<Utc>) {
        self.shard_polled(shard, Err(error), took, at);
    }

    /// Stores a source as one round of reads left it ([`crate::sources::assess`]), in one
    /// write. A round that started before a reload changed the source's servers is dropped:
    /// the next round reads the new ones.
    pub fn source_polled(&self, assessed: SourceState) {
        let mut snap = self.write();
        if let Some(src) = snap.sources.iter_mut().find(|s| s.name == assessed.name)
            && src.servers.len() == assessed.servers.len()
            && src
                .servers
                .iter()
                .zip(&assessed.servers)
                .all(|(a, b)| a.server == b.server && a.url == b.url)
        {
            *src = assessed;
        }
    }

    /// A copy of source `name` as stored, for the next round's assessment.
    pub fn source(&self, name: &str) -> Option<SourceState> {
        self.read().sources.iter().find(|s| s.name == name).cloned()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_mode_is_unknown_until_read() {
        let store = Store::new(&crate::config::testing::settings(""));
        let name = store.read().shards[0].name.clone();
        let polled = |mode: &str, strict: bool| {
            let result = ShardResult {
                mode: Some(mode.to_string()),
                strict,
                ..ShardResult::default()
            };
            store.shard_polled(&name, Ok(result), Duration::ZERO, Utc::now());
        };
        assert_eq!(store.read().shards[0].strict_mode, None);
        polled("NO_ENGINE_SUBSTITUTION", false);
        assert_eq!(store.read().shards[0].strict_mode, Some(false));
        polled("STRICT_ALL_TABLES", true);
        assert_eq!(store.read().shards[0].strict_mode, Some(true));
        assert_eq!(
            store.read().shards[0].sql_mode.as_deref(),
            Some("STRICT_ALL_TABLES")
        );
    }
}
