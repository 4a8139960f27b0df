//! Undeclared references on real MariaDB: GitHub's 2021 outage (an INT `*_id` column that
//! holds a BIGINT key past 2^31 − 1, with no foreign key declared) reported `inferred`,
//! mismatched and exhausted; ambiguous columns on /api/shards; a declared key beats a
//! guess; `[inference] enabled = false`.

use serde_json::Value;

use crate::harness::{find_column, metric_value, settings, spawn_app, start_servers};

/// The GitHub-2021 shard: `repositories.id` BIGINT past 2^31 − 1, `stars.repository_id`
/// INT with no foreign key; `gists.owner_id` with two equally good parents; `issues.user_id`
/// declared against `repositories.id` though its name says `users`.
const SHARD: &str = "\
CREATE DATABASE gh;
CREATE TABLE gh.repositories (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=2147483700;
CREATE TABLE gh.stars (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, repository_id INT NOT NULL, star_count INT NOT NULL, is_public TINYINT NOT NULL, KEY (repository_id));
CREATE TABLE gh.accounts (owner_id BIGINT NOT NULL PRIMARY KEY);
CREATE TABLE gh.profiles (owner_id BIGINT NOT NULL PRIMARY KEY);
CREATE TABLE gh.gists (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, owner_id BIGINT NOT NULL);
CREATE TABLE gh.users (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=10;
CREATE TABLE gh.issues (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, user_id BIGINT NOT NULL, FOREIGN KEY (user_id) REFERENCES gh.repositories (id));
CREATE TABLE gh.`we``ird {table}s` (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY);
CREATE TABLE gh.pins (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, `we``ird {table}_id` INT NOT NULL);
";

fn toml(url: &str, extra: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[[shards]]\nname = \"gh\"\nurl = \"{url}\"\n{extra}"
    )
}

fn has_column(doc: &Value, name: &str) -> bool {
    doc["columns"].as_array().expect("columns").iter().any(|c| {
        format!(
            "{}.{}.{}",
            c["schema"].as_str().unwrap_or(""),
            c["table"].as_str().unwrap_or(""),
            c["column"].as_str().unwrap_or("")
        ) == name
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_github_2021_column_is_inferred_mismatched_and_exhausted() {
    let servers = start_servers(&["gh"]);
    let db = &servers[0];
    db.exec(SHARD).expect("seeding");
    let app = spawn_app(settings(&toml(&db.url("root", None), ""))).await;
    app.wait_ready().await;
    let (status, doc) = app.get_json("/api/columns").await;
    assert_eq!(status, 200);

    let stars = find_column(&doc, "gh", "gh.stars.repository_id");
    assert_eq!(stars["kind"], "inferred");
    assert_eq!(stars["parent"], "gh.repositories.id");
    assert_eq!(stars["source"], "gh.repositories.id");
    assert_eq!(stars["evidence"], "rails: repository_id -> repositories.id");
    assert_eq!(stars["type_mismatch"], true);
    assert_eq!(stars["status"], "exhausted");
    assert_eq!(stars["current"].as_i64(), Some(2_147_483_700));
    assert_eq!(
        stars["remaining"].as_i64(),
        Some(2_147_483_647 - 2_147_483_700)
    );

    // Other kinds carry no parent or evidence.
    let repos = find_column(&doc, "gh", "gh.repositories.id");
    assert_eq!(repos["kind"], "auto_increment");
    assert_eq!(repos["parent"], Value::Null);
    assert_eq!(repos["evidence"], Value::Null);

    // The declared key wins over the name.
    let issues = find_column(&doc, "gh", "gh.issues.user_id");
    assert_eq!(issues["kind"], "foreign_key");
    assert_eq!(issues["source"], "gh.repositories.id");
    assert_eq!(issues["current"].as_i64(), Some(2_147_483_700));
    assert_eq!(issues["evidence"], Value::Null);

    // A hostile table name is matched as text.
    let pins = find_column(&doc, "gh", "gh.pins.we`ird {table}_id");
    assert_eq!(pins["kind"], "inferred");
    assert_eq!(pins["parent"], "gh.we`ird {table}s.id");

    // Counters and flags are never references; the ambiguous column is not guessed.
    for name in [
        "gh.stars.star_count",
        "gh.stars.is_public",
        "gh.gists.owner_id",
    ] {
        assert!(!has_column(&doc, name), "{name}");
    }
    let (_, shards) = app.get_json("/api/shards").await;
    let shard = &shards["shards"][0];
    assert_eq!(
        shard["ambiguous"],
        serde_json::json!([{
            "column": "gh.gists.owner_id",
            "candidates": ["gh.accounts.owner_id", "gh.profiles.owner_id"],
        }])
    );

    let (_, kinds) = app.get_json("/api/columns?kind=inferred").await;
    assert_eq!(kinds["columns"].as_array().map(Vec::len), Some(2));
    let text = app.metrics_text();
    let labels = [
        ("table", "stars"),
        ("column", "repository_id"),
        ("kind", "inferred"),
    ];
    assert_eq!(
        metric_value(&text, "headroom_column_type_mismatch", &labels),
        Some(1.0)
    );
    assert_eq!(
        metric_value(&text, "headroom_column_current", &labels),
        Some(2_147_483_700.0)
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inference_disabled_measures_no_guessed_column_and_lists_none_ambiguous() {
    let servers = start_servers(&["gh-off"]);
    let db = &servers[0];
    db.exec(SHARD).expect("seeding");
    let extra = "[inference]\nenabled = false\n";
    let app = spawn_app(settings(&toml(&db.url("root", None), extra))).await;
    app.wait_ready().await;
    let (_, doc) = app.get_json("/api/columns").await;
    assert!(!has_column(&doc, "gh.stars.repository_id"));
    assert!(!has_column(&doc, "gh.pins.we`ird {table}_id"));
    assert_eq!(
        find_column(&doc, "gh", "gh.issues.user_id")["kind"],
        "foreign_key"
    );
    let (_, shards) = app.get_json("/api/shards").await;
    assert_eq!(shards["shards"][0]["ambiguous"], serde_json::json!([]));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_rule_finds_a_mediawiki_style_reference() {
    let servers = start_servers(&["wiki"]);
    let db = &servers[0];
    db.exec(
        "CREATE DATABASE wiki;
CREATE TABLE wiki.page (page_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=4000000000;
CREATE TABLE wiki.revision (rev_id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, rev_page INT NOT NULL, rev_len INT NOT NULL);
",
    )
    .expect("seeding");
    let extra =
        "[[inference.rules]]\ncolumn = \"{prefix}_{table}\"\nparent = \"{table}.{table}_id\"\n";
    let app = spawn_app(settings(&toml(&db.url("root", None), extra))).await;
    app.wait_ready().await;
    let (_, doc) = app.get_json("/api/columns").await;
    let rev = find_column(&doc, "gh", "wiki.revision.rev_page");
    assert_eq!(rev["kind"], "inferred");
    assert_eq!(rev["parent"], "wiki.page.page_id");
    assert_eq!(rev["evidence"], "rule 0: {prefix}_{table}");
    assert_eq!(rev["type_mismatch"], true);
    assert_eq!(rev["status"], "exhausted");
    assert!(!has_column(&doc, "wiki.revision.rev_len"));
    app.stop().await;
}
