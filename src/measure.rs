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
//!
//! Other integer columns (counts, prices, flags) are not ID columns and are left out.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::ReferenceRule;
use crate::growth::{Forecast, Jump, Tracker};
use crate::headroom::{Headroom, IntType, Status};
use crate::inventory::{ColumnId, IntColumn, Inventory};
use crate::policy::{Limits, Policy, Silence};

/// How a column's current value is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    AutoIncrement,
    Reference,
    ForeignKey,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::AutoIncrement, Kind::Reference, Kind::ForeignKey];

    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::AutoIncrement => "auto_increment",
            Kind::Reference => "reference",
            Kind::ForeignKey => "foreign_key",
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
                format!("unknown kind {s:?}: expected auto_increment, reference or foreign_key")
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
    Reference { source: String },
    ForeignKey { parent: ColumnId },
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

/// Decides how each column is measured.
pub fn plan(inventory: &Inventory, rules: &[ReferenceRule]) -> Plan {
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
        } else {
            continue;
        };
        entries.push((col.clone(), derivation));
    }

    let measured: HashSet<&ColumnId> = entries.iter().map(|(c, _)| &c.id).collect();
    let mut dives = Vec::new();
    let mut seen = HashSet::new();
    for (col, derivation) in &entries {
        let dive = match derivation {
            Derivation::Auto(_) => None,
            Derivation::Reference { .. } => Some(&col.id),
            Derivation::ForeignKey { parent } if measured.contains(parent) => None,
            Derivation::ForeignKey { parent } if inventory.leading.contains(parent) => Some(parent),
            Derivation::ForeignKey { .. } => Some(&col.id),
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
    pub column_type: String,
    pub int_type: IntType,
    pub kind: Kind,
    /// The source name, or the parent as `schema.table.column`.
    pub source: Option<String>,
    pub headroom: Headroom,
    /// The column cannot hold every value its source or parent can produce.
    pub type_mismatch: bool,
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
    let index: HashMap<&ColumnId, usize> = plan
        .entries
        .iter()
        .enumerate()
        .map(|(i, (c, _))| (&c.id, i))
        .collect();
    let mut memo: HashMap<usize, Option<i128>> = HashMap::new();
    let mut measured = Vec::new();
    let mut unresolved = Vec::new();
    for (i, (col, derivation)) in plan.entries.iter().enumerate() {
        let mut visiting = HashSet::new();
        let current = current_of(i, plan, &index, dives, sources, &mut memo, &mut visiting);
        let Some(current) = current else {
            unresolved.push(Unresolved {
                id: col.id.clone(),
                reason: reason(derivation, sources),
            });
            continue;
        };
        let max = col.int_type.max();
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
        };
        measured.push(Measured {
            id: col.id.clone(),
            column_type: col.column_type.clone(),
            int_type: col.int_type,
            kind,
            source,
            headroom: Headroom::new(current, max),
            type_mismatch: origin_max.is_some_and(|origin| max < origin),
        });
    }
    (measured, unresolved)
}

fn reason(derivation: &Derivation, sources: &HashMap<String, SourceValue>) -> String {
    match derivation {
        Derivation::Reference { source } if !sources.contains_key(source) => {
            format!("source {source} has not been read yet and the column leads no index")
        }
        Derivation::ForeignKey { parent } => {
            format!("parent {parent} has no known value and neither column leads an index")
        }
        _ => "no value could be read".to_string(),
    }
}

/// The current value of entry `i`, following foreign keys; `None` when nothing is known.
fn current_of(
    i: usize,
    plan: &Plan,
    index: &HashMap<&ColumnId, usize>,
    dives: &HashMap<ColumnId, Option<i128>>,
    sources: &HashMap<String, SourceValue>,
    memo: &mut HashMap<usize, Option<i128>>,
    visiting: &mut HashSet<usize>,
) -> Option<i128> {
    if let Some(known) = memo.get(&i) {
        return *known;
    }
    if !visiting.insert(i) {
        // A cycle of foreign keys: nothing new to learn along it.
        return None;
    }
    let (col, derivation) = &plan.entries[i];
    let dive = |id: &ColumnId| dives.get(id).map(|v| v.unwrap_or(0));
    let value = match derivation {
        Derivation::Auto(next) => Some(*next),
        Derivation::Reference { source } => {
            let from_source = sources.get(source).map(|s| s.current);
            match (from_source, dive(&col.id)) {
                (Some(s), Some(d)) => Some(s.max(d)),
                (s, d) => s.or(d),
            }
        }
        Derivation::ForeignKey { parent } => match index.get(parent) {
            Some(&p) => current_of(p, plan, index, dives, sources, memo, visiting),
            None => dive(parent),
        }
        .or_else(|| dive(&col.id)),
    };
    visiting.remove(&i);
    memo.insert(i, value);
    value
}

/// When a poll's values were read: the monotonic instant (growth histories) and the wall
/// clock (`observed_at`).
#[derive(Debug, Clone, Copy)]
pub struct Moment {
    pub instant: tokio::time::Instant,
    pub wall: DateTime<Utc>,
}

/// The one step from a shard's plan and the values read to its reports: resolves every
/// column, records each in the shard's growth histories (`growth`; columns no longer
/// measured leave it) and applies the policy (limits, silences). No I/O, and the time is
/// given: the poller and the scale bench call exactly this.
pub fn report(
    shard: &str,
    plan: &Plan,
    dives: &HashMap<ColumnId, Option<i128>>,
    sources: &HashMap<String, SourceValue>,
    growth: &mut Tracker<ColumnId>,
    policy: &Policy,
    at: Moment,
) -> (Vec<ColumnReport>, Vec<Unresolved>) {
    let (measured, unresolved) = resolve(plan, dives, sources);
    let values = measured
        .iter()
        .map(|m| (m.id.clone(), m.headroom.current, m.headroom.max));
    let forecasts = growth.round(at.instant, values);
    let reports = measured
        .into_iter()
        .map(|m| {
            let forecast = forecasts.get(&m.id).copied().unwrap_or(Forecast::NONE);
            let (schema, table, column) = (&m.id.schema, &m.id.table, &m.id.column);
            let limits = policy.limits(schema, table, column);
            let silence = policy.silence(schema, table, column, at.wall).cloned();
            ColumnReport::new(shard, m, forecast, limits, silence, at.wall)
        })
        .collect();
    (reports, unresolved)
}

/// A measured column as the API, the metrics, `check` and the pager see it.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnReport {
    pub shard: String,
    pub schema: String,
    pub table: String,
    pub column: String,
    /// As information_schema writes it, e.g. `int(10) unsigned`.
    pub column_type: String,
    /// The same, parsed (for people: `INT UNSIGNED`).
    #[serde(skip)]
    pub int_type: IntType,
    pub kind: Kind,
    pub source: Option<String>,
    /// Exact, up to BIGINT UNSIGNED max and beyond.
    pub current: i128,
    pub max: u64,
    pub remaining: i128,
    pub used_ratio: f64,
    /// The worse of the ratio and time thresholds (see [`crate::policy`]).
    pub status: Status,
    /// The status by the time thresholds alone (`ok`, `warning` or `critical`): tells the
    /// alert rules whether `status` comes from the growth rate.
    #[serde(skip)]
    pub time_status: Status,
    pub type_mismatch: bool,
    pub observed_at: DateTime<Utc>,
    /// IDs per second over the column's history; `null` until it spans two polls.
    pub growth_per_second: Option<f64>,
    /// Seconds until `current` passes `max` at that rate; `null` while it does not grow.
    pub seconds_to_exhaustion: Option<u64>,
    /// `observed_at` plus `seconds_to_exhaustion`.
    pub exhausts_at: Option<DateTime<Utc>>,
    /// The silence in force: measured and shown, but not paged.
    pub silenced: Option<Silence>,
    /// The latest jump (e.g. `ALTER TABLE … AUTO_INCREMENT`) kept out of the growth rate,
    /// within the last week; `null` when none.
    pub last_jump: Option<Jump>,
    /// This column with its widening plan (`/api/columns/{shard}/{schema}/{table}/{column}`,
    /// names percent-encoded), relative to the API's address.
    pub plan_url: String,
}

impl ColumnReport {
    /// Ties a measured column to its shard and the moment, with its forecast, limits and
    /// silence.
    pub fn new(
        shard: &str,
        measured: Measured,
        forecast: Forecast,
        limits: Limits,
        silenced: Option<Silence>,
        observed_at: DateTime<Utc>,
    ) -> ColumnReport {
        let h = measured.headroom;
        let plan_url = crate::plan::path(
            shard,
            &measured.id.schema,
            &measured.id.table,
            &measured.id.column,
        );
        ColumnReport {
            shard: shard.to_string(),
            schema: measured.id.schema,
            table: measured.id.table,
            column: measured.id.column,
            column_type: measured.column_type,
            int_type: measured.int_type,
            kind: measured.kind,
            source: measured.source,
            current: h.current,
            max: h.max,
            remaining: h.remaining(),
            used_ratio: h.used_ratio(),
            status: limits.status(h, forecast.seconds_to_exhaustion),
            time_status: limits.time_status(forecast.seconds_to_exhaustion),
            type_mismatch: measured.type_mismatch,
            observed_at,
            growth_per_second: forecast.growth_per_second,
            seconds_to_exhaustion: forecast.seconds_to_exhaustion,
            exhausts_at: forecast.exhausts_at(observed_at),
            silenced,
            last_jump: forecast.last_jump_at(observed_at),
            plan_url,
        }
    }

    /// `schema.table.column`.
    pub fn name(&self) -> String {
        format!("{}.{}.{}", self.schema, self.table, self.column)
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
}
