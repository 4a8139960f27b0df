//! Scale figures for the pure path of one poll and for the API: a synthetic shard fleet of
//! many tables, planned, resolved, published to the state and the metrics, then rendered on
//! /metrics and /api/columns. Prints its figures; asserts nothing about time.
//!
//! `cargo bench --bench scale` runs it at full size (100,000 columns); under `cargo test`
//! it runs once at a small size as a smoke test.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use chrono::Utc;
use headroom::api::{ColumnQuery, select_columns};
use headroom::config;
use headroom::growth::{Forecast, Tracker};
use headroom::headroom::{IntType, Width};
use headroom::inventory::{ColumnId, ForeignKey, IntColumn, Inventory};
use headroom::measure::{self, ColumnReport, SourceValue};
use headroom::metrics::Metrics;
use headroom::pager::Pager;
use headroom::state::Store;

/// Resident memory in bytes, from /proc (Linux); 0 elsewhere.
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

fn timed<T>(label: &str, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = f();
    let took: Duration = started.elapsed();
    println!("{label:<44} {:>10.2} ms", took.as_secs_f64() * 1000.0);
    out
}

/// `tables` tables, each with an INT auto-increment, two reference columns (one indexed),
/// a foreign key to the previous table, and a plain counter.
fn inventory(tables: usize) -> Inventory {
    let mut inv = Inventory::default();
    for t in 0..tables {
        let table = format!("t{t:06}");
        let id = |c: &str| ColumnId::new("etsy", &table, c);
        let int = |unsigned| IntType::new(Width::Int, unsigned);
        inv.columns.push(IntColumn {
            id: id("id"),
            column_type: "int(11)".into(),
            int_type: int(false),
            auto_increment: Some(1_000_000 + t as i128),
        });
        for c in ["user_id", "shop_id"] {
            inv.columns.push(IntColumn {
                id: id(c),
                column_type: "int(10) unsigned".into(),
                int_type: int(true),
                auto_increment: None,
            });
        }
        inv.columns.push(IntColumn {
            id: id("parent"),
            column_type: "int(11)".into(),
            int_type: int(false),
            auto_increment: None,
        });
        inv.columns.push(IntColumn {
            id: id("quantity"),
            column_type: "int(11)".into(),
            int_type: int(false),
            auto_increment: None,
        });
        inv.leading.insert(id("id"));
        inv.leading.insert(id("user_id"));
        inv.leading.insert(id("parent"));
        if t > 0 {
            inv.foreign_keys.push(ForeignKey {
                child: id("parent"),
                parent: ColumnId::new("etsy", &format!("t{:06}", t - 1), "id"),
            });
        }
    }
    inv
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let tables = if full { 6_250 } else { 200 };
    let shards = 4;
    println!("headroom scale: {shards} shards x {tables} tables x 5 integer columns");

    let mut toml: String = (0..shards)
        .map(|s| format!("[[shards]]\nname = \"shard-{s:02}\"\nurl = \"mysql://m@db{s}\"\n"))
        .collect();
    toml.push_str(
        "[[sources]]\nname = \"tickets64\"\nkind = \"ticket_server\"\nservers = [\"mysql://m@t/tickets\"]\ntable = \"Tickets64\"\n\
         [[references]]\nsource = \"tickets64\"\ncolumns = [\"etsy.*.*_id\"]\n",
    );
    let state_dir = tempfile::tempdir().expect("tempdir");
    toml.push_str(&format!(
        "[webhook]\nurl = \"http://127.0.0.1:9/hook\"\nmin_severity = \"warning\"\n[state]\npath = \"{}\"\n",
        state_dir.path().join("state.json").display()
    ));
    let settings = config::from_toml_str(&toml, &|_| None).expect("bench settings");
    let store = Store::new(&settings);
    let metrics = Metrics::new();
    let sources = HashMap::from([(
        "tickets64".to_string(),
        SourceValue {
            current: 3_000_000_000,
            max: u64::MAX,
        },
    )]);

    let inv = inventory(tables);
    let rss_before = rss();
    let plan = timed("plan (one shard)", || {
        measure::plan(&inv, &settings.references)
    });
    let dives: HashMap<ColumnId, Option<i128>> =
        plan.dives.iter().map(|d| (d.clone(), Some(42))).collect();
    let (measured, unresolved) = timed("resolve (one shard)", || {
        measure::resolve(&plan, &dives, &sources)
    });
    assert!(unresolved.is_empty());
    let per_shard = measured.len();
    let at = Utc::now();
    let mut tracker: Tracker<ColumnId> = Tracker::default();
    let rss_before_growth = rss();
    let mut forecasts = HashMap::new();
    for round in 0..20 {
        let values = measured
            .iter()
            .map(|m| (m.id.clone(), m.headroom.current + round, m.headroom.max));
        let label = format!("growth round {round:>2} (one shard)");
        forecasts = if round == 0 || round == 19 {
            timed(&label, || tracker.round(Instant::now(), values))
        } else {
            tracker.round(Instant::now(), values)
        };
    }
    println!(
        "{:<44} {:>10.0} B",
        "resident memory per column (20 samples)",
        rss().saturating_sub(rss_before_growth) as f64 / per_shard.max(1) as f64
    );
    for s in 0..shards {
        let name = format!("shard-{s:02}");
        let reports: Vec<ColumnReport> = measured
            .iter()
            .cloned()
            .map(|m| {
                let forecast = forecasts.get(&m.id).copied().unwrap_or(Forecast::NONE);
                let limits = settings.policy.default;
                ColumnReport::new(&name, m, forecast, limits, None, at)
            })
            .collect();
        store.shard_succeeded(&name, reports, Vec::new(), Duration::from_millis(5), at);
    }
    let rss_after = rss();
    let total = per_shard * shards;
    println!("{:<44} {:>10}", "measured columns (all shards)", total);
    println!(
        "{:<44} {:>10.0} B",
        "resident memory per column (state + plan)",
        rss_after.saturating_sub(rss_before) as f64 / total.max(1) as f64
    );
    timed("publish metrics (all shards)", || {
        for s in store.read().shards.iter() {
            metrics.publish_shard(s, false);
        }
    });
    let text = timed("render /metrics", || metrics.render(&store.read()));
    let metrics = std::sync::Arc::new(metrics);
    let pager = Pager::new(&settings, std::sync::Arc::clone(&metrics)).expect("a notifier");
    timed("pager evaluation (opens every warning)", || {
        pager.evaluate(&store.read(), Utc::now())
    });
    println!(
        "{:<44} {:>10}",
        "events queued",
        pager.outbox_len("webhook")
    );
    timed("pager evaluation (steady state)", || {
        pager.evaluate(&store.read(), Utc::now())
    });
    println!(
        "{:<44} {:>10.1} MB",
        "/metrics size",
        text.len() as f64 / 1e6
    );
    let (top, _) = timed("/api/columns?limit=50 (sort by ratio)", || {
        let q = ColumnQuery {
            limit: Some(50),
            ..ColumnQuery::default()
        };
        select_columns(&store.read(), &q)
    });
    assert_eq!(top.len(), 50);
    let (all, _) = timed("/api/columns (all, sorted)", || {
        select_columns(&store.read(), &ColumnQuery::default())
    });
    let json = timed("/api/columns JSON encoding (all)", || {
        serde_json::to_string(&all).expect("json")
    });
    println!(
        "{:<44} {:>10.1} MB",
        "/api/columns size (all)",
        json.len() as f64 / 1e6
    );
    let kinds: HashSet<_> = all.iter().map(|c| c.kind).collect();
    assert_eq!(kinds.len(), 3);
}
