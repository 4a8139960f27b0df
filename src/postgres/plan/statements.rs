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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::ColumnId;
    use crate::postgres::sql_lexer::{Token, hostile_ident, skeleton, tokens};

    fn int(width: Width) -> IntType {
        IntType::new(width, false)
    }

    fn widening(schema: &str, table: &str, column: &str, from: &str, to: Width) -> Widening {
        Widening {
            shard: "pg".to_string(),
            id: ColumnId::in_database(
                Some("app".into()),
                schema.to_string(),
                table.to_string(),
                column.to_string(),
            ),
            from: from.to_string(),
            to: int(to),
        }
    }

    fn sequence(data_type: &str, min: i64, max: i64, increment: i64) -> SequenceDefinition {
        SequenceDefinition {
            schema: "public".to_string(),
            name: "users_id_seq".to_string(),
            data_type: data_type.to_string(),
            min_value: min,
            max_value: max,
            increment,
            identity: false,
            owned: true,
            column_default: true,
        }
    }

    fn column(data_type: &str, sequence: Option<SequenceDefinition>) -> Definition {
        Definition {
            column_type: data_type.to_string(),
            sequence,
            ..Definition::default()
        }
    }

    const INT_MAX: i64 = i32::MAX as i64;

    #[test]
    fn a_serial_widens_its_column_then_its_sequence() {
        let w = widening("public", "users", "id", "integer", Width::Big);
        let d = column("integer", Some(sequence("integer", 1, INT_MAX, 1)));
        let written = widen(&w, &d);
        assert_eq!(
            written.statement.as_deref(),
            Some("ALTER TABLE \"public\".\"users\" ALTER COLUMN \"id\" TYPE bigint")
        );
        assert_eq!(
            written.then,
            vec!["ALTER SEQUENCE \"public\".\"users_id_seq\" AS bigint".to_string()]
        );
        assert!(written.rebuilds);
        assert_eq!(
            (written.gh_ost, written.pt_online_schema_change),
            (None, None)
        );
        assert_eq!(
            written.note.as_deref(),
            Some(
                "rewrites the whole table and its indexes under an ACCESS EXCLUSIVE lock: no \
                 read or write of the table until it ends; its foreign keys are kept and \
                 checked again"
            )
        );
    }

    #[test]
    fn an_identity_column_takes_its_sequence_with_it() {
        let w = widening("public", "users", "id", "integer", Width::Big);
        let identity = SequenceDefinition {
            identity: true,
            owned: false,
            column_default: false,
            ..sequence("integer", 1, INT_MAX, 1)
        };
        let written = widen(&w, &column("integer", Some(identity)));
        assert!(
            written
                .statement
                .is_some_and(|s| s.starts_with("ALTER TABLE"))
        );
        assert!(written.then.is_empty());
    }

    #[test]
    fn a_column_whose_type_holds_widens_only_its_sequence_without_a_rewrite() {
        let w = widening("public", "legacy", "id", "bigint", Width::Big);
        let written = widen(
            &w,
            &column("bigint", Some(sequence("integer", 1, INT_MAX, 1))),
        );
        assert_eq!(
            written.statement.as_deref(),
            Some("ALTER SEQUENCE \"public\".\"users_id_seq\" AS bigint")
        );
        assert!(written.then.is_empty());
        assert!(!written.rebuilds);
        assert!(written.online_steps.is_empty());
        assert_eq!(
            written.note.as_deref(),
            Some("its type holds: only its sequence widens, at once, without rewriting the table")
        );
    }

    #[test]
    fn a_bound_set_by_hand_stays_and_the_note_says_so() {
        let w = widening("public", "users", "id", "integer", Width::Big);
        let capped = widen(
            &w,
            &column("integer", Some(sequence("integer", 1, 2_000_000_000, 1))),
        );
        assert_eq!(capped.then.len(), 1);
        assert!(
            capped.note.as_deref().is_some_and(|n| n.contains(
                "keeps its MAXVALUE 2000000000, set by hand, which still binds it: raise it \
                 (ALTER SEQUENCE … NO MAXVALUE)"
            )),
            "{:?}",
            capped.note
        );
        // A bigint sequence capped by hand, feeding a bigint column: nothing to write.
        let w = widening("public", "legacy", "id", "bigint", Width::Big);
        let stuck = widen(&w, &column("bigint", Some(sequence("bigint", 1, 1000, 1))));
        assert_eq!(stuck.statement, None);
        assert!(stuck.note.is_some_and(|n| n.contains("MAXVALUE 1000")));
        // A descending sequence's own MINVALUE moves with its type.
        let w = widening("public", "down", "id", "integer", Width::Big);
        let down = widen(
            &w,
            &column(
                "integer",
                Some(sequence("integer", i32::MIN.into(), -1, -1)),
            ),
        );
        assert_eq!(down.then.len(), 1);
        assert!(down.note.is_some_and(|n| !n.contains("MINVALUE")));
    }

    #[test]
    fn a_foreign_key_is_written_whole_with_its_match_actions_and_deferral() {
        let fk = ForeignKey {
            name: "k\"{x}".to_string(),
            schema: "public".to_string(),
            table: "c".to_string(),
            columns: vec!["a".to_string(), "b".to_string()],
            parent_schema: "public".to_string(),
            parent_table: "p".to_string(),
            parent_columns: vec!["x".to_string(), "y".to_string()],
            on_update: "NO ACTION".to_string(),
            on_delete: "SET NULL; DROP TABLE p".to_string(),
            database: Some("app".to_string()),
            deferrable: Some("DEFERRABLE INITIALLY DEFERRED".to_string()),
            match_type: Some("FULL".to_string()),
        };
        assert_eq!(
            add_foreign_key(&fk, true),
            "ALTER TABLE \"public\".\"c\" ADD CONSTRAINT \"k\"\"{x}\" FOREIGN KEY (\"a\", \"b\") \
             REFERENCES \"public\".\"p\" (\"x\", \"y\") MATCH FULL ON UPDATE NO ACTION ON DELETE \
             NO ACTION DEFERRABLE INITIALLY DEFERRED NOT VALID"
        );
    }

    #[test]
    fn a_literal_means_its_text_whatever_the_server_makes_of_backslashes() {
        assert_eq!(literal("it's \\ \"x\""), "E'it''s \\\\ \"x\"'");
        assert_eq!(
            tokens(&literal("a'b\\c")).expect("tokens"),
            vec![Token::Str("a'b\\c".to_string())]
        );
    }

    proptest::proptest! {
        /// Whatever the names hold, the statements are the same tokens: each name one
        /// identifier, and nothing else.
        #[test]
        fn hostile_names_never_change_the_statements(
            schema in hostile_ident(),
            table in hostile_ident(),
            column in hostile_ident(),
            name in hostile_ident(),
        ) {
            let fail = proptest::test_runner::TestCaseError::fail;
            let sql = alter_column(&schema, &table, &column, int(Width::Big));
            let qualified = |a: &str, b: &str| {
                [Token::Ident(a.to_string()), Token::Punct('.'), Token::Ident(b.to_string())]
            };
            let mut expected = skeleton("ALTER TABLE");
            expected.extend(qualified(&schema, &table));
            expected.extend(skeleton("ALTER COLUMN"));
            expected.push(Token::Ident(column.clone()));
            expected.extend(skeleton("TYPE bigint"));
            proptest::prop_assert_eq!(tokens(&sql).map_err(fail)?, expected);

            let s = SequenceDefinition {
                schema: schema.clone(),
                name: name.clone(),
                ..sequence("integer", 1, INT_MAX, 1)
            };
            let sql = alter_sequence(&s, int(Width::Big));
            let mut expected = skeleton("ALTER SEQUENCE");
            expected.extend(qualified(&schema, &name));
            expected.extend(skeleton("AS bigint"));
            proptest::prop_assert_eq!(tokens(&sql).map_err(fail)?, expected);
        }
    }
}
