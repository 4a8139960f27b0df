//! Undeclared references: which integer columns hold another table's key though no foreign
//! key says so, guessed from names over the inventory already read (no query of its own).
//! Pure.
//!
//! A column is tried against, in order (the first that names a parent wins):
//! 1. the `[[inference.rules]]` templates, in file order;
//! 2. the built-in rules, on the whole name and then on each role-prefixed tail
//!    (`seller_shopid` → `shopid`, `author_user_id` → `user_id`), longest first:
//!    - the name equals the single-column primary key of another table
//!      (`listing_id` → `listings.listing_id`);
//!    - Rails: `<singular>_id` → `<plural>.id` with regular English plurals.
//!
//! Several candidates are narrowed by: same schema first (then the shard's other watched
//! schemas); the table named after the key's stem (`shopid` → `shops`); the one whose key
//! is not itself a reference (no declared foreign key's child, not the key of an extension
//! table such as `account_extras` beside `accounts`); then an AUTO_INCREMENT key.
//! Still more than one: not guessed, listed as [`Ambiguous`].
//!
//! Never inferred: a column that is its own table's primary key or AUTO_INCREMENT column,
//! a declared foreign key's child, a column a `[[references]]` rule covers, and counters,
//! flags, prices ([`looks_like_a_value`]). The built-in rules only match names ending in an
//! id-like word, so `count`, `is_active` or `price` cannot match them either.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::config::ReferenceRule;
use crate::inventory::{ColumnId, IntColumn, Inventory, Name, NameRef};

use crate::config::template::{Piece, pieces};
pub use crate::config::template::{Settings, Template};

/// A column's guessed parent and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inferred {
    /// The parent column.
    pub parent: ColumnId,
    /// Which rule matched, e.g. `name equals the primary key of shops`.
    pub evidence: String,
}

/// A column with more than one equally good parent: not guessed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ambiguous {
    /// `schema.table.column`.
    pub column: String,
    /// Every candidate parent, `schema.table.column`, sorted.
    pub candidates: Vec<String>,
}

/// What inference found on one shard.
#[derive(Debug, Clone, Default)]
pub struct Inference {
    /// Each inferred column's parent.
    pub parents: HashMap<ColumnId, Inferred>,
    /// Columns not guessed, sorted by column.
    pub ambiguous: Vec<Ambiguous>,
}

/// Names of counters, flags, amounts and prices: never a reference, whatever a rule says.
pub fn looks_like_a_value(name: &str) -> bool {
    // Compared whatever the ASCII case, without a lower-case copy: every column of every
    // poll is asked.
    let name = name.as_bytes();
    let starts =
        |p: &str| name.len() >= p.len() && name[..p.len()].eq_ignore_ascii_case(p.as_bytes());
    let ends = |s: &str| {
        name.len() >= s.len() && name[name.len() - s.len()..].eq_ignore_ascii_case(s.as_bytes())
    };
    ["is_", "has_", "can_", "num_", "n_"]
        .iter()
        .any(|p| starts(p))
        || [
            "count", "price", "amount", "total", "qty", "quantity", "flag", "flags", "cents",
            "size", "bytes", "version",
        ]
        .iter()
        .any(|s| ends(s) && (name.len() == s.len() || name[name.len() - s.len() - 1] == b'_'))
}

/// `text` in ASCII lower case, copied only when it has an upper-case letter.
fn lower(text: &str) -> Cow<'_, str> {
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(text.to_ascii_lowercase())
    } else {
        Cow::Borrowed(text)
    }
}

/// Regular English plural of a lower-case singular noun.
pub fn plural(singular: &str) -> String {
    let consonant_y = singular.len() >= 2
        && singular.ends_with('y')
        && !matches!(
            singular.as_bytes()[singular.len() - 2],
            b'a' | b'e' | b'i' | b'o' | b'u'
        );
    if consonant_y {
        format!("{}ies", &singular[..singular.len() - 1])
    } else if ["s", "x", "z", "ch", "sh"]
        .iter()
        .any(|e| singular.ends_with(e))
    {
        format!("{singular}es")
    } else {
        format!("{singular}s")
    }
}

/// One candidate parent and the rule that named it.
#[derive(Debug, Clone)]
struct Candidate {
    parent: ColumnId,
    evidence: String,
}

/// What the inventory offers as parents. Names are held as the inventory holds them when
/// they are already in lower case, copied otherwise.
struct Tables<'a> {
    /// Integer columns by id.
    columns: HashMap<&'a ColumnId, &'a IntColumn>,
    /// Single-column integer primary keys by lower-case key name.
    by_key: HashMap<Cow<'a, str>, Vec<ColumnId>>,
    /// Tables with an integer primary key by lower-case schema, then lower-case table.
    by_table: HashMap<Cow<'a, str>, HashMap<Cow<'a, str>, ColumnId>>,
    /// The same keys by lower-case table name alone, over every schema.
    by_table_name: HashMap<Cow<'a, str>, Vec<ColumnId>>,
    /// The keys of `by_table`: a column is its table's key when it is one of them.
    keys: HashSet<ColumnId>,
    /// Integer columns by lower-case `(schema, table, column)`.
    by_name: HashMap<(String, String, String), &'a ColumnId>,
    /// Declared foreign keys' children.
    children: HashSet<&'a ColumnId>,
}

impl<'a> Tables<'a> {
    /// `by_name` is filled only when `templates` (the rules need it).
    fn new(inventory: &'a Inventory, templates: bool) -> Tables<'a> {
        let columns: HashMap<&ColumnId, &IntColumn> =
            inventory.columns.iter().map(|c| (&c.id, c)).collect();
        let mut by_key: HashMap<Cow<str>, Vec<ColumnId>> = HashMap::new();
        let mut by_table: HashMap<Cow<str>, HashMap<Cow<str>, ColumnId>> = HashMap::new();
        let mut by_table_name: HashMap<Cow<str>, Vec<ColumnId>> = HashMap::new();
        let mut keys: Vec<_> = inventory.primary_keys.iter().collect();
        keys.sort();
        for ((schema, table), column) in keys {
            // The inventory's own id of the key, when it is an integer column.
            let key = NameRef::new(schema, table, column);
            let Some((id, _)) = columns.get_key_value(&key as &dyn Name) else {
                continue;
            };
            let id = (*id).clone();
            by_key.entry(lower(column)).or_default().push(id.clone());
            by_table_name
                .entry(lower(table))
                .or_default()
                .push(id.clone());
            by_table
                .entry(lower(schema))
                .or_default()
                .insert(lower(table), id);
        }
        let by_name = if templates {
            columns.keys().map(|c| (lowered(c), *c)).collect()
        } else {
            HashMap::new()
        };
        let children = inventory.foreign_keys.iter().map(|fk| &fk.child).collect();
        let keys = by_table
            .values()
            .flat_map(|t| t.values().cloned())
            .collect();
        Tables {
            columns,
            by_key,
            by_table,
            by_table_name,
            keys,
            by_name,
            children,
        }
    }

    /// The integer column `schema.table.column`, whatever the ASCII case.
    fn column(&self, schema: &str, table: &str, column: &str) -> Option<&'a ColumnId> {
        let key = (
            schema.to_ascii_lowercase(),
            table.to_ascii_lowercase(),
            column.to_ascii_lowercase(),
        );
        self.by_name.get(&key).copied()
    }

    /// Whether `id` is the key `by_table` holds for its table. Each key is held under its
    /// own table's name, so that is whether it is among the keys held (one hash of a hash).
    fn primary_key_of(&self, id: &ColumnId) -> bool {
        self.keys.contains(id)
    }

    fn schemas(&self) -> Vec<String> {
        let mut all: Vec<String> = self.by_name.keys().map(|(s, _, _)| s.clone()).collect();
        all.extend(self.by_table.keys().map(|s| s.to_string()));
        all.sort();
        all.dedup();
        all
    }
}

/// Guesses the parents of the shard's undeclared references.
pub fn infer(
    inventory: &Inventory,
    settings: &Settings,
    references: &[ReferenceRule],
) -> Inference {
    let mut inference = Inference::default();
    if !settings.enabled {
        return inference;
    }
    let tables = Tables::new(inventory, !settings.rules.is_empty());
    let schemas = tables.schemas();
    for col in &inventory.columns {
        let id = &col.id;
        // The cheapest tests first.
        let excluded = col.auto_increment.is_some()
            || tables.children.contains(id)
            || looks_like_a_value(&id.column)
            || tables.primary_key_of(id)
            || references
                .iter()
                .any(|r| r.matches(&id.schema, &id.table, &id.column));
        if excluded {
            continue;
        }
        let candidates = candidates(id, settings, &tables, &schemas);
        match narrow(id, candidates, &tables).as_slice() {
            [] => {}
            [one] => {
                inference.parents.insert(
                    id.clone(),
                    Inferred {
                        parent: one.parent.clone(),
                        evidence: one.evidence.clone(),
                    },
                );
            }
            several => {
                let mut names: Vec<String> = several.iter().map(|c| c.parent.to_string()).collect();
                names.sort();
                inference.ambiguous.push(Ambiguous {
                    column: id.to_string(),
                    candidates: names,
                });
            }
        }
    }
    inference.ambiguous.sort_by(|a, b| a.column.cmp(&b.column));
    inference
}

/// The candidates of the first rule (templates, then built-ins on ever shorter tails) that
/// names any.
fn candidates(
    id: &ColumnId,
    settings: &Settings,
    tables: &Tables,
    schemas: &[String],
) -> Vec<Candidate> {
    let ends_in_id = |name: &str| {
        let name = name.as_bytes();
        name.len() >= 2 && name[name.len() - 2..].eq_ignore_ascii_case(b"id")
    };
    // Most columns end in no id-like word: no rule to try, nothing to copy.
    if settings.rules.is_empty() && !ends_in_id(&id.column) {
        return Vec::new();
    }
    let name = lower(&id.column);
    let name = name.as_ref();
    for (i, template) in settings.rules.iter().enumerate() {
        let found = by_template(id, name, i, template, tables, schemas);
        if !found.is_empty() {
            return found;
        }
    }
    if !name.ends_with("id") {
        return Vec::new();
    }
    let shorter = name
        .match_indices('_')
        .filter(|(i, _)| *i > 0 && i + 1 < name.len())
        .map(|(i, _)| (&name[..=i], &name[i + 1..]));
    for (prefix, tail) in std::iter::once(("", name)).chain(shorter) {
        let found = built_in(id, prefix, tail, tables);
        if !found.is_empty() {
            return found;
        }
    }
    Vec::new()
}

/// The built-in rules on one tail of the name (`prefix` is what was cut off).
fn built_in(id: &ColumnId, prefix: &str, tail: &str, tables: &Tables) -> Vec<Candidate> {
    let role = || {
        if prefix.is_empty() {
            String::new()
        } else {
            format!("role prefix {prefix}, ")
        }
    };
    let mut out = Vec::new();
    if tail.len() > 2 {
        for key in tables.by_key.get(tail).into_iter().flatten() {
            if key != id && (key.table != id.table || !prefix.is_empty()) {
                out.push(Candidate {
                    parent: key.clone(),
                    evidence: format!("{}name equals the primary key of {}", role(), key.table),
                });
            }
        }
    }
    if let Some(singular) = tail.strip_suffix("_id")
        && !singular.is_empty()
    {
        let plural = plural(singular);
        for key in tables
            .by_table_name
            .get(plural.as_str())
            .into_iter()
            .flatten()
        {
            let already = out.iter().any(|c| &c.parent == key);
            if key.column.eq_ignore_ascii_case("id") && key != id && !already {
                out.push(Candidate {
                    parent: key.clone(),
                    evidence: format!("{}rails: {tail} -> {}.id", role(), key.table),
                });
            }
        }
    }
    out
}

/// The candidates template `i` names for `id` (lower-case `name`).
fn by_template(
    id: &ColumnId,
    name: &str,
    i: usize,
    template: &Template,
    tables: &Tables,
    schemas: &[String],
) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    for (prefix, table) in template.bind(name) {
        let fill = |part: &str| {
            let mut text = String::new();
            for piece in pieces(part).unwrap_or_default() {
                match piece {
                    Piece::Literal(l) => text.push_str(&l),
                    Piece::Table => text.push_str(&table),
                    Piece::Prefix => text.push_str(prefix.as_deref().unwrap_or("")),
                }
            }
            text
        };
        let parts: Vec<String> = template.parent_parts.iter().map(|p| fill(p)).collect();
        let (in_schemas, table_name, column) = match parts.as_slice() {
            [t, c] => (schemas.to_vec(), t, c),
            [s, t, c] => (vec![s.clone()], t, c),
            _ => continue,
        };
        for schema in in_schemas {
            if let Some(parent) = tables.column(&schema, table_name, column)
                && parent != id
                && !out.iter().any(|c| &c.parent == parent)
            {
                out.push(Candidate {
                    parent: (*parent).clone(),
                    evidence: format!("rule {i}: {}", template.column),
                });
            }
        }
    }
    out
}

fn lowered(id: &ColumnId) -> (String, String, String) {
    (
        id.schema.to_ascii_lowercase(),
        id.table.to_ascii_lowercase(),
        id.column.to_ascii_lowercase(),
    )
}

/// Applies the tie-breaks, each only when it leaves at least one candidate.
fn narrow(id: &ColumnId, candidates: Vec<Candidate>, tables: &Tables) -> Vec<Candidate> {
    if candidates.len() < 2 {
        return candidates;
    }
    let keep = |all: Vec<Candidate>, test: &dyn Fn(&Candidate) -> bool| {
        if all.iter().any(test) {
            all.into_iter().filter(|c| test(c)).collect()
        } else {
            all
        }
    };
    let same_schema = |c: &Candidate| c.parent.schema == id.schema;
    let candidates = keep(candidates, &same_schema);
    let named_after_stem = |c: &Candidate| {
        let key = c.parent.column.to_ascii_lowercase();
        let stem = key.trim_end_matches("id").trim_end_matches('_');
        let table = c.parent.table.to_ascii_lowercase();
        !stem.is_empty() && (table == stem || table == plural(stem))
    };
    let candidates = keep(candidates, &named_after_stem);
    // A key that is itself a reference: a declared foreign key's child, or the key of an
    // extension table (`account_extras` beside `accounts`).
    let tables_of: Vec<String> = candidates
        .iter()
        .map(|c| c.parent.table.to_ascii_lowercase())
        .collect();
    let not_a_reference = |c: &Candidate| {
        let table = c.parent.table.to_ascii_lowercase();
        let extension = tables_of
            .iter()
            .any(|other| *other != table && extends(&table, other));
        !tables.children.contains(&c.parent) && !extension
    };
    let candidates = keep(candidates, &not_a_reference);
    let counted_here = |c: &Candidate| {
        tables
            .columns
            .get(&c.parent)
            .is_some_and(|p| p.auto_increment.is_some())
    };
    keep(candidates, &counted_here)
}

/// Whether `table` is named as an extension of `other` (both lower case):
/// `shop_settings` of `shops` or `shop`, `category_extras` of `categories`.
fn extends(table: &str, other: &str) -> bool {
    let mut stems = vec![other.to_string()];
    if let Some(s) = other.strip_suffix("ies") {
        stems.push(format!("{s}y"));
    }
    if let Some(s) = other.strip_suffix("es") {
        stems.push(s.to_string());
    }
    if let Some(s) = other.strip_suffix('s') {
        stems.push(s.to_string());
    }
    stems.iter().any(|stem| {
        !stem.is_empty()
            && table
                .strip_prefix(stem.as_str())
                .is_some_and(|rest| rest.starts_with('_'))
    })
}

#[cfg(test)]
mod tests;
