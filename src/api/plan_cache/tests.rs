//! The plan cache's tests: one computation per generation, capacity, reloads, unknown
//! columns, busy shards, and what a page is shown past its wait.

use super::*;
use crate::db::budget;
use crate::headroom::{IntType, Width};
use chrono::Utc;
use std::time::Duration;

/// Shard `a` on a port nothing listens on: any read of it fails at once.
pub(in crate::api) fn settings() -> Arc<Settings> {
    let toml = "[poll]\nquery_timeout = \"2s\"\n\
                [[shards]]\nname = \"a\"\nurl = \"mysql://u@127.0.0.1:1/\"\n";
    Arc::new(crate::config::from_toml_str(toml, &|_| None).expect("settings"))
}

/// `shop.ok.id` (INT, nearly empty: no plan) and `shop.full.id` (TINYINT at 120 of
/// 127: to widen).
pub(in crate::api) fn poll(store: &Store, settings: &Settings) {
    poll_with(store, settings, &[]);
}

/// As [`poll`], with more nearly empty INT columns, `shop.{table}.id`.
fn poll_with(store: &Store, settings: &Settings, more: &[String]) {
    let report = |table: &str, t: IntType, current: i128| {
        crate::measure::fixture::column("a", ColumnId::new("shop", table, "id"), t, current)
            .limits(settings.policy.default)
            .build()
    };
    let mut columns = vec![
        report("ok", IntType::new(Width::Int, false), 5),
        report("full", IntType::new(Width::Tiny, false), 120),
    ];
    columns.extend(
        more.iter()
            .map(|t| report(t, IntType::new(Width::Int, false), 5)),
    );
    store.shard_succeeded(
        "a",
        columns,
        Vec::new(),
        Duration::from_millis(1),
        Utc::now(),
    );
}

#[tokio::test]
async fn a_column_of_one_generation_is_computed_once_for_every_request() {
    let settings = settings();
    let store = Store::new(&settings);
    poll(&store, &settings);
    let plans = Plans::new();
    let id = ColumnId::new("shop", "ok", "id");
    let asked = (0..8).map(|_| plans.get(&store, Arc::clone(&settings), "a", &id));
    let got: Vec<Outcome> = futures::future::join_all(asked).await;
    let first = got[0].clone().expect("a plan");
    assert_eq!(first.column.id, id);
    assert!(
        got.iter()
            .all(|g| g.as_ref().is_ok_and(|p| Arc::ptr_eq(p, &first))),
        "computed more than once"
    );
    let later = plans.get(&store, Arc::clone(&settings), "a", &id).await;
    assert!(later.is_ok_and(|p| Arc::ptr_eq(&p, &first)));

    // The next poll is a new generation: computed again, the old one dropped.
    poll(&store, &settings);
    let next = plans
        .get(&store, Arc::clone(&settings), "a", &id)
        .await
        .expect("a plan");
    assert!(!Arc::ptr_eq(&next, &first));
    let slots = plans.slots.lock().expect("slots");
    assert_eq!(slots.by_column.len(), 1);
}

#[tokio::test]
async fn at_most_capacity_plans_are_kept_the_oldest_dropped_first() {
    let settings = settings();
    let store = Store::new(&settings);
    let tables: Vec<String> = (0..4).map(|i| format!("t{i}")).collect();
    poll_with(&store, &settings, &tables);
    let plans = Plans::with_capacity(3);
    for table in &tables {
        let id = ColumnId::new("shop", table, "id");
        plans
            .get(&store, Arc::clone(&settings), "a", &id)
            .await
            .expect("a plan");
    }
    let slots = plans.slots.lock().expect("slots");
    assert_eq!(slots.by_column.len(), 3);
    let kept = |t: &str| {
        slots
            .by_column
            .contains_key(&("a".to_string(), ColumnId::new("shop", t, "id")))
    };
    assert!(!kept("t0"));
    assert!(kept("t1"));
    assert!(kept("t3"));
}

#[tokio::test]
async fn a_reload_is_a_new_generation() {
    let settings = settings();
    let store = Store::new(&settings);
    poll(&store, &settings);
    let plans = Plans::new();
    let id = ColumnId::new("shop", "ok", "id");
    let first = plans.get(&store, Arc::clone(&settings), "a", &id).await;
    let reloaded = Arc::new((*settings).clone());
    let second = plans.get(&store, reloaded, "a", &id).await;
    let (first, second) = (first.expect("a plan"), second.expect("a plan"));
    assert!(!Arc::ptr_eq(&first, &second));
}

#[tokio::test]
async fn an_unknown_column_is_not_found_and_not_kept() {
    let settings = settings();
    let store = Store::new(&settings);
    poll(&store, &settings);
    let plans = Plans::new();
    let got = plans
        .get(&store, settings, "a", &ColumnId::new("shop", "nope", "id"))
        .await;
    assert_eq!(
        got.map(|_| ()),
        Err(Failure::NotFound(
            "no ID column shop.nope.id is known on shard \"a\"".to_string()
        ))
    );
    assert!(plans.slots.lock().expect("slots").by_column.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_busy_shard_is_answered_busy_and_the_next_request_tries_again() {
    let settings = settings();
    let store = Store::new(&settings);
    poll(&store, &settings);
    let plans = Plans::new();
    let id = ColumnId::new("shop", "full", "id");
    let held = plans
        .budget()
        .acquire("a", budget::MAX_WAIT)
        .await
        .expect("a free shard");
    let got = plans.get(&store, Arc::clone(&settings), "a", &id).await;
    assert_eq!(
        got.map(|_| ()),
        Err(Failure::Busy(Busy {
            shard: "a".to_string(),
            waited: Duration::from_secs(2)
        }))
    );
    drop(held);
    tokio::time::resume();
    // Not kept: this one reads the shard, which refuses the connection.
    let got = plans.get(&store, settings, "a", &id).await;
    assert!(
        matches!(&got, Err(Failure::Read(m)) if m.starts_with("shard a: connecting")),
        "{got:?}"
    );
}

#[tokio::test]
async fn a_columns_earlier_plan_is_kept_while_its_next_one_is_computed() {
    let settings = settings();
    let store = Store::new(&settings);
    poll(&store, &settings);
    let plans = Plans::new();
    let id = ColumnId::new("shop", "ok", "id");
    let first = plans
        .get(&store, Arc::clone(&settings), "a", &id)
        .await
        .expect("a plan");
    let (_, earlier, _) = plans
        .start(&store, Arc::clone(&settings), "a", &id)
        .expect("known");
    assert!(earlier.is_none(), "none before the current one");

    poll(&store, &settings);
    // The next poll's computation has started, not finished: the first plan is shown.
    let (done, earlier, _) = plans
        .start(&store, Arc::clone(&settings), "a", &id)
        .expect("known");
    assert!(earlier.is_some_and(|e| Arc::ptr_eq(&e, &first)));
    let next = wait(done).await.expect("a plan");
    assert!(!Arc::ptr_eq(&next, &first));
    let shown = plans.show(&store, Arc::clone(&settings), "a", &id).await;
    assert!(
        matches!(&shown, Shown::Now(Ok(p)) if Arc::ptr_eq(p, &next)),
        "{shown:?}"
    );

    // Dropped once a plan of its column is computed again and another column is asked.
    plans
        .get(&store, settings, "a", &ColumnId::new("shop", "full", "id"))
        .await
        .ok();
    assert!(plans.slots.lock().expect("slots").earlier.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_page_past_its_wait_gets_the_earlier_plan_or_none_while_it_is_computed() {
    let settings = settings();
    let store = Store::new(&settings);
    poll(&store, &settings);
    let plans = Plans::new();
    assert_eq!(plans.page_wait(), Duration::from_millis(30));
    let id = ColumnId::new("shop", "full", "id");
    // The plan waits for a session of shard a, which this test holds.
    let held = plans
        .budget()
        .acquire("a", budget::MAX_WAIT)
        .await
        .expect("a free shard");
    let shown = plans.show(&store, Arc::clone(&settings), "a", &id).await;
    assert!(
        matches!(
            shown,
            Shown::Computing {
                earlier: None,
                failed: None
            }
        ),
        "{shown:?}"
    );

    let kept = Arc::new(plan::unplanned(
        plan::locate(&store.read(), "a", &id).expect("known"),
    ));
    plans
        .slots
        .lock()
        .expect("slots")
        .earlier
        .insert(("a".to_string(), id.clone()), (0, Arc::clone(&kept)));
    let shown = plans.show(&store, Arc::clone(&settings), "a", &id).await;
    assert!(
        matches!(&shown, Shown::Computing { earlier: Some(p), .. } if Arc::ptr_eq(p, &kept)),
        "{shown:?}"
    );
    drop(held);
    // A column not known is answered at once, whatever the wait.
    let shown = plans
        .show(&store, settings, "a", &ColumnId::new("shop", "nope", "id"))
        .await;
    assert!(
        matches!(shown, Shown::Now(Err(Failure::NotFound(_)))),
        "{shown:?}"
    );
}

#[tokio::test]
async fn earlier_plans_count_towards_the_capacity_and_are_dropped_first() {
    let settings = settings();
    let store = Store::new(&settings);
    let tables: Vec<String> = (0..3).map(|i| format!("t{i}")).collect();
    poll_with(&store, &settings, &tables);
    let plans = Plans::with_capacity(2);
    let ask = |t: &str| {
        let id = ColumnId::new("shop", t, "id");
        let settings = Arc::clone(&settings);
        let (plans, store) = (&plans, &store);
        async move { plans.get(store, settings, "a", &id).await.expect("a plan") }
    };
    ask("t0").await;
    ask("t1").await;
    poll_with(&store, &settings, &tables);
    ask("t2").await;
    let slots = plans.slots.lock().expect("slots");
    let key = |t: &str| ("a".to_string(), ColumnId::new("shop", t, "id"));
    assert_eq!(slots.by_column.keys().collect::<Vec<_>>(), vec![&key("t2")]);
    assert_eq!(slots.earlier.keys().collect::<Vec<_>>(), vec![&key("t1")]);
}

#[tokio::test]
async fn a_page_past_its_wait_is_told_why_the_last_attempt_failed() {
    let settings = settings();
    let store = Store::new(&settings);
    poll(&store, &settings);
    let plans = Plans::new();
    let id = ColumnId::new("shop", "full", "id");
    // Shard a refuses: the plan fails, and is not kept.
    let got = plans.get(&store, Arc::clone(&settings), "a", &id).await;
    let Err(Failure::Read(refused)) = got else {
        panic!("{got:?}");
    };
    assert!(refused.starts_with("shard a: connecting"), "{refused}");
    // The next attempt waits for a session this test holds: the page is told why the
    // last one failed.
    let held = plans
        .budget()
        .acquire("a", budget::MAX_WAIT)
        .await
        .expect("a free shard");
    let shown = plans.show(&store, Arc::clone(&settings), "a", &id).await;
    assert!(
        matches!(
            &shown,
            Shown::Computing { earlier: None, failed: Some(Failure::Read(m)) } if *m == refused
        ),
        "{shown:?}"
    );
    // Another column has no failure of its own.
    let other = ColumnId::new("shop", "ok", "id");
    let shown = plans.show(&store, settings, "a", &other).await;
    assert!(matches!(shown, Shown::Now(Ok(_))), "{shown:?}");
    drop(held);
}
