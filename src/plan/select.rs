//! What a plan widens, and to what: every column at warning or worse or narrower than what
//! feeds it, its group (see [`super::related`]) and the type each member takes
//! ([`super::rule::holding_in`], among its engine's types), in the order the plan lists
//! them. Pure.
//!
//! A PostgreSQL column bound by its sequence (`limited_by = sequence`) is widened even
//! when its own type already holds what the group needs: its sequence widens (the engine
//! writes `ALTER SEQUENCE`), so its widening's `from` and `to` may be the same type.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::related::{self, Place};
use super::{Entry, Widening, rule};
use crate::headroom::Status;
use crate::measure::{ColumnReport, Kind, LimitedBy};
use crate::policy::ColumnGlobs;
use crate::state::Snapshot;

/// The type maximum of what feeds `r`: its parent's (on the same shard, from `maxima`, by
/// shard index and name) or its source's.
fn origin(
    snapshot: &Snapshot,
    maxima: &HashMap<(usize, String), u64>,
    shard: usize,
    r: &ColumnReport,
) -> Option<u64> {
    if let Some(parent) = related::parent_of(r) {
        return maxima.get(&(shard, parent.to_string())).copied();
    }
    let source = related::source_of(r)?;
    snapshot
        .sources
        .iter()
        .find(|s| s.name == source)
        .and_then(|s| s.max)
}

fn reason(r: &ColumnReport) -> String {
    let mut why = Vec::new();
    if r.status >= Status::Warning {
        let of = match (rule::Types::of(r), r.limited_by) {
            (rule::Types::Mysql, _) => r.int_type.to_string(),
            (rule::Types::Postgres, Some(LimitedBy::Sequence)) => {
                format!("its sequence {}", r.source.as_deref().unwrap_or(""))
            }
            (rule::Types::Postgres, _) => r.column_type.to_string(),
        };
        why.push(format!(
            "{}: {} of {of} used",
            r.status,
            crate::headroom::percent(r.used_ratio),
        ));
    }
    if r.type_mismatch {
        let from = match r.kind {
            Kind::Reference => "its source",
            _ => "its parent",
        };
        why.push(format!(
            "narrower than {from} {}",
            r.source.as_deref().unwrap_or("")
        ));
    }
    why.join("; ")
}

/// What needs widening and to what, ordered by exhaustion date (none last), then by used
/// ratio (highest first): every column at warning or worse or mismatched whose
/// `schema.table.column` matches `globs` (all when `None`). Pure.
pub fn select<'a>(snapshot: &'a Snapshot, globs: Option<&ColumnGlobs>) -> Vec<Entry<'a>> {
    let shards = shards(snapshot);
    let maxima: HashMap<(usize, String), u64> = shards
        .iter()
        .enumerate()
        .flat_map(|(s, cols)| cols.iter().map(move |c| ((s, c.name()), c.max)))
        .collect();
    let mut entries = Vec::new();
    for (index, group) in related::groups(&shards).into_iter().enumerate() {
        let (need, widenings) = widen(snapshot, &shards, &group, &maxima);
        for &(s, c) in &group {
            let r = &shards[s][c];
            if globs.is_some_and(|g| !g.matches(&r.id.schema, &r.id.table, &r.id.column)) {
                continue;
            }
            entries.extend(entry(r, need, &widenings, index));
        }
    }
    entries.sort_by(|a, b| {
        let (x, y) = (a.column, b.column);
        match (x.exhausts_at(), y.exhausts_at()) {
            (Some(p), Some(q)) => p.cmp(&q),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        }
        .then(y.used_ratio.total_cmp(&x.used_ratio))
        .then_with(|| {
            (&x.shard, &x.id.schema, &x.id.table, &x.id.column).cmp(&(
                &y.shard,
                &y.id.schema,
                &y.id.table,
                &y.id.column,
            ))
        })
    });
    entries
}

/// The entry of the column at `place` in [`select`]'s plan (without globs), `None` when it
/// needs no widening; its `group` is 0. Only its own group is planned
/// ([`related::group_of`]), and only when it is in the plan. Pure.
pub fn select_one(snapshot: &Snapshot, place: Place) -> Option<Entry<'_>> {
    let shards = shards(snapshot);
    if !wanted(&shards[place.0][place.1]) {
        return None;
    }
    let group = related::group_of(&shards, place);
    // The maxima [`select`] would look its members' parents up in: a parent is in its
    // child's group, and the last column of a name is the last member of that name.
    let parents: HashSet<(usize, &str)> = group
        .iter()
        .filter_map(|&(s, c)| Some((s, related::parent_of(&shards[s][c])?)))
        .collect();
    let mut maxima: HashMap<(usize, String), u64> = HashMap::new();
    if !parents.is_empty() {
        for &(s, c) in &group {
            let name = shards[s][c].name();
            if parents.contains(&(s, name.as_str())) {
                maxima.insert((s, name), shards[s][c].max);
            }
        }
    }
    let (need, widenings) = widen(snapshot, &shards, &group, &maxima);
    entry(&shards[place.0][place.1], need, &widenings, 0)
}

fn shards(snapshot: &Snapshot) -> Vec<&[ColumnReport]> {
    snapshot
        .shards
        .iter()
        .map(|s| s.columns.as_slice())
        .collect()
}

/// The range `group` needs and the widenings that give it, in the group's order; `maxima`
/// holds the type maximum of every column a member's parent can be, by shard and name.
fn widen(
    snapshot: &Snapshot,
    shards: &[&[ColumnReport]],
    group: &[Place],
    maxima: &HashMap<(usize, String), u64>,
) -> (u64, Arc<[Widening]>) {
    let need = related::need(
        &group
            .iter()
            .map(|&(s, c)| (&shards[s][c], origin(snapshot, maxima, s, &shards[s][c])))
            .collect::<Vec<_>>(),
    );
    let widenings: Arc<[Widening]> = group
        .iter()
        .map(|&(s, c)| &shards[s][c])
        .filter_map(|r| {
            let to = rule::holding_in(rule::Types::of(r), r.int_type, need);
            let sequence_binds = r.limited_by == Some(LimitedBy::Sequence);
            (to != r.int_type || sequence_binds).then(|| Widening {
                shard: r.shard.to_string(),
                id: r.id.clone(),
                from: r.column_type.to_string(),
                to,
            })
        })
        .collect();
    (need, widenings)
}

/// Whether `r` is in the plan: at warning or worse, or mismatched.
fn wanted(r: &ColumnReport) -> bool {
    r.status >= Status::Warning || r.type_mismatch
}

/// The entry of `r` in a group that needs `need` through `widenings`, when it is in the
/// plan ([`wanted`]).
fn entry<'a>(
    r: &'a ColumnReport,
    need: u64,
    widenings: &Arc<[Widening]>,
    group: usize,
) -> Option<Entry<'a>> {
    wanted(r).then(|| Entry {
        column: r,
        target: rule::holding_in(rule::Types::of(r), r.int_type, need),
        reason: reason(r),
        widenings: Arc::clone(widenings),
        group,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headroom::{IntType, Width};
    use crate::plan::fixtures::{chains, chains_settings, settings, snapshot};

    fn summary(e: &Entry<'_>) -> Vec<String> {
        e.ordered()
            .iter()
            .map(|w| format!("{}/{} {}", w.shard, w.id, w.to))
            .collect()
    }

    #[test]
    fn a_column_running_out_widens_with_its_children_both_ways_and_on_every_shard() {
        let settings = settings();
        let snapshot = snapshot(&settings);
        let entries = select(&snapshot, None);
        let names: Vec<String> = entries.iter().map(|e| e.column.name()).collect();
        assert_eq!(names, vec!["shop.users.id", "shop.likes.treasury_id"]);
        let users = &entries[0];
        assert_eq!(users.target, IntType::new(Width::Big, false));
        assert_eq!(
            summary(users),
            vec![
                "a/shop.users.id BIGINT",
                "a/shop.orders.user_id BIGINT UNSIGNED",
                "a/shop.notes.user_ref BIGINT",
                "b/shop.users.id BIGINT",
            ]
        );
        assert!(users.reason.starts_with("critical: 98"), "{}", users.reason);
        let likes = &entries[1];
        assert_eq!(likes.target, IntType::new(Width::Big, true));
        assert_eq!(
            summary(likes),
            vec!["a/shop.likes.treasury_id BIGINT UNSIGNED"]
        );
        assert!(likes.reason.contains("narrower than its source tickets64"));
    }

    #[test]
    fn a_column_glob_restricts_the_plan_but_not_what_widens_with_it() {
        let settings = settings();
        let snapshot = snapshot(&settings);
        let globs = ColumnGlobs::new(&["shop.users.*".to_string()], &[]).expect("glob");
        let entries = select(&snapshot, Some(&globs));
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].widenings.len(), 4);
        let globs = ColumnGlobs::new(&["other.*.*".to_string()], &[]).expect("glob");
        assert!(select(&snapshot, Some(&globs)).is_empty());
    }

    /// Everything an entry says: its column, target, reason and widenings in order.
    fn whole(e: &Entry<'_>) -> (String, String, String, Vec<String>) {
        (
            format!("{}/{}", e.column.shard, e.column.name()),
            e.target.display_name(),
            e.reason.clone(),
            summary(e),
        )
    }

    #[test]
    fn one_columns_entry_is_its_entry_in_the_whole_plan() {
        for (settings, fleet) in [
            (settings(), snapshot as fn(&_) -> _),
            (chains_settings(), chains),
        ] {
            let snapshot = fleet(&settings);
            let entries = select(&snapshot, None);
            let mut planned = 0;
            for (s, shard) in snapshot.shards.iter().enumerate() {
                for (c, r) in shard.columns.iter().enumerate() {
                    let one = select_one(&snapshot, (s, c));
                    let all = entries.iter().find(|e| std::ptr::eq(e.column, r));
                    assert_eq!(
                        one.as_ref().map(whole),
                        all.map(whole),
                        "{}/{}",
                        r.shard,
                        r.name()
                    );
                    assert!(one.is_none_or(|e| std::ptr::eq(e.column, r)));
                    planned += usize::from(all.is_some());
                }
            }
            assert_eq!(planned, entries.len());
        }
    }

    #[test]
    fn one_columns_group_follows_chains_listed_children_first_sources_and_alike_names() {
        let settings = chains_settings();
        let snapshot = chains(&settings);
        let at = |shard: usize, name: &str| {
            let c = snapshot.shards[shard]
                .columns
                .iter()
                .position(|r| r.name() == name && !r.id.table.contains('.'))
                .expect(name);
            select_one(&snapshot, (shard, c)).expect("an entry")
        };
        assert_eq!(
            summary(&at(0, "shop.users.id")),
            vec![
                "a/shop.users.id BIGINT",
                "a/shop.reviews.note_id BIGINT",
                "a/shop.notes.user_ref BIGINT",
                "a/shop.orders.user_id BIGINT UNSIGNED",
                "a/shop.stars.user_id BIGINT",
                "b/shop.orders.user_id BIGINT",
                "b/shop.users.id BIGINT",
            ]
        );
        assert_eq!(
            summary(&at(1, "shop.likes.treasury_id")),
            vec![
                "b/shop.likes.treasury_id BIGINT UNSIGNED",
                "a/shop.likes.treasury_id BIGINT UNSIGNED",
                "a/shop.pins.treasury_id BIGINT UNSIGNED",
                "c/shop.pins.treasury_id BIGINT UNSIGNED",
            ]
        );
        assert_eq!(summary(&at(0, "shop.hot.id")), vec!["a/shop.hot.id BIGINT"]);
        // `a`.`b.c`.`id` is the later of the two named a.b.c.id: the child's parent.
        let child = &snapshot.shards[0].columns[8];
        assert_eq!(child.name(), "a.b.c.child.id");
        let e = select_one(&snapshot, (0, 8)).expect("an entry");
        assert_eq!(
            e.ordered()
                .iter()
                .map(|w| format!("{:?} {}", (&w.id.schema, &w.id.table), w.to))
                .collect::<Vec<_>>(),
            vec!["(\"a\", \"b.c.child\") BIGINT", "(\"a\", \"b.c\") BIGINT",]
        );
    }

    #[test]
    fn a_postgresql_column_widens_to_bigint_and_a_sequence_bound_one_through_its_sequence() {
        let snapshot =
            crate::plan::fixtures::postgres_snapshot(&crate::plan::fixtures::postgres_settings());
        let entries = select(&snapshot, None);
        let got: Vec<(String, String, Vec<String>)> = entries
            .iter()
            .map(|e| (e.column.name(), e.target.to_string(), summary(e)))
            .collect();
        let big = "BIGINT".to_string();
        assert_eq!(
            got,
            vec![
                ("app.public.big.id".to_string(), big.clone(), Vec::new(),),
                (
                    "app.public.legacy.id".to_string(),
                    big.clone(),
                    vec![
                        "pg/app.public.legacy.id BIGINT".to_string(),
                        "pg/app.public.other.id BIGINT".to_string(),
                    ],
                ),
                (
                    "app.public.orders.user_id".to_string(),
                    big.clone(),
                    vec![
                        "pg/app.public.orders.user_id BIGINT".to_string(),
                        "pg/app.public.users.id BIGINT".to_string(),
                    ],
                ),
                (
                    "app.public.other.id".to_string(),
                    big.clone(),
                    vec![
                        "pg/app.public.other.id BIGINT".to_string(),
                        "pg/app.public.legacy.id BIGINT".to_string(),
                    ],
                ),
                (
                    "app.public.users.id".to_string(),
                    big,
                    vec![
                        "pg/app.public.users.id BIGINT".to_string(),
                        "pg/app.public.orders.user_id BIGINT".to_string(),
                    ],
                ),
            ]
        );
        // The sequence-bound column keeps its type: only its sequence widens.
        let legacy = &entries[1].widenings[0];
        assert_eq!(
            (legacy.from.as_str(), legacy.to),
            ("bigint", IntType::new(Width::Big, false))
        );
        assert!(
            entries[1].reason.starts_with("critical: 98")
                && entries[1]
                    .reason
                    .ends_with("of its sequence public.narrow_ids used"),
            "{}",
            entries[1].reason
        );
        // An integer column's own type, as the catalog writes it.
        let own = format!("of {} used", entries[4].column.column_type);
        assert!(entries[4].reason.ends_with(&own), "{}", entries[4].reason);
        // Another database's users.id is another group, and needs nothing.
        assert!(
            entries
                .iter()
                .all(|e| e.column.id.database() == Some("app"))
        );
        assert_ne!(entries[2].group, entries[1].group);
        assert_eq!(entries[1].group, entries[3].group);
    }
}
