//! The poll loop: every `poll.interval`, read every source's servers, then every shard
//! (`poll.concurrency` at a time), compute, and publish to the state and the metrics as each
//! one finishes. A shard that is down, slow or refused holds up no other: each of its
//! queries is bounded by `poll.query_timeout`, and its failure is recorded, not raised.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use chrono::Utc;
use futures::StreamExt;
use sqlx::mysql::MySqlPool;
use tokio_util::sync::CancellationToken;

use crate::config::{Endpoint, Settings, ShardSettings, SourceKind, SourceSettings};
use crate::db::{self, DbError};
use crate::growth::{Forecast, Tracker};
use crate::inventory::{self, ColumnId, InventoryError, SchemaFilter, maxima};
use crate::measure::{self, ColumnReport};
use crate::metrics::Metrics;
use crate::pager::Pager;
use crate::sources::{self, SourceError, ticket_server};
use crate::state::Store;

/// How long shutdown waits for connections to close cleanly.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Why a shard poll failed.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error(transparent)]
    Db(#[from] DbError),
}

struct Shard {
    settings: ShardSettings,
    pool: MySqlPool,
    filter: SchemaFilter,
}

struct SourceServer {
    endpoint: Endpoint,
    pool: MySqlPool,
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
    metrics: Arc<Metrics>,
    /// Column histories per shard (a shard that fails keeps its histories untouched).
    growth: Mutex<HashMap<String, Tracker<ColumnId>>>,
    /// Source histories.
    source_growth: Mutex<Tracker<String>>,
    /// Decides and queues pages after each poll, when notifiers are configured.
    pager: Option<Arc<Pager>>,
}

impl Poller {
    /// Prepares a lazy connection pool per server; nothing connects until the first poll.
    pub fn new(
        settings: Arc<Settings>,
        store: Store,
        metrics: Arc<Metrics>,
    ) -> Result<Poller, sqlx::Error> {
        let timeout = settings.poll.query_timeout;
        let shards = settings
            .shards
            .iter()
            .map(|s| {
                Ok(Shard {
                    pool: db::pool(&s.endpoint, timeout)?,
                    filter: SchemaFilter::from_config(s.schemas.as_ref()),
                    settings: s.clone(),
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
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
                                pool: db::pool(e, timeout)?,
                                endpoint: e.clone(),
                            })
                        })
                        .collect::<Result<_, sqlx::Error>>()?,
                    settings: s.clone(),
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(Poller {
            settings,
            shards,
            sources,
            store,
            metrics,
            growth: Mutex::new(HashMap::new()),
            source_growth: Mutex::new(Tracker::default()),
            pager: None,
        })
    }

    /// Pages through `pager` after every poll of [`Poller::run`].
    pub fn with_pager(mut self, pager: Arc<Pager>) -> Poller {
        self.pager = Some(pager);
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Polls until `shutdown` is cancelled; the first poll starts at once. A poll cut short
    /// by shutdown is abandoned (no connection is left mid-query: they are dropped).
    pub async fn run(&self, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(self.settings.poll.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.poll_once() => {}
            }
            if let Some(pager) = &self.pager {
                pager.evaluate(&self.store.read(), Utc::now());
            }
        }
        // A connection abandoned mid-query on a frozen server may never be returned to its
        // pool; closing waits for it, so shutdown does not wait for closing for long.
        if tokio::time::timeout(CLOSE_GRACE, self.close())
            .await
            .is_err()
        {
            tracing::warn!("Connections still busy at shutdown were dropped");
        }
    }

    /// Closes every pool, so that servers see the connections end cleanly.
    pub async fn close(&self) {
        for shard in &self.shards {
            shard.pool.close().await;
        }
        for source in &self.sources {
            for server in &source.servers {
                server.pool.close().await;
            }
        }
    }

    /// One poll of everything: sources first, so that reference columns see fresh values.
    pub async fn poll_once(&self) {
        let started = Instant::now();
        let mut reads = Vec::new();
        for source in &self.sources {
            for server in &source.servers {
                reads.push(self.poll_source_server(source, server));
            }
        }
        futures::future::join_all(reads).await;
        self.forecast_sources();
        for source in self.store.read().sources.iter() {
            self.metrics.publish_source(source);
        }
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

    /// Records every source's value in its history and stores the forecast.
    fn forecast_sources(&self) {
        let values: Vec<(String, i128, u64)> = self
            .store
            .read()
            .sources
            .iter()
            .filter_map(|s| Some((s.name.clone(), s.current?, s.max?)))
            .collect();
        let now = Instant::now();
        let mut tracker = self.source_growth.lock().unwrap_or_else(|e| e.into_inner());
        for (name, current, max) in values {
            let forecast = tracker.record(now, name.clone(), current, max);
            self.store.source_forecast(&name, forecast, Utc::now());
        }
    }

    async fn poll_source_server(&self, source: &Source, server: &SourceServer) {
        let name = &source.settings.name;
        let label = server.endpoint.label();
        let at = Utc::now();
        let result = self.read_source_server(source, server).await;
        let result = match result {
            Ok(reading) => Ok((reading.highest, reading.int_type.max(), reading.column_type)),
            Err(e) => {
                tracing::warn!(source = %name, server = %label, error = %e, "Source read failed");
                Err(e.to_string())
            }
        };
        self.store.source_server_read(name, &label, result, at);
    }

    async fn read_source_server(
        &self,
        source: &Source,
        server: &SourceServer,
    ) -> Result<sources::Reading, SourceError> {
        let timeout = self.settings.poll.query_timeout;
        let what = format!(
            "source {} server {}",
            source.settings.name,
            server.endpoint.label()
        );
        // The whole read, not only each step, is bounded: every shard waits for the sources.
        let read = self.read_source_server_unbounded(source, server, &what);
        match tokio::time::timeout(timeout, read).await {
            Ok(result) => result,
            Err(_) => Err(SourceError::Db(DbError::Timeout {
                what,
                after: timeout,
            })),
        }
    }

    async fn read_source_server_unbounded(
        &self,
        source: &Source,
        server: &SourceServer,
        what: &str,
    ) -> Result<sources::Reading, SourceError> {
        let timeout = self.settings.poll.query_timeout;
        let mut conn = db::acquire(&server.pool, timeout, what).await?;
        // Validation guarantees a database in every source URL.
        let database = server.endpoint.database().unwrap_or_default();
        let result = match source.settings.kind {
            SourceKind::TicketServer => {
                ticket_server::read(&mut conn, &database, &source.settings.table, timeout).await
            }
        };
        if result.is_err() {
            db::discard(conn);
        }
        result
    }

    async fn poll_shard(&self, shard: &Shard) {
        let name = &shard.settings.name;
        let started = Instant::now();
        let at = Utc::now();
        let result = self.read_shard(shard).await;
        let took = started.elapsed();
        let failed = match result {
            Ok((reports, unresolved)) => {
                tracing::debug!(shard = %name, columns = reports.len(), took_ms = took.as_millis() as u64, "Shard polled");
                // Said when the set changes, not at every poll.
                let before = self
                    .store
                    .read()
                    .shards
                    .iter()
                    .find(|s| &s.name == name)
                    .map(|s| s.unresolved.clone());
                if before.as_ref() != Some(&unresolved) {
                    for u in &unresolved {
                        tracing::warn!(shard = %name, column = %u, "Column not measured");
                    }
                }
                self.store
                    .shard_succeeded(name, reports, unresolved, took, at);
                false
            }
            Err(e) => {
                tracing::warn!(shard = %name, error = %e, "Shard poll failed");
                self.store.shard_failed(name, e.to_string(), took, at);
                true
            }
        };
        let snapshot = self.store.read();
        if let Some(state) = snapshot.shards.iter().find(|s| &s.name == name) {
            self.metrics.publish_shard(state, failed);
        }
    }

    /// Reads one shard: inventory, index dives, then the pure computation.
    async fn read_shard(
        &self,
        shard: &Shard,
    ) -> Result<(Vec<ColumnReport>, Vec<String>), PollError> {
        let timeout = self.settings.poll.query_timeout;
        let what = format!("shard {}", shard.settings.name);
        let mut conn = db::acquire(&shard.pool, timeout, &what).await?;
        let read = async {
            let inventory = inventory::read(&mut conn, &shard.filter, timeout).await?;
            let plan = measure::plan(&inventory, &self.settings.references);
            let dives = maxima::read(&mut conn, &plan.dives, timeout).await?;
            Ok::<_, PollError>((plan, dives))
        }
        .await;
        let (plan, dives) = match read {
            Ok(values) => values,
            Err(e) => {
                db::discard(conn);
                return Err(e);
            }
        };
        drop(conn);
        let observed_at = Utc::now();
        let (measured, unresolved) = measure::resolve(&plan, &dives, &self.store.source_values());
        let forecasts = {
            let mut growth = self.growth.lock().unwrap_or_else(|e| e.into_inner());
            let tracker = growth.entry(shard.settings.name.clone()).or_default();
            let values = measured
                .iter()
                .map(|m| (m.id.clone(), m.headroom.current, m.headroom.max));
            tracker.round(Instant::now(), values)
        };
        let policy = &self.settings.policy;
        let reports = measured
            .into_iter()
            .map(|m| {
                let forecast = forecasts.get(&m.id).copied().unwrap_or(Forecast::NONE);
                let (schema, table, column) = (&m.id.schema, &m.id.table, &m.id.column);
                let limits = policy.limits(schema, table, column);
                let silence = policy.silence(schema, table, column, observed_at).cloned();
                ColumnReport::new(
                    &shard.settings.name,
                    m,
                    forecast,
                    limits,
                    silence,
                    observed_at,
                )
            })
            .collect();
        let unresolved = unresolved
            .into_iter()
            .map(|u| format!("{}: {}", u.id, u.reason))
            .collect();
        Ok((reports, unresolved))
    }
}
