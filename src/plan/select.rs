//! What a plan widens, and to what: every column at warning or worse or narrower than what
//! feeds it, its group (see [`super::related`]) and the type each member takes
//! ([`super::rule::holding_in`], among its engine's types), in the order the plan lists
//! them. Pure.
//!
//! A PostgreSQL column bound by its sequence (`limited_by = sequence`) is widened even
//! when its own type already holds what the group needs: its sequence widens (the engine
//! writes `ALTER SEQUENCE`), so its widening's `from` and `to` may be the same type.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Entry, Widening, related, rule};
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
    let shards: Vec<&[ColumnReport]> = snapshot
        .shards
        .iter()
        .map(|s| s.columns.as_slice())
        .collect();
    let maxima: HashMap<(usize, String), u64> = shards
        .iter()
        .enumerate()
        .flat_map(|(s, cols)| cols.iter().map(move |c| ((s, c.name()), c.max)))
        .collect();
    let mut entries = Vec::new();
    for (index, group) in related::groups(&shards).into_iter().enumerate() {
        let members: Vec<&ColumnReport> = group.iter().map(|&(s, c)| &shards[s][c]).collect();
        let need = related::need(
            &group
                .iter()
                .map(|&(s, c)| (&shards[s][c], origin(snapshot, &maxima, s, &shards[s][c])))
                .collect::<Vec<_>>(),
        );
        let widenings: Arc<[Widening]> = members
            .iter()
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
        for r in &members {
            let wanted = r.status >= Status::Warning || r.type_mismatch;
            if !wanted || globs.is_some_and(|g| !g.matches(&r.id.schema, &r.id.table, &r.id.column))
            {
                continue;
            }
            entries.push(Entry {
                column: r,
                target: rule::holding_in(rule::Types::of(r), r.int_type, need),
                reason: reason(r),
                widenings: Arc::clone(&widenings),
                group: index,
            });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headroom::{IntType, Width};
    use crate::plan::fixtures::{settings, snapshot};

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
