//! Each shard on its own schedule, on real servers: a frozen shard never delays another's
//! cadence, backs off (capped) while it fails and comes back to its cadence when thawed;
//! the sources are read every interval whatever the shards do; `poll.shard_timeout` bounds a
//! whole poll; polls never overlap on one shard; the shards keep their own places in the
//! interval; paging counts each shard's own polls.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use headroom::api::incidents;
use headroom::metrics::Metrics;
use headroom::pager::Pager;
use headroom::poller::{delay_after, first_poll_offset};
use headroom::state::ShardState;

use crate::harness::{Cluster, TestApp, poller, settings, spawn_app, start_servers};

const COUNTERS_SQL: &str = "CREATE DATABASE app;
CREATE TABLE app.orders (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=1000;";

const INTERVAL: Duration = Duration::from_millis(500);

fn toml(poll: &str, shards: &[(&str, String)]) -> String {
    let mut toml = format!("[server]\nlisten = \"127.0.0.1:0\"\n[poll]\n{poll}\n");
    for (name, url) in shards {
        toml.push_str(&format!("[[shards]]\nname = \"{name}\"\nurl = \"{url}\"\n"));
    }
    toml
}

/// One shard's state as the store holds it now.
fn shard(app: &TestApp, name: &str) -> ShardState {
    let snap = app.store.read();
    snap.shards
        .iter()
        .find(|s| s.name == name)
        .cloned()
        .unwrap_or_else(|| panic!("no shard {name}"))
}

/// A shard's schedule, when the store holds it whole: its poll's result is stored an
/// instant before the next poll's time, so a moment where `next_poll_at` is not after
/// `last_poll` is skipped.
fn schedule(s: &ShardState) -> Option<(DateTime<Utc>, DateTime<Utc>, u32, u64)> {
    let (last, next) = (s.last_poll?, s.next_poll_at?);
    (next > last).then_some((last, next, s.consecutive_failures, s.polls))
}

fn whole(d: chrono::TimeDelta) -> Duration {
    d.to_std().expect("a positive time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_shard_backs_off_capped_while_another_keeps_its_cadence_and_recovers_when_thawed()
{
    let servers = start_servers(&["frozen", "steady"]);
    for s in &servers {
        s.exec(COUNTERS_SQL).expect("seed");
    }
    let toml = toml(
        "interval = \"500ms\"\nquery_timeout = \"5s\"\nshard_timeout = \"400ms\"",
        &[
            ("frozen", servers[0].url("root", None)),
            ("steady", servers[1].url("root", None)),
        ],
    );
    servers[0].freeze();
    let app = spawn_app(settings(&toml)).await;

    // Every schedule the store shows, until the frozen shard has failed five times in a
    // row (4 s, then capped at 10 × 500 ms = 5 s).
    let frozen_seen = Arc::new(Mutex::new(Vec::new()));
    let steady_seen = Arc::new(Mutex::new(Vec::new()));
    app.wait_until("the frozen shard failed five times in a row", |app| {
        let frozen = schedule(&shard(app, "frozen"));
        let steady = schedule(&shard(app, "steady"));
        let mut seen = frozen_seen.lock().unwrap();
        if let Some(f) = frozen
            && seen.last() != Some(&f)
        {
            seen.push(f);
        }
        let mut seen_steady = steady_seen.lock().unwrap();
        if let Some(s) = steady
            && seen_steady.last() != Some(&s)
        {
            seen_steady.push(s);
        }
        let done = frozen.is_some_and(|(_, _, failures, _)| failures >= 5);
        async move { done }
    })
    .await;

    let frozen_seen = frozen_seen.lock().unwrap().clone();
    // From the second failure on, the poll (400 ms at most) ends before the next is due:
    // the next poll is exactly the backoff after this one's start.
    let mut failures_seen = Vec::new();
    for (last, next, failures, _) in &frozen_seen {
        assert!(*failures >= 1, "{frozen_seen:?}");
        if *failures >= 2 {
            assert_eq!(
                whole(*next - *last),
                delay_after(INTERVAL, *failures),
                "after {failures} failures: {frozen_seen:?}"
            );
        }
        failures_seen.push(*failures);
    }
    assert!(
        failures_seen.windows(2).all(|w| w[1] > w[0]),
        "{failures_seen:?}"
    );
    assert!(failures_seen.ends_with(&[4, 5]), "{failures_seen:?}");
    assert_eq!(delay_after(INTERVAL, 4), Duration::from_secs(4));
    assert_eq!(delay_after(INTERVAL, 5), Duration::from_secs(5));
    let frozen_now = shard(&app, "frozen");
    assert_eq!(frozen_now.last_error_class, Some("timeout"));
    assert_eq!(
        frozen_now.last_error.as_deref(),
        Some("polling the shard: no answer within 0.4s")
    );

    // Meanwhile the steady shard was polled at every one of its places, one interval
    // apart: as many polls as intervals went by, none skipped or pushed back.
    let steady_seen = steady_seen.lock().unwrap().clone();
    let (first, last) = (steady_seen[0], steady_seen[steady_seen.len() - 1]);
    let elapsed = whole(last.1 - first.1);
    let slots = elapsed.as_nanos() / INTERVAL.as_nanos();
    assert_eq!(
        elapsed.as_nanos() % INTERVAL.as_nanos(),
        0,
        "{steady_seen:?}"
    );
    assert_eq!(
        u64::try_from(slots).unwrap(),
        last.3 - first.3,
        "{steady_seen:?}"
    );
    assert!(slots >= 8, "{steady_seen:?}");
    let steady_now = shard(&app, "steady");
    assert!(steady_now.up);
    assert_eq!(steady_now.poll_errors, 0);
    assert_eq!(steady_now.consecutive_failures, 0);

    // Thawed: the next (backed-off) poll succeeds and the shard is back on its cadence.
    servers[0].thaw();
    app.wait_until("the thawed shard is up again", |app| {
        let s = shard(app, "frozen");
        let back = s.up && schedule(&s).is_some();
        async move { back }
    })
    .await;
    let thawed = shard(&app, "frozen");
    assert_eq!(thawed.consecutive_failures, 0);
    let (last, next, _, _) = schedule(&thawed).expect("a whole schedule");
    // At its place in the interval, or at once if the poll ran past it.
    let took = Duration::from_secs_f64(thawed.poll_duration_seconds.expect("a duration"));
    assert!(
        whole(next - last) <= INTERVAL.max(took),
        "{last} {next} {took:?}"
    );
    let polls = thawed.polls;
    app.wait_until("and polled again one interval later", |app| {
        let s = shard(app, "frozen");
        let again = s.polls > polls && schedule(&s).is_some();
        async move { again }
    })
    .await;
    let again = shard(&app, "frozen");
    assert!(again.up);
    let (last2, next2, _, _) = schedule(&again).expect("a whole schedule");
    assert!(
        last2 >= next,
        "polled before the time it showed: {next} {last2}"
    );
    // Back at its own place in the interval: both shards' places are kept from one
    // anchor, so they stand apart by the difference of their offsets, modulo the interval.
    let steady_next = schedule(&shard(&app, "steady"))
        .expect("steady scheduled")
        .1;
    let apart = (next2 - steady_next).num_nanoseconds().unwrap();
    let planned = first_poll_offset("frozen", INTERVAL).as_nanos() as i64
        - first_poll_offset("steady", INTERVAL).as_nanos() as i64;
    let iv = INTERVAL.as_nanos() as i64;
    assert_eq!(
        apart.rem_euclid(iv),
        planned.rem_euclid(iv),
        "{next2} {steady_next}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sources_are_read_every_interval_while_a_shard_poll_hangs() {
    let cluster = Cluster::start();
    let toml = cluster
        .toml("")
        .replace("interval = \"1s\"", "interval = \"300ms\"")
        .replace(
            "query_timeout = \"2s\"",
            "query_timeout = \"20s\"\nshard_timeout = \"20s\"",
        );
    cluster.shards[0].freeze();
    let app = spawn_app(settings(&toml)).await;
    app.wait_until(
        "four rounds of source reads and three polls of shard-02",
        |app| {
            let snap = app.store.read();
            let done = snap.sources[0].reads >= 4 && snap.shards[1].polls >= 3;
            async move { done }
        },
    )
    .await;
    {
        let snap = app.store.read();
        // shard-01's first poll is still under way: it held up neither.
        assert_eq!(snap.shards[0].polls, 0);
        assert!(snap.shards[1].up);
        assert!(snap.sources[0].servers.iter().all(|s| s.up));
    }
    cluster.shards[0].thaw();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_timeout_bounds_the_whole_poll_not_only_each_query() {
    let servers = start_servers(&["hung"]);
    servers[0].exec(COUNTERS_SQL).expect("seed");
    // Each step may take 20 s; the whole poll only 1 s.
    let toml = toml(
        "interval = \"1h\"\nquery_timeout = \"20s\"\nshard_timeout = \"1s\"",
        &[("hung", servers[0].url("root", None))],
    );
    servers[0].freeze();
    let app = spawn_app(settings(&toml)).await;
    app.wait_ready().await;
    let hung = shard(&app, "hung");
    assert!(!hung.up);
    assert_eq!(hung.last_error_class, Some("timeout"));
    assert_eq!(hung.last_error_code, None);
    assert_eq!(
        hung.last_error.as_deref(),
        Some("polling the shard: no answer within 1s")
    );
    let took = hung.poll_duration_seconds.expect("a duration");
    assert!((1.0..20.0).contains(&took), "{took}");
    // Shutdown does not wait for the frozen server.
    servers[0].thaw();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_never_overlap_on_one_shard_a_long_poll_delays_its_next_one() {
    let servers = start_servers(&["slow"]);
    servers[0].exec(COUNTERS_SQL).expect("seed");
    let toml = toml(
        "interval = \"300ms\"\nquery_timeout = \"10s\"\nshard_timeout = \"10s\"",
        &[("slow", servers[0].url("root", None))],
    );
    let app = spawn_app(settings(&toml)).await;
    app.wait_ready().await;

    // Every poll the store publishes, from a subscriber (one shard: each publication is
    // one of its polls).
    let mut published = app.store.subscribe();
    let store = app.store.clone();
    let polls = Arc::new(Mutex::new(Vec::<(DateTime<Utc>, f64, bool)>::new()));
    let recorder = {
        let polls = Arc::clone(&polls);
        tokio::spawn(async move {
            while published.changed().await.is_ok() {
                let s = store.read().shards[0].clone();
                if let (Some(at), Some(took)) = (s.last_poll, s.poll_duration_seconds) {
                    let mut polls = polls.lock().unwrap();
                    if polls.last().map(|p| p.0) != Some(at) {
                        polls.push((at, took, s.up));
                    }
                }
            }
        })
    };
    // The server stalls for 1 s three times: the polls under way then take longer than
    // three intervals, and succeed.
    let db = &servers[0];
    for _ in 0..3 {
        db.freeze();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        db.thaw();
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let before = app.store.read().shards[0].polls;
    app.wait_until("two more polls", |app| {
        let more = app.store.read().shards[0].polls >= before + 2;
        async move { more }
    })
    .await;
    recorder.abort();
    let polls = polls.lock().unwrap().clone();
    let long = polls.iter().filter(|p| p.1 > 0.3).count();
    assert!(long >= 1, "no poll was stalled: {polls:?}");
    for pair in polls.windows(2) {
        let ((start, took, up), (next, _, _)) = (pair[0], pair[1]);
        assert!(up, "{polls:?}");
        let ended = start + chrono::TimeDelta::from_std(Duration::from_secs_f64(took)).unwrap();
        assert!(
            next >= ended,
            "a poll started before the previous ended: {polls:?}"
        );
    }
    assert_eq!(app.store.read().shards[0].poll_errors, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_shard_keeps_its_own_place_in_the_interval_from_a_hash_of_its_name() {
    let servers = start_servers(&["places"]);
    servers[0].exec(COUNTERS_SQL).expect("seed");
    let url = servers[0].url("root", None);
    let names = ["shard-001", "shard-002", "shard-003"];
    let toml = toml(
        "interval = \"1h\"\nquery_timeout = \"5s\"",
        &names.map(|n| (n, url.clone())),
    );
    let app = spawn_app(settings(&toml)).await;
    // The first poll of every shard is at once, so /readyz needs no hour.
    app.wait_ready().await;
    app.wait_until("every shard scheduled after its first poll", |app| {
        let all = names.iter().all(|n| schedule(&shard(app, n)).is_some());
        async move { all }
    })
    .await;
    let hour = Duration::from_secs(3600);
    let next: Vec<DateTime<Utc>> = names
        .iter()
        .map(|n| shard(&app, n).next_poll_at.expect("scheduled"))
        .collect();
    let offsets: Vec<Duration> = names.iter().map(|n| first_poll_offset(n, hour)).collect();
    // Exact to the nanosecond: the schedule is kept from one anchor.
    for i in 1..names.len() {
        let shown = (next[i] - next[0]).num_nanoseconds().unwrap();
        let planned = offsets[i].as_nanos() as i64 - offsets[0].as_nanos() as i64;
        assert_eq!(shown, planned, "{names:?} {next:?} {offsets:?}");
    }
    // Spread: not within the same minute of the hour.
    let mut sorted = offsets.clone();
    sorted.sort();
    assert!(
        sorted
            .windows(2)
            .all(|w| w[1] - w[0] >= Duration::from_secs(60)),
        "{offsets:?}"
    );
    for n in names {
        let s = shard(&app, n);
        let (last, next) = (s.last_poll.unwrap(), s.next_poll_at.unwrap());
        assert!(
            next > last && whole(next - last) < hour,
            "{n}: {last} {next}"
        );
    }
    let (_, doc) = app.get_json("/api/shards").await;
    for s in doc["shards"].as_array().unwrap() {
        assert!(s["next_poll_at"].is_string(), "{s}");
        assert_eq!(s["consecutive_failures"], 0, "{s}");
    }
    app.stop().await;
}

/// A column's incident on a shard polled rarely is not resolved by the polls of another
/// shard, however many: the pager counts each shard's own polls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_on_a_slow_polled_shard_does_not_resolve_because_another_shard_is_polled_often()
{
    let servers = start_servers(&["rare", "often"]);
    servers[0]
        .exec(
            "CREATE DATABASE app;
CREATE TABLE app.orders (id TINYINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=250;",
        )
        .expect("seed");
    servers[1].exec(COUNTERS_SQL).expect("seed");
    let toml = format!(
        "{}[webhook]\nurl = \"http://127.0.0.1:1/hook\"\nmin_severity = \"critical\"\n",
        toml(
            "interval = \"1h\"\nquery_timeout = \"5s\"",
            &[
                ("rare", servers[0].url("root", None)),
                ("often", servers[1].url("root", None)),
            ],
        )
    );
    let (poller, store) = poller(&toml);
    let pager = Pager::new(&settings(&toml), Arc::new(Metrics::new()))
        .expect("pager")
        .expect("a notifier");
    let open = |pager: &Pager| incidents::json(pager)[0]["open"].as_array().unwrap().len();

    poller.poll_once().await;
    pager.evaluate(&store.read(), Utc::now());
    assert_eq!(open(&pager), 1, "{}", incidents::json(&pager));

    // Fixed; the next poll of `rare` sees it ok: one of the two ok polls in a row.
    servers[0]
        .exec("ALTER TABLE app.orders MODIFY id BIGINT NOT NULL AUTO_INCREMENT;")
        .expect("alter");
    poller.poll_once().await;
    pager.evaluate(&store.read(), Utc::now());
    assert_eq!(open(&pager), 1, "{}", incidents::json(&pager));

    // `often` finishes poll after poll (as it would on its own schedule) while `rare` is
    // not polled: every evaluation sees the same poll of `rare`.
    for _ in 0..5 {
        store_often_polled(&store);
        pager.evaluate(&store.read(), Utc::now());
    }
    assert_eq!(store.read().shards[1].polls, 7);
    assert_eq!(open(&pager), 1, "{}", incidents::json(&pager));

    // The next poll of `rare` is the second ok one in a row.
    poller.poll_once().await;
    pager.evaluate(&store.read(), Utc::now());
    assert_eq!(open(&pager), 0, "{}", incidents::json(&pager));
    poller.close().await;
}

/// The same on the real schedule: a shard whose poll stalls (its server frozen, the poll
/// waiting within its limits) is not failed, only slow; meanwhile the other shard is polled
/// every interval and each of its polls is evaluated, yet the stalled shard's incident stays
/// open until its own polls have seen the column ok.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_stays_open_while_its_shard_stalls_and_another_is_polled_every_interval() {
    let servers = start_servers(&["stalls", "steady"]);
    servers[0]
        .exec(
            "CREATE DATABASE app;
CREATE TABLE app.orders (id TINYINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=250;",
        )
        .expect("seed");
    servers[1].exec(COUNTERS_SQL).expect("seed");
    let toml = format!(
        "{}[webhook]\nurl = \"http://127.0.0.1:1/hook\"\nmin_severity = \"critical\"\n",
        toml(
            "interval = \"500ms\"\nquery_timeout = \"20s\"\nshard_timeout = \"20s\"",
            &[
                ("stalls", servers[0].url("root", None)),
                ("steady", servers[1].url("root", None)),
            ],
        )
    );
    let app = spawn_app(settings(&toml)).await;
    let open = |app: &TestApp| {
        incidents::json(&app.pager())[0]["open"]
            .as_array()
            .map(|a| a.len())
            .unwrap_or(0)
    };
    app.wait_until("the incident opens", |app| {
        let opened = open(app) == 1;
        async move { opened }
    })
    .await;

    servers[0]
        .exec("ALTER TABLE app.orders MODIFY id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT;")
        .expect("alter");
    // One poll of `stalls` sees the column ok (one of the two in a row that resolve);
    // then its server freezes before the next poll (half an interval later at least) ends.
    app.wait_until(
        "a poll of the stalling shard sees the wider column",
        |app| {
            let ok = app.store.read().shards[0]
                .columns
                .iter()
                .any(|c| c.id.table == "orders" && c.max == u64::MAX);
            async move { ok }
        },
    )
    .await;
    servers[0].freeze();
    let (stalls_polls, steady_polls) = {
        let snap = app.store.read();
        (snap.shards[0].polls, snap.shards[1].polls)
    };
    app.wait_until("the steady shard polled five more times", |app| {
        let more = app.store.read().shards[1].polls >= steady_polls + 5;
        async move { more }
    })
    .await;
    // Five evaluations later, with no further poll of `stalls`, its incident is open.
    assert_eq!(app.store.read().shards[0].polls, stalls_polls);
    assert_eq!(open(&app), 1, "{}", incidents::json(&app.pager()));
    servers[0].thaw();
    app.wait_until("the incident resolves", |app| {
        let resolved = open(app) == 0;
        async move { resolved }
    })
    .await;
    let snap = app.store.read().shards[0].clone();
    assert!(snap.polls > stalls_polls);
    assert_eq!(snap.poll_errors, 0);
    app.stop().await;
}

/// Records one more successful poll of the second shard, with the columns it had, as its
/// own task would.
fn store_often_polled(store: &headroom::state::Store) {
    let s = store.read().shards[1].clone();
    store.shard_succeeded(
        &s.name,
        s.columns.to_vec(),
        s.unresolved.clone(),
        Duration::from_millis(5),
        Utc::now(),
    );
}

#[test]
fn shard_timeout_defaults_to_the_interval_and_is_read_when_set() {
    let base = "[[shards]]\nname = \"a\"\nurl = \"mysql://monitor@db1:3306\"\n";
    let s = settings(&format!("[poll]\ninterval = \"30s\"\n{base}"));
    assert_eq!(s.poll.shard_timeout, Duration::from_secs(30));
    let s = settings(base);
    assert_eq!(s.poll.shard_timeout, Duration::from_secs(60));
    let s = settings(&format!("[poll]\nshard_timeout = \"45s\"\n{base}"));
    assert_eq!(s.poll.shard_timeout, Duration::from_secs(45));
    let problems = headroom::config::from_toml_str(
        &format!("[poll]\nshard_timeout = \"0s\"\n{base}"),
        &|_| None,
    )
    .expect_err("a zero limit");
    assert!(
        problems
            .iter()
            .any(|p| p.key == "poll.shard_timeout" && p.message.contains("longer than zero")),
        "{problems:?}"
    );
}
