//! What is measured, on real MariaDB: type maxima, auto-increment counters, the Etsy case
//! end to end, foreign-key chains, and index-only reads.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{
    Cluster, TICKET_START, find_column, metric_value, poll_once, settings, spawn_app, start_servers,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_width_signed_unsigned_and_zerofill_reports_its_exact_maximum() {
    let servers = start_servers(&["widths"]);
    let db = &servers[0];
    let widths = [
        ("tinyint", 127u64, 255u64),
        ("smallint", 32_767, 65_535),
        ("mediumint", 8_388_607, 16_777_215),
        ("int", 2_147_483_647, 4_294_967_295),
        (
            "bigint",
            9_223_372_036_854_775_807,
            18_446_744_073_709_551_615,
        ),
    ];
    let mut sql = String::from("CREATE DATABASE w;\n");
    for (ty, signed_max, unsigned_max) in widths {
        for (suffix, attrs, max) in [
            ("s", "", signed_max),
            ("u", " UNSIGNED", unsigned_max),
            ("z", " UNSIGNED ZEROFILL", unsigned_max),
        ] {
            // Each counter stands 10 below its type's maximum.
            sql.push_str(&format!(
                "CREATE TABLE w.{ty}_{suffix} (id {ty}{attrs} NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT={};\n",
                max - 10
            ));
        }
    }
    // A TINYINT whose last value has been used: MariaDB reports AUTO_INCREMENT 128.
    sql.push_str("CREATE TABLE w.full (id TINYINT NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=127;\n");
    sql.push_str("INSERT INTO w.full VALUES ();\n");
    db.exec(&sql).expect("seeding");

    let app = spawn_app(settings(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[[shards]]\nname = \"w\"\nurl = \"{}\"\n",
        db.url("root", None)
    )))
    .await;
    app.wait_ready().await;
    let (status, raw) = app.get_text("/api/columns?sort=name").await;
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_str(&raw).expect("json");
    for (ty, signed_max, unsigned_max) in widths {
        for (suffix, max, column_type_has) in [
            ("s", signed_max, ""),
            ("u", unsigned_max, "unsigned"),
            ("z", unsigned_max, "zerofill"),
        ] {
            let c = find_column(&doc, "w", &format!("w.{ty}_{suffix}.id"));
            assert_eq!(c["kind"], "auto_increment");
            assert_eq!(c["max"].as_u64(), Some(max), "{ty}_{suffix}");
            assert_eq!(c["current"].as_u64(), Some(max - 10), "{ty}_{suffix}");
            assert_eq!(c["remaining"].as_i64(), Some(10), "{ty}_{suffix}");
            assert_eq!(c["status"], "critical", "{ty}_{suffix}");
            assert!(
                c["column_type"]
                    .as_str()
                    .unwrap_or("")
                    .contains(column_type_has)
            );
        }
    }
    // Exact in the JSON text itself, not only after parsing.
    assert!(raw.contains("\"max\":18446744073709551615"));
    assert!(raw.contains("\"current\":18446744073709551605"));
    let full = find_column(&doc, "w", "w.full.id");
    assert_eq!(full["current"].as_u64(), Some(128));
    assert_eq!(full["remaining"].as_i64(), Some(-1));
    assert_eq!(full["status"], "exhausted");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_etsy_case_shows_exhausted_and_critical_on_the_api_and_metrics() {
    let cluster = Cluster::start();
    // Both ticket servers hand out IDs past 2^31 − 1 (offsets 1 and 2, increment 2).
    let last = cluster.hand_out(400);
    // Each server steps by 2 from its own offset.
    assert_eq!(last[0] % 2, 1);
    assert_eq!(last[1] % 2, 0);
    assert!(last[0] >= TICKET_START + 798 && last[1] >= TICKET_START + 798);
    let highest = i128::from(last[0].max(last[1]));
    assert!(highest > 2_147_483_647);

    let app = spawn_app(settings(&cluster.toml(""))).await;
    app.wait_ready().await;
    let (status, doc) = app.get_json("/api/columns").await;
    assert_eq!(status, 200);

    for shard in ["shard-01", "shard-02"] {
        // INT signed storing ticket IDs: exhausted, by exactly how many IDs.
        let actor = find_column(&doc, shard, "etsy.activity_feed.actor_id");
        assert_eq!(actor["kind"], "reference");
        assert_eq!(actor["source"], "tickets64");
        assert_eq!(actor["status"], "exhausted");
        assert_eq!(actor["type_mismatch"], true);
        assert_eq!(actor["current"].as_i64().map(i128::from), Some(highest));
        assert_eq!(
            actor["remaining"].as_i64().map(i128::from),
            Some(2_147_483_647 - highest)
        );

        // INT UNSIGNED storing ticket IDs: over half used and mismatched, the latent case.
        let comments = find_column(&doc, shard, "etsy.treasury_comments.treasury_id");
        assert!(comments["used_ratio"].as_f64().unwrap_or(0.0) > 0.5);
        assert_eq!(comments["type_mismatch"], true);
        assert_eq!(comments["status"], "ok");
        assert_eq!(comments["max"].as_u64(), Some(4_294_967_295));

        // An INT counter at 1.9e9: critical.
        let feed = find_column(&doc, shard, "etsy.activity_feed.feed_id");
        assert_eq!(feed["kind"], "auto_increment");
        assert_eq!(feed["current"].as_u64(), Some(1_900_000_000));
        assert_eq!(feed["status"], "critical");

        // BIGINT UNSIGNED storing ticket IDs: fine and not mismatched.
        let shops = find_column(&doc, shard, "etsy.shops.shop_id");
        assert_eq!(shops["status"], "ok");
        assert_eq!(shops["type_mismatch"], false);

        // A foreign key to a reference column inherits the source's value.
        let listings = find_column(&doc, shard, "etsy.listings.shop_id");
        assert_eq!(listings["kind"], "foreign_key");
        assert_eq!(listings["source"], "etsy.shops.shop_id");
        assert_eq!(listings["current"].as_i64().map(i128::from), Some(highest));

        // teams is excluded from the rule; its members' team_id follows the declared key.
        let members = find_column(&doc, shard, "etsy.team_members.team_id");
        assert_eq!(members["kind"], "foreign_key");
        assert_eq!(members["current"].as_u64(), Some(13_400));
    }

    let (_, sources) = app.get_json("/api/sources").await;
    let tickets = &sources["sources"][0];
    assert_eq!(tickets["name"], "tickets64");
    assert_eq!(tickets["current"].as_i64().map(i128::from), Some(highest));
    assert_eq!(tickets["max"].as_u64(), Some(u64::MAX));
    assert_eq!(tickets["servers"][0]["up"], true);
    assert_eq!(tickets["servers"][1]["up"], true);

    let (_, metrics) = app.get_text("/metrics").await;
    let actor = [
        ("shard", "shard-01"),
        ("schema", "etsy"),
        ("table", "activity_feed"),
        ("column", "actor_id"),
        ("kind", "reference"),
    ];
    assert_eq!(
        metric_value(&metrics, "headroom_column_current", &actor),
        Some(highest as f64)
    );
    assert_eq!(
        metric_value(&metrics, "headroom_column_max", &actor),
        Some(2_147_483_647.0)
    );
    // `remaining` is max - current in PromQL, not a family of its own.
    assert_eq!(
        metric_value(&metrics, "headroom_column_remaining", &actor),
        None
    );
    assert_eq!(
        metric_value(&metrics, "headroom_column_type_mismatch", &actor),
        Some(1.0)
    );
    let current = metric_value(&metrics, "headroom_column_current", &actor).unwrap_or(0.0);
    let max = metric_value(&metrics, "headroom_column_max", &actor).unwrap_or(f64::MAX);
    assert!(current / max > 1.0, "{current} / {max}");
    let a = cluster.tickets[0].port().to_string();
    let b = cluster.tickets[1].port().to_string();
    let server_a = format!("127.0.0.1:{a}");
    let server_b = format!("127.0.0.1:{b}");
    assert_eq!(
        metric_value(
            &metrics,
            "headroom_source_current",
            &[("source", "tickets64"), ("server", &server_a)]
        ),
        Some(last[0] as f64)
    );
    assert_eq!(
        metric_value(
            &metrics,
            "headroom_source_current",
            &[("source", "tickets64"), ("server", &server_b)]
        ),
        Some(last[1] as f64)
    );
    assert_eq!(
        metric_value(&metrics, "headroom_shard_up", &[("shard", "shard-02")]),
        Some(1.0)
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_foreign_key_chain_resolves_to_the_root_counter() {
    let servers = start_servers(&["chain"]);
    let db = &servers[0];
    db.exec(
        "CREATE DATABASE chain;
CREATE TABLE chain.users (id SMALLINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=60000;
CREATE TABLE chain.orders (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id SMALLINT UNSIGNED NOT NULL, KEY (user_id),
  FOREIGN KEY (user_id) REFERENCES chain.users (id));
CREATE TABLE chain.order_notes (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  order_user SMALLINT UNSIGNED NOT NULL,
  FOREIGN KEY (order_user) REFERENCES chain.orders (user_id));
CREATE TABLE chain.codes (code TINYINT NOT NULL PRIMARY KEY);
INSERT INTO chain.codes VALUES (1), (100), (120);
CREATE TABLE chain.versioned (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY) WITH SYSTEM VERSIONING AUTO_INCREMENT=77;
CREATE TABLE chain.items (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, code TINYINT NOT NULL,
  FOREIGN KEY (code) REFERENCES chain.codes (code));
CREATE VIEW chain.orders_view AS SELECT id, user_id FROM chain.orders;",
    )
    .expect("seeding");
    let store = poll_once(&format!(
        "[[shards]]\nname = \"chain\"\nurl = \"{}\"\nschemas = [\"chain\"]\n",
        db.url("root", None)
    ))
    .await;
    let snap = store.read();
    let shard = &snap.shards[0];
    assert!(shard.up, "{:?}", shard.last_error);
    let col = |name: &str| {
        shard
            .columns
            .iter()
            .find(|c| format!("{}.{}.{}", c.id.schema, c.id.table, c.id.column) == name)
            .unwrap_or_else(|| panic!("{name} missing"))
            .clone()
    };
    let notes = col("chain.order_notes.order_user");
    assert_eq!(notes.kind, headroom::measure::Kind::ForeignKey);
    assert_eq!(notes.source.as_deref(), Some("chain.orders.user_id"));
    assert_eq!(notes.current, 60_000);
    assert_eq!(notes.max, 65_535);
    assert_eq!(notes.status, headroom::headroom::Status::Critical);
    assert_eq!(col("chain.orders.user_id").current, 60_000);
    // A parent that is not an ID column itself is read with one index dive.
    let items = col("chain.items.code");
    assert_eq!(items.current, 120);
    assert_eq!(items.max, 127);
    // MariaDB's system-versioned tables are tables too.
    assert_eq!(col("chain.versioned.id").current, 77);
    // Plain integer columns are not ID columns.
    assert!(shard.columns.iter().all(|c| c.id.table != "codes"));
    // A view's columns are listed by information_schema.COLUMNS, but a view holds no IDs.
    assert!(shard.columns.iter().all(|c| c.id.table != "orders_view"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_that_leads_no_index_is_never_scanned() {
    let servers = start_servers(&["noscan", "ticket"]);
    let (db, ticket) = (&servers[0], &servers[1]);
    db.exec(headroom_sandbox::ETSY_SCHEMA_SQL).expect("schema");
    ticket
        .exec(&headroom_sandbox::ticket_server_sql(1, 1_000))
        .expect("tickets");
    let highest = headroom_sandbox::hand_out_tickets(ticket, 5).expect("tickets");
    // Values larger than any ticket: found through the index, invisible without one.
    db.exec(
        "INSERT INTO etsy.treasury_comments (comment_id, treasury_id) VALUES (1, 4000000000);
INSERT INTO etsy.audit_log (user_id) VALUES (4000000001);
CREATE TABLE etsy.ign_tbl (entry INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  owner_id INT UNSIGNED NOT NULL, KEY owner_id (owner_id) IGNORED);
INSERT INTO etsy.ign_tbl (owner_id) VALUES (4000000002);
SET GLOBAL log_output = 'TABLE'; SET GLOBAL general_log = 1;",
    )
    .expect("rows");
    let toml = format!(
        "[[shards]]\nname = \"noscan\"\nurl = \"{}\"\n[[sources]]\nname = \"tickets64\"\nkind = \"ticket_server\"\nservers = [\"{}\"]\ntable = \"Tickets64\"\n{}",
        db.url("root", None),
        ticket.url("root", Some("tickets")),
        headroom_sandbox::ETSY_REFERENCES_TOML
    );
    let store = poll_once(&toml).await;
    db.exec("SET GLOBAL general_log = 0;").expect("log off");
    let snap = store.read();
    let shard = &snap.shards[0];
    assert!(shard.up, "{:?}", shard.last_error);
    let find = |table: &str, column: &str| {
        shard
            .columns
            .iter()
            .find(|c| c.id.table == table && c.id.column == column)
            .unwrap_or_else(|| panic!("{table}.{column} missing"))
            .clone()
    };
    assert_eq!(
        find("treasury_comments", "treasury_id").current,
        4_000_000_000
    );
    assert_eq!(find("audit_log", "user_id").current, i128::from(highest));
    // An index the optimizer ignores is no index: MAX() on it would scan.
    assert_eq!(find("ign_tbl", "owner_id").current, i128::from(highest));

    // The server's own log: the indexed column was read with MAX, audit_log never.
    let log = db
        .exec("SELECT argument FROM mysql.general_log;")
        .expect("general log");
    assert!(log.contains("MAX(`treasury_id`)"), "{log}");
    assert!(!log.contains("`audit_log`"), "audit_log was read:\n{log}");
    assert!(!log.contains("`ign_tbl`"), "ign_tbl was read:\n{log}");
    assert!(!log.to_ascii_lowercase().contains("count("), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_dropped_between_inventory_and_max_is_skipped_not_fatal() {
    use sqlx::Connection;
    let servers = start_servers(&["dropped"]);
    let db = &servers[0];
    db.exec(
        "CREATE DATABASE d;
CREATE TABLE d.kept (x INT NOT NULL, KEY (x));
INSERT INTO d.kept VALUES (7), (9);
CREATE TABLE d.empty (x INT NOT NULL, KEY (x));",
    )
    .expect("seed");
    let mut conn = sqlx::MySqlConnection::connect(&db.url("root", None))
        .await
        .expect("connect");
    let id = |t: &str| headroom::inventory::ColumnId::new("d", t, "x");
    let columns = [id("kept"), id("gone"), id("empty")];
    let values = headroom::mysql::dives::read(&mut conn, &columns, Duration::from_secs(5))
        .await
        .expect("a missing table does not fail the read");
    assert_eq!(values.get(&id("kept")), Some(&Some(9)));
    assert_eq!(values.get(&id("empty")), Some(&None));
    assert!(!values.contains_key(&id("gone")));
}
