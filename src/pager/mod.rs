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
//! Dedup keys are built from names only (`headroom/column/<shard>/<schema.table.column>`),
//! so two replicas, or one after a restart, speak of the same incident.

pub mod delivery;
pub mod event;
pub mod lifecycle;
pub mod state_file;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{NotifierSettings, Settings};
use crate::metrics::Metrics;
use crate::state::{Snapshot, Store};
use event::{Condition, Event};
pub use lifecycle::{Lifecycle, RESOLVE_AFTER, Scope};
use state_file::{FileState, Journal, NotifierFile, Taken};

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

/// The writing side of the state file, under its own lock: writes happen outside the books'
/// lock (an fsync does not hold up delivery or `/api/incidents`), one at a time, and a write
/// older than what is on disk is skipped.
struct Writer {
    journal: Journal,
    /// The last change the snapshot on disk holds.
    saved_seq: u64,
    /// A change could not be written (or the directory was not writable at start): the next
    /// write is a whole snapshot, and every evaluation tries it until it succeeds.
    dirty: bool,
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

/// Runs a blocking write: on a multi-threaded runtime, tells it this thread blocks a moment.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
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

/// The incident keys of the shards `settings` names but this member does not own.
fn owned_elsewhere(settings: &Settings) -> Vec<String> {
    let owned: std::collections::HashSet<&str> =
        settings.shards.iter().map(|s| s.name.as_str()).collect();
    settings
        .configured_shards
        .iter()
        .filter(|s| !owned.contains(s.name.as_str()))
        .flat_map(|s| {
            [
                event::column_prefix(&s.name),
                event::dedup_key(&["blind", &s.name]),
            ]
        })
        .collect()
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
            writer: Mutex::new(Writer {
                journal: Journal::new(&settings.state_path),
                saved_seq: loaded.seq,
                dirty: problem.is_some(),
            }),
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

    fn lock_writer(&self) -> std::sync::MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Why the state file cannot be written now (path and error), for `/readyz`; `None`
    /// while it can.
    pub fn state_problem(&self) -> Option<String> {
        self.state_problem
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The snapshot of everything, and the change it is at.
    fn file_state(&self, books: &Books) -> FileState {
        FileState {
            version: 0,
            seq: books.seq,
            notifiers: self
                .notifiers
                .iter()
                .zip(books.lifecycles.iter().zip(&books.outboxes))
                .map(|(n, (l, o))| {
                    (
                        n.name.to_string(),
                        NotifierFile {
                            incidents: l.incidents.clone(),
                            outbox: o.clone(),
                        },
                    )
                })
                .collect(),
        }
    }

    /// Writes a whole snapshot if the file misses a change: taken under the
    /// books' lock, written after releasing it. The caller holds the writer.
    fn save_snapshot(&self, w: &mut Writer) {
        let state = {
            let books = self.lock();
            if !w.dirty && books.seq <= w.saved_seq {
                return;
            }
            self.file_state(&books)
        };
        let result = state_file::save(&self.state_path, &state).and_then(|()| {
            // Lines in the journal are in the snapshot now.
            w.journal.clear()
        });
        if result.is_ok() {
            w.saved_seq = state.seq;
        }
        self.saved(w, result);
    }

    /// Records the outcome of a write: metrics, the readiness problem, and whether the next
    /// write must be a whole snapshot.
    fn saved(&self, w: &mut Writer, result: std::io::Result<()>) {
        let mut problem = self.state_problem.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(()) => {
                w.dirty = false;
                self.metrics
                    .state_saved(Utc::now().timestamp_millis() as f64 / 1000.0);
                if problem.take().is_some() {
                    tracing::info!(path = %self.state_path.display(), "The state file is written again");
                }
            }
            Err(e) => {
                w.dirty = true;
                self.metrics.state_save_failed();
                let why = format!(
                    "cannot write the state file {}: {e}",
                    self.state_path.display()
                );
                // Once per distinct problem at error level; the counter shows every one.
                if problem.as_deref() != Some(why.as_str()) {
                    tracing::error!(path = %self.state_path.display(), error = %e, "Cannot write the state file; undelivered pages would not survive a restart");
                } else {
                    tracing::debug!(path = %self.state_path.display(), error = %e, "Cannot write the state file, still");
                }
                *problem = Some(why);
            }
        }
    }

    /// Persists the change `taken` (an event off an outbox): one journal line, or a whole
    /// snapshot if the file misses an earlier change.
    fn persist_taken(&self, taken: &Taken) {
        blocking(|| {
            let mut w = self.lock_writer();
            if w.dirty {
                self.save_snapshot(&mut w);
            } else if taken.seq > w.saved_seq {
                let result = w.journal.append(taken);
                self.saved(&mut w, result);
            }
        });
    }

    fn publish_depths(&self, books: &Books) {
        for (n, outbox) in self.notifiers.iter().zip(&books.outboxes) {
            self.metrics.pager_queue_depth(n.name, outbox.len());
        }
    }

    /// The conditions of every source and shard in `snapshot`, and of the columns of every
    /// shard polled since `evaluated` says, and their scope: the key prefixes to hold (shards
    /// down or not polled since, sources never read) and each prefix's stamp.
    fn conditions<'a>(
        &'a self,
        snapshot: &'a Snapshot,
        notifier: &NotifierSettings,
        (evaluated, open): (&mut HashMap<String, u64>, &BTreeMap<String, Event>),
        now: DateTime<Utc>,
    ) -> (Vec<Condition<'a>>, Scope) {
        let url = self.external_url.as_str();
        let mut out = Vec::new();
        let mut scope = Scope::default();
        if evaluated.len() > snapshot.shards.len()
            || snapshot
                .shards
                .iter()
                .any(|s| !evaluated.contains_key(&s.name))
        {
            // Shards were removed or added (a reload): forget those gone, in one pass.
            let names: std::collections::HashSet<&str> =
                snapshot.shards.iter().map(|s| s.name.as_str()).collect();
            evaluated.retain(|name, _| names.contains(name.as_str()));
        }
        for s in &snapshot.shards {
            let columns = event::column_prefix(&s.name);
            scope
                .stamps
                .push((event::dedup_key(&["blind", &s.name]), s.polls));
            let polled_since = evaluated.get(&s.name) != Some(&s.polls);
            if !s.up || !polled_since {
                scope.held.push(columns.clone());
            }
            if polled_since {
                evaluated.insert(s.name.clone(), s.polls);
                // An ok column matters only to its open incident: without any on the shard,
                // only the columns that could trigger are evaluated.
                let any_open = open
                    .range::<str, _>((Bound::Included(columns.as_str()), Bound::Unbounded))
                    .next()
                    .is_some_and(|(k, _)| k.starts_with(columns.as_str()));
                out.extend(
                    s.columns
                        .iter()
                        .filter(|c| any_open || event::may_trigger(c))
                        .map(|c| event::column(c, s, url)),
                );
            }
            scope.stamps.push((columns, s.polls));
            out.push(event::blind_shard(
                s,
                notifier.blind_after,
                self.started,
                url,
                now,
            ));
        }
        for s in &snapshot.sources {
            let key = event::dedup_key(&["source", &s.name]);
            if s.current.is_none() {
                scope.held.push(key);
            } else {
                scope.stamps.push((key, s.reads));
                out.push(event::source(s, url));
            }
            let key = event::dedup_key(&["collision", &s.name]);
            if s.servers
                .iter()
                .all(|srv| srv.auto_increment_increment.is_none())
            {
                scope.held.push(key);
            } else {
                scope.stamps.push((key, s.reads));
                out.push(event::collision(s, url));
            }
        }
        (out, scope)
    }

    /// The settings and clients of a new configuration's notifiers, built before anything
    /// is swapped: a client that cannot be built rejects the configuration.
    pub fn prepare(&self, settings: &Settings) -> Result<Vec<Live>, StartError> {
        settings
            .notifiers
            .iter()
            .filter(|n| self.notifiers.iter().any(|o| o.name == n.name))
            .map(Live::new)
            .collect()
    }

    /// Swaps in what [`Pager::prepare`] built; says (as warnings) which notifiers were added
    /// or removed, which takes a restart: open incidents and their outboxes stay as they are.
    pub fn reconfigure(&self, settings: &Settings, prepared: Vec<Live>) -> Vec<String> {
        *self.elsewhere.write().unwrap_or_else(|e| e.into_inner()) = owned_elsewhere(settings);
        // New thresholds, silences or notifier settings: every shard is looked at again.
        for evaluated in &mut self.lock().evaluated {
            evaluated.clear();
        }
        let mut warnings = Vec::new();
        for n in &self.notifiers {
            if !settings.notifiers.iter().any(|s| s.name == n.name) {
                warnings.push(format!(
                    "[{}] was removed: it keeps running until a restart",
                    n.name
                ));
            }
        }
        for s in &settings.notifiers {
            if !self.notifiers.iter().any(|n| n.name == s.name) {
                warnings.push(format!(
                    "[{}] was added: it starts at the next restart",
                    s.name
                ));
            }
        }
        for live in prepared {
            if let Some(n) = self.notifiers.iter().find(|n| n.name == live.settings.name) {
                *n.live.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(live);
                // A delivery waiting out a rate limit takes the new one at its next event.
                n.wake.notify_one();
            }
        }
        warnings
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
        // Outside the books' lock; a snapshot also retries a write that failed before.
        blocking(|| {
            let mut w = self.lock_writer();
            if changed || w.dirty {
                self.save_snapshot(&mut w);
            }
        });
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
    pub fn incidents(&self) -> serde_json::Value {
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
        let notifiers: Vec<serde_json::Value> = self
            .notifiers
            .iter()
            .zip(copied)
            .map(|(n, (open, undelivered))| {
                let open: Vec<serde_json::Value> = open
                    .iter()
                    .map(|e| {
                        serde_json::json!({
                            "dedup_key": e.dedup_key,
                            "severity": e.severity,
                            "summary": e.summary,
                            "class": e.class,
                            "link": e.link,
                            "triggered_at": e.created_at,
                        })
                    })
                    .collect();
                serde_json::json!({
                    "notifier": n.name,
                    "min_severity": n.live().settings.min_severity,
                    "open": open,
                    "undelivered": undelivered,
                })
            })
            .collect();
        serde_json::json!(notifiers)
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A pager over two shards with a webhook to nowhere, its state in `dir/d/state.json`.
    fn pager_in(dir: &std::path::Path) -> (Pager, crate::state::Store, Arc<Metrics>) {
        let toml = format!(
            "[[shards]]\nname = \"s1\"\nurl = \"mysql://m@127.0.0.1:1\"\n\
             [[shards]]\nname = \"s2\"\nurl = \"mysql://m@127.0.0.1:1\"\n\
             [webhook]\nurl = \"http://127.0.0.1:9/hook\"\nblind_after = \"1s\"\n\
             [state]\npath = \"{}\"\n",
            dir.join("d").join("state.json").display()
        );
        let settings = crate::config::from_toml_str(&toml, &|_| None).unwrap();
        let metrics = Arc::new(Metrics::new());
        let pager = Pager::new(&settings, Arc::clone(&metrics))
            .unwrap()
            .unwrap();
        (pager, crate::state::Store::new(&settings), metrics)
    }

    /// Both shards unreadable: blind, one trigger each, at an hour after start.
    fn both_blind(pager: &Pager, store: &crate::state::Store) {
        let now = Utc::now();
        for s in ["s1", "s2"] {
            store.shard_failed(
                s,
                crate::db::ErrorReport {
                    message: "connecting: connection refused".into(),
                    class: "connection_refused",
                    code: None,
                },
                Duration::ZERO,
                now,
            );
        }
        pager.evaluate(&store.read(), now + chrono::Duration::hours(1));
    }

    fn sample(metrics: &Metrics, name: &str) -> Option<f64> {
        let empty = crate::state::Snapshot {
            shards: Vec::new(),
            sources: Vec::new(),
        };
        let text = metrics.render(&empty);
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .map(|v| v.parse().unwrap())
    }

    fn saved(dir: &std::path::Path) -> (serde_json::Value, String) {
        let path = dir.join("d").join("state.json");
        let snapshot = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let journal = std::fs::read_to_string(state_file::journal_path(&path)).unwrap_or_default();
        (snapshot, journal)
    }

    #[test]
    fn a_delivery_appends_one_journal_line_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (pager, store, _) = pager_in(dir.path());
        both_blind(&pager, &store);
        let first = pager.lock().outboxes[0][0].clone();
        pager.pop(0, &first);
        let (snapshot, journal) = saved(dir.path());
        assert_eq!(
            snapshot["notifiers"]["webhook"]["outbox"]
                .as_array()
                .unwrap()
                .len(),
            2,
            "the snapshot is not rewritten for a delivery"
        );
        assert_eq!(journal.lines().count(), 1);
        assert!(
            journal.contains(r#""dedup_key":"headroom/blind/s1""#),
            "{journal}"
        );
        drop(pager);

        let (pager, _, _) = pager_in(dir.path());
        let books = pager.lock();
        let keys: Vec<&str> = books.outboxes[0]
            .iter()
            .map(|e| e.dedup_key.as_str())
            .collect();
        assert_eq!(keys, ["headroom/blind/s2"]);
        assert_eq!(books.lifecycles[0].incidents.len(), 2, "both still open");
    }

    #[test]
    fn an_evaluation_that_changes_the_books_folds_the_journal_into_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let (pager, store, _) = pager_in(dir.path());
        both_blind(&pager, &store);
        let first = pager.lock().outboxes[0][0].clone();
        pager.pop(0, &first);
        // s1 is read again: after two ok polls its incident resolves, a change.
        let now = Utc::now() + chrono::Duration::hours(2);
        store.shard_succeeded("s1", Vec::new(), Vec::new(), Duration::ZERO, now);
        pager.evaluate(&store.read(), now);
        assert_eq!(saved(dir.path()).1.lines().count(), 1, "no change yet");
        store.shard_succeeded("s1", Vec::new(), Vec::new(), Duration::ZERO, now);
        pager.evaluate(&store.read(), now);
        let (snapshot, journal) = saved(dir.path());
        assert_eq!(journal, "");
        let outbox: Vec<(&str, &str)> = snapshot["notifiers"]["webhook"]["outbox"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["action"].as_str().unwrap(),
                    e["dedup_key"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            outbox,
            [
                ("trigger", "headroom/blind/s2"),
                ("resolve", "headroom/blind/s1")
            ]
        );
    }

    #[test]
    fn a_write_in_progress_holds_up_neither_deliveries_nor_readers() {
        let dir = tempfile::tempdir().unwrap();
        let (pager, store, _) = pager_in(dir.path());
        both_blind(&pager, &store);
        let pager = Arc::new(pager);
        let first = pager.lock().outboxes[0][0].clone();
        // A write is under way (the writer is held): the delivery updates the books and
        // waits for the writer only to journal it.
        let writing = pager.lock_writer();
        let delivering = {
            let pager = Arc::clone(&pager);
            std::thread::spawn(move || pager.pop(0, &first))
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while pager.outbox_len("webhook") != 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "the delivery was held up"
            );
            std::thread::yield_now();
        }
        assert_eq!(pager.incidents()[0]["undelivered"], 1);
        drop(writing);
        delivering.join().unwrap();
        assert_eq!(saved(dir.path()).1.lines().count(), 1);
    }

    #[test]
    fn a_new_event_is_handed_to_delivery_only_once_its_snapshot_is_written() {
        use futures::FutureExt;
        let dir = tempfile::tempdir().unwrap();
        let (pager, store, _) = pager_in(dir.path());
        let pager = Arc::new(pager);
        let writing = pager.lock_writer();
        let evaluating = {
            let pager = Arc::clone(&pager);
            std::thread::spawn(move || both_blind(&pager, &store))
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while pager.outbox_len("webhook") != 2 {
            assert!(std::time::Instant::now() < deadline, "nothing queued");
            std::thread::yield_now();
        }
        let wake = &pager.notifiers[0].wake;
        assert!(wake.notified().now_or_never().is_none(), "woken too early");
        drop(writing);
        evaluating.join().unwrap();
        assert!(wake.notified().now_or_never().is_some());
        assert_eq!(
            saved(dir.path()).0["notifiers"]["webhook"]["outbox"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn the_state_metrics_count_failed_writes_and_time_the_last_good_one() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = dir.path().join("d");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let (pager, store, metrics) = pager_in(dir.path());
        let errors = "headroom_state_save_errors_total";
        let last = "headroom_state_last_save_success_timestamp_seconds";
        assert_eq!(sample(&metrics, errors), Some(0.0));
        assert_eq!(sample(&metrics, last), None, "nothing written yet");
        assert_eq!(pager.state_problem(), None);

        let before = Utc::now().timestamp_millis() as f64 / 1000.0;
        both_blind(&pager, &store);
        let after = Utc::now().timestamp_millis() as f64 / 1000.0;
        let at = sample(&metrics, last).unwrap();
        assert!(before <= at && at <= after, "{before} <= {at} <= {after}");
        assert_eq!(sample(&metrics, errors), Some(0.0));

        // The directory becomes unwritable, even to root: /proc takes no new file.
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink("/proc", &link).unwrap();
        let first = pager.lock().outboxes[0][0].clone();
        pager.pop(0, &first);
        assert_eq!(sample(&metrics, errors), Some(1.0));
        let problem = pager.state_problem().unwrap();
        assert!(
            problem.starts_with(&format!(
                "cannot write the state file {}",
                link.join("state.json").display()
            )),
            "{problem}"
        );
        // Every evaluation retries the whole snapshot until one is written.
        pager.evaluate(&store.read(), Utc::now());
        assert_eq!(sample(&metrics, errors), Some(2.0));
        assert_eq!(sample(&metrics, last), Some(at));

        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        pager.evaluate(&store.read(), Utc::now());
        assert_eq!(sample(&metrics, errors), Some(2.0));
        assert!(sample(&metrics, last).unwrap() >= at);
        assert_eq!(pager.state_problem(), None);
        let (snapshot, journal) = saved(dir.path());
        assert_eq!(
            journal, "",
            "the journal line that failed is in the snapshot"
        );
        assert_eq!(
            snapshot["notifiers"]["webhook"]["outbox"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn an_unwritable_state_directory_at_start_is_a_problem_until_a_write_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("d");
        std::os::unix::fs::symlink("/proc", &link).unwrap();
        let (pager, store, metrics) = pager_in(dir.path());
        assert_eq!(
            pager.state_problem().unwrap(),
            format!(
                "the state directory {} is not writable: No such file or directory (os error 2)",
                link.display()
            )
        );
        std::fs::remove_file(&link).unwrap();
        std::fs::create_dir(&link).unwrap();
        // Nothing to page, yet the evaluation writes: the file may lag behind.
        pager.evaluate(&store.read(), Utc::now());
        assert_eq!(pager.state_problem(), None);
        assert!(link.join("state.json").exists());
        assert_eq!(
            sample(&metrics, "headroom_state_save_errors_total"),
            Some(0.0)
        );
    }

    #[test]
    fn a_reload_swaps_a_notifiers_settings_and_keeps_its_incidents() {
        let dir = tempfile::tempdir().unwrap();
        let (pager, store, _) = pager_in(dir.path());
        both_blind(&pager, &store);
        assert_eq!(pager.incidents()[0]["min_severity"], "critical");
        let toml = "[[shards]]\nname = \"s1\"\nurl = \"mysql://m@127.0.0.1:1\"\n\
             [webhook]\nurl = \"http://127.0.0.1:9/other\"\nmin_severity = \"warning\"\n\
             [pagerduty]\nrouting_key_env = \"K\"\n";
        let settings = crate::config::from_toml_str(toml, &|_| Some("k".to_string())).unwrap();
        let prepared = pager.prepare(&settings).unwrap();
        assert_eq!(prepared.len(), 1, "only the running notifier");
        let warnings = pager.reconfigure(&settings, prepared);
        assert_eq!(
            warnings,
            ["[pagerduty] was added: it starts at the next restart"]
        );
        let incidents = pager.incidents();
        assert_eq!(incidents[0]["min_severity"], "warning");
        assert_eq!(incidents[0]["open"].as_array().unwrap().len(), 2);
        let live = pager.notifiers[0].live();
        assert_eq!(live.settings.url.path(), "/other");
    }

    #[test]
    fn a_shard_added_by_a_reload_is_blind_only_blind_after_past_the_reload() {
        let dir = tempfile::tempdir().unwrap();
        let (mut pager, store, _) = pager_in(dir.path());
        pager.started = Utc::now() - chrono::Duration::hours(1);
        let toml = "[[shards]]\nname = \"s3\"\nurl = \"mysql://m@127.0.0.1:1\"\n";
        let settings = crate::config::from_toml_str(toml, &|_| None).unwrap();
        store.reconfigure(&settings);
        let now = Utc::now();
        let refused = crate::db::ErrorReport {
            message: "connecting: connection refused".into(),
            class: "connection_refused",
            code: None,
        };
        store.shard_failed("s3", refused, Duration::ZERO, now);
        pager.evaluate(&store.read(), now);
        assert_eq!(pager.outbox_len("webhook"), 0, "not blind for 1s yet");
        pager.evaluate(&store.read(), now + chrono::Duration::seconds(2));
        let books = pager.lock();
        let keys: Vec<&str> = books.outboxes[0]
            .iter()
            .map(|e| e.dedup_key.as_str())
            .collect();
        assert_eq!(keys, ["headroom/blind/s3"]);
    }

    /// Shard `shard`'s column `name` at `current` of INT (critical above 90 %), as a poll
    /// reports it, with a growth rate so that an ok ratio is a verdict.
    fn int_column(shard: &str, name: &str, current: i128) -> crate::measure::ColumnReport {
        use crate::headroom::{IntType, Width};
        let id = crate::inventory::ColumnId::new("app", name, "id");
        let int = IntType::new(Width::Int, false);
        crate::measure::fixture::column(shard, id, int, current)
            .forecast(crate::growth::Forecast {
                growth_per_second: Some(0.0),
                ..crate::growth::Forecast::NONE
            })
            .build()
    }

    #[test]
    fn ok_columns_are_skipped_only_on_shards_without_an_open_incident() {
        let dir = tempfile::tempdir().unwrap();
        let (pager, store, _) = pager_in(dir.path());
        let now = Utc::now();
        let poll = |a: i128| {
            for shard in ["s1", "s2"] {
                let columns = vec![int_column(shard, "a", a), int_column(shard, "b", 1)];
                store.shard_succeeded(shard, columns, Vec::new(), Duration::ZERO, now);
            }
            pager.evaluate(&store.read(), now);
        };
        poll(2_100_000_000);
        let triggers = |books: &Books| {
            let mut keys: Vec<String> = books.outboxes[0]
                .iter()
                .filter(|e| e.action == event::Action::Trigger)
                .map(|e| e.dedup_key.clone())
                .collect();
            keys.sort();
            keys
        };
        assert_eq!(
            triggers(&pager.lock()),
            ["headroom/column/s1/app.a.id", "headroom/column/s2/app.a.id"]
        );
        // Widened: the same columns ok, at as many polls as a resolve needs.
        for _ in 0..RESOLVE_AFTER {
            poll(1);
        }
        let books = pager.lock();
        let mut resolves: Vec<&str> = books.outboxes[0]
            .iter()
            .filter(|e| e.action == event::Action::Resolve)
            .map(|e| e.dedup_key.as_str())
            .collect();
        resolves.sort_unstable();
        assert_eq!(
            resolves,
            ["headroom/column/s1/app.a.id", "headroom/column/s2/app.a.id"]
        );
        assert!(books.lifecycles[0].incidents.is_empty());
    }

    #[test]
    fn the_open_incidents_of_a_shard_removed_by_a_reload_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let (pager, store, _) = pager_in(dir.path());
        both_blind(&pager, &store);
        let toml = "[[shards]]\nname = \"s1\"\nurl = \"mysql://m@127.0.0.1:1\"\n";
        let settings = crate::config::from_toml_str(toml, &|_| None).unwrap();
        store.reconfigure(&settings);
        let later = Utc::now() + chrono::Duration::hours(1);
        for _ in 0..RESOLVE_AFTER {
            pager.evaluate(&store.read(), later);
        }
        let books = pager.lock();
        let resolves: Vec<&str> = books.outboxes[0]
            .iter()
            .filter(|e| e.action == event::Action::Resolve)
            .map(|e| e.dedup_key.as_str())
            .collect();
        assert_eq!(resolves, ["headroom/blind/s2"]);
        assert_eq!(books.lifecycles[0].incidents.len(), 1, "s1 is still blind");
    }

    #[test]
    fn the_incidents_of_a_shard_another_member_owns_now_are_handed_over_without_a_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let (pager, store, _) = pager_in(dir.path());
        both_blind(&pager, &store);
        // s2 is still configured, but (say, N changed) another member owns it now.
        let toml = "[[shards]]\nname = \"s1\"\nurl = \"mysql://m@127.0.0.1:1\"\n\
                    [[shards]]\nname = \"s2\"\nurl = \"mysql://m@127.0.0.1:1\"\n";
        let mut settings = crate::config::from_toml_str(toml, &|_| None).unwrap();
        settings.shards.retain(|s| s.name == "s1");
        store.reconfigure(&settings);
        pager.reconfigure(&settings, Vec::new());
        let later = Utc::now() + chrono::Duration::hours(1);
        for _ in 0..RESOLVE_AFTER + 1 {
            pager.evaluate(&store.read(), later);
        }
        let books = pager.lock();
        assert!(
            books.outboxes[0]
                .iter()
                .all(|e| e.action != event::Action::Resolve),
            "the new owner resolves it, not this member"
        );
        let open: Vec<&String> = books.lifecycles[0].incidents.keys().collect();
        assert_eq!(open, ["headroom/blind/s1"]);
    }

    #[test]
    fn each_notifier_names_itself_in_its_user_agent() {
        assert_eq!(
            user_agent("pagerduty"),
            format!("headroom/{} (pagerduty)", env!("CARGO_PKG_VERSION"))
        );
    }
}
