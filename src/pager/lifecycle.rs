//! One notifier's incidents, per condition (a column, a source, a blind shard), one
//! incident each:
//! - **trigger** when its severity reaches the notifier's `min_severity` (critical and
//!   exhausted page as `critical`, warning as `warning`) and it is not silenced;
//! - **trigger again, same key** when it worsens (warning → critical → exhausted);
//! - **resolve** once it has been `ok` at [`RESOLVE_AFTER`] polls in a row (hysteresis: a
//!   column hovering at a threshold does not flap; falling back from critical to warning
//!   keeps the incident open), or once its subject is gone (a dropped table).
//!
//! Evaluations come whenever any shard finishes a poll, so "polls in a row" counts the
//! polls of the condition's own shard (or reads of its source): every condition carries the
//! stamp of the observation it reflects, and an observation is counted once however often
//! it is evaluated.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::event::{Condition, Event};
use crate::policy::Severity;

/// Polls in a row a condition must be ok before its incident resolves.
pub const RESOLVE_AFTER: u32 = 2;

/// What an evaluation knows beyond its conditions: the key prefixes to hold (a shard that is
/// down, a source not read yet) and the observation stamp of each prefix (a shard's poll
/// count, a source's read count), for incidents whose subject no longer has a condition.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub held: Vec<String>,
    pub stamps: Vec<(String, u64)>,
}

impl Scope {
    /// Only held prefixes.
    pub fn held(held: Vec<String>) -> Scope {
        Scope {
            held,
            stamps: Vec::new(),
        }
    }
}

/// One notifier's incidents and their hysteresis counters.
#[derive(Debug, Default)]
pub struct Lifecycle {
    /// Open incidents: the last trigger sent for each key.
    pub incidents: BTreeMap<String, Event>,
    /// Observations in a row each open incident's condition has been ok, and the stamp of
    /// the last one counted.
    ok_streak: HashMap<String, (u32, u64)>,
    /// Evaluations so far: the stamp of a gone subject no scope accounts for.
    evaluations: u64,
}

impl Lifecycle {
    /// A lifecycle with the incidents a state file kept open.
    pub fn restored(incidents: BTreeMap<String, Event>) -> Lifecycle {
        Lifecycle {
            incidents,
            ..Lifecycle::default()
        }
    }

    /// Forgets, without a resolve, the open incidents under `keys` (a key ending in `/` is a
    /// prefix, any other a whole key): their shard belongs to another member of a split
    /// fleet now, which pages and resolves them under the same keys. Returns the keys.
    pub fn hand_over(&mut self, keys: &[String]) -> Vec<String> {
        if keys.is_empty() {
            return Vec::new();
        }
        let matches = |key: &str| {
            keys.iter().any(|k| {
                if k.ends_with('/') {
                    key.starts_with(k.as_str())
                } else {
                    key == k
                }
            })
        };
        let gone: Vec<String> = self
            .incidents
            .keys()
            .filter(|k| matches(k))
            .cloned()
            .collect();
        for key in &gone {
            self.incidents.remove(key);
            self.ok_streak.remove(key);
        }
        gone
    }

    /// Decides the events for one evaluation of every condition. Open incidents held by
    /// `scope` are left as they are even when no condition names them.
    pub fn evaluate(
        &mut self,
        conditions: Vec<Condition<'_>>,
        scope: &Scope,
        min_severity: Severity,
        now: DateTime<Utc>,
    ) -> Vec<Event> {
        self.evaluations += 1;
        let mut events = Vec::new();
        let mut seen = HashSet::new();
        for c in conditions {
            let open = self.incidents.get(&c.dedup_key);
            // Only open incidents are looked up in `seen` (below): a key is kept when it has
            // one, or gets one now.
            if open.is_some() {
                seen.insert(c.dedup_key.clone());
            }
            if c.hold {
                continue;
            }
            match c.severity {
                Some(severity) if severity >= min_severity => {
                    self.ok_streak.remove(&c.dedup_key);
                    let rises = open.is_none_or(|o| c.level > o.level || severity > o.severity);
                    if rises && !c.silenced {
                        let trigger = (c.build)(now);
                        self.incidents.insert(c.dedup_key.clone(), trigger.clone());
                        seen.insert(c.dedup_key);
                        events.push(trigger);
                    }
                }
                // Below the notifier's floor but not ok: an open incident stays open.
                Some(_) => {
                    self.ok_streak.remove(&c.dedup_key);
                }
                None => {
                    if open.is_some() {
                        self.count_ok(&c.dedup_key, c.seen, now, &mut events);
                    }
                }
            }
        }
        // Open incidents whose subject is gone (a dropped table): ok from now on. The held
        // ones are found by range (the keys are sorted), not by testing every prefix.
        let mut held: HashSet<&str> = HashSet::new();
        for prefix in &scope.held {
            held.extend(
                self.incidents
                    .range::<str, _>((
                        std::ops::Bound::Included(prefix.as_str()),
                        std::ops::Bound::Unbounded,
                    ))
                    .map(|(k, _)| k.as_str())
                    .take_while(|k| k.starts_with(prefix.as_str())),
            );
        }
        let gone: Vec<(String, u64)> = self
            .incidents
            .keys()
            .filter(|k| !seen.contains(*k) && !held.contains(k.as_str()))
            .map(|k| {
                let stamp = scope
                    .stamps
                    .iter()
                    .find(|(prefix, _)| k.starts_with(prefix.as_str()))
                    .map_or(self.evaluations, |(_, stamp)| *stamp);
                (k.clone(), stamp)
            })
            .collect();
        for (key, stamp) in gone {
            self.count_ok(&key, stamp, now, &mut events);
        }
        events
    }

    /// Counts observation `stamp` of `key` as ok (once), and resolves the incident after
    /// [`RESOLVE_AFTER`] of them in a row.
    fn count_ok(&mut self, key: &str, stamp: u64, now: DateTime<Utc>, events: &mut Vec<Event>) {
        let streak = self.ok_streak.entry(key.to_string()).or_insert((0, 0));
        if streak.0 > 0 && streak.1 == stamp {
            return;
        }
        *streak = (streak.0 + 1, stamp);
        if streak.0 >= RESOLVE_AFTER {
            self.ok_streak.remove(key);
            if let Some(open) = self.incidents.remove(key) {
                events.push(Event::resolve(&open, now));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use serde_json::json;

    use super::*;
    use crate::pager::event::Action;

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

    static STAMP: AtomicU64 = AtomicU64::new(0);

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
            // Each condition made here is a new observation.
            seen: STAMP.fetch_add(1, Ordering::Relaxed) + 1,
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
        let ev = |l: &mut Lifecycle, s| {
            l.evaluate(vec![condition("k", s, false)], &Scope::default(), w, now)
        };
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
            &Scope::default(),
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
            &Scope::default(),
            Severity::Critical,
            now,
        );
        assert!(
            l.evaluate(vec![], &Scope::default(), Severity::Critical, now)
                .is_empty()
        );
        assert_eq!(
            l.evaluate(vec![], &Scope::default(), Severity::Critical, now)
                .len(),
            1
        );
        assert!(l.incidents.is_empty());
    }

    #[test]
    fn held_conditions_and_prefixes_neither_page_nor_resolve() {
        let mut l = Lifecycle::default();
        let now = Utc::now();
        let c = Severity::Critical;
        l.evaluate(
            vec![condition("headroom/column/s1/a.b.c", Some(c), false)],
            &Scope::default(),
            c,
            now,
        );
        // The shard is down after a restart: its columns are unknown, nothing resolves.
        let held = vec!["headroom/column/s1/".to_string()];
        for _ in 0..5 {
            assert!(
                l.evaluate(vec![], &Scope::held(held.clone()), c, now)
                    .is_empty()
            );
        }
        let mut held_condition = condition("headroom/column/s1/a.b.c", None, false);
        held_condition.hold = true;
        assert!(
            l.evaluate(vec![held_condition], &Scope::default(), c, now)
                .is_empty()
        );
        assert_eq!(l.incidents.len(), 1);
    }

    #[test]
    fn critical_to_exhausted_triggers_again() {
        let mut l = Lifecycle::default();
        let now = Utc::now();
        let c = Severity::Critical;
        assert_eq!(
            l.evaluate(
                vec![leveled("k", Some(c), 2, false)],
                &Scope::default(),
                c,
                now
            )
            .len(),
            1
        );
        assert!(
            l.evaluate(
                vec![leveled("k", Some(c), 2, false)],
                &Scope::default(),
                c,
                now
            )
            .is_empty()
        );
        let again = l.evaluate(
            vec![leveled("k", Some(c), 3, false)],
            &Scope::default(),
            c,
            now,
        );
        assert_eq!(actions(&again), [(Action::Trigger, c)]);
        assert_eq!(again[0].level, 3);
    }

    #[test]
    fn evaluating_the_same_observation_again_does_not_count_towards_a_resolve() {
        let mut l = Lifecycle::default();
        let now = Utc::now();
        let c = Severity::Critical;
        let at = |severity, seen| {
            let mut condition = condition("k", severity, false);
            condition.seen = seen;
            condition
        };
        assert_eq!(
            l.evaluate(vec![at(Some(c), 1)], &Scope::default(), c, now)
                .len(),
            1
        );
        // Another shard finished twice: this shard's poll 2 is evaluated three times.
        for _ in 0..3 {
            assert!(
                l.evaluate(vec![at(None, 2)], &Scope::default(), c, now)
                    .is_empty()
            );
        }
        assert_eq!(
            actions(&l.evaluate(vec![at(None, 3)], &Scope::default(), c, now)),
            [(Action::Resolve, c)]
        );
        // A vanished subject counts its shard's polls, not evaluations.
        l.evaluate(vec![at(Some(c), 4)], &Scope::default(), c, now);
        let scope = |polls| Scope {
            held: Vec::new(),
            stamps: vec![("k".to_string(), polls)],
        };
        for _ in 0..3 {
            assert!(l.evaluate(vec![], &scope(5), c, now).is_empty());
        }
        assert_eq!(l.evaluate(vec![], &scope(6), c, now).len(), 1);
    }
}
