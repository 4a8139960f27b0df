//! The recall table of docs/inference.md, measured: three public schemas, each loaded as
//! published (tests/fixtures/schemas/, DDL only) into a throwaway MariaDB, its declared
//! foreign keys read from the server and then dropped, and the undeclared references guessed
//! back by the daemon's own catalog reader and inference (`headroom::infer::read`, one
//! read-only session per shard, as a poll reads). Each schema's figures are asserted, and
//! so is the row the docs give for it.

use std::collections::{HashMap, HashSet};

use headroom_sandbox::MariaDb;

use crate::harness::{settings, start_servers};

/// A public schema as published, and the database its file creates (or is loaded into).
struct Schema {
    database: &'static str,
    /// Statements run before the file: a database for a file that creates none.
    prelude: &'static str,
    ddl: &'static str,
}

const SAKILA: Schema = Schema {
    database: "sakila",
    prelude: "",
    ddl: include_str!("../fixtures/schemas/sakila.sql"),
};

const GUACAMOLE: Schema = Schema {
    database: "guacamole",
    prelude: "CREATE DATABASE guacamole; USE guacamole;\n",
    ddl: include_str!("../fixtures/schemas/guacamole.sql"),
};

const EMPLOYEES: Schema = Schema {
    database: "employees",
    prelude: "",
    ddl: include_str!("../fixtures/schemas/employees.sql"),
};

/// One schema's figures: of the declared foreign keys on integer columns, how many the
/// inference recovers, binds to a wrong parent, leaves ambiguous or misses; and the
/// columns it guesses where none was declared.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Figures {
    declared: usize,
    recovered: usize,
    wrong: usize,
    ambiguous: usize,
    missed: Vec<String>,
    extra: Vec<String>,
}

impl Figures {
    /// The row of the table in docs/inference.md.
    fn row(&self, name: &str) -> String {
        format!(
            "| {name} | {} | {} ({} %) | {} | {} | {} |",
            self.declared,
            self.recovered,
            self.recovered * 100 / self.declared,
            self.wrong,
            self.extra.len(),
            self.ambiguous
        )
    }
}

/// `SELECT` output of the mariadb client: tab-separated rows.
fn rows(db: &MariaDb, sql: &str) -> Vec<Vec<String>> {
    db.exec(sql)
        .expect("query")
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// Loads `schema`, returns its declared foreign keys on integer columns (child → parent,
/// `table.column`) and how many it declares in all, and drops every one.
fn load_and_drop_keys(db: &MariaDb, schema: &Schema) -> (HashMap<String, String>, usize) {
    db.exec(&format!("{}{}", schema.prelude, schema.ddl))
        .expect("loading the schema as published");
    let d = schema.database;
    let declared = rows(
        db,
        &format!(
            "SELECT k.TABLE_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, c.DATA_TYPE
             FROM information_schema.KEY_COLUMN_USAGE k
             JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = k.TABLE_SCHEMA
               AND c.TABLE_NAME = k.TABLE_NAME AND c.COLUMN_NAME = k.COLUMN_NAME
             WHERE k.TABLE_SCHEMA = '{d}' AND k.REFERENCED_TABLE_NAME IS NOT NULL"
        ),
    );
    let all = declared.len();
    let integer = ["tinyint", "smallint", "mediumint", "int", "bigint"];
    let keys = declared
        .iter()
        .filter(|r| integer.contains(&r[4].as_str()))
        .map(|r| (format!("{}.{}", r[0], r[1]), format!("{}.{}", r[2], r[3])))
        .collect();
    let drops: String = rows(
        db,
        &format!(
            "SELECT TABLE_NAME, CONSTRAINT_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS
             WHERE CONSTRAINT_SCHEMA = '{d}'"
        ),
    )
    .iter()
    .map(|r| {
        format!(
            "ALTER TABLE `{d}`.`{}` DROP FOREIGN KEY `{}`;\n",
            r[0], r[1]
        )
    })
    .collect();
    db.exec(&drops).expect("dropping the foreign keys");
    let left = rows(
        db,
        &format!(
            "SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = '{d}'"
        ),
    );
    assert_eq!(left, vec![vec!["0".to_string()]], "{d}: keys left");
    (keys, all)
}

/// Whether `guess` binds `child` correctly: its declared parent, or a parent of that parent
/// along the declared keys (a chain to the root, which holds the larger values).
fn correct(guess: &str, declared: &str, keys: &HashMap<String, String>) -> bool {
    let mut at = declared.to_string();
    for _ in 0..8 {
        if at == guess {
            return true;
        }
        match keys.get(&at) {
            Some(up) => at = up.clone(),
            None => return false,
        }
    }
    false
}

/// Loads every schema into one server, drops their keys, infers (one shard per schema) and
/// counts.
async fn measure(schemas: &[&Schema]) -> HashMap<&'static str, (Figures, usize)> {
    let servers = start_servers(&["recall"]);
    let db = &servers[0];
    let mut declared = HashMap::new();
    let mut toml = "[server]\nlisten = \"127.0.0.1:0\"\n".to_string();
    for schema in schemas {
        declared.insert(schema.database, load_and_drop_keys(db, schema));
        toml.push_str(&format!(
            "[[shards]]\nname = \"{d}\"\nurl = \"{}\"\nschemas = [\"{d}\"]\n",
            db.url("root", None),
            d = schema.database
        ));
    }
    let report = headroom::infer::read(settings(&toml)).await;
    assert!(report.unreadable.is_empty(), "{:?}", report.unreadable);
    let mut out = HashMap::new();
    for shard in &report.shards {
        let d = schema_of(schemas, &shard.shard);
        let (keys, all) = &declared[d];
        let strip = |c: &str| c.strip_prefix(&format!("{d}.")).unwrap_or(c).to_string();
        let guesses: HashMap<String, String> = shard
            .inference
            .parents
            .iter()
            .map(|(c, i)| (strip(&c.to_string()), strip(&i.parent.to_string())))
            .collect();
        let ambiguous: HashSet<String> = shard
            .inference
            .ambiguous
            .iter()
            .map(|a| strip(&a.column))
            .collect();
        let mut figures = Figures {
            declared: keys.len(),
            recovered: 0,
            wrong: 0,
            ambiguous: 0,
            missed: Vec::new(),
            extra: Vec::new(),
        };
        for (child, parent) in keys {
            match guesses.get(child) {
                Some(g) if correct(g, parent, keys) => figures.recovered += 1,
                Some(g) => {
                    figures.wrong += 1;
                    figures
                        .missed
                        .push(format!("{child} -> {g}, declared {parent}"));
                }
                None if ambiguous.contains(child) => {
                    figures.ambiguous += 1;
                    figures.missed.push(format!("{child}: ambiguous"));
                }
                None => figures.missed.push(format!("{child}: not guessed")),
            }
        }
        figures.extra = guesses
            .iter()
            .filter(|(c, _)| !keys.contains_key(*c))
            .map(|(c, p)| format!("{c} -> {p}"))
            .collect();
        figures.missed.sort();
        figures.extra.sort();
        out.insert(d, (figures, *all));
    }
    out
}

fn schema_of(schemas: &[&Schema], shard: &str) -> &'static str {
    schemas
        .iter()
        .find(|s| s.database == shard)
        .map(|s| s.database)
        .expect("a shard per schema")
}

/// The targets of the table: at least 85 % recovered, at most 2 % wrong parents.
fn meets_targets(f: &Figures) -> bool {
    f.recovered * 100 >= f.declared * 85 && f.wrong * 100 <= f.declared * 2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_public_schemas_without_their_foreign_keys_give_the_recall_table_of_the_docs() {
    let found = measure(&[&SAKILA, &GUACAMOLE, &EMPLOYEES]).await;
    let docs = include_str!("../../docs/inference.md");
    for (name, figures) in &found {
        println!("{name}: {figures:?}");
    }

    let (sakila, all) = &found["sakila"];
    assert_eq!(*all, 22);
    assert_eq!(
        (
            sakila.declared,
            sakila.recovered,
            sakila.wrong,
            sakila.ambiguous
        ),
        (22, 22, 0, 0),
        "{sakila:?}"
    );
    assert_eq!(sakila.extra, vec!["film_text.film_id -> film.film_id"]);

    let (guacamole, all) = &found["guacamole"];
    assert_eq!(*all, 30);
    assert_eq!(
        (
            guacamole.declared,
            guacamole.recovered,
            guacamole.wrong,
            guacamole.ambiguous
        ),
        (30, 28, 0, 0),
        "{guacamole:?}"
    );
    // `parent_id` says nothing of its parent, in either table.
    assert_eq!(
        guacamole.missed,
        vec![
            "guacamole_connection.parent_id: not guessed",
            "guacamole_connection_group.parent_id: not guessed",
        ]
    );
    assert_eq!(guacamole.extra, Vec::<String>::new());

    let (employees, all) = &found["employees"];
    // Six declared, two of them on CHAR(4) `dept_no`: no integer to watch.
    assert_eq!(*all, 6);
    assert_eq!(
        (
            employees.declared,
            employees.recovered,
            employees.wrong,
            employees.ambiguous
        ),
        (4, 4, 0, 0),
        "{employees:?}"
    );
    assert_eq!(employees.extra, Vec::<String>::new());

    for (name, (figures, _)) in &found {
        assert!(meets_targets(figures), "{name}: {figures:?}");
        let row = figures.row(name);
        assert!(docs.contains(&row), "docs/inference.md lacks the row {row}");
    }
}
