//! The report step, from a shard's plan and the values read to its [`ColumnReport`]s
//! (resolution, growth, policy), and the report itself: a measured column tied to its
//! shard, its forecast and its policy, with what is derived from them.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::resolve::{DiveValue, Unresolved, resolve_with};
use super::{Dive, Kind, LimitedBy, Measured, Plan, SourceValue};
use crate::growth::{Forecast, Jump, Tracker};
use crate::headroom::{Headroom, IntType, Status};
use crate::inventory::ColumnId;
use crate::inventory::column_type::ColumnType;
use crate::policy::{Limits, Policy, Silence};

/// When a poll's values were read: the monotonic instant (growth histories) and the wall
/// clock (`observed_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    pub instant: tokio::time::Instant,
    pub wall: DateTime<Utc>,
}

/// What one successful poll of a shard found, as the store takes it in one call.
#[derive(Debug, Clone, Default)]
pub struct ShardResult {
    pub columns: Vec<ColumnReport>,
    /// Columns that could not be measured: `schema.table.column: reason`.
    pub unresolved: Vec<String>,
    /// Columns with more than one equally good guessed parent.
    pub ambiguous: Vec<crate::inference::Ambiguous>,
    /// The server's mode as read (`@@GLOBAL.sql_mode`).
    pub mode: Option<String>,
    /// Whether the shard refuses out-of-range values.
    pub strict: bool,
    /// Each database's wraparound (PostgreSQL), judged by the poller; `None` on MySQL.
    pub databases: Option<Vec<crate::wraparound::DatabaseState>>,
}

/// The one pure step from what a shard poll read to what the store takes: resolves every
/// column of the `prepared` plan with each column's last dive (`dives`, see
/// [`crate::dives::Ledger`]; a dive read at an earlier poll keeps that moment as the
/// column's `observed_at` and adds no growth sample, since a repeated value would bend the
/// forecast flat), records each in the shard's growth histories (`growth`; columns no longer
/// measured leave it), applies the policy (limits, silences) and the shard's strict mode,
/// and carries the ambiguous guesses and the mode along. No I/O, and the time is given:
/// the daemon and the scale bench call exactly this.
pub fn report(
    shard: &str,
    prepared: &super::Prepared,
    dives: &HashMap<ColumnId, Dive>,
    sources: &HashMap<String, SourceValue>,
    growth: &mut Tracker<ColumnId>,
    policy: &Policy,
    at: Moment,
) -> ShardResult {
    let (mut columns, unresolved) =
        report_dives(shard, &prepared.plan, dives, sources, growth, policy, at);
    for column in &mut columns {
        column.judge_strictness(Some(prepared.strict));
    }
    ShardResult {
        columns,
        unresolved: prepared
            .unread
            .iter()
            .cloned()
            .chain(
                unresolved
                    .into_iter()
                    .map(|u| format!("{}: {}", u.id, u.reason)),
            )
            .collect(),
        ambiguous: prepared.ambiguous.clone(),
        mode: prepared.mode.clone(),
        strict: prepared.strict,
        databases: None,
    }
}

/// The columns of [`report`], before strict mode, with the columns not measured.
pub(super) fn report_dives(
    shard: &str,
    plan: &Plan,
    dives: &HashMap<ColumnId, Dive>,
    sources: &HashMap<String, SourceValue>,
    growth: &mut Tracker<ColumnId>,
    policy: &Policy,
    at: Moment,
) -> (Vec<ColumnReport>, Vec<Unresolved>) {
    let lookup = |id: &ColumnId| {
        dives.get(id).map(|d| DiveValue {
            max: d.value,
            held: (d.at != at).then_some(d.at),
        })
    };
    report_with(shard, plan, &lookup, sources, growth, policy, at)
}

fn report_with(
    shard: &str,
    plan: &Plan,
    dive: &dyn Fn(&ColumnId) -> Option<DiveValue>,
    sources: &HashMap<String, SourceValue>,
    growth: &mut Tracker<ColumnId>,
    policy: &Policy,
    at: Moment,
) -> (Vec<ColumnReport>, Vec<Unresolved>) {
    let (measured, unresolved) = resolve_with(plan, dive, sources);
    let shard: Arc<str> = shard.into();
    let values = measured.iter().map(|(m, held)| {
        let read_at = held.map_or(at.instant, |h| h.instant);
        (m.id.clone(), m.headroom.current, m.headroom.max, read_at)
    });
    let forecasts = growth.round_read(at.instant, values);
    let reports = measured
        .into_iter()
        .zip(forecasts)
        .map(|((mut m, held), (id, forecast))| {
            // The name as the tracker holds it: one copy for as long as the column lives.
            m.id = id;
            let (schema, table, column) = (&m.id.schema, &m.id.table, &m.id.column);
            let limits = policy.limits(schema, table, column);
            let silence = policy.silence(schema, table, column, at.wall).cloned();
            let observed_at = held.map_or(at.wall, |h| h.wall);
            ColumnReport::new(
                Arc::clone(&shard),
                m,
                forecast,
                limits,
                silence,
                observed_at,
            )
        })
        .collect();
    (reports, unresolved)
}

/// What a path segment keeps unencoded: letters, digits and `-._~`.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `/api/columns/{shard}/{schema}/{table}/{column}`, each name percent-encoded: the column
/// with its plan.
pub fn plan_path(shard: &str, schema: &str, table: &str, column: &str) -> String {
    format!("/api{}", page_path(shard, schema, table, column))
}

/// `/columns/{shard}/{schema}/{table}/{column}`, each name percent-encoded: the column's
/// page.
pub fn page_path(shard: &str, schema: &str, table: &str, column: &str) -> String {
    let seg = |s: &str| percent_encoding::utf8_percent_encode(s, SEGMENT).to_string();
    format!(
        "/columns/{}/{}/{}/{}",
        seg(shard),
        seg(schema),
        seg(table),
        seg(column)
    )
}

/// `path` with the column's database (PostgreSQL) as its `?database=` query, percent-encoded;
/// `path` alone for a MySQL column.
pub fn in_database(path: String, database: Option<&str>) -> String {
    match database {
        Some(database) => format!(
            "{path}?database={}",
            percent_encoding::utf8_percent_encode(database, SEGMENT)
        ),
        None => path,
    }
}

/// A measured column as the API, the metrics, `check` and the pager see it.
#[derive(Debug, Clone)]
pub struct ColumnReport {
    /// Shared by every column of the shard's poll.
    pub shard: Arc<str>,
    /// `schema`, `table` and `column`, shared with the growth tracker (and so held once).
    pub id: ColumnId,
    /// As information_schema writes it, e.g. `int(10) unsigned`.
    pub column_type: ColumnType,
    /// The same, parsed (for people: `INT UNSIGNED`); not in the JSON.
    pub int_type: IntType,
    pub kind: Kind,
    pub source: Option<Box<str>>,
    /// For `inferred`: which rule named the parent (e.g. `rails: user_id -> users.id`);
    /// `null` for other kinds.
    pub evidence: Option<Box<str>>,
    /// Exact, up to BIGINT UNSIGNED max and beyond.
    pub current: i128,
    pub max: u64,
    pub used_ratio: f64,
    /// The worse of the ratio and time thresholds (see [`crate::policy`]).
    pub status: Status,
    /// The status by the time thresholds alone (`ok`, `warning` or `critical`): tells the
    /// alert rules whether `status` comes from the growth rate; not in the JSON.
    pub time_status: Status,
    pub type_mismatch: bool,
    /// The largest value its source's or parent's type holds, when known (`headroom lint`
    /// names it; [`ColumnReport::feeder_max`]); not in the JSON. Never 0, so held in 8 bytes.
    pub feeder: Option<std::num::NonZeroU64>,
    pub observed_at: DateTime<Utc>,
    /// IDs per second over the column's history; `null` until it spans two polls.
    pub growth_per_second: Option<f64>,
    /// Seconds until `current` passes `max` at that rate; `null` while it does not grow.
    pub seconds_to_exhaustion: Option<u64>,
    /// The silence in force: measured and shown, but not paged. Boxed: rare, and large.
    pub silenced: Option<Box<Silence>>,
    /// The latest jump (e.g. `ALTER TABLE … AUTO_INCREMENT`) kept out of the growth rate,
    /// within the last week; `null` when none. Boxed: rare.
    pub last_jump: Option<Box<Jump>>,
    /// Exhausted because it sits at its exact type maximum on a shard without strict mode:
    /// larger values were probably clamped to it ([`crate::policy::clamped`]).
    pub clamped: bool,
    /// For `sequence`: which limit binds, the column type's or the sequence's; in the JSON
    /// of sequence-fed columns only.
    pub limited_by: Option<LimitedBy>,
    /// For `sequence`: its sequence starts over when it runs out (`CYCLE`) and will hand out
    /// IDs already used; in the JSON of sequence-fed columns only.
    pub cycle: bool,
}

impl ColumnReport {
    /// Ties a measured column to its shard and the moment, with its forecast, limits and
    /// silence.
    pub fn new(
        shard: Arc<str>,
        measured: Measured,
        forecast: Forecast,
        limits: Limits,
        silenced: Option<Silence>,
        observed_at: DateTime<Utc>,
    ) -> ColumnReport {
        let h = measured.headroom;
        ColumnReport {
            shard,
            id: measured.id,
            column_type: measured.column_type,
            int_type: measured.int_type,
            kind: measured.kind,
            evidence: measured.evidence.map(String::into_boxed_str),
            source: measured.source.map(String::into_boxed_str),
            current: h.current,
            max: h.max,
            used_ratio: h.used_ratio(),
            status: limits.status(h, forecast.seconds_to_exhaustion),
            time_status: limits.time_status(forecast.seconds_to_exhaustion),
            type_mismatch: measured.type_mismatch,
            feeder: measured.feeder_max.and_then(std::num::NonZeroU64::new),
            observed_at,
            growth_per_second: forecast.growth_per_second,
            seconds_to_exhaustion: forecast.seconds_to_exhaustion,
            silenced: silenced.map(Box::new),
            last_jump: forecast.last_jump_at(observed_at).map(Box::new),
            clamped: false,
            limited_by: measured.limited_by,
            cycle: measured.cycle,
        }
    }

    /// Applies the shard's strict mode: a column at its exact maximum on a shard without it
    /// is exhausted, with the reason ([`crate::policy::clamped`]).
    pub fn judge_strictness(&mut self, strict_mode: Option<bool>) {
        if crate::policy::clamped(strict_mode, Headroom::new(self.current, self.max)) {
            self.status = Status::Exhausted;
            self.clamped = true;
        }
    }

    /// For `inferred`: the guessed parent, `schema.table.column` (held as its `source`);
    /// `None` for other kinds.
    pub fn parent(&self) -> Option<&str> {
        match self.kind {
            Kind::Inferred => self.source.as_deref(),
            _ => None,
        }
    }

    /// The largest value its source's or parent's type holds, when known.
    pub fn feeder_max(&self) -> Option<u64> {
        self.feeder.map(std::num::NonZeroU64::get)
    }

    /// `max - current`: negative once the column has passed its maximum.
    pub fn remaining(&self) -> i128 {
        Headroom::new(self.current, self.max).remaining()
    }

    /// `observed_at` plus `seconds_to_exhaustion`.
    pub fn exhausts_at(&self) -> Option<DateTime<Utc>> {
        crate::growth::exhausts_at(self.observed_at, self.seconds_to_exhaustion)
    }

    /// Why the status is what it is, when the numbers alone do not say it (a clamped
    /// column); `None` otherwise.
    pub fn reason(&self) -> Option<&'static str> {
        self.clamped.then_some(crate::policy::CLAMPED_REASON)
    }

    /// This column with its widening plan (`/api/columns/{shard}/{schema}/{table}/{column}`,
    /// names percent-encoded, and `?database=` for a PostgreSQL column), relative to the
    /// API's address.
    pub fn plan_url(&self) -> String {
        let path = plan_path(
            &self.shard,
            &self.id.schema,
            &self.id.table,
            &self.id.column,
        );
        in_database(path, self.id.database())
    }

    /// This column's page (`/columns/{shard}/{schema}/{table}/{column}`, names
    /// percent-encoded), relative to the daemon's address.
    pub fn page_url(&self) -> String {
        let path = page_path(
            &self.shard,
            &self.id.schema,
            &self.id.table,
            &self.id.column,
        );
        in_database(path, self.id.database())
    }

    /// `schema.table.column` (`database.schema.table.column` on PostgreSQL).
    pub fn name(&self) -> String {
        self.id.to_string()
    }
}
