//! Fleets to plan, for the tests of [`super`]: two shards, a ticket source and a
//! reference to it, with a column running out, its foreign-key children, a mismatched
//! reference and a column that is fine ([`snapshot`]); and three shards of foreign-key
//! chains, children listed before their parents, references to the source on every shard,
//! an inferred parent and two columns whose names read alike ([`chains`]); and a PostgreSQL
//! shard of two databases ([`postgres_snapshot`]).

use std::time::Duration;

use chrono::Utc;

use crate::config::Settings;
use crate::headroom::{IntType, Width};
use crate::inventory::ColumnId;
use crate::measure::{ColumnReport, Kind};
use crate::state::{Snapshot, Store};

pub(super) fn settings() -> Settings {
    settings_with("")
}

/// [`settings`] with a third shard, `c`, for [`chains`].
pub(super) fn chains_settings() -> Settings {
    settings_with("[[shards]]\nname = \"c\"\nurl = \"mysql://u@db-c:3308/\"\n")
}

fn settings_with(more: &str) -> Settings {
    crate::config::from_toml_str(
        &format!(
            "[[shards]]\nname = \"a\"\nurl = \"mysql://u@db-a:3306/\"\n\
         [[shards]]\nname = \"b\"\nurl = \"mysql://u@db-b:3307/\"\n{more}\
         [[sources]]\nname = \"tickets64\"\nkind = \"ticket_server\"\n\
         servers = [\"mysql://u@t:3306/tickets\"]\ntable = \"Tickets64\"\n\
         [[references]]\nsource = \"tickets64\"\ncolumns = [\"shop.*.treasury_id\"]\n"
        ),
        &|_| None,
    )
    .expect("settings")
}

pub(super) fn report(
    shard: &str,
    name: &str,
    t: IntType,
    kind: Kind,
    source: Option<&str>,
    current: i128,
    mismatch: bool,
) -> ColumnReport {
    let p: Vec<&str> = name.split('.').collect();
    let id = ColumnId::new(p[0], p[1], p[2]);
    crate::measure::fixture::column(shard, id, t, current)
        .kind(kind)
        .source(source)
        .type_mismatch(mismatch)
        .build()
}

/// Shard a: `users.id` (INT, 98 % used), `orders.user_id` and `notes.user_ref` (its
/// foreign-key child, and grandchild), a mismatched reference column, and `tags.id`
/// (fine). Shard b: the same `users.id`, nearly empty.
pub(super) fn snapshot(settings: &Settings) -> Snapshot {
    let int = IntType::new(Width::Int, false);
    let int_u = IntType::new(Width::Int, true);
    let store = Store::new(settings);
    let (fk, auto, reference) = (Kind::ForeignKey, Kind::AutoIncrement, Kind::Reference);
    let a = vec![
        report("a", "shop.users.id", int, auto, None, 2_104_533_975, false),
        report(
            "a",
            "shop.orders.user_id",
            int_u,
            fk,
            Some("shop.users.id"),
            1,
            false,
        ),
        report(
            "a",
            "shop.notes.user_ref",
            int,
            fk,
            Some("shop.orders.user_id"),
            1,
            false,
        ),
        report(
            "a",
            "shop.likes.treasury_id",
            int,
            reference,
            Some("tickets64"),
            5,
            true,
        ),
        report("a", "shop.tags.id", int, auto, None, 5, false),
    ];
    let b = vec![report("b", "shop.users.id", int, auto, None, 10, false)];
    let now = Utc::now();
    store.shard_succeeded("a", a, Vec::new(), Duration::from_millis(1), now);
    store.shard_succeeded("b", b, Vec::new(), Duration::from_millis(1), now);
    let mut snapshot = store.read().clone();
    snapshot.sources[0].max = Some(u64::MAX);
    snapshot
}

/// Three shards: on `a`, a chain of foreign keys listed children first
/// (`reviews.note_id` → `notes.user_ref` → `orders.user_id` → `users.id`, 98 % used), an
/// inferred child of `users.id`, references to `tickets64` (one mismatched), a critical
/// column with no link, and two columns whose `schema.table.column` names read alike
/// (`a.b`.`c`.`id` and `a`.`b.c`.`id`), with a critical child naming that parent; on `b`,
/// the same `users.id` nearly empty with a child of its own, and a reference; on `c`, a
/// reference only, and a column that is fine.
pub(super) fn chains(settings: &Settings) -> Snapshot {
    let int = IntType::new(Width::Int, false);
    let int_u = IntType::new(Width::Int, true);
    let small = IntType::new(Width::Small, false);
    let store = Store::new(settings);
    let (fk, auto, reference, inferred) = (
        Kind::ForeignKey,
        Kind::AutoIncrement,
        Kind::Reference,
        Kind::Inferred,
    );
    let dotted = |shard: &str, schema: &str, table: &str, kind, source, current| {
        crate::measure::fixture::column(shard, ColumnId::new(schema, table, "id"), small, current)
            .kind(kind)
            .source(source)
            .build()
    };
    let a = vec![
        report(
            "a",
            "shop.reviews.note_id",
            int,
            fk,
            Some("shop.notes.user_ref"),
            1,
            false,
        ),
        report(
            "a",
            "shop.notes.user_ref",
            int,
            fk,
            Some("shop.orders.user_id"),
            1,
            false,
        ),
        report(
            "a",
            "shop.orders.user_id",
            int_u,
            fk,
            Some("shop.users.id"),
            1,
            false,
        ),
        report(
            "a",
            "shop.stars.user_id",
            small,
            inferred,
            Some("shop.users.id"),
            7,
            false,
        ),
        report("a", "shop.users.id", int, auto, None, 2_104_533_975, false),
        report(
            "a",
            "shop.likes.treasury_id",
            int,
            reference,
            Some("tickets64"),
            5,
            true,
        ),
        report(
            "a",
            "shop.pins.treasury_id",
            int_u,
            reference,
            Some("tickets64"),
            5,
            false,
        ),
        report("a", "shop.hot.id", small, auto, None, 32_000, false),
        dotted("a", "a", "b.c.child", fk, Some("a.b.c.id"), 32_000),
        dotted("a", "a.b", "c", auto, None, 3),
        dotted("a", "a", "b.c", auto, None, 4),
    ];
    let b = vec![
        report(
            "b",
            "shop.orders.user_id",
            int,
            fk,
            Some("shop.users.id"),
            1,
            false,
        ),
        report("b", "shop.users.id", int, auto, None, 10, false),
        report(
            "b",
            "shop.likes.treasury_id",
            int,
            reference,
            Some("tickets64"),
            5,
            true,
        ),
    ];
    let c = vec![
        report(
            "c",
            "shop.pins.treasury_id",
            int_u,
            reference,
            Some("tickets64"),
            5,
            false,
        ),
        report("c", "shop.tags.id", int, auto, None, 5, false),
    ];
    let now = Utc::now();
    for (name, columns) in [("a", a), ("b", b), ("c", c)] {
        store.shard_succeeded(name, columns, Vec::new(), Duration::from_millis(1), now);
    }
    let mut snapshot = store.read().clone();
    snapshot.sources[0].max = Some(u64::MAX);
    snapshot
}

/// One PostgreSQL shard, `pg`.
pub(super) fn postgres_settings() -> Settings {
    crate::config::from_toml_str(
        "[[shards]]\nname = \"pg\"\nurl = \"postgres://u@db/app\"\n",
        &|_| None,
    )
    .expect("settings")
}

/// A PostgreSQL shard `pg`: in `app`, `users.id` (integer serial, 98 % used) and its
/// foreign-key child, `legacy.id` and `other.id` (bigint, sharing an `AS integer`
/// sequence at 98 %), `big.id` (bigint, 98 % of bigint); in `tenant`, another
/// `public.users.id`, nearly empty.
pub(super) fn postgres_snapshot(settings: &Settings) -> Snapshot {
    let int = IntType::new(Width::Int, false);
    let big = IntType::new(Width::Big, false);
    let id = |database: &str, table: &str, column: &str| {
        crate::inventory::ColumnId::in_database(
            Some(database.into()),
            "public".to_string(),
            table.to_string(),
            column.to_string(),
        )
    };
    let column = |id, t, current| crate::measure::fixture::column("pg", id, t, current);
    let int_max = int.max();
    let columns = vec![
        column(id("app", "users", "id"), int, 2_104_533_975)
            .sequence("public.users_id_seq", int_max)
            .build(),
        column(id("app", "orders", "user_id"), int, 2_104_533_975)
            .kind(Kind::ForeignKey)
            .source(Some("app.public.users.id"))
            .build(),
        column(id("app", "legacy", "id"), big, 2_104_533_975)
            .sequence("public.narrow_ids", int_max)
            .build(),
        column(id("app", "other", "id"), big, 2_104_533_975)
            .sequence("public.narrow_ids", int_max)
            .build(),
        column(id("app", "big", "id"), big, 9_100_000_000_000_000_000)
            .sequence("public.big_id_seq", big.max())
            .build(),
        column(id("tenant", "users", "id"), int, 10)
            .sequence("public.users_id_seq", int_max)
            .build(),
    ];
    let store = crate::state::Store::new(settings);
    let now = chrono::Utc::now();
    store.shard_succeeded(
        "pg",
        columns,
        Vec::new(),
        std::time::Duration::from_millis(1),
        now,
    );
    store.read().clone()
}
