//! What guessing undeclared references costs a poll: [`headroom::inference::infer`] over a
//! synthetic shard whose every table has a single-column key and whose columns name them the
//! Rails way, by key name, with role prefixes or suffixes, or not at all (counters, flags),
//! beside one-to-one extension tables that share their keys. Prints its
//! figures; asserts only what was found, never a time.
//!
//! `cargo bench --bench inference` runs it at full size (20,000 tables, 180,000 integer
//! columns); under `cargo test` it runs once at a small size as a smoke test.

use headroom::headroom::{IntType, Width};
use headroom::inference::{self, Settings, Template};
use headroom::inventory::{ColumnId, IntColumn, Inventory};

fn int(id: ColumnId, auto: bool) -> IntColumn {
    IntColumn {
        id,
        column_type: "bigint(20)".into(),
        int_type: IntType::new(Width::Big, false),
        auto_increment: auto.then_some(1),
        sequence: None,
    }
}

/// `tables` tables `e000000s` (key `id`), each with a Rails reference to the previous
/// table, a role-prefixed one, a key-name one (`e000000_key` of the table `k000000`), a
/// role-suffixed one (`e000000_id_from`), a counter and a flag, and an extension table
/// `e000000_extras` whose key is `e000000_id`.
fn inventory(tables: usize) -> Inventory {
    let mut inv = Inventory::default();
    for t in 0..tables {
        let table = format!("e{t:06}s");
        let id = |c: &str| ColumnId::new("app", &table, c);
        inv.columns.push(int(id("id"), true));
        inv.primary_keys
            .insert(("app".into(), table.clone()), "id".into());
        let keyed = format!("k{t:06}");
        inv.columns.push(int(
            ColumnId::new("app", &keyed, &format!("e{t:06}_key_id")),
            false,
        ));
        inv.primary_keys
            .insert(("app".into(), keyed), format!("e{t:06}_key_id"));
        // A one-to-one extension table sharing the key: a shared primary key.
        let extension = format!("e{t:06}_extras");
        inv.columns.push(int(
            ColumnId::new("app", &extension, &format!("e{t:06}_id")),
            false,
        ));
        inv.primary_keys
            .insert(("app".into(), extension), format!("e{t:06}_id"));
        let previous = t.saturating_sub(1);
        for c in [
            format!("e{previous:06}_id"),
            format!("author_e{previous:06}_id"),
            format!("e{previous:06}_key_id"),
            format!("e{previous:06}_id_from"),
            "view_count".to_string(),
            "is_active".to_string(),
        ] {
            inv.columns.push(int(id(&c), false));
        }
    }
    inv
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes: &[usize] = if full {
        &[1_000, 4_000, 20_000]
    } else {
        &[200]
    };
    let with_rule = Settings {
        enabled: true,
        rules: vec![Template::new("{prefix}_{table}", "{table}.{table}_id").expect("template")],
    };
    for &tables in sizes {
        let inv = inventory(tables);
        for (name, settings) in [
            ("built-in rules", Settings::default()),
            ("+1 template", with_rule.clone()),
        ] {
            let mut took = Vec::new();
            let mut found = inference::Inference::default();
            for _ in 0..5 {
                let started = std::time::Instant::now();
                found = inference::infer(&inv, &settings, &[]);
                took.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            took.sort_by(f64::total_cmp);
            println!(
                "infer {tables} tables, {} integer columns, {name}: median {:.1} ms; {} inferred, {} ambiguous",
                inv.columns.len(),
                took[took.len() / 2],
                found.parents.len(),
                found.ambiguous.len()
            );
            // Four references per table (the first table's point at itself) and its
            // extension table.
            assert_eq!(found.parents.len(), 5 * tables, "{name}");
            assert!(found.ambiguous.is_empty());
        }
    }
}
