//! One database's catalog ([`Database`]) as the daemon's engine-neutral [`Inventory`]: each
//! column named in its database, the sequence that feeds it counted in its own direction,
//! declared foreign keys one column pair each, the leading index columns and single-column
//! primary keys. Pure.

use std::collections::HashMap;
use std::sync::Arc;

use super::catalog::{
    ColumnRef, Database, IntType as PgType, Sequence as PgSequence, SequenceValue, Tie, Unreadable,
};
use crate::headroom::{IntType, Width};
use crate::inventory::{ColumnId, ForeignKey, IntColumn, Inventory, Sequence};

/// The daemon's integer type of a PostgreSQL type: every one is signed.
pub fn int_type(t: PgType) -> IntType {
    let width = match t {
        PgType::Smallint => Width::Small,
        PgType::Integer => Width::Int,
        PgType::Bigint => Width::Big,
    };
    IntType::new(width, false)
}

/// The monitoring user's grant that makes an unreadable sequence readable, for its reason.
fn unreadable(why: Unreadable) -> String {
    match why {
        Unreadable::NoPrivilege => "the monitoring user may not read it: \
             GRANT SELECT ON ALL SEQUENCES IN SCHEMA … (or the pg_read_all_data role)"
            .to_string(),
        Unreadable::UsageOnly => "the monitoring user has USAGE but not SELECT on it, and it \
             has handed out nothing since it was last set: only SELECT shows where it stands"
            .to_string(),
        Unreadable::NoSchemaUsage => "the monitoring user may not use its schema, and it has \
             handed out nothing since it was last set: GRANT USAGE ON SCHEMA … to it"
            .to_string(),
        Unreadable::UnloggedOnStandby => {
            "an unlogged sequence has no data on a standby: watch the primary".to_string()
        }
    }
}

/// A sequence as the columns it feeds are measured by it: what it has handed out and its
/// limit, both counted in its own direction (negated for a descending sequence). A
/// sequence that has handed out nothing, or was set to hand out `n` next, has handed out
/// the value one step before its start, or before `n`.
pub fn sequence(s: &PgSequence) -> Sequence {
    let sign = if s.descending() { -1 } else { 1 };
    let handed_out = match s.last {
        SequenceValue::At(v) => Ok(v),
        SequenceValue::Unused => Ok(s.start - s.increment),
        SequenceValue::Next(n) => Ok(n - s.increment),
        SequenceValue::Unreadable(why) => Err(unreadable(why)),
    };
    Sequence {
        name: format!("{}.{}", s.id.schema, s.id.name).into(),
        handed_out: handed_out.map(|v| v * sign),
        limit: if s.descending() { -s.min } else { s.max },
        descending: s.descending(),
        cycle: s.cycle,
    }
}

/// The inventory of `database`: its name shared by every column of it.
pub fn inventory(database: &Database) -> Inventory {
    let name: Arc<str> = database.name.as_str().into();
    let mut ids: HashMap<&ColumnRef, ColumnId> = HashMap::with_capacity(database.columns.len());
    let id_of = |r: &ColumnRef| {
        ColumnId::in_database(
            Some(Arc::clone(&name)),
            r.schema.clone(),
            r.table.clone(),
            r.column.clone(),
        )
    };
    for c in &database.columns {
        ids.insert(&c.id, id_of(&c.id));
    }
    let id = |r: &ColumnRef| ids.get(r).cloned().unwrap_or_else(|| id_of(r));

    // Each sequence once, shared by every column it feeds.
    let sequences: HashMap<_, Arc<Sequence>> = database
        .sequences
        .iter()
        .map(|s| (&s.id, Arc::new(sequence(s))))
        .collect();
    // A column's feed: the strongest tie (serial, identity, default, owned) if several.
    let mut feeds: HashMap<&ColumnRef, (Tie, Arc<Sequence>)> = HashMap::new();
    for f in &database.feeds {
        let Some(s) = sequences.get(&f.sequence) else {
            continue;
        };
        let stronger = feeds.get(&f.column).is_none_or(|(tie, _)| f.tie < *tie);
        if stronger {
            feeds.insert(&f.column, (f.tie, Arc::clone(s)));
        }
    }

    let columns = database
        .columns
        .iter()
        .map(|c| IntColumn {
            id: id(&c.id),
            column_type: c.int_type.name().to_string(),
            int_type: int_type(c.int_type),
            auto_increment: None,
            sequence: feeds.get(&c.id).map(|(_, s)| Arc::clone(s)),
        })
        .collect();
    let foreign_keys = database
        .foreign_keys
        .iter()
        .flat_map(|fk| fk.columns.iter())
        .map(|(child, parent)| ForeignKey {
            child: id(child),
            parent: id(parent),
        })
        .collect();
    let leading = database.leading.iter().map(&id).collect();
    let primary_keys = database
        .primary_keys
        .iter()
        .map(|r| ((r.schema.clone(), r.table.clone()), r.column.clone()))
        .collect();
    Inventory {
        columns,
        foreign_keys,
        leading,
        primary_keys,
    }
}

#[cfg(test)]
mod tests {
    use super::super::catalog::{Column, Feed, SequenceRef, TableKind};
    use super::*;

    fn seq(t: PgType, start: i128, increment: i128, min: i128, max: i128) -> PgSequence {
        PgSequence {
            id: SequenceRef::new("app", "s"),
            int_type: t,
            start,
            increment,
            min,
            max,
            cycle: false,
            last: SequenceValue::Unused,
        }
    }

    #[test]
    fn a_sequence_counts_in_its_own_direction() {
        let mut up = seq(PgType::Bigint, 1, 1, 1, i64::MAX.into());
        assert_eq!(sequence(&up).handed_out, Ok(0));
        up.last = SequenceValue::At(2_000_000_000);
        assert_eq!(sequence(&up).handed_out, Ok(2_000_000_000));
        up.last = SequenceValue::Next(100);
        assert_eq!(sequence(&up).handed_out, Ok(99));
        assert_eq!(sequence(&up).limit, i128::from(i64::MAX));

        let mut down = seq(PgType::Integer, -1, -1, i32::MIN.into(), -1);
        assert_eq!(sequence(&down).handed_out, Ok(0));
        down.last = SequenceValue::At(-5);
        let s = sequence(&down);
        assert_eq!(s.handed_out, Ok(5));
        assert_eq!(s.limit, 2_147_483_648);
        assert!(s.descending);

        down.last = SequenceValue::Unreadable(Unreadable::NoPrivilege);
        let err = sequence(&down).handed_out.expect_err("unreadable");
        assert!(err.contains("GRANT SELECT"), "{err}");
    }

    #[test]
    fn columns_are_named_in_their_database_and_fed_by_their_sequence() {
        let col = |c: &str| ColumnRef::new("app", "t\"{table}", c);
        let mut s = seq(PgType::Integer, 1, 1, 1, i32::MAX.into());
        s.last = SequenceValue::At(7);
        let db = Database {
            name: "shop".to_string(),
            schemas: vec!["app".to_string()],
            columns: vec![
                Column {
                    id: col("id"),
                    position: 1,
                    int_type: PgType::Bigint,
                    table_kind: TableKind::Ordinary,
                    identity: None,
                },
                Column {
                    id: col("other"),
                    position: 2,
                    int_type: PgType::Integer,
                    table_kind: TableKind::Ordinary,
                    identity: None,
                },
            ],
            sequences: vec![s],
            feeds: vec![
                Feed {
                    column: col("id"),
                    sequence: SequenceRef::new("app", "s"),
                    tie: Tie::Serial,
                },
                Feed {
                    column: col("other"),
                    sequence: SequenceRef::new("app", "s"),
                    tie: Tie::Default,
                },
            ],
            foreign_keys: Vec::new(),
            leading: vec![col("id")],
            primary_keys: vec![col("id")],
        };
        let inv = inventory(&db);
        assert_eq!(inv.columns.len(), 2);
        let id = &inv.columns[0];
        assert_eq!(id.id.database(), Some("shop"));
        assert_eq!(id.id.to_string(), "shop.app.t\"{table}.id");
        assert_eq!(id.column_type, "bigint");
        assert_eq!(id.int_type, IntType::new(Width::Big, false));
        let fed = id.sequence.as_ref().expect("fed");
        assert_eq!(&*fed.name, "app.s");
        assert_eq!(fed.handed_out, Ok(7));
        // One sequence shared by both columns it feeds.
        let other = inv.columns[1].sequence.as_ref().expect("fed");
        assert!(Arc::ptr_eq(fed, other));
        assert!(inv.leading.contains(&id.id));
        assert_eq!(
            inv.primary_keys
                .get(&("app".to_string(), "t\"{table}".to_string())),
            Some(&"id".to_string())
        );
        // Not the same column as a MySQL column of the same schema, table and name.
        assert_ne!(id.id, ColumnId::new("app", "t\"{table}", "id"));
    }
}
