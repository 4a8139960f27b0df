//! Dives as measuring sees them: a column's last `MAX()`, and which `MAX()` values a set of
//! columns is resolved from.

use std::collections::HashSet;

use super::{Derivation, Moment, Plan};
use crate::inventory::ColumnId;

/// A column's last dive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dive {
    /// `MAX(column)`; `None` for an empty table.
    pub value: Option<i128>,
    /// When it was read.
    pub at: Moment,
}

/// The columns whose `MAX()` the columns `ids` are resolved from (their own, or along
/// their foreign keys): what must be read on every poll for them.
pub fn dives_of(plan: &Plan, ids: &HashSet<ColumnId>) -> HashSet<ColumnId> {
    let mut out = HashSet::new();
    if ids.is_empty() {
        return out;
    }
    let planned: HashSet<&ColumnId> = plan.dives.iter().collect();
    let index = plan.index();
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
                Derivation::Auto(_) | Derivation::Sequence(_) => {}
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
