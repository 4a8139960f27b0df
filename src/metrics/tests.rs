//! Every family's names and values, on hand-built stores.

use super::columns::{escape_label, sample};
use super::*;
use crate::config::MetricColumns;
use crate::headroom::Ppm;

#[test]
fn label_values_are_escaped() {
    let mut out = String::new();
    escape_label(&mut out, "we\"ird\\na\nme");
    assert_eq!(out, "we\\\"ird\\\\na\\nme");
}

#[test]
fn a_source_exports_its_status() {
    let settings = crate::config::testing::settings(
        "[[sources]]\nname = \"tickets\"\nkind = \"ticket_server\"\n\
         servers = [\"mysql://u@t:3306/tickets\"]\ntable = \"Tickets64\"\n",
    );
    let store = crate::state::Store::new(&settings);
    // 90 % of INT: critical by the default ratio thresholds.
    let int = crate::headroom::IntType::new(crate::headroom::Width::Int, false);
    crate::sources::assess::round(
        &store,
        "tickets",
        &[("t:3306", 1_932_735_283, int, (1, 1), None)],
    );
    let metrics = Metrics::new();
    let text = metrics.render(&store.read());
    assert!(
        text.contains("headroom_source_status{source=\"tickets\"} 2\n"),
        "{text}"
    );
}

/// A store with one shard `s` holding INT columns at these currents (max 2147483647);
/// `t2` is type-mismatched, `t3` grows to run out within 30 days.
fn fleet(currents: &[i128]) -> (crate::state::Store, Snapshot) {
    use crate::headroom::{IntType, Width};
    let settings = crate::config::testing::settings("");
    let store = crate::state::Store::new(&settings);
    let columns = currents
        .iter()
        .enumerate()
        .map(|(i, &current)| {
            let id = crate::inventory::ColumnId::new("app", &format!("t{i}"), "id");
            let int = IntType::new(Width::Int, false);
            crate::measure::fixture::column("s", id, int, current)
                .type_mismatch(i == 2)
                .forecast(crate::growth::Forecast {
                    seconds_to_exhaustion: (i == 3).then_some(30 * 86_400),
                    growth_per_second: (i == 3).then_some(800.0),
                    ..crate::growth::Forecast::NONE
                })
                .build()
        })
        .collect();
    store.shard_succeeded(
        "s",
        columns,
        Vec::new(),
        std::time::Duration::from_millis(1),
        chrono::Utc::now(),
    );
    let snapshot = store.read().clone();
    (store, snapshot)
}

fn rendered(settings: MetricsSettings, snapshot: &Snapshot) -> String {
    let metrics = Metrics::with_settings(settings);
    metrics.render(snapshot)
}

fn has_series(text: &str, table: &str) -> bool {
    text.lines().any(|l| {
        l.starts_with("headroom_column_current{") && l.contains(&format!("table=\"{table}\""))
    })
}

#[test]
fn at_risk_exports_only_columns_at_warning_mismatched_or_running_out() {
    // t0 at 1 %, t1 at 75 % (warning), t2 mismatched, t3 runs out in 30 days, t4 at 50 %.
    let (_store, snap) = fleet(&[21_474_836, 1_610_612_736, 10, 10, 1_073_741_824]);
    let at_risk = MetricsSettings {
        columns: MetricColumns::AtRisk,
        ..MetricsSettings::default()
    };
    let text = rendered(at_risk, &snap);
    let exported: Vec<bool> = (0..5)
        .map(|i| has_series(&text, &format!("t{i}")))
        .collect();
    assert_eq!(exported, [false, true, true, true, false], "{text}");
    let with_min = MetricsSettings {
        min_ratio: Ppm::from_ratio(0.5).unwrap(),
        ..at_risk
    };
    let text = rendered(with_min, &snap);
    let exported: Vec<bool> = (0..5)
        .map(|i| has_series(&text, &format!("t{i}")))
        .collect();
    assert_eq!(exported, [false, true, true, true, true], "{text}");
    let text = rendered(MetricsSettings::default(), &snap);
    assert!(
        (0..5).all(|i| has_series(&text, &format!("t{i}"))),
        "{text}"
    );
}

#[test]
fn shard_aggregates_count_every_status_and_the_worst_ratio_whatever_is_exported() {
    let (_store, snap) = fleet(&[21_474_836, 1_610_612_736, 2_000_000_000]);
    let at_risk = MetricsSettings {
        columns: MetricColumns::AtRisk,
        ..MetricsSettings::default()
    };
    let text = rendered(at_risk, &snap);
    for line in [
        "headroom_shard_columns{shard=\"s\",status=\"ok\"} 1\n",
        "headroom_shard_columns{shard=\"s\",status=\"warning\"} 1\n",
        "headroom_shard_columns{shard=\"s\",status=\"critical\"} 1\n",
        "headroom_shard_columns{shard=\"s\",status=\"exhausted\"} 0\n",
    ] {
        assert!(text.contains(line), "{line} missing in {text}");
    }
    let worst = 2_000_000_000f64 / 2_147_483_647f64;
    assert!(
        text.contains(&format!(
            "headroom_shard_max_used_ratio{{shard=\"s\"}} {worst}\n"
        )),
        "{text}"
    );
}

#[test]
fn sparse_column_families_are_written_only_when_set_and_remaining_is_gone() {
    let (_store, snap) = fleet(&[10, 10, 10]);
    let text = rendered(MetricsSettings::default(), &snap);
    let count = |family: &str| {
        text.lines()
            .filter(|l| l.starts_with(&format!("{family}{{")))
            .count()
    };
    assert_eq!(count("headroom_column_current"), 3);
    assert_eq!(count("headroom_column_status"), 0, "every column is ok");
    assert_eq!(count("headroom_column_growth_per_second"), 0);
    assert_eq!(count("headroom_column_type_mismatch"), 1);
    assert_eq!(count("headroom_column_silenced"), 0);
    assert_eq!(count("headroom_column_remaining"), 0);
    assert!(text.contains(
        "headroom_column_max{shard=\"s\",schema=\"app\",table=\"t0\",column=\"id\",kind=\"auto_increment\"} 2147483647\n"
    ));
}

#[test]
fn a_reload_drops_the_series_of_what_it_removed_and_keeps_the_rest() {
    let shards = |names: &[&str], servers: &str| {
        let mut toml = String::new();
        for n in names {
            toml.push_str(&format!(
                "[[shards]]\nname = \"{n}\"\nurl = \"mysql://u@h/\"\n"
            ));
        }
        toml.push_str(&format!(
            "[[sources]]\nname = \"tickets\"\nkind = \"ticket_server\"\n\
             servers = [{servers}]\ntable = \"Tickets64\"\n"
        ));
        crate::config::from_toml_str(&toml, &|_| None).expect("settings")
    };
    let before = shards(&["s", "t"], "\"mysql://u@a:1/x\", \"mysql://u@b:1/x\"");
    let store = crate::state::Store::new(&before);
    let metrics = Metrics::new();
    let at = chrono::Utc::now();
    for name in ["s", "t"] {
        store.shard_succeeded(name, Vec::new(), Vec::new(), Default::default(), at);
    }
    let int = crate::headroom::IntType::new(crate::headroom::Width::Int, false);
    let read = |server| (server, 5, int, (1, 1), None);
    crate::sources::assess::round(&store, "tickets", &[read("a:1"), read("b:1")]);
    let text = metrics.render(&store.read());
    assert!(
        text.contains("headroom_shard_up{shard=\"s\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("server=\"a:1\""), "{text}");

    let after = shards(&["t", "u"], "\"mysql://u@b:1/x\"");
    let removed = store.reconfigure(&after);
    assert_eq!(removed.shards, ["s"]);
    assert_eq!(
        removed.servers,
        [("tickets".to_string(), "a:1".to_string())]
    );
    assert!(removed.sources.is_empty());
    metrics.forget(&removed);
    let text = metrics.render(&store.read());
    assert!(!text.contains("shard=\"s\""), "{text}");
    assert!(!text.contains("server=\"a:1\""), "{text}");
    assert!(
        text.contains("headroom_shard_up{shard=\"t\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("headroom_source_current{server=\"b:1\",source=\"tickets\"} 5\n"),
        "{text}"
    );
    let snap = store.read();
    let kept: Vec<(&str, bool)> = snap
        .shards
        .iter()
        .map(|s| (s.name.as_str(), s.polled))
        .collect();
    assert_eq!(kept, [("t", true), ("u", false)]);
    assert_eq!(snap.sources[0].servers.len(), 1);
    assert_eq!(snap.sources[0].servers[0].current, Some(5));
}

#[test]
fn statuses_are_numbered_in_order_of_urgency() {
    assert_eq!(
        Status::ALL.map(status_value),
        [0.0, 1.0, 2.0, 3.0],
        "the alert rules compare these numbers"
    );
}

#[test]
fn samples_are_written_as_prometheus_reads_them() {
    assert_eq!(sample(2_147_483_647.0), "2147483647");
    assert_eq!(sample(0.5), "0.5");
    assert_eq!(sample(-11.0), "-11");
    assert_eq!(sample(f64::INFINITY), "+Inf");
}
