//! From what a shard holds to what headroom reports: decides which integer columns are
//! measured and how (auto-increment, reference to a source, foreign key), which columns to
//! read MAX from, and resolves every column's `current`, following foreign-key chains.
//! Pure: the poller does the reading and passes the values in.
//!
//! A column is measured as the first that applies:
//! 1. `auto_increment`: it is its table's AUTO_INCREMENT column; current = AUTO_INCREMENT.
//! 2. `foreign_key`: it is the child of a declared foreign key; current = the parent's
//!    current (the parent measured by these same rules), or MAX(parent) by index dive when
//!    the parent is not measured itself. A declared key is the server's own word on where
//!    the values come from, so it outranks a name glob.
//! 3. `reference`: a `[[references]]` rule matches it; current = the source's current, or
//!    MAX(column) if larger, read only where the column leads a B-tree index.
//! 4. `inferred`: [`crate::inference`] guessed its parent from names; measured as a foreign
//!    key is, with the rule that matched as `evidence`.
//!
//! Other integer columns (counts, prices, flags) are not ID columns and are left out.

#[doc(hidden)]
pub mod fixture;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::ReferenceRule;
use crate::growth::{Forecast, Jump, Tracker};
use crate::headroom::{Headroom, IntType, Status};
use crate::inference::Inferred;
use crate::inventory::column_type::{ColumnType, column_type};
use crate::inventory::{ColumnId, IntColumn, Inventory};
use crate::policy::{Limits, Policy, Silence};

/// How a column's current value is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    AutoIncrement,
    Reference,
    ForeignKey,
    /// An undeclared reference guessed from names ([`crate::inference`]).
    Inferred,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::AutoIncrement,
        Kind::Reference,
        Kind::ForeignKey,
        Kind::Inferred,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::AutoIncrement => "auto_increment",
            Kind::Reference => "reference",
            Kind::ForeignKey => "foreign_key",
            Kind::Inferred => "inferred",
        }
    }
}

impl std::str::FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Kind, String> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!("unknown kind {s:?}: expected auto_increment, reference, foreign_key or inferred")
            })
    }
}

/// A source's latest known value, as the shards' columns need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceValue {
    /// The highest ID handed out over all servers.
    pub current: i128,
    /// The maximum of the generating column's type.
    pub max: u64,
}

#[derive(Debug, Clone)]
enum Derivation {
    Auto(i128),
    Reference {
        source: String,
    },
    ForeignKey {
        parent: ColumnId,
    },
    /// A foreign key guessed from names, with the rule that matched.
    Inferred {
        parent: ColumnId,
        evidence: String,
    },
}

impl Derivation {
    /// The parent column of a declared or inferred foreign key.
    fn parent(&self) -> Option<&ColumnId> {
        match self {
            Derivation::ForeignKey { parent } | Derivation::Inferred { parent, .. } => Some(parent),
            _ => None,
        }
    }
}

/// Which columns are measured and which MAX values must be read for them.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    entries: Vec<(IntColumn, Derivation)>,
    /// Columns whose `MAX()` the poller reads; each leads a B-tree index.
    pub dives: Vec<ColumnId>,
    /// Integer types of every inventoried column, for parents that are not measured.
    types: HashMap<ColumnId, u64>,
}

impl Plan {
    /// How many columns will be measured.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Decides how each column is measured, with no inferred references.
pub fn plan(inventory: &Inventory, rules: &[ReferenceRule]) -> Plan {
    plan_with(inventory, rules, &HashMap::new())
}

/// Decides how each column is measured; `inferred` (from [`crate::inference::infer`]) comes
/// after declared keys and `[[references]]` rules.
pub fn plan_with(
    inventory: &Inventory,
    rules: &[ReferenceRule],
    inferred: &HashMap<ColumnId, Inferred>,
) -> Plan {
    let parents: HashMap<&ColumnId, &ColumnId> = inventory
        .foreign_keys
        .iter()
        .map(|fk| (&fk.child, &fk.parent))
        .collect();
    let mut entries = Vec::new();
    for col in &inventory.columns {
        let id = &col.id;
        let derivation = if let Some(next) = col.auto_increment {
            Derivation::Auto(next)
        } else if let Some(parent) = parents.get(id) {
            Derivation::ForeignKey {
                parent: (*parent).clone(),
            }
        } else if let Some(rule) = rules
            .iter()
            .find(|r| r.matches(&id.schema, &id.table, &id.column))
        {
            Derivation::Reference {
                source: rule.source.clone(),
            }
        } else if let Some(guess) = inferred.get(id) {
            Derivation::Inferred {
                parent: guess.parent.clone(),
                evidence: guess.evidence.clone(),
            }
        } else {
            continue;
        };
        entries.push((col.clone(), derivation));
    }

    let measured: HashSet<&ColumnId> = entries.iter().map(|(c, _)| &c.id).collect();
    let mut dives = Vec::new();
    let mut seen = HashSet::new();
    for (col, derivation) in &entries {
        let dive = match (derivation, derivation.parent()) {
            (Derivation::Auto(_), _) => None,
            (_, Some(parent)) if measured.contains(parent) => None,
            (_, Some(parent)) if inventory.leading.contains(parent) => Some(parent),
            _ => Some(&col.id),
        };
        if let Some(id) = dive
            && inventory.leading.contains(id)
            && seen.insert(id.clone())
        {
            dives.push(id.clone());
        }
    }
    let types = inventory
        .columns
        .iter()
        .map(|c| (c.id.clone(), c.int_type.max()))
        .collect();
    Plan {
        entries,
        dives,
        types,
    }
}

/// One measured column, before it is tied to a shard and a moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub id: ColumnId,
    pub column_type: ColumnType,
    pub int_type: IntType,
    pub kind: Kind,
    /// The source name, or the parent as `schema.table.column`.
    pub source: Option<String>,
    pub headroom: Headroom,
    /// The column cannot hold every value its source or parent can produce.
    pub type_mismatch: bool,
    /// The largest value its source's or parent's type holds, when known: what
    /// `type_mismatch` compares with.
    pub feeder_max: Option<u64>,
    /// For `inferred`: the rule that named the parent; `None` for other kinds.
    pub evidence: Option<String>,
}

/// A column that could not be measured this poll, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    pub id: ColumnId,
    pub reason: String,
}

/// Resolves every planned column from the MAX values read (`dives`; `None` for an empty
/// table) and the sources' latest values.
pub fn resolve(
    plan: &Plan,
    dives: &HashMap<ColumnId, Option<i128>>,
    sources: &HashMap<String, SourceValue>,
) -> (Vec<Measured>, Vec<Unresolved>) {
    let lookup = |id: &ColumnId| {
        dives.get(id).map(|max| DiveValue {
            max: *max,
            held: None,
        })
    };
    let (measured, unresolved) = resolve_with(plan, &lookup, sources);
    (measured.into_iter().map(|(m, _)| m).collect(), unresolved)
}

/// A `MAX()` value as resolution uses it.
#[derive(Debug, Clone, Copy)]
struct DiveValue {
    /// `None` for an empty table.
    max: Option<i128>,
    /// When it was read, if at an earlier poll than this one.
    held: Option<Moment>,
}

/// As [`resolve`], with each column's `MAX()` from `dive`, and, beside each measured column,
/// when its `current` was read if that was at an earlier poll: when it is a `MAX()` held from
/// an earlier dive (its own, or its parent's).
fn resolve_with(
    plan: &Plan,
    dive: &dyn Fn(&ColumnId) -> Option<DiveValue>,
    sources: &HashMap<String, SourceValue>,
) -> (Vec<(Measured, Option<Moment>)>, Vec<Unresolved>) {
    let index: HashMap<&ColumnId, usize> = plan
        .entries
        .iter()
        .enumerate()
        .map(|(i, (c, _))| (&c.id, i))
        .collect();
    // Entry `i`'s value once known (`Some(None)`: known to be unknown).
    let mut memo: Vec<Option<Option<Value>>> = vec![None; plan.entries.len()];
    let mut measured = Vec::with_capacity(plan.entries.len());
    let mut unresolved = Vec::new();
    // One set for every walk, emptied before each: a column's walk allocates nothing.
    let mut visiting = HashSet::new();
    for (i, (col, derivation)) in plan.entries.iter().enumerate() {
        visiting.clear();
        let mut walk = Walk {
            plan,
            index: &index,
            dive,
            sources,
            memo: &mut memo,
            visiting: &mut visiting,
        };
        let Some(value) = walk.current_of(i) else {
            unresolved.push(Unresolved {
                id: col.id.clone(),
                reason: reason(derivation, sources),
            });
            continue;
        };
        let max = col.int_type.max();
        let evidence = match derivation {
            Derivation::Inferred { evidence, .. } => Some(evidence.clone()),
            _ => None,
        };
        let (kind, source, origin_max) = match derivation {
            Derivation::Auto(_) => (Kind::AutoIncrement, None, None),
            Derivation::Reference { source } => (
                Kind::Reference,
                Some(source.clone()),
                sources.get(source).map(|s| s.max),
            ),
            Derivation::ForeignKey { parent } => (
                Kind::ForeignKey,
                Some(parent.to_string()),
                plan.types.get(parent).copied(),
            ),
            Derivation::Inferred { parent, .. } => (
                Kind::Inferred,
                Some(parent.to_string()),
                plan.types.get(parent).copied(),
            ),
        };
        let m = Measured {
            id: col.id.clone(),
            column_type: column_type(&col.column_type),
            int_type: col.int_type,
            kind,
            source,
            headroom: Headroom::new(value.current, max),
            type_mismatch: origin_max.is_some_and(|origin| max < origin),
            feeder_max: origin_max,
            evidence,
        };
        measured.push((m, value.held));
    }
    (measured, unresolved)
}

fn reason(derivation: &Derivation, sources: &HashMap<String, SourceValue>) -> String {
    match derivation {
        Derivation::Reference { source } if !sources.contains_key(source) => {
            format!("source {source} has not been read yet and the column leads no index")
        }
        Derivation::ForeignKey { parent } | Derivation::Inferred { parent, .. } => {
            format!("parent {parent} has no known value and neither column leads an index")
        }
        _ => "no value could be read".to_string(),
    }
}

/// A column's current value, and when it was read if at an earlier poll.
#[derive(Debug, Clone, Copy)]
struct Value {
    current: i128,
    held: Option<Moment>,
}

impl Value {
    fn of(dive: DiveValue) -> Value {
        Value {
            current: dive.max.unwrap_or(0),
            held: dive.held,
        }
    }
}

/// One resolution's walk along foreign keys, with what it has found so far.
struct Walk<'a, 'b> {
    plan: &'a Plan,
    index: &'b HashMap<&'a ColumnId, usize>,
    dive: &'b dyn Fn(&ColumnId) -> Option<DiveValue>,
    sources: &'b HashMap<String, SourceValue>,
    memo: &'b mut [Option<Option<Value>>],
    visiting: &'b mut HashSet<usize>,
}

impl Walk<'_, '_> {
    /// The current value of entry `i`, following foreign keys; `None` when nothing is known.
    /// A reference takes the larger of its source and its own `MAX()`, and was read when
    /// the larger was.
    fn current_of(&mut self, i: usize) -> Option<Value> {
        if let Some(known) = self.memo[i] {
            return known;
        }
        if !self.visiting.insert(i) {
            // A cycle of foreign keys: nothing new to learn along it.
            return None;
        }
        let (plan, read) = (self.plan, self.dive);
        let (col, derivation) = &plan.entries[i];
        let dive = |id: &ColumnId| read(id).map(Value::of);
        let value = match derivation {
            Derivation::Auto(next) => Some(Value {
                current: *next,
                held: None,
            }),
            Derivation::Reference { source } => {
                let from_source = self.sources.get(source).map(|s| Value {
                    current: s.current,
                    held: None,
                });
                match (from_source, dive(&col.id)) {
                    (Some(s), Some(d)) if d.current > s.current => Some(d),
                    (Some(s), Some(_)) => Some(s),
                    (s, d) => s.or(d),
                }
            }
            Derivation::ForeignKey { parent } | Derivation::Inferred { parent, .. } => {
                match self.index.get(parent) {
                    Some(&p) => self.current_of(p),
                    None => dive(parent),
                }
                .or_else(|| dive(&col.id))
            }
        };
        self.visiting.remove(&i);
        self.memo[i] = Some(value);
        value
    }
}

/// When a poll's values were read: the monotonic instant (growth histories) and the wall
/// clock (`observed_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    pub instant: tokio::time::Instant,
    pub wall: DateTime<Utc>,
}

/// The one step from a shard's plan and the values read to its reports: resolves every
/// column, records each in the shard's growth histories (`growth`; columns no longer
/// measured leave it) and applies the policy (limits, silences). No I/O, and the time is
/// given: the scale bench calls exactly this. Every `MAX()` in `dives` was read at `at`.
pub fn report(
    shard: &str,
    plan: &Plan,
    dives: &HashMap<ColumnId, Option<i128>>,
    sources: &HashMap<String, SourceValue>,
    growth: &mut Tracker<ColumnId>,
    policy: &Policy,
    at: Moment,
) -> (Vec<ColumnReport>, Vec<Unresolved>) {
    let lookup = |id: &ColumnId| {
        dives.get(id).map(|max| DiveValue {
            max: *max,
            held: None,
        })
    };
    report_with(shard, plan, &lookup, sources, growth, policy, at)
}

/// As [`report`], with each column's last dive (see [`crate::dives::Ledger`]), read at
/// this poll (`at`) or at an earlier one: a column whose `current` is a `MAX()` read earlier
/// keeps that dive's moment as its `observed_at`, and its growth history gets no sample
/// (a repeated value would bend the forecast flat). The poller calls this.
pub fn report_dives(
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

/// The columns whose `MAX()` the columns `ids` are resolved from (their own, or along
/// their foreign keys): what must be read on every poll for them.
pub fn dives_of(plan: &Plan, ids: &HashSet<ColumnId>) -> HashSet<ColumnId> {
    let mut out = HashSet::new();
    if ids.is_empty() {
        return out;
    }
    let planned: HashSet<&ColumnId> = plan.dives.iter().collect();
    let index: HashMap<&ColumnId, usize> = plan
        .entries
        .iter()
        .enumerate()
        .map(|(i, (c, _))| (&c.id, i))
        .collect();
    for id in ids {
        let mut next = index.get(id).copied();
        let mut seen = HashSet::new();
        while let Some(i) = next.filter(|i| seen.insert(*i)) {
            let (col, derivation) = &plan.entries[i];
            next = None;
            let mut add = |id: &ColumnId| {
                if planned.contains(id) {
                    out.insert(id.clone());
                }
            };
            match derivation {
                Derivation::Auto(_) => {}
                Derivation::Reference { .. } => add(&col.id),
                Derivation::ForeignKey { parent } | Derivation::Inferred { parent, .. } => {
                    add(parent);
                    add(&col.id);
                    next = index.get(parent).copied();
                }
            }
        }
    }
    out
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
    let seg = |s: &str| percent_encoding::utf8_percent_encode(s, SEGMENT).to_string();
    format!(
        "/api/columns/{}/{}/{}/{}",
        seg(shard),
        seg(schema),
        seg(table),
        seg(column)
    )
}

/// A column's last dive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dive {
    /// `MAX(column)`; `None` for an empty table.
    pub value: Option<i128>,
    /// When it was read.
    pub at: Moment,
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
}

/// The JSON of a row (`/api/columns`, `check --json`, `plan --format json`): the fields
/// above in their order, with `remaining`, `exhausts_at`, `reason` and `plan_url`, which
/// are derived rather than held (a million rows, each smaller).
impl Serialize for ColumnReport {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut row = serializer.serialize_struct("ColumnReport", 24)?;
        row.serialize_field("shard", &*self.shard)?;
        row.serialize_field("schema", &*self.id.schema)?;
        row.serialize_field("table", &*self.id.table)?;
        row.serialize_field("column", &*self.id.column)?;
        row.serialize_field("column_type", &self.column_type)?;
        row.serialize_field("kind", &self.kind)?;
        row.serialize_field("source", &self.source)?;
        row.serialize_field("parent", &self.parent())?;
        row.serialize_field("evidence", &self.evidence)?;
        row.serialize_field("current", &self.current)?;
        row.serialize_field("max", &self.max)?;
        row.serialize_field("remaining", &self.remaining())?;
        row.serialize_field("used_ratio", &self.used_ratio)?;
        row.serialize_field("status", &self.status)?;
        row.serialize_field("type_mismatch", &self.type_mismatch)?;
        row.serialize_field("observed_at", &self.observed_at)?;
        row.serialize_field("growth_per_second", &self.growth_per_second)?;
        row.serialize_field("seconds_to_exhaustion", &self.seconds_to_exhaustion)?;
        row.serialize_field("exhausts_at", &self.exhausts_at())?;
        row.serialize_field("silenced", &self.silenced)?;
        row.serialize_field("last_jump", &self.last_jump)?;
        row.serialize_field("clamped", &self.clamped)?;
        row.serialize_field("reason", &self.reason())?;
        row.serialize_field("plan_url", &self.plan_url())?;
        row.end()
    }
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
    /// names percent-encoded), relative to the API's address.
    pub fn plan_url(&self) -> String {
        plan_path(
            &self.shard,
            &self.id.schema,
            &self.id.table,
            &self.id.column,
        )
    }

    /// `schema.table.column`.
    pub fn name(&self) -> String {
        self.id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headroom::{IntType, Width};
    use crate::inventory::ForeignKey;

    fn col(id: &str, width: Width, unsigned: bool, auto: Option<i128>) -> IntColumn {
        let parts: Vec<&str> = id.split('.').collect();
        IntColumn {
            id: ColumnId::new(parts[0], parts[1], parts[2]),
            column_type: format!(
                "{}{}",
                width.sql_name(),
                if unsigned { " unsigned" } else { "" }
            ),
            int_type: IntType::new(width, unsigned),
            auto_increment: auto,
        }
    }

    fn id(s: &str) -> ColumnId {
        let parts: Vec<&str> = s.split('.').collect();
        ColumnId::new(parts[0], parts[1], parts[2])
    }

    fn fk(child: &str, parent: &str) -> ForeignKey {
        ForeignKey {
            child: id(child),
            parent: id(parent),
        }
    }

    fn tickets(current: i128) -> HashMap<String, SourceValue> {
        HashMap::from([(
            "tickets64".to_string(),
            SourceValue {
                current,
                max: u64::MAX,
            },
        )])
    }

    fn rules() -> Vec<ReferenceRule> {
        vec![
            ReferenceRule::new(
                "tickets64",
                &["etsy.*.*_id".to_string()],
                &["etsy.teams.*".to_string()],
            )
            .unwrap(),
        ]
    }

    fn by_name(measured: &[Measured]) -> HashMap<String, Measured> {
        measured
            .iter()
            .map(|m| (m.id.to_string(), m.clone()))
            .collect()
    }

    #[test]
    fn reference_columns_take_the_source_or_their_own_max_whichever_is_larger() {
        let inventory = Inventory {
            columns: vec![
                col("etsy.comments.treasury_id", Width::Int, true, None),
                col("etsy.feed.treasury_id", Width::Int, false, None),
                col("etsy.teams.team_id", Width::Int, false, None),
                col("etsy.comments.likes", Width::Int, false, None),
            ],
            foreign_keys: vec![],
            leading: HashSet::from([id("etsy.comments.treasury_id"), id("etsy.feed.treasury_id")]),
            primary_keys: HashMap::new(),
        };
        let plan = plan(&inventory, &rules());
        assert_eq!(plan.len(), 2, "teams excluded, likes is not an ID column");
        assert_eq!(plan.dives.len(), 2);
        let dives = HashMap::from([
            (id("etsy.comments.treasury_id"), Some(10)),
            (id("etsy.feed.treasury_id"), Some(3_000_000_000)),
        ]);
        let (measured, unresolved) = resolve(&plan, &dives, &tickets(2_147_483_648 + 100));
        assert!(unresolved.is_empty());
        let m = by_name(&measured);
        let comments = &m["etsy.comments.treasury_id"];
        assert_eq!(comments.kind, Kind::Reference);
        assert_eq!(comments.headroom.current, 2_147_483_748);
        assert!(comments.type_mismatch);
        assert_eq!(comments.source.as_deref(), Some("tickets64"));
        assert_eq!(m["etsy.feed.treasury_id"].headroom.current, 3_000_000_000);
    }

    #[test]
    fn a_reference_column_that_leads_no_index_is_never_dived() {
        let inventory = Inventory {
            columns: vec![col("etsy.log.user_id", Width::Int, false, None)],
            foreign_keys: vec![],
            leading: HashSet::new(),
            primary_keys: HashMap::new(),
        };
        let plan = plan(&inventory, &rules());
        assert!(plan.dives.is_empty());
        let (measured, _) = resolve(&plan, &HashMap::new(), &tickets(42));
        assert_eq!(measured[0].headroom.current, 42);
    }

    #[test]
    fn foreign_key_chains_resolve_to_the_root_counter() {
        let inventory = Inventory {
            columns: vec![
                col("shop.users.id", Width::Big, true, Some(5_000)),
                col("shop.orders.id", Width::Int, false, Some(10)),
                col("shop.orders.user_ref", Width::Big, true, None),
                col("shop.notes.order_user", Width::Int, true, None),
            ],
            foreign_keys: vec![
                fk("shop.orders.user_ref", "shop.users.id"),
                fk("shop.notes.order_user", "shop.orders.user_ref"),
            ],
            leading: HashSet::from([id("shop.orders.user_ref"), id("shop.notes.order_user")]),
            primary_keys: HashMap::new(),
        };
        let plan = plan(&inventory, &[]);
        assert!(
            plan.dives.is_empty(),
            "every parent is measured: no MAX needed"
        );
        let (measured, _) = resolve(&plan, &HashMap::new(), &HashMap::new());
        let m = by_name(&measured);
        assert_eq!(m["shop.orders.user_ref"].headroom.current, 5_000);
        assert_eq!(m["shop.notes.order_user"].headroom.current, 5_000);
        assert_eq!(
            m["shop.notes.order_user"].source.as_deref(),
            Some("shop.orders.user_ref")
        );
        assert!(
            m["shop.notes.order_user"].type_mismatch,
            "INT UNSIGNED below BIGINT UNSIGNED"
        );
        assert_eq!(m["shop.users.id"].kind, Kind::AutoIncrement);
    }

    #[test]
    fn a_foreign_key_to_an_unmeasured_parent_reads_the_parents_max() {
        let inventory = Inventory {
            columns: vec![
                col("s.codes.code", Width::Small, false, None),
                col("s.items.code", Width::Small, false, None),
            ],
            foreign_keys: vec![fk("s.items.code", "s.codes.code")],
            leading: HashSet::from([id("s.codes.code"), id("s.items.code")]),
            primary_keys: HashMap::new(),
        };
        let plan = plan(&inventory, &[]);
        assert_eq!(plan.dives, vec![id("s.codes.code")]);
        let dives = HashMap::from([(id("s.codes.code"), Some(30_000))]);
        let (measured, _) = resolve(&plan, &dives, &HashMap::new());
        assert_eq!(measured.len(), 1);
        assert_eq!(measured[0].headroom.current, 30_000);
        assert!(!measured[0].type_mismatch);
    }

    #[test]
    fn a_foreign_key_cycle_does_not_loop() {
        let inventory = Inventory {
            columns: vec![
                col("s.a.x", Width::Int, false, None),
                col("s.b.y", Width::Int, false, None),
            ],
            foreign_keys: vec![fk("s.a.x", "s.b.y"), fk("s.b.y", "s.a.x")],
            leading: HashSet::new(),
            primary_keys: HashMap::new(),
        };
        let plan = plan(&inventory, &[]);
        let (measured, unresolved) = resolve(&plan, &HashMap::new(), &HashMap::new());
        assert!(measured.is_empty());
        assert_eq!(unresolved.len(), 2);
    }

    #[test]
    fn a_reference_without_source_value_or_index_is_unresolved() {
        let inventory = Inventory {
            columns: vec![col("etsy.x.user_id", Width::Int, false, None)],
            ..Inventory::default()
        };
        let plan = plan(&inventory, &rules());
        let (measured, unresolved) = resolve(&plan, &HashMap::new(), &HashMap::new());
        assert!(measured.is_empty());
        assert!(unresolved[0].reason.contains("tickets64"));
    }

    #[test]
    fn a_declared_foreign_key_wins_over_a_matching_reference_rule() {
        let inventory = Inventory {
            columns: vec![
                col("etsy.comments.id", Width::Int, false, Some(500)),
                col("etsy.likes.comment_id", Width::Int, false, None),
            ],
            foreign_keys: vec![fk("etsy.likes.comment_id", "etsy.comments.id")],
            leading: HashSet::from([id("etsy.likes.comment_id")]),
            primary_keys: HashMap::new(),
        };
        let plan = plan(&inventory, &rules());
        let (measured, _) = resolve(&plan, &HashMap::new(), &tickets(3_000_000_000));
        let m = by_name(&measured);
        assert_eq!(m["etsy.likes.comment_id"].kind, Kind::ForeignKey);
        assert_eq!(m["etsy.likes.comment_id"].headroom.current, 500);
    }

    #[test]
    fn auto_increment_wins_over_a_matching_reference_rule() {
        let inventory = Inventory {
            columns: vec![col("etsy.shops.shop_id", Width::Int, true, Some(77))],
            ..Inventory::default()
        };
        let plan = plan(&inventory, &rules());
        let (measured, _) = resolve(&plan, &HashMap::new(), &tickets(1_000));
        assert_eq!(measured[0].kind, Kind::AutoIncrement);
        assert_eq!(measured[0].headroom.current, 77);
    }

    /// A poll's moment, `minutes` after `start` on both clocks.
    fn moment(start: Moment, minutes: u32) -> Moment {
        let after = std::time::Duration::from_secs(60) * minutes;
        Moment {
            instant: start.instant + after,
            wall: start.wall + chrono::TimeDelta::from_std(after).unwrap(),
        }
    }

    fn policy() -> Policy {
        crate::config::testing::settings("").policy
    }

    #[tokio::test(start_paused = true)]
    async fn a_column_not_dived_keeps_its_value_and_observed_at_and_adds_no_growth_sample() {
        let inventory = Inventory {
            columns: vec![col("etsy.feed.user_id", Width::Int, false, None)],
            foreign_keys: vec![],
            leading: HashSet::from([id("etsy.feed.user_id")]),
            ..Inventory::default()
        };
        let plan = plan(&inventory, &rules());
        let (policy, sources) = (policy(), tickets(10));
        let start = Moment {
            instant: tokio::time::Instant::now(),
            wall: "2026-11-22T06:00:00Z".parse().unwrap(),
        };
        let mut growth = Tracker::default();
        let mut dives = HashMap::new();
        let mut poll = |minute: u32, dived: Option<i128>| {
            let at = moment(start, minute);
            if let Some(value) = dived {
                let value = Some(value);
                dives.insert(id("etsy.feed.user_id"), Dive { value, at });
            }
            let (mut reports, _) =
                report_dives("s", &plan, &dives, &sources, &mut growth, &policy, at);
            reports.remove(0)
        };
        poll(0, Some(1_000));
        let read = poll(1, Some(1_600));
        assert_eq!(read.growth_per_second, Some(10.0));
        let held = poll(2, None);
        assert_eq!(held.current, 1_600);
        assert_eq!(held.observed_at, moment(start, 1).wall);
        assert_eq!(held.seconds_to_exhaustion, read.seconds_to_exhaustion);
        assert_eq!(held.exhausts_at(), read.exhausts_at());
        // Samples at minutes 0, 1 and 3 only: 10 IDs a second exactly. A repeated 1,600 at
        // minute 2 would have bent the least-squares slope below it.
        let again = poll(3, Some(2_800));
        assert_eq!(again.observed_at, moment(start, 3).wall);
        let rate = again.growth_per_second.unwrap();
        assert!((rate - 10.0).abs() < 1e-9, "{rate}");
    }

    #[test]
    fn a_reference_whose_source_passes_its_held_max_is_read_at_this_poll() {
        let inventory = Inventory {
            columns: vec![col("etsy.feed.user_id", Width::Big, false, None)],
            foreign_keys: vec![],
            leading: HashSet::from([id("etsy.feed.user_id")]),
            ..Inventory::default()
        };
        let plan = plan(&inventory, &rules());
        let start = Moment {
            instant: tokio::time::Instant::now(),
            wall: "2026-11-22T06:00:00Z".parse().unwrap(),
        };
        let dives = HashMap::from([(
            id("etsy.feed.user_id"),
            Dive {
                value: Some(1_600),
                at: start,
            },
        )]);
        let now = moment(start, 5);
        let mut growth = Tracker::default();
        let policy = policy();
        let (ahead, _) = report_dives(
            "s",
            &plan,
            &dives,
            &tickets(5_000),
            &mut growth,
            &policy,
            now,
        );
        assert_eq!(ahead[0].current, 5_000);
        assert_eq!(ahead[0].observed_at, now.wall);
        let (behind, _) = report_dives("s", &plan, &dives, &tickets(9), &mut growth, &policy, now);
        assert_eq!(behind[0].current, 1_600);
        assert_eq!(behind[0].observed_at, start.wall);
    }

    #[test]
    fn the_dives_of_a_column_follow_its_foreign_keys() {
        let inventory = Inventory {
            columns: vec![
                col("etsy.feed.user_id", Width::Int, false, None),
                col("etsy.likes.feed_user", Width::Small, false, None),
                col("s.codes.code", Width::Small, false, None),
                col("s.items.code", Width::Small, false, None),
                col("s.items.id", Width::Int, false, Some(4)),
            ],
            foreign_keys: vec![
                fk("etsy.likes.feed_user", "etsy.feed.user_id"),
                fk("s.items.code", "s.codes.code"),
            ],
            leading: HashSet::from([id("etsy.feed.user_id"), id("s.codes.code")]),
            ..Inventory::default()
        };
        let plan = plan(&inventory, &rules());
        assert_eq!(
            plan.dives,
            vec![id("etsy.feed.user_id"), id("s.codes.code")]
        );
        let of = |names: &[&str]| dives_of(&plan, &names.iter().map(|n| id(n)).collect());
        assert_eq!(
            of(&["etsy.likes.feed_user"]),
            HashSet::from([id("etsy.feed.user_id")])
        );
        assert_eq!(of(&["s.items.code"]), HashSet::from([id("s.codes.code")]));
        assert_eq!(of(&["s.items.id"]), HashSet::new());
        assert_eq!(of(&[]), HashSet::new());
    }

    #[test]
    fn an_inferred_column_is_bound_by_its_parent_and_carries_the_evidence() {
        let inventory = Inventory {
            columns: vec![
                col("gh.repos.id", Width::Big, false, Some(2_147_483_700)),
                col("gh.stars.repo_id", Width::Int, false, None),
            ],
            ..Inventory::default()
        };
        let inferred = HashMap::from([(
            id("gh.stars.repo_id"),
            Inferred {
                parent: id("gh.repos.id"),
                evidence: "rails: repo_id -> repos.id".to_string(),
            },
        )]);
        let plan = plan_with(&inventory, &[], &inferred);
        assert!(plan.dives.is_empty(), "the parent is measured");
        let (measured, _) = resolve(&plan, &HashMap::new(), &HashMap::new());
        let m = by_name(&measured);
        let stars = &m["gh.stars.repo_id"];
        assert_eq!(stars.kind, Kind::Inferred);
        assert_eq!(stars.headroom.current, 2_147_483_700);
        assert!(stars.type_mismatch);
        assert_eq!(stars.source.as_deref(), Some("gh.repos.id"));
        assert_eq!(
            stars.evidence.as_deref(),
            Some("rails: repo_id -> repos.id")
        );
        assert_eq!(m["gh.repos.id"].evidence, None);
    }

    #[test]
    fn a_reference_rule_wins_over_an_inferred_parent() {
        let inventory = Inventory {
            columns: vec![
                col("etsy.users.id", Width::Big, false, Some(9)),
                col("etsy.x.user_id", Width::Big, false, None),
            ],
            ..Inventory::default()
        };
        let inferred = HashMap::from([(
            id("etsy.x.user_id"),
            Inferred {
                parent: id("etsy.users.id"),
                evidence: "rails: user_id -> users.id".to_string(),
            },
        )]);
        let plan = plan_with(&inventory, &rules(), &inferred);
        let (measured, _) = resolve(&plan, &HashMap::new(), &tickets(1_000));
        assert_eq!(by_name(&measured)["etsy.x.user_id"].kind, Kind::Reference);
    }
}
