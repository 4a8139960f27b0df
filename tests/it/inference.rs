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

/// Sakila's tables as published (integer columns, keys, a few others), without its 22
/// foreign keys: the recall figure of docs/measuring.md on a real server, where the primary
/// keys (single and composite) come from the index read.
const SAKILA: &str = "\
CREATE DATABASE sakila;
CREATE TABLE sakila.actor (actor_id SMALLINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, first_name VARCHAR(45) NOT NULL);
CREATE TABLE sakila.country (country_id SMALLINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, country VARCHAR(50) NOT NULL);
CREATE TABLE sakila.city (city_id SMALLINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, city VARCHAR(50) NOT NULL, country_id SMALLINT UNSIGNED NOT NULL, KEY idx_fk_country_id (country_id));
CREATE TABLE sakila.address (address_id SMALLINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, address VARCHAR(50) NOT NULL, city_id SMALLINT UNSIGNED NOT NULL, KEY idx_fk_city_id (city_id));
CREATE TABLE sakila.category (category_id TINYINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, name VARCHAR(25) NOT NULL);
CREATE TABLE sakila.language (language_id TINYINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, name CHAR(20) NOT NULL);
CREATE TABLE sakila.film (film_id SMALLINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, title VARCHAR(128) NOT NULL, release_year YEAR, language_id TINYINT UNSIGNED NOT NULL, original_language_id TINYINT UNSIGNED DEFAULT NULL, rental_duration TINYINT UNSIGNED NOT NULL DEFAULT 3, rental_rate DECIMAL(4,2) NOT NULL DEFAULT 4.99, length SMALLINT UNSIGNED DEFAULT NULL, KEY idx_fk_language_id (language_id), KEY idx_fk_original_language_id (original_language_id));
CREATE TABLE sakila.film_actor (actor_id SMALLINT UNSIGNED NOT NULL, film_id SMALLINT UNSIGNED NOT NULL, PRIMARY KEY (actor_id, film_id), KEY idx_fk_film_id (film_id));
CREATE TABLE sakila.film_category (film_id SMALLINT UNSIGNED NOT NULL, category_id TINYINT UNSIGNED NOT NULL, PRIMARY KEY (film_id, category_id));
CREATE TABLE sakila.film_text (film_id SMALLINT NOT NULL PRIMARY KEY, title VARCHAR(255) NOT NULL);
CREATE TABLE sakila.staff (staff_id TINYINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, first_name VARCHAR(45) NOT NULL, address_id SMALLINT UNSIGNED NOT NULL, store_id TINYINT UNSIGNED NOT NULL, active BOOLEAN NOT NULL DEFAULT TRUE);
CREATE TABLE sakila.store (store_id TINYINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, manager_staff_id TINYINT UNSIGNED NOT NULL, address_id SMALLINT UNSIGNED NOT NULL, UNIQUE KEY idx_unique_manager (manager_staff_id));
CREATE TABLE sakila.customer (customer_id SMALLINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, store_id TINYINT UNSIGNED NOT NULL, address_id SMALLINT UNSIGNED NOT NULL, active BOOLEAN NOT NULL DEFAULT TRUE);
CREATE TABLE sakila.inventory (inventory_id MEDIUMINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, film_id SMALLINT UNSIGNED NOT NULL, store_id TINYINT UNSIGNED NOT NULL);
CREATE TABLE sakila.rental (rental_id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, rental_date DATETIME NOT NULL, inventory_id MEDIUMINT UNSIGNED NOT NULL, customer_id SMALLINT UNSIGNED NOT NULL, staff_id TINYINT UNSIGNED NOT NULL);
CREATE TABLE sakila.payment (payment_id SMALLINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, customer_id SMALLINT UNSIGNED NOT NULL, staff_id TINYINT UNSIGNED NOT NULL, rental_id INT DEFAULT NULL, amount DECIMAL(5,2) NOT NULL);
";

/// Sakila's declared foreign keys, child → parent (table.column).
const SAKILA_FKS: [(&str, &str); 22] = [
    ("address.city_id", "city.city_id"),
    ("city.country_id", "country.country_id"),
    ("customer.store_id", "store.store_id"),
    ("customer.address_id", "address.address_id"),
    ("film.language_id", "language.language_id"),
    ("film.original_language_id", "language.language_id"),
    ("film_actor.actor_id", "actor.actor_id"),
    ("film_actor.film_id", "film.film_id"),
    ("film_category.film_id", "film.film_id"),
    ("film_category.category_id", "category.category_id"),
    ("inventory.film_id", "film.film_id"),
    ("inventory.store_id", "store.store_id"),
    ("payment.customer_id", "customer.customer_id"),
    ("payment.staff_id", "staff.staff_id"),
    ("payment.rental_id", "rental.rental_id"),
    ("rental.inventory_id", "inventory.inventory_id"),
    ("rental.customer_id", "customer.customer_id"),
    ("rental.staff_id", "staff.staff_id"),
    ("staff.address_id", "address.address_id"),
    ("staff.store_id", "store.store_id"),
    ("store.manager_staff_id", "staff.staff_id"),
    ("store.address_id", "address.address_id"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sakila_without_foreign_keys_recovers_every_one_on_a_real_server() {
    let servers = start_servers(&["sakila"]);
    let db = &servers[0];
    db.exec(SAKILA).expect("seeding");
    let app = spawn_app(settings(&toml(&db.url("root", None), ""))).await;
    app.wait_ready().await;
    let (_, doc) = app.get_json("/api/columns?kind=inferred").await;
    let inferred: Vec<(String, String)> = doc["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| {
            let name = format!(
                "{}.{}",
                c["table"].as_str().unwrap_or(""),
                c["column"].as_str().unwrap_or("")
            );
            (name, c["parent"].as_str().unwrap_or("").to_string())
        })
        .collect();
    let (mut recovered, mut wrong) = (0, 0);
    for (child, parent) in SAKILA_FKS {
        match inferred.iter().find(|(c, _)| c == child) {
            Some((_, p)) if *p == format!("sakila.{parent}") => recovered += 1,
            Some(_) => wrong += 1,
            None => {}
        }
    }
    assert_eq!((recovered, wrong), (22, 0), "{inferred:?}");
    // One guess beyond the declared keys, and a true one: film_text shares film's key.
    assert_eq!(inferred.len(), 23, "{inferred:?}");
    assert!(
        inferred.contains(&(
            "film_text.film_id".to_string(),
            "sakila.film.film_id".to_string()
        )),
        "{inferred:?}"
    );
    let (_, shards) = app.get_json("/api/shards").await;
    assert_eq!(shards["shards"][0]["ambiguous"], serde_json::json!([]));
    app.stop().await;
}

/// `headroom infer` on the GitHub-2021 shard beside an extension table, with a shard that
/// does not answer: every guess with its evidence and runners-up, the ambiguous column and
/// the pin that settles it, which the configuration then takes; exit 2 for the dead shard,
/// 0 without it.
#[test]
fn infer_prints_guesses_runners_up_and_a_pin_that_settles_the_ambiguous_column() {
    let servers = start_servers(&["gh-infer"]);
    let db = &servers[0];
    db.exec(SHARD).expect("seeding");
    db.exec(
        "CREATE TABLE gh.repository_stats (repository_id BIGINT NOT NULL PRIMARY KEY, star_count INT NOT NULL);",
    )
    .expect("extension table");
    let live = toml(&db.url("root", None), "");
    let dead = format!(
        "{live}[[shards]]\nname = \"gone\"\nurl = \"mysql://root@127.0.0.1:1/\"\n[poll]\nquery_timeout = \"2s\"\n"
    );

    let (code, stdout, stderr) = crate::harness::headroom("infer", &dead, &[]);
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("headroom: shard gone: not read: "),
        "{stderr}"
    );
    assert!(
        stdout.contains("SHARD gh: 3 inferred, 1 ambiguous"),
        "{stdout}"
    );

    let (code, stdout, stderr) = crate::harness::headroom("infer", &live, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stderr, "");
    for expected in [
        "  gh.stars.repository_id\n    parent       gh.repositories.id\n    evidence     rails: repository_id -> repositories.id\n    passed over  gh.repository_stats.repository_id (name equals the primary key of repository_stats): not named after the key's stem\n",
        "  gh.repository_stats.repository_id\n    parent       gh.repositories.id\n    evidence     shared primary key, rails: repository_id -> repositories.id\n",
        "  gh.pins.we`ird {table}_id\n    parent       gh.we`ird {table}s.id\n",
        "  AMBIGUOUS gh.gists.owner_id\n    candidate    gh.accounts.owner_id\n    candidate    gh.profiles.owner_id\n",
        "# gh: gh.gists.owner_id\n[[inference.rules]]\ncolumn = \"owner_id\"\nparent = \"gh.accounts.owner_id\"\n# parent = \"gh.profiles.owner_id\"\n",
    ] {
        assert!(stdout.contains(expected), "{expected}\n---\n{stdout}");
    }
    assert!(!stdout.contains("star_count"), "{stdout}");

    // The pin, pasted, settles the column: nothing ambiguous, the chosen parent guessed.
    let pin = stdout
        .split_once("# gh: gh.gists.owner_id\n")
        .map(|(_, pin)| pin.to_string())
        .expect("pin");
    let (code, json, _) =
        crate::harness::headroom("infer", &format!("{live}{pin}"), &["--format", "json"]);
    assert_eq!(code, 0);
    let doc: Value = serde_json::from_str(&json).expect("json");
    let shard = &doc["shards"][0];
    assert_eq!(shard["ambiguous"], serde_json::json!([]));
    assert_eq!(doc["rules"], "");
    let gist = shard["inferred"]
        .as_array()
        .expect("inferred")
        .iter()
        .find(|c| c["column"] == "gh.gists.owner_id")
        .expect("the pinned column");
    assert_eq!(gist["parent"], "gh.accounts.owner_id");
    assert_eq!(gist["evidence"], "rule 0: owner_id");
}
