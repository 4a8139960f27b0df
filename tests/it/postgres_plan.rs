//! `headroom plan` against a real throwaway PostgreSQL cluster: in database `app`, a
//! `serial` column near 2^31 whose foreign-key child (in a table with a hostile name) must
//! widen with it; in a database with a hostile name, a `bigint` column behind an `AS
//! integer` sequence. The plan's SQL fed to psql, or each change's online steps run in
//! order, leave `headroom check` with nothing critical or mismatched, the foreign keys in
//! place and the rows as they were.

use headroom_sandbox::Postgres;
use serde_json::Value;

use crate::harness::headroom;

/// A child table named to end a quote, a statement and a comment.
const CHILD: &str = "or\"ders'{table}; --";
/// A database named to end a quote in a connection string and in a psql argument, and a
/// line (a psql meta-command ends at its line's end).
const DATABASE: &str = "leg'acy \"{db}\" \\x\n";

/// The child table as a statement names it.
fn child() -> String {
    format!("\"{}\"", CHILD.replace('"', "\"\""))
}

/// Starts a cluster on this (the test's) thread.
fn cluster(name: &str) -> Postgres {
    Postgres::start(name).unwrap_or_else(|e| panic!("starting PostgreSQL cluster {name}: {e}"))
}

fn exec(pg: &Postgres, database: &str, sql: &str) -> String {
    pg.exec_in(database, sql)
        .unwrap_or_else(|e| panic!("SQL in {database:?}: {e}\n{sql}"))
}

/// `app`: `users.id` serial at 2,147,000,001 of 2,147,483,647 and its child
/// `CHILD.user_id`; the hostile database: `legacy.id` bigint behind an `AS integer`
/// sequence at the same value.
fn seed(pg: &Postgres) {
    pg.create_database("app").expect("database app");
    exec(
        pg,
        "app",
        &format!(
            "CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);
COMMENT ON COLUMN users.id IS 'the user''s id';
SELECT setval('users_id_seq', 2147000000);
INSERT INTO users (name) VALUES ('a'), ('b');
CREATE TABLE {child} (id serial PRIMARY KEY,
    user_id integer NOT NULL REFERENCES users (id) ON DELETE CASCADE DEFERRABLE,
    note text);
INSERT INTO {child} (user_id, note) SELECT id, name FROM users;",
            child = child()
        ),
    );
    pg.create_database(DATABASE).expect("the hostile database");
    exec(
        pg,
        DATABASE,
        "CREATE SEQUENCE narrow_ids AS integer;
CREATE TABLE legacy (id bigint PRIMARY KEY DEFAULT nextval('narrow_ids'));
ALTER SEQUENCE narrow_ids OWNED BY legacy.id;
SELECT setval('narrow_ids', 2147000000);
INSERT INTO legacy DEFAULT VALUES;",
    );
}

fn toml(pg: &Postgres) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[poll]\nquery_timeout = \"10s\"\n\
         [plan]\nrebuild_mb_per_second = 10\n\
         [[shards]]\nname = \"pg\"\nurl = \"{}\"\n",
        pg.url("postgres", "postgres")
    )
}

/// `database.schema.table.column status` of every column at warning or worse or
/// mismatched, as `headroom check --json --all` reports them.
fn at_risk(config: &str) -> Vec<String> {
    let (code, stdout, stderr) = headroom("check", config, &["--json", "--all"]);
    assert!(code <= 2, "{stdout}{stderr}");
    let doc: Value = serde_json::from_str(&stdout).expect("one JSON document");
    let mut out: Vec<String> = doc["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .filter(|c| c["status"] != "ok" || c["type_mismatch"] == true)
        .map(|c| {
            format!(
                "{}.{}.{}.{} {}",
                c["database"].as_str().unwrap_or_default(),
                c["schema"].as_str().unwrap_or_default(),
                c["table"].as_str().unwrap_or_default(),
                c["column"].as_str().unwrap_or_default(),
                c["status"].as_str().unwrap_or_default()
            )
        })
        .collect();
    out.sort();
    out
}

/// The plan's JSON document.
fn plan(config: &str) -> Value {
    let (code, stdout, stderr) = headroom("plan", config, &["--format", "json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    serde_json::from_str(&stdout).expect("one JSON document")
}

/// The column of the plan whose `table` is `table`.
fn planned<'a>(plan: &'a Value, table: &str) -> &'a Value {
    plan["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .find(|c| c["table"] == table && c["plan"]["same_as"].is_null())
        .unwrap_or_else(|| panic!("{table} not planned in full: {plan:#}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect()
}

/// `column type`, foreign keys and sequences of the `app` database after a widening.
fn app_shape(pg: &Postgres) -> String {
    exec(
        pg,
        "app",
        "SELECT c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
         WHERE c.relname IN ('users', 'or\"ders''{table}; --') AND a.attnum > 0
           AND NOT a.attisdropped ORDER BY 1;
         SELECT conname || ': ' || pg_get_constraintdef(oid) || ' ' || convalidated::text
         FROM pg_constraint WHERE contype IN ('f', 'p')
           AND connamespace = 'public'::regnamespace ORDER BY 1;
         SELECT seqtypid::regtype::text || ' ' || seqmax FROM pg_sequence
         WHERE seqrelid = 'users_id_seq'::regclass;
         SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef
         WHERE adrelid = 'users'::regclass;
         SELECT coalesce(col_description(attrelid, attnum), '(none)') FROM pg_attribute
         WHERE attrelid = 'users'::regclass AND attname = 'id';",
    )
}

#[test]
fn plan_format_sql_fed_to_psql_widens_every_column_in_its_database() {
    let pg = cluster("pg-plan-sql");
    seed(&pg);
    let config = toml(&pg);
    assert_eq!(
        at_risk(&config),
        vec![
            "app.public.or\"ders'{table}; --.user_id critical".to_string(),
            "app.public.users.id critical".to_string(),
            format!("{DATABASE}.public.legacy.id critical"),
        ]
    );

    let doc = plan(&config);
    // The child and its parent hold the same values (equal ratios: by name): the group is
    // written out under the child, its own change first.
    let users = planned(&doc, CHILD);
    assert_eq!(planned(&doc, "legacy")["plan"]["same_as"], Value::Null);
    assert_eq!(users["plan"]["target_type"], "bigint");
    let changes = users["plan"]["changes"].as_array().expect("changes");
    let summary: Vec<String> = changes
        .iter()
        .map(|c| {
            format!(
                "{}.{} {} -> {} rebuilds={}",
                c["table"].as_str().unwrap_or_default(),
                c["column"].as_str().unwrap_or_default(),
                c["from_type"].as_str().unwrap_or_default(),
                c["to_type"].as_str().unwrap_or_default(),
                c["rebuilds"]
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            format!("{CHILD}.user_id integer -> bigint rebuilds=true"),
            "users.id integer -> bigint rebuilds=true".to_string(),
        ]
    );
    assert_eq!(changes[1]["gh_ost"], Value::Null);
    assert_eq!(changes[1]["pt_online_schema_change"], Value::Null);
    assert_eq!(changes[1]["port"], pg.port());
    assert_eq!(changes[1]["definition"]["sequence"]["name"], "users_id_seq");
    assert_eq!(changes[1]["definition"]["sequence"]["data_type"], "integer");
    assert_eq!(changes[1]["definition"]["sequence"]["owned"], true);
    assert_eq!(changes[1]["definition"]["comment"], "the user's id");
    assert!(
        changes[1]["note"]
            .as_str()
            .is_some_and(|n| n.contains("ACCESS EXCLUSIVE")),
        "{users:#}"
    );
    let size = &changes[1]["table_size"];
    assert_eq!(size["engine"], "heap");
    assert!(size["data_bytes"].as_u64().is_some_and(|b| b > 0), "{size}");
    assert!(
        size["index_bytes"].as_u64().is_some_and(|b| b > 0),
        "{size}"
    );
    // The key is listed, never dropped: PostgreSQL keeps it through the type change.
    let keys = users["plan"]["foreign_keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["database"], "app");
    assert_eq!(keys[0]["table"], CHILD);
    assert_eq!(keys[0]["on_delete"], "CASCADE");
    assert_eq!(keys[0]["deferrable"], "DEFERRABLE");
    let expected = vec![
        format!(
            "ALTER TABLE \"public\".{} ALTER COLUMN \"user_id\" TYPE bigint",
            child()
        ),
        "ALTER TABLE \"public\".\"users\" ALTER COLUMN \"id\" TYPE bigint".to_string(),
        "ALTER SEQUENCE \"public\".\"users_id_seq\" AS bigint".to_string(),
    ];
    let steps: Vec<String> = users["plan"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["statement"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(steps, expected);
    let pg_changes = users["plan"]["postgres"].as_array().expect("postgres");
    assert_eq!(pg_changes.len(), 2);
    assert_eq!(pg_changes[0]["database"], "app");
    assert_eq!(
        strings(&pg_changes[0]["statements"]),
        expected[..1].to_vec()
    );
    assert_eq!(
        strings(&pg_changes[1]["statements"]),
        expected[1..].to_vec()
    );
    assert!(
        strings(&pg_changes[1]["online_steps"])
            .iter()
            .any(|s| s.starts_with("CREATE UNIQUE INDEX CONCURRENTLY")),
        "{users:#}"
    );

    let legacy = planned(&doc, "legacy");
    assert_eq!(legacy["database"], DATABASE);
    assert_eq!(legacy["limited_by"], "sequence");
    let change = &legacy["plan"]["changes"][0];
    assert_eq!(change["from_type"], "bigint");
    assert_eq!(change["to_type"], "bigint");
    assert_eq!(change["rebuilds"], false);
    assert_eq!(change["rebuild_seconds_estimate"], Value::Null);
    assert_eq!(
        change["statement"],
        "ALTER SEQUENCE \"public\".\"narrow_ids\" AS bigint"
    );
    assert_eq!(legacy["plan"]["postgres"][0]["database"], DATABASE);
    assert_eq!(
        legacy["plan"]["postgres"][0]["online_steps"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );

    let (code, sql, stderr) = headroom("plan", &config, &["--format", "sql"]);
    assert_eq!(code, 0, "{sql}{stderr}");
    assert!(sql.contains("\\set ON_ERROR_STOP on\n"), "{sql}");
    assert!(
        sql.contains(
            "\\connect -reuse-previous=on '\"dbname=''leg\\\\''acy \"\"{db}\"\" \\\\\\\\x\\012''\"'\n"
        ),
        "{sql}"
    );
    // Fed to psql as it is: it connects to each database in turn.
    exec(&pg, "postgres", &sql);

    assert_eq!(at_risk(&config), Vec::<String>::new());
    let shape = app_shape(&pg);
    assert!(shape.contains("users.id bigint\n"), "{shape}");
    assert!(
        shape.contains(&format!("{CHILD}.user_id bigint\n")),
        "{shape}"
    );
    assert!(
        shape.contains(&format!(
            "{}_user_id_fkey: FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE DEFERRABLE true\n",
            CHILD
        )),
        "{shape}"
    );
    assert!(shape.contains("bigint 9223372036854775807\n"), "{shape}");
    assert!(shape.contains("the user's id"), "{shape}");
    let rows = exec(
        &pg,
        "app",
        &format!(
            "INSERT INTO users (name) VALUES ('c') RETURNING id;
             SELECT count(*) FROM {};",
            child()
        ),
    );
    assert_eq!(rows, "2147000003\n2\n");
    let legacy = exec(
        &pg,
        DATABASE,
        "SELECT seqtypid::regtype::text || ' ' || seqmax FROM pg_sequence
         WHERE seqrelid = 'narrow_ids'::regclass;",
    );
    assert_eq!(legacy, "bigint 9223372036854775807\n");
}

#[test]
fn the_online_steps_in_the_plans_order_widen_and_keep_every_row_and_key() {
    online_steps_widen("pg-plan-online", false);
}

#[test]
fn the_online_steps_parent_first_widen_and_keep_every_row_and_key() {
    online_steps_widen("pg-plan-online-parent", true);
}

/// Runs each change's online steps in order, the changes in the plan's order (the child
/// first) or `parent_first`, and checks that the columns are widened with every row, key,
/// default and comment kept, and nothing of the steps left behind.
fn online_steps_widen(name: &str, parent_first: bool) {
    let pg = cluster(name);
    seed(&pg);
    let config = toml(&pg);
    let doc = plan(&config);
    let group = planned(&doc, CHILD);
    let mut changes = group["plan"]["postgres"]
        .as_array()
        .expect("postgres")
        .clone();
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[1]["table"], "users");
    // Either order: the parent's swap drops and adds again, by name, the keys that
    // reference it, whichever column of the child they are on by then.
    if parent_first {
        changes.reverse();
    }
    let before = exec(
        &pg,
        "app",
        &format!("SELECT id, user_id, note FROM {} ORDER BY id;", child()),
    );
    // Each change's steps in order, in autocommit mode.
    for change in &changes {
        assert_eq!(change["online_note"], Value::Null, "{change:#}");
        let steps = strings(&change["online_steps"]);
        let script: String = steps.iter().map(|s| format!("{s};\n")).collect();
        exec(&pg, "app", &script);
    }

    let shape = app_shape(&pg);
    assert!(shape.contains("users.id bigint\n"), "{shape}");
    assert!(
        shape.contains(&format!("{CHILD}.user_id bigint\n")),
        "{shape}"
    );
    assert!(
        shape.contains("users_pkey: PRIMARY KEY (id) true\n"),
        "{shape}"
    );
    assert!(
        shape.contains(&format!(
            "{}_user_id_fkey: FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE DEFERRABLE true\n",
            CHILD
        )),
        "{shape}"
    );
    assert!(shape.contains("bigint 9223372036854775807\n"), "{shape}");
    assert!(
        shape.contains("nextval('users_id_seq'::regclass)\n"),
        "{shape}"
    );
    assert!(shape.contains("the user's id"), "{shape}");
    let after = exec(
        &pg,
        "app",
        &format!("SELECT id, user_id, note FROM {} ORDER BY id;", child()),
    );
    assert_eq!(after, before);
    // The sequence still feeds the column, and no trigger or function is left.
    let rows = exec(
        &pg,
        "app",
        "INSERT INTO users (name) VALUES ('c') RETURNING id;
         SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal;
         SELECT count(*) FROM pg_proc WHERE proname LIKE 'headroom%';",
    );
    assert_eq!(rows, "2147000003\n0\n0\n");
    let at_risk: Vec<String> = at_risk(&config)
        .into_iter()
        .filter(|c| c.starts_with("app."))
        .collect();
    assert_eq!(at_risk, Vec::<String>::new());
}

#[tokio::test]
async fn the_column_endpoint_serves_a_postgresql_columns_plan() {
    let pg = cluster("pg-plan-api");
    seed(&pg);
    let config = toml(&pg);
    let app = crate::harness::spawn_app(crate::harness::settings(&config)).await;
    app.wait_ready().await;
    let (status, got) = app
        .get_json("/api/columns/pg/public/legacy/id?database=leg%27acy%20%22%7Bdb%7D%22%20%5Cx%0A")
        .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["database"], DATABASE);
    assert_eq!(got["plan"]["target_type"], "bigint");
    assert_eq!(
        strings(&got["plan"]["postgres"][0]["statements"]),
        vec!["ALTER SEQUENCE \"public\".\"narrow_ids\" AS bigint".to_string()]
    );
    // The same table in another database is another column.
    let (status, _) = app
        .get_json("/api/columns/pg/public/legacy/id?database=app")
        .await;
    assert_eq!(status, 404);

    // The column's page: each statement under the database it runs in (escaped: the name
    // cannot end the comment), the online steps, and the keys PostgreSQL keeps.
    let (status, _) = app
        .get_json("/api/columns/pg/public/users/id?database=app")
        .await;
    assert_eq!(status, 200);
    let (status, page) = app
        .get_text("/columns/pg/public/users/id?database=app")
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("-- on shard pg, in database app\n"), "{page}");
    // Named in its database: another database may hold the same names.
    assert!(
        page.contains(
            "<bdi>pg</bdi> · <bdi>app</bdi>.<bdi>public</bdi>.<bdi>users</bdi>.<bdi>id</bdi>"
        ),
        "{page}"
    );
    assert!(
        page.contains("Online, in database <bdi>app</bdi>"),
        "{page}"
    );
    assert!(page.contains("PostgreSQL keeps them"), "{page}");
    assert!(page.contains("strict mode does not apply"), "{page}");
    let (status, page) = app
        .get_text("/columns/pg/public/legacy/id?database=leg%27acy%20%22%7Bdb%7D%22%20%5Cx%0A")
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("-- on shard pg, in database leg'acy &quot;{db}&quot; \\\\x\\n\n"),
        "{page}"
    );
    app.stop().await;
}
