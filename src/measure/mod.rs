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
//!
//! # Layout
//! - this file: the kinds, and the plan (which columns are measured, how, and which
//!   `MAX()` values they need);
//! - `resolve`: every planned column's `current`, along foreign-key chains;
//! - `report`: the report step ([`prepare`]'s second half), and [`ColumnReport`], a measured column tied to its shard,
//!   forecast and policy (its JSON is the API's, `crate::api`);
//! - `dives`: a column's last dive, and which dives a set of columns needs;
//! - `fixture`: column reports built by hand, for tests and benches.

mod dives;
#[doc(hidden)]
pub mod fixture;
mod report;
mod resolve;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;

use crate::config::{ReferenceRule, Settings};
use crate::headroom::IntType;
use crate::inference::{Ambiguous, Inferred};
use crate::inventory::column_type::{ColumnType, column_type};
use crate::inventory::{Catalog, ColumnId, Inventory, Sequence};

pub use dives::{Dive, dives_of};
#[cfg(test)]
use report::report_dives;
pub use report::{ColumnReport, Moment, ShardResult, in_database, page_path, plan_path, report};
pub use resolve::{Measured, Unresolved, resolve};

/// How a column's current value is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    AutoIncrement,
    Reference,
    ForeignKey,
    /// An undeclared reference guessed from names ([`crate::inference`]).
    Inferred,
    /// Fed by a sequence (PostgreSQL `serial`, identity, `DEFAULT nextval(…)`): bound by
    /// the lower of its type's and its sequence's limit.
    Sequence,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::AutoIncrement,
        Kind::Reference,
        Kind::ForeignKey,
        Kind::Inferred,
        Kind::Sequence,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::AutoIncrement => "auto_increment",
            Kind::Reference => "reference",
            Kind::ForeignKey => "foreign_key",
            Kind::Inferred => "inferred",
            Kind::Sequence => "sequence",
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
                format!("unknown kind {s:?}: expected auto_increment, reference, foreign_key, inferred or sequence")
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

/// Which limit binds a sequence-fed column: its type's, or its sequence's (lower).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitedBy {
    Column,
    Sequence,
}

impl LimitedBy {
    pub const fn as_str(self) -> &'static str {
        match self {
            LimitedBy::Column => "column",
            LimitedBy::Sequence => "sequence",
        }
    }
}

#[derive(Debug, Clone)]
enum Derivation {
    Auto(i128),
    /// Fed by a sequence (shared by every column it feeds).
    Sequence(Arc<Sequence>),
    Reference {
        /// Shared by every column of the rule.
        source: Arc<str>,
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

/// A measured column as the plan holds it.
#[derive(Debug, Clone)]
struct Planned {
    id: ColumnId,
    /// As information_schema writes it, held as a report holds it.
    column_type: ColumnType,
    int_type: IntType,
}

/// Which columns are measured and which MAX values must be read for them.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    entries: Vec<(Planned, Derivation)>,
    /// Columns whose `MAX()` the poller reads; each leads a B-tree index.
    pub dives: Vec<ColumnId>,
    /// The largest value of the type of every parent of a foreign key, declared or inferred,
    /// that the inventory lists: for parents that are not measured.
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

    /// Where each measured column stands in `entries`.
    fn index(&self) -> HashMap<&ColumnId, usize> {
        self.entries
            .iter()
            .enumerate()
            .map(|(i, (c, _))| (&c.id, i))
            .collect()
    }
}

/// A shard's catalog made ready to measure: its undeclared references guessed, the plan of
/// what is measured and how, and what the catalog says of out-of-range values.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub plan: Plan,
    /// Columns with more than one equally good guessed parent: listed, never guessed.
    pub ambiguous: Vec<Ambiguous>,
    /// The server's mode as it names it (`@@GLOBAL.sql_mode`), for display.
    pub mode: Option<String>,
    /// Whether an out-of-range value is refused rather than clamped (strict mode).
    pub strict: bool,
    /// The databases' wraparound ages (PostgreSQL); empty on MySQL.
    pub ages: Vec<crate::inventory::DatabaseAges>,
    /// What the catalog could not read that is not a column (see [`Catalog::unread`]).
    pub unread: Vec<String>,
}

/// The first half of a shard's pure step: guesses undeclared references
/// ([`crate::inference::infer`]) and plans the measurement, which says which `MAX()` values
/// the poll must read before [`report`] (the second half) can run.
/// Each of the catalog's inventories is guessed and planned on its own (a PostgreSQL
/// database cannot reference another's tables), and the plans joined.
pub fn prepare(catalog: &Catalog, settings: &Settings) -> Prepared {
    let mut plan = Plan::default();
    let mut ambiguous = Vec::new();
    for inventory in &catalog.inventories {
        let guessed = crate::inference::infer(inventory, &settings.inference, &settings.references);
        let part = plan_with(inventory, &settings.references, &guessed.parents);
        if plan.is_empty() && plan.dives.is_empty() && plan.types.is_empty() {
            plan = part;
        } else {
            plan.entries.extend(part.entries);
            plan.dives.extend(part.dives);
            plan.types.extend(part.types);
        }
        ambiguous.extend(guessed.ambiguous);
    }
    Prepared {
        plan,
        ambiguous,
        mode: catalog.mode.clone(),
        strict: catalog.strict,
        ages: catalog.ages.clone(),
        unread: catalog.unread.clone(),
    }
}

/// Whether a planned column's `current` is told by its derivation without a dive of its
/// own: a counter, a source, a readable sequence, or a parent told (measured) or read
/// (leading an index). A column along a cycle of foreign keys is not.
struct Told<'a, 'b> {
    entries: &'a [(Planned, Derivation)],
    position: &'b HashMap<&'a ColumnId, usize>,
    leading: &'a HashSet<ColumnId>,
    /// Entry `i`'s answer once known (`Some(false)` too while it is being decided).
    known: &'b mut [Option<bool>],
}

impl Told<'_, '_> {
    fn told(&mut self, i: usize) -> bool {
        if let Some(known) = self.known[i] {
            return known;
        }
        self.known[i] = Some(false);
        let told = match &self.entries[i].1 {
            Derivation::Auto(_) | Derivation::Reference { .. } => true,
            Derivation::Sequence(sequence) => sequence.handed_out.is_ok(),
            Derivation::ForeignKey { parent } | Derivation::Inferred { parent, .. } => {
                match self.position.get(parent) {
                    Some(&p) => self.told(p),
                    None => self.leading.contains(parent),
                }
            }
        };
        self.known[i] = Some(told);
        told
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
    // Each rule's source named once, shared by the columns it covers.
    let sources: Vec<Arc<str>> = rules.iter().map(|r| Arc::from(r.source.as_str())).collect();
    let mut entries = Vec::new();
    for col in &inventory.columns {
        let id = &col.id;
        let derivation = if let Some(next) = col.auto_increment {
            Derivation::Auto(next)
        } else if let Some(sequence) = &col.sequence {
            Derivation::Sequence(Arc::clone(sequence))
        } else if let Some(parent) = parents.get(id) {
            Derivation::ForeignKey {
                parent: (*parent).clone(),
            }
        } else if let Some(rule) = rules
            .iter()
            .position(|r| r.matches(&id.schema, &id.table, &id.column))
        {
            Derivation::Reference {
                source: Arc::clone(&sources[rule]),
            }
        } else if let Some(guess) = inferred.get(id) {
            Derivation::Inferred {
                parent: guess.parent.clone(),
                evidence: guess.evidence.clone(),
            }
        } else {
            continue;
        };
        let planned = Planned {
            id: id.clone(),
            column_type: column_type(&col.column_type),
            int_type: col.int_type,
        };
        entries.push((planned, derivation));
    }

    // Parents, measured or not: only columns with a parent look here.
    let wanted: HashSet<&ColumnId> = entries.iter().filter_map(|(_, d)| d.parent()).collect();
    let measured: HashSet<&ColumnId> = if wanted.is_empty() {
        HashSet::new()
    } else {
        entries.iter().map(|(c, _)| &c.id).collect()
    };
    let position: HashMap<&ColumnId, usize> = if wanted.is_empty() {
        HashMap::new()
    } else {
        entries
            .iter()
            .enumerate()
            .map(|(i, (c, _))| (&c.id, i))
            .collect()
    };
    let mut known = vec![None; entries.len()];
    let mut told = Told {
        entries: &entries,
        position: &position,
        leading: &inventory.leading,
        known: &mut known,
    };
    let mut dives = Vec::new();
    let mut seen = HashSet::new();
    for (col, derivation) in &entries {
        let dive = match (derivation, derivation.parent()) {
            (Derivation::Auto(_) | Derivation::Sequence(_), _) => None,
            // A measured parent that nothing tells (an unreadable sequence at the root of
            // its chain) leaves its child to its own MAX().
            (_, Some(parent)) if measured.contains(parent) => {
                let known = position.get(parent).is_some_and(|&p| told.told(p));
                (!known).then_some(&col.id)
            }
            (_, Some(parent)) if inventory.leading.contains(parent) => Some(parent),
            _ => Some(&col.id),
        };
        if let Some(id) = dive
            && inventory.leading.contains(id)
            && seen.insert(id)
        {
            dives.push(id.clone());
        }
    }
    let types = inventory
        .columns
        .iter()
        .filter(|c| wanted.contains(&c.id))
        .map(|c| (c.id.clone(), c.int_type.max()))
        .collect();
    Plan {
        entries,
        dives,
        types,
    }
}
