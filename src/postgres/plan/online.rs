//! The online alternative to `ALTER COLUMN … TYPE` on PostgreSQL, which rewrites the table
//! under an ACCESS EXCLUSIVE lock: as GitLab's bigint conversions do it, a new column of
//! the wider type kept equal to the old one by a trigger, filled in batches, its indexes
//! built `CONCURRENTLY` and its foreign keys added `NOT VALID` then validated, and a swap
//! in one short transaction. Pure: every name quoted by [`ident`]/[`qualified`], function
//! bodies dollar-quoted with a tag no name holds ([`dollar_quoted`]).
//!
//! The steps, each one statement, to run in order in autocommit mode (`CREATE INDEX
//! CONCURRENTLY` and a backfill that commits batch by batch cannot run in a transaction):
//! 1. `ADD COLUMN` of the new type (`NOT NULL DEFAULT 0` for a `NOT NULL` column: no
//!    scan, PostgreSQL 11 stores the default once);
//! 2. a trigger function and a `BEFORE INSERT OR UPDATE` trigger copying the old column
//!    into the new one;
//! 3. a `DO` block that copies the rows in batches of [`BATCH`] primary key values,
//!    committing each;
//! 4. every index that holds the column built again `CONCURRENTLY` on the new one;
//! 5. every foreign key of the column added again on the new one, `NOT VALID`, then
//!    validated;
//! 6. the swap, in one transaction: the trigger dropped, the foreign keys that reference
//!    the column dropped, its sequence handed to the new column, the old column dropped,
//!    the new one renamed, its indexes taking the old names and constraints (`PRIMARY
//!    KEY USING INDEX`), its comment, the keys that reference it added again `NOT VALID`;
//! 7. those keys validated.
//!
//! What the steps cannot carry is refused with a reason instead: a partitioned table
//! (no `CREATE INDEX CONCURRENTLY` on it), an identity column, a column in an index that
//! is not a plain B-tree of columns or in a CHECK constraint, a default that is neither
//! a number nor its sequence, a table without a one-column integer primary key to batch
//! by.

use super::Shape;
use crate::hash::fnv1a;
use crate::plan::found::{Definition, ForeignKey, Widening};
use crate::postgres::plan::statements::{add_foreign_key, literal, type_name, width_of};
use crate::postgres::query::{ident, qualified};

/// Rows of primary key values copied per transaction by the backfill.
pub const BATCH: u32 = 10_000;

/// The longest name PostgreSQL keeps (NAMEDATALEN - 1 bytes).
const NAME_BYTES: usize = 63;

/// `base` followed by `suffix`, within [`NAME_BYTES`]: a long base is cut on a character
/// boundary and told apart by its hash.
pub fn derived_name(base: &str, suffix: &str) -> String {
    if base.len() + suffix.len() <= NAME_BYTES {
        return format!("{base}{suffix}");
    }
    let tail = format!("_{:016x}{suffix}", fnv1a(base.as_bytes()));
    let room = NAME_BYTES.saturating_sub(tail.len());
    let mut end = 0;
    for (i, c) in base.char_indices() {
        if i + c.len_utf8() > room {
            break;
        }
        end = i + c.len_utf8();
    }
    format!("{}{tail}", &base[..end])
}

/// `body` as a dollar-quoted string whose tag does not occur in it.
pub fn dollar_quoted(body: &str) -> String {
    let mut tag = "$headroom$".to_string();
    let mut n = 0u32;
    while body.contains(&tag) {
        n += 1;
        tag = format!("$headroom{n}$");
    }
    format!("{tag}{body}{tag}")
}

/// A column default the steps can write again: `None` for none.
enum ColumnDefault {
    None,
    /// `nextval` of the column's sequence.
    Sequence,
    Number(i64),
}

/// The default of `definition` as the steps write it; `Err` for one they cannot.
fn default_of(definition: &Definition) -> Result<ColumnDefault, String> {
    let Some(text) = definition.default.as_deref() else {
        return Ok(ColumnDefault::None);
    };
    if definition
        .sequence
        .as_ref()
        .is_some_and(|s| s.column_default)
    {
        return Ok(ColumnDefault::Sequence);
    }
    // `0`, or `'-1'::integer` as `pg_get_expr` writes a negative constant.
    let bare = text
        .split("::")
        .next()
        .unwrap_or(text)
        .trim()
        .trim_matches('\'');
    bare.parse::<i64>().map(ColumnDefault::Number).map_err(|_| {
        "its default is neither a number nor its sequence: move it by hand".to_string()
    })
}

/// The foreign key `fk` with `old` among its child columns replaced by `new`, named
/// `name`.
fn moved_child(fk: &ForeignKey, old: &str, new: &str, name: String) -> ForeignKey {
    ForeignKey {
        name,
        columns: fk
            .columns
            .iter()
            .map(|c| if c == old { new.to_string() } else { c.clone() })
            .collect(),
        ..fk.clone()
    }
}

/// Names for the backfill's two variables that differ from every name in `taken`.
fn variables(taken: &[&str]) -> (String, String) {
    let mut n = 0u32;
    loop {
        let suffix = if n == 0 { String::new() } else { n.to_string() };
        let from = format!("batch_from{suffix}");
        let last = format!("batch_last{suffix}");
        if !taken.iter().any(|t| *t == from || *t == last) {
            return (from, last);
        }
        n += 1;
    }
}

/// The online steps of widening `w`, whose column is `definition` (read with its table's
/// [`Shape`]); `Err` says why there are none.
pub fn steps(w: &Widening, definition: &Definition) -> Result<Vec<String>, String> {
    let (schema, table, column) = (&w.id.schema, &w.id.table, &w.id.column);
    let shape: &Shape = definition
        .postgres
        .as_deref()
        .ok_or("the table's indexes and keys were not read")?;
    if shape.partitioned {
        return Err(
            "a partitioned table: CREATE INDEX CONCURRENTLY cannot build its indexes; widen it \
             partition by partition, or with the ALTER TABLE"
                .to_string(),
        );
    }
    if definition.extra.contains("IDENTITY") {
        return Err(
            "an identity column: the new column needs its identity moved by hand (DROP \
             IDENTITY, then ADD GENERATED … AS IDENTITY restarted past the old sequence)"
                .to_string(),
        );
    }
    if let Some(check) = shape.checks.first() {
        return Err(format!(
            "the CHECK constraint {check} uses the column: write it again for the new one by \
             hand"
        ));
    }
    if let Some(index) = shape.indexes.iter().find(|i| !i.plain) {
        return Err(format!(
            "the index {} is not a plain B-tree index of columns: build it for the new column \
             by hand",
            index.name
        ));
    }
    let key = shape.batch_key.as_deref().ok_or(
        "no one-column integer primary key to copy the rows by in batches: copy them by hand",
    )?;
    let default = default_of(definition)?;

    let to = type_name(w.to);
    let t = qualified(schema, table);
    let new = derived_name(column, &format!("_convert_to_{to}"));
    let hash = fnv1a(format!("{schema}\0{table}\0{column}").as_bytes());
    let function = format!("headroom_widen_{hash:016x}");
    let function_q = qualified(schema, &function);
    let (c, n, k) = (ident(column), ident(&new), ident(key));
    let renamed = |name: &str| derived_name(name, &format!("_convert_to_{to}"));
    let mut out = Vec::new();

    // 1. The new column.
    let not_null = if definition.nullable {
        ""
    } else {
        " NOT NULL DEFAULT 0"
    };
    out.push(format!("ALTER TABLE {t} ADD COLUMN {n} {to}{not_null}"));
    // 2. Every write copies the old column into the new one.
    let body = format!("BEGIN NEW.{n} := NEW.{c}; RETURN NEW; END");
    out.push(format!(
        "CREATE FUNCTION {function_q}() RETURNS trigger LANGUAGE plpgsql AS {}",
        dollar_quoted(&body)
    ));
    out.push(format!(
        "CREATE TRIGGER {} BEFORE INSERT OR UPDATE ON {t} FOR EACH ROW EXECUTE FUNCTION {function_q}()",
        ident(&function)
    ));
    // 3. The rows written before, in batches, each committed.
    let (from, last) = variables(&[key, column, &new]);
    let backfill = format!(
        "#variable_conflict use_variable DECLARE {from} bigint; {last} bigint; BEGIN \
         SELECT min({k}), max({k}) INTO {from}, {last} FROM {t}; \
         WHILE {from} <= {last} LOOP \
         UPDATE {t} SET {n} = {c} WHERE {k} >= {from} AND {k} < {from} + {BATCH}; \
         COMMIT; {from} := {from} + {BATCH}; END LOOP; END"
    );
    out.push(format!("DO {}", dollar_quoted(&backfill)));
    // 4. The indexes, built without blocking writes.
    for index in &shape.indexes {
        let columns: Vec<String> = index
            .columns
            .iter()
            .flatten()
            .map(|name| {
                if name == column {
                    n.clone()
                } else {
                    ident(name)
                }
            })
            .collect();
        let include = if index.include.is_empty() {
            String::new()
        } else {
            let names: Vec<String> = index.include.iter().map(|i| ident(i)).collect();
            format!(" INCLUDE ({})", names.join(", "))
        };
        out.push(format!(
            "CREATE {}INDEX CONCURRENTLY {} ON {t} USING btree ({}){include}",
            if index.unique { "UNIQUE " } else { "" },
            ident(&renamed(&index.name)),
            columns.join(", ")
        ));
    }
    // 5. Its foreign keys on the new column, checked without the long lock.
    for fk in &shape.child_keys {
        let moved = moved_child(fk, column, &new, renamed(&fk.name));
        out.push(add_foreign_key(&moved, true));
        out.push(format!(
            "ALTER TABLE {t} VALIDATE CONSTRAINT {}",
            ident(&moved.name)
        ));
    }
    // 6. The swap.
    out.push("BEGIN".to_string());
    out.push(format!("LOCK TABLE {t} IN ACCESS EXCLUSIVE MODE"));
    out.push(format!("DROP TRIGGER {} ON {t}", ident(&function)));
    out.push(format!("DROP FUNCTION {function_q}()"));
    for fk in &shape.parent_keys {
        out.push(format!(
            "ALTER TABLE {} DROP CONSTRAINT {}",
            qualified(&fk.schema, &fk.table),
            ident(&fk.name)
        ));
    }
    if let Some(sequence) = &definition.sequence {
        let s = qualified(&sequence.schema, &sequence.name);
        if sequence.owned {
            // Else dropping the old column would drop the sequence with it.
            out.push(format!(
                "ALTER SEQUENCE {s} OWNED BY {}.{n}",
                qualified(schema, table)
            ));
        }
        if width_of(&sequence.data_type).is_none_or(|width| width < w.to.width) {
            out.push(format!("ALTER SEQUENCE {s} AS {to}"));
        }
    }
    match default {
        ColumnDefault::Sequence => {
            if let Some(sequence) = &definition.sequence {
                let name = qualified(&sequence.schema, &sequence.name);
                out.push(format!(
                    "ALTER TABLE {t} ALTER COLUMN {n} SET DEFAULT nextval({}::regclass)",
                    literal(&name)
                ));
            }
        }
        ColumnDefault::Number(v) => {
            out.push(format!("ALTER TABLE {t} ALTER COLUMN {n} SET DEFAULT {v}"))
        }
        ColumnDefault::None if !definition.nullable => {
            out.push(format!("ALTER TABLE {t} ALTER COLUMN {n} DROP DEFAULT"));
        }
        ColumnDefault::None => {}
    }
    out.push(format!("ALTER TABLE {t} DROP COLUMN {c}"));
    out.push(format!("ALTER TABLE {t} RENAME COLUMN {n} TO {c}"));
    for index in &shape.indexes {
        let built = ident(&renamed(&index.name));
        match &index.constraint {
            Some((name, 'p')) => out.push(format!(
                "ALTER TABLE {t} ADD CONSTRAINT {} PRIMARY KEY USING INDEX {built}",
                ident(name)
            )),
            Some((name, _)) => out.push(format!(
                "ALTER TABLE {t} ADD CONSTRAINT {} UNIQUE USING INDEX {built}",
                ident(name)
            )),
            None => out.push(format!(
                "ALTER INDEX {} RENAME TO {}",
                qualified(schema, &renamed(&index.name)),
                ident(&index.name)
            )),
        }
    }
    for fk in &shape.child_keys {
        out.push(format!(
            "ALTER TABLE {t} RENAME CONSTRAINT {} TO {}",
            ident(&renamed(&fk.name)),
            ident(&fk.name)
        ));
    }
    if !definition.comment.is_empty() {
        out.push(format!(
            "COMMENT ON COLUMN {}.{c} IS {}",
            qualified(schema, table),
            literal(&definition.comment)
        ));
    }
    for fk in &shape.parent_keys {
        out.push(add_foreign_key(fk, true));
    }
    out.push("COMMIT".to_string());
    // 7. The keys that reference it, checked without the long lock.
    for fk in &shape.parent_keys {
        out.push(format!(
            "ALTER TABLE {} VALIDATE CONSTRAINT {}",
            qualified(&fk.schema, &fk.table),
            ident(&fk.name)
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use super::*;
    use crate::headroom::{IntType, Width};
    use crate::inventory::ColumnId;
    use crate::plan::found::SequenceDefinition;
    use crate::postgres::plan::Index;
    use crate::postgres::sql_lexer::{Token, hostile_ident, tokens};

    /// Names of a table, its column, its sequence, an index and the foreign keys.
    #[derive(Debug, Clone)]
    struct Names {
        schema: String,
        table: String,
        column: String,
        sequence: String,
        index: String,
        child: String,
        key: String,
    }

    fn benign() -> Names {
        Names {
            schema: "public".to_string(),
            table: "users".to_string(),
            column: "id".to_string(),
            sequence: "users_id_seq".to_string(),
            index: "users_pkey".to_string(),
            child: "orders".to_string(),
            key: "orders_user_id_fkey".to_string(),
        }
    }

    fn key(n: &Names, child_side: bool) -> ForeignKey {
        let (table, columns, parent_table, parent_columns) = if child_side {
            (&n.table, &n.column, &n.child, "id")
        } else {
            (
                &n.child,
                &"user_id".to_string(),
                &n.table,
                n.column.as_str(),
            )
        };
        ForeignKey {
            name: n.key.clone(),
            schema: n.schema.clone(),
            table: table.clone(),
            columns: vec![columns.clone()],
            parent_schema: n.schema.clone(),
            parent_table: parent_table.clone(),
            parent_columns: vec![parent_columns.to_string()],
            on_update: "NO ACTION".to_string(),
            on_delete: "CASCADE".to_string(),
            database: Some("app".to_string()),
            deferrable: None,
            match_type: None,
        }
    }

    /// A serial primary key with a comment, its index, a key of its own and one that
    /// references it.
    fn case(n: &Names) -> (Widening, Definition) {
        let w = Widening {
            shard: "pg".to_string(),
            id: ColumnId::in_database(
                Some("app".into()),
                n.schema.clone(),
                n.table.clone(),
                n.column.clone(),
            ),
            from: "integer".to_string(),
            to: IntType::new(Width::Big, false),
        };
        let shape = Shape {
            partitioned: false,
            indexes: vec![Index {
                name: n.index.clone(),
                columns: vec![Some(n.column.clone())],
                include: Vec::new(),
                unique: true,
                constraint: Some((n.index.clone(), 'p')),
                plain: true,
            }],
            batch_key: Some(n.column.clone()),
            child_keys: vec![key(n, true)],
            parent_keys: vec![key(n, false)],
            checks: Vec::new(),
        };
        let d = Definition {
            column_type: "integer".to_string(),
            nullable: false,
            default: Some(format!("nextval('{}'::regclass)", n.sequence)),
            comment: format!("{} it's", n.column),
            sequence: Some(SequenceDefinition {
                schema: n.schema.clone(),
                name: n.sequence.clone(),
                data_type: "integer".to_string(),
                min_value: 1,
                max_value: i32::MAX.into(),
                increment: 1,
                identity: false,
                owned: true,
                column_default: true,
            }),
            postgres: Some(Arc::new(shape)),
            ..Definition::default()
        };
        (w, d)
    }

    /// Every token of `sql`, the bodies of dollar quotes (the function and the `DO` block)
    /// read as statements too; `Err` on an unterminated quote.
    fn all_tokens(sql: &str) -> Result<Vec<Token>, String> {
        let mut out = Vec::new();
        for t in tokens(sql)? {
            match t {
                Token::Str(body)
                    if sql.contains(&format!("${body}")) || sql.contains("$headroom") =>
                {
                    out.push(Token::Str(String::new()));
                    out.extend(all_tokens(&body)?);
                }
                t => out.push(t),
            }
        }
        Ok(out)
    }

    /// The words (keywords, numbers) of the steps.
    fn words(steps: &[String]) -> BTreeSet<String> {
        steps
            .iter()
            .flat_map(|s| all_tokens(s).unwrap_or_default())
            .filter_map(|t| match t {
                Token::Word(w) => Some(w),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_steps_add_copy_fill_index_swap_and_validate_in_order() {
        let (w, d) = case(&benign());
        let got = steps(&w, &d).expect("steps");
        let t = "\"public\".\"users\"";
        let function = format!(
            "\"public\".\"headroom_widen_{:016x}\"",
            fnv1a(b"public\0users\0id")
        );
        let trigger = function.trim_start_matches("\"public\".");
        let expected = vec![
            format!(
                "ALTER TABLE {t} ADD COLUMN \"id_convert_to_bigint\" bigint NOT NULL DEFAULT 0"
            ),
            format!(
                "CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS \
                 $headroom$BEGIN NEW.\"id_convert_to_bigint\" := NEW.\"id\"; RETURN NEW; END$headroom$"
            ),
            format!(
                "CREATE TRIGGER {trigger} BEFORE INSERT OR UPDATE ON {t} FOR EACH ROW EXECUTE \
                 FUNCTION {function}()"
            ),
            format!(
                "DO $headroom$#variable_conflict use_variable DECLARE batch_from bigint; \
                 batch_last bigint; BEGIN SELECT min(\"id\"), max(\"id\") INTO batch_from, \
                 batch_last FROM {t}; WHILE batch_from <= batch_last LOOP UPDATE {t} SET \
                 \"id_convert_to_bigint\" = \"id\" WHERE \"id\" >= batch_from AND \"id\" < \
                 batch_from + 10000; COMMIT; batch_from := batch_from + 10000; END LOOP; \
                 END$headroom$"
            ),
            format!(
                "CREATE UNIQUE INDEX CONCURRENTLY \"users_pkey_convert_to_bigint\" ON {t} USING \
                 btree (\"id_convert_to_bigint\")"
            ),
            format!(
                "ALTER TABLE {t} ADD CONSTRAINT \"orders_user_id_fkey_convert_to_bigint\" \
                 FOREIGN KEY (\"id_convert_to_bigint\") REFERENCES \"public\".\"orders\" (\"id\") \
                 ON UPDATE NO ACTION ON DELETE CASCADE NOT VALID"
            ),
            format!(
                "ALTER TABLE {t} VALIDATE CONSTRAINT \"orders_user_id_fkey_convert_to_bigint\""
            ),
            "BEGIN".to_string(),
            format!("LOCK TABLE {t} IN ACCESS EXCLUSIVE MODE"),
            format!("DROP TRIGGER {trigger} ON {t}"),
            format!("DROP FUNCTION {function}()"),
            "ALTER TABLE \"public\".\"orders\" DROP CONSTRAINT \"orders_user_id_fkey\"".to_string(),
            format!(
                "ALTER SEQUENCE \"public\".\"users_id_seq\" OWNED BY {t}.\"id_convert_to_bigint\""
            ),
            "ALTER SEQUENCE \"public\".\"users_id_seq\" AS bigint".to_string(),
            format!(
                "ALTER TABLE {t} ALTER COLUMN \"id_convert_to_bigint\" SET DEFAULT \
                 nextval(E'\"public\".\"users_id_seq\"'::regclass)"
            ),
            format!("ALTER TABLE {t} DROP COLUMN \"id\""),
            format!("ALTER TABLE {t} RENAME COLUMN \"id_convert_to_bigint\" TO \"id\""),
            format!(
                "ALTER TABLE {t} ADD CONSTRAINT \"users_pkey\" PRIMARY KEY USING INDEX \
                 \"users_pkey_convert_to_bigint\""
            ),
            format!(
                "ALTER TABLE {t} RENAME CONSTRAINT \"orders_user_id_fkey_convert_to_bigint\" TO \
                 \"orders_user_id_fkey\""
            ),
            format!("COMMENT ON COLUMN {t}.\"id\" IS E'id it''s'"),
            "ALTER TABLE \"public\".\"orders\" ADD CONSTRAINT \"orders_user_id_fkey\" FOREIGN KEY \
             (\"user_id\") REFERENCES \"public\".\"users\" (\"id\") ON UPDATE NO ACTION ON DELETE \
             CASCADE NOT VALID"
                .to_string(),
            "COMMIT".to_string(),
            "ALTER TABLE \"public\".\"orders\" VALIDATE CONSTRAINT \"orders_user_id_fkey\""
                .to_string(),
        ];
        assert_eq!(got, expected);
    }

    #[test]
    fn what_the_steps_cannot_carry_is_refused_with_why() {
        let (w, d) = case(&benign());
        let with = |change: &dyn Fn(&mut Shape, &mut Definition)| {
            let mut d = d.clone();
            let mut shape = d.postgres.as_deref().cloned().unwrap_or_default();
            change(&mut shape, &mut d);
            d.postgres = Some(Arc::new(shape));
            steps(&w, &d).expect_err("refused")
        };
        assert!(with(&|s, _| s.partitioned = true).starts_with("a partitioned table"));
        assert!(with(&|_, d| d.extra = "IDENTITY ALWAYS".to_string()).starts_with("an identity"));
        assert!(with(&|s, _| s.indexes[0].plain = false).contains("users_pkey is not a plain"));
        assert!(with(&|s, _| s.batch_key = None).starts_with("no one-column integer"));
        assert!(with(&|s, _| s.checks.push("positive".to_string())).contains("positive"));
        let odd = |_: &mut Shape, d: &mut Definition| {
            d.sequence = None;
            d.default = Some("random()".to_string());
        };
        assert!(with(&odd).contains("neither a number nor its sequence"));
        let mut plain = d.clone();
        plain.sequence = None;
        plain.default = Some("'-1'::integer".to_string());
        let got = steps(&w, &plain).expect("steps");
        let default =
            "ALTER TABLE \"public\".\"users\" ALTER COLUMN \"id_convert_to_bigint\" SET DEFAULT -1";
        assert!(got.iter().any(|s| s == default));
    }

    #[test]
    fn derived_names_fit_in_63_bytes_and_dollar_tags_avoid_the_body() {
        assert_eq!(
            derived_name("id", "_convert_to_bigint"),
            "id_convert_to_bigint"
        );
        let long = "é".repeat(40);
        let got = derived_name(&long, "_convert_to_bigint");
        assert!(got.len() <= 63, "{got}");
        assert!(got.ends_with("_convert_to_bigint"));
        assert_ne!(got, derived_name(&"é".repeat(41), "_convert_to_bigint"));
        assert_eq!(dollar_quoted("x"), "$headroom$x$headroom$");
        assert_eq!(
            dollar_quoted("\"a$headroom$b\""),
            "$headroom1$\"a$headroom$b\"$headroom1$"
        );
    }

    proptest::proptest! {
        /// Whatever the names hold, every step lexes whole, holds no comment, and has no
        /// word that the steps of plain names do not have: every name stays an
        /// identifier (or, the sequence's, inside one string literal).
        #[test]
        fn hostile_names_stay_names_in_every_step(
            schema in hostile_ident(),
            table in hostile_ident(),
            column in hostile_ident(),
            sequence in hostile_ident(),
            index in hostile_ident(),
            child in hostile_ident(),
            key in hostile_ident(),
        ) {
            let (w, d) = case(&benign());
            let known = words(&steps(&w, &d).unwrap_or_default());
            let names = Names { schema, table, column, sequence, index, child, key };
            let (w, d) = case(&names);
            let fail = proptest::test_runner::TestCaseError::fail;
            let got = steps(&w, &d).map_err(fail)?;
            for step in &got {
                let toks = all_tokens(step).map_err(fail)?;
                let foreign = |t: &Token| {
                    matches!(t, Token::Comment(_) | Token::UnicodeIdent(_) | Token::Param(_))
                };
                proptest::prop_assert!(!toks.iter().any(foreign), "{step}");
            }
            let hostile = words(&got);
            let extra: Vec<&String> = hostile.difference(&known).collect();
            proptest::prop_assert!(extra.is_empty(), "{extra:?}");
        }
    }
}
