//! Scale figures for the pure path of one poll and for the API: a synthetic shard fleet of
//! many tables, planned, resolved, published to the state and the metrics, then rendered on
//! /metrics and /api/columns. Prints its figures; asserts nothing about time.
//!
//! `cargo bench --bench scale` runs it at full size (100,000 columns); under `cargo test`
//! it runs once at a small size as a smoke test. `cargo bench --bench scale -- pages` builds
//! the fleet and serves its pages only: `/`, and column pages with their plans.
//!
//! It opens with the fleet figures of issue 9: every column with a full week of growth
//! history, the bytes the daemon holds per column (counted by a global allocator that
//! tracks live bytes) and the CPU of one steady-state poll per column.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use chrono::Utc;
use headroom::config;
use headroom::growth::Tracker;
use headroom::headroom::{IntType, Width};
use headroom::inventory::{Catalog, ColumnId, ForeignKey, IntColumn, Inventory};
use headroom::measure::{self, ColumnReport, SourceValue};
use headroom::metrics::Metrics;
use headroom::pager::Pager;
use headroom::pager::event::{self, Event};
use headroom::pager::state_file::{self, FileState, Journal, NotifierFile, Taken};
use headroom::select::{ColumnQuery, select_columns};
use headroom::state::Store;

/// The system allocator, counting the bytes live.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; only a counter is kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes allocated and not yet freed.
fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// The CPU time of the whole process so far (every thread), in nanoseconds.
fn cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a pointer to a timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "process CPU clock");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

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
            sequence: None,
        });
        for c in ["user_id", "shop_id"] {
            inv.columns.push(IntColumn {
                id: id(c),
                column_type: "int(10) unsigned".into(),
                int_type: int(true),
                auto_increment: None,
                sequence: None,
            });
        }
        inv.columns.push(IntColumn {
            id: id("parent"),
            column_type: "int(11)".into(),
            int_type: int(false),
            auto_increment: None,
            sequence: None,
        });
        inv.columns.push(IntColumn {
            id: id("quantity"),
            column_type: "int(11)".into(),
            int_type: int(false),
            auto_increment: None,
            sequence: None,
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

/// The median of `runs` timings of `f`, in milliseconds.
fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut took: Vec<f64> = (0..runs)
        .map(|_| {
            let started = std::time::Instant::now();
            f();
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    took.sort_by(f64::total_cmp);
    took[took.len() / 2]
}

/// What persisting one delivery costs with 10,000 events queued: the whole snapshot
/// rewritten (what every delivery did before the journal; still what an evaluation that
/// changes the books does), against one journal line. On the target directory's file
/// system, not /tmp (often tmpfs, where fsync is free).
fn state_file_costs(store: &Store, runs: usize) {
    const QUEUED: usize = 10_000;
    let snap = store.read();
    let columns: Vec<(&ColumnReport, &headroom::state::ShardState)> = snap
        .shards
        .iter()
        .flat_map(|s| s.columns.iter().map(move |c| (c, s)))
        .collect();
    let now = Utc::now();
    let outbox: std::collections::VecDeque<Event> = (0..QUEUED)
        .map(|i| {
            let (column, shard) = columns[i % columns.len()];
            (event::column(column, shard, "http://headroom").build)(now)
        })
        .collect();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let path = dir.path().join("state.json");
    let mut state = FileState::default();
    state.notifiers.insert(
        "pagerduty".into(),
        NotifierFile {
            incidents: Default::default(),
            outbox: outbox.clone(),
        },
    );
    state_file::save(&path, &state).expect("snapshot");
    println!(
        "{:<44} {:>10.1} MB",
        "state file with 10,000 queued events",
        std::fs::metadata(&path).map_or(0, |m| m.len()) as f64 / 1e6
    );
    let rewrite = median_ms(runs, || {
        state.seq += 1;
        state_file::save(&path, &state).expect("snapshot");
    });
    println!(
        "{:<44} {:>10.2} ms",
        "one delivery, before: whole file rewritten", rewrite
    );
    let mut journal = Journal::new(&path);
    let mut seq = state.seq;
    let mut next = outbox.iter().cycle();
    let append = median_ms(runs.max(10) * 5, || {
        seq += 1;
        let event = next.next().expect("an event");
        journal
            .append(&Taken::new(seq, "pagerduty", event))
            .expect("journal");
    });
    println!(
        "{:<44} {:>10.2} ms",
        "one delivery, after: one journal line", append
    );
    println!(
        "{:<44} {:>10.0} x",
        "delivery persistence, before / after",
        rewrite / append.max(1e-6)
    );
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    // `cargo bench --bench scale -- pages`: the fleet below and its pages only.
    let only_pages = std::env::args().any(|a| a == "pages");
    if !only_pages {
        fleet_figures(full);
    }
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
    let catalog = Catalog::single(inv.clone(), None, true);
    let prepared = timed("prepare: inference and plan (one shard)", || {
        measure::prepare(&catalog, &settings)
    });
    let plan = &prepared.plan;
    let dives: HashMap<ColumnId, Option<i128>> =
        plan.dives.iter().map(|d| (d.clone(), Some(42))).collect();
    let (measured, unresolved) = timed("resolve (one shard)", || {
        measure::resolve(plan, &dives, &sources)
    });
    assert!(unresolved.is_empty());
    let per_shard = measured.len();
    // The poller's own step, round after round: resolve, growth histories, policy.
    let mut tracker: Tracker<ColumnId> = Tracker::default();
    let rss_before_growth = rss();
    let mut reports = Vec::new();
    for round in 0..20i128 {
        let sources: HashMap<String, SourceValue> = sources
            .iter()
            .map(|(k, v)| {
                let mut v = *v;
                v.current += round * 1_000;
                (k.clone(), v)
            })
            .collect();
        let at = measure::Moment {
            instant: Instant::now(),
            wall: Utc::now(),
        };
        let dives = read_now(&dives, at);
        let mut step = || {
            measure::report(
                "shard-00",
                &prepared,
                &dives,
                &sources,
                &mut tracker,
                &settings.policy,
                at,
            )
        };
        let label = format!("report round {round:>2} (one shard)");
        reports = if round == 0 || round == 19 {
            timed(&label, step)
        } else {
            step()
        }
        .columns;
    }
    println!(
        "{:<44} {:>10.0} B",
        "resident memory per column (20 samples)",
        rss().saturating_sub(rss_before_growth) as f64 / per_shard.max(1) as f64
    );
    let at = Utc::now();
    for s in 0..shards {
        let name = format!("shard-{s:02}");
        let shard: std::sync::Arc<str> = name.as_str().into();
        let reports: Vec<ColumnReport> = reports
            .iter()
            .cloned()
            .map(|mut r| {
                r.shard = std::sync::Arc::clone(&shard);
                r
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
    let text = timed("render /metrics", || metrics.render(&store.read()));
    let metrics = std::sync::Arc::new(metrics);
    let pager = Pager::new(&settings, std::sync::Arc::clone(&metrics))
        .expect("the pager starts")
        .expect("a notifier");
    timed("pager evaluation (opens every warning)", || {
        pager.evaluate(&store.read(), Utc::now())
    });
    println!(
        "{:<44} {:>10}",
        "events queued",
        pager.outbox_len("webhook")
    );
    timed("pager evaluation, no shard polled since", || {
        pager.evaluate(&store.read(), Utc::now())
    });
    // What the daemon does after each shard's poll: that shard's columns are looked at
    // again, the others' incidents held as they are.
    let first = store.read().shards[0].clone();
    store.shard_succeeded(
        &first.name,
        first.columns.to_vec(),
        Vec::new(),
        Duration::from_millis(5),
        Utc::now(),
    );
    timed("pager evaluation after one shard's poll", || {
        pager.evaluate(&store.read(), Utc::now())
    });
    if only_pages {
        pages_at_scale(&settings, &store, pager);
        return;
    }
    state_file_costs(&store, if full { 20 } else { 3 });
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
    drop(all);
    drop(json);

    metrics_figures(&settings, &store, &text, total, full);
    pages_at_scale(&settings, &store, pager);
    api_at_scale(&reports, if full { 40 } else { 2 });
}

/// The pages over the fleet above, and over it calmed (one column in 200 at risk), each with
/// one key made critical (`etsy.t000001.id` on every shard: its group is itself on every
/// shard and the `parent` columns that refer to it, 8 columns): `/` (the header over every
/// column, the 100 at risk that run out first), its every-column view, and three column
/// pages with a week of history, each served through the router as a request is: their
/// time (median of 5) and weight, as sent and gzipped. The columns: a key not at risk (its
/// plan reads nothing), the critical key, and a column that stores IDs from the ticket
/// source (at risk in the first fleet, in a group of every such column, 50,000). A page's
/// first view computes its plan (a fresh cache each time); later views find it kept when it
/// could be computed. The shards' URLs are a loopback port nothing listens on: a plan that
/// reads a shard is refused at once. Beside them, each column's plan computed alone (its
/// group, as the plan cache does) and the whole plan of every group (what it cost before).
fn pages_at_scale(settings: &config::Settings, store: &Store, pager: Pager) {
    let mut settings = settings.clone();
    for shard in &mut settings.shards {
        shard.endpoint.url = "mysql://m@127.0.0.1:1/".parse().expect("a URL");
    }
    pages_of(
        "every reference at risk",
        &settings,
        &key_at_risk(&settings, store),
        Some(pager),
    );
    pages_of(
        "0.5 % at risk",
        &settings,
        &key_at_risk(&settings, &calm_fleet(&settings, store)),
        None,
    );
}

/// A copy of `store` with `etsy.t000001.id` critical on every shard.
fn key_at_risk(settings: &config::Settings, store: &Store) -> Store {
    let copy = Store::new(settings);
    for shard in store.read().shards.iter() {
        let columns: Vec<ColumnReport> = shard
            .columns
            .iter()
            .cloned()
            .map(|mut c| {
                if c.id.table == "t000001" && c.id.column == "id" {
                    c.status = headroom::headroom::Status::Critical;
                }
                c
            })
            .collect();
        copy.shard_succeeded(
            &shard.name,
            columns,
            Vec::new(),
            Duration::from_millis(5),
            Utc::now(),
        );
    }
    copy
}

fn pages_of(fleet: &str, settings: &config::Settings, store: &Store, pager: Option<Pager>) {
    use axum::body::Body;
    use axum::http::{Request, header};
    use headroom::api::plan_cache::Plans;
    use tower::ServiceExt as _;
    println!("pages, {fleet}:");
    {
        let snapshot = store.read();
        let columns = || snapshot.shards.iter().flat_map(|s| s.columns.iter());
        let at_risk = columns().filter(|c| headroom::select::at_risk(c)).count();
        println!(
            "  {:<42} {:>10}",
            "columns at risk",
            format!("{at_risk} of {}", columns().count())
        );
    }
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let pager = pager.map(std::sync::Arc::new);
    let router = |plans: &std::sync::Arc<Plans>| {
        headroom::api::router(headroom::api::AppState {
            store: store.clone(),
            metrics: std::sync::Arc::new(Metrics::new()),
            pager: pager.clone(),
            reload: None,
            settings: std::sync::Arc::new(std::sync::RwLock::new(std::sync::Arc::new(
                settings.clone(),
            ))),
            plans: std::sync::Arc::clone(plans),
        })
    };
    // Waits for the plan of `column` in `plans` to be computed (or to fail).
    let computed = |plans: &Plans, column: &ColumnReport| {
        let settings = std::sync::Arc::new(settings.clone());
        runtime
            .block_on(plans.get(store, settings, &column.shard, &column.id))
            .is_ok()
    };
    // The columns shown, each with a week of history: the first of the first shard (its
    // key, not at risk: its plan reads no shard), and the first that stores IDs from the
    // ticket source (at risk in the first fleet, with every other such column: its plan
    // reads the shards, which refuse).
    let (key, critical, reference) = {
        let snapshot = store.read();
        let columns = &snapshot.shards[0].columns;
        let find = |table: &str, column: &str| {
            columns
                .iter()
                .find(|c| c.id.table == table && c.id.column == column)
                .expect("a column of the bench fleet")
                .clone()
        };
        (
            find("t000000", "id"),
            find("t000001", "id"),
            find("t000000", "user_id"),
        )
    };
    let mut tracker: Tracker<ColumnId> = Tracker::default();
    // Saved as of Unix time 0 (see `weeks_of_history`): restored as of the same.
    let saved = weeks_of_history(3);
    tracker.restore(
        [key.id.clone(), critical.id.clone(), reference.id.clone()]
            .into_iter()
            .zip(saved),
        Instant::now(),
        0,
    );
    store
        .histories()
        .lock()
        .expect("histories")
        .insert(key.shard.to_string(), tracker);
    let get = |router: &axum::Router, uri: &str, gzip: bool| {
        let mut request = Request::get(uri);
        if gzip {
            request = request.header(header::ACCEPT_ENCODING, "gzip");
        }
        let request = request.body(Body::empty()).expect("a request");
        runtime.block_on(async {
            let response = router.clone().oneshot(request).await.expect("infallible");
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("the body");
            assert_eq!(status, 200, "{uri}: {}", String::from_utf8_lossy(&body));
            String::from_utf8_lossy(&body).into_owned()
        })
    };
    let weigh = |router: &axum::Router, label: &str, uri: &str| {
        let mut size = 0;
        let took = median_ms(5, || size = get(router, uri, false).len());
        let gzipped = get(router, uri, true).len();
        println!("  {label:<42} {took:>10.2} ms");
        println!(
            "  {:<42} {:>10.1} KB",
            "  weight as sent",
            size as f64 / 1024.0
        );
        println!(
            "  {:<42} {:>10.1} KB",
            "  weight gzipped",
            gzipped as f64 / 1024.0
        );
    };
    let plans = std::sync::Arc::new(Plans::new());
    let kept = router(&plans);
    weigh(&kept, "/", "/");
    weigh(
        &kept,
        "/?status=ok,warning,critical,exhausted",
        "/?status=ok,warning,critical,exhausted",
    );

    let (whole, cpu) = {
        let snapshot = store.read();
        let before = cpu_ns();
        let whole = median_ms(3, || {
            headroom::plan::select(&snapshot, None);
        });
        (whole, (cpu_ns() - before) as f64 / 3.0 / 1e6)
    };
    println!("  {:<42} {whole:>10.2} ms", "the whole plan (every group)");
    println!("  {:<42} {cpu:>10.2} ms", "  CPU");
    for (label, column) in [
        ("a key", &key),
        ("a critical key", &critical),
        ("a reference", &reference),
    ] {
        println!("  column page of {label}, {}:", column.name());
        // Its plan alone: its group, as the plan cache computes it; its time, and the
        // process's CPU time (less sensitive to a busy machine), each per plan.
        let (alone, cpu, widens) = {
            let snapshot = store.read();
            let mut widens = 0;
            let alone = median_ms(5, || {
                let (_, entry) =
                    headroom::plan::find(&snapshot, &column.shard, &column.id).expect("known");
                widens = entry.map_or(0, |e| e.widenings.len());
            });
            let before = cpu_ns();
            for _ in 0..10 {
                headroom::plan::find(&snapshot, &column.shard, &column.id).expect("known");
            }
            let cpu = (cpu_ns() - before) as f64 / 10.0 / 1e6;
            (alone, cpu, widens)
        };
        println!("  {:<42} {alone:>10.2} ms", "  its plan alone (its group)");
        println!("  {:<42} {cpu:>10.2} ms", "    CPU");
        println!("  {:<42} {widens:>10}", "    columns it widens");
        // A first view computes the plan: a fresh cache for each, and the computation
        // waited for before the next (not counted).
        let page = column.page_url();
        let mut shown = String::new();
        let mut took: Vec<f64> = (0..5)
            .map(|_| {
                let fresh = std::sync::Arc::new(Plans::new());
                let started = std::time::Instant::now();
                shown = get(&router(&fresh), &page, false);
                let took = started.elapsed().as_secs_f64() * 1000.0;
                computed(&fresh, column);
                took
            })
            .collect();
        took.sort_by(f64::total_cmp);
        println!(
            "  {:<42} {:>10.2} ms ({})",
            "  first view",
            took[2],
            outcome(&shown)
        );
        let kept_plan = computed(&plans, column);
        let later = median_ms(5, || shown = get(&kept, &page, false));
        println!(
            "  {:<42} {later:>10.2} ms ({})",
            if kept_plan {
                "  later views (plan kept)"
            } else {
                "  later views (plan failed: not kept)"
            },
            outcome(&shown)
        );
        println!(
            "  {:<42} {:>10.1} KB",
            "    weight as sent",
            shown.len() as f64 / 1024.0
        );
        println!(
            "  {:<42} {:>10.1} KB",
            "    weight gzipped",
            get(&kept, &page, true).len() as f64 / 1024.0
        );
    }
}

/// What a column page showed of its plan.
fn outcome(page: &str) -> &'static str {
    if page.contains("No widening needed") {
        "plan shown: nothing to widen"
    } else if page.contains("Widen to ") {
        "plan shown"
    } else if page.contains("No plan now") {
        "its shards refused: no plan, asked again at each view"
    } else if page.contains("being computed") {
        "plan still being computed"
    } else {
        "no plan section"
    }
}

/// The fleet of `store` calmed: the same columns, all ok but one in 200 (warning).
fn calm_fleet(settings: &config::Settings, store: &Store) -> Store {
    let calm = Store::new(settings);
    let at = Utc::now();
    let mut n = 0usize;
    for shard in store.read().shards.iter() {
        let columns: Vec<ColumnReport> = shard
            .columns
            .iter()
            .cloned()
            .map(|mut c| {
                n += 1;
                let risky = n.is_multiple_of(200);
                c.status = if risky {
                    headroom::headroom::Status::Warning
                } else {
                    headroom::headroom::Status::Ok
                };
                c.time_status = headroom::headroom::Status::Ok;
                c.type_mismatch = false;
                c
            })
            .collect();
        calm.shard_succeeded(
            &shard.name,
            columns,
            Vec::new(),
            Duration::from_millis(5),
            at,
        );
    }
    calm
}

/// What `/metrics` costs a Prometheus: the default (every column) as rendered above and
/// gzipped, and `at_risk` on a calm fleet where one column in 200 is at risk.
fn metrics_figures(
    settings: &config::Settings,
    store: &Store,
    text: &str,
    total: usize,
    full: bool,
) {
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).expect("gzip");
    let zipped = gz.finish().expect("gzip").len();
    println!(
        "{:<44} {:>10.1} MB",
        "/metrics size, gzipped (as Prometheus asks)",
        zipped as f64 / 1e6
    );
    println!(
        "{:<44} {:>10.0} B",
        "/metrics bytes per column (default)",
        text.len() as f64 / total.max(1) as f64
    );
    let mut families: Vec<(&str, usize)> = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("headroom_column_")) {
        let family = line.split('{').next().unwrap_or("");
        match families.last_mut() {
            Some((name, bytes)) if *name == family => *bytes += line.len() + 1,
            _ => families.push((family, line.len() + 1)),
        }
    }
    for (family, bytes) in families {
        println!(
            "  {:<42} {:>10.0} B",
            format!("{family} per column"),
            bytes as f64 / total.max(1) as f64
        );
    }
    if let Some(line) = text
        .lines()
        .find(|l| l.starts_with("headroom_column_current{"))
    {
        println!("  e.g. {line}");
    }
    let calm = calm_fleet(settings, store);
    let at_risk = Metrics::with_settings(config::MetricsSettings {
        columns: config::MetricColumns::AtRisk,
        ..config::MetricsSettings::default()
    });
    let runs = if full { 5 } else { 1 };
    let every = Metrics::new();
    let mut out = String::new();
    let took = median_ms(runs, || out = every.render(&calm.read()));
    println!(
        "{:<44} {:>10.2} ms",
        "render /metrics, default (0.5 % at risk)", took
    );
    println!(
        "{:<44} {:>10.1} MB",
        "/metrics size, default (0.5 % at risk)",
        out.len() as f64 / 1e6
    );
    let took = median_ms(runs, || out = at_risk.render(&calm.read()));
    println!(
        "{:<44} {:>10.2} ms",
        "render /metrics, at_risk (0.5 % at risk)", took
    );
    println!(
        "{:<44} {:>10.2} MB",
        "/metrics size, at_risk (0.5 % at risk)",
        out.len() as f64 / 1e6
    );
}

/// `/api/columns` over `shards` x the bench shard's columns (40 shards: 1 M columns): a
/// page of 100 by ratio, and the unlimited selection (references only, nothing cloned).
fn api_at_scale(reports: &[ColumnReport], shards: usize) {
    use headroom::select::select;
    let toml: String = (0..shards)
        .map(|s| format!("[[shards]]\nname = \"big-{s:02}\"\nurl = \"mysql://m@db{s}\"\n"))
        .collect();
    let big = config::from_toml_str(&toml, &|_| None).expect("bench settings");
    let store = Store::new(&big);
    let at = Utc::now();
    let mut n: i128 = 0;
    for s in 0..shards {
        let name = format!("big-{s:02}");
        let shard: std::sync::Arc<str> = name.as_str().into();
        let columns: Vec<ColumnReport> = reports
            .iter()
            .cloned()
            .map(|mut r| {
                n += 1;
                r.shard = std::sync::Arc::clone(&shard);
                // Spread the ratios so that the order is not the input's.
                r.current = (n * 7_919) % i128::from(r.max.min(2_000_000_000));
                r
            })
            .collect();
        store.shard_succeeded(&name, columns, Vec::new(), Duration::from_millis(5), at);
    }
    let total: usize = store.read().shards.iter().map(|s| s.columns.len()).sum();
    println!("{:<44} {:>10}", "/api/columns fleet (columns)", total);
    let page = ColumnQuery {
        limit: Some(100),
        ..ColumnQuery::default()
    };
    let mut got = 0;
    let took = median_ms(5, || got = select_columns(&store.read(), &page).0.len());
    assert_eq!(got, 100.min(total));
    println!(
        "{:<44} {:>10.2} ms",
        "/api/columns?limit=100 (sort by ratio)", took
    );
    let deep = ColumnQuery {
        limit: Some(100),
        offset: total / 2,
        ..ColumnQuery::default()
    };
    let took = median_ms(3, || got = select_columns(&store.read(), &deep).0.len());
    println!(
        "{:<44} {:>10.2} ms",
        "/api/columns?limit=100&offset=total/2", took
    );
    let took = median_ms(3, || {
        got = select(&store.read(), &ColumnQuery::default()).0.len()
    });
    assert_eq!(got, total);
    println!(
        "{:<44} {:>10.2} ms",
        "/api/columns unlimited: order (no clone)", took
    );
}

/// A poll interval of the default (a minute), in the fleet figures.
const INTERVAL: Duration = Duration::from_secs(60);

/// The settings of a fleet of `shards` shards, one ticket server, a webhook notifier.
fn fleet_settings(shards: usize, state_dir: &std::path::Path) -> config::Settings {
    let mut toml: String = (0..shards)
        .map(|s| format!("[[shards]]\nname = \"shard-{s:03}\"\nurl = \"mysql://m@db{s}\"\n"))
        .collect();
    toml.push_str(&format!(
        "[[sources]]\nname = \"tickets64\"\nkind = \"ticket_server\"\nservers = [\"mysql://m@t/tickets\"]\ntable = \"Tickets64\"\n\
         [[references]]\nsource = \"tickets64\"\ncolumns = [\"etsy.*.*_id\"]\n\
         [webhook]\nurl = \"http://127.0.0.1:9/hook\"\nmin_severity = \"warning\"\n[state]\npath = \"{}\"\n",
        state_dir.join("state.json").display()
    ));
    config::from_toml_str(&toml, &|_| None).expect("fleet settings")
}

/// Saved weeks of history, recorded sample by sample a minute apart (± a second), growing
/// about one ID every two seconds with some noise: what every column of the fleet is given.
fn weeks_of_history(count: usize) -> Vec<headroom::growth::SavedHistory> {
    let start = Instant::now();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    (0..count)
        .map(|n| {
            let mut h = headroom::growth::History::new(start);
            let (mut at, mut value) = (start, 0i128);
            for i in 0..(7 * 24 * 60) {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                at += Duration::from_millis(59_000 + (seed >> 33) % 2_000);
                value += 20 + (n as i128 % 5) * 5 + ((seed >> 40) % 21) as i128 + i % 3;
                h.record_with_max(at, value, u64::MAX);
            }
            h.to_saved(at, 0).expect("a week")
        })
        .collect()
}

/// One shard's poll as the poller computes it once the shard is read: the pure step
/// (`measure::prepare`, then `measure::report`: inference, plan, resolution, growth, policy,
/// strict mode) and the store's one write. The metrics follow the store at each scrape.
fn poll_shard(
    name: &str,
    inv: &Inventory,
    settings: &config::Settings,
    sources: &HashMap<String, SourceValue>,
    tracker: &mut Tracker<ColumnId>,
    store: &Store,
    at: measure::Moment,
) {
    let catalog = Catalog::single(inv.clone(), None, true);
    let prepared = measure::prepare(&catalog, settings);
    let dives = read_now(
        &prepared
            .plan
            .dives
            .iter()
            .map(|d| (d.clone(), Some(42)))
            .collect(),
        at,
    );
    let result = measure::report(
        name,
        &prepared,
        &dives,
        sources,
        tracker,
        &settings.policy,
        at,
    );
    store.shard_polled(name, Ok(result), Duration::from_millis(5), at.wall);
}

/// `values` as dives read at `at`.
fn read_now(
    values: &HashMap<ColumnId, Option<i128>>,
    at: measure::Moment,
) -> HashMap<ColumnId, measure::Dive> {
    values
        .iter()
        .map(|(id, value)| (id.clone(), measure::Dive { value: *value, at }))
        .collect()
}

/// The figures issue 9 names: bytes per column with a full week of history, and the CPU of
/// one steady-state poll of the whole fleet per column.
fn fleet_figures(full: bool) {
    let (shards, tables) = if full { (40, 626) } else { (4, 25) };
    let state_dir = tempfile::tempdir().expect("tempdir");
    let settings = fleet_settings(shards, state_dir.path());
    let names: Vec<String> = settings.shards.iter().map(|s| s.name.clone()).collect();
    // What every poll reads from the shards (the same schema on each), held by the bench
    // only: the daemon reads it afresh and drops it after each shard's poll.
    let inv = inventory(tables);
    let weeks = weeks_of_history(16);
    let mut sources = HashMap::from([(
        "tickets64".to_string(),
        SourceValue {
            current: 1_000_000_000,
            max: u64::MAX,
        },
    )]);
    let start = Instant::now();
    let wall = Utc::now();
    let moment = |round: u32| measure::Moment {
        instant: start + INTERVAL * round,
        wall: wall + chrono::TimeDelta::seconds(60 * i64::from(round)),
    };

    let before = live();
    let store = Store::new(&settings);
    let metrics = std::sync::Arc::new(Metrics::new());
    let pager = Pager::new(&settings, std::sync::Arc::clone(&metrics))
        .expect("the pager starts")
        .expect("a notifier");
    // Every column gets a week of history ending just below its current value, saved a
    // poll ago: the next poll is one more ordinary sample.
    let plan = measure::plan(&inv, &settings.references);
    let dives: HashMap<ColumnId, Option<i128>> =
        plan.dives.iter().map(|d| (d.clone(), Some(42))).collect();
    let (measured, _) = measure::resolve(&plan, &dives, &sources);
    let now_unix_ms = wall.timestamp_millis();
    let mut trackers: Vec<Tracker<ColumnId>> = names
        .iter()
        .map(|_| {
            let mut tracker = Tracker::default();
            let saved = measured.iter().enumerate().map(|(i, m)| {
                let mut week = weeks[i % weeks.len()].clone();
                let rise = headroom::growth::History::from_saved(&week, start, 0)
                    .and_then(|h| h.current())
                    .map_or(0, |last| last - week.v);
                let current = u64::try_from(m.headroom.current).unwrap_or(0);
                week.v = current.saturating_sub(rise + 100);
                week.t += now_unix_ms - 60_000;
                (m.id.clone(), week)
            });
            tracker.restore(saved, start, now_unix_ms);
            tracker
        })
        .collect();
    drop((plan, dives, measured));
    let poll_fleet =
        |round: u32, trackers: &mut [Tracker<ColumnId>], sources: &HashMap<String, SourceValue>| {
            for (name, tracker) in names.iter().zip(trackers.iter_mut()) {
                poll_shard(
                    name,
                    &inv,
                    &settings,
                    sources,
                    tracker,
                    &store,
                    moment(round),
                );
            }
            pager.evaluate(&store.read(), moment(round).wall);
        };
    // Warm-up: two polls, so that every map and buffer has reached its steady size.
    for round in 1..=2 {
        sources.get_mut("tickets64").expect("source").current += 60_000;
        poll_fleet(round, &mut trackers, &sources);
    }
    let history_samples: usize = trackers
        .iter()
        .flat_map(|t| t.to_saved(start + INTERVAL * 2, 0))
        .map(|(_, h)| {
            headroom::growth::History::from_saved(&h, start + INTERVAL * 2, 0)
                .map_or(0, |h| h.len())
        })
        .sum();
    let held = live().saturating_sub(before);
    let total: usize = store.read().shards.iter().map(|s| s.columns.len()).sum();
    let columns_per_shard = total / shards;
    // Steady state: the median CPU of a few whole-fleet polls.
    let mut cpu: Vec<u64> = (3..8)
        .map(|round| {
            sources.get_mut("tickets64").expect("source").current += 60_000;
            let started = cpu_ns();
            poll_fleet(round, &mut trackers, &sources);
            cpu_ns() - started
        })
        .collect();
    cpu.sort_unstable();
    let cpu = cpu[cpu.len() / 2];
    let per_column = held / total.max(1);
    let cpu_per_column = cpu / total.max(1) as u64;
    println!(
        "fleet: {shards} shards x {columns_per_shard} measured columns = {total} columns, a week of history each"
    );
    println!(
        "{:<44} {:>10.0}",
        "history samples per column",
        history_samples as f64 / total.max(1) as f64
    );
    println!("bytes per column, full history: {per_column}");
    let at = moment(8).wall;
    let freed = |f: &mut dyn FnMut()| {
        let before = live();
        f();
        before.saturating_sub(live()) / total.max(1)
    };
    let growth = freed(&mut || trackers.clear());
    let reports = freed(&mut || {
        for name in &names {
            store.shard_succeeded(name, Vec::new(), Vec::new(), Duration::ZERO, at);
        }
    });
    println!(
        "  of which growth histories {growth} B, reports in the store {reports} B ({} B each in place), the rest (pager, metrics) {} B",
        size_of::<ColumnReport>(),
        per_column.saturating_sub(growth + reports)
    );
    println!("cpu per column per poll: {cpu_per_column} ns");
    println!(
        "1 M columns would need: {:.0} MB, {:.1} s of CPU per poll",
        per_column as f64 * 1e6 / 1e6,
        cpu_per_column as f64 * 1e6 / 1e9
    );
}
