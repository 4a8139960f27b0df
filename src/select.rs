//! Which columns a question asks for, in its order: the filters, sorts and limit behind
//! `/api/columns` and `headroom check`, answered from a [`Snapshot`].

use std::cmp::Ordering;
use std::collections::HashSet;

use crate::headroom::Status;
use crate::measure::{ColumnReport, Kind};
use crate::state::Snapshot;

/// How columns are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// Highest used ratio first (the default): the columns closest to running out.
    #[default]
    Ratio,
    /// By shard, schema, table, column.
    Name,
    /// Soonest `exhausts_at` first; columns that do not grow last, by ratio.
    Exhaustion,
}

/// The parsed query string.
#[derive(Debug, Clone, Default)]
pub struct ColumnQuery {
    pub shard: Option<String>,
    /// A PostgreSQL database: only its columns (MySQL columns have none).
    pub database: Option<String>,
    pub schema: Option<String>,
    pub table: Option<String>,
    pub column: Option<String>,
    /// Any of these kinds (`kind=reference,foreign_key`).
    pub kinds: Option<HashSet<Kind>>,
    /// Any of these statuses (`status=critical,exhausted`).
    pub statuses: Option<HashSet<Status>>,
    pub min_ratio: Option<f64>,
    /// Only the columns at risk: not `ok` (by ratio or by time), or narrower than what
    /// feeds them (the fleet page's list when no status is asked for).
    pub at_risk: bool,
    pub sort: Sort,
    /// Skip that many after sorting (`total` still counts them).
    pub offset: usize,
    pub limit: Option<usize>,
}

/// A selected column and where it sits in the snapshot (`shards[shard].columns[index]`),
/// so that a streamed answer can find it again.
#[derive(Debug, Clone, Copy)]
pub struct Pick<'a> {
    pub shard: usize,
    pub index: usize,
    pub column: &'a ColumnReport,
}

impl ColumnQuery {
    fn keeps(&self, c: &ColumnReport) -> bool {
        self.shard.as_ref().is_none_or(|s| **s == *c.shard)
            && self
                .database
                .as_deref()
                .is_none_or(|d| Some(d) == c.id.database())
            && self.schema.as_ref().is_none_or(|s| *s == c.id.schema)
            && self.table.as_ref().is_none_or(|t| *t == c.id.table)
            && self.column.as_ref().is_none_or(|t| *t == c.id.column)
            && self.kinds.as_ref().is_none_or(|k| k.contains(&c.kind))
            && self.statuses.as_ref().is_none_or(|s| s.contains(&c.status))
            && self.min_ratio.is_none_or(|r| c.used_ratio >= r)
            && (!self.at_risk || at_risk(c))
    }
}

/// Whether `c` is at risk: its status is not `ok` (its ratio, or it runs out within
/// `warning_within`), or its type is narrower than what feeds it.
pub fn at_risk(c: &ColumnReport) -> bool {
    c.status != Status::Ok || c.type_mismatch
}

/// The columns of every shard that `query` keeps, in its order, from its offset up to its
/// limit (clones of that page only); and how many matched before offset and limit.
pub fn select_columns(snapshot: &Snapshot, query: &ColumnQuery) -> (Vec<ColumnReport>, usize) {
    let (picks, total) = select(snapshot, query);
    (picks.into_iter().map(|p| p.column.clone()).collect(), total)
}

/// The same as references into `snapshot`: nothing is cloned. With a limit, only the first
/// `offset + limit` are sorted (a selection in linear time puts them first).
pub fn select<'a>(snapshot: &'a Snapshot, query: &ColumnQuery) -> (Vec<Pick<'a>>, usize) {
    let mut selected: Vec<Pick<'a>> = snapshot
        .shards
        .iter()
        .enumerate()
        .flat_map(|(shard, s)| {
            s.columns
                .iter()
                .enumerate()
                .map(move |(index, column)| Pick {
                    shard,
                    index,
                    column,
                })
        })
        .filter(|p| query.keeps(p.column))
        .collect();
    let total = selected.len();
    let order = |a: &Pick, b: &Pick| compare(query.sort, a.column, b.column);
    let wanted = query
        .limit
        .map_or(usize::MAX, |l| query.offset.saturating_add(l));
    if wanted < selected.len() {
        if wanted == 0 {
            selected.clear();
        } else {
            selected.select_nth_unstable_by(wanted - 1, order);
            selected.truncate(wanted);
        }
    }
    selected.sort_unstable_by(order);
    let skip = query.offset.min(selected.len());
    selected.drain(..skip);
    (selected, total)
}

/// The order of `sort`, ties broken by name (a total order: names are unique).
fn compare(sort: Sort, a: &ColumnReport, b: &ColumnReport) -> Ordering {
    let by_name = |a: &ColumnReport, b: &ColumnReport| {
        // A name orders by schema, table, column.
        (&a.shard, &a.id, a.kind).cmp(&(&b.shard, &b.id, b.kind))
    };
    // Exact comparison of current/max as fractions: a.current * b.max vs b.current * a.max,
    // in u128 where (2^64 - 1)^2 fits. Highest first.
    let by_ratio = |a: &ColumnReport, b: &ColumnReport| {
        let (a_used, a_of) = fraction(a);
        let (b_used, b_of) = fraction(b);
        (b_used * a_of).cmp(&(a_used * b_of))
    };
    match sort {
        Sort::Name => by_name(a, b),
        Sort::Ratio => by_ratio(a, b).then_with(|| by_name(a, b)),
        Sort::Exhaustion => {
            let soon = |c: &ColumnReport| c.seconds_to_exhaustion.unwrap_or(u64::MAX);
            soon(a)
                .cmp(&soon(b))
                .then_with(|| by_ratio(a, b))
                .then_with(|| by_name(a, b))
        }
    }
}

/// `current / max` as a fraction to compare by cross-multiplying. A `max` of 0 (a sequence
/// confined to values it cannot count towards) makes the ratio infinite when the column
/// holds anything, and 0 (as its `used_ratio`) when it holds nothing: `0 / 0` compared as
/// it stands would be equal to every ratio, which is no order at all.
fn fraction(c: &ColumnReport) -> (u128, u128) {
    match (clamp(c.current), c.max) {
        (0, _) => (0, 1),
        (_, 0) => (1, 0),
        (used, max) => (used, u128::from(max)),
    }
}

/// A current value as a non-negative `u128` no larger than `u64::MAX`.
fn clamp(current: i128) -> u128 {
    current.clamp(0, i128::from(u64::MAX)) as u128
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headroom::{IntType, Width};
    use crate::inventory::ColumnId;
    use crate::measure::fixture;

    /// Column `name` at `current` of `max`.
    fn at(name: &str, current: i128, max: u64) -> ColumnReport {
        let int = IntType::new(Width::Int, false);
        let mut c = fixture::column("s", ColumnId::new("db", "t", name), int, current).build();
        c.max = max;
        c
    }

    #[test]
    fn the_ratio_order_is_total_with_columns_of_max_zero() {
        // `0 / 0` once compared equal to every ratio: with names ordered against the
        // ratios, a < b < c < a, and sorting a poll's columns panicked.
        let columns = [
            at("a", 1, 10),
            at("b", 5, 10),
            at("c", 0, 0),
            at("d", -7, 0),
            at("e", 3, 0),
            at("f", 0, 10),
            at("g", 20, 10),
        ];
        for x in &columns {
            for y in &columns {
                for z in &columns {
                    let (xy, yz) = (compare(Sort::Ratio, x, y), compare(Sort::Ratio, y, z));
                    if xy == yz && xy != Ordering::Equal {
                        assert_eq!(compare(Sort::Ratio, x, z), xy, "{} {} {}", x.id, y.id, z.id);
                    }
                }
            }
        }
        let mut sorted = columns.to_vec();
        sorted.sort_by(|x, y| compare(Sort::Ratio, x, y));
        let names: Vec<&str> = sorted.iter().map(|c| c.id.column.as_str()).collect();
        // Anything held of nothing first, then by ratio; nothing held of 0 as nothing used.
        assert_eq!(names, ["e", "g", "b", "a", "c", "d", "f"]);
    }
}
