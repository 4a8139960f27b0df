//! Which columns a shard poll reads `MAX()` from (an index dive each): a column at risk on
//! every poll, a new column on its first, and the others in turn, a balanced share of them
//! per poll, so that each is read again within `poll.reread_within` and the dives of a big
//! shard are never all sent at once. [`choose`] is the pure decision; [`Ledger`] is a
//! shard's memory of its last dives (value and moment), kept by the poller between polls.
//!
//! The turn is least recently read first: each poll takes `ceil(m / slots)` of the `m`
//! columns in rotation, where `slots = floor(reread_within / interval)` (at least 1), the
//! longest unread first (ties in a fixed order: by name), plus any whose last dive is
//! `reread_within` old or older (after failed polls or a backoff). With polls one interval
//! apart a column comes round within `slots` polls, `slots × interval ≤ reread_within`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use crate::headroom::Status;
use crate::inventory::ColumnId;
use crate::measure::{ColumnReport, Moment};
use crate::policy::Policy;

/// How often dives are spread: the settings [`choose`] works from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// `poll.interval`: the time between two polls of a shard.
    pub interval: Duration,
    /// `poll.reread_within`: every dived column is read again at least this often.
    pub reread_within: Duration,
}

impl Schedule {
    /// Polls per `reread_within` window: `floor(reread_within / interval)`, at least 1, so
    /// that a full turn of the rotation never takes longer than `reread_within`.
    pub fn slots(&self) -> usize {
        let slots = self.reread_within.as_nanos() / self.interval.as_nanos().max(1);
        usize::try_from(slots).unwrap_or(usize::MAX).max(1)
    }
}

/// One column whose `MAX()` a poll may read, as [`choose`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// The column.
    pub id: &'a ColumnId,
    /// When its `MAX()` was last read; `None` for a column never read (new).
    pub last: Option<Instant>,
    /// At warning or worse, type-mismatched, or forecast to run out soon (see [`at_risk`]):
    /// read on every poll.
    pub at_risk: bool,
}

/// The positions in `candidates` of the columns to read at `now`, in ascending order: every
/// new or at-risk column; every column last read `reread_within` ago or earlier; and, of the
/// others, the longest unread until this poll has read `ceil(m / slots)` of the `m` columns
/// in rotation (neither new nor at risk).
pub fn choose(candidates: &[Candidate<'_>], now: Instant, schedule: Schedule) -> Vec<usize> {
    let mut chosen = Vec::new();
    // (last read, position) of the columns in rotation.
    let mut rotation: Vec<(Instant, usize)> = Vec::with_capacity(candidates.len());
    for (i, c) in candidates.iter().enumerate() {
        match c.last {
            Some(last) if !c.at_risk => rotation.push((last, i)),
            _ => chosen.push(i),
        }
    }
    let quota = rotation.len().div_ceil(schedule.slots());
    let overdue = rotation
        .iter()
        .filter(|(last, _)| now.saturating_duration_since(*last) >= schedule.reread_within)
        .count();
    let take = quota.max(overdue).min(rotation.len());
    if take > 0 {
        // The `take` longest unread; ties by name, so that a turn follows a fixed order.
        let order = |a: &(Instant, usize), b: &(Instant, usize)| {
            a.0.cmp(&b.0)
                .then_with(|| candidates[a.1].id.cmp(candidates[b.1].id))
        };
        if take < rotation.len() {
            rotation.select_nth_unstable_by(take - 1, order);
        }
        chosen.extend(rotation[..take].iter().map(|(_, i)| *i));
    }
    chosen.sort_unstable();
    chosen
}

/// Whether a column is read on every poll: at warning or worse, type-mismatched, or
/// forecast to run out within twice its `critical_within`.
pub fn at_risk(report: &ColumnReport, policy: &Policy) -> bool {
    if report.status >= Status::Warning || report.type_mismatch {
        return true;
    }
    let Some(seconds) = report.seconds_to_exhaustion else {
        return false;
    };
    let limits = policy.limits(&report.id.schema, &report.id.table, &report.id.column);
    seconds <= limits.critical_within.as_secs().saturating_mul(2)
}

pub use crate::measure::Dive;

/// A shard's dives between polls: the last dive of every column it reads, and which of
/// them are at risk. A failed poll leaves it as it was.
#[derive(Debug, Default)]
pub struct Ledger {
    /// The last dive of each column in the latest plan.
    last: HashMap<ColumnId, Dive>,
    /// Columns read on every poll, from the latest reports.
    at_risk: HashSet<ColumnId>,
}

impl Ledger {
    /// The columns of `dives` (a plan's, see [`crate::measure::Plan::dives`]) to read at
    /// `now`, in plan order.
    pub fn due(&self, dives: &[ColumnId], now: Instant, schedule: Schedule) -> Vec<ColumnId> {
        let candidates: Vec<Candidate<'_>> = dives
            .iter()
            .map(|id| Candidate {
                id,
                last: self.last.get(id).map(|d| d.at.instant),
                at_risk: self.at_risk.contains(id),
            })
            .collect();
        choose(&candidates, now, schedule)
            .into_iter()
            .filter_map(|i| dives.get(i).cloned())
            .collect()
    }

    /// Takes in a poll's dives: `read` holds the values of the columns `due` that were read
    /// at `at` (a column gone since the inventory was read is missing from it, and
    /// forgotten). Columns no longer in `dives` are forgotten too.
    pub fn record(
        &mut self,
        dives: &[ColumnId],
        due: &[ColumnId],
        read: HashMap<ColumnId, Option<i128>>,
        at: Moment,
    ) {
        for id in due {
            if !read.contains_key(id) {
                self.last.remove(id);
            }
        }
        for (id, value) in read {
            self.last.insert(id, Dive { value, at });
        }
        // Some column left the plan when not every column held is in it.
        let held = dives
            .iter()
            .filter(|id| self.last.contains_key(*id))
            .count();
        if held < self.last.len() {
            let planned: HashSet<&ColumnId> = dives.iter().collect();
            self.last.retain(|id, _| planned.contains(id));
        }
    }

    /// The last dive of every column, read this poll or earlier.
    pub fn dives(&self) -> &HashMap<ColumnId, Dive> {
        &self.last
    }

    /// Sets the columns read on every poll from now on.
    pub fn set_at_risk(&mut self, at_risk: HashSet<ColumnId>) {
        self.at_risk = at_risk;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn ids(n: usize) -> Vec<ColumnId> {
        (0..n)
            .map(|i| ColumnId::new("s", &format!("t{i:05}"), "user_id"))
            .collect()
    }

    fn schedule(interval_s: u64, reread_s: u64) -> Schedule {
        Schedule {
            interval: Duration::from_secs(interval_s),
            reread_within: Duration::from_secs(reread_s),
        }
    }

    /// Runs one poll at each of `times` (from the start) over `n` columns, `risky` of them
    /// at risk from the start; returns the positions read at each poll.
    fn simulate(
        n: usize,
        risky: &HashSet<usize>,
        schedule: Schedule,
        times: &[Duration],
    ) -> Vec<Vec<usize>> {
        let ids = ids(n);
        let mut last: Vec<Option<Instant>> = vec![None; n];
        let start = Instant::now();
        let mut out = Vec::new();
        for at in times {
            let now = start + *at;
            let candidates: Vec<Candidate<'_>> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| Candidate {
                    id,
                    last: last[i],
                    at_risk: risky.contains(&i),
                })
                .collect();
            let chosen = choose(&candidates, now, schedule);
            for &i in &chosen {
                last[i] = Some(now);
            }
            out.push(chosen);
        }
        out
    }

    /// `n` polls one minute apart.
    fn minutes(n: u64) -> Vec<Duration> {
        (0..n).map(|k| MINUTE * k as u32).collect()
    }

    #[test]
    fn slots_are_the_polls_of_one_window_rounded_down_and_at_least_one() {
        assert_eq!(schedule(60, 600).slots(), 10);
        assert_eq!(schedule(7, 600).slots(), 85);
        assert_eq!(schedule(60, 30).slots(), 1);
        assert_eq!(schedule(60, 60).slots(), 1);
    }

    #[test]
    fn new_columns_are_all_read_at_their_first_poll() {
        let ids = ids(4);
        let candidates: Vec<Candidate<'_>> = ids
            .iter()
            .map(|id| Candidate {
                id,
                last: None,
                at_risk: false,
            })
            .collect();
        assert_eq!(
            choose(&candidates, Instant::now(), schedule(60, 600)),
            [0, 1, 2, 3]
        );
    }

    #[test]
    fn twenty_columns_over_ten_slots_are_read_two_a_poll_in_a_fixed_turn() {
        let polls = simulate(20, &HashSet::new(), schedule(60, 600), &minutes(22));
        assert_eq!(polls[0].len(), 20);
        // Ties (all read at the first poll) in name order, then the same turn again.
        assert_eq!(polls[1], [0, 1]);
        assert_eq!(polls[2], [2, 3]);
        assert_eq!(polls[10], [18, 19]);
        assert_eq!(polls[11], [0, 1]);
        assert_eq!(polls[21], [0, 1]);
    }

    #[test]
    fn an_at_risk_column_is_read_every_poll_and_not_counted_in_the_turn() {
        let polls = simulate(21, &HashSet::from([7]), schedule(60, 600), &minutes(12));
        for poll in &polls {
            assert!(poll.contains(&7), "{poll:?}");
        }
        assert_eq!(polls[1], [0, 1, 7]);
        assert_eq!(polls[4], [6, 7, 8]);
    }

    #[test]
    fn after_a_long_gap_every_column_older_than_the_window_is_read_at_once() {
        // A backoff: eleven minutes without a successful poll.
        let times = [0, 1, 2, 3, 14].map(|m| MINUTE * m);
        let polls = simulate(20, &HashSet::new(), schedule(60, 600), &times);
        // Polls 1 and 2 read two each (at minutes 1 and 2); poll 3 at minute 3 two more;
        // poll 4 at minute 14: every column is ten minutes old or more.
        assert_eq!(polls[3], [4, 5]);
        assert_eq!(polls[4].len(), 20);
    }

    #[test]
    fn an_interval_longer_than_the_window_reads_every_column_every_poll() {
        let polls = simulate(5, &HashSet::new(), schedule(60, 30), &minutes(4));
        for poll in polls {
            assert_eq!(poll, [0, 1, 2, 3, 4]);
        }
    }

    #[test]
    fn the_ledger_forgets_gone_and_unplanned_columns_and_keeps_the_others() {
        let columns = ids(3);
        let schedule = schedule(60, 600);
        let first = Moment {
            instant: Instant::now(),
            wall: chrono::Utc::now(),
        };
        let mut ledger = Ledger::default();
        assert_eq!(ledger.due(&columns, first.instant, schedule), columns);
        let read = HashMap::from([(columns[0].clone(), Some(5)), (columns[1].clone(), None)]);
        ledger.record(&columns, &columns, read, first);
        // Column 2 was gone when read: new again.
        assert_eq!(ledger.dives().len(), 2);
        assert_eq!(
            ledger.dives().get(&columns[0]),
            Some(&Dive {
                value: Some(5),
                at: first
            })
        );
        let later = first.instant + MINUTE;
        assert_eq!(
            ledger.due(&columns, later, schedule),
            [columns[0].clone(), columns[2].clone()]
        );
        ledger.set_at_risk(HashSet::from([columns[1].clone()]));
        assert_eq!(
            ledger.due(&columns, later, schedule),
            [columns[0].clone(), columns[1].clone(), columns[2].clone()]
        );
        // Column 0 leaves the plan.
        let rest = &columns[1..];
        ledger.record(rest, &[], HashMap::new(), first);
        assert_eq!(ledger.dives().len(), 1);
        assert!(ledger.dives().contains_key(&columns[1]));
    }

    /// A report of an `INT` column at `current`, mismatched or not, running out in
    /// `seconds` (if it grows), where `warning_within` is 15 days and `critical_within` 14.
    fn report(current: i128, mismatch: bool, seconds: Option<u64>) -> (ColumnReport, Policy) {
        use crate::growth::Forecast;
        use crate::headroom::{IntType, Width};
        let policy = crate::config::testing::settings(
            "[thresholds]\nwarning_within = \"15d\"\ncritical_within = \"14d\"\n",
        )
        .policy;
        let int = IntType::new(Width::Int, false);
        let r =
            crate::measure::fixture::column("s", ColumnId::new("s", "t", "user_id"), int, current)
                .kind(crate::measure::Kind::Reference)
                .source(Some("tickets"))
                .type_mismatch(mismatch)
                .forecast(Forecast {
                    growth_per_second: seconds.map(|_| 1.0),
                    seconds_to_exhaustion: seconds,
                    last_jump: None,
                })
                .limits(policy.limits("s", "t", "user_id"))
                .build();
        (r, policy)
    }

    #[test]
    fn at_risk_is_warning_or_worse_a_mismatch_or_running_out_within_twice_critical_within() {
        let four_weeks = 28 * 86_400;
        let cases = [
            (2_147_483, false, None, false),
            (2_147_483, false, Some(four_weeks + 1), false),
            // Past warning_within (ok), but within twice critical_within.
            (2_147_483, false, Some(four_weeks), true),
            (2_147_483, false, Some(16 * 86_400), true),
            (2_147_483, true, None, true),
            (1_600_000_000, false, None, true),
            (2_147_000_000, false, None, true),
        ];
        for (current, mismatch, seconds, expected) in cases {
            let (r, policy) = report(current, mismatch, seconds);
            assert_eq!(
                at_risk(&r, &policy),
                expected,
                "{current} {mismatch} {seconds:?}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Polls at their place in every interval, each up to a second late (the poll's
        /// own duration): every column is read within
        /// `slots` polls of its last read (so within `reread_within`), every at-risk column
        /// at every poll, and each poll after the first reads `m / slots` of the `m` others,
        /// within one.
        #[test]
        fn every_column_comes_round_within_a_window_and_polls_are_balanced(
            n in 1usize..400,
            interval_s in 5u64..120,
            windows in 1u64..12,
            extra_s in 0u64..60,
            risky in prop::collection::hash_set(0usize..400, 0..20),
            jitter in prop::collection::vec(0u64..1000, 40),
        ) {
            let schedule = schedule(interval_s, interval_s * windows + extra_s.min(interval_s - 1));
            let slots = schedule.slots();
            prop_assert_eq!(slots as u64, windows);
            let risky: HashSet<usize> = risky.into_iter().filter(|i| *i < n).collect();
            let times: Vec<Duration> = jitter
                .iter()
                .enumerate()
                .map(|(k, ms)| Duration::from_secs(interval_s * k as u64) + Duration::from_millis(*ms))
                .collect();
            let polls = simulate(n, &risky, schedule, &times);
            prop_assert_eq!(polls[0].len(), n);
            let rotating = n - risky.len();
            let (low, high) = (rotating / slots, rotating.div_ceil(slots));
            let mut last_read = vec![0usize; n];
            for (p, poll) in polls.iter().enumerate().skip(1) {
                for i in &risky {
                    prop_assert!(poll.contains(i), "at-risk {} not read at poll {}", i, p);
                }
                let turn = poll.iter().filter(|i| !risky.contains(i)).count();
                prop_assert!(
                    low <= turn && turn <= high,
                    "poll {} read {} of {} over {} slots", p, turn, rotating, slots
                );
                for &i in poll {
                    last_read[i] = p;
                }
                for (i, last) in last_read.iter().enumerate() {
                    prop_assert!(p - last < slots, "column {} unread since poll {} at {}", i, last, p);
                }
            }
        }
    }
}
