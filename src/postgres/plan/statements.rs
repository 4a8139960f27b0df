//! A widening's statements as PostgreSQL takes them: `ALTER TABLE … ALTER COLUMN … TYPE`
//! for the column, `ALTER SEQUENCE … AS …` for a sequence that feeds it and is narrower than
//! its new type, and the online steps ([`super::online`]) instead of gh-ost. Pure: names
//! quoted by [`ident`]/[`qualified`], a text from the server (a sequence's name) entering
//! a statement only as a string literal ([`literal`]), each statement built in one pass.
//!
//! # Foreign keys
//! PostgreSQL keeps a foreign key through a type change of either of its columns: it
//! accepts an `integer` child of a `bigint` parent (both are in the B-tree operator family
//! `integer_ops`), and rebuilds and checks the key again after `ALTER COLUMN … TYPE`. So
//! no key is dropped and added around a widening, and a group's columns may widen one
//! statement at a time, each in its own transaction, every step leaving a consistent
//! database.
//!
//! # Sequences
//! `ALTER SEQUENCE … AS bigint` raises a sequence's `MAXVALUE` (its `MINVALUE`, for a
//! descending one) with its type when it was the old type's own bound; a bound set by hand
//! stays, and the note says so. An identity column's sequence changes type with the
//! column, so only the `ALTER TABLE` is written for it.

use crate::headroom::{IntType, Width};
use crate::plan::found::{Definition, ForeignKey, SequenceDefinition, Widening, Written};
use crate::postgres::query::{ident, qualified};

/// The PostgreSQL name of an integer type (every PostgreSQL integer is signed).
pub fn type_name(t: IntType) -> &'static str {
    match t.width {
        Width::Tiny | Width::Small => "smallint",
        Width::Medium | Width::Int => "integer",
        Width::Big => "bigint",
    }
}

/// The width of a type as `format_type` names it; `None` for anything else.
pub(super) fn width_of(name: &str) -> Option<Width> {
    match name {
        "smallint" => Some(Width::Small),
        "integer" => Some(Width::Int),
        "bigint" => Some(Width::Big),
        _ => None,
    }
}

/// The bounds of an integer type of `width`.
fn bounds(width: Width) -> (i64, i64) {
    match width {
        Width::Tiny | Width::Small => (i16::MIN.into(), i16::MAX.into()),
        Width::Medium | Width::Int => (i32::MIN.into(), i32::MAX.into()),
        Width::Big => (i64::MIN, i64::MAX),
    }
}

/// A string literal that means `text` whatever `standard_conforming_strings` says: `E'…'`,
/// quotes doubled and backslashes escaped.
pub fn literal(text: &str) -> String {
    format!("E'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// `ALTER TABLE … ALTER COLUMN … TYPE …`.
pub fn alter_column(schema: &str, table: &str, column: &str, to: IntType) -> String {
    format!(
        "ALTER TABLE {} ALTER COLUMN {} TYPE {}",
        qualified(schema, table),
        ident(column),
        type_name(to)
    )
}

/// `ALTER SEQUENCE … AS …`.
pub fn alter_sequence(sequence: &SequenceDefinition, to: IntType) -> String {
    format!(
        "ALTER SEQUENCE {} AS {}",
        qualified(&sequence.schema, &sequence.name),
        type_name(to)
    )
}

/// The bound set by hand that still binds a column of type `to` once `sequence` has
/// widened with it: `None` when its bound is its type's own, which moves with the type.
fn bound_kept(sequence: &SequenceDefinition, to: IntType) -> Option<i64> {
    let old = width_of(&sequence.data_type)?;
    let (old_min, old_max) = bounds(old);
    let (new_min, new_max) = bounds(old.max(to.width));
    let (column_min, column_max) = bounds(to.width);
    if sequence.increment < 0 {
        let kept = if sequence.min_value == old_min {
            new_min
        } else {
            sequence.min_value
        };
        (kept > column_min).then_some(kept)
    } else {
        let kept = if sequence.max_value == old_max {
            new_max
        } else {
            sequence.max_value
        };
        (kept < column_max).then_some(kept)
    }
}

/// The referential actions PostgreSQL writes (`confupdtype`, `confdeltype` as words);
/// anything else read is written as `NO ACTION`, the default.
fn action(rule: &str) -> &'static str {
    match rule.trim().to_ascii_uppercase().as_str() {
        "CASCADE" => "CASCADE",
        "SET NULL" => "SET NULL",
        "SET DEFAULT" => "SET DEFAULT",
        "RESTRICT" => "RESTRICT",
        _ => "NO ACTION",
    }
}

fn idents(names: &[String]) -> String {
    names
        .iter()
        .map(|n| ident(n))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `ALTER TABLE … ADD CONSTRAINT … FOREIGN KEY … REFERENCES …`, whole: its match type,
/// actions and deferrability as read, `NOT VALID` when `not_valid` (checked later by
/// `VALIDATE CONSTRAINT`, without the long lock).
pub fn add_foreign_key(fk: &ForeignKey, not_valid: bool) -> String {
    let matching = match fk.match_type.as_deref() {
        Some("FULL") => " MATCH FULL",
        _ => "",
    };
    let deferrable = match fk.deferrable.as_deref() {
        Some("DEFERRABLE INITIALLY DEFERRED") => " DEFERRABLE INITIALLY DEFERRED",
        Some(_) => " DEFERRABLE",
        None => "",
    };
    format!(
        "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}){matching} ON UPDATE {} ON DELETE {}{deferrable}{}",
        qualified(&fk.schema, &fk.table),
        ident(&fk.name),
        idents(&fk.columns),
        qualified(&fk.parent_schema, &fk.parent_table),
        idents(&fk.parent_columns),
        action(&fk.on_update),
        action(&fk.on_delete),
        if not_valid { " NOT VALID" } else { "" },
    )
}

/// The widening written out: the `ALTER TABLE` (unless the column's type already holds),
/// the `ALTER SEQUENCE` its sequence needs, the notes, and the online steps. No statement
/// when neither changes anything (a sequence bound set by hand: the note says so).
pub fn widen(w: &Widening, definition: &Definition) -> Written {
    let (schema, table, column) = (&w.id.schema, &w.id.table, &w.id.column);
    let retyped = definition.column_type != type_name(w.to);
    let mut notes = Vec::new();
    let mut sequence_statement = None;
    if let Some(sequence) = &definition.sequence {
        let narrower = width_of(&sequence.data_type).is_none_or(|width| width < w.to.width);
        // An identity column's sequence takes the column's new type with it.
        let follows = sequence.identity && retyped;
        if narrower && !follows {
            sequence_statement = Some(alter_sequence(sequence, w.to));
        }
        if let Some(kept) = bound_kept(sequence, w.to) {
            let (word, clause) = if sequence.increment < 0 {
                ("MINVALUE", "NO MINVALUE")
            } else {
                ("MAXVALUE", "NO MAXVALUE")
            };
            notes.push(format!(
                "its sequence {}.{} keeps its {word} {kept}, set by hand, which still binds \
                 it: raise it (ALTER SEQUENCE … {clause}) for the column to use its new type",
                sequence.schema, sequence.name
            ));
        }
    }
    let (statement, then, rebuilds) = match (retyped, sequence_statement) {
        (true, sequence) => (
            Some(alter_column(schema, table, column, w.to)),
            sequence.into_iter().collect(),
            true,
        ),
        (false, Some(sequence)) => {
            notes.insert(
                0,
                "its type holds: only its sequence widens, at once, without rewriting the table"
                    .to_string(),
            );
            (Some(sequence), Vec::new(), false)
        }
        (false, None) => (None, Vec::new(), false),
    };
    if rebuilds {
        notes.insert(
            0,
            "rewrites the whole table and its indexes under an ACCESS EXCLUSIVE lock: no read \
             or write of the table until it ends; its foreign keys are kept and checked again"
                .to_string(),
        );
    }
    let (online_steps, online_note) = if rebuilds {
        match super::online::steps(w, definition) {
            Ok(steps) => (steps, None),
            Err(why) => (Vec::new(), Some(why)),
        }
    } else {
        (Vec::new(), None)
    };
    Written {
        statement,
        then,
        rebuilds,
        online_steps,
        online_note,
        gh_ost: None,
        pt_online_schema_change: None,
        note: (!notes.is_empty()).then(|| notes.join("; ")),
    }
}
