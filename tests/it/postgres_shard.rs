//! PostgreSQL shards through the whole daemon: real throwaway clusters polled by a real
//! headroom, asserted through /api/columns, /api/shards, the one-column paths and
//! /metrics, value by value. Sequence-fed columns (serial, identity, shared, narrowed and
//! widened, descending, cycling, never used, unreadable), declared foreign keys (across
//! types, several columns, to a partitioned table), what the monitoring user may not read,
//! several databases of the same names (rows, filters, series, one-column paths, histories
//! across a restart), hostile names, and a MySQL shard's rows beside them unchanged.
//!
//! Every shard is read as `monitor`, a role that is not a superuser and holds what the
//! documentation asks for, per watched database and schema (see [`grant_monitor`]):
//!
//! ```sql
//! CREATE ROLE monitor LOGIN;
//! GRANT CONNECT ON DATABASE app TO monitor;
//! GRANT USAGE ON SCHEMA public TO monitor;
//! GRANT SELECT ON ALL TABLES IN SCHEMA public TO monitor;
//! GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO monitor;
//! ```
//!
//! (`GRANT pg_read_all_data TO monitor` gives the same reads at once, but could not leave
//! one object out, as the tests of what the monitoring user may not read do.)

use headroom_sandbox::Postgres;
use serde_json::{Value, json};

use crate::harness::{
    TestApp, metric_value, poll_once, settings, settings_with_env, spawn_app, start_servers,
};

const MONITOR: &str = "monitor";

/// Starts a cluster on this (the test's) thread, with the `monitor` role.
fn cluster(name: &str) -> Postgres {
    let pg =
        Postgres::start(name).unwrap_or_else(|e| panic!("starting PostgreSQL cluster {name}: {e}"));
    exec(&pg, "postgres", "CREATE ROLE monitor LOGIN;");
    pg
}

/// Runs SQL as the superuser in `database`, panicking with the server's words.
fn exec(pg: &Postgres, database: &str, sql: &str) {
    pg.exec_in(database, sql)
        .unwrap_or_else(|e| panic!("SQL in {database:?}: {e}\n{sql}"));
}

/// `name` quoted as a PostgreSQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Creates `database` and runs `sql` in it.
fn database(pg: &Postgres, database: &str, sql: &str) {
    pg.create_database(database)
        .unwrap_or_else(|e| panic!("creating database {database:?}: {e}"));
    exec(pg, database, sql);
}

/// The monitoring grants of the module documentation, on `database` and its `schemas`.
fn grant_monitor(pg: &Postgres, database: &str, schemas: &[&str]) {
    let mut sql = format!(
        "GRANT CONNECT ON DATABASE {} TO monitor;\n",
        ident(database)
    );
    for schema in schemas {
        let s = ident(schema);
        sql.push_str(&format!(
            "GRANT USAGE ON SCHEMA {s} TO monitor;\n\
             GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO monitor;\n\
             GRANT SELECT ON ALL SEQUENCES IN SCHEMA {s} TO monitor;\n"
        ));
    }
    exec(pg, database, &sql);
}

/// A configuration of one PostgreSQL shard `pg` read as `monitor` through database
/// `postgres`, with `keys` (more TOML) in its `[[shards]]` table.
fn toml(pg: &Postgres, keys: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[poll]\ninterval = \"1h\"\nquery_timeout = \"10s\"\n\
         [[shards]]\nname = \"pg\"\nurl = \"{}\"\n{keys}",
        pg.url(MONITOR, "postgres")
    )
}

/// Runs a headroom on `toml` and waits until its shards were polled once.
async fn app(toml: &str) -> TestApp {
    let app = spawn_app(settings(toml)).await;
    app.wait_ready().await;
    app
}

async fn columns(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, doc) = app.get_json(&format!("/api/columns{query}")).await;
    assert_eq!(status, 200, "{doc:#}");
    doc["columns"].as_array().cloned().unwrap_or_default()
}

async fn shard(app: &TestApp) -> Value {
    let (status, doc) = app.get_json("/api/shards").await;
    assert_eq!(status, 200, "{doc:#}");
    doc["shards"][0].clone()
}

/// The row of `database`.`schema`.`table`.`column` among `rows`.
fn row<'a>(
    rows: &'a [Value],
    database: &str,
    schema: &str,
    table: &str,
    column: &str,
) -> &'a Value {
    rows.iter()
        .find(|c| {
            c["database"] == database
                && c["schema"] == schema
                && c["table"] == table
                && c["column"] == column
        })
        .unwrap_or_else(|| panic!("{database}.{schema}.{table}.{column} not in {rows:#?}"))
}

/// The fields `keys` of `row` (`null` for a missing one), as an object.
fn pick(row: &Value, keys: &[&str]) -> Value {
    keys.iter()
        .map(|k| (k.to_string(), row[*k].clone()))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// `database.table.column` of every row, sorted (all in schema `public`).
fn names(rows: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = rows
        .iter()
        .map(|c| {
            assert_eq!(c["schema"], "public", "{c:#}");
            format!(
                "{}.{}.{}",
                c["database"].as_str().unwrap_or("-"),
                c["table"].as_str().unwrap_or(""),
                c["column"].as_str().unwrap_or("")
            )
        })
        .collect();
    names.sort();
    names
}

const SEQUENCE_FIELDS: &[&str] = &[
    "kind",
    "source",
    "current",
    "max",
    "limited_by",
    "cycle",
    "type_mismatch",
    "status",
];

const SEQUENCES_SQL: &str = "
CREATE TABLE orders (id serial PRIMARY KEY);
SELECT setval('orders_id_seq', 2147483000);
CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);
INSERT INTO events DEFAULT VALUES; INSERT INTO events DEFAULT VALUES;
CREATE SEQUENCE shared_ids;
CREATE TABLE left_side (id bigint PRIMARY KEY DEFAULT nextval('shared_ids'));
CREATE TABLE right_side (id bigint PRIMARY KEY DEFAULT nextval('shared_ids'));
INSERT INTO left_side DEFAULT VALUES; INSERT INTO right_side DEFAULT VALUES;
INSERT INTO left_side DEFAULT VALUES;
CREATE SEQUENCE narrow_ids AS integer;
CREATE TABLE widened (id bigint PRIMARY KEY DEFAULT nextval('narrow_ids'));
SELECT setval('narrow_ids', 1000);
CREATE SEQUENCE wide_ids;
CREATE TABLE narrowed (id integer PRIMARY KEY DEFAULT nextval('wide_ids'));
SELECT setval('wide_ids', 2000000000);
CREATE SEQUENCE fresh;
CREATE TABLE idle (id bigint PRIMARY KEY DEFAULT nextval('fresh'));
CREATE SEQUENCE countdown AS integer INCREMENT BY -1;
CREATE TABLE down (id integer PRIMARY KEY DEFAULT nextval('countdown'));
SELECT setval('countdown', -2000000000);
CREATE SEQUENCE wheel AS integer CYCLE;
CREATE TABLE ring (id integer PRIMARY KEY DEFAULT nextval('wheel'));
INSERT INTO ring DEFAULT VALUES;
CREATE SEQUENCE secret;
CREATE TABLE hidden (id bigint PRIMARY KEY DEFAULT nextval('secret'));
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_fed_columns_are_bound_by_the_lower_limit_and_counted_in_their_direction() {
    let pg = cluster("sequences");
    database(&pg, "app", SEQUENCES_SQL);
    grant_monitor(&pg, "app", &["public"]);
    // SELECT on every table, but not on this one sequence.
    exec(&pg, "app", "REVOKE SELECT ON SEQUENCE secret FROM monitor;");
    let app = app(&toml(&pg, "")).await;
    let rows = columns(&app, "").await;
    let seq = |table: &str| pick(row(&rows, "app", "public", table, "id"), SEQUENCE_FIELDS);
    // A column fed by `public.{sequence}`, not cycling.
    let fed = |sequence: &str, current: i64, max: u64, by: &str, mismatch: bool, status: &str| {
        json!({"kind": "sequence", "source": format!("public.{sequence}"), "current": current, "max": max,
               "limited_by": by, "cycle": false, "type_mismatch": mismatch, "status": status})
    };
    const INT: u64 = 2_147_483_647;
    const BIG: u64 = 9_223_372_036_854_775_807;
    assert_eq!(
        seq("orders"),
        fed(
            "orders_id_seq",
            2_147_483_000,
            INT,
            "column",
            false,
            "critical"
        )
    );
    assert_eq!(
        seq("events"),
        fed("events_id_seq", 2, BIG, "column", false, "ok")
    );
    // One sequence feeds both: each is bound by all it handed out.
    for table in ["left_side", "right_side"] {
        assert_eq!(seq(table), fed("shared_ids", 3, BIG, "column", false, "ok"));
    }
    // A bigint column behind an integer sequence: the sequence runs out first, and the
    // column can hold all it hands out.
    assert_eq!(
        seq("widened"),
        fed("narrow_ids", 1000, INT, "sequence", false, "ok")
    );
    // An integer column behind a bigint sequence: the column runs out first.
    assert_eq!(
        seq("narrowed"),
        fed("wide_ids", 2_000_000_000, INT, "column", true, "critical")
    );
    assert_eq!(seq("idle"), fed("fresh", 0, BIG, "column", false, "ok"));
    let idle = row(&rows, "app", "public", "idle", "id");
    assert_eq!(idle["used_ratio"], json!(0.0));
    assert_eq!(idle["remaining"], json!(BIG));
    // Counted downwards from -1: 2,000,000,000 handed out of 2^31 (down to -2^31).
    assert_eq!(
        seq("down"),
        fed(
            "countdown",
            2_000_000_000,
            INT + 1,
            "column",
            false,
            "critical"
        )
    );
    assert_eq!(
        seq("ring"),
        json!({"kind": "sequence", "source": "public.wheel", "current": 1, "max": INT,
               "limited_by": "column", "cycle": true, "type_mismatch": false, "status": "ok"})
    );

    // The unreadable sequence's column is not measured, and the shard says why.
    let listed = names(&rows);
    assert!(!listed.contains(&"app.hidden.id".to_string()), "{listed:?}");
    assert_eq!(listed.len(), 9, "{listed:?}");
    let shard = shard(&app).await;
    assert_eq!(shard["up"], true, "{shard:#}");
    assert_eq!(shard["column_count"], 9);
    // PostgreSQL always refuses a value out of range: strict, and no sql_mode to show.
    assert_eq!(
        pick(&shard, &["strict_mode", "sql_mode"]),
        json!({"strict_mode": true, "sql_mode": null})
    );
    assert_eq!(
        shard["unresolved"],
        json!([
            "app.public.hidden.id: sequence public.secret: the monitoring user may not \
                read it: GRANT SELECT ON ALL SEQUENCES IN SCHEMA … (or the pg_read_all_data role)"
        ])
    );
    app.stop().await;
}

const KEYS_SQL: &str = "
CREATE TABLE parents (id bigserial PRIMARY KEY);
SELECT setval('parents_id_seq', 1000000);
CREATE TABLE children (id serial PRIMARY KEY, parent_id integer REFERENCES parents (id));
CREATE TABLE accounts (region integer, id bigint GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (region, id));
INSERT INTO accounts (region) VALUES (7), (7), (9);
CREATE TABLE ledger (region integer, account_id bigint,
    FOREIGN KEY (region, account_id) REFERENCES accounts (region, id));
CREATE TABLE measurements (id bigint GENERATED ALWAYS AS IDENTITY, taken date NOT NULL,
    PRIMARY KEY (id, taken)) PARTITION BY RANGE (taken);
CREATE TABLE measurements_2024 PARTITION OF measurements
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE measurements_2025 PARTITION OF measurements
    FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
INSERT INTO measurements (taken) VALUES ('2024-06-01'), ('2025-06-01');
CREATE TABLE readings (m_id bigint, m_taken date,
    FOREIGN KEY (m_id, m_taken) REFERENCES measurements (id, taken));
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_foreign_keys_are_bound_by_their_parents_and_partitions_are_listed_once() {
    let pg = cluster("keys");
    database(&pg, "app", KEYS_SQL);
    grant_monitor(&pg, "app", &["public"]);
    let app = app(&toml(&pg, "")).await;
    let rows = columns(&app, "").await;
    // Each partitioned table once, through its parent, and its key once.
    assert_eq!(
        names(&rows),
        [
            "app.accounts.id",
            "app.children.id",
            "app.children.parent_id",
            "app.ledger.account_id",
            "app.ledger.region",
            "app.measurements.id",
            "app.parents.id",
            "app.readings.m_id",
        ]
    );
    let fields = [
        "kind",
        "source",
        "current",
        "max",
        "type_mismatch",
        "status",
    ];
    let key = |table: &str, column: &str| pick(row(&rows, "app", "public", table, column), &fields);
    let fk = |parent: &str, current: i64, max: u64, mismatch: bool| {
        json!({"kind": "foreign_key", "source": parent, "current": current, "max": max,
               "type_mismatch": mismatch, "status": "ok"})
    };
    const INT: u64 = 2_147_483_647;
    const BIG: u64 = 9_223_372_036_854_775_807;
    // An integer child of a bigint parent: as far as the parent's sequence, within its own
    // type, which cannot hold all the parent's.
    assert_eq!(
        key("children", "parent_id"),
        fk("app.public.parents.id", 1_000_000, INT, true)
    );
    // Each pair of a two-column key: the region by MAX(accounts.region), which leads the
    // parent's primary key, the account by the parent's identity.
    assert_eq!(
        key("ledger", "region"),
        fk("app.public.accounts.region", 9, INT, false)
    );
    assert_eq!(
        key("ledger", "account_id"),
        fk("app.public.accounts.id", 3, BIG, false)
    );
    assert_eq!(
        key("readings", "m_id"),
        fk("app.public.measurements.id", 2, BIG, false)
    );
    let parent = row(&rows, "app", "public", "measurements", "id");
    assert_eq!(
        pick(parent, &["kind", "source", "current", "max"]),
        json!({"kind": "sequence", "source": "public.measurements_id_seq", "current": 2,
               "max": BIG})
    );
    let shard = shard(&app).await;
    assert_eq!(shard["unresolved"], json!([]), "{shard:#}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_monitoring_user_may_not_read_leaves_columns_unresolved_not_the_shard_down() {
    let pg = cluster("unreadable");
    let billing = "CREATE SCHEMA billing;
        CREATE TABLE billing.invoices (id serial PRIMARY KEY);
        CREATE TABLE billing.used (id serial PRIMARY KEY);
        INSERT INTO billing.used DEFAULT VALUES;";
    database(&pg, "app", &format!("{KEYS_SQL}{billing}"));
    grant_monitor(&pg, "app", &["public"]);
    // As for a table made after a one-time GRANT ... ON ALL TABLES, and a schema whose
    // USAGE was forgotten.
    exec(
        &pg,
        "app",
        "REVOKE SELECT ON accounts FROM monitor;
         GRANT SELECT ON ALL TABLES IN SCHEMA billing TO monitor;
         GRANT SELECT ON ALL SEQUENCES IN SCHEMA billing TO monitor;",
    );
    // A database closed to everyone but its owner: watched by default, so said.
    database(&pg, "closed", "CREATE TABLE t (id serial PRIMARY KEY);");
    exec(
        &pg,
        "postgres",
        "REVOKE CONNECT ON DATABASE closed FROM PUBLIC;",
    );
    let app = app(&toml(&pg, "")).await;
    let shard = shard(&app).await;
    assert_eq!(shard["up"], true, "{shard:#}");
    // MAX(accounts.region) cannot be read: its child is not measured, and says why. An
    // unused sequence's own row cannot be read without USAGE on its schema.
    assert_eq!(
        shard["unresolved"],
        json!([
            "database closed: the monitoring user may not connect to it: GRANT CONNECT ON \
             DATABASE to it, or leave it out with databases",
            "app.billing.invoices.id: sequence billing.invoices_id_seq: the monitoring user \
             may not use its schema, and it has handed out nothing since it was last set: \
             GRANT USAGE ON SCHEMA … to it",
            "app.public.ledger.region: parent app.public.accounts.region has no known value \
             and neither column leads an index",
        ])
    );
    let rows = columns(&app, "").await;
    assert_eq!(rows.len(), 8, "{rows:#?}");
    // The parent's identity needs no read of its table; a used sequence, no USAGE.
    let account = row(&rows, "app", "public", "ledger", "account_id");
    assert_eq!(account["current"], 3);
    assert_eq!(row(&rows, "app", "billing", "used", "id")["current"], 1);
    // Wraparound: every database of the server, the closed and template ones too; the
    // oldest tables of those watched.
    let databases = shard["databases"].as_array().cloned().unwrap_or_default();
    let named: Vec<&str> = databases
        .iter()
        .filter_map(|d| d["database"].as_str())
        .collect();
    assert_eq!(
        named,
        ["app", "closed", "postgres", "template0", "template1"]
    );
    let app_db = &databases[0];
    let age = app_db["xid"]["age"].as_i64().expect("an age");
    assert!(age > 0 && age < 1_000_000, "{app_db:#}");
    assert_eq!(app_db["xid"]["status"], "ok");
    assert_eq!(app_db["status"], "ok");
    assert!(app_db["multixact"]["age"].as_i64().is_some(), "{app_db:#}");
    assert!(
        !app_db["oldest_tables"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "{app_db:#}"
    );
    assert!(
        databases[1]["oldest_tables"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
    let metrics = app.metrics_text();
    let gauge = metric_value(
        &metrics,
        "headroom_database_xid_age",
        &[("shard", "pg"), ("database", "app")],
    );
    assert_eq!(gauge, Some(age as f64), "{metrics}");
    assert_eq!(
        metric_value(
            &metrics,
            "headroom_database_wraparound_status",
            &[("shard", "pg"), ("database", "template0")],
        ),
        Some(0.0)
    );
    app.stop().await;
}

/// Database `name` with the same table as every other: `public.orders.id` at `at`.
fn same_names(pg: &Postgres, name: &str, at: u32) {
    database(
        pg,
        name,
        &format!(
            "CREATE TABLE orders (id serial PRIMARY KEY); SELECT setval('orders_id_seq', {at});"
        ),
    );
    grant_monitor(pg, name, &["public"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databases_of_the_same_names_are_apart_in_rows_filters_and_series_and_globs_narrow_them() {
    let pg = cluster("same-names");
    same_names(&pg, "app_eu", 1000);
    same_names(&pg, "app_us", 2000);
    same_names(&pg, "other", 5);
    let app = app(&toml(&pg, "")).await;
    // Every database that accepts connections (`postgres` has no table).
    let rows = columns(&app, "").await;
    assert_eq!(
        names(&rows),
        ["app_eu.orders.id", "app_us.orders.id", "other.orders.id"]
    );
    for (database, current) in [("app_eu", 1000), ("app_us", 2000), ("other", 5)] {
        let r = row(&rows, database, "public", "orders", "id");
        assert_eq!(r["current"], current);
        assert_eq!(
            r["plan_url"],
            format!("/api/columns/pg/public/orders/id?database={database}")
        );
    }
    // `database` right after `shard`; `limited_by` and `cycle` after `source`.
    let (_, raw) = app.get_text("/api/columns?database=app_eu").await;
    assert!(
        raw.contains(
            "{\"shard\":\"pg\",\"database\":\"app_eu\",\"schema\":\"public\",\
             \"table\":\"orders\",\"column\":\"id\",\"column_type\":\"integer\",\
             \"kind\":\"sequence\",\"source\":\"public.orders_id_seq\",\
             \"limited_by\":\"column\",\"cycle\":false,\"parent\":null,"
        ),
        "{raw}"
    );
    // Each one-column path finds the column of the database it names.
    for (database, current) in [("app_us", 2000), ("app_eu", 1000), ("other", 5)] {
        let path = format!("/api/columns/pg/public/orders/id/history?database={database}");
        let (status, history) = app.get_json(&path).await;
        assert_eq!(status, 200, "{history:#}");
        assert_eq!(history["database"], database, "{history:#}");
        assert_eq!(history["points"][0][1], current, "{history:#}");
        let (status, planned) = app
            .get_json(&format!(
                "/api/columns/pg/public/orders/id?database={database}"
            ))
            .await;
        assert_eq!(status, 200, "{planned:#}");
        assert_eq!(
            pick(&planned, &["database", "current"]),
            json!({"database": database, "current": current}),
            "{planned:#}"
        );
    }
    let (status, _) = app
        .get_json("/api/columns/pg/public/orders/id/history")
        .await;
    assert_eq!(status, 404);
    let only = columns(&app, "?database=app_us").await;
    assert_eq!(names(&only), ["app_us.orders.id"]);
    assert_eq!(
        columns(&app, "?database=nowhere").await,
        Vec::<Value>::new()
    );
    let (status, text) = app.get_text("/metrics").await;
    assert_eq!(status, 200);
    for (database, current) in [("app_eu", 1000.0), ("app_us", 2000.0), ("other", 5.0)] {
        let labels = [
            ("shard", "pg"),
            ("database", database),
            ("schema", "public"),
            ("table", "orders"),
            ("column", "id"),
            ("kind", "sequence"),
        ];
        assert_eq!(
            metric_value(&text, "headroom_column_current", &labels),
            Some(current),
            "{database}"
        );
    }
    assert!(
        text.contains(
            "headroom_column_current{shard=\"pg\",database=\"app_eu\",schema=\"public\",\
             table=\"orders\",column=\"id\",kind=\"sequence\"} 1000\n"
        ),
        "{text}"
    );
    app.stop().await;

    // Narrowed by a glob: the home database `postgres` is not among them.
    let store = poll_once(&toml(&pg, "databases = [\"app_*\"]\n")).await;
    let rows: Vec<Value> = store.read().shards[0]
        .columns
        .iter()
        .map(|c| serde_json::to_value(c).unwrap_or_default())
        .collect();
    assert_eq!(names(&rows), ["app_eu.orders.id", "app_us.orders.id"]);

    // A pattern that matches nothing fails the shard's poll, naming it.
    let store = poll_once(&toml(&pg, "databases = [\"app_*\", \"ap_eu\"]\n")).await;
    let snap = store.read();
    let s = &snap.shards[0];
    assert!(!s.up);
    assert_eq!(
        s.last_error.as_deref(),
        Some("databases \"ap_eu\" match no database that accepts connections")
    );
    assert_eq!(s.last_error_class, Some("not_visible"));
    assert!(s.columns.is_empty());
}

/// The values of the history points of `public.orders.id` in `database`.
async fn history(app: &TestApp, database: &str) -> Vec<Value> {
    let path = format!("/api/columns/pg/public/orders/id/history?database={database}");
    let (status, doc) = app.get_json(&path).await;
    assert_eq!(status, 200, "{doc:#}");
    assert_eq!(doc["database"], database, "{doc:#}");
    let points = doc["points"].as_array().cloned().unwrap_or_default();
    points.iter().map(|p| p[1].clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_of_same_named_columns_in_two_databases_survive_a_restart_apart() {
    let pg = cluster("restart");
    same_names(&pg, "app_eu", 1000);
    same_names(&pg, "app_us", 2000);
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.json");
    let toml = format!(
        "{}[state]\npath = {:?}\n",
        toml(&pg, ""),
        state.display().to_string()
    );
    let first = app(&toml).await;
    assert_eq!(history(&first, "app_eu").await, [json!(1000)]);
    assert_eq!(history(&first, "app_us").await, [json!(2000)]);
    first.stop().await;

    exec(&pg, "app_eu", "SELECT setval('orders_id_seq', 1300);");
    exec(&pg, "app_us", "SELECT setval('orders_id_seq', 2600);");
    let second = app(&toml).await;
    assert_eq!(history(&second, "app_eu").await, [json!(1000), json!(1300)]);
    assert_eq!(history(&second, "app_us").await, [json!(2000), json!(2600)]);
    second.stop().await;
}

#[test]
fn databases_on_a_mysql_shard_is_a_configuration_error() {
    let toml = "[[shards]]\nname = \"m\"\nurl = \"mysql://monitor@db1:3306/\"\n\
                databases = [\"app\"]\n";
    let problems: Vec<String> = match headroom::config::from_toml_str(toml, &|_| None) {
        Ok(_) => Vec::new(),
        Err(problems) => problems.iter().map(|p| p.to_string()).collect(),
    };
    assert_eq!(
        problems,
        [
            "shards[0].databases: applies to PostgreSQL shards only: a MySQL shard's databases \
          are its schemas"
        ]
    );
    // Both PostgreSQL schemes take it.
    for scheme in ["postgres", "postgresql"] {
        let toml = format!(
            "[[shards]]\nname = \"p\"\nurl = \"{scheme}://monitor@db1:5432/postgres\"\n\
             databases = [\"app\", \"app_*\"]\n"
        );
        let parsed = settings_with_env(&toml, &[]);
        assert_eq!(
            parsed.shards[0].databases,
            Some(vec!["app".to_string(), "app_*".to_string()])
        );
    }
}

const HOSTILE_DATABASE: &str = "app \"eu\" {table} #1/?&=%+ ñ";
const HOSTILE_SCHEMA: &str = "we\"ird {table}; --";
const HOSTILE_TABLE: &str = "t#\"{column}";
const HOSTILE_COLUMN: &str = "ñandú\u{7}id";
const HOSTILE_SEQUENCE: &str = "seq \"{table}\" #";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_are_rendered_exactly_and_their_one_column_paths_find_the_column() {
    let pg = cluster("hostile");
    let (schema, sequence) = (ident(HOSTILE_SCHEMA), ident(HOSTILE_SEQUENCE));
    database(
        &pg,
        HOSTILE_DATABASE,
        &format!(
            "CREATE SCHEMA {schema};
             CREATE SEQUENCE {schema}.{sequence} AS integer;
             CREATE TABLE {schema}.{table} ({column} integer PRIMARY KEY
                 DEFAULT nextval('{schema}.{sequence}'));
             SELECT setval('{schema}.{sequence}', 123456789);",
            table = ident(HOSTILE_TABLE),
            column = ident(HOSTILE_COLUMN),
        ),
    );
    grant_monitor(&pg, HOSTILE_DATABASE, &[HOSTILE_SCHEMA]);
    let app = app(&toml(&pg, "")).await;
    let rows = columns(&app, "").await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let r = row(
        &rows,
        HOSTILE_DATABASE,
        HOSTILE_SCHEMA,
        HOSTILE_TABLE,
        HOSTILE_COLUMN,
    );
    assert_eq!(
        pick(
            r,
            &["shard", "kind", "source", "current", "max", "limited_by"]
        ),
        json!({"shard": "pg", "kind": "sequence",
               "source": format!("{HOSTILE_SCHEMA}.{HOSTILE_SEQUENCE}"),
               "current": 123_456_789, "max": 2_147_483_647, "limited_by": "column"})
    );
    let query = "?database=app%20%22eu%22%20%7Btable%7D%20%231%2F%3F%26%3D%25%2B%20%C3%B1";
    let path = "/api/columns/pg/we%22ird%20%7Btable%7D%3B%20--/t%23%22%7Bcolumn%7D/\
                %C3%B1and%C3%BA%07id";
    assert_eq!(r["plan_url"], format!("{path}{query}"));

    let (status, history) = app.get_json(&format!("{path}/history{query}")).await;
    assert_eq!(status, 200, "{history:#}");
    assert_eq!(
        pick(
            &history,
            &["shard", "database", "schema", "table", "column", "max"]
        ),
        json!({"shard": "pg", "database": HOSTILE_DATABASE, "schema": HOSTILE_SCHEMA,
               "table": HOSTILE_TABLE, "column": HOSTILE_COLUMN, "max": 2_147_483_647})
    );
    // Without its database the column is another (a MySQL column's name): not found.
    let (status, _) = app.get_json(&format!("{path}/history")).await;
    assert_eq!(status, 404);
    let (status, page) = app
        .get_text(&format!("{}{query}", path.replacen("/api", "", 1)))
        .await;
    assert_eq!(status, 200, "{page}");

    let (status, text) = app.get_text("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        text.contains(
            "headroom_column_current{shard=\"pg\",database=\"app \\\"eu\\\" {table} #1/?&=%+ ñ\",\
             schema=\"we\\\"ird {table}; --\",table=\"t#\\\"{column}\",column=\"ñandú\u{7}id\",\
             kind=\"sequence\"} 123456789\n"
        ),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mysql_shard_beside_a_postgres_one_keeps_its_rows_and_series_unchanged() {
    let servers = start_servers(&["pg-beside"]);
    servers[0]
        .exec(
            "CREATE DATABASE shop;
             CREATE TABLE shop.t (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=100;",
        )
        .expect("seed");
    let pg = cluster("beside");
    same_names(&pg, "shop", 41);
    let toml = format!(
        "{}[[shards]]\nname = \"my\"\nurl = \"{}\"\n",
        toml(&pg, "databases = [\"shop\"]\n"),
        servers[0].url("root", None)
    );
    let app = app(&toml).await;
    let rows = columns(&app, "").await;
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let mysql = rows
        .iter()
        .find(|c| c["shard"] == "my")
        .unwrap_or_else(|| panic!("no MySQL row in {rows:#?}"));
    let keys: Vec<&str> = mysql
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    for absent in ["database", "limited_by", "cycle"] {
        assert!(!keys.contains(&absent), "{keys:?}");
    }
    assert_eq!(keys.len(), 24, "{keys:?}");
    let (_, raw) = app.get_text("/api/columns?shard=my").await;
    assert!(
        raw.contains(
            "{\"shard\":\"my\",\"schema\":\"shop\",\"table\":\"t\",\"column\":\"id\",\
             \"column_type\":\"int(11)\",\"kind\":\"auto_increment\",\"source\":null,\
             \"parent\":null,\"evidence\":null,\"current\":100,"
        ),
        "{raw}"
    );
    assert_eq!(
        pick(
            mysql,
            &["schema", "table", "column", "kind", "current", "plan_url"]
        ),
        json!({"schema": "shop", "table": "t", "column": "id", "kind": "auto_increment",
               "current": 100, "plan_url": "/api/columns/my/shop/t/id"})
    );
    let pg_row = row(&rows, "shop", "public", "orders", "id");
    assert_eq!(
        pick(pg_row, &["shard", "current", "limited_by", "cycle"]),
        json!({"shard": "pg", "current": 41, "limited_by": "column", "cycle": false})
    );
    // A database filter selects PostgreSQL columns only.
    assert_eq!(
        names(&columns(&app, "?database=shop").await),
        ["shop.orders.id"]
    );

    let (_, text) = app.get_text("/metrics").await;
    assert!(
        text.contains(
            "headroom_column_current{shard=\"my\",schema=\"shop\",table=\"t\",column=\"id\",\
             kind=\"auto_increment\"} 100\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "headroom_column_current{shard=\"pg\",database=\"shop\",schema=\"public\",\
             table=\"orders\",column=\"id\",kind=\"sequence\"} 41\n"
        ),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_columns_store_ids_of_a_mysql_ticket_source_and_of_a_sequence_source() {
    let servers = start_servers(&["pg-tickets"]);
    servers[0]
        .exec(&headroom_sandbox::ticket_server_sql(1, 3_000_000_001))
        .expect("seed the ticket server");
    let pg = cluster("sources");
    database(
        &pg,
        "app",
        "CREATE TABLE listings (id bigserial PRIMARY KEY, ticket_id integer NOT NULL);
         CREATE INDEX ON listings (ticket_id);
         CREATE TABLE photos (id bigserial PRIMARY KEY, photo_id integer NOT NULL);
         CREATE SEQUENCE global_ids INCREMENT BY 2;
         SELECT setval('global_ids', 7000000001);",
    );
    grant_monitor(&pg, "app", &["public"]);
    let keys = format!(
        "[[sources]]\nname = \"tickets64\"\nkind = \"ticket_server\"\nservers = [\"{}\"]\n\
         table = \"Tickets64\"\n\
         [[sources]]\nname = \"ids\"\nkind = \"sequence\"\nservers = [\"{}\"]\n\
         sequence = \"public.global_ids\"\n\
         [[references]]\nsource = \"tickets64\"\ncolumns = [\"public.listings.ticket_id\"]\n\
         [[references]]\nsource = \"ids\"\ncolumns = [\"public.photos.photo_id\"]\n",
        servers[0].url("root", Some("tickets")),
        pg.url(MONITOR, "app"),
    );
    // Polled every second: a poll after the sources were read sees them.
    let app = app(&toml(&pg, &keys).replace("interval = \"1h\"", "interval = \"1s\"")).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let rows = columns(&app, "?kind=reference").await;
        let bound = rows.len() == 2
            && rows
                .iter()
                .all(|c| c["current"].as_i64().is_some_and(|n| n > 2_147_483_647));
        if bound {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{rows:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let rows = columns(&app, "?kind=reference").await;
    let ticket = row(&rows, "app", "public", "listings", "ticket_id");
    assert_eq!(
        pick(ticket, &["source", "max", "status", "type_mismatch"]),
        json!({"source": "tickets64", "max": 2_147_483_647, "status": "exhausted",
               "type_mismatch": true})
    );
    // Nothing handed out yet: the ticket before the first.
    assert_eq!(ticket["current"], 2_999_999_999_i64, "{ticket:#}");
    let photo = row(&rows, "app", "public", "photos", "photo_id");
    assert_eq!(
        pick(
            photo,
            &["source", "current", "max", "status", "type_mismatch"]
        ),
        json!({"source": "ids", "current": 7_000_000_001_i64, "max": 2_147_483_647,
               "status": "exhausted", "type_mismatch": true})
    );
    let (_, sources) = app.get_json("/api/sources").await;
    let ids = sources["sources"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "ids"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(ids["kind"], "sequence", "{ids:#}");
    assert_eq!(ids["current"], 7_000_000_001_i64, "{ids:#}");
    assert_eq!(ids["collision_risk"], false, "{ids:#}");
    app.stop().await;
}
