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
enum Default {
    None,
    /// `nextval` of the column's sequence.
    Sequence,
    Number(i64),
}

/// The default of `definition` as the steps write it; `Err` for one they cannot.
fn default_of(definition: &Definition) -> Result<Default, String> {
    let Some(text) = definition.default.as_deref() else {
        return Ok(Default::None);
    };
    if definition
        .sequence
        .as_ref()
        .is_some_and(|s| s.column_default)
    {
        return Ok(Default::Sequence);
    }
    // `0`, or `'-1'::integer` as `pg_get_expr` writes a negative constant.
    let bare = text
        .split("::")
        .next()
        .unwrap_or(text)
        .trim()
        .trim_matches('\'');
    bare.parse::<i64>().map(Default::Number).map_err(|_| {
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
        Default::Sequence => {
            if let Some(sequence) = &definition.sequence {
                let name = qualified(&sequence.schema, &sequence.name);
                out.push(format!(
                    "ALTER TABLE {t} ALTER COLUMN {n} SET DEFAULT nextval({}::regclass)",
                    literal(&name)
                ));
            }
        }
        Default::Number(v) => out.push(format!("ALTER TABLE {t} ALTER COLUMN {n} SET DEFAULT {v}")),
        Default::None if !definition.nullable => {
            out.push(format!("ALTER TABLE {t} ALTER COLUMN {n} DROP DEFAULT"));
        }
        Default::None => {}
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
