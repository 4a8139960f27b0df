//! Undeclared references: which integer columns hold another table's key though no foreign
//! key says so, guessed from names over the inventory already read (no query of its own).
//! Pure.
//!
//! A column is tried against, in order (the first that names a parent wins):
//! 1. the `[[inference.rules]]` templates, in file order (a template without `{table}` pins
//!    one name to one parent);
//! 2. the built-in rules, on the whole name, then on each role-prefixed tail
//!    (`seller_shopid` → `shopid`, `author_user_id` → `user_id`), longest first, then the same
//!    again without a role suffix (`locationid_from` → `locationid`, `account_id2` →
//!    `account_id`, `string_list_id_kid` → `string_list_id`):
//!    - the name equals the single-column primary key of another table
//!      (`listing_id` → `listings.listing_id`);
//!    - Rails: `<singular>_id` → `<plural>.id` with regular English plurals.
//!
//! A column that is its own table's primary key (not AUTO_INCREMENT) is a shared primary key
//! when the rules name a table called after the key's stem (`user_profiles.user_id` →
//! `users`, `invoice_totals.invoiceid` → `invoice`): one-to-one extension tables, inferred
//! first, so that they are known as children before anything else is tried.
//!
//! Several candidates are narrowed by, each only when it leaves at least one: the table named
//! after the key's stem (`shopid` → `shops`; an extension table is never the parent when such
//! a table is a candidate); the same schema (then the shard's other watched schemas); the one
//! whose key is not itself a reference (no declared foreign key's child, no extension table
//! inferred as one, not named as an extension such as `account_extras` beside `accounts`);
//! then an AUTO_INCREMENT key. Still more than one: not guessed, listed as [`Ambiguous`]. The
//! candidates passed over are kept as [`RunnerUp`]s, with the step that passed them over.
//! A parent that is itself a reference (declared or inferred) is followed to its root and
//! the chain is written in the evidence: the measure follows it to the root's value.
//!
//! Never inferred: an AUTO_INCREMENT column, a primary key that no stem-named table
//! extends, a declared foreign key's child, a column a `[[references]]` rule covers, and
//! counters, flags, prices ([`looks_like_a_value`]). The built-in rules only match names
//! ending in `id` or `_no` (`emp_no`, the primary-key rule only), or such a name and a role
//! suffix, so `count`, `is_active` or `price` cannot match them either.

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

/// A candidate parent passed over for the one chosen, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerUp {
    /// The candidate parent column.
    pub parent: ColumnId,
    /// The rule that named it.
    pub evidence: String,
    /// The tie-break that passed it over, e.g. `not named after the key's stem`.
    pub passed_over: &'static str,
}

/// What inference found on one shard.
#[derive(Debug, Clone, Default)]
pub struct Inference {
    /// Each inferred column's parent.
    pub parents: HashMap<ColumnId, Inferred>,
    /// Columns not guessed, sorted by column.
    pub ambiguous: Vec<Ambiguous>,
    /// The candidates passed over, in the order they were, for each inferred column that
    /// had more than one.
    pub runners_up: HashMap<ColumnId, Vec<RunnerUp>>,
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
    /// Whether the parent's table is named after the stem of the name matched
    /// (`invoiceid` → `invoice` or `invoices`), or is the parent of a literal pin.
    stem_named: bool,
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
    /// Declared foreign keys: each child's parent.
    declared: HashMap<&'a ColumnId, &'a ColumnId>,
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
        let declared = inventory
            .foreign_keys
            .iter()
            .map(|fk| (&fk.child, &fk.parent))
            .collect();
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
            declared,
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
    let excluded = |col: &IntColumn| {
        let id = &col.id;
        // The cheapest tests first.
        col.auto_increment.is_some()
            || tables.declared.contains_key(id)
            || looks_like_a_value(&id.column)
            || references
                .iter()
                .any(|r| r.matches(&id.schema, &id.table, &id.column))
    };
    // Shared primary keys first: the extension tables they find are children, which the
    // columns after them must know.
    let (keys, others): (Vec<&IntColumn>, Vec<&IntColumn>) = inventory
        .columns
        .iter()
        .filter(|c| !excluded(c))
        .partition(|c| tables.primary_key_of(&c.id));
    for (col, shared_key) in keys
        .into_iter()
        .map(|c| (c, true))
        .chain(others.into_iter().map(|c| (c, false)))
    {
        let id = &col.id;
        let mut found = candidates(id, settings, &tables, &schemas);
        if shared_key {
            // Only the table named after the key's stem: `user_profiles.user_id` extends
            // `users`, never `user_settings`.
            found.retain(|c| c.stem_named && c.parent.table != id.table);
            for c in &mut found {
                c.evidence = format!("shared primary key, {}", c.evidence);
            }
        }
        let (kept, passed_over) = narrow(id, found, &tables, &inference.parents);
        match kept.as_slice() {
            [] => {}
            [one] => {
                let evidence = match chain(&one.parent, &tables, &inference.parents) {
                    Some(chain) => format!("{}, chain: {chain}", one.evidence),
                    None => one.evidence.clone(),
                };
                inference.parents.insert(
                    id.clone(),
                    Inferred {
                        parent: one.parent.clone(),
                        evidence,
                    },
                );
                if !passed_over.is_empty() {
                    inference.runners_up.insert(id.clone(), passed_over);
                }
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

/// When `parent` is itself a reference (a declared foreign key's child, or inferred before),
/// the chain from it to its root: `order_details.order_id -> shop.orders.order_id`.
fn chain(
    parent: &ColumnId,
    tables: &Tables,
    inferred: &HashMap<ColumnId, Inferred>,
) -> Option<String> {
    let up = |c: &ColumnId| {
        tables
            .declared
            .get(c)
            .map(|p| (*p).clone())
            .or_else(|| inferred.get(c).map(|i| i.parent.clone()))
    };
    let mut next = up(parent)?;
    let mut links = vec![parent.to_string()];
    // Bounded, and a cycle of declared keys ends the walk.
    while links.len() < 8 && !links.contains(&next.to_string()) {
        links.push(next.to_string());
        match up(&next) {
            Some(p) => next = p,
            None => break,
        }
    }
    Some(links.join(" -> "))
}

/// Whether `name` ends in `id`, whatever the ASCII case.
fn ends_in_id(name: &str) -> bool {
    let name = name.as_bytes();
    name.len() >= 2 && name[name.len() - 2..].eq_ignore_ascii_case(b"id")
}

/// Whether `name` ends in `_no` (`emp_no`), whatever the ASCII case: a key word that only
/// the primary-key rule takes (no Rails form).
fn ends_in_no(name: &str) -> bool {
    let name = name.as_bytes();
    name.len() > 3 && name[name.len() - 3..].eq_ignore_ascii_case(b"_no")
}

/// Where a role suffix starts: `locationid_from` (`_from`), `account_id2` (`2`),
/// `account_id_2` (`_2`), `photo_id_large` (`_large`), when what is before it ends in `id`
/// and is longer than `id`. A word suffix is ASCII letters after the last `_`.
fn role_suffix(name: &str) -> Option<usize> {
    let b = name.as_bytes();
    let digits = b.iter().rev().take_while(|c| c.is_ascii_digit()).count();
    let cut = if digits > 0 {
        let cut = b.len() - digits;
        if cut > 0 && b[cut - 1] == b'_' {
            cut - 1
        } else {
            cut
        }
    } else {
        let underscore = name.rfind('_')?;
        let word = &b[underscore + 1..];
        if word.is_empty() || !word.iter().all(u8::is_ascii_alphabetic) {
            return None;
        }
        underscore
    };
    (cut > 2 && ends_in_id(&name[..cut])).then_some(cut)
}

/// The candidates of the first rule (templates, then built-ins on ever shorter tails, then
/// the same without a role suffix) that names any.
fn candidates(
    id: &ColumnId,
    settings: &Settings,
    tables: &Tables,
    schemas: &[String],
) -> Vec<Candidate> {
    let suffix_at = role_suffix(&id.column);
    // Most columns end in no id-like word: no rule to try, nothing to copy.
    let keyed = ends_in_id(&id.column) || ends_in_no(&id.column);
    if settings.rules.is_empty() && !keyed && suffix_at.is_none() {
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
    let forms = std::iter::once((name, "")).chain(suffix_at.map(|at| name.split_at(at)));
    for (base, suffix) in forms {
        if !base.ends_with("id") && !ends_in_no(base) {
            continue;
        }
        let shorter = base
            .match_indices('_')
            .filter(|(i, _)| *i > 0 && i + 1 < base.len())
            .map(|(i, _)| (&base[..=i], &base[i + 1..]));
        for (prefix, tail) in std::iter::once(("", base)).chain(shorter) {
            let found = built_in(id, prefix, tail, suffix, tables);
            if !found.is_empty() {
                return found;
            }
        }
    }
    Vec::new()
}

/// The built-in rules on one tail of the name (`prefix` and `suffix` are what was cut off).
fn built_in(
    id: &ColumnId,
    prefix: &str,
    tail: &str,
    suffix: &str,
    tables: &Tables,
) -> Vec<Candidate> {
    let role = || {
        let mut role = String::new();
        if !prefix.is_empty() {
            role.push_str(&format!("role prefix {prefix}, "));
        }
        if !suffix.is_empty() {
            role.push_str(&format!("role suffix {suffix}, "));
        }
        role
    };
    let stem = tail
        .strip_suffix("id")
        .or_else(|| tail.strip_suffix("_no"))
        .unwrap_or(tail)
        .trim_end_matches('_');
    let stem_named = |table: &str| {
        let table = lower(table);
        !stem.is_empty() && (table == stem || *table == plural(stem))
    };
    // A self-reference needs a role: `parent_category_id` in `categories`.
    let roled = !prefix.is_empty() || !suffix.is_empty();
    let mut out = Vec::new();
    if tail.len() > 2 {
        for key in tables.by_key.get(tail).into_iter().flatten() {
            if key != id && (key.table != id.table || roled) {
                out.push(Candidate {
                    parent: key.clone(),
                    evidence: format!("{}name equals the primary key of {}", role(), key.table),
                    stem_named: stem_named(&key.table),
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
                    stem_named: true,
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
                    // A pin names its parent: a shared primary key may take it.
                    stem_named: template.is_pin(),
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

/// Applies the tie-breaks, each only when it leaves at least one candidate; returns the
/// candidates left and those passed over, with the step that did.
fn narrow(
    id: &ColumnId,
    candidates: Vec<Candidate>,
    tables: &Tables,
    inferred: &HashMap<ColumnId, Inferred>,
) -> (Vec<Candidate>, Vec<RunnerUp>) {
    let mut passed_over = Vec::new();
    if candidates.len() < 2 {
        return (candidates, passed_over);
    }
    let mut keep = |all: Vec<Candidate>, why: &'static str, test: &dyn Fn(&Candidate) -> bool| {
        if all.len() > 1 && all.iter().any(test) {
            let (kept, dropped): (Vec<_>, Vec<_>) = all.into_iter().partition(|c| test(c));
            passed_over.extend(dropped.into_iter().map(|c| RunnerUp {
                parent: c.parent,
                evidence: c.evidence,
                passed_over: why,
            }));
            kept
        } else {
            all
        }
    };
    let candidates = keep(candidates, "not named after the key's stem", &|c| {
        c.stem_named
    });
    let candidates = keep(candidates, "in another schema", &|c| {
        c.parent.schema == id.schema
    });
    // A key that is itself a reference: a declared foreign key's child, an extension table
    // inferred as one, or one named as an extension (`account_extras` beside `accounts`).
    let tables_of: Vec<String> = candidates
        .iter()
        .map(|c| c.parent.table.to_ascii_lowercase())
        .collect();
    let not_a_reference = |c: &Candidate| {
        let table = c.parent.table.to_ascii_lowercase();
        let extension = tables_of
            .iter()
            .any(|other| *other != table && extends(&table, other));
        !tables.declared.contains_key(&c.parent) && !inferred.contains_key(&c.parent) && !extension
    };
    let candidates = keep(
        candidates,
        "its key is itself a reference",
        &not_a_reference,
    );
    let counted_here = |c: &Candidate| {
        tables
            .columns
            .get(&c.parent)
            .is_some_and(|p| p.auto_increment.is_some())
    };
    let candidates = keep(candidates, "not AUTO_INCREMENT", &counted_here);
    (candidates, passed_over)
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
