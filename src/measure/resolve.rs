//! Resolution: every planned column's `current`, from the `MAX()` values read and the
//! sources' latest values, following foreign-key chains (memoised, cycles cut), and why a
//! column could not be resolved.

use std::collections::{HashMap, HashSet};

use super::{Derivation, Kind, LimitedBy, Moment, Plan, SourceValue};
use crate::headroom::{Headroom, IntType};
use crate::inventory::ColumnId;
use crate::inventory::column_type::ColumnType;

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
    /// For `sequence`: which limit binds, the type's or the sequence's.
    pub limited_by: Option<LimitedBy>,
    /// For `sequence`: the sequence starts over when it runs out (`CYCLE`).
    pub cycle: bool,
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
    let (measured, unresolved) = resolve_with(plan, &DiveValue::read_now(dives), sources);
    (measured.into_iter().map(|(m, _)| m).collect(), unresolved)
}

/// A `MAX()` value as resolution uses it.
#[derive(Debug, Clone, Copy)]
pub(super) struct DiveValue {
    /// `None` for an empty table.
    pub(super) max: Option<i128>,
    /// When it was read, if at an earlier poll than this one.
    pub(super) held: Option<Moment>,
}

impl DiveValue {
    /// Each column's `MAX()` in `dives` (`None` for an empty table), all read at this poll.
    pub(super) fn read_now(
        dives: &HashMap<ColumnId, Option<i128>>,
    ) -> impl Fn(&ColumnId) -> Option<DiveValue> + '_ {
        |id| {
            dives.get(id).map(|max| DiveValue {
                max: *max,
                held: None,
            })
        }
    }
}

/// As [`resolve`], with each column's `MAX()` from `dive`, and, beside each measured column,
/// when its `current` was read if that was at an earlier poll: when it is a `MAX()` held from
/// an earlier dive (its own, or its parent's).
pub(super) fn resolve_with(
    plan: &Plan,
    dive: &dyn Fn(&ColumnId) -> Option<DiveValue>,
    sources: &HashMap<String, SourceValue>,
) -> (Vec<(Measured, Option<Moment>)>, Vec<Unresolved>) {
    // Only a column with a parent looks a column up in it: none, none to build.
    let index = if plan.entries.iter().any(|(_, d)| d.parent().is_some()) {
        plan.index()
    } else {
        HashMap::new()
    };
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
        let (max, limited_by, cycle, sequence_limit) = match derivation {
            Derivation::Sequence(sequence) => {
                let (max, by, limit) = sequence_bound(col.int_type, sequence);
                (max, Some(by), sequence.cycle, Some(limit))
            }
            _ => (child_max(col.int_type, value.descending), None, false, None),
        };
        let evidence = match derivation {
            Derivation::Inferred { evidence, .. } => Some(evidence.clone()),
            _ => None,
        };
        let (kind, source, origin_max) = match derivation {
            Derivation::Auto(_) => (Kind::AutoIncrement, None, None),
            Derivation::Sequence(sequence) => (
                Kind::Sequence,
                Some(sequence.name.to_string()),
                sequence_limit,
            ),
            Derivation::Reference { source } => (
                Kind::Reference,
                Some(source.to_string()),
                sources.get(source.as_ref()).map(|s| s.max),
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
            column_type: col.column_type.clone(),
            int_type: col.int_type,
            kind,
            source,
            headroom: Headroom::new(value.current, max),
            type_mismatch: origin_max.is_some_and(|origin| max < origin),
            feeder_max: origin_max,
            evidence,
            limited_by,
            cycle,
        };
        measured.push((m, value.held));
    }
    (measured, unresolved)
}

fn reason(derivation: &Derivation, sources: &HashMap<String, SourceValue>) -> String {
    match derivation {
        Derivation::Reference { source } if !sources.contains_key(source.as_ref()) => {
            format!("source {source} has not been read yet and the column leads no index")
        }
        Derivation::ForeignKey { parent } | Derivation::Inferred { parent, .. } => {
            format!("parent {parent} has no known value and neither column leads an index")
        }
        Derivation::Sequence(sequence) => match &sequence.handed_out {
            Err(why) => format!("sequence {}: {why}", sequence.name),
            Ok(_) => "no value could be read".to_string(),
        },
        _ => "no value could be read".to_string(),
    }
}

/// A sequence-fed column's maximum, counted in the sequence's direction, which limit binds
/// it, and the sequence's own limit (its feeder's maximum, for `type_mismatch`): the
/// column's type ends at its maximum going up and one past it going down (a signed type's
/// minimum is `-max - 1`); the lower binds, the type when both are equal. A limit below
/// zero (a sequence confined to values it cannot count towards) is zero.
fn sequence_bound(
    int_type: IntType,
    sequence: &crate::inventory::Sequence,
) -> (u64, LimitedBy, u64) {
    let type_max = i128::from(int_type.max());
    let type_limit = if sequence.descending {
        if int_type.unsigned { 0 } else { type_max + 1 }
    } else {
        type_max
    };
    let clamp = |v: i128| u64::try_from(v.max(0)).unwrap_or(u64::MAX);
    let limit = clamp(sequence.limit);
    if sequence.limit < type_limit {
        (limit, LimitedBy::Sequence, limit)
    } else {
        (clamp(type_limit), LimitedBy::Column, limit)
    }
}

/// The maximum of a column that holds its parent's values: its type's, counted in the
/// direction its root's sequence hands them out (one more going down, for a signed type,
/// as [`sequence_bound`] counts the sequence's own column).
fn child_max(int_type: IntType, descending: bool) -> u64 {
    if descending && !int_type.unsigned {
        int_type.max() + 1
    } else {
        int_type.max()
    }
}

/// A column's current value, and when it was read if at an earlier poll.
#[derive(Debug, Clone, Copy)]
struct Value {
    current: i128,
    held: Option<Moment>,
    /// Counted downwards: handed out by a descending sequence, at the root of a chain.
    descending: bool,
}

impl Value {
    fn of(dive: DiveValue) -> Value {
        Value {
            current: dive.max.unwrap_or(0),
            held: dive.held,
            descending: false,
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
                descending: false,
            }),
            Derivation::Sequence(sequence) => sequence.handed_out.as_ref().ok().map(|n| Value {
                current: *n,
                held: None,
                descending: sequence.descending,
            }),
            Derivation::Reference { source } => {
                let from_source = self.sources.get(source.as_ref()).map(|s| Value {
                    current: s.current,
                    held: None,
                    descending: false,
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
