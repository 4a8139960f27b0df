//! Names a hostile user can give tables, columns, schemas and ticket tables: every one is
//! measured exactly, no SQL is ever made of them, and they reach a terminal or a log line
//! only escaped.

use std::process::Command;

use headroom::mysql::{ident, qualified};
use sqlx::{Connection, Executor};

use crate::harness::{poll_once, start_servers};

/// The secret a monitoring user can read but must never publish.
const SECRET: u64 = 7_777_777_777_777;

/// Where the hostile column values start: each column holds `VALUE_BASE + its index`.
const VALUE_BASE: u64 = 5_000_000_000;

/// The schema whose name is itself hostile.
const HOSTILE_SCHEMA: &str = "s`{table}#-- x";

/// The ticket source's database, table and counter column.
const TICKET_DB: &str = "tick`ets{column}#";
const TICKET_TABLE: &str = "Tick`{table}-- 64";
const TICKET_COLUMN: &str = "i`d{table}/*";

/// `(schema, table, column)` of every hostile reference column, in value order.
fn hostile_columns() -> Vec<(String, String, String)> {
    let attack = ") AS CHAR) FROM hostile.t UNION SELECT 0,val FROM vault.k#";
    let mut out = vec![
        (
            "hostile".to_string(),
            attack.to_string(),
            "a{table}_id".to_string(),
        ),
        (
            "hostile".to_string(),
            "{table}".to_string(),
            "{table}_id".to_string(),
        ),
    ];
    for column in ["{column}", "{schema}", "{n}", "{filter}"] {
        out.push((
            "hostile".to_string(),
            "t{n}".to_string(),
            column.to_string(),
        ));
    }
    let table = "t`#-- /*x";
    for column in [
        "x#y",
        "c-- d",
        "e/*f*/",
        "q'uote",
        "d\"q",
        "back`tick",
        "nl\nname",
        "tab\tname",
        "\u{1b}[31mred",
        "rl\u{202e}o",
        "ñandú_日本_id",
        &format!("{}_id!", "a".repeat(60)),
    ] {
        out.push((
            HOSTILE_SCHEMA.to_string(),
            table.to_string(),
            column.to_string(),
        ));
    }
    out
}

/// Seeds the server at `url` (as root) with the hostile schemas, the vault and the ticket
/// table, then runs `extra`.
async fn seed(url: &str, extra: &[String]) {
    let mut conn = sqlx::MySqlConnection::connect(url)
        .await
        .expect("connecting as root");
    let mut statements = vec![
        "CREATE DATABASE vault".to_string(),
        "CREATE TABLE vault.k (val BIGINT UNSIGNED NOT NULL)".to_string(),
        format!("INSERT INTO vault.k VALUES ({SECRET})"),
        "CREATE DATABASE hostile".to_string(),
        // What the attack of the column `a{table}_id` needs: a table with a column `a`.
        "CREATE TABLE hostile.t (a BIGINT NOT NULL, KEY (a))".to_string(),
        "INSERT INTO hostile.t VALUES (1)".to_string(),
        format!("CREATE DATABASE {}", ident(HOSTILE_SCHEMA)),
        format!("CREATE DATABASE {}", ident(TICKET_DB)),
        format!(
            "CREATE TABLE {} ({} BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, stub CHAR(1) NOT NULL UNIQUE) AUTO_INCREMENT = 1000",
            qualified(TICKET_DB, TICKET_TABLE),
            ident(TICKET_COLUMN)
        ),
        format!(
            "REPLACE INTO {} (stub) VALUES ('a')",
            qualified(TICKET_DB, TICKET_TABLE)
        ),
    ];
    let columns = hostile_columns();
    let mut tables: Vec<(String, String)> = Vec::new();
    for (schema, table, _) in &columns {
        if !tables.contains(&(schema.clone(), table.clone())) {
            tables.push((schema.clone(), table.clone()));
        }
    }
    for (schema, table) in &tables {
        let defs: Vec<String> = columns
            .iter()
            .filter(|(s, t, _)| s == schema && t == table)
            .map(|(_, _, c)| format!("{} BIGINT UNSIGNED NULL, KEY ({})", ident(c), ident(c)))
            .collect();
        statements.push(format!(
            "CREATE TABLE {} ({})",
            qualified(schema, table),
            defs.join(", ")
        ));
    }
    for (i, (schema, table, column)) in columns.iter().enumerate() {
        statements.push(format!(
            "INSERT INTO {} ({}) VALUES ({})",
            qualified(schema, table),
            ident(column),
            VALUE_BASE + i as u64
        ));
    }
    statements.extend(extra.iter().cloned());
    for sql in statements {
        conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone())))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let _ = conn.close().await;
}

/// The configuration that watches the hostile schemas on `port`, with the ticket source on
/// the same server; `first_references` go before the catch-all rule.
fn config(port: u16, first_references: &str) -> String {
    let ticket_url = format!(
        "mysql://root@127.0.0.1:{port}/{}",
        percent_encoding::utf8_percent_encode(TICKET_DB, percent_encoding::NON_ALPHANUMERIC)
    );
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[poll]\nquery_timeout = \"5s\"\n\
         [[shards]]\nname = \"hostile\"\nurl = \"mysql://root@127.0.0.1:{port}\"\n\
         schemas = [\"hostile\", {schema}]\n\
         [[sources]]\nname = \"tickets\"\nkind = \"ticket_server\"\nservers = [\"{ticket_url}\"]\n\
         table = {table}\n{first_references}\
         [[references]]\nsource = \"tickets\"\ncolumns = [\"*.*.*\"]\nexclude = [\"hostile.t.a\"]\n",
        schema = toml_string(HOSTILE_SCHEMA),
        table = toml_string(TICKET_TABLE),
    )
}

/// A TOML basic string (JSON's escapes are TOML's).
fn toml_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string encodes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_name_is_measured_exactly_and_nothing_else_is_read() {
    let servers = start_servers(&["hostile"]);
    let db = &servers[0];
    seed(&db.url("root", None), &[]).await;
    let store = poll_once(&config(db.port(), "")).await;
    let snap = store.read();

    let source = &snap.sources[0];
    assert_eq!(
        source.current,
        Some(1000),
        "{:?}",
        source.servers[0].last_error
    );

    let shard = &snap.shards[0];
    assert!(shard.up, "{:?}", shard.last_error);
    assert!(shard.unresolved.is_empty(), "{:?}", shard.unresolved);
    let columns = hostile_columns();
    for (i, (schema, table, column)) in columns.iter().enumerate() {
        let found = shard
            .columns
            .iter()
            .find(|c| &c.id.schema == schema && &c.id.table == table && &c.id.column == column)
            .unwrap_or_else(|| panic!("{schema:?}.{table:?}.{column:?} not measured"));
        assert_eq!(
            found.current,
            i128::from(VALUE_BASE + i as u64),
            "{schema:?}.{table:?}.{column:?}"
        );
        assert_eq!(found.source.as_deref(), Some("tickets"));
    }
    // hostile.t.a is excluded; nothing else is measured, and the vault is never read.
    assert_eq!(shard.columns.len(), columns.len());
    assert!(
        shard
            .columns
            .iter()
            .all(|c| c.current != i128::from(SECRET))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_reach_the_terminal_and_the_logs_escaped() {
    let servers = start_servers(&["hostile-check"]);
    let db = &servers[0];
    // A column that cannot be measured (its source is never read and it leads no index)
    // is logged by name.
    let logged = "nl\nx\u{1b}[2J";
    seed(
        &db.url("root", None),
        &[format!(
            "CREATE TABLE hostile.logged ({} INT NULL)",
            ident(logged)
        )],
    )
    .await;
    let toml = config(
        db.port(),
        "[[sources]]\nname = \"nowhere\"\nkind = \"ticket_server\"\n\
         servers = [\"mysql://root@127.0.0.1:1/tickets\"]\ntable = \"T\"\n\
         [[references]]\nsource = \"nowhere\"\ncolumns = [\"hostile.logged.*\"]\n",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("headroom.toml");
    std::fs::write(&config, &toml).expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_headroom"))
        .args(["check", "--all", "--config"])
        .arg(&config)
        .env("RUST_LOG", "debug")
        .output()
        .expect("headroom check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // 2: the source "nowhere" is unreachable.
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("Column not measured"), "{stderr}");
    assert!(
        stderr.contains("hostile.logged.nl\\nx\\u{1b}[2J"),
        "{stderr}"
    );
    for text in [&stdout, &stderr] {
        assert!(
            !text.contains('\u{1b}'),
            "a raw escape reached the terminal: {text}"
        );
        assert!(!text.contains('\u{202e}'), "a raw bidi override: {text}");
        assert!(!text.contains(&SECRET.to_string()), "{text}");
    }
    // Every row of the table is one line: a name with a newline cannot make two.
    let rows = stdout.lines().filter(|l| l.starts_with("ok ")).count();
    assert_eq!(rows, hostile_columns().len(), "{stdout}");
    assert!(stdout.contains("nl\\nname"), "{stdout}");
    assert!(stdout.contains("\\u{1b}[31mred"), "{stdout}");
    assert!(stdout.contains("rl\\u{202e}o"), "{stdout}");
    // The log lines (stderr) are one per event too: no line starts mid-name.
    assert!(
        stderr
            .lines()
            .all(|l| l.is_empty() || l.trim_start().starts_with(|c: char| c.is_ascii_digit())),
        "{stderr}"
    );
}
