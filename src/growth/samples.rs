//! A history's samples as a person reads them: wall-clock times, and the values as they were
//! read (the samples before the latest step kept out of the rate are held moved up by it;
//! here they are moved back down). What the column page charts and
//! `GET /api/columns/{shard}/{schema}/{table}/{column}/history` serves.

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::Jump;
use super::history::History;

/// The samples of one history, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Samples {
    /// `(when it was read, the value)`.
    pub points: Vec<(DateTime<Utc>, u64)>,
    /// The latest step kept out of the rate, within the retention.
    pub last_jump: Option<Jump>,
}

impl History {
    /// The samples held, dated from `now` (whose wall-clock time is `now_wall`). Samples
    /// before the latest step are given as read: moved down by what it added. Only the latest
    /// step is remembered: samples before an earlier one stay moved up by it.
    pub fn samples(&self, now: Instant, now_wall: DateTime<Utc>) -> Samples {
        let work = self.unpack();
        let now_ms = self.now_ms(now);
        let wall = |at_ms: i64| {
            let ago = chrono::TimeDelta::milliseconds(now_ms.saturating_sub(at_ms).max(0));
            now_wall.checked_sub_signed(ago).unwrap_or(now_wall)
        };
        let points = work
            .points
            .iter()
            .map(|p| {
                let value = match work.last_jump {
                    Some(j) if p.at_ms < j.at_ms => p.value.saturating_sub(j.excess),
                    _ => p.value,
                };
                (wall(p.at_ms), value)
            })
            .collect();
        let last_jump = work.last_jump.map(|j| Jump {
            at: wall(j.at_ms),
            from: j.from,
            to: j.to,
        });
        Samples { points, last_jump }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::growth::test_series::INT_MAX;

    #[test]
    fn samples_are_dated_from_now_and_given_as_read_across_a_step() {
        let start = Instant::now();
        let mut h = History::new(start);
        let minute = Duration::from_secs(60);
        // 60 a minute for five minutes, then a jump of a billion, then 60 a minute again.
        let values = [100, 160, 220, 280, 340, 1_000_000_400, 1_000_000_460];
        let mut at = start;
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                at += minute;
            }
            h.record_with_max(at, v, INT_MAX);
        }
        let wall = DateTime::parse_from_rfc3339("2030-01-01T00:06:00Z")
            .expect("a date")
            .with_timezone(&Utc);
        let samples = h.samples(at, wall);
        let minutes: Vec<(u32, u64)> = samples
            .points
            .iter()
            .map(|(t, v)| (chrono::Timelike::minute(t), *v))
            .collect();
        assert_eq!(
            minutes,
            [
                (0, 100),
                (1, 160),
                (2, 220),
                (3, 280),
                (4, 340),
                (5, 1_000_000_400),
                (6, 1_000_000_460)
            ]
        );
        let jump = samples.last_jump.expect("the step");
        assert_eq!((jump.from, jump.to), (340, 1_000_000_400));
        assert_eq!(jump.at.to_rfc3339(), "2030-01-01T00:05:00+00:00");
    }

    #[test]
    fn an_empty_history_has_no_samples() {
        let now = Instant::now();
        assert_eq!(
            History::new(now).samples(now, Utc::now()),
            Samples::default()
        );
    }
}
