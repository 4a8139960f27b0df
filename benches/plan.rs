//! Scale figures for `headroom plan`'s pure step: a synthetic fleet of 256 shards, each
//! with 400 ID columns: a critical INT key with 20 foreign-key children per 21 tables, and
//! 100 INT columns that store IDs from a BIGINT UNSIGNED ticket source (all mismatched, so
//! one group spans every shard). `plan::select` groups them and picks the targets; prints
//! the time, the entries and the changes written. Asserts nothing about time.
//!
//! `cargo bench --bench plan` runs it at full size; under `cargo test` it runs once small.

use std::time::{Duration, Instant};

use chrono::Utc;
use headroom::headroom::{IntType, Width};
use headroom::inventory::ColumnId;
use headroom::measure::{ColumnReport, Kind, fixture};
use headroom::plan;
use headroom::state::Store;

fn column(
    settings: &headroom::config::Settings,
    shard: &str,
    id: ColumnId,
    kind: Kind,
    source: Option<String>,
    current: i128,
    mismatch: bool,
) -> ColumnReport {
    let t = IntType::new(Width::Int, false);
    fixture::column(shard, id, t, current)
        .kind(kind)
        .source(source.as_deref())
        .type_mismatch(mismatch)
        .limits(settings.policy.default)
        .build()
}

fn shard_columns(settings: &headroom::config::Settings, shard: &str) -> Vec<ColumnReport> {
    let mut out = Vec::new();
    for k in 0..14 {
        let parent = ColumnId::new("app", &format!("key{k:02}"), "id");
        out.push(column(
            settings,
            shard,
            parent.clone(),
            Kind::AutoIncrement,
            None,
            2_100_000_000,
            false,
        ));
        for c in 0..20 {
            let child = ColumnId::new("app", &format!("child{k:02}_{c:02}"), "key_id");
            out.push(column(
                settings,
                shard,
                child,
                Kind::ForeignKey,
                Some(parent.to_string()),
                2_100_000_000,
                false,
            ));
        }
    }
    for r in 0..100 {
        let id = ColumnId::new("app", &format!("ref{r:03}"), "treasury_id");
        out.push(column(
            settings,
            shard,
            id,
            Kind::Reference,
            Some("tickets64".to_string()),
            1_000,
            true,
        ));
    }
    out
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let shards = if full { 256 } else { 4 };
    let toml = format!(
        "[[shards]]\nname = \"shard-{{1..{shards}}}\"\nurl = \"mysql://u@db-{{1..{shards}}}:3306/\"\n\
         [[sources]]\nname = \"tickets64\"\nkind = \"ticket_server\"\nservers = [\"mysql://u@t:3306/tickets\"]\ntable = \"Tickets64\"\n"
    );
    let settings = headroom::config::from_toml_str(&toml, &|_| None).expect("settings");
    let store = Store::new(&settings);
    let mut total = 0;
    for s in &settings.shards {
        let columns = shard_columns(&settings, &s.name);
        total += columns.len();
        store.shard_succeeded(
            &s.name,
            columns,
            Vec::new(),
            Duration::from_millis(1),
            Utc::now(),
        );
    }
    let mut snapshot = store.read().clone();
    if let Some(source) = snapshot.sources.first_mut() {
        source.max = Some(u64::MAX);
    }
    let started = Instant::now();
    let entries = plan::select(&snapshot, None);
    let took = started.elapsed();
    let groups = entries
        .iter()
        .map(|e| e.group)
        .collect::<std::collections::HashSet<_>>()
        .len();
    let written: usize = plan::to_read(&entries).len();
    println!(
        "plan: {shards} shards, {total} columns: {} entries in {groups} groups, {written} changes written, select {:.1} ms",
        entries.len(),
        took.as_secs_f64() * 1000.0
    );
}
