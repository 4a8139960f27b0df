//! Which columns must widen together, over one snapshot's column reports: a column and its
//! parent (a declared foreign key, or any kind that names a parent: [`parent_of`] is the
//! one place that says which), both ways and transitively; the columns fed by the same
//! source, or by the same sequence of one database ([`sequence_of`]); the same
//! `schema.table.column` on every shard (in the same database, on PostgreSQL, as a MySQL
//! shard's schemas are its databases). Each group needs one value range ([`need`]). Every
//! group at once ([`groups`], for `headroom plan`), or one column's
//! ([`group_of`], for a column's plan on request). Pure.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use crate::headroom::Status;
use crate::inventory::{ColumnId, Name, NameRef};
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

/// The group of the column at `start`: exactly the members [`groups`] puts with it, in
/// snapshot order, found by following the same links from it, so that one column's plan
/// does not group every other column. Each round looks once at every column not found yet
/// for one linked to those found so far, until a round finds none: about as many rounds as
/// the longest chain of parents, 2 or 3 on most schemas. A round reads each column's
/// precomputed name hash, and the source or parent it names when it has one; no name is
/// copied. About 10 ms of CPU for a group of 8 among 100,000 columns (`cargo bench --bench
/// scale -- pages`).
pub fn group_of(shards: &[&[ColumnReport]], start: Place) -> Vec<Place> {
    let mut reach = Reach {
        shards,
        inside: shards.iter().map(|cols| vec![false; cols.len()]).collect(),
        hidden: vec![None; shards.len()],
        ids: HashSet::default(),
        sources: HashSet::new(),
        sequences: HashSet::new(),
        wanted: vec![HashSet::new(); shards.len()],
        wanted_ids: HashSet::default(),
        unfiltered: vec![false; shards.len()],
        on_shard: vec![HashMap::default(); shards.len()],
        found: Vec::new(),
    };
    reach.add((start.0, start.1));
    let mut name = String::new();
    loop {
        let before = reach.found.len();
        for (s, cols) in shards.iter().enumerate() {
            for c in 0..cols.len() {
                if !reach.inside[s][c] && reach.links(s, c, &mut name) {
                    reach.add((s, c));
                }
            }
        }
        if reach.found.len() == before {
            break;
        }
    }
    let mut found = reach.found;
    found.sort_unstable();
    found
}

/// Sets keyed by a column's name hash ([`ColumnId`] and [`NameRef`] hash as one `u64`,
/// drawn with a key random per process): that hash is used as it is, not hashed again.
type Prehashed = BuildHasherDefault<AsIs>;

/// A hasher that keeps the one `u64` it is given ([`Prehashed`]); anything else is folded in
/// as FNV-1a would.
#[derive(Default)]
struct AsIs(u64);

impl Hasher for AsIs {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The most dots a parent's name may hold for [`group_of`] to look it up by every way of
/// reading it as `schema.table.column` (n dots, n(n-1)/2 ways); past it, names are written
/// out and compared instead.
const MOST_DOTS: usize = 32;

/// Calls `each` with every way of reading `name` as `schema.table.column`, and as
/// `database.schema.table.column` (a PostgreSQL column's name), at its dots; `false`,
/// without a call, past [`MOST_DOTS`] dots.
fn readings(name: &str, mut each: impl FnMut(NameRef<'_>)) -> bool {
    if name.bytes().filter(|&b| b == b'.').count() > MOST_DOTS {
        return false;
    }
    let dots: Vec<usize> = name.match_indices('.').map(|(i, _)| i).collect();
    for (n, &i) in dots.iter().enumerate() {
        for (m, &j) in dots.iter().enumerate().skip(n + 1) {
            each(NameRef::new(&name[..i], &name[i + 1..j], &name[j + 1..]));
            for &k in &dots[m + 1..] {
                each(NameRef::in_database(
                    Some(&name[..i]),
                    &name[i + 1..j],
                    &name[j + 1..k],
                    &name[k + 1..],
                ));
            }
        }
    }
    true
}

/// Whether `id`, written `schema.table.column` (`database.` first when it has one), is
/// `name`.
fn reads_as(id: &ColumnId, name: &str) -> bool {
    let name = match id.database() {
        Some(database) => match name
            .strip_prefix(database)
            .and_then(|rest| rest.strip_prefix('.'))
        {
            Some(rest) => rest,
            None => return false,
        },
        None => name,
    };
    let (schema, table, column) = (id.schema.as_str(), id.table.as_str(), id.column.as_str());
    name.len() == schema.len() + table.len() + column.len() + 2
        && name.starts_with(schema)
        && name[schema.len()..].starts_with('.')
        && name[schema.len() + 1..].starts_with(table)
        && name[schema.len() + 1 + table.len()..].starts_with('.')
        && name.ends_with(column)
}

/// What [`group_of`] has found so far, and what links a column to it.
struct Reach<'s, 'a> {
    shards: &'s [&'a [ColumnReport]],
    /// Per shard and column: found already.
    inside: Vec<Vec<bool>>,
    /// Per shard, computed when first needed: which columns a later column of the same
    /// `schema.table.column` name hides from their children ([`shadowed`]).
    hidden: Vec<Option<Vec<bool>>>,
    /// Every member's name: the same on any shard is linked.
    ids: HashSet<&'a ColumnId, Prehashed>,
    /// Every member's source.
    sources: HashSet<&'a str>,
    /// Every member's sequence, with its shard and database: its other columns are linked.
    sequences: HashSet<(usize, Option<&'a str>, &'a str)>,
    /// Per shard: the parents members name, whose column of that name is linked.
    wanted: Vec<HashSet<&'a str>>,
    /// The name hash of every way of reading a wanted parent as `schema.table.column`: a
    /// column whose hash is none of them is not one (its name is not written out).
    wanted_ids: HashSet<u64, Prehashed>,
    /// Per shard: a wanted parent has more than [`MOST_DOTS`] dots, not in `wanted_ids`.
    unfiltered: Vec<bool>,
    /// Per shard: its members, by name, with the last place of that name on it: a column
    /// naming one of them (not hidden) as its parent is linked.
    on_shard: Vec<HashMap<&'a ColumnId, usize, Prehashed>>,
    found: Vec<Place>,
}

impl<'a> Reach<'_, 'a> {
    fn add(&mut self, (s, c): Place) {
        let r: &'a ColumnReport = &self.shards[s][c];
        self.inside[s][c] = true;
        self.found.push((s, c));
        self.ids.insert(&r.id);
        let last = self.on_shard[s].entry(&r.id).or_insert(c);
        *last = (*last).max(c);
        if let Some(source) = source_of(r) {
            self.sources.insert(source);
        }
        if let Some(sequence) = sequence_of(r) {
            self.sequences.insert((s, r.id.database(), sequence));
        }
        if let Some(parent) = parent_of(r)
            && self.wanted[s].insert(parent)
        {
            let wanted_ids = &mut self.wanted_ids;
            if !readings(parent, |read| {
                wanted_ids.insert(read.name_hash());
            }) {
                self.unfiltered[s] = true;
            }
        }
    }

    /// Whether column `c` of shard `s` is linked to a member; `name` is a buffer for its
    /// name.
    fn links(&mut self, s: usize, c: usize, name: &mut String) -> bool {
        let r: &'a ColumnReport = &self.shards[s][c];
        if self.ids.contains(&r.id)
            || (!self.sources.is_empty()
                && source_of(r).is_some_and(|source| self.sources.contains(source)))
            || (!self.sequences.is_empty()
                && sequence_of(r)
                    .is_some_and(|q| self.sequences.contains(&(s, r.id.database(), q))))
            || parent_of(r).is_some_and(|parent| self.names_member(s, parent))
        {
            return true;
        }
        if self.wanted[s].is_empty()
            || !(self.unfiltered[s] || self.wanted_ids.contains(&r.id.name_hash()))
        {
            return false;
        }
        name.clear();
        if let Some(database) = r.id.database() {
            name.push_str(database);
            name.push('.');
        }
        name.push_str(&r.id.schema);
        name.push('.');
        name.push_str(&r.id.table);
        name.push('.');
        name.push_str(&r.id.column);
        self.wanted[s].contains(name.as_str()) && !self.hidden(s, c)
    }

    /// Whether `parent` is the name of a member of shard `s` that no later column of that
    /// name hides: a column naming it is linked.
    fn names_member(&mut self, s: usize, parent: &str) -> bool {
        let on_shard = &self.on_shard[s];
        if on_shard.is_empty() {
            return false;
        }
        let mut places: Vec<usize> = Vec::new();
        let looked_up = readings(parent, |read| {
            if let Some(&found) = on_shard.get(&read as &dyn Name) {
                places.push(found);
            }
        });
        if !looked_up {
            places.extend(
                on_shard
                    .iter()
                    .filter(|(id, _)| reads_as(id, parent))
                    .map(|(_, &found)| found),
            );
        }
        places.into_iter().any(|c| !self.hidden(s, c))
    }

    /// Whether a later column of shard `s` has the name of its column `c`: a child naming
    /// that parent is put with the last one, as [`groups`] does. Only a name with a dot
    /// inside a part can read as another's.
    fn hidden(&mut self, s: usize, c: usize) -> bool {
        let id = &self.shards[s][c].id;
        let dotted = |p: &str| p.contains('.');
        if !(id.database().is_some_and(dotted)
            || dotted(&id.schema)
            || dotted(&id.table)
            || dotted(&id.column))
        {
            return false;
        }
        let cols = self.shards[s];
        self.hidden[s]
            .get_or_insert_with(|| shadowed(cols))
            .get(c)
            .copied()
            .unwrap_or(false)
    }
}

/// Per column of one shard: whether a later column has its `schema.table.column` name.
fn shadowed(cols: &[ColumnReport]) -> Vec<bool> {
    let mut out = vec![false; cols.len()];
    let mut seen: HashSet<String> = HashSet::new();
    for (c, r) in cols.iter().enumerate().rev() {
        out[c] = !seen.insert(r.name());
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headroom::{IntType, Width};
    use proptest::prelude::*;

    /// Names from few parts, some with dots, so that names read alike across columns.
    const PARTS: [&str; 3] = ["s", "s.t", "t"];

    /// A column: its three name parts, its kind (0 auto-increment, 1 foreign key, 2
    /// inferred, 3 reference) and what it names (a parent's three parts, or source 0 or 1).
    type Spec = ([usize; 3], u8, [usize; 3]);

    fn fleet(specs: &[Vec<Spec>]) -> Vec<Vec<ColumnReport>> {
        specs
            .iter()
            .enumerate()
            .map(|(s, cols)| {
                let shard = format!("shard-{s}");
                cols.iter()
                    .map(|&(name, kind, link)| {
                        let id = ColumnId::new(PARTS[name[0]], PARTS[name[1]], PARTS[name[2]]);
                        let parent =
                            format!("{}.{}.{}", PARTS[link[0]], PARTS[link[1]], PARTS[link[2]]);
                        let source = format!("source-{}", link[0] % 2);
                        let (kind, source) = match kind {
                            0 => (Kind::AutoIncrement, None),
                            1 => (Kind::ForeignKey, Some(parent)),
                            2 => (Kind::Inferred, Some(parent)),
                            _ => (Kind::Reference, Some(source)),
                        };
                        let int = IntType::new(Width::Int, false);
                        crate::measure::fixture::column(&shard, id, int, 1)
                            .kind(kind)
                            .source(source.as_deref())
                            .build()
                    })
                    .collect()
            })
            .collect()
    }

    fn specs() -> impl Strategy<Value = Vec<Vec<Spec>>> {
        let part = 0usize..PARTS.len();
        let spec = (
            [part.clone(), part.clone(), part.clone()],
            0u8..4,
            [part.clone(), part.clone(), part],
        );
        prop::collection::vec(prop::collection::vec(spec, 0..14), 1..4)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn one_columns_group_is_the_group_all_groups_put_it_in(specs in specs()) {
            let fleet = fleet(&specs);
            let shards: Vec<&[ColumnReport]> = fleet.iter().map(Vec::as_slice).collect();
            for group in groups(&shards) {
                for &start in &group {
                    prop_assert_eq!(&group_of(&shards, start), &group, "from {:?}", start);
                }
            }
        }
    }

    #[test]
    fn a_child_goes_with_the_last_of_two_columns_whose_names_read_alike() {
        let specs = vec![vec![
            ([1, 0, 2], 0, [0; 3]),    // `s.t`.`s`.`t`, read s.t.s.t
            ([0, 0, 0], 1, [1, 0, 2]), // a child of s.t.s.t
            ([0, 2, 1], 0, [0; 3]),    // `s`.`t`.`s.t`, read s.t.s.t too, and later
            ([2, 2, 2], 1, [0, 2, 1]), // another child of s.t.s.t
        ]];
        let fleet = fleet(&specs);
        let shards: Vec<&[ColumnReport]> = fleet.iter().map(Vec::as_slice).collect();
        assert_eq!(fleet[0][0].name(), fleet[0][2].name());
        assert_eq!(group_of(&shards, (0, 0)), vec![(0, 0)]);
        for start in [(0, 1), (0, 2), (0, 3)] {
            assert_eq!(group_of(&shards, start), vec![(0, 1), (0, 2), (0, 3)]);
        }
        assert_eq!(
            groups(&shards),
            vec![vec![(0, 0)], vec![(0, 1), (0, 2), (0, 3)]]
        );
    }

    #[test]
    fn a_parent_named_with_many_dots_is_found_all_the_same() {
        let int = IntType::new(Width::Int, false);
        let column = |id: ColumnId, kind, source: Option<&str>| {
            crate::measure::fixture::column("a", id, int, 1)
                .kind(kind)
                .source(source)
                .build()
        };
        let parent = ColumnId::new(&"s.".repeat(20), &"t.".repeat(10), "c.c");
        let fleet = vec![
            column(ColumnId::new("s", "t", "x"), Kind::AutoIncrement, None),
            column(parent.clone(), Kind::AutoIncrement, None),
            column(
                ColumnId::new("s", "child", "parent_id"),
                Kind::ForeignKey,
                Some(&parent.to_string()),
            ),
        ];
        assert_eq!(parent.to_string().matches('.').count(), MOST_DOTS + 1);
        let shards: Vec<&[ColumnReport]> = vec![&fleet];
        assert_eq!(group_of(&shards, (0, 2)), vec![(0, 1), (0, 2)]);
        assert_eq!(group_of(&shards, (0, 1)), vec![(0, 1), (0, 2)]);
        assert_eq!(group_of(&shards, (0, 0)), vec![(0, 0)]);
    }

    #[test]
    fn postgresql_groups_follow_sequences_and_parents_within_their_database() {
        let settings = crate::plan::fixtures::postgres_settings();
        let snapshot = crate::plan::fixtures::postgres_snapshot(&settings);
        let shards: Vec<&[ColumnReport]> = snapshot
            .shards
            .iter()
            .map(|s| s.columns.as_slice())
            .collect();
        let all = groups(&shards);
        let names = |group: &[Place]| -> Vec<String> {
            group.iter().map(|&(s, c)| shards[s][c].name()).collect()
        };
        let named: Vec<Vec<String>> = all.iter().map(|g| names(g)).collect();
        // A foreign key's child with its parent, the columns of one sequence together, and
        // the same name in another database apart.
        assert!(named.contains(&vec![
            "app.public.users.id".to_string(),
            "app.public.orders.user_id".to_string()
        ]));
        assert!(named.contains(&vec![
            "app.public.legacy.id".to_string(),
            "app.public.other.id".to_string()
        ]));
        assert!(named.contains(&vec!["tenant.public.users.id".to_string()]));
        for group in &all {
            for &start in group {
                assert_eq!(&group_of(&shards, start), group, "from {start:?}");
            }
        }
    }
}
