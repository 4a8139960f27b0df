//! `headroom plan` against real MariaDB: a fleet with a critical INT auto-increment, its
//! foreign-key children (one in a table with a hostile name) and a reference column
//! narrower than its ticket source. The plan's steps are applied with the mariadb client;
//! `headroom check` afterwards finds nothing critical or mismatched, and each column's
//! NOT NULL, DEFAULT and COMMENT are what they were.

use headroom_sandbox::MariaDb;
use serde_json::Value;

use crate::harness::{headroom, start_servers};

/// A comment with everything that could break a statement or a template.
const COMMENT: &str = "it's the {table} key \\ (see `users`) -- #";
/// A child table whose name holds a backtick, a quote and a placeholder.
const HOSTILE: &str = "or`ders'{table}";

/// A SQL string literal for the test's own statements.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Shard `app` schema: `users.id` INT at `counter`, `orders.user_id` (a declared FK
/// child), `notes.order_user` (a FK grandchild, through the hostile table), and
/// `likes.treasury_id` (a reference to the ticket source, INT).
fn seed(shard: &MariaDb, counter: u64) {
    let sql = format!(
        "CREATE DATABASE app;
CREATE TABLE app.users (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY COMMENT {comment}
) ENGINE=InnoDB AUTO_INCREMENT={counter};
CREATE TABLE app.{hostile} (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id INT NOT NULL DEFAULT 0 COMMENT {comment},
  KEY (user_id),
  CONSTRAINT fk_user FOREIGN KEY (user_id) REFERENCES app.users (id) ON DELETE CASCADE
) ENGINE=InnoDB;
CREATE TABLE app.notes (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  order_user INT NULL DEFAULT NULL,
  KEY (order_user),
  CONSTRAINT fk_note FOREIGN KEY (order_user) REFERENCES app.{hostile} (user_id)
) ENGINE=InnoDB;
CREATE TABLE app.likes (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  treasury_id INT NOT NULL DEFAULT 7 COMMENT 'from tickets64',
  KEY (treasury_id)
) ENGINE=InnoDB;
INSERT INTO app.users () VALUES ();
INSERT INTO app.{hostile} (user_id) SELECT id FROM app.users;
INSERT INTO app.notes (order_user) SELECT user_id FROM app.{hostile};
INSERT INTO app.likes (treasury_id) VALUES (1);",
        comment = literal(COMMENT),
        hostile = ident(HOSTILE),
    );
    shard.exec(&sql).expect("seeding the shard");
}

fn toml(shards: &[MariaDb], ticket: &MariaDb) -> String {
    let mut text =
        "[server]\nlisten = \"127.0.0.1:0\"\n[poll]\nquery_timeout = \"5s\"\n[plan]\nrebuild_mb_per_second = 10\n"
            .to_string();
    for (i, s) in shards.iter().enumerate() {
        text.push_str(&format!(
            "[[shards]]\nname = \"shard-{:02}\"\nurl = \"{}\"\nschemas = [\"app\"]\n",
            i + 1,
            s.url("root", None)
        ));
    }
    text.push_str(&format!(
        "[[sources]]\nname = \"tickets64\"\nkind = \"ticket_server\"\nservers = [\"{}\"]\ntable = \"Tickets64\"\n\
         [[references]]\nsource = \"tickets64\"\ncolumns = [\"app.*.treasury_id\"]\n",
        ticket.url("root", Some("tickets"))
    ));
    text
}

/// `IS_NULLABLE`, `COLUMN_DEFAULT`, `COLUMN_COMMENT` and `COLUMN_TYPE` of a column.
fn attributes(shard: &MariaDb, table: &str, column: &str) -> Vec<String> {
    let sql = format!(
        "SELECT IS_NULLABLE, IFNULL(COLUMN_DEFAULT, '(none)'), HEX(COLUMN_COMMENT), COLUMN_TYPE \
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME = {} \
         AND COLUMN_NAME = {}",
        literal(table),
        literal(column)
    );
    let out = shard.exec(&sql).expect("reading attributes");
    out.trim_end_matches('\n')
        .split('\t')
        .map(str::to_string)
        .collect()
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02X}")).collect()
}

fn names(plan: &Value) -> Vec<String> {
    plan["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| {
            format!(
                "{}/{}.{}.{}",
                c["shard"].as_str().unwrap_or_default(),
                c["schema"].as_str().unwrap_or_default(),
                c["table"].as_str().unwrap_or_default(),
                c["column"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

#[test]
fn the_printed_plan_applied_to_the_shards_leaves_nothing_critical_or_mismatched() {
    let mut servers = start_servers(&["plan-01", "plan-02", "plan-t"]);
    let ticket = servers.pop().expect("ticket server");
    ticket
        .exec(&headroom_sandbox::ticket_server_sql(1, 1_000))
        .expect("seeding the ticket server");
    headroom_sandbox::hand_out_tickets(&ticket, 1).expect("a ticket");
    seed(&servers[0], 2_104_533_975);
    seed(&servers[1], 1_000);
    let config = toml(&servers, &ticket);

    let before = attributes(&servers[0], HOSTILE, "user_id");
    assert_eq!(before, vec!["NO", "0", &hex(COMMENT), "int(11)"]);

    let (code, stdout, stderr) = headroom("plan", &config, &["--format", "json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let plan: Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(plan["rebuild_mb_per_second"], 10);
    // users.id is critical, and so are its children, which hold its values (equal ratios:
    // by name); every likes.treasury_id is narrower than BIGINT UNSIGNED.
    assert_eq!(
        names(&plan),
        vec![
            "shard-01/app.notes.order_user".to_string(),
            format!("shard-01/app.{HOSTILE}.user_id"),
            "shard-01/app.users.id".to_string(),
            "shard-01/app.likes.treasury_id".to_string(),
            "shard-02/app.likes.treasury_id".to_string(),
        ]
    );
    assert_eq!(
        plan["columns"][0]["plan"]["changes"]
            .as_array()
            .map(Vec::len),
        Some(6),
        "a child widens its parent and the rest of the group too"
    );
    for (i, first) in [
        (1, "shard-01/app.notes.order_user"),
        (2, "shard-01/app.notes.order_user"),
        (4, "shard-01/app.likes.treasury_id"),
    ] {
        let same = &plan["columns"][i]["plan"];
        assert_eq!(same["same_as"], first, "a group is written once");
        assert_eq!(same["changes"].as_array().map(Vec::len), Some(0));
    }
    let likes = &plan["columns"][3];
    assert_eq!(likes["plan"]["target_type"], "BIGINT UNSIGNED");
    assert_eq!(likes["plan"]["changes"].as_array().map(Vec::len), Some(2));

    // One column's plan, its own change first.
    let (code, stdout, stderr) = headroom(
        "plan",
        &config,
        &["--format", "json", "--column", "app.users.id"],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let only: Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(only["columns"].as_array().map(Vec::len), Some(1));
    let users = &only["columns"][0];
    assert_eq!(users["plan"]["same_as"], Value::Null);
    assert_eq!(users["status"], "critical");
    assert_eq!(users["plan"]["target_type"], "BIGINT");
    let changes: Vec<String> = users["plan"]["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            format!(
                "{} {}.{} {}",
                c["shard"].as_str().unwrap_or_default(),
                c["table"].as_str().unwrap_or_default(),
                c["column"].as_str().unwrap_or_default(),
                c["to_type"].as_str().unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            "shard-01 users.id BIGINT".to_string(),
            "shard-01 notes.order_user BIGINT".to_string(),
            format!("shard-01 {HOSTILE}.user_id BIGINT"),
            "shard-02 notes.order_user BIGINT".to_string(),
            format!("shard-02 {HOSTILE}.user_id BIGINT"),
            "shard-02 users.id BIGINT".to_string(),
        ]
    );
    let own = &users["plan"]["changes"][0];
    assert_eq!(own["rebuilds"], true);
    assert_eq!(own["table_size"]["engine"], "InnoDB");
    assert!(own["rebuild_seconds_estimate"].as_u64().is_some());
    assert_eq!(
        users["plan"]["foreign_keys"].as_array().map(Vec::len),
        Some(4)
    );

    // The text format says the same for people, names escaped.
    let (code, text, _) = headroom("plan", &config, &["--column", "app.users.*"]);
    assert_eq!(code, 0);
    println!("{text}");
    assert!(
        text.starts_with("1. shard-01 app.users.id int(11) (critical): critical: 98"),
        "{text}"
    );
    assert!(text.contains("   runs out: -; target: BIGINT\n"), "{text}");
    assert!(
        text.contains(
            "ALTER TABLE `app`.`users` MODIFY COLUMN `id` BIGINT NOT NULL AUTO_INCREMENT COMMENT "
        ),
        "{text}"
    );
    assert!(
        text.contains("4 foreign key(s) hold these columns: run in this order"),
        "{text}"
    );
    assert!(!text.contains("2. "), "one column matches the glob: {text}");

    // Apply every step of every entry, in order, on its shard.
    for column in plan["columns"].as_array().expect("columns") {
        for step in column["plan"]["steps"].as_array().expect("steps") {
            let shard = match step["shard"].as_str() {
                Some("shard-01") => &servers[0],
                Some("shard-02") => &servers[1],
                other => panic!("unknown shard {other:?}"),
            };
            let sql = step["statement"].as_str().expect("statement");
            shard
                .exec(&format!("{sql};"))
                .unwrap_or_else(|e| panic!("applying {sql}: {e}"));
        }
    }

    let (code, stdout, stderr) = headroom("check", &config, &["--json"]);
    assert_eq!(code, 0, "nothing at warning or worse: {stdout}{stderr}");
    let (code, stdout, _) = headroom("check", &config, &["--json", "--all"]);
    assert_eq!(code, 0);
    let all: Value = serde_json::from_str(&stdout).expect("json");
    let columns = all["columns"].as_array().expect("columns");
    assert_eq!(columns.len(), 14, "{stdout}");
    assert!(
        columns
            .iter()
            .all(|c| c["type_mismatch"] == false && c["status"] == "ok"),
        "{stdout}"
    );

    // The attributes are what they were.
    assert_eq!(
        attributes(&servers[0], HOSTILE, "user_id"),
        vec!["NO", "0", &hex(COMMENT), "bigint(20)"]
    );
    assert_eq!(
        attributes(&servers[1], "users", "id"),
        vec!["NO", "(none)", &hex(COMMENT), "bigint(20)"]
    );
    assert_eq!(
        attributes(&servers[0], "notes", "order_user"),
        vec!["YES", "NULL", "", "bigint(20)"]
    );
    assert_eq!(
        attributes(&servers[1], "likes", "treasury_id"),
        vec!["NO", "7", &hex("from tickets64"), "bigint(20) unsigned"]
    );
    let extra = servers[0]
        .exec("SELECT EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME = 'users' AND COLUMN_NAME = 'id'")
        .expect("extra");
    assert_eq!(extra.trim(), "auto_increment");
    let fks = servers[0]
        .exec("SELECT CONSTRAINT_NAME, DELETE_RULE FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = 'app' ORDER BY CONSTRAINT_NAME")
        .expect("foreign keys");
    assert_eq!(fks, "fk_note\tRESTRICT\nfk_user\tCASCADE\n");

    // Nothing left to widen: said so, exit 0.
    let (code, stdout, _) = headroom("plan", &config, &[]);
    assert_eq!(code, 0);
    assert_eq!(
        stdout,
        "No column at warning or worse or mismatched: nothing to widen.\n"
    );
}

#[test]
fn plan_exits_2_when_a_shard_is_unreachable() {
    let toml = "[poll]\nquery_timeout = \"2s\"\n[[shards]]\nname = \"gone\"\nurl = \"mysql://root@127.0.0.1:1/\"\n";
    let (code, stdout, stderr) = headroom("plan", toml, &[]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stdout.is_empty());
    assert!(stderr.contains("unreachable shard gone"), "{stderr}");
}

#[tokio::test]
async fn the_column_endpoint_serves_the_plan_and_404_for_what_is_not_there() {
    let servers = start_servers(&["plan-api-01", "plan-api-t"]);
    servers[1]
        .exec(&headroom_sandbox::ticket_server_sql(1, 1_000))
        .expect("seeding the ticket server");
    seed(&servers[0], 2_104_533_975);
    let config = toml(&servers[..1], &servers[1]);
    let app = crate::harness::spawn_app(crate::harness::settings(&config)).await;
    app.wait_ready().await;

    let (status, doc) = app.get_json("/api/columns").await;
    assert_eq!(status, 200);
    let row = crate::harness::find_column(&doc, "shard-01", &format!("app.{HOSTILE}.user_id"));
    let url = row["plan_url"].as_str().expect("plan_url").to_string();
    assert_eq!(
        url,
        "/api/columns/shard-01/app/or%60ders%27%7Btable%7D/user_id"
    );

    let (status, got) = app.get_json(&url).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["table"], HOSTILE);
    assert_eq!(got["column"], "user_id");
    assert_eq!(got["status"], "critical");
    assert_eq!(got["plan_url"], url.as_str());
    assert_eq!(got["plan"]["target_type"], "BIGINT");
    let changes = got["plan"]["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 3, "its own, its parent and its child: {got}");
    assert_eq!(
        changes[0]["statement"],
        format!(
            "ALTER TABLE `app`.`or``ders'{{table}}` MODIFY COLUMN `user_id` BIGINT NOT NULL DEFAULT 0 COMMENT 'it''s the {{table}} key \\\\ (see `users`) -- #'"
        )
    );
    assert_eq!(got["plan"]["steps"].as_array().map(Vec::len), Some(7));

    let (status, got) = app.get_json("/api/columns/shard-01/app/likes/id").await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["plan"]["changes"].as_array().map(Vec::len), Some(0));

    let (status, got) = app.get_json("/api/columns/shard-01/app/users/nope").await;
    assert_eq!(status, 404);
    assert!(
        got["error"]
            .as_str()
            .is_some_and(|e| e.contains("app.users.nope")),
        "{got}"
    );
    let (status, got) = app.get_json("/api/columns/shard-09/app/users/id").await;
    assert_eq!(status, 404);
    assert!(
        got["error"]
            .as_str()
            .is_some_and(|e| e.contains("shard-09")),
        "{got}"
    );
    app.stop().await;
}

#[test]
fn plan_refuses_a_bad_column_glob_with_exit_2() {
    let toml = "[[shards]]\nname = \"s\"\nurl = \"mysql://root@127.0.0.1:1/\"\n";
    let (code, stdout, stderr) = headroom("plan", toml, &["--column", "app.[users"]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.starts_with("headroom: --column: \"app.[users\""),
        "{stderr}"
    );
}

/// A child table and a constraint named to break a parser of `SHOW CREATE TABLE`: a
/// backtick, a backslash, a newline and SQL of their own.
const HOSTILE_CHILD: &str = "or`d\\ers\n{table}";
const HOSTILE_FK: &str = "fk`user\n) REFERENCES `x` (`y`) -- ";
/// A comment that reads like a foreign key to anything that does not lex its string.
const FORGED: &str = "', CONSTRAINT `forged` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`), '";

/// Schema `app` for the grant of docs/configuration.md: `users.id` INT near its maximum,
/// `orders.user_id` (`fk_user`: ON DELETE CASCADE ON UPDATE CASCADE) and the hostile child
/// (ON DELETE SET NULL), both children INT; and the monitoring user `headroom` with exactly
/// `GRANT SELECT ON app.*`.
fn seed_with_grant(shard: &MariaDb) {
    let sql = format!(
        "CREATE DATABASE app;
CREATE TABLE app.users (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY
) ENGINE=InnoDB AUTO_INCREMENT=2104533975;
CREATE TABLE app.orders (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id INT NOT NULL COMMENT {forged},
  KEY (user_id),
  CONSTRAINT fk_user FOREIGN KEY (user_id) REFERENCES app.users (id)
    ON DELETE CASCADE ON UPDATE CASCADE
) ENGINE=InnoDB;
CREATE TABLE app.{child} (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id INT NULL,
  KEY (user_id),
  CONSTRAINT {fk} FOREIGN KEY (user_id) REFERENCES app.users (id) ON DELETE SET NULL
) ENGINE=InnoDB;
INSERT INTO app.users () VALUES ();
INSERT INTO app.orders (user_id) SELECT id FROM app.users;
INSERT INTO app.{child} (user_id) SELECT id FROM app.users;
CREATE USER 'headroom'@'%';
GRANT SELECT ON app.* TO 'headroom'@'%';",
        forged = literal(FORGED),
        child = ident(HOSTILE_CHILD),
        fk = ident(HOSTILE_FK),
    );
    shard.exec(&sql).expect("seeding the shard");
}

/// A configuration of one shard, read as `user`.
fn one_shard_toml(shard: &MariaDb, user: &str) -> String {
    format!(
        "[poll]\nquery_timeout = \"5s\"\n[[shards]]\nname = \"s1\"\nurl = \"{}\"\nschemas = [\"app\"]\n",
        shard.url(user, None)
    )
}

/// Each foreign key of a plan as `name table(columns) -> table(columns) delete/update`.
fn keys(plan: &Value) -> Vec<String> {
    let mut out: Vec<String> = plan["foreign_keys"]
        .as_array()
        .expect("foreign_keys")
        .iter()
        .map(|k| {
            let list = |v: &Value| {
                v.as_array()
                    .expect("columns")
                    .iter()
                    .map(|c| c.as_str().unwrap_or_default().to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            format!(
                "{} {}.{}({}) -> {}.{}({}) {}/{}",
                k["name"].as_str().unwrap_or_default(),
                k["schema"].as_str().unwrap_or_default(),
                k["table"].as_str().unwrap_or_default(),
                list(&k["columns"]),
                k["parent_schema"].as_str().unwrap_or_default(),
                k["parent_table"].as_str().unwrap_or_default(),
                list(&k["parent_columns"]),
                k["on_delete"].as_str().unwrap_or_default(),
                k["on_update"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn plan_with_only_the_readme_grant_drops_and_adds_again_every_foreign_key() {
    let servers = start_servers(&["plan-grant"]);
    let shard = &servers[0];
    seed_with_grant(shard);
    let config = one_shard_toml(shard, "headroom");

    let (code, stdout, stderr) = headroom(
        "plan",
        &config,
        &["--format", "json", "--column", "app.users.id"],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let doc: Value = serde_json::from_str(&stdout).expect("one JSON document");
    let plan = &doc["columns"][0]["plan"];
    assert_eq!(
        keys(plan),
        vec![
            "fk_user app.orders(user_id) -> app.users(id) CASCADE/CASCADE".to_string(),
            format!("{HOSTILE_FK} app.{HOSTILE_CHILD}(user_id) -> app.users(id) SET NULL/RESTRICT"),
        ]
    );
    let steps: Vec<&str> = plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["statement"].as_str().expect("statement"))
        .collect();
    assert_eq!(steps.len(), 7, "2 drops, 3 widenings, 2 adds: {steps:#?}");

    // Applied as root, in order: every statement succeeds.
    let sql: String = steps.iter().map(|s| format!("{s};\n")).collect();
    shard
        .exec(&sql)
        .unwrap_or_else(|e| panic!("applying the steps: {e}\n{sql}"));

    let fks = shard
        .exec(
            "SELECT CONSTRAINT_NAME, TABLE_NAME, DELETE_RULE, UPDATE_RULE \
             FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = 'app' \
             ORDER BY CONSTRAINT_NAME",
        )
        .expect("foreign keys");
    let escaped = |s: &str| s.replace('\\', "\\\\").replace('\n', "\\n");
    assert_eq!(
        fks,
        format!(
            "fk_user\torders\tCASCADE\tCASCADE\n{}\t{}\tSET NULL\tRESTRICT\n",
            escaped(HOSTILE_FK),
            escaped(HOSTILE_CHILD)
        )
    );
    let types = shard
        .exec(
            "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = 'app' AND COLUMN_NAME IN ('user_id') OR \
             (TABLE_SCHEMA = 'app' AND TABLE_NAME = 'users') ORDER BY TABLE_NAME",
        )
        .expect("types");
    assert_eq!(
        types,
        format!(
            "orders\tuser_id\tbigint(20)\n{}\tuser_id\tbigint(20)\nusers\tid\tbigint(20)\n",
            escaped(HOSTILE_CHILD)
        )
    );
    let (code, stdout, stderr) = headroom("check", &config, &[]);
    assert_eq!(code, 0, "nothing at warning or worse: {stdout}{stderr}");
}

#[test]
fn plan_writes_no_statement_for_a_column_whose_foreign_key_parent_it_cannot_see() {
    let servers = start_servers(&["plan-unseen"]);
    let shard = &servers[0];
    shard
        .exec(
            "CREATE DATABASE vault;
CREATE TABLE vault.accounts (id INT NOT NULL PRIMARY KEY) ENGINE=InnoDB;
INSERT INTO vault.accounts VALUES (2104533975);
CREATE DATABASE app;
CREATE TABLE app.ledger (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  account_id INT NOT NULL,
  CONSTRAINT ledger_account FOREIGN KEY (account_id) REFERENCES vault.accounts (id)
) ENGINE=InnoDB;
INSERT INTO app.ledger (account_id) VALUES (2104533975);
CREATE USER 'headroom'@'%';
GRANT SELECT ON app.* TO 'headroom'@'%';",
        )
        .expect("seeding the shard");
    let config = one_shard_toml(shard, "headroom");

    let (code, stdout, stderr) = headroom("plan", &config, &["--format", "json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let doc: Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(names(&doc), vec!["s1/app.ledger.account_id".to_string()]);
    let plan = &doc["columns"][0]["plan"];
    assert_eq!(
        keys(plan),
        vec!["ledger_account app.ledger(account_id) -> vault.accounts(id) RESTRICT/RESTRICT"]
    );
    let change = &plan["changes"][0];
    assert_eq!(change["statement"], Value::Null, "{plan:#}");
    assert_eq!(change["gh_ost"], Value::Null);
    assert_eq!(change["pt_online_schema_change"], Value::Null);
    assert_eq!(
        change["note"],
        "not written: the parent vault.accounts.id of foreign key ledger_account is not visible \
         to the monitoring user: widen both by hand"
    );
    assert_eq!(plan["steps"], serde_json::json!([]));

    // The text says the same, and the SQL holds no statement, only why.
    let (code, text, _) = headroom("plan", &config, &[]);
    assert_eq!(code, 0);
    assert!(
        text.contains("     note: not written: the parent vault.accounts.id"),
        "{text}"
    );
    assert!(!text.contains("ALTER TABLE"), "{text}");
}

/// A parent table named with a backslash, a newline, a control character and a backtick,
/// and the SQL of a statement after a comment's end.
const HOSTILE_PARENT: &str = "us\\er`s\n\u{1}; DROP TABLE kids; -- x";

/// Schema `app`: the hostile `users.id` INT near its maximum, and `kids.parent` holding it
/// (`kids_parent`, ON DELETE CASCADE); the user `headroom` with the grant of docs/configuration.md.
fn seed_hostile_parent(shard: &MariaDb) {
    let sql = format!(
        "CREATE DATABASE app;
CREATE TABLE app.{users} (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY COMMENT {comment}
) ENGINE=InnoDB AUTO_INCREMENT=2104533975;
CREATE TABLE app.kids (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  parent INT NOT NULL,
  KEY (parent),
  CONSTRAINT kids_parent FOREIGN KEY (parent) REFERENCES app.{users} (id) ON DELETE CASCADE
) ENGINE=InnoDB;
INSERT INTO app.{users} () VALUES ();
INSERT INTO app.kids (parent) SELECT id FROM app.{users};
CREATE USER 'headroom'@'%';
GRANT SELECT ON app.* TO 'headroom'@'%';",
        users = ident(HOSTILE_PARENT),
        comment = literal(COMMENT),
    );
    shard.exec(&sql).expect("seeding the shard");
}

#[test]
fn plan_format_sql_fed_to_the_mariadb_client_widens_a_table_with_a_hostile_name() {
    let servers = start_servers(&["plan-sql"]);
    let shard = &servers[0];
    seed_hostile_parent(shard);
    let config = one_shard_toml(shard, "headroom");

    let (code, sql, stderr) = headroom(
        "plan",
        &config,
        &["--format", "sql", "--column", "app.us*.id"],
    );
    assert_eq!(code, 0, "{sql}{stderr}");
    let users = ident(HOSTILE_PARENT);
    assert_eq!(
        sql,
        format!(
            "-- headroom plan: the statements to run on shard s1, in order.\n\
             -- Run them all with the mariadb client, which stops at the first error.\n\
             \n\
             -- 1. app.us\\\\er`s\\n\\u{{1}}; DROP TABLE kids; -- x.id (critical): to BIGINT\n\
             ALTER TABLE `app`.`kids` DROP FOREIGN KEY `kids_parent`;\n\
             ALTER TABLE `app`.{users} MODIFY COLUMN `id` BIGINT NOT NULL AUTO_INCREMENT \
             COMMENT 'it''s the {{table}} key \\\\ (see `users`) -- #';\n\
             ALTER TABLE `app`.`kids` MODIFY COLUMN `parent` BIGINT NOT NULL;\n\
             ALTER TABLE `app`.`kids` ADD CONSTRAINT `kids_parent` FOREIGN KEY (`parent`) \
             REFERENCES `app`.{users} (`id`) ON DELETE CASCADE ON UPDATE RESTRICT;\n"
        )
    );

    // mariadb < plan.sql, as root.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("plan.sql");
    std::fs::write(&file, &sql).expect("writing plan.sql");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{} < {}", shard.client_command(), file.display()))
        .output()
        .expect("running the mariadb client");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert_eq!(
        attributes(shard, HOSTILE_PARENT, "id"),
        vec!["NO", "(none)", &hex(COMMENT), "bigint(20)"]
    );
    assert_eq!(
        attributes(shard, "kids", "parent"),
        vec!["NO", "(none)", "", "bigint(20)"]
    );
    let fks = shard
        .exec(
            "SELECT CONSTRAINT_NAME, HEX(REFERENCED_TABLE_NAME), DELETE_RULE \
             FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = 'app'",
        )
        .expect("foreign keys");
    assert_eq!(
        fks,
        format!("kids_parent\t{}\tCASCADE\n", hex(HOSTILE_PARENT))
    );
    let (code, stdout, stderr) = headroom("check", &config, &[]);
    assert_eq!(code, 0, "nothing at warning or worse: {stdout}{stderr}");
}

#[test]
fn plan_format_sql_refuses_a_terminal_when_a_name_holds_a_control_character() {
    let servers = start_servers(&["plan-sql-tty"]);
    let shard = &servers[0];
    seed_hostile_parent(shard);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("headroom.toml");
    std::fs::write(&config, one_shard_toml(shard, "headroom")).expect("config");
    // `script` runs it with stdout on a pseudo-terminal.
    let out = std::process::Command::new("script")
        .arg("-qec")
        .arg(format!(
            "{} plan --config {} --format sql",
            env!("CARGO_BIN_EXE_headroom"),
            config.display()
        ))
        .arg("/dev/null")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("running script");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{screen}");
    assert!(
        screen.contains(
            "headroom: the SQL holds names with control characters, written exactly; it is not \
             printed to a terminal: redirect it to a file (headroom plan --format sql > plan.sql)"
        ),
        "{screen}"
    );
    assert!(!screen.contains("ALTER"), "{screen}");
}

#[test]
fn plan_refuses_shard_without_format_sql_with_exit_2() {
    let toml = "[[shards]]\nname = \"s\"\nurl = \"mysql://root@127.0.0.1:1/\"\n";
    let (code, stdout, stderr) = headroom("plan", toml, &["--shard", "s"]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stdout.is_empty());
    assert_eq!(stderr, "headroom: --shard applies to --format sql only\n");
    let (code, _, stderr) = headroom("plan", toml, &["--format", "sql", "--shard", "t"]);
    assert_eq!(code, 2);
    assert_eq!(stderr, "headroom: --shard: no shard named \"t\"\n");
}
