//! The poll loop. Every shard has a task of its own: its first poll at once, then at its own
//! place in every `poll.interval` ([`first_poll_offset`], a hash of its name, so that a large
//! fleet is not read in the same second), or later while it keeps failing ([`delay_after`]:
//! interval × 2^(n−1), at most [`MAX_BACKOFF`] × interval). The sources have a task of their
//! own, read every interval; a shard poll uses their latest values in the store. At most
//! `poll.concurrency` shard polls run at once (a semaphore). A shard poll reads the `MAX()`
//! of only the columns due (at risk, new, or in their turn: see [`crate::dives`]); each
//! shard keeps its last dives between polls.
//!
//! A shard that is down, slow or refused holds up no other: each of its queries is bounded
//! by `poll.query_timeout`, its whole poll by `poll.shard_timeout`, its failure is recorded,
//! not raised, and a poll that runs long delays only that shard's next one (polls never
//! overlap on one shard).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use chrono::Utc;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::config::{Endpoint, Settings, ShardSettings, SourceKind, SourceSettings};
use crate::db::{DbError, ErrorReport};
use crate::dives::{self, Schedule};
use crate::engine::Connector;
use crate::growth::{self, Tracker};
use crate::inventory::{InventoryError, SchemaFilter};
use crate::measure::{self, ShardResult};
use crate::sources::{self, SourceError};
use crate::state::{Snapshot, Store};

/// How long shutdown waits for connections to close cleanly.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// A shard that keeps failing is polled at least every this many intervals.
pub const MAX_BACKOFF: u32 = 10;
/// Growth histories are saved at most this often while running, and at shutdown.
const SAVE_HISTORIES_EVERY: Duration = Duration::from_secs(5 * 60);

/// Why a shard poll failed.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl PollError {
    /// The error as it may be published.
    pub fn report(&self) -> ErrorReport {
        match self {
            PollError::Inventory(e) => e.report(),
            PollError::Db(e) => e.into(),
        }
    }
}

struct Shard {
    settings: ShardSettings,
    connector: Connector,
    filter: SchemaFilter,
    /// The last dive of each column and which are at risk: what the next poll reads.
    dives: Mutex<dives::Ledger>,
    /// The growth of its databases' wraparound ages (PostgreSQL).
    ages: Mutex<crate::growth::Tracker<(String, &'static str)>>,
}

struct SourceServer {
    endpoint: Endpoint,
    connector: Connector,
}

struct Source {
    settings: SourceSettings,
    servers: Vec<SourceServer>,
}

/// Polls everything configured and publishes the results.
pub struct Poller {
    settings: Arc<Settings>,
    shards: Vec<Shard>,
    sources: Vec<Source>,
    store: Store,
    /// Column histories per shard (a shard that fails keeps its histories untouched): the
    /// store's ([`Store::histories`]), so that requests read them and a poller made for a
    /// reload records into the same ones.
    growth: growth::ColumnHistories,
    /// Source histories.
    source_growth: Arc<Mutex<Tracker<String>>>,
    /// Where the histories are saved, so that forecasts survive a restart.
    history_path: PathBuf,
}

impl Poller {
    /// The daemon's poller: as [`Poller::one_shot`], with the growth histories of the
    /// history file beside the state file restored, so that forecasts survive a restart.
    pub fn new(settings: Arc<Settings>, store: Store) -> Result<Poller, DbError> {
        let poller = Poller::one_shot(settings, store)?;
        let (columns, sources) = growth::file::restore(
            &poller.history_path,
            poller.settings.shards.iter().map(|s| s.name.as_str()),
            poller.settings.sources.iter().map(|s| s.name.as_str()),
        );
        *poller.growth.lock().unwrap_or_else(|e| e.into_inner()) = columns;
        *poller
            .source_growth
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = sources;
        Ok(poller)
    }

    /// One poll of everything `settings` names, from a fresh store, then the connections
    /// closed: what `check`, `plan` and `lint` judge.
    pub async fn snapshot_once(settings: Arc<Settings>) -> Result<Snapshot, DbError> {
        let store = Store::new(&settings);
        let poller = Poller::one_shot(settings, store.clone())?;
        poller.poll_once().await;
        poller.close().await;
        let snapshot = store.read().clone();
        Ok(snapshot)
    }

    /// A poller that starts with no history and leaves the daemon's history file alone:
    /// `headroom check`, whose one poll judges by ratio only. Prepares a connector per
    /// server; nothing connects until the first poll.
    pub fn one_shot(settings: Arc<Settings>, store: Store) -> Result<Poller, DbError> {
        let timeout = settings.poll.query_timeout;
        let shards = settings
            .shards
            .iter()
            .map(|s| {
                Ok(Shard {
                    connector: Connector::watching(
                        &s.endpoint.url,
                        s.endpoint.expose_password(),
                        timeout,
                        s.databases.as_deref(),
                    )?,
                    filter: SchemaFilter::from_config(s.schemas.as_ref()),
                    dives: Mutex::new(dives::Ledger::default()),
                    ages: Mutex::new(crate::growth::Tracker::default()),
                    settings: s.clone(),
                })
            })
            .collect::<Result<_, DbError>>()?;
        let sources = settings
            .sources
            .iter()
            .map(|s| {
                Ok(Source {
                    servers: s
                        .servers
                        .iter()
                        .map(|e| {
                            Ok(SourceServer {
                                connector: Connector::new(&e.url, e.expose_password(), timeout)?,
                                endpoint: e.clone(),
                            })
                        })
                        .collect::<Result<_, DbError>>()?,
                    settings: s.clone(),
                })
            })
            .collect::<Result<_, DbError>>()?;
        let history_path = growth::file::path_for(&settings.state_path);
        let growth = Arc::clone(store.histories());
        Ok(Poller {
            shards,
            sources,
            store,
            growth,
            source_growth: Arc::new(Mutex::new(Tracker::default())),
            history_path,
            settings,
        })
    }

    /// Polls until `shutdown` is cancelled, each shard on its own schedule (see
    /// [`first_poll_offset`] and [`delay_after`]), the sources in a task of their own. A
    /// poll cut short by shutdown is abandoned (no connection is left mid-query: they are
    /// dropped); the histories are saved and the kept connections closed before returning.
    pub async fn run(self, shutdown: CancellationToken) {
        let poller = self.run_generation(shutdown).await;
        poller.finish().await;
    }

    /// Saves the histories and closes every kept connection: the end of the last
    /// generation.
    pub async fn finish(&self) {
        let _ = self.save_histories().await;
        // A connection abandoned mid-query (a frozen server) was dropped with its poll;
        // the kept ones are closed cleanly, each within a grace period.
        self.close().await;
    }

    /// The settings this poller runs with.
    pub fn settings(&self) -> &Arc<Settings> {
        &self.settings
    }

    /// Takes over from `previous`, the poller of the configuration before a reload, once
    /// its generation has ended: the growth histories of the shards and sources that stay
    /// are handed over in memory, the others dropped. A shard that stays also keeps its
    /// schedule and backoff (they are in the store); `previous` keeps its connections, to
    /// close. Two pollers of one store share the column histories: they stay in place (a
    /// request never sees them empty), less the shards removed.
    pub fn take_over(&self, previous: &Poller) {
        let stays = |name: &String| self.settings.shards.iter().any(|s| &s.name == name);
        if Arc::ptr_eq(&self.growth, &previous.growth) {
            lock(&self.growth).retain(|name, _| stays(name));
        } else {
            let mut columns = std::mem::take(&mut *lock(&previous.growth));
            columns.retain(|name, _| stays(name));
            *lock(&self.growth) = columns;
        }
        let mut sources = std::mem::take(
            &mut *previous
                .source_growth
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        sources.retain(|name| self.settings.sources.iter().any(|s| &s.name == name));
        *self.source_growth.lock().unwrap_or_else(|e| e.into_inner()) = sources;
    }

    /// Polls until `generation` is cancelled and returns the poller, its histories in
    /// hand, for [`Poller::finish`] or [`Poller::succeed`].
    pub async fn run_generation(self, shutdown: CancellationToken) -> Arc<Poller> {
        let poller = Arc::new(self);
        let clock = Clock::now();
        // Shards wait for the first round of source reads, so that reference columns see
        // source values from their first poll on.
        let (sources_read, sources_ready) = tokio::sync::watch::channel(false);
        let permits = Arc::new(tokio::sync::Semaphore::new(
            poller.settings.poll.concurrency,
        ));
        let tasks = tokio_util::task::TaskTracker::new();
        {
            let (poller, shutdown) = (Arc::clone(&poller), shutdown.clone());
            tasks.spawn(async move { poller.run_sources(sources_read, shutdown).await });
        }
        for index in 0..poller.shards.len() {
            let (poller, shutdown) = (Arc::clone(&poller), shutdown.clone());
            let (ready, permits) = (sources_ready.clone(), Arc::clone(&permits));
            tasks.spawn(async move {
                poller
                    .run_shard(index, clock, ready, permits, shutdown)
                    .await
            });
        }
        tasks.close();
        let mut saving: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(SAVE_HISTORIES_EVERY) => {}
            }
            if saving.as_ref().is_none_or(|h| h.is_finished()) {
                saving = Some(poller.save_histories());
            }
        }
        tasks.wait().await;
        if let Some(previous) = saving {
            let _ = previous.await;
        }
        poller
    }

    /// Reads every source every `interval`, from the start; says so on `read` after the
    /// first round.
    async fn run_sources(
        &self,
        read: tokio::sync::watch::Sender<bool>,
        shutdown: CancellationToken,
    ) {
        let mut ticker = tokio::time::interval(self.settings.poll.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.poll_sources() => {}
            }
            read.send_replace(true);
        }
    }

    /// Polls one shard until shutdown, one poll at a time, each holding one of `permits`
    /// (`poll.concurrency`) while it runs. The first poll is at once (after the first
    /// source reads), so that every shard is known within one poll of the start; then the
    /// shard keeps its own place in the interval ([`first_poll_offset`], see
    /// [`next_in_phase`]) while it succeeds, and backs off ([`delay_after`]) while it fails.
    async fn run_shard(
        &self,
        index: usize,
        clock: Clock,
        mut sources_ready: tokio::sync::watch::Receiver<bool>,
        permits: Arc<tokio::sync::Semaphore>,
        shutdown: CancellationToken,
    ) {
        let Some(shard) = self.shards.get(index) else {
            return;
        };
        let name = &shard.settings.name;
        let interval = self.settings.poll.interval;
        let offset = first_poll_offset(name, interval);
        // A shard that stays through a reload keeps its next poll and its backoff.
        let (mut next, mut failures) = match self.store.shard_schedule(name) {
            Some((at, failures)) => {
                let wait = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                (clock.started + wait, failures)
            }
            None => (clock.started, 0),
        };
        self.store.shard_scheduled(name, clock.wall(next), failures);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = sources_ready.wait_for(|read| *read) => {}
        }
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep_until(next) => {}
            }
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break,
                permit = Arc::clone(&permits).acquire_owned() => permit,
            };
            let Ok(_permit) = permit else { break };
            let polled_at = Instant::now();
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => break,
                outcome = self.read_shard_bounded(shard) => outcome,
            };
            failures = match outcome {
                Ok(_) => 0,
                Err(_) => failures.saturating_add(1),
            };
            let planned = match failures {
                0 => {
                    let since = polled_at.saturating_duration_since(clock.started);
                    clock.started + next_in_phase(offset, interval, since)
                }
                n => polled_at + delay_after(interval, n),
            };
            // Never in the past: a poll that ran past its next one delays it, never
            // overlaps it.
            next = planned.max(Instant::now());
            let at = clock.wall(polled_at);
            self.record_shard(shard, outcome, polled_at.elapsed(), at);
            // Until this is stored, `next_poll_at` is this poll's own time (not after
            // `last_poll`): a reader can tell the schedule is being updated.
            self.store.shard_scheduled(name, clock.wall(next), failures);
        }
    }

    /// Saves every growth history to the history file, off the runtime's threads.
    pub fn save_histories(&self) -> tokio::task::JoinHandle<()> {
        let (columns, sources) = (Arc::clone(&self.growth), Arc::clone(&self.source_growth));
        let path = self.history_path.clone();
        tokio::task::spawn_blocking(move || {
            let file = growth::file::collect(
                &columns,
                &sources,
                Instant::now(),
                growth::file::unix_ms_now(),
            );
            if let Err(e) = growth::file::save(&path, &file) {
                tracing::warn!(path = %path.display(), error = %e, "Cannot save the growth histories");
            }
        })
    }

    /// Closes every kept connection, so that servers see them end cleanly.
    pub async fn close(&self) {
        let closes = self
            .shards
            .iter()
            .map(|s| &s.connector)
            .chain(
                self.sources
                    .iter()
                    .flat_map(|s| s.servers.iter().map(|s| &s.connector)),
            )
            .map(|c| c.close(CLOSE_GRACE));
        futures::future::join_all(closes).await;
    }

    /// One poll of everything (`headroom check`, tests): sources first, so that reference
    /// columns see fresh values, then every shard, `poll.concurrency` at a time.
    pub async fn poll_once(&self) {
        let started = Instant::now();
        self.poll_sources().await;
        let polls: Vec<_> = self.shards.iter().map(|s| self.poll_shard(s)).collect();
        futures::stream::iter(polls)
            .buffer_unordered(self.settings.poll.concurrency)
            .collect::<()>()
            .await;
        tracing::debug!(
            took_ms = started.elapsed().as_millis() as u64,
            shards = self.shards.len(),
            "Poll finished"
        );
    }

    /// Reads every server of every source, then assesses each source in one pure step
    /// ([`sources::assess`]) and stores it in one call.
    async fn poll_sources(&self) {
        let rounds = self.sources.iter().map(|source| async move {
            let reads = source
                .servers
                .iter()
                .map(|server| self.read_source_server_logged(source, server));
            (source, futures::future::join_all(reads).await)
        });
        let rounds = futures::future::join_all(rounds).await;
        let at = measure::Moment {
            instant: Instant::now(),
            wall: Utc::now(),
        };
        let mut growth = lock(&self.source_growth);
        for (source, reads) in rounds {
            let Some(previous) = self.store.source(&source.settings.name) else {
                continue;
            };
            let policy = &self.settings.policy;
            let assessed = sources::assess::assess(&previous, reads, &mut growth, policy, at);
            self.store.source_polled(assessed);
        }
    }

    /// Reads one server of a source; a failure is logged and kept as its report.
    async fn read_source_server_logged(
        &self,
        source: &Source,
        server: &SourceServer,
    ) -> sources::assess::ServerRead {
        let label = server.endpoint.label();
        let at = Utc::now();
        let result = self.read_source_server(source, server).await.map_err(|e| {
            let report = e.report();
            tracing::warn!(source = %source.settings.name, server = %label, error = %report.message, class = report.class, code = ?report.code, "Source read failed");
            report
        });
        sources::assess::ServerRead {
            server: label,
            at,
            result,
        }
    }

    async fn read_source_server(
        &self,
        source: &Source,
        server: &SourceServer,
    ) -> Result<sources::Reading, SourceError> {
        let timeout = self.settings.poll.query_timeout;
        // The whole read, not only each step, is bounded: every shard waits for the sources.
        let read = self.read_source_server_unbounded(source, server);
        let result = match tokio::time::timeout(timeout, read).await {
            Ok(result) => result,
            Err(_) => Err(SourceError::Db(DbError::timeout(
                "reading the ticket server",
                timeout,
            ))),
        };
        // Not kept for the next read: each read opens a new session, so that its
        // auto_increment_increment and auto_increment_offset are what a new application
        // session gets now, not what they were when a kept connection was opened.
        server.connector.close(CLOSE_GRACE).await;
        result
    }

    async fn read_source_server_unbounded(
        &self,
        source: &Source,
        server: &SourceServer,
    ) -> Result<sources::Reading, SourceError> {
        let timeout = self.settings.poll.query_timeout;
        let mut session = server.connector.acquire().await?;
        // Validation guarantees a database in every source URL.
        let database = server.endpoint.database().unwrap_or_default();
        let result = match source.settings.kind {
            SourceKind::TicketServer => {
                session
                    .ticket(&database, &source.settings.table, timeout)
                    .await
            }
            SourceKind::Sequence => {
                let (schema, name) = source.settings.sequence.clone().unwrap_or_default();
                session.sequence(&database, &schema, &name, timeout).await
            }
        };
        // A failed session is dropped, a good one closed cleanly after the read (see
        // `read_source_server`).
        if result.is_ok() {
            session.release();
        }
        result
    }

    /// Polls one shard and records the outcome.
    async fn poll_shard(&self, shard: &Shard) {
        let started = Instant::now();
        let at = Utc::now();
        let result = self.read_shard_bounded(shard).await;
        self.record_shard(shard, result, started.elapsed(), at);
    }

    /// Reads one shard, the whole poll bounded by `poll.shard_timeout`.
    async fn read_shard_bounded(&self, shard: &Shard) -> Result<ShardResult, PollError> {
        let limit = self.settings.poll.shard_timeout;
        match tokio::time::timeout(limit, self.read_shard(shard)).await {
            Ok(result) => result,
            // The session went with the abandoned read: dropped, never reused.
            Err(_) => Err(PollError::Db(DbError::timeout("polling the shard", limit))),
        }
    }

    /// Stores a shard poll's outcome, in one call, and says when the columns it could not
    /// measure change.
    fn record_shard(
        &self,
        shard: &Shard,
        result: Result<ShardResult, PollError>,
        took: Duration,
        at: chrono::DateTime<Utc>,
    ) {
        let name = &shard.settings.name;
        let (outcome, unresolved) = match result {
            Ok(result) => {
                tracing::debug!(shard = %name, columns = result.columns.len(), took_ms = took.as_millis() as u64, "Shard polled");
                let unresolved = result.unresolved.clone();
                (Ok(result), Some(unresolved))
            }
            Err(e) => {
                let report = e.report();
                tracing::warn!(shard = %name, error = %report.message, class = report.class, code = ?report.code, "Shard poll failed");
                (Err(report), None)
            }
        };
        let before = self.store.shard_polled(name, outcome, took, at);
        // Said when the set changes, not at every poll.
        if let Some(unresolved) = unresolved
            && before != unresolved
        {
            for u in &unresolved {
                tracing::warn!(shard = %name, column = %u, "Column not measured");
            }
        }
    }

    /// Reads one shard through the engine (its catalog, then the index dives due, see
    /// [`dives`]), then the pure step ([`measure::prepare`], [`measure::report`]). A failed
    /// poll leaves the shard's dives as they were.
    async fn read_shard(&self, shard: &Shard) -> Result<ShardResult, PollError> {
        let timeout = self.settings.poll.query_timeout;
        let schedule = Schedule {
            interval: self.settings.poll.interval,
            reread_within: self.settings.poll.reread_within,
        };
        let mut session = shard.connector.acquire().await?;
        let read = async {
            let catalog = session.catalog(&shard.filter, timeout).await?;
            let prepared = measure::prepare(&catalog, &self.settings);
            drop(catalog);
            let due = lock(&shard.dives).due(&prepared.plan.dives, Instant::now(), schedule);
            let values = session.dive(&due, timeout).await?;
            Ok::<_, PollError>((prepared, due, values))
        }
        .await;
        // A failed session is dropped (closed), a good one kept for the next poll.
        let (prepared, due, values) = read?;
        session.release();
        let at = measure::Moment {
            instant: Instant::now(),
            wall: Utc::now(),
        };
        tracing::debug!(shard = %shard.settings.name, dived = due.len(), of = prepared.plan.dives.len(), "Index dives read");
        let sources = self.store.source_values();
        let mut ledger = lock(&shard.dives);
        ledger.record(&prepared.plan.dives, &due, values, at);
        let mut result = {
            let mut growth = lock(&self.growth);
            let tracker = growth.entry(shard.settings.name.clone()).or_default();
            let (name, policy) = (&shard.settings.name, &self.settings.policy);
            measure::report(
                name,
                &prepared,
                ledger.dives(),
                &sources,
                tracker,
                policy,
                at,
            )
        };
        let policy = &self.settings.policy;
        let at_risk = result
            .columns
            .iter()
            .filter(|r| dives::at_risk(r, policy))
            .map(|r| r.id.clone())
            .collect();
        ledger.set_at_risk(measure::dives_of(&prepared.plan, &at_risk));
        if !prepared.ages.is_empty() {
            let mut ages = lock(&shard.ages);
            result.databases = Some(crate::wraparound::assess(
                &prepared.ages,
                &mut ages,
                policy,
                at,
            ));
        }
        Ok(result)
    }
}

/// Locks `mutex`, also after a panic elsewhere: what it guards is replaced whole.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where a shard's first poll falls within the first interval: the same place for the same
/// name and interval, spread evenly over names (FNV-1a of the name, mixed, scaled exactly), so
/// that a thousand shards are not all hit in the same second.
pub fn first_poll_offset(shard: &str, interval: Duration) -> Duration {
    let mut hash = crate::hash::fnv1a(shard.as_bytes());
    // FNV's high bits barely change between `shard-001` and `shard-002`: mix them all in
    // (MurmurHash3's finaliser), since the high bits pick the place.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^= hash >> 33;
    let nanos = (u128::from(hash) * interval.as_nanos()) >> 64;
    // Below the interval, which fits in a Duration.
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// The time from the start of a failed shard poll to the start of the next one, after
/// `failures` consecutive failed polls: interval × 2^(failures − 1), at most
/// [`MAX_BACKOFF`] × interval (one interval for 0; a succeeding shard is kept at its place
/// in the interval instead, see [`next_in_phase`]).
pub fn delay_after(interval: Duration, failures: u32) -> Duration {
    let factor = match failures {
        0 => 1,
        n => 1u32
            .checked_shl(n - 1)
            .unwrap_or(MAX_BACKOFF)
            .min(MAX_BACKOFF),
    };
    interval.saturating_mul(factor)
}

/// How long after the start a shard that keeps its place `offset` in every `interval` is
/// polled next, `since` the start: the first such place strictly after `since`.
pub fn next_in_phase(offset: Duration, interval: Duration, since: Duration) -> Duration {
    let (offset, interval, since) = (
        offset.as_nanos(),
        interval.as_nanos().max(1),
        since.as_nanos(),
    );
    let next = if since < offset {
        offset
    } else {
        offset + ((since - offset) / interval + 1) * interval
    };
    Duration::from_nanos(u64::try_from(next).unwrap_or(u64::MAX))
}

/// The run's start on both clocks: the schedule is kept on the monotonic one, and shown
/// (`last_poll`, `next_poll_at`) as wall time from the same anchor, so that the two agree
/// to the nanosecond.
#[derive(Debug, Clone, Copy)]
struct Clock {
    started: Instant,
    wall: chrono::DateTime<Utc>,
}

impl Clock {
    fn now() -> Clock {
        Clock {
            started: Instant::now(),
            wall: Utc::now(),
        }
    }

    /// `at` as wall time.
    fn wall(&self, at: Instant) -> chrono::DateTime<Utc> {
        let since = at.saturating_duration_since(self.started);
        chrono::TimeDelta::from_std(since)
            .ok()
            .and_then(|since| self.wall.checked_add_signed(since))
            .unwrap_or(self.wall)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn the_backoff_doubles_per_failure_from_one_interval_up_to_ten_intervals() {
        let delays: Vec<u64> = (0..8).map(|n| delay_after(MINUTE, n).as_secs()).collect();
        assert_eq!(delays, [60, 60, 120, 240, 480, 600, 600, 600]);
    }

    #[test]
    fn the_delay_stays_capped_however_many_failures() {
        assert_eq!(delay_after(MINUTE, 32), Duration::from_secs(600));
        assert_eq!(delay_after(MINUTE, 33), Duration::from_secs(600));
        assert_eq!(delay_after(MINUTE, u32::MAX), Duration::from_secs(600));
        assert_eq!(
            delay_after(Duration::from_millis(500), 4),
            Duration::from_secs(4)
        );
    }

    #[test]
    fn the_first_poll_offset_is_the_same_for_the_same_name_and_within_the_interval() {
        let a = first_poll_offset("shard-001", MINUTE);
        assert_eq!(a, first_poll_offset("shard-001", MINUTE));
        assert!(a < MINUTE);
        assert_ne!(a, first_poll_offset("shard-002", MINUTE));
        // FNV-1a of "" is its offset basis, 0xcbf29ce484222325, mixed: 0xefd01f60ba992926
        // / 2^64 of a minute.
        assert_eq!(
            first_poll_offset("", MINUTE),
            Duration::from_nanos(56_206_166_903)
        );
    }

    #[test]
    fn a_succeeding_shard_is_polled_next_at_its_own_place_in_the_interval() {
        let (offset, interval) = (Duration::from_secs(17), MINUTE);
        let at = |since: u64| next_in_phase(offset, interval, Duration::from_secs(since)).as_secs();
        // The first poll at the start: the next at the shard's place in the first interval.
        assert_eq!(at(0), 17);
        // At its place: one interval later.
        assert_eq!(at(17), 77);
        assert_eq!(at(77), 137);
        // After a backoff, a recovered shard goes back to its place.
        assert_eq!(at(100), 137);
        assert_eq!(
            next_in_phase(Duration::ZERO, interval, Duration::from_secs(60)),
            Duration::from_secs(120)
        );
    }

    #[test]
    fn a_thousand_shards_are_spread_over_the_interval_at_most_forty_in_one_second() {
        let mut per_second = [0u32; 60];
        for i in 1..=1000 {
            let offset = first_poll_offset(&format!("shard-{i:04}"), MINUTE);
            per_second[offset.as_secs() as usize] += 1;
        }
        let busiest = per_second.iter().max().copied().unwrap_or(0);
        let idle = per_second.iter().filter(|n| **n == 0).count();
        assert!(busiest <= 40, "{per_second:?}");
        assert_eq!(idle, 0, "{per_second:?}");
    }
}
