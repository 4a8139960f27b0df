//! The rules of a history (rate, reset, steps, buckets, bounds), and its forecasts against
//! the reference model's on the same series.

use super::*;
use crate::growth::MAX_POINTS;
use crate::growth::reference;
use crate::growth::test_series::{INT_MAX, Sample, series};

#[tokio::test(start_paused = true)]
async fn a_linear_history_gives_its_rate_and_the_time_left() {
    let mut h = History::new(Instant::now());
    let mut value = 1_000_000_000i128;
    for _ in 0..120 {
        h.record(Instant::now(), value);
        tokio::time::advance(Duration::from_secs(60)).await;
        value += 6_000; // 100 IDs a second
    }
    let f = h.forecast(Instant::now(), INT_MAX);
    let g = f.growth_per_second.expect("growing");
    assert!((g - 100.0).abs() < 1e-6, "{g}");
    let last = value - 6_000;
    let expected = (i128::from(INT_MAX) - last) as f64 / 100.0;
    let got = f.seconds_to_exhaustion.expect("runs out") as f64;
    assert!((got - expected).abs() <= 1.0, "{got} vs {expected}");
}

#[tokio::test(start_paused = true)]
async fn a_flat_history_never_runs_out() {
    let mut h = History::new(Instant::now());
    for _ in 0..30 {
        h.record(Instant::now(), 42);
        tokio::time::advance(Duration::from_secs(60)).await;
    }
    let f = h.forecast(Instant::now(), INT_MAX);
    assert_eq!(f.growth_per_second, Some(0.0));
    assert_eq!(f.seconds_to_exhaustion, None);
}

#[tokio::test(start_paused = true)]
async fn a_value_that_drops_after_an_alter_starts_a_new_history() {
    let mut h = History::new(Instant::now());
    for i in 0..30 {
        h.record(Instant::now(), 2_000_000_000 + i * 1_000_000);
        tokio::time::advance(Duration::from_secs(60)).await;
    }
    // The table is rebuilt and its counter starts low, growing slowly.
    h.record(Instant::now(), 10);
    assert_eq!(h.len(), 1);
    assert_eq!(h.forecast(Instant::now(), INT_MAX).growth_per_second, None);
    tokio::time::advance(Duration::from_secs(60)).await;
    h.record(Instant::now(), 70);
    let f = h.forecast(Instant::now(), INT_MAX);
    assert!((f.growth_per_second.unwrap_or(0.0) - 1.0).abs() < 1e-9);
}

#[tokio::test(start_paused = true)]
async fn a_week_at_a_ten_second_interval_stays_within_the_bound() {
    let mut h = History::new(Instant::now());
    let mut value = 0i128;
    for _ in 0..(8 * 24 * 360) {
        h.record(Instant::now(), value);
        tokio::time::advance(Duration::from_secs(10)).await;
        value += 50;
    }
    assert!(h.len() <= MAX_POINTS, "{} points", h.len());
    assert!(h.len() > 160, "a week of buckets is kept: {}", h.len());
    let g = h
        .forecast(Instant::now(), u64::MAX)
        .growth_per_second
        .unwrap_or(0.0);
    assert!((g - 5.0).abs() < 1e-6, "{g}");
}

#[tokio::test(start_paused = true)]
async fn a_surge_is_seen_through_the_short_window() {
    let mut h = History::new(Instant::now());
    let mut value = 0i128;
    // A day at 1/s, then an hour at 100/s.
    for _ in 0..(24 * 60) {
        h.record(Instant::now(), value);
        tokio::time::advance(Duration::from_secs(60)).await;
        value += 60;
    }
    for _ in 0..60 {
        h.record(Instant::now(), value);
        tokio::time::advance(Duration::from_secs(60)).await;
        value += 6_000;
    }
    let g = h
        .forecast(Instant::now(), u64::MAX)
        .growth_per_second
        .unwrap_or(0.0);
    assert!(g > 90.0, "{g}");
}

/// The limits headroom applies when the configuration sets none.
fn default_limits() -> crate::policy::Limits {
    let toml = "[[shards]]\nname = \"s\"\nurl = \"mysql://u@h:3306/\"\n";
    crate::config::from_toml_str(toml, &|_| None)
        .expect("minimal configuration")
        .policy
        .default
}

/// Records `minutes` polls a minute apart, the value growing by `per_minute` each.
async fn grow(h: &mut History, value: &mut i128, minutes: usize, per_minute: i128, max: u64) {
    for _ in 0..minutes {
        tokio::time::advance(Duration::from_secs(60)).await;
        *value += per_minute;
        h.record_with_max(Instant::now(), *value, max);
    }
}

#[tokio::test(start_paused = true)]
async fn a_jump_of_a_tenth_of_the_type_keeps_the_rate_and_pages_nothing_by_time() {
    use crate::headroom::{Headroom, Status};
    let limits = default_limits();
    let mut h = History::new(Instant::now());
    let mut value = 200_000_000i128;
    h.record_with_max(Instant::now(), value, INT_MAX);
    // Six hours at 100 IDs a second.
    grow(&mut h, &mut value, 360, 6_000, INT_MAX).await;
    let before = value;
    // ALTER TABLE … AUTO_INCREMENT = current + 10 % of INT, within one interval.
    tokio::time::advance(Duration::from_secs(60)).await;
    value += 6_000 + 214_748_364;
    h.record_with_max(Instant::now(), value, INT_MAX);
    let after = value;
    let check = |h: &History, value: i128, when: &str| {
        let f = h.forecast(Instant::now(), INT_MAX);
        let g = f.growth_per_second.unwrap_or(0.0);
        assert!((g - 100.0).abs() <= 10.0, "{when}: {g} IDs/s");
        let status = limits.status(Headroom::new(value, INT_MAX), f.seconds_to_exhaustion);
        assert_eq!(status, Status::Ok, "{when}: {f:?}");
        assert_eq!(
            limits.time_status(f.seconds_to_exhaustion),
            Status::Ok,
            "{when}"
        );
        f
    };
    let f = check(&h, value, "at the jump");
    let jump = f.last_jump.expect("the jump is reported");
    assert_eq!((jump.from, jump.to), (before as u64, after as u64));
    assert_eq!(jump.ago, Duration::ZERO);
    for (minutes, when) in [
        (1, "a poll later"),
        (29, "half an hour later"),
        (90, "two hours later"),
    ] {
        grow(&mut h, &mut value, minutes, 6_000, INT_MAX).await;
        check(&h, value, when);
    }
    let f = h.forecast(Instant::now(), INT_MAX);
    assert_eq!(
        f.last_jump.map(|j| (j.from, j.to, j.ago)),
        Some((before as u64, after as u64, Duration::from_secs(120 * 60)))
    );
    assert_eq!(
        h.current().map(i128::from),
        Some(value),
        "current still counts the jump"
    );
}

#[tokio::test(start_paused = true)]
async fn a_sustained_tenfold_rate_is_picked_up_within_the_short_window() {
    for factor in [10, 20] {
        let mut h = History::new(Instant::now());
        let mut value = 100_000_000i128;
        h.record_with_max(Instant::now(), value, INT_MAX);
        // A day at 5,000 IDs a second (300,000 a minute), then `factor` times faster:
        // millions a minute, above 0.1 % of INT.
        grow(&mut h, &mut value, 24 * 60, 300_000, INT_MAX).await;
        grow(&mut h, &mut value, 60, 300_000 * factor, INT_MAX).await;
        let g = h
            .forecast(Instant::now(), INT_MAX)
            .growth_per_second
            .unwrap_or(0.0);
        let expected = 5_000.0 * factor as f64;
        assert!(
            (g - expected).abs() <= expected / 100.0,
            "{factor}x within the hour: {g}"
        );
        assert_eq!(h.forecast(Instant::now(), INT_MAX).last_jump, None);
    }
}

#[tokio::test(start_paused = true)]
async fn a_step_followed_by_the_same_high_rate_is_readmitted_as_growth() {
    let mut with = History::new(Instant::now());
    let mut without = History::new(Instant::now());
    let mut value = 100_000_000i128;
    let mut before = 0;
    for (i, (minutes, per_minute)) in [(24 * 60, 300_000), (1, 6_000_000), (1, 6_000_000)]
        .into_iter()
        .enumerate()
    {
        for _ in 0..minutes {
            tokio::time::advance(Duration::from_secs(60)).await;
            before = value;
            value += per_minute;
            with.record_with_max(Instant::now(), value, INT_MAX);
            without.record(Instant::now(), value);
        }
        let f = with.forecast(Instant::now(), INT_MAX);
        if i == 1 {
            assert_eq!(
                f.last_jump.map(|j| (j.from, j.to)),
                Some((before as u64, value as u64)),
                "provisional step"
            );
            assert!(f.growth_per_second.unwrap_or(0.0) < 5_001.0, "{f:?}");
        }
    }
    // Re-admitted: exactly as if no step had been told.
    let f = with.forecast(Instant::now(), INT_MAX);
    assert_eq!(f.last_jump, None);
    assert_eq!(f, without.forecast(Instant::now(), INT_MAX));
}

#[tokio::test(start_paused = true)]
async fn a_jump_on_an_idle_column_stays_a_jump_when_inserts_resume_slowly() {
    let mut h = History::new(Instant::now());
    let mut value = 1_000i128;
    h.record_with_max(Instant::now(), value, INT_MAX);
    // An hour without inserts, then ALTER TABLE … AUTO_INCREMENT = 1000000000, then a
    // few rows a minute.
    grow(&mut h, &mut value, 60, 0, INT_MAX).await;
    grow(&mut h, &mut value, 1, 999_999_000, INT_MAX).await;
    grow(&mut h, &mut value, 30, 3, INT_MAX).await;
    let f = h.forecast(Instant::now(), INT_MAX);
    assert_eq!(
        f.last_jump.map(|j| (j.from, j.to)),
        Some((1_000, 1_000_000_000))
    );
    assert!(f.growth_per_second.unwrap_or(1.0) < 0.1, "{f:?}");
    assert_eq!(
        default_limits().time_status(f.seconds_to_exhaustion),
        crate::headroom::Status::Ok
    );
}

#[tokio::test(start_paused = true)]
async fn bursts_small_for_the_type_are_growth_not_steps() {
    let mut with = History::new(Instant::now());
    let mut without = History::new(Instant::now());
    let mut value = 1_000i128;
    for (minutes, per_minute) in [(60, 60), (1, 600_000), (1, 60)] {
        for _ in 0..minutes {
            tokio::time::advance(Duration::from_secs(60)).await;
            value += per_minute;
            with.record_with_max(Instant::now(), value, INT_MAX);
            without.record(Instant::now(), value);
        }
    }
    // 10,000 times the rate, but 0.03 % of INT: growth as it would be with no step
    // detection at all.
    let f = with.forecast(Instant::now(), INT_MAX);
    assert_eq!(f.last_jump, None);
    assert_eq!(f, without.forecast(Instant::now(), INT_MAX));
}

#[tokio::test(start_paused = true)]
async fn no_step_is_told_before_a_rate_is_established() {
    let mut h = History::new(Instant::now());
    let mut value = 1_000i128;
    h.record_with_max(Instant::now(), value, INT_MAX);
    grow(&mut h, &mut value, 2, 60, INT_MAX).await;
    grow(&mut h, &mut value, 1, 500_000_000, INT_MAX).await;
    assert_eq!(h.forecast(Instant::now(), INT_MAX).last_jump, None);
}

#[tokio::test(start_paused = true)]
async fn an_exhausted_value_has_no_time_left() {
    let mut h = History::new(Instant::now());
    h.record(Instant::now(), i128::from(INT_MAX) + 5);
    assert_eq!(
        h.forecast(Instant::now(), INT_MAX).seconds_to_exhaustion,
        Some(0)
    );
}

/// Feeds `series` to the compact history and to the reference model, and checks after
/// every sample that they forecast the same within 1 %: rate, seconds to exhaustion and
/// the jump told.
fn same_forecasts(name: &str, series: &[Sample]) {
    let start = Instant::now();
    let mut at = start;
    let mut compact = History::new(start);
    let mut model = reference::History::new(start);
    for (i, &(after_ms, value, max)) in series.iter().enumerate() {
        at += Duration::from_millis(after_ms);
        let got = compact.record_and_forecast(at, value, max);
        model.record_with_max(at, value, max);
        let want = model.forecast(at, max);
        let within = |a: f64, b: f64| (a - b).abs() <= a.abs().max(b.abs()) / 100.0 + 1e-9;
        let rates = match (got.growth_per_second, want.growth_per_second) {
            (Some(a), Some(b)) => within(a, b),
            (a, b) => a == b,
        };
        let times = match (got.seconds_to_exhaustion, want.seconds_to_exhaustion) {
            (Some(a), Some(b)) => within(a as f64, b as f64) || a.abs_diff(b) <= 1,
            (a, b) => a == b,
        };
        assert!(rates && times, "{name}, sample {i}: {got:?} vs {want:?}");
        assert_eq!(got.last_jump, want.last_jump, "{name}, sample {i}");
        assert_eq!(compact.len(), model.len(), "{name}, sample {i}");
        // Re-encoded from the first changed sample, the bytes are those of a whole encoding.
        let mut whole = Vec::new();
        encode(&compact.unpack().points, 0, &mut whole);
        assert_eq!(&compact.tail[..], &whole[..], "{name}, sample {i}");
    }
}

const WEEK_AT_A_MINUTE: usize = 7 * 24 * 60;

#[test]
fn steady_growth_forecasts_as_the_reference_model_does() {
    let s = series(
        WEEK_AT_A_MINUTE + 24 * 60,
        60_000,
        1_000_000,
        INT_MAX,
        |_| 6_000,
    );
    same_forecasts("steady, a minute apart, 8 days", &s);
    let s = series(3 * 24 * 360, 10_000, 0, u64::MAX, |i| 500 + (i % 7) as i128);
    same_forecasts("steady with noise, 10 s apart", &s);
    let s = series(4 * 60 * 12, 5_000, 0, INT_MAX, |_| 5);
    same_forecasts("a 5 s interval, thinned", &s);
}

#[test]
fn bursts_and_a_flat_column_forecast_as_the_reference_model_does() {
    let s = series(3 * 24 * 60, 60_000, 1_000, INT_MAX, |i| {
        if i % 97 == 0 {
            600_000
        } else if i % 13 == 0 {
            0
        } else {
            60
        }
    });
    same_forecasts("bursts", &s);
    let s = series(2 * 24 * 60, 60_000, 42, INT_MAX, |_| 0);
    same_forecasts("flat", &s);
    let s = series(24 * 60, 60_000, 5, INT_MAX, |i| i128::from(i % 60 == 0));
    same_forecasts("nearly flat", &s);
}

#[test]
fn jumps_and_resets_forecast_as_the_reference_model_does() {
    // ALTERs of a tenth of INT every day, one step followed by a sustained faster rate
    // (re-admitted), then a table rebuilt (a reset).
    let s = series(4 * 24 * 60, 60_000, 100_000_000, INT_MAX, |i| match i {
        i if i > 0 && i % 1_440 == 0 => 214_748_364,
        i if (2_000..2_060).contains(&i) => 6_000_000,
        _ => 300_000,
    });
    same_forecasts("jumps and a faster rate", &s);
    let mut s = series(600, 60_000, 2_000_000_000, INT_MAX, |_| 1_000);
    s.extend(series(600, 60_000, 10, INT_MAX, |_| 60));
    s.extend(series(10, 60_000, 2_147_483_000, INT_MAX, |_| 100));
    same_forecasts("a reset, then exhaustion", &s);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn any_series() -> impl Strategy<Value = Vec<Sample>> {
        let sample = (
            prop_oneof![Just(60_000u64), 1u64..600_000, Just(0u64)],
            prop_oneof![
                8 => 0i128..10_000,
                1 => 0i128..3_000_000_000,
                1 => -1_000_000i128..0,
            ],
        );
        (
            prop::collection::vec(sample, 1..600),
            prop_oneof![Just(INT_MAX), Just(u64::MAX)],
        )
            .prop_map(|(steps, max)| {
                let mut value = 1_000_000i128;
                steps
                    .into_iter()
                    .map(|(after, change)| {
                        value = (value + change).max(0);
                        (after, value, max)
                    })
                    .collect()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_series_forecasts_as_the_reference_model_does(s in any_series()) {
            same_forecasts("generated", &s);
        }

    }
}

#[test]
fn a_week_at_the_default_interval_is_held_in_well_under_a_kilobyte() {
    let s = series(WEEK_AT_A_MINUTE, 60_000, 1_000_000_000, INT_MAX, |i| {
        5_000 + (i % 11) as i128 * 40
    });
    let start = Instant::now();
    let (mut at, mut h) = (start, History::new(start));
    for (after, value, max) in s {
        at += Duration::from_millis(after);
        h.record_with_max(at, value, max);
    }
    let bytes = size_of::<History>() + h.heap_bytes();
    assert!(
        h.len() > 190,
        "a week of buckets and the raw window: {}",
        h.len()
    );
    assert_eq!(size_of::<History>(), 48);
    // Some 200 samples: about 2 bytes for the time and 2 for the value of each.
    assert!(bytes < 900, "{} samples in {bytes} bytes", h.len());
}
