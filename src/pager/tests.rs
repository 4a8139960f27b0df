//! The pager whole: books, the state file's writes, reloads and evaluation over a store.

use std::time::Duration;

use super::*;

/// Every notifier's incidents as `/api/incidents` writes them.
fn incidents(pager: &Pager) -> serde_json::Value {
    crate::api::incidents::json(pager)
}

/// The dedup keys of the first notifier's queued events, in order: every one, or those of
/// `action`.
fn queued(books: &Books, action: Option<event::Action>) -> Vec<&str> {
    books.outboxes[0]
        .iter()
        .filter(|e| action.is_none_or(|a| e.action == a))
        .map(|e| e.dedup_key.as_str())
        .collect()
}

/// A pager over two shards with a webhook to nowhere, its state in `dir/d/state.json`.
fn pager_in(dir: &std::path::Path) -> (Pager, crate::state::Store, Arc<Metrics>) {
    let toml = format!(
        "[[shards]]\nname = \"s1\"\nurl = \"mysql://m@127.0.0.1:1\"\n\
         [[shards]]\nname = \"s2\"\nurl = \"mysql://m@127.0.0.1:1\"\n\
         [webhook]\nurl = \"http://127.0.0.1:9/hook\"\nblind_after = \"1s\"\n\
         [state]\npath = \"{}\"\n",
        dir.join("d").join("state.json").display()
    );
    let settings = crate::config::from_toml_str(&toml, &|_| None).unwrap();
    let metrics = Arc::new(Metrics::new());
    let pager = Pager::new(&settings, Arc::clone(&metrics))
        .unwrap()
        .unwrap();
    (pager, crate::state::Store::new(&settings), metrics)
}

/// Both shards unreadable: blind, one trigger each, at an hour after start.
fn both_blind(pager: &Pager, store: &crate::state::Store) {
    let now = Utc::now();
    for s in ["s1", "s2"] {
        store.shard_failed(
            s,
            crate::db::ErrorReport {
                message: "connecting: connection refused".into(),
                class: "connection_refused",
                code: None,
            },
            Duration::ZERO,
            now,
        );
    }
    pager.evaluate(&store.read(), now + chrono::Duration::hours(1));
}

fn sample(metrics: &Metrics, name: &str) -> Option<f64> {
    let empty = crate::state::Snapshot {
        shards: Vec::new(),
        sources: Vec::new(),
    };
    let text = metrics.render(&empty);
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .map(|v| v.parse().unwrap())
}

fn saved(dir: &std::path::Path) -> (serde_json::Value, String) {
    let path = dir.join("d").join("state.json");
    let snapshot = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let journal = std::fs::read_to_string(state_file::journal_path(&path)).unwrap_or_default();
    (snapshot, journal)
}

#[test]
fn a_delivery_appends_one_journal_line_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (pager, store, _) = pager_in(dir.path());
    both_blind(&pager, &store);
    let first = pager.lock().outboxes[0][0].clone();
    pager.pop(0, &first);
    let (snapshot, journal) = saved(dir.path());
    assert_eq!(
        snapshot["notifiers"]["webhook"]["outbox"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "the snapshot is not rewritten for a delivery"
    );
    assert_eq!(journal.lines().count(), 1);
    assert!(
        journal.contains(r#""dedup_key":"headroom/blind/s1""#),
        "{journal}"
    );
    drop(pager);

    let (pager, _, _) = pager_in(dir.path());
    let books = pager.lock();
    let keys = queued(&books, None);
    assert_eq!(keys, ["headroom/blind/s2"]);
    assert_eq!(books.lifecycles[0].incidents.len(), 2, "both still open");
}

#[test]
fn an_evaluation_that_changes_the_books_folds_the_journal_into_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (pager, store, _) = pager_in(dir.path());
    both_blind(&pager, &store);
    let first = pager.lock().outboxes[0][0].clone();
    pager.pop(0, &first);
    // s1 is read again: after two ok polls its incident resolves, a change.
    let now = Utc::now() + chrono::Duration::hours(2);
    store.shard_succeeded("s1", Vec::new(), Vec::new(), Duration::ZERO, now);
    pager.evaluate(&store.read(), now);
    assert_eq!(saved(dir.path()).1.lines().count(), 1, "no change yet");
    store.shard_succeeded("s1", Vec::new(), Vec::new(), Duration::ZERO, now);
    pager.evaluate(&store.read(), now);
    let (snapshot, journal) = saved(dir.path());
    assert_eq!(journal, "");
    let outbox: Vec<(&str, &str)> = snapshot["notifiers"]["webhook"]["outbox"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["dedup_key"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outbox,
        [
            ("trigger", "headroom/blind/s2"),
            ("resolve", "headroom/blind/s1")
        ]
    );
}

#[test]
fn a_write_in_progress_holds_up_neither_deliveries_nor_readers() {
    let dir = tempfile::tempdir().unwrap();
    let (pager, store, _) = pager_in(dir.path());
    both_blind(&pager, &store);
    let pager = Arc::new(pager);
    let first = pager.lock().outboxes[0][0].clone();
    // A write is under way (the writer is held): the delivery updates the books and
    // waits for the writer only to journal it.
    let writing = pager.lock_writer();
    let delivering = {
        let pager = Arc::clone(&pager);
        std::thread::spawn(move || pager.pop(0, &first))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while pager.outbox_len("webhook") != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the delivery was held up"
        );
        std::thread::yield_now();
    }
    assert_eq!(incidents(&pager)[0]["undelivered"], 1);
    drop(writing);
    delivering.join().unwrap();
    assert_eq!(saved(dir.path()).1.lines().count(), 1);
}

#[test]
fn a_new_event_is_handed_to_delivery_only_once_its_snapshot_is_written() {
    use futures::FutureExt;
    let dir = tempfile::tempdir().unwrap();
    let (pager, store, _) = pager_in(dir.path());
    let pager = Arc::new(pager);
    let writing = pager.lock_writer();
    let evaluating = {
        let pager = Arc::clone(&pager);
        std::thread::spawn(move || both_blind(&pager, &store))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while pager.outbox_len("webhook") != 2 {
        assert!(std::time::Instant::now() < deadline, "nothing queued");
        std::thread::yield_now();
    }
    let wake = &pager.notifiers[0].wake;
    assert!(wake.notified().now_or_never().is_none(), "woken too early");
    drop(writing);
    evaluating.join().unwrap();
    assert!(wake.notified().now_or_never().is_some());
    assert_eq!(
        saved(dir.path()).0["notifiers"]["webhook"]["outbox"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn the_state_metrics_count_failed_writes_and_time_the_last_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let link = dir.path().join("d");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let (pager, store, metrics) = pager_in(dir.path());
    let errors = "headroom_state_save_errors_total";
    let last = "headroom_state_last_save_success_timestamp_seconds";
    assert_eq!(sample(&metrics, errors), Some(0.0));
    assert_eq!(sample(&metrics, last), None, "nothing written yet");
    assert_eq!(pager.state_problem(), None);

    let before = Utc::now().timestamp_millis() as f64 / 1000.0;
    both_blind(&pager, &store);
    let after = Utc::now().timestamp_millis() as f64 / 1000.0;
    let at = sample(&metrics, last).unwrap();
    assert!(before <= at && at <= after, "{before} <= {at} <= {after}");
    assert_eq!(sample(&metrics, errors), Some(0.0));

    // The directory becomes unwritable, even to root: /proc takes no new file.
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink("/proc", &link).unwrap();
    let first = pager.lock().outboxes[0][0].clone();
    pager.pop(0, &first);
    assert_eq!(sample(&metrics, errors), Some(1.0));
    let problem = pager.state_problem().unwrap();
    assert!(
        problem.starts_with(&format!(
            "cannot write the state file {}",
            link.join("state.json").display()
        )),
        "{problem}"
    );
    // Every evaluation retries the whole snapshot until one is written.
    pager.evaluate(&store.read(), Utc::now());
    assert_eq!(sample(&metrics, errors), Some(2.0));
    assert_eq!(sample(&metrics, last), Some(at));

    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    pager.evaluate(&store.read(), Utc::now());
    assert_eq!(sample(&metrics, errors), Some(2.0));
    assert!(sample(&metrics, last).unwrap() >= at);
    assert_eq!(pager.state_problem(), None);
    let (snapshot, journal) = saved(dir.path());
    assert_eq!(
        journal, "",
        "the journal line that failed is in the snapshot"
    );
    assert_eq!(
        snapshot["notifiers"]["webhook"]["outbox"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn an_unwritable_state_directory_at_start_is_a_problem_until_a_write_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("d");
    std::os::unix::fs::symlink("/proc", &link).unwrap();
    let (pager, store, metrics) = pager_in(dir.path());
    assert_eq!(
        pager.state_problem().unwrap(),
        format!(
            "the state directory {} is not writable: No such file or directory (os error 2)",
            link.display()
        )
    );
    std::fs::remove_file(&link).unwrap();
    std::fs::create_dir(&link).unwrap();
    // Nothing to page, yet the evaluation writes: the file may lag behind.
    pager.evaluate(&store.read(), Utc::now());
    assert_eq!(pager.state_problem(), None);
    assert!(link.join("state.json").exists());
    assert_eq!(
        sample(&metrics, "headroom_state_save_errors_total"),
        Some(0.0)
    );
}

#[test]
fn a_reload_swaps_a_notifiers_settings_and_keeps_its_incidents() {
    let dir = tempfile::tempdir().unwrap();
    let (pager, store, _) = pager_in(dir.path());
    both_blind(&pager, &store);
    assert_eq!(incidents(&pager)[0]["min_severity"], "critical");
    let toml = "[[shards]]\nname = \"s1\"\nurl = \"mysql://m@127.0.0.1:1\"\n\
         [webhook]\nurl = \"http://127.0.0.1:9/other\"\nmin_severity = \"warning\"\n\
         [pagerduty]\nrouting_key_env = \"K\"\n";
    let settings = crate::config::from_toml_str(toml, &|_| Some("k".to_string())).unwrap();
    let prepared = pager.prepare(&settings).unwrap();
    assert_eq!(prepared.len(), 1, "only the running notifier");
    let warnings = pager.reconfigure(&settings, prepared);
    assert_eq!(
        warnings,
        ["[pagerduty] was added: it starts at the next restart"]
    );
    let incidents = incidents(&pager);
    assert_eq!(incidents[0]["min_severity"], "warning");
    assert_eq!(incidents[0]["open"].as_array().unwrap().len(), 2);
    let live = pager.notifiers[0].live();
    assert_eq!(live.settings.url.path(), "/other");
}

#[test]
fn a_shard_added_by_a_reload_is_blind_only_blind_after_past_the_reload() {
    let dir = tempfile::tempdir().unwrap();
    let (mut pager, store, _) = pager_in(dir.path());
    pager.started = Utc::now() - chrono::Duration::hours(1);
    let toml = "[[shards]]\nname = \"s3\"\nurl = \"mysql://m@127.0.0.1:1\"\n";
    let settings = crate::config::from_toml_str(toml, &|_| None).unwrap();
    store.reconfigure(&settings);
    let now = Utc::now();
    let refused = crate::db::ErrorReport {
        message: "connecting: connection refused".into(),
        class: "connection_refused",
        code: None,
    };
    store.shard_failed("s3", refused, Duration::ZERO, now);
    pager.evaluate(&store.read(), now);
    assert_eq!(pager.outbox_len("webhook"), 0, "not blind for 1s yet");
    pager.evaluate(&store.read(), now + chrono::Duration::seconds(2));
    let books = pager.lock();
    let keys = queued(&books, None);
    assert_eq!(keys, ["headroom/blind/s3"]);
}

/// Shard `shard`'s column `name` at `current` of INT (critical above 90 %), as a poll
/// reports it, with a growth rate so that an ok ratio is a verdict.
fn int_column(shard: &str, name: &str, current: i128) -> crate::measure::ColumnReport {
    use crate::headroom::{IntType, Width};
    let id = crate::inventory::ColumnId::new("app", name, "id");
    let int = IntType::new(Width::Int, false);
    crate::measure::fixture::column(shard, id, int, current)
        .forecast(crate::growth::Forecast {
            growth_per_second: Some(0.0),
            ..crate::growth::Forecast::NONE
        })
        .build()
}

#[test]
fn ok_columns_are_skipped_only_on_shards_without_an_open_incident() {
    let dir = tempfile::tempdir().unwrap();
    let (pager, store, _) = pager_in(dir.path());
    let now = Utc::now();
    let poll = |a: i128| {
        for shard in ["s1", "s2"] {
            let columns = vec![int_column(shard, "a", a), int_column(shard, "b", 1)];
            store.shard_succeeded(shard, columns, Vec::new(), Duration::ZERO, now);
        }
        pager.evaluate(&store.read(), now);
    };
    poll(2_100_000_000);
    let triggers = |books: &Books| {
        let mut keys: Vec<String> = queued(books, Some(event::Action::Trigger))
            .into_iter()
            .map(str::to_string)
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(
        triggers(&pager.lock()),
        ["headroom/column/s1/app.a.id", "headroom/column/s2/app.a.id"]
    );
    // Widened: the same columns ok, at as many polls as a resolve needs.
    for _ in 0..RESOLVE_AFTER {
        poll(1);
    }
    let books = pager.lock();
    let mut resolves = queued(&books, Some(event::Action::Resolve));
    resolves.sort_unstable();
    assert_eq!(
        resolves,
        ["headroom/column/s1/app.a.id", "headroom/column/s2/app.a.id"]
    );
    assert!(books.lifecycles[0].incidents.is_empty());
}

#[test]
fn the_open_incidents_of_a_shard_removed_by_a_reload_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let (pager, store, _) = pager_in(dir.path());
    both_blind(&pager, &store);
    let toml = "[[shards]]\nname = \"s1\"\nurl = \"mysql://m@127.0.0.1:1\"\n";
    let settings = crate::config::from_toml_str(toml, &|_| None).unwrap();
    store.reconfigure(&settings);
    let later = Utc::now() + chrono::Duration::hours(1);
    for _ in 0..RESOLVE_AFTER {
        pager.evaluate(&store.read(), later);
    }
    let books = pager.lock();
    let resolves = queued(&books, Some(event::Action::Resolve));
    assert_eq!(resolves, ["headroom/blind/s2"]);
    assert_eq!(books.lifecycles[0].incidents.len(), 1, "s1 is still blind");
}

#[test]
fn the_incidents_of_a_shard_another_member_owns_now_are_handed_over_without_a_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let (pager, store, _) = pager_in(dir.path());
    both_blind(&pager, &store);
    // s2 is still configured, but (say, N changed) another member owns it now.
    let toml = "[[shards]]\nname = \"s1\"\nurl = \"mysql://m@127.0.0.1:1\"\n\
                [[shards]]\nname = \"s2\"\nurl = \"mysql://m@127.0.0.1:1\"\n";
    let mut settings = crate::config::from_toml_str(toml, &|_| None).unwrap();
    settings.shards.retain(|s| s.name == "s1");
    store.reconfigure(&settings);
    pager.reconfigure(&settings, Vec::new());
    let later = Utc::now() + chrono::Duration::hours(1);
    for _ in 0..RESOLVE_AFTER + 1 {
        pager.evaluate(&store.read(), later);
    }
    let books = pager.lock();
    assert!(
        books.outboxes[0]
            .iter()
            .all(|e| e.action != event::Action::Resolve),
        "the new owner resolves it, not this member"
    );
    let open: Vec<&String> = books.lifecycles[0].incidents.keys().collect();
    assert_eq!(open, ["headroom/blind/s1"]);
}

#[test]
fn each_notifier_names_itself_in_its_user_agent() {
    assert_eq!(
        user_agent("pagerduty"),
        format!("headroom/{} (pagerduty)", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn incidents_are_counted_and_found_by_key_without_copying_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let (pager, store, _) = pager_in(dir.path());
    assert_eq!(
        pager.incident_counts(),
        [IncidentCounts {
            notifier: "webhook",
            open: 0,
            undelivered: 0
        }]
    );
    both_blind(&pager, &store);
    assert_eq!(
        pager.incident_counts(),
        [IncidentCounts {
            notifier: "webhook",
            open: 2,
            undelivered: 2
        }]
    );
    let found = pager.incident("headroom/blind/s1");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, "webhook");
    assert_eq!(found[0].1.dedup_key, "headroom/blind/s1");
    assert!(pager.incident("headroom/blind/s3").is_empty());
}

#[test]
fn a_database_near_wraparound_pages_with_its_own_key_naming_the_oldest_tables() {
    use crate::headroom::Status;
    let dir = tempfile::tempdir().unwrap();
    let (pager, store, _) = pager_in(dir.path());
    let age = |age: i64, status| crate::wraparound::Age {
        age,
        used_ratio: age as f64 / 2_147_483_648.0,
        status,
        growth_per_second: Some(1_000.0),
        seconds_to_wraparound: Some(100_000),
        wraps_at: None,
    };
    let result = crate::measure::ShardResult {
        strict: true,
        databases: Some(vec![crate::wraparound::DatabaseState {
            database: "app\"db".to_string(),
            xid: age(1_900_000_000, Status::Critical),
            multixact: age(10, Status::Ok),
            status: Status::Critical,
            oldest_tables: vec![crate::wraparound::OldTable {
                table: "public.events".to_string(),
                xid_age: 1_900_000_000,
            }],
        }]),
        ..Default::default()
    };
    let now = Utc::now();
    store.shard_polled("s1", Ok(result), Duration::ZERO, now);
    store.shard_polled("s2", Ok(Default::default()), Duration::ZERO, now);
    pager.evaluate(&store.read(), now);
    let books = pager.lock();
    let triggers: Vec<&event::Event> = books.outboxes[0]
        .iter()
        .filter(|e| e.action == event::Action::Trigger)
        .collect();
    assert_eq!(triggers.len(), 1, "{triggers:?}");
    let e = triggers[0];
    assert_eq!(e.dedup_key, "headroom/wraparound/s1/app\"db/xid");
    assert_eq!(e.class, "wraparound");
    assert!(
        e.summary.contains("VACUUM FREEZE first: public.events"),
        "{}",
        e.summary
    );
    assert_eq!(e.custom_details["current"], 1_900_000_000);
    assert_eq!(e.custom_details["database"], "app\"db");
}
