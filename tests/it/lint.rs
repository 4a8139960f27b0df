//! `headroom lint` against a real MariaDB: one server, two schemas. `app` holds a signed INT
//! auto-increment, INT UNSIGNED references to a BIGINT UNSIGNED key (inferred: InnoDB
//! refuses a declared foreign key between types of different widths; one in a table with a
//! hostile name) and a signed foreign key consistent with its signed parent, on a server
//! without strict mode: exit 1 and every rule in the JSON, the JUnit XML parsed, an allow
//! entry turning a finding into a skip. `clean` (BIGINT UNSIGNED keys) on the same server,
//! strict again: exit 0. No server at all: exit 2; an allow entry without a reason: exit 2.

use headroom_sandbox::MariaDb;
use serde_json::Value;

use crate::harness::start_servers;

/// A table name with a backtick, a quote, markup, a placeholder and an escape character.
const HOSTILE: &str = "or`d<e>rs'{table}&\u{1b}[31m";

fn lint(toml: &str, args: &[&str]) -> (i32, String, String) {
    crate::harness::headroom("lint", toml, args)
}

fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn seed(server: &MariaDb) {
    let sql = format!(
        "CREATE DATABASE app;
CREATE TABLE app.users (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY) ENGINE=InnoDB;
CREATE TABLE app.accounts (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY) ENGINE=InnoDB;
CREATE TABLE app.orders (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  account_id INT UNSIGNED NOT NULL,
  user_id INT NOT NULL,
  CONSTRAINT fk_user FOREIGN KEY (user_id) REFERENCES app.users (id)
) ENGINE=InnoDB;
CREATE TABLE app.{hostile} (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  account_id INT UNSIGNED NOT NULL
) ENGINE=InnoDB;
INSERT INTO app.users () VALUES ();
INSERT INTO app.accounts () VALUES ();
INSERT INTO app.orders (account_id, user_id) VALUES (1, 1);
CREATE DATABASE clean;
CREATE TABLE clean.accounts (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY) ENGINE=InnoDB;
CREATE TABLE clean.orders (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  account_id BIGINT UNSIGNED NOT NULL,
  CONSTRAINT fk_clean FOREIGN KEY (account_id) REFERENCES clean.accounts (id)
) ENGINE=InnoDB;
SET GLOBAL sql_mode = '';",
        hostile = ident(HOSTILE),
    );
    server.exec(&sql).expect("seeding the shard");
}

fn toml(server: &MariaDb, schema: &str, lint: &str) -> String {
    format!(
        "[poll]\nquery_timeout = \"5s\"\n[[shards]]\nname = \"lint-01\"\nurl = \"{}\"\nschemas = [\"{schema}\"]\n{lint}",
        server.url("root", None)
    )
}

/// `rule table.column` of each finding of a JSON report's `key` list.
fn listed(doc: &Value, key: &str) -> Vec<String> {
    doc[key]
        .as_array()
        .expect(key)
        .iter()
        .map(|f| {
            format!(
                "{} {}.{}",
                f["rule"].as_str().unwrap_or_default(),
                f["table"].as_str().unwrap_or("-"),
                f["column"].as_str().unwrap_or("-")
            )
        })
        .collect()
}

#[test]
fn lint_fails_a_dirty_shard_on_every_rule_and_passes_a_clean_schema() {
    let servers = start_servers(&["lint-01"]);
    let server = &servers[0];
    seed(server);

    let (code, stdout, stderr) = lint(&toml(server, "app", ""), &["--format", "json"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let doc: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(doc["shards"], 1);
    assert_eq!(
        listed(&doc, "findings"),
        vec![
            "not_strict -.-".to_string(),
            format!("narrower_than_feeder {HOSTILE}.account_id"),
            "narrower_than_feeder orders.account_id".to_string(),
            "auto_increment_type users.id".to_string(),
            "signed_id users.id".to_string(),
        ]
    );
    let narrow = &doc["findings"][2];
    assert_eq!(narrow["kind"], "inferred");
    assert_eq!(narrow["parent"], "app.accounts.id");
    assert_eq!(narrow["column_type"], "int(10) unsigned");
    assert_eq!(
        narrow["message"],
        "int(10) unsigned holds at most 4294967295, its parent app.accounts.id up to 18446744073709551615"
    );
    assert_eq!(doc["allowed"], Value::Array(Vec::new()));

    let (code, xml, _) = lint(&toml(server, "app", ""), &["--format", "junit"]);
    assert_eq!(code, 1);
    let parsed = roxmltree::Document::parse(&xml).expect("the JUnit XML parses");
    let cases: Vec<(String, String)> = parsed
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|n| {
            (
                n.attribute("classname").unwrap_or_default().to_string(),
                n.attribute("name").unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(cases.len(), 5, "one testcase per finding: {xml}");
    assert!(
        cases.contains(&(
            "lint-01.app.or`d<e>rs'{table}&\\u{1b}[31m".to_string(),
            "account_id: narrower_than_feeder".to_string()
        )),
        "{cases:?}"
    );
    assert!(!xml.contains('\u{1b}'), "{xml}");

    let allow = "[lint]\nallow = [{ column = \"app.users.id\", reason = \"retired in Q3\" }]\n";
    let (code, xml, stderr) = lint(&toml(server, "app", allow), &["--format", "junit"]);
    assert_eq!(code, 1, "{stderr}");
    let parsed = roxmltree::Document::parse(&xml).expect("the JUnit XML parses");
    let skipped: Vec<&str> = parsed
        .descendants()
        .filter(|n| n.has_tag_name("skipped"))
        .filter_map(|n| n.attribute("message"))
        .collect();
    assert_eq!(
        skipped,
        vec!["allowed: retired in Q3", "allowed: retired in Q3"]
    );
    assert_eq!(parsed.root_element().attribute("failures"), Some("3"));

    let (code, text, _) = lint(&toml(server, "app", allow), &[]);
    assert_eq!(code, 1);
    assert!(
        text.ends_with("\n3 findings (2 allowed) on 1 shard\n"),
        "{text}"
    );
    assert!(
        text.contains("or`d<e>rs'{table}&\\u{1b}[31m.account_id"),
        "{text}"
    );
    println!("{text}");

    server
        .exec("SET GLOBAL sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION';")
        .expect("strict again");
    let (code, text, stderr) = lint(&toml(server, "clean", allow), &[]);
    assert_eq!(code, 0, "{text}{stderr}");
    assert_eq!(text, "No findings on 1 shard (0 allowed).\n");
    assert_eq!(
        stderr,
        "headroom: warning: [lint] allow app.users.id matches no finding: a stale exception\n"
    );
}

#[test]
fn lint_reads_every_configured_shard_whatever_cluster_says() {
    // Member 0 of 2 owns only some of these shards; lint names every one unreachable.
    let names = ["gone-a", "gone-b", "gone-c", "gone-d"];
    let owned = names
        .iter()
        .filter(|n| headroom::cluster::owner(n, 2) == 0)
        .count();
    assert!(owned < names.len(), "member 0 must not own them all");
    let mut toml =
        "[poll]\nquery_timeout = \"2s\"\n[cluster]\nmember = 0\nmembers = 2\n".to_string();
    for name in names {
        toml.push_str(&format!(
            "[[shards]]\nname = \"{name}\"\nurl = \"mysql://root@127.0.0.1:1/\"\n"
        ));
    }
    let (code, stdout, stderr) = lint(&toml, &[]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    for name in names {
        assert!(
            stderr.contains(&format!("headroom: unreachable shard {name}: ")),
            "{stderr}"
        );
    }
}

#[test]
fn lint_exits_2_on_an_unreachable_shard_and_on_an_allow_without_a_reason() {
    let toml = "[poll]\nquery_timeout = \"2s\"\n[[shards]]\nname = \"gone\"\nurl = \"mysql://root@127.0.0.1:1/\"\n";
    let (code, stdout, stderr) = lint(toml, &["--format", "junit"]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("headroom: unreachable shard gone: "),
        "{stderr}"
    );

    let bad = format!("{toml}[lint]\nallow = [{{ column = \"app.users.id\" }}]\n");
    let (code, stdout, stderr) = lint(&bad, &[]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("lint.allow[0].reason: is missing"),
        "{stderr}"
    );
}
