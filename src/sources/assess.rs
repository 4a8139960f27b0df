//! The pure step of a source's poll: one round of its servers' readings, applied to the
//! source as the store last held it, gives the source as the store takes it next. The
//! highest ID over the servers (each with its latest good reading), the widest generating
//! type, whether the servers can hand out the same ID ([`super::collision`]), the growth
//! forecast and the policy's status. No I/O, and the time is given.

use chrono::{DateTime, Utc};

use super::Reading;
use super::collision::{self, Sequence};
use crate::db::ErrorReport;
use crate::growth::Tracker;
use crate::headroom::Headroom;
use crate::measure::Moment;
use crate::policy::Policy;
use crate::state::SourceState;

/// What one server of a source said in a round, or why it could not be read.
#[derive(Debug, Clone)]
pub struct ServerRead {
    /// The server's `host:port` label.
    pub server: String,
    /// When it was read.
    pub at: DateTime<Utc>,
    pub result: Result<Reading, ErrorReport>,
}

/// `previous` with this round's `reads` applied, its value over every server recomputed,
/// and, once it has a value, its growth recorded in `growth` and its status decided.
pub fn assess(
    previous: &SourceState,
    reads: Vec<ServerRead>,
    growth: &mut Tracker<String>,
    policy: &Policy,
    at: Moment,
) -> SourceState {
    let mut source = previous.clone();
    for read in reads {
        apply(&mut source, read);
    }
    value(&mut source);
    collision_risk(&mut source);
    if let (Some(current), Some(max)) = (source.current, source.max) {
        let forecast = growth.record(at.instant, source.name.clone(), current, max);
        source.status = Some(policy.source_status(Headroom::new(current, max), &forecast));
        source.growth_per_second = forecast.growth_per_second;
        source.seconds_to_exhaustion = forecast.seconds_to_exhaustion;
        source.exhausts_at = forecast.exhausts_at(at.wall);
        source.last_jump = forecast.last_jump_at(at.wall);
        source.reads += 1;
    }
    source
}

/// One server's reading (or failure) on its state; a failed server keeps its last values.
fn apply(source: &mut SourceState, read: ServerRead) {
    let Some(srv) = source.servers.iter_mut().find(|s| s.server == read.server) else {
        return;
    };
    srv.polled = true;
    match read.result {
        Ok(reading) => {
            srv.up = true;
            srv.current = Some(reading.highest);
            srv.max = Some(reading.int_type.max());
            srv.int_type = Some(reading.int_type);
            srv.column_type = Some(reading.column_type);
            srv.observed_at = Some(read.at);
            srv.last_error = None;
            srv.last_error_class = None;
            srv.last_error_code = None;
            srv.auto_increment_increment = Some(reading.sequence.increment);
            srv.auto_increment_offset = Some(reading.sequence.offset);
            srv.last_id = reading.last_id;
        }
        Err(error) => {
            srv.up = false;
            srv.last_error = Some(error.message);
            srv.last_error_class = Some(error.class);
            srv.last_error_code = error.code;
        }
    }
}

/// The source's value over its servers: the highest ID any server has handed out, and the
/// widest generating type.
fn value(source: &mut SourceState) {
    let widest = source
        .servers
        .iter()
        .filter(|s| s.int_type.is_some())
        .max_by_key(|s| s.max);
    source.int_type = widest.and_then(|s| s.int_type);
    source.column_type = widest.and_then(|s| s.column_type.clone());
    source.max = widest.and_then(|s| s.max);
    source.current = source.servers.iter().filter_map(|s| s.current).max();
    if let (Some(current), Some(max)) = (source.current, source.max) {
        let h = Headroom::new(current, max);
        source.remaining = Some(h.remaining());
        source.used_ratio = Some(h.used_ratio());
    }
}

/// Whether the servers can hand out the same ID, over every server read so far (each with
/// its latest values).
fn collision_risk(source: &mut SourceState) {
    let counters: Vec<collision::Counter<'_>> = source
        .servers
        .iter()
        .filter_map(|s| {
            Some(collision::Counter {
                server: &s.server,
                sequence: Sequence {
                    increment: s.auto_increment_increment?,
                    offset: s.auto_increment_offset?,
                },
                highest: s.last_id.unwrap_or(0),
            })
        })
        .collect();
    let reason = collision::risk(source.servers.len(), &counters);
    source.collision_risk = reason.is_some();
    source.collision_reason = reason;
}

/// For tests: a server's reading as [`round`] takes it: server, highest ID, type, step and
/// start, last ID.
#[cfg(test)]
pub(crate) type TestRead<'a> = (
    &'a str,
    i128,
    crate::headroom::IntType,
    (u64, u64),
    Option<i128>,
);

/// For tests: one round in which `reads` of source `name` are read, assessed and stored.
#[cfg(test)]
pub(crate) fn round(store: &crate::state::Store, name: &str, reads: &[TestRead<'_>]) {
    let reads = reads
        .iter()
        .map(
            |&(server, highest, int_type, (increment, offset), last_id)| ServerRead {
                server: server.to_string(),
                at: Utc::now(),
                result: Ok(Reading {
                    highest,
                    column_type: int_type.display_name().to_ascii_lowercase(),
                    int_type,
                    last_id,
                    sequence: Sequence { increment, offset },
                }),
            },
        )
        .collect();
    let previous = store.source(name).expect("a configured source");
    let at = Moment {
        instant: tokio::time::Instant::now(),
        wall: Utc::now(),
    };
    let policy = crate::config::testing::settings("").policy;
    store.source_polled(assess(
        &previous,
        reads,
        &mut Tracker::default(),
        &policy,
        at,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headroom::{IntType, Width};
    use crate::state::Store;

    /// A store with one ticket source of two servers, `a:3306` and `b:3306`.
    fn pair() -> Store {
        Store::new(&crate::config::testing::settings(
            "[[sources]]\nname = \"tickets\"\nkind = \"ticket_server\"\n\
             servers = [\"mysql://u@a:3306/tickets\", \"mysql://u@b:3306/tickets\"]\ntable = \"Tickets64\"\n",
        ))
    }

    /// One round in which only `server` is read, assessed and stored.
    fn read(store: &Store, server: &str, current: i128, sequence: (u64, u64), last: Option<i128>) {
        let int_type = IntType::new(Width::Big, true);
        round(
            store,
            "tickets",
            &[(server, current, int_type, sequence, last)],
        );
    }

    #[test]
    fn a_fresh_pair_set_up_with_one_auto_increment_is_not_at_risk() {
        // Both tables created with AUTO_INCREMENT=1000 and empty: `current` is the same
        // estimate (1000 − 2) on both, which is no ID handed out by either.
        let store = pair();
        read(&store, "a:3306", 998, (2, 1), None);
        read(&store, "b:3306", 998, (2, 2), None);
        let snap = store.read();
        assert!(!snap.sources[0].collision_risk);
        assert_eq!(snap.sources[0].collision_reason, None);
    }

    #[test]
    fn the_risk_is_decided_over_every_server_read_and_cleared_when_fixed() {
        let store = pair();
        read(&store, "a:3306", 1001, (2, 1), Some(1001));
        assert!(!store.read().sources[0].collision_risk, "one server alone");
        read(&store, "b:3306", 1001, (2, 1), Some(1001));
        assert_eq!(
            store.read().sources[0].collision_reason.as_deref(),
            Some(
                "a:3306 and b:3306 hand out the same IDs: the same auto_increment_offset modulo their auto_increment_increment 2 (1 and 1)"
            )
        );
        // b is given offset 2 and hands out 1004.
        read(&store, "b:3306", 1004, (2, 2), Some(1004));
        let snap = store.read();
        assert!(!snap.sources[0].collision_risk);
        assert_eq!(snap.sources[0].servers[1].auto_increment_offset, Some(2));
    }
}
