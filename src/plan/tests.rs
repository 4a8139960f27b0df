use super::*;
use fixtures::{settings, snapshot};

#[test]
fn a_change_carries_the_statement_the_commands_and_the_estimate() {
    let settings = settings();
    let snapshot = snapshot(&settings);
    let entries = select(&snapshot, None);
    let w = &entries[0].widenings[3];
    let definition = Definition {
        column_type: "int(11)".to_string(),
        nullable: false,
        default: None,
        extra: "auto_increment".to_string(),
        comment: "user's id".to_string(),
        ..Definition::default()
    };
    let size = TableSize {
        rows: 1000,
        data_bytes: 150 << 20,
        index_bytes: 50 << 20,
        engine: "InnoDB".to_string(),
    };
    let c = change(
        w,
        Some(&(definition, size)),
        &settings.shards[1].endpoint,
        50,
    );
    assert_eq!((c.host.as_str(), c.port), ("db-b", 3307));
    assert_eq!(
        c.statement.as_deref(),
        Some(
            "ALTER TABLE `shop`.`users` MODIFY COLUMN `id` BIGINT NOT NULL AUTO_INCREMENT \
             COMMENT 'user''s id'"
        )
    );
    assert!(c.rebuilds);
    assert_eq!(c.rebuild_seconds_estimate, Some(4));
    assert!(
        c.gh_ost
            .as_deref()
            .is_some_and(|g| g.starts_with("gh-ost --host='db-b' --port=3307"))
    );
    assert!(c.pt_online_schema_change.is_some());
    let missing = change(w, None, &settings.shards[1].endpoint, 50);
    assert_eq!(missing.statement, None);
    assert!(missing.note.is_some());
}

/// What `read` finds for every widening of the first entry: an INT column, and no key.
fn found_for(settings: &Settings, snapshot: &Snapshot) -> Found {
    let entries = select(snapshot, None);
    let mut found = Found::default();
    for w in entries[0].widenings.iter() {
        let definition = Definition {
            column_type: "int(11)".to_string(),
            ..Definition::default()
        };
        found.definitions.insert(
            (w.shard.clone(), w.id.clone()),
            Some((definition, TableSize::default())),
        );
    }
    for s in &settings.shards {
        found.foreign_keys.insert(s.name.clone(), Vec::new());
    }
    found
}

#[test]
fn a_blocked_table_withholds_every_statement_on_its_shard_and_only_there() {
    let settings = settings();
    let snapshot = snapshot(&settings);
    let entries = select(&snapshot, None);
    let mut found = found_for(&settings, &snapshot);
    found.block(
        "a",
        "shop",
        "orders",
        "the keys of shop.orders: no".to_string(),
    );
    let planned = write_one(&settings, &entries[0], &found);
    let written: Vec<(String, bool, Option<String>)> = planned
        .plan
        .changes
        .iter()
        .map(|c| {
            (
                format!("{}/{}.{}", c.shard, c.table, c.column),
                c.statement.is_some() || c.gh_ost.is_some(),
                c.note.clone(),
            )
        })
        .collect();
    let withheld = Some("not written: the keys of shop.orders: no".to_string());
    assert_eq!(
        written,
        vec![
            ("a/users.id".to_string(), false, withheld.clone()),
            ("a/orders.user_id".to_string(), false, withheld.clone()),
            ("a/notes.user_ref".to_string(), false, withheld),
            ("b/users.id".to_string(), true, None),
        ]
    );
    let steps: Vec<&str> = planned
        .plan
        .steps
        .iter()
        .map(|s| s.shard.as_str())
        .collect();
    assert_eq!(steps, vec!["b"]);
}

/// What `read` finds on the PostgreSQL shard for the `orders.user_id` group: two
/// integer columns, the parent's `AS integer` sequence, and the key between them.
fn postgres_found(entry: &Entry<'_>) -> Found {
    let mut found = Found::default();
    for w in entry.widenings.iter() {
        let sequence = (w.id.table == "users").then(|| SequenceDefinition {
            schema: "public".to_string(),
            name: "users_id_seq".to_string(),
            data_type: "integer".to_string(),
            min_value: 1,
            max_value: i32::MAX.into(),
            increment: 1,
            identity: false,
            owned: true,
            column_default: true,
        });
        let definition = Definition {
            column_type: "integer".to_string(),
            sequence,
            ..Definition::default()
        };
        found.definitions.insert(
            (w.shard.clone(), w.id.clone()),
            Some((definition, TableSize::default())),
        );
    }
    found.foreign_keys.insert(
        "pg".to_string(),
        vec![ForeignKey {
            name: "orders_user_id_fkey".to_string(),
            schema: "public".to_string(),
            table: "orders".to_string(),
            columns: vec!["user_id".to_string()],
            parent_schema: "public".to_string(),
            parent_table: "users".to_string(),
            parent_columns: vec!["id".to_string()],
            on_update: "NO ACTION".to_string(),
            on_delete: "NO ACTION".to_string(),
            database: Some("app".to_string()),
            deferrable: None,
            match_type: None,
        }],
    );
    found
}

#[test]
fn a_postgresql_plan_keeps_its_keys_and_says_where_each_statement_runs() {
    let settings = fixtures::postgres_settings();
    let snapshot = fixtures::postgres_snapshot(&settings);
    let entries = select(&snapshot, None);
    let orders = entries
        .iter()
        .find(|e| e.column.id.table == "orders")
        .expect("orders.user_id");
    let mut found = postgres_found(orders);
    let planned = write_one(&settings, orders, &found);
    let plan = &planned.plan;
    assert_eq!(plan.target_type, "bigint");
    assert_eq!(plan.foreign_keys.len(), 1, "listed");
    let steps: Vec<&str> = plan.steps.iter().map(|s| s.statement.as_str()).collect();
    assert_eq!(
        steps,
        vec![
            "ALTER TABLE \"public\".\"orders\" ALTER COLUMN \"user_id\" TYPE bigint",
            "ALTER TABLE \"public\".\"users\" ALTER COLUMN \"id\" TYPE bigint",
            "ALTER SEQUENCE \"public\".\"users_id_seq\" AS bigint",
        ],
        "no key dropped or added"
    );
    let c = &plan.changes[1];
    assert_eq!((c.to_type.as_str(), c.port), ("bigint", 5432));
    let places: Vec<(&str, &str, usize)> = plan
        .postgres
        .iter()
        .map(|p| (p.database.as_str(), p.table.as_str(), p.statements.len()))
        .collect();
    assert_eq!(places, vec![("app", "orders", 1), ("app", "users", 2)]);
    assert_eq!(
        plan.postgres[1].online_note.as_deref(),
        Some("the table's indexes and keys were not read")
    );

    // A table of the same name blocked in another database blocks nothing here.
    found.block_in(
        "pg",
        Some("tenant"),
        "public",
        "users",
        "a view".to_string(),
    );
    assert_eq!(write_one(&settings, orders, &found).plan.steps.len(), 3);
    found.block_in("pg", Some("app"), "public", "users", "a view".to_string());
    let blocked = write_one(&settings, orders, &found);
    assert!(blocked.plan.steps.is_empty());
    assert!(
        blocked
            .plan
            .postgres
            .iter()
            .all(|p| p.statements.is_empty())
    );
    assert_eq!(
        blocked.plan.changes[0].note.as_deref(),
        Some("not written: a view")
    );
}

#[test]
fn a_columns_plan_found_alone_is_its_plan_in_the_whole_plan() {
    let settings = fixtures::chains_settings();
    let snapshot = fixtures::chains(&settings);
    let entries = select(&snapshot, None);
    // Every widened column found as INT, and a key from a chain's child to its parent.
    let mut found = Found::default();
    for w in entries.iter().flat_map(|e| e.widenings.iter()) {
        let definition = Definition {
            column_type: "int(11)".to_string(),
            extra: "auto_increment".to_string(),
            ..Definition::default()
        };
        let size = TableSize {
            rows: 10,
            data_bytes: 1 << 20,
            ..TableSize::default()
        };
        found
            .definitions
            .insert((w.shard.clone(), w.id.clone()), Some((definition, size)));
    }
    found.foreign_keys.insert(
        "a".to_string(),
        vec![ForeignKey {
            name: "fk_orders_user".to_string(),
            schema: "shop".to_string(),
            table: "orders".to_string(),
            columns: vec!["user_id".to_string()],
            parent_schema: "shop".to_string(),
            parent_table: "users".to_string(),
            parent_columns: vec!["id".to_string()],
            on_update: "RESTRICT".to_string(),
            on_delete: "CASCADE".to_string(),
            database: None,
            deferrable: None,
            match_type: None,
        }],
    );
    assert_eq!(entries.len(), 5);
    for e in &entries {
        let c = e.column;
        let (column, alone) = find(&snapshot, &c.shard, &c.id).expect("known");
        assert!(std::ptr::eq(column, c));
        let alone = alone.expect("in the plan");
        let json = |p: &Planned| serde_json::to_value(p).expect("JSON");
        assert_eq!(
            json(&write_one(&settings, &alone, &found)),
            json(&write_one(&settings, e, &found)),
            "{}/{}",
            c.shard,
            c.name()
        );
    }
    let users = find(&snapshot, "a", &ColumnId::new("shop", "users", "id"))
        .expect("known")
        .1
        .expect("in the plan");
    let planned = write_one(&settings, &users, &found);
    assert_eq!(planned.plan.changes.len(), 7);
    assert_eq!(planned.plan.foreign_keys.len(), 1);
    assert_eq!(planned.plan.steps.len(), 9, "{:?}", planned.plan.steps);
    // Not in the plan: fine, or only a child of a column that is.
    for (shard, name) in [("c", "tags"), ("a", "reviews")] {
        let id = if name == "tags" {
            ColumnId::new("shop", "tags", "id")
        } else {
            ColumnId::new("shop", "reviews", "note_id")
        };
        assert!(find(&snapshot, shard, &id).expect("known").1.is_none());
    }
    assert_eq!(
        find(&snapshot, "c", &ColumnId::new("shop", "nope", "id")).map(|_| ()),
        Err("no ID column shop.nope.id is known on shard \"c\"".to_string())
    );
}
