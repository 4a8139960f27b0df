//! The lint rules, allow entries, exit codes and renderers on hand-built snapshots.

use std::time::Duration;

use chrono::Utc;

use super::*;
use crate::config::Settings;
use crate::headroom::Width;
use crate::inventory::ColumnId;
use crate::state::Store;

const INT: IntType = IntType::new(Width::Int, false);
const INT_U: IntType = IntType::new(Width::Int, true);
const BIG: IntType = IntType::new(Width::Big, false);
const BIG_U: IntType = IntType::new(Width::Big, true);

fn settings(lint: &str) -> Settings {
    crate::config::from_toml_str(
        &format!(
            "[[shards]]\nname = \"a\"\nurl = \"mysql://u@db-a:3306/\"\n\
             [[shards]]\nname = \"b\"\nurl = \"mysql://u@db-b:3307/\"\n{lint}"
        ),
        &|_| None,
    )
    .expect("settings")
}

/// A column of `shard`, `schema.table.column`, fed by `feeder` (a source or a parent) whose
/// type holds `feeder_max`.
fn column(
    shard: &str,
    name: &str,
    t: IntType,
    kind: Kind,
    feeder: Option<&str>,
    feeder_max: Option<u64>,
) -> ColumnReport {
    let p: Vec<&str> = name.split('.').collect();
    crate::measure::fixture::column(shard, ColumnId::new(p[0], p[1], p[2]), t, 1)
        .kind(kind)
        .source(feeder)
        .feeder_max(feeder_max)
        .build()
}

/// Shard a (not strict): a signed INT auto-increment, an INT UNSIGNED foreign key to a
/// BIGINT UNSIGNED parent, a signed INT foreign key to the signed INT auto-increment
/// (consistent: excused), a signed INT fed by a ticket source, a signed BIGINT
/// auto-increment (Rails: allowed), an INT UNSIGNED auto-increment (fine), a signed BIGINT
/// inferred reference to an INT UNSIGNED parent. Shard b (strict): one clean column.
fn snapshot(settings: &Settings) -> Snapshot {
    let (auto, fk, inferred) = (Kind::AutoIncrement, Kind::ForeignKey, Kind::Inferred);
    let a = vec![
        column("a", "shop.users.id", INT, auto, None, None),
        column(
            "a",
            "shop.orders.user_id",
            INT_U,
            fk,
            Some("shop.accounts.id"),
            Some(u64::MAX),
        ),
        column(
            "a",
            "shop.notes.user_ref",
            INT,
            fk,
            Some("shop.users.id"),
            Some(INT.max()),
        ),
        column(
            "a",
            "shop.likes.treasury_id",
            INT,
            Kind::Reference,
            Some("tickets64"),
            Some(u64::MAX),
        ),
        column("a", "shop.posts.id", BIG, auto, None, None),
        column("a", "shop.tags.id", INT_U, auto, None, None),
        column(
            "a",
            "shop.stars.tag_id",
            BIG,
            inferred,
            Some("shop.tags.id"),
            Some(INT_U.max()),
        ),
    ];
    let b = vec![column("b", "shop.users.id", BIG_U, auto, None, None)];
    let store = Store::new(settings);
    let now = Utc::now();
    store.shard_succeeded("a", a, Vec::new(), Duration::from_millis(1), now);
    store.shard_succeeded("b", b, Vec::new(), Duration::from_millis(1), now);
    let mut snapshot = store.read().clone();
    snapshot.shards[0].strict_mode = Some(false);
    snapshot.shards[0].sql_mode = Some("NO_ENGINE_SUBSTITUTION".to_string());
    snapshot.shards[1].strict_mode = Some(true);
    snapshot
}

fn listed(findings: &[Finding]) -> Vec<String> {
    findings
        .iter()
        .map(|f| {
            let name = f.column_name().unwrap_or_else(|| "-".to_string());
            let allowed = if f.allowed { " (allowed)" } else { "" };
            format!("{} {name} {}{allowed}", f.shard, f.rule.as_str())
        })
        .collect()
}

#[test]
fn each_rule_finds_its_columns_in_shard_schema_table_column_rule_order() {
    let settings = settings("");
    let found = findings(&snapshot(&settings), &settings.lint);
    assert_eq!(
        listed(&found),
        vec![
            "a - not_strict",
            "a shop.likes.treasury_id narrower_than_feeder",
            "a shop.likes.treasury_id signed_id",
            "a shop.orders.user_id narrower_than_feeder",
            "a shop.stars.tag_id signed_id",
            "a shop.users.id auto_increment_type",
            "a shop.users.id signed_id",
        ]
    );
    let narrow = &found[3];
    assert_eq!(
        narrow.message,
        "int unsigned holds at most 4294967295, its parent shop.accounts.id up to 18446744073709551615"
    );
    assert_eq!(narrow.parent.as_deref(), Some("shop.accounts.id"));
    assert_eq!(narrow.source, None);
    assert_eq!(narrow.kind, Some(Kind::ForeignKey));
    assert_eq!(found[1].source.as_deref(), Some("tickets64"));
    assert_eq!(
        found[2].message,
        "signed int uses half its range: IDs are never negative (int unsigned holds up to 4294967295)"
    );
    assert_eq!(
        found[5].message,
        "auto-increment int (max 2147483647) is not in [lint] allowed_auto_increment (int unsigned, bigint unsigned, bigint)"
    );
    assert_eq!(found[0].column, None);
    assert_eq!(found[0].column_type, None);
    assert!(
        found[0]
            .message
            .starts_with("sql_mode \"NO_ENGINE_SUBSTITUTION\" has neither")
    );
}

#[test]
fn a_signed_type_left_out_of_allowed_auto_increment_is_two_findings() {
    let settings = settings("[lint]\nallowed_auto_increment = [\"bigint unsigned\"]\n");
    let found = findings(&snapshot(&settings), &settings.lint);
    let posts: Vec<String> = listed(&found)
        .into_iter()
        .filter(|l| l.contains("posts"))
        .collect();
    assert_eq!(
        posts,
        vec![
            "a shop.posts.id auto_increment_type",
            "a shop.posts.id signed_id"
        ]
    );
    // And an INT UNSIGNED auto-increment is no longer allowed either.
    assert!(listed(&found).contains(&"a shop.tags.id auto_increment_type".to_string()));
}

#[test]
fn allowed_findings_do_not_fail_and_unmatched_entries_are_stale() {
    let settings = settings(
        "[lint]\nallow = [{ column = \"shop.users.*\", reason = \"legacy, retired in Q3\" },\n\
         { shard = \"a\", reason = \"a dev box\" },\n\
         { column = \"shop.*.treasury_id\", shard = \"a\", reason = \"tickets stay below 2^31\" },\n\
         { column = \"shop.stars.tag_id\", shard = \"b\", reason = \"wrong shard\" },\n\
         { column = \"gone.t.c\", reason = \"dropped\" }]\n",
    );
    let snapshot = snapshot(&settings);
    let found = findings(&snapshot, &settings.lint);
    let allowed: Vec<&str> = found
        .iter()
        .filter(|f| f.allowed)
        .filter_map(|f| f.reason.as_deref())
        .collect();
    assert_eq!(
        allowed,
        vec![
            "a dev box",
            "tickets stay below 2^31",
            "tickets stay below 2^31",
            "legacy, retired in Q3",
            "legacy, retired in Q3",
        ]
    );
    let stale: Vec<String> = stale(&found, &settings.lint)
        .iter()
        .map(|a| a.label())
        .collect();
    assert_eq!(stale, vec!["shop.stars.tag_id on shard b", "gone.t.c"]);
    let outcome = report(&snapshot, &settings.lint, Format::Text);
    assert_eq!(outcome.exit_code, 1, "orders and stars still fail");
    assert_eq!(
        outcome.errors,
        "headroom: warning: [lint] allow shop.stars.tag_id on shard b matches no finding: a stale exception\n\
         headroom: warning: [lint] allow gone.t.c matches no finding: a stale exception\n"
    );
    assert!(
        outcome
            .output
            .ends_with("\n2 findings (5 allowed) on 2 shards\n"),
        "{}",
        outcome.output
    );
    assert!(
        outcome.output.contains("allowed: a dev box"),
        "{}",
        outcome.output
    );
}

#[test]
fn a_clean_fleet_exits_0_and_an_unreachable_shard_exits_2() {
    let settings = settings("");
    let mut snapshot = snapshot(&settings);
    snapshot.shards.remove(0);
    let outcome = report(&snapshot, &settings.lint, Format::Text);
    assert_eq!(outcome.exit_code, 0);
    assert_eq!(outcome.output, "No findings on 1 shard (0 allowed).\n");
    assert_eq!(outcome.errors, "");
    snapshot.shards[0].unresolved =
        vec!["shop.t\u{1b}.c: parent shop.p.id has no known value".to_string()];
    let outcome = report(&snapshot, &settings.lint, Format::Text);
    assert_eq!(outcome.exit_code, 0);
    assert_eq!(
        outcome.errors,
        "headroom: warning: shard b: not linted: shop.t\\u{1b}.c: parent shop.p.id has no known value\n"
    );

    let mut snapshot = self::snapshot(&settings);
    snapshot.shards[1].up = false;
    snapshot.shards[1].last_error = Some("connect: connection refused\u{1b}[2J".to_string());
    let outcome = report(&snapshot, &settings.lint, Format::Json);
    assert_eq!(outcome.exit_code, 2);
    assert_eq!(outcome.output, "");
    assert_eq!(
        outcome.errors,
        "headroom: unreachable shard b: connect: connection refused\\u{1b}[2J\n"
    );
}

#[test]
fn json_lists_failing_and_allowed_findings_apart_with_every_field() {
    let settings =
        settings("[lint]\nallow = [{ column = \"shop.users.id\", reason = \"legacy\" }]\n");
    let snapshot = snapshot(&settings);
    let outcome = report(&snapshot, &settings.lint, Format::Json);
    let doc: serde_json::Value = serde_json::from_str(&outcome.output).expect("json");
    assert_eq!(doc["shards"], 2);
    assert_eq!(doc["findings"].as_array().map(Vec::len), Some(5));
    assert_eq!(doc["allowed"].as_array().map(Vec::len), Some(2));
    let narrow = &doc["findings"][3];
    for (key, value) in [
        ("rule", "narrower_than_feeder"),
        ("shard", "a"),
        ("schema", "shop"),
        ("table", "orders"),
        ("column", "user_id"),
        ("column_type", "int unsigned"),
        ("kind", "foreign_key"),
        ("parent", "shop.accounts.id"),
    ] {
        assert_eq!(narrow[key], value, "{key}");
    }
    assert_eq!(narrow["source"], serde_json::Value::Null);
    assert_eq!(narrow["allowed"], false);
    let shard = &doc["findings"][0];
    assert_eq!(shard["rule"], "not_strict");
    assert_eq!(shard["column"], serde_json::Value::Null);
    assert_eq!(doc["allowed"][0]["allowed"], true);
    assert_eq!(doc["allowed"][0]["reason"], "legacy");
    assert_eq!(doc["allowed"][0]["rule"], "auto_increment_type");
}

#[test]
fn xml_text_carries_no_control_character_and_no_markup() {
    assert_eq!(
        render::xml("a<b>&\"c'\u{1b}[31m\n\u{0}\u{fffe}"),
        "a&lt;b&gt;&amp;&quot;c&apos;\\u{1b}[31m\\n\\u{0}\\u{fffe}"
    );
}

#[test]
fn junit_has_one_testcase_per_finding_failures_and_skips_counted() {
    let settings =
        settings("[lint]\nallow = [{ column = \"shop.users.id\", reason = \"legacy <b>\" }]\n");
    let mut snapshot = snapshot(&settings);
    // A hostile table name: markup, quotes and an escape character.
    let mut columns = (*snapshot.shards[0].columns).clone();
    columns[1].id = ColumnId::new("shop", "<o\"r'd&ers\u{1b}>", "user_id");
    snapshot.shards[0].columns = std::sync::Arc::new(columns);
    let outcome = report(&snapshot, &settings.lint, Format::Junit);
    let doc = roxmltree::Document::parse(&outcome.output).expect("valid XML");
    let suites = doc.root_element();
    assert_eq!(suites.tag_name().name(), "testsuites");
    assert_eq!(suites.attribute("tests"), Some("7"));
    assert_eq!(suites.attribute("failures"), Some("5"));
    let suite = suites
        .children()
        .find(|n| n.has_tag_name("testsuite"))
        .expect("testsuite");
    assert_eq!(suite.attribute("name"), Some("headroom lint"));
    assert_eq!(suite.attribute("skipped"), Some("2"));
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 7);
    let hostile = cases
        .iter()
        .find(|c| c.attribute("name") == Some("user_id: narrower_than_feeder"))
        .expect("hostile testcase");
    assert_eq!(
        hostile.attribute("classname"),
        Some("a.shop.<o\"r'd&ers\\u{1b}>")
    );
    let failure = hostile
        .children()
        .find(|n| n.has_tag_name("failure"))
        .expect("failure");
    assert_eq!(failure.attribute("type"), Some("narrower_than_feeder"));
    assert!(
        failure
            .text()
            .is_some_and(|t| t.contains("parent: shop.accounts.id\n"))
    );
    let skipped: Vec<_> = cases
        .iter()
        .filter_map(|c| c.children().find(|n| n.has_tag_name("skipped")))
        .map(|s| s.attribute("message").unwrap_or_default().to_string())
        .collect();
    assert_eq!(skipped, vec!["allowed: legacy <b>", "allowed: legacy <b>"]);
    let shard = cases[0];
    assert_eq!(
        (shard.attribute("classname"), shard.attribute("name")),
        (Some("a"), Some("not_strict"))
    );
}

#[test]
fn junit_without_findings_has_one_passing_testcase_per_shard() {
    let settings = settings("");
    let mut snapshot = snapshot(&settings);
    snapshot.shards[0].columns = std::sync::Arc::default();
    snapshot.shards[0].strict_mode = Some(true);
    let outcome = report(&snapshot, &settings.lint, Format::Junit);
    assert_eq!(outcome.exit_code, 0);
    let doc = roxmltree::Document::parse(&outcome.output).expect("valid XML");
    let names: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .filter_map(|n| n.attribute("name"))
        .collect();
    assert_eq!(names, vec!["a: lint", "b: lint"]);
    assert_eq!(doc.root_element().attribute("failures"), Some("0"));
}

#[test]
fn postgresql_sequences_are_linted_by_type_width_and_cycle_and_named_in_their_database() {
    let settings = settings("");
    let pg = |table: &str, t: IntType, by: crate::measure::LimitedBy, cycle: bool| {
        let id = ColumnId::in_database(
            Some("app\"db".into()),
            "public".to_string(),
            table.to_string(),
            "id".to_string(),
        );
        let mut c = crate::measure::fixture::column("a", id, t, 1)
            .kind(Kind::Sequence)
            .source(Some("public.seq"))
            .build();
        c.column_type = if t == BIG { "bigint" } else { "integer" }.into();
        c.limited_by = Some(by);
        c.cycle = cycle;
        c
    };
    use crate::measure::LimitedBy::{Column, Sequence};
    let columns = vec![
        pg("serial_int", INT, Column, false),
        pg("big_behind_int_seq", BIG, Sequence, false),
        pg("cycling", BIG, Column, true),
        pg("fine", BIG, Column, false),
    ];
    let store = Store::new(&settings);
    store.shard_succeeded("a", columns, Vec::new(), Duration::ZERO, Utc::now());
    let mut snapshot = store.read().clone();
    snapshot.shards[0].strict_mode = Some(true);
    let found = findings(&snapshot, &settings.lint);
    assert_eq!(
        listed(&found),
        [
            "a app\"db.public.big_behind_int_seq.id sequence_narrower_than_column",
            "a app\"db.public.cycling.id cycle_sequence",
            "a app\"db.public.serial_int.id auto_increment_type",
        ]
    );
    assert!(
        found[2]
            .message
            .starts_with("sequence-fed integer (max 2147483647)"),
        "{}",
        found[2].message
    );
    assert!(
        found[0].message.contains("public.seq"),
        "{}",
        found[0].message
    );
    let json = serde_json::to_value(&found[0]).expect("json");
    assert_eq!(json["database"], "app\"db");
}
