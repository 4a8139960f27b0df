//! Paging: after every poll, each notifier (`[pagerduty]`, `[webhook]`) decides which
//! incidents to open, raise or close, queues the events in its outbox (kept in the state
//! file), and a delivery task per notifier sends them in order, with retries, under the
//! rate limit.
//!
//! The lifecycle, per condition (a column, a source, a blind shard), one incident each:
//! - **trigger** when its severity reaches the notifier's `min_severity` (critical and
//!   exhausted page as `critical`, warning as `warning`) and it is not silenced;
//! - **trigger again, same key** when the severity rises (warning → critical);
//! - **resolve** once it has been `ok` for [`RESOLVE_AFTER`] polls in a row (hysteresis: a
//!   column hovering at a threshold does not flap; falling back from critical to warning
//!   keeps the incident open), or once the column is gone (table dropped).
//!
//! Dedup keys are built from names only (`headroom/column/<shard>/<schema.table.column>`),
//! so two replicas, or one after a restart, speak of the same incident.

pub mod delivery;
pub mod event;
pub mod state_file;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{NotifierSettings, Settings};
use crate::metrics::Metrics;
use crate::policy::Severity;
use crate::state::Snapshot;
use delivery::Outcome;
use event::{Condition, Event};
use state_file::{FileState, NotifierFile};

/// Polls in a row a condition must be ok before its incident resolves.
pub const RESOLVE_AFTER: u32 = 2;

/// One notifier's incidents and their hysteresis counters.
#[derive(Debug, Default)]
pub struct Lifecycle {
    /// Open incidents: the last trigger sent for each key.
    pub incidents: BTreeMap<String, Event>,
    /// Polls in a row each open incident's condition has been ok.
    ok_streak: HashMap<String, u32>,
}

impl Lifecycle {
    /// Decides the events for one evaluation of every condition. Open incidents whose key
    /// starts with one of `held` (a shard that is down, a source not read yet) are left as
    /// they are even when no condition names them.
    pub fn evaluate(
        &mut self,
        conditions: Vec<Condition<'_>>,
        held: &[String],
        min_severity: Severity,
        now: DateTime<Utc>,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        let mut seen = HashSet::new();
        for c in conditions {
            seen.insert(c.dedup_key.clone());
            if c.hold {
                continue;
            }
            let open = self.incidents.get(&c.dedup_key);
            match c.severity {
                Some(severity) if severity >= min_severity => {
                    self.ok_streak.remove(&c.dedup_key);
                    let rises = open.is_none_or(|o| c.level > o.level || severity > o.severity);
                    if rises && !c.silenced {
                        let trigger = (c.build)(now);
                        self.incidents.insert(c.dedup_key.clone(), trigger.clone());
                        events.push(trigger);
                    }
                }
                // Below the notifier's floor but not ok: an open incident stays open.
                Some(_) => {
                    self.ok_streak.remove(&c.dedup_key);
                }
                None => {
                    if open.is_some() {
                        self.count_ok(&c.dedup_key, now, &mut events);
                    }
                }
            }
        }
        // Open incidents whose subject is gone (a dropped table): ok from now on.
        let gone: Vec<String> = self
            .incidents
            .keys()
            .filter(|k| !seen.contains(*k) && !held.iter().any(|p| k.starts_with(p.as_str())))
            .cloned()
            .collect();
        for key in gone {
            self.count_ok(&key, now, &mut events);
        }
        events
    }

    fn count_ok(&mut self, key: &str, now: DateTime<Utc>, events: &mut Vec<Event>) {
        let streak = self.ok_streak.entry(key.to_string()).or_insert(0);
        *streak += 1;
        if *streak >= RESOLVE_AFTER {
            self.ok_streak.remove(key);
            if let Some(open) = self.incidents.remove(key) {
                events.push(Event::resolve(&open, now));
            }
        }
    }
}

/// A notifier with its lifecycle and outbox.
struct Notifier {
    settings: NotifierSettings,
    /// Wakes the delivery task when the outbox gains an event.
    wake: Notify,
}

/// The mutable part, under one lock, saved together.
#[derive(Default)]
struct Books {
    lifecycles: Vec<Lifecycle>,
    outboxes: Vec<VecDeque<Event>>,
}

/// Every notifier, their state file, and their delivery.
pub struct Pager {
    notifiers: Vec<Notifier>,
    books: Mutex<Books>,
    state_path: PathBuf,
    external_url: String,
    /// When this process started: a shard never read is blind from here.
    started: DateTime<Utc>,
    metrics: Arc<Metrics>,
    client: reqwest::Client,
}

impl Pager {
    /// Loads the state file and prepares every configured notifier; `None` when none is.
    pub fn new(settings: &Settings, metrics: Arc<Metrics>) -> Option<Pager> {
        if settings.notifiers.is_empty() {
            return None;
        }
        let file = state_file::load(&settings.state_path);
        let mut books = Books::default();
        for n in &settings.notifiers {
            let saved = file.notifiers.get(n.name).cloned().unwrap_or_default();
            if !saved.incidents.is_empty() || !saved.outbox.is_empty() {
                tracing::info!(
                    notifier = n.name,
                    open = saved.incidents.len(),
                    undelivered = saved.outbox.len(),
                    "Pager state restored"
                );
            }
            books.lifecycles.push(Lifecycle {
                incidents: saved.incidents,
                ok_streak: HashMap::new(),
            });
            books.outboxes.push(saved.outbox);
        }
        let timeout = settings
            .notifiers
            .iter()
            .map(|n| n.timeout)
            .min()
            .unwrap_or(Duration::from_secs(10));
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("headroom/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        let pager = Pager {
            notifiers: settings
                .notifiers
                .iter()
                .map(|n| Notifier {
                    settings: n.clone(),
                    wake: Notify::new(),
                })
                .collect(),
            books: Mutex::new(books),
            state_path: settings.state_path.clone(),
            external_url: settings.server.external_url.clone(),
            started: Utc::now(),
            metrics,
            client,
        };
        pager.publish_depths(&pager.lock());
        Some(pager)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn save(&self, books: &Books) {
        let state = FileState {
            version: 0,
            notifiers: self
                .notifiers
                .iter()
                .zip(books.lifecycles.iter().zip(&books.outboxes))
                .map(|(n, (l, o))| {
                    (
                        n.settings.name.to_string(),
                        NotifierFile {
                            incidents: l.incidents.clone(),
                            outbox: o.clone(),
                        },
                    )
                })
                .collect(),
        };
        // A write with fsync: tell a multi-threaded runtime this thread blocks for a moment.
        let save = || state_file::save(&self.state_path, &state);
        let result = match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(save)
            }
            _ => save(),
        };
        if let Err(e) = result {
            tracing::error!(path = %self.state_path.display(), error = %e, "Cannot write the state file; undelivered pages would not survive a restart");
        }
    }

    fn publish_depths(&self, books: &Books) {
        for (n, outbox) in self.notifiers.iter().zip(&books.outboxes) {
            self.metrics
                .pager_queue_depth(n.settings.name, outbox.len());
        }
    }

    /// The conditions of every column, source and shard in `snapshot`, and the key prefixes
    /// to hold (shards down, sources never read).
    fn conditions<'a>(
        &'a self,
        snapshot: &'a Snapshot,
        notifier: &NotifierSettings,
        now: DateTime<Utc>,
    ) -> (Vec<Condition<'a>>, Vec<String>) {
        let url = self.external_url.as_str();
        let mut out = Vec::new();
        let mut held = Vec::new();
        for s in &snapshot.shards {
            if !s.up {
                held.push(format!("headroom/column/{}/", s.name));
            }
            out.extend(s.columns.iter().map(|c| event::column(c, s.up, url)));
            out.push(event::blind_shard(
                s,
                notifier.blind_after,
                self.started,
                url,
                now,
            ));
        }
        for s in &snapshot.sources {
            if s.current.is_none() {
                held.push(event::dedup_key(&["source", &s.name]));
            } else {
                out.push(event::source(s, url));
            }
        }
        (out, held)
    }

    /// Evaluates every condition after a poll and queues the events.
    pub fn evaluate(&self, snapshot: &Snapshot, now: DateTime<Utc>) {
        let mut books = self.lock();
        let mut changed = false;
        for (i, n) in self.notifiers.iter().enumerate() {
            let (conditions, held) = self.conditions(snapshot, &n.settings, now);
            let before = books.lifecycles[i].incidents.len();
            let events =
                books.lifecycles[i].evaluate(conditions, &held, n.settings.min_severity, now);
            changed |= !events.is_empty() || before != books.lifecycles[i].incidents.len();
            for e in &events {
                tracing::info!(notifier = n.settings.name, action = e.action.as_str(), dedup_key = %e.dedup_key, severity = e.severity.as_str(), summary = %e.summary, "Page queued");
            }
            if !events.is_empty() {
                books.outboxes[i].extend(events);
                n.wake.notify_one();
            }
        }
        if changed {
            self.save(&books);
            self.publish_depths(&books);
        }
    }

    /// Every notifier's open incidents and undelivered events, for `/api/incidents`.
    pub fn incidents(&self) -> serde_json::Value {
        let books = self.lock();
        let notifiers: Vec<serde_json::Value> = self
            .notifiers
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let open: Vec<serde_json::Value> = books.lifecycles[i]
                    .incidents
                    .values()
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
                    "notifier": n.settings.name,
                    "min_severity": n.settings.min_severity,
                    "open": open,
                    "undelivered": books.outboxes[i].len(),
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
            .position(|n| n.settings.name == name)
            .map_or(0, |i| books.outboxes[i].len())
    }

    /// Delivers every notifier's outbox until `shutdown`; undelivered events stay in the
    /// state file for the next start.
    pub fn spawn_delivery(
        self: &Arc<Self>,
        tracker: &tokio_util::task::TaskTracker,
        shutdown: CancellationToken,
    ) {
        for i in 0..self.notifiers.len() {
            let pager = Arc::clone(self);
            let token = shutdown.clone();
            tracker.spawn(async move { pager.deliver(i, token).await });
        }
    }

    async fn deliver(&self, i: usize, shutdown: CancellationToken) {
        let n = &self.notifiers[i];
        let name = n.settings.name;
        let spacing = Duration::from_secs(60) / n.settings.max_events_per_minute.max(1);
        let mut last_sent: Option<tokio::time::Instant> = None;
        let mut attempt: u32 = 0;
        loop {
            let next = self.lock().outboxes[i].front().cloned();
            let Some(event) = next else {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = n.wake.notified() => continue,
                }
            };
            // Stay under the receiver's rate limit.
            if let Some(at) = last_sent {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep_until(at + spacing) => {}
                }
            }
            last_sent = Some(tokio::time::Instant::now());
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => return,
                outcome = delivery::send(&self.client, &n.settings, &event, &self.external_url) => outcome,
            };
            let action = event.action.as_str();
            match outcome {
                Outcome::Delivered => {
                    attempt = 0;
                    self.metrics.pager_event(name, action, "delivered");
                    tracing::info!(notifier = name, action, dedup_key = %event.dedup_key, "Page delivered");
                    self.pop(i, &event);
                }
                Outcome::Rejected(why) => {
                    attempt = 0;
                    self.metrics.pager_event(name, action, "rejected");
                    tracing::error!(notifier = name, action, dedup_key = %event.dedup_key, response = %why, "Page rejected by the receiver, dropped");
                    self.pop(i, &event);
                }
                Outcome::Retry(why, retry_after) => {
                    attempt += 1;
                    self.metrics.pager_event(name, action, "retry");
                    let seed =
                        Utc::now().timestamp_nanos_opt().unwrap_or(0) as u64 ^ (i as u64) << 32;
                    let backoff = delivery::backoff(
                        attempt,
                        n.settings.retry_initial,
                        n.settings.retry_max,
                        seed,
                    );
                    // A receiver's Retry-After is honoured, up to retry_max.
                    let wait =
                        retry_after.map_or(backoff, |r| r.min(n.settings.retry_max).max(backoff));
                    tracing::warn!(notifier = name, action, dedup_key = %event.dedup_key, attempt, wait_ms = wait.as_millis() as u64, error = %why, "Page not delivered, retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    fn pop(&self, i: usize, event: &Event) {
        let mut books = self.lock();
        if books.outboxes[i].front() == Some(event) {
            books.outboxes[i].pop_front();
        }
        self.save(&books);
        self.publish_depths(&books);
    }
}

#[cfg(test)]
mod tests {
    use super::event::Action;
    use super::*;
    use serde_json::json;

    fn event(key: &str, severity: Severity, level: u8) -> Event {
        Event {
            action: Action::Trigger,
            dedup_key: key.to_string(),
            severity,
            summary: key.to_string(),
            source: "s".into(),
            component: "c".into(),
            group: "g".into(),
            class: "id_column".into(),
            custom_details: json!({}),
            link: None,
            created_at: Utc::now(),
            level,
        }
    }

    fn condition(key: &str, severity: Option<Severity>, silenced: bool) -> Condition<'static> {
        let level = match severity {
            None => 0,
            Some(Severity::Warning) => 1,
            Some(Severity::Critical) => 2,
        };
        leveled(key, severity, level, silenced)
    }

    fn leveled(
        key: &str,
        severity: Option<Severity>,
        level: u8,
        silenced: bool,
    ) -> Condition<'static> {
        let key = key.to_string();
        Condition {
            dedup_key: key.clone(),
            severity,
            level,
            silenced,
            hold: false,
            build: Box::new(move |_| event(&key, severity.unwrap_or(Severity::Warning), level)),
        }
    }

    fn actions(events: &[Event]) -> Vec<(Action, Severity)> {
        events.iter().map(|e| (e.action, e.severity)).collect()
    }

    #[test]
    fn one_trigger_per_incident_a_retrigger_on_rise_and_a_resolve_after_two_ok_polls() {
        let mut l = Lifecycle::default();
        let now = Utc::now();
        let w = Severity::Warning;
        let c = Severity::Critical;
        let ev = |l: &mut Lifecycle, s| l.evaluate(vec![condition("k", s, false)], &[], w, now);
        assert_eq!(actions(&ev(&mut l, Some(w))), [(Action::Trigger, w)]);
        assert!(ev(&mut l, Some(w)).is_empty());
        assert_eq!(actions(&ev(&mut l, Some(c))), [(Action::Trigger, c)]);
        assert!(ev(&mut l, Some(c)).is_empty());
        // Falling back to warning keeps it open; one ok poll is not enough.
        assert!(ev(&mut l, Some(w)).is_empty());
        assert!(ev(&mut l, None).is_empty());
        assert!(ev(&mut l, Some(w)).is_empty(), "the streak restarts");
        assert!(ev(&mut l, None).is_empty());
        assert_eq!(actions(&ev(&mut l, None)), [(Action::Resolve, c)]);
        assert!(ev(&mut l, None).is_empty());
    }

    #[test]
    fn below_the_floor_and_silenced_conditions_do_not_page() {
        let mut l = Lifecycle::default();
        let now = Utc::now();
        let events = l.evaluate(
            vec![
                condition("warning-only", Some(Severity::Warning), false),
                condition("silenced", Some(Severity::Critical), true),
            ],
            &[],
            Severity::Critical,
            now,
        );
        assert!(events.is_empty());
        assert!(l.incidents.is_empty());
    }

    #[test]
    fn an_incident_whose_subject_vanished_resolves() {
        let mut l = Lifecycle::default();
        let now = Utc::now();
        l.evaluate(
            vec![condition("k", Some(Severity::Critical), false)],
            &[],
            Severity::Critical,
            now,
        );
        assert!(l.evaluate(vec![], &[], Severity::Critical, now).is_empty());
        assert_eq!(l.evaluate(vec![], &[], Severity::Critical, now).len(), 1);
        assert!(l.incidents.is_empty());
    }

    #[test]
    fn held_conditions_and_prefixes_neither_page_nor_resolve() {
        let mut l = Lifecycle::default();
        let now = Utc::now();
        let c = Severity::Critical;
        l.evaluate(
            vec![condition("headroom/column/s1/a.b.c", Some(c), false)],
            &[],
            c,
            now,
        );
        // The shard is down after a restart: its columns are unknown, nothing resolves.
        let held = vec!["headroom/column/s1/".to_string()];
        for _ in 0..5 {
            assert!(l.evaluate(vec![], &held, c, now).is_empty());
        }
        let mut held_condition = condition("headroom/column/s1/a.b.c", None, false);
        held_condition.hold = true;
        assert!(l.evaluate(vec![held_condition], &[], c, now).is_empty());
        assert_eq!(l.incidents.len(), 1);
    }

    #[test]
    fn critical_to_exhausted_triggers_again() {
        let mut l = Lifecycle::default();
        let now = Utc::now();
        let c = Severity::Critical;
        assert_eq!(
            l.evaluate(vec![leveled("k", Some(c), 2, false)], &[], c, now)
                .len(),
            1
        );
        assert!(
            l.evaluate(vec![leveled("k", Some(c), 2, false)], &[], c, now)
                .is_empty()
        );
        let again = l.evaluate(vec![leveled("k", Some(c), 3, false)], &[], c, now);
        assert_eq!(actions(&again), [(Action::Trigger, c)]);
        assert_eq!(again[0].level, 3);
    }
}
