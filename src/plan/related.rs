//! Which columns must widen together, over one snapshot's column reports: a column and its
//! parent (a declared foreign key, or any kind that names a parent: [`parent_of`] is the
//! one place that says which), both ways and transitively; the columns fed by the same
//! source, or by the same sequence of one database ([`sequence_of`]); the same
//! `schema.table.column` on every shard (in the same database, on PostgreSQL, as a MySQL
//! shard's schemas are its databases). Each group needs one value range ([`need`]). Pure.

use std::collections::HashMap;

use crate::headroom::Status;
use crate::measure::{ColumnReport, Kind};

use super::rule;

/// Where a column sits in the snapshot: its shard's index and its own.
pub type Place = (usize, usize);

/// A column's parent on its shard, as `schema.table.column`: the column its values come
/// from, when that is another column. A new kind with a parent answers here.
pub fn parent_of(report: &ColumnReport) -> Option<&str> {
    match report.kind {
        Kind::ForeignKey => report.source.as_deref(),
        Kind::Inferred => report.parent(),
        Kind::AutoIncrement | Kind::Reference | Kind::Sequence => None,
    }
}

/// The source that feeds a column, when it is a global ID generator.
pub fn source_of(report: &ColumnReport) -> Option<&str> {
    match report.kind {
        Kind::Reference => report.source.as_deref(),
        Kind::AutoIncrement | Kind::ForeignKey | Kind::Inferred | Kind::Sequence => None,
    }
}

/// The sequence that feeds a column (PostgreSQL), as `schema.name`: every column it feeds
/// counts the same values, so they widen together, and with its sequence.
pub fn sequence_of(report: &ColumnReport) -> Option<&str> {
    match report.kind {
        Kind::Sequence => report.source.as_deref(),
        Kind::AutoIncrement | Kind::ForeignKey | Kind::Inferred | Kind::Reference => None,
    }
}

struct Sets(Vec<usize>);

impl Sets {
    fn find(&mut self, mut i: usize) -> usize {
        while self.0[i] != i {
            self.0[i] = self.0[self.0[i]];
            i = self.0[i];
        }
        i
    }

    fn join(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        if a != b {
            self.0[a.max(b)] = a.min(b);
        }
    }
}

/// The groups of columns that widen together, each in snapshot order, every column of
/// `shards` in exactly one.
pub fn groups(shards: &[&[ColumnReport]]) -> Vec<Vec<Place>> {
    let places: Vec<Place> = shards
        .iter()
        .enumerate()
        .flat_map(|(s, cols)| (0..cols.len()).map(move |c| (s, c)))
        .collect();
    let at = |p: Place| &shards[p.0][p.1];
    let mut sets = Sets((0..places.len()).collect());
    let mut by_name: HashMap<(usize, String), usize> = HashMap::new();
    type Name<'a> = (Option<&'a str>, &'a str, &'a str, &'a str);
    let mut by_column: HashMap<Name<'_>, usize> = HashMap::new();
    let mut by_source: HashMap<&str, usize> = HashMap::new();
    let mut by_sequence: HashMap<(usize, Option<&str>, &str), usize> = HashMap::new();
    for (i, &p) in places.iter().enumerate() {
        let r = at(p);
        by_name.insert((p.0, r.name()), i);
        let key = (
            r.id.database(),
            r.id.schema.as_str(),
            r.id.table.as_str(),
            r.id.column.as_str(),
        );
        match by_column.get(&key) {
            Some(&first) => sets.join(first, i),
            None => {
                by_column.insert(key, i);
            }
        }
        if let Some(source) = source_of(r) {
            match by_source.get(source) {
                Some(&first) => sets.join(first, i),
                None => {
                    by_source.insert(source, i);
                }
            }
        }
        if let Some(sequence) = sequence_of(r) {
            match by_sequence.entry((p.0, r.id.database(), sequence)) {
                std::collections::hash_map::Entry::Occupied(first) => sets.join(*first.get(), i),
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(i);
                }
            }
        }
    }
    for (i, &p) in places.iter().enumerate() {
        if let Some(parent) = parent_of(at(p))
            && let Some(&j) = by_name.get(&(p.0, parent.to_string()))
        {
            sets.join(i, j);
        }
    }
    let mut out: HashMap<usize, Vec<Place>> = HashMap::new();
    let mut order = Vec::new();
    for (i, &p) in places.iter().enumerate() {
        let root = sets.find(i);
        let group = out.entry(root).or_insert_with(|| {
            order.push(root);
            Vec::new()
        });
        group.push(p);
    }
    order
        .into_iter()
        .filter_map(|root| out.remove(&root))
        .collect()
}

/// The value range a group needs: every member's own maximum, the maximum of what feeds a
/// mismatched member (given beside it: its parent's or source's type maximum, when known),
/// and
/// the widened maximum of each member at warning or worse (the widest type of its engine
/// has none, [`rule::widened_in`]). A mismatched member whose origin is unknown asks for
/// its widened type.
pub fn need(members: &[(&ColumnReport, Option<u64>)]) -> u64 {
    let mut need = 0u64;
    for &(r, origin) in members {
        need = need.max(r.max);
        let widened = rule::widened_in(rule::Types::of(r), r.int_type).map(|t| t.max());
        if r.type_mismatch
            && let Some(o) = origin.or(widened)
        {
            need = need.max(o);
        }
        if r.status >= Status::Warning
            && let Some(w) = widened
        {
            need = need.max(w);
        }
    }
    need
}
