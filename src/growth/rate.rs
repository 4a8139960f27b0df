//! The growth rate of a history's samples, and the least-squares slope under it: exact
//! integer sums, floating point past their bounds.
//!
//! The growth rate is a least-squares slope. Two are computed: over the whole history
//! (steady, slow to move) and over the last [`SHORT_WINDOW`] (quick to see a surge); the
//! forecast takes the faster of the two, because a page that comes early is recoverable and
//! one that comes late is not.

use super::{Point, SHORT_WINDOW};

/// IDs per second between the two newest samples.
pub(super) fn last_interval_rate(points: &[Point]) -> Option<f64> {
    let [.., a, b] = points else { return None };
    let seconds = (b.at_ms - a.at_ms) as f64 / 1000.0;
    (seconds > 0.0).then(|| (b.value - a.value) as f64 / seconds)
}

/// The growth rate as of `now_ms`: the faster of the whole history's slope and the short
/// window's.
pub(super) fn rate(points: &[Point], now_ms: i64) -> Option<f64> {
    let long = slope(points);
    let short_from = now_ms - SHORT_WINDOW.as_millis() as i64;
    let short = slope(&points[points.partition_point(|p| p.at_ms < short_from)..]);
    match (long, short) {
        (Some(l), Some(s)) => Some(l.max(s)),
        (l, s) => l.or(s),
    }
}

/// Least-squares slope in units per second; `None` with fewer than two samples or no time
/// between them. Exact: integer sums over offsets from the first sample (milliseconds, and
/// IDs as `i128`), in one pass, then one division. With at most 2^8 samples spanning less
/// than 2^40 ms (35 years) every sum and product fits 128 bits (|x| < 2^40, |y| < 2^64:
/// Σxy < 2^112, n·Σxy and Σx·Σy < 2^120, n·Σxx and (Σx)² < 2^96); anything larger (never
/// held, at most [`MAX_POINTS`](super::MAX_POINTS) within the retention) takes [`slope_f64`].
fn slope(points: &[Point]) -> Option<f64> {
    let (first, last) = (points.first()?, points.last()?);
    if points.len() < 2 {
        return None;
    }
    let span_fits = last
        .at_ms
        .checked_sub(first.at_ms)
        .is_some_and(|span| (0..1 << 40).contains(&span));
    if points.len() > 1 << 8 || !span_fits {
        return slope_f64(points);
    }
    let (sx, sy, sxx, sxy) = sums_narrow(points).unwrap_or_else(|| sums(points));
    let n = points.len() as i128;
    let sx = i128::from(sx);
    let num = n * sxy - sx * sy;
    let den = n * sxx - sx * sx;
    if den <= 0 {
        return None;
    }
    // Per millisecond, to per second.
    Some(num as f64 * 1000.0 / den as f64)
}

/// Σx, Σy, Σxx and Σxy over offsets from the first sample, for [`slope`].
fn sums(points: &[Point]) -> (i64, i128, i128, i128) {
    let Some(first) = points.first() else {
        return (0, 0, 0, 0);
    };
    let (mut sx, mut sy, mut sxx, mut sxy) = (0i64, 0i128, 0i128, 0i128);
    for p in points {
        // Times increase: every offset lies within the span.
        let x = p.at_ms - first.at_ms;
        let y = i128::from(p.value) - i128::from(first.value);
        sx += x;
        sy += y;
        sxx += i128::from(x) * i128::from(x);
        sxy += i128::from(x) * y;
    }
    (sx, sy, sxx, sxy)
}

/// [`sums`] when every value is within 2^63 of the first (the usual case): the products
/// are then of two 64-bit numbers, cheaper than of 128-bit ones. `None` otherwise.
fn sums_narrow(points: &[Point]) -> Option<(i64, i128, i128, i128)> {
    let first = points.first()?;
    let (mut sx, mut sy, mut sxx, mut sxy) = (0i64, 0i128, 0i128, 0i128);
    let mut fits = true;
    for p in points {
        let x = p.at_ms - first.at_ms;
        let wide = i128::from(p.value) - i128::from(first.value);
        let y = wide as i64;
        fits &= i128::from(y) == wide;
        sx += x;
        sy += i128::from(y);
        sxx += i128::from(x) * i128::from(x);
        sxy += i128::from(x) * i128::from(y);
    }
    fits.then_some((sx, sy, sxx, sxy))
}

/// [`slope`] in floating point, two passes, for what does not fit its integer bounds.
fn slope_f64(points: &[Point]) -> Option<f64> {
    let first = points.first()?;
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let x = |p: &Point| (p.at_ms - first.at_ms) as f64 / 1000.0;
    // Converted from u64, not i128, which is several times cheaper.
    let y = |p: &Point| {
        if p.value >= first.value {
            (p.value - first.value) as f64
        } else {
            -((first.value - p.value) as f64)
        }
    };
    let (mut sx, mut sy) = (0f64, 0f64);
    for p in points {
        sx += x(p);
        sy += y(p);
    }
    let (mx, my) = (sx / n, sy / n);
    let (mut sxx, mut sxy) = (0f64, 0f64);
    for p in points {
        let (dx, dy) = (x(p) - mx, y(p) - my);
        sxx += dx * dx;
        sxy += dx * dy;
    }
    if sxx <= 0.0 {
        return None;
    }
    Some(sxy / sxx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn the_exact_slope_is_the_floating_point_one(
            steps in prop::collection::vec(
                (1i64..4_000_000, prop_oneof![0u64..10_000, 0u64..1 << 50]),
                1..241,
            ),
            first in prop_oneof![0u64..1_000, u64::MAX / 2..u64::MAX / 2 + 1_000],
        ) {
            let mut points = vec![Point { at_ms: -5_000, value: first }];
            for (dt, up) in steps {
                let last = points[points.len() - 1];
                let value = last.value.saturating_add(up);
                points.push(Point { at_ms: last.at_ms + dt, value });
            }
            let (exact, float) = (slope(&points), slope_f64(&points));
            prop_assert!(exact.is_some() && float.is_some());
            let (a, b) = (exact.unwrap_or(0.0), float.unwrap_or(0.0));
            prop_assert!((a - b).abs() <= a.abs().max(b.abs()) * 1e-9 + 1e-9, "{} vs {}", a, b);
        }
    }

    #[test]
    fn a_line_has_its_slope_exactly() {
        let line = |n: i64| -> Vec<Point> {
            (0..n)
                .map(|i| Point {
                    at_ms: 1_000 + i * 60_000,
                    value: u64::MAX - 1_000_000 + 60 * i as u64,
                })
                .collect()
        };
        assert_eq!(slope(&line(3)), Some(1.0));
        assert_eq!(slope(&line(241)), Some(1.0));
        // Past the integer bounds: the floating-point path.
        assert_eq!(slope(&line(300)).map(|s| (s * 1e6).round()), Some(1e6));
        assert_eq!(slope(&line(1)), None);
        // Values further apart than 2^63: the 128-bit products.
        let apart = [
            Point::default(),
            Point {
                at_ms: 1_000,
                value: u64::MAX,
            },
        ];
        let rate = slope(&apart).unwrap_or(0.0);
        assert!((rate / u64::MAX as f64 - 1.0).abs() < 1e-12, "{rate}");
        let same_time = [Point::default(), Point { at_ms: 0, value: 5 }];
        assert_eq!(slope(&same_time), None);
    }
}
