//! Paging: after every shard poll the store publishes ([`Pager::spawn_evaluation`]), each
//! notifier (`[pagerduty]`, `[webhook]`) decides which incidents to open, raise or close
//! ([`lifecycle`]), queues the events in its outbox (kept in the state file,
//! [`state_file`]), and a delivery task per notifier sends them in order, with retries,
//! under the rate limit ([`delivery`]). The books' lock is held to decide, never to write a
//! file or build a document.
//!
//! The lifecycle, per condition (a column, a source, a blind shard), one incident each:
//! - **trigger** when its severity reaches the notifier's `min_severity` (critical and
//!   exhausted page as `critical`, warning as `warning`) and it is not silenced;
//! - **trigger again, same key** when the severity rises (warning → critical);
//! - **resolve** once it has been `ok` for [`RESOLVE_AFTER`] polls in a row (hysteresis: a
//!   column hovering at a threshold does not flap; falling back from critical to warning
//!   keeps the incident open), or once the column is gone (table dropped).
//!
//! A source whose servers can hand out the same ID pages on its own key
//! (`headroom/collision/<source>`), critical, resolved once the risk has been gone for
//! [`RESOLVE_AFTER`] reads.
//!
//! Dedup keys are built from names only (`headroom/column/<shard>/<schema.table.column>`,
//! the database first on PostgreSQL), so two replicas, or one after a restart, speak of
//! the same incident.
//!
//! # Layout
//! - this file: the pager, its notifiers and books, and evaluation after every poll;
//! - `conditions`: what a snapshot gives to evaluate, and what is held;
//! - [`lifecycle`]: when an incident opens, rises and resolves;
//! - [`event`]: what a page says, and its dedup key;
//! - [`delivery`]: sending, with retries, under the rate limit;
//! - `writer` and [`state_file`]: saving the books, and the file's format;
//! - `reconfigure`: a new configuration for a running pager.
//!
//! `/api/incidents` writes what [`Pager::incidents`] reads, as JSON (`crate::api`).

mod conditions;
pub mod delivery;
pub mod event;
pub mod lifecycle;
mod reconfigure;
pub mod state_file;
#[cfg(test)]
mod tests;
pub mod wraparound;
mod writer;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{NotifierSettings, Settings};
use crate::metrics::Metrics;
use crate::policy::Severity;
use crate::state::{Snapshot, Store};
use event::Event;
pub use lifecycle::{Lifecycle, RESOLVE_AFTER, Scope};
use reconfigure::owned_elsewhere;
use writer::Writer;

/// A notifier with its lifecycle and outbox.
struct Notifier {
    /// `pagerduty` or `webhook`: the state file's section and the `notifier` label.
    name: &'static str,
    /// Its settings and client, replaced whole by a reload.
    live: std::sync::RwLock<Arc<Live>>,
    /// Wakes the delivery task when the outbox gains an event.
    wake: Notify,
}

/// A notifier's settings and the client built from them.
pub struct Live {
    settings: NotifierSettings,
    /// Its own client: its own `timeout` and user agent, whatever the other notifiers use.
    client: reqwest::Client,
}

impl Live {
    fn new(settings: &NotifierSettings) -> Result<Live, StartError> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .user_agent(user_agent(settings.name))
            .build()
            .map_err(|error| StartError::Client {
                notifier: settings.name,
                error,
            })?;
        Ok(Live {
            settings: settings.clone(),
            client,
        })
    }
}

impl Notifier {
    /// The settings and client in force now.
    fn live(&self) -> Arc<Live> {
        Arc::clone(&self.live.read().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The mutable part, under one lock.
#[derive(Default)]
struct Books {
    lifecycles: Vec<Lifecycle>,
    outboxes: Vec<VecDeque<Event>>,
    /// Per notifier, the poll (its `polls` stamp) of each shard whose columns it last
    /// evaluated: an evaluation looks again only at the shards polled since, and holds the
    /// others' incidents as they are, so that the cost of one shard's poll does not grow
    /// with the fleet.
    evaluated: Vec<HashMap<String, u64>>,
    /// The number of the last change to either: the state file's writes are ordered by it.
    seq: u64,
}

/// Why the pager cannot start: `headroom run` exits 2 with it.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    State(#[from] state_file::LoadError),
    #[error("cannot build the HTTP client of [{notifier}]: {error}")]
    Client {
        notifier: &'static str,
        error: reqwest::Error,
    },
}

/// The User-Agent of a notifier's requests.
fn user_agent(notifier: &str) -> String {
    format!("headroom/{} ({notifier})", env!("CARGO_PKG_VERSION"))
}

/// Every notifier, their state file, and their delivery.
pub struct Pager {
    notifiers: Vec<Notifier>,
    books: Mutex<Books>,
    writer: Mutex<Writer>,
    /// Why the state cannot be written now (for `/readyz`); `None` when it can.
    state_problem: Mutex<Option<String>>,
    state_path: PathBuf,
    external_url: String,
    /// When this process started: a shard never read is blind from here.
    started: DateTime<Utc>,
    metrics: Arc<Metrics>,
    /// The incident keys (prefixes ending in `/`, or whole keys) of shards the
    /// configuration names but another member of a split fleet owns: their incidents are
    /// that member's, handed over without a resolve.
    elsewhere: std::sync::RwLock<Vec<String>>,
}

/// A notifier's incidents, as `/api/incidents` shows them.
#[derive(Debug, Clone)]
pub struct Incidents {
    /// `pagerduty` or `webhook`.
    pub notifier: &'static str,
    /// The least severity it pages for, in force now.
    pub min_severity: Severity,
    /// Its open incidents, each as its last trigger.
    pub open: Vec<Event>,
    /// Events in its outbox, waiting for delivery.
    pub undelivered: usize,
}

/// A notifier's incidents counted, for the fleet page's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncidentCounts {
    /// `pagerduty` or `webhook`.
    pub notifier: &'static str,
    /// Incidents open.
    pub open: usize,
    /// Events in its outbox, waiting for delivery.
    pub undelivered: usize,
}

impl Pager {
    /// Loads the state file and prepares every configured notifier; `Ok(None)` when none is.
    /// A state file that exists but cannot be read, or a client that cannot be built, is an
    /// error: starting would lose (and later overwrite) the pages it holds.
    pub fn new(settings: &Settings, metrics: Arc<Metrics>) -> Result<Option<Pager>, StartError> {
        if settings.notifiers.is_empty() {
            return Ok(None);
        }
        let loaded = state_file::load(&settings.state_path)?;
        let mut notifiers = Vec::new();
        for n in &settings.notifiers {
            notifiers.push(Notifier {
                name: n.name,
                live: std::sync::RwLock::new(Arc::new(Live::new(n)?)),
                wake: Notify::new(),
            });
        }
        let mut file = loaded.state;
        let mut books = Books {
            seq: loaded.seq,
            ..Books::default()
        };
        for n in &settings.notifiers {
            let saved = file.notifiers.remove(n.name).unwrap_or_default();
            if !saved.incidents.is_empty() || !saved.outbox.is_empty() {
                tracing::info!(
                    notifier = n.name,
                    open = saved.incidents.len(),
                    undelivered = saved.outbox.len(),
                    "Pager state restored"
                );
            }
            books.lifecycles.push(Lifecycle::restored(saved.incidents));
            books.outboxes.push(saved.outbox);
            books.evaluated.push(HashMap::new());
        }
        metrics.state_file_used();
        let dir = crate::durable::dir_of(&settings.state_path);
        let problem = crate::durable::probe_dir(dir).err().map(|e| {
            tracing::error!(dir = %dir.display(), error = %e, "The state file's directory is not writable: pages queued from now on would not survive a restart");
            format!(
                "the state directory {} is not writable: {e}",
                dir.display()
            )
        });
        let pager = Pager {
            notifiers,
            books: Mutex::new(books),
            writer: Mutex::new(Writer::new(
                &settings.state_path,
                loaded.seq,
                problem.is_some(),
            )),
            state_problem: Mutex::new(problem),
            state_path: settings.state_path.clone(),
            external_url: settings.server.external_url.clone(),
            started: Utc::now(),
            metrics,
            elsewhere: std::sync::RwLock::new(owned_elsewhere(settings)),
        };
        pager.publish_depths(&pager.lock());
        Ok(Some(pager))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish_depths(&self, books: &Books) {
        for (n, outbox) in self.notifiers.iter().zip(&books.outboxes) {
            self.metrics.pager_queue_depth(n.name, outbox.len());
        }
    }

    /// Evaluates every condition of `snapshot` and queues the events.
    pub fn evaluate(&self, snapshot: &Snapshot, now: DateTime<Utc>) {
        let outcome = self.evaluate_books(snapshot, now);
        self.commit(outcome);
    }

    /// Evaluates after every shard poll the store publishes, until `shutdown`: the pager
    /// subscribes to the polls rather than being called by the poller.
    pub fn spawn_evaluation(
        self: &Arc<Self>,
        tracker: &tokio_util::task::TaskTracker,
        store: Store,
        shutdown: CancellationToken,
    ) {
        let pager = Arc::clone(self);
        let mut polls = store.subscribe();
        tracker.spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    changed = polls.changed() => if changed.is_err() { return },
                }
                // The store's lock is held only while deciding, not while saving.
                let outcome = pager.evaluate_books(&store.read(), Utc::now());
                pager.commit(outcome);
            }
        });
    }

    /// Saves what an evaluation changed, then hands new events to delivery.
    fn commit(&self, (changed, queued): (bool, Vec<usize>)) {
        self.save_evaluated(changed);
        // Only now: an incident is on disk before its trigger can be delivered, so a crash
        // in between cannot make a restart page it again.
        for i in queued {
            self.notifiers[i].wake.notify_one();
        }
    }

    /// Updates the lifecycles and outboxes; whether anything changed, and the notifiers
    /// that have new events.
    fn evaluate_books(&self, snapshot: &Snapshot, now: DateTime<Utc>) -> (bool, Vec<usize>) {
        let mut guard = self.lock();
        // Through a plain reference, so that its fields are borrowed apart.
        let books = &mut *guard;
        let mut changed = false;
        let mut queued = Vec::new();
        let elsewhere = self
            .elsewhere
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for (i, n) in self.notifiers.iter().enumerate() {
            for key in books.lifecycles[i].hand_over(&elsewhere) {
                changed = true;
                tracing::info!(notifier = n.name, dedup_key = %key, "Incident left to the member that owns its shard now");
            }
            let live = n.live();
            let evaluated = &mut books.evaluated[i];
            let open = &books.lifecycles[i].incidents;
            let (conditions, scope) =
                self.conditions(snapshot, &live.settings, (evaluated, open), now);
            let before = books.lifecycles[i].incidents.len();
            let events =
                books.lifecycles[i].evaluate(conditions, &scope, live.settings.min_severity, now);
            changed |= !events.is_empty() || before != books.lifecycles[i].incidents.len();
            for e in &events {
                tracing::info!(notifier = n.name, action = e.action.as_str(), dedup_key = %e.dedup_key, severity = e.severity.as_str(), summary = %e.summary, "Page queued");
            }
            if !events.is_empty() {
                books.outboxes[i].extend(events);
                queued.push(i);
            }
        }
        if changed {
            books.seq += 1;
            self.publish_depths(books);
        }
        (changed, queued)
    }

    /// Every notifier's open incidents and undelivered events, for `/api/incidents`.
    pub fn incidents(&self) -> Vec<Incidents> {
        // Copied under the lock, written out after it: deliveries do not wait on JSON.
        let copied: Vec<(Vec<Event>, usize)> = {
            let books = self.lock();
            books
                .lifecycles
                .iter()
                .zip(&books.outboxes)
                .map(|(l, o)| (l.incidents.values().cloned().collect(), o.len()))
                .collect()
        };
        self.notifiers
            .iter()
            .zip(copied)
            .map(|(n, (open, undelivered))| Incidents {
                notifier: n.name,
                min_severity: n.live().settings.min_severity,
                open,
                undelivered,
            })
            .collect()
    }

    /// Every notifier's incidents and undelivered events, counted: nothing is copied, so a
    /// page view costs the same with a hundred thousand incidents open.
    pub fn incident_counts(&self) -> Vec<IncidentCounts> {
        let books = self.lock();
        self.notifiers
            .iter()
            .zip(books.lifecycles.iter().zip(&books.outboxes))
            .map(|(n, (l, o))| IncidentCounts {
                notifier: n.name,
                open: l.incidents.len(),
                undelivered: o.len(),
            })
            .collect()
    }

    /// The incident open under `dedup_key`, per notifier that has one (a column's page).
    pub fn incident(&self, dedup_key: &str) -> Vec<(&'static str, Event)> {
        let books = self.lock();
        self.notifiers
            .iter()
            .zip(&books.lifecycles)
            .filter_map(|(n, l)| Some((n.name, l.incidents.get(dedup_key)?.clone())))
            .collect()
    }

    /// Undelivered events of notifier `name`, for tests and the API.
    pub fn outbox_len(&self, name: &str) -> usize {
        let books = self.lock();
        self.notifiers
            .iter()
            .position(|n| n.name == name)
            .map_or(0, |i| books.outboxes[i].len())
    }
}
