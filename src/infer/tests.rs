//! The reports of `headroom infer` without a database: the text and JSON, the pins (that
//! the configuration reads them back and that they settle what they pin), hostile names.

use super::*;
use crate::headroom::{IntType, Width};
use crate::inference::Settings as InferenceSettings;
use crate::inventory::{ColumnId, IntColumn};

/// An inventory of `schema.table.column` names; `pk` marks a single-column primary key,
/// `+` AUTO_INCREMENT.
fn inventory(columns: &[&str]) -> Inventory {
    let mut inv = Inventory::default();
    for spec in columns {
        let (name, flag) = spec.rsplit_once(' ').unwrap_or((spec, ""));
        let parts: Vec<&str> = name.splitn(3, '.').collect();
        let id = ColumnId::new(parts[0], parts[1], parts[2]);
        if flag.starts_with("pk") {
            inv.primary_keys
                .insert((id.schema.clone(), id.table.clone()), id.column.clone());
        }
        inv.columns.push(IntColumn {
            id,
            column_type: "bigint(20)".to_string(),
            int_type: IntType::new(Width::Big, false),
            auto_increment: flag.ends_with('+').then_some(1),
            sequence: None,
        });
    }
    inv
}

fn report(shard: &str, columns: &[&str], settings: &InferenceSettings) -> Report {
    Report {
        shards: vec![ShardInference {
            shard: shard.to_string(),
            inference: infer(&inventory(columns), settings, &[]),
        }],
        unreadable: Vec::new(),
    }
}

const GH: &[&str] = &[
    "gh.accounts.owner_id pk",
    "gh.profiles.owner_id pk",
    "gh.gists.owner_id",
    "gh.invoice.invoiceid pk+",
    "gh.invoice_totals.invoiceid pk",
    "gh.payments.invoiceid",
];

#[test]
fn the_text_lists_each_guess_with_its_evidence_and_runners_up_then_the_pins() {
    let text = text(&report("gh", GH, &InferenceSettings::default()));
    let expected = "\
SHARD gh: 2 inferred, 1 ambiguous

  gh.invoice_totals.invoiceid
    parent       gh.invoice.invoiceid
    evidence     shared primary key, name equals the primary key of invoice

  gh.payments.invoiceid
    parent       gh.invoice.invoiceid
    evidence     name equals the primary key of invoice
    passed over  gh.invoice_totals.invoiceid (name equals the primary key of invoice_totals): not named after the key's stem

  AMBIGUOUS gh.gists.owner_id
    candidate    gh.accounts.owner_id
    candidate    gh.profiles.owner_id

# [[inference.rules]] that pin the ambiguous columns, to paste into the configuration:
# each pins every column of its name, on every shard, to the parent written; keep
# the parent you choose (the others are commented out below it).

# gh: gh.gists.owner_id
[[inference.rules]]
column = \"owner_id\"
parent = \"gh.accounts.owner_id\"
# parent = \"gh.profiles.owner_id\"
";
    assert_eq!(text, expected);
}

#[test]
fn the_pins_are_read_back_by_the_configuration_and_settle_the_column() {
    let first = report("gh", GH, &InferenceSettings::default());
    let pins = pins(&first);
    let settings = crate::config::testing::read(&format!("[inference]\n{pins}"))
        .expect("the pins are a valid configuration");
    assert_eq!(settings.inference.rules.len(), 1);
    let again = infer(&inventory(GH), &settings.inference, &[]);
    assert!(again.ambiguous.is_empty(), "{:?}", again.ambiguous);
    let gist = &again.parents[&ColumnId::new("gh", "gists", "owner_id")];
    assert_eq!(gist.parent, ColumnId::new("gh", "accounts", "owner_id"));
    assert_eq!(gist.evidence, "rule 0: owner_id");
}

#[test]
fn the_json_holds_guesses_runners_up_ambiguous_columns_and_the_pins() {
    let mut r = report("gh", GH, &InferenceSettings::default());
    r.unreadable
        .push(("down".to_string(), "connection refused".to_string()));
    let doc: serde_json::Value = serde_json::from_str(&json(&r)).expect("json");
    let shard = &doc["shards"][0];
    assert_eq!(shard["shard"], "gh");
    assert_eq!(shard["inferred"][1]["column"], "gh.payments.invoiceid");
    assert_eq!(shard["inferred"][1]["parent"], "gh.invoice.invoiceid");
    assert_eq!(
        shard["inferred"][1]["runners_up"],
        serde_json::json!([{
            "parent": "gh.invoice_totals.invoiceid",
            "evidence": "name equals the primary key of invoice_totals",
            "passed_over": "not named after the key's stem",
        }])
    );
    assert_eq!(
        shard["ambiguous"],
        serde_json::json!([{
            "column": "gh.gists.owner_id",
            "candidates": ["gh.accounts.owner_id", "gh.profiles.owner_id"],
        }])
    );
    assert_eq!(doc["rules"], serde_json::Value::String(pins(&r)));
    assert_eq!(
        doc["unreadable"],
        serde_json::json!([{"shard": "down", "error": "connection refused"}])
    );
}

#[test]
fn hostile_names_are_escaped_in_the_text_and_quoted_in_the_pins() {
    let columns = &[
        "s.a.we\"ird\\\u{1b}[2J_id pk",
        "s.b.we\"ird\\\u{1b}[2J_id pk",
        "s.x.we\"ird\\\u{1b}[2J_id",
        "s.c.{table}_id pk",
        "s.d.{table}_id pk",
        "s.y.{table}_id",
    ];
    let r = report("s\nforged", columns, &InferenceSettings::default());
    let text = text(&r);
    assert!(!text.contains('\u{1b}'), "{text}");
    assert!(
        text.contains("SHARD s\\nforged: 0 inferred, 2 ambiguous"),
        "{text}"
    );
    assert!(
        text.contains("column = \"we\\\"ird\\\\\\u001B[2J_id\""),
        "{text}"
    );
    assert!(text.contains("# not expressible as a rule"), "{text}");
    // The pin of the quoted name is read back as that very name.
    let pins = pins(&r);
    let settings = crate::config::testing::read(&format!("[inference]\n{pins}"))
        .expect("the pins are a valid configuration");
    assert_eq!(settings.inference.rules.len(), 1);
    assert_eq!(settings.inference.rules[0].column, "we\"ird\\\u{1b}[2J_id");
}

#[test]
fn toml_strings_escape_quotes_backslashes_and_terminal_controls() {
    assert_eq!(toml_string("plain_id"), "\"plain_id\"");
    assert_eq!(toml_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
    assert_eq!(toml_string("a\nb\u{202e}"), "\"a\\u000Ab\\u202E\"");
    assert_eq!(toml_string("é"), "\"é\"");
}

#[test]
fn no_ambiguous_column_means_no_pins() {
    let r = report(
        "s",
        &["s.users.id pk+", "s.orders.user_id"],
        &InferenceSettings::default(),
    );
    assert_eq!(pins(&r), "");
    assert!(text(&r).ends_with("\n\n"), "{}", text(&r));
}
