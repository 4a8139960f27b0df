//! The compact bytes of a history's samples, written and read on a 64-bit path for the
//! usual numbers and a 128-bit one for any.
//!
//! A history's samples are held compact: the oldest sample as it is, then for each further
//! one the change of its time step and of its value step over the previous one's (delta of
//! delta), zigzag varints. A steady series is a run of one- and two-byte numbers: a week at
//! the default interval is some 200 samples in about 450 bytes (a 16-byte sample each would
//! be 3.2 KB).

use super::Point;

/// Appends the samples after the first of `points` to `out`: for each, the change of its
/// time step (milliseconds) and of its value step over the previous sample's, each a
/// zigzag LEB128 varint. Only the samples from `from` on are written (what a record
/// changed; 0 or 1 for all of them): each against the two before it, so that the bytes
/// continue those of the samples before. The usual case (steps and their changes within
/// 64 bits) takes a 64-bit path; the 128-bit one writes the same bytes for anything larger.
pub(super) fn encode(points: &[Point], from: usize, out: &mut Vec<u8>) {
    let start = out.len();
    let from = from.max(1);
    if from >= points.len() {
        return;
    }
    out.reserve((points.len() - from) * 3);
    if encode_narrow(points, from, out).is_none() {
        out.truncate(start);
        encode_wide(points, from, out);
    }
}

/// [`encode`] in 64-bit arithmetic; `None` (having written part) when a number needs more.
fn encode_narrow(points: &[Point], from: usize, out: &mut Vec<u8>) -> Option<()> {
    let steps = |a: Point, b: Point| -> Option<(i64, i64)> {
        let dt = b.at_ms.checked_sub(a.at_ms)?;
        let dv = i64::try_from(b.value).ok()? - i64::try_from(a.value).ok()?;
        Some((dt, dv))
    };
    let (mut prev_dt, mut prev_dv) = match from {
        2.. => steps(points[from - 2], points[from - 1])?,
        _ => (0, 0),
    };
    for pair in points[from - 1..].windows(2) {
        let dt = pair[1].at_ms.checked_sub(pair[0].at_ms)?;
        let dv = i64::try_from(pair[1].value).ok()? - i64::try_from(pair[0].value).ok()?;
        put_varint_narrow(out, dt.checked_sub(prev_dt)?)?;
        put_varint_narrow(out, dv.checked_sub(prev_dv)?)?;
        (prev_dt, prev_dv) = (dt, dv);
    }
    Some(())
}

fn encode_wide(points: &[Point], from: usize, out: &mut Vec<u8>) {
    let steps = |a: Point, b: Point| {
        (
            i128::from(b.at_ms) - i128::from(a.at_ms),
            i128::from(b.value) - i128::from(a.value),
        )
    };
    let (mut prev_dt, mut prev_dv) = match from {
        2.. => steps(points[from - 2], points[from - 1]),
        _ => (0, 0),
    };
    for pair in points[from.max(1) - 1..].windows(2) {
        let dt = i128::from(pair[1].at_ms) - i128::from(pair[0].at_ms);
        let dv = i128::from(pair[1].value) - i128::from(pair[0].value);
        put_varint(out, dt - prev_dt);
        put_varint(out, dv - prev_dv);
        (prev_dt, prev_dv) = (dt, dv);
    }
}

/// The zigzag varint of `n` when it fits 63 bits (as [`put_varint`] writes it).
fn put_varint_narrow(out: &mut Vec<u8>, n: i64) -> Option<()> {
    if !(-(1i64 << 62)..(1i64 << 62)).contains(&n) {
        return None;
    }
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
    Some(())
}

/// Decodes what [`encode`] wrote after the last sample of `points` (which holds at least
/// the first). `None` when the bytes do not hold together: a truncated number, time that
/// does not move forward, a value out of range. What decoded before that stays in `points`.
/// `offsets` gets where each sample starts in `bytes`, then where the last ends.
pub(super) fn decode(bytes: &[u8], points: &mut Vec<Point>, offsets: &mut Vec<u32>) -> Option<()> {
    let before = (points.len(), offsets.len());
    points.reserve(bytes.len() / 2);
    let done = match decode_narrow(bytes, points, offsets) {
        Some(true) => Some(()),
        Some(false) => {
            // A number past 64 bits: again, in 128-bit arithmetic.
            points.truncate(before.0);
            offsets.truncate(before.1);
            decode_wide(bytes, points, offsets)
        }
        None => None,
    };
    offsets.push(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
    done
}

/// [`decode`] in 64-bit arithmetic: `Some(false)` when a number needs more (some samples
/// may have been pushed), `None` when the bytes do not hold together.
fn decode_narrow(bytes: &[u8], points: &mut Vec<Point>, offsets: &mut Vec<u32>) -> Option<bool> {
    let last = *points.last()?;
    let Ok(mut value) = i64::try_from(last.value) else {
        return Some(false);
    };
    let mut at = last.at_ms;
    let (mut dt, mut dv) = (0i64, 0i64);
    let mut pos = 0;
    while pos < bytes.len() {
        offsets.push(pos as u32);
        let (ddt, ddv) = match two_short(bytes, pos) {
            Some((ddt, ddv, len)) => {
                pos += len;
                (ddt, ddv)
            }
            None => {
                let (Some(ddt), Some(ddv)) = (
                    get_varint_narrow(bytes, &mut pos)?,
                    get_varint_narrow(bytes, &mut pos)?,
                ) else {
                    return Some(false);
                };
                (ddt, ddv)
            }
        };
        let (Some(t), Some(v)) = (dt.checked_add(ddt), dv.checked_add(ddv)) else {
            return Some(false);
        };
        (dt, dv) = (t, v);
        if dt <= 0 {
            return None;
        }
        let (Some(a), Some(v)) = (at.checked_add(dt), value.checked_add(dv)) else {
            return Some(false);
        };
        (at, value) = (a, v);
        points.push(Point {
            at_ms: at,
            value: u64::try_from(value).ok()?,
        });
    }
    Some(true)
}

/// The two numbers of a sample when each takes one or two bytes (nearly every sample of a
/// steady series), with the bytes they take; `None` when one is longer or fewer than four
/// bytes are left. Read from one 32-bit word, without a branch on their lengths (which a
/// mix of lengths would mispredict).
#[inline(always)]
fn two_short(bytes: &[u8], pos: usize) -> Option<(i64, i64, usize)> {
    let word = u32::from_le_bytes(bytes.get(pos..pos.checked_add(4)?)?.try_into().ok()?);
    // One number at the bottom of `w`: its value, its length, and whether it is longer.
    let short = |w: u32| {
        let two = (w >> 7) & 1;
        let z = (w & 0x7f) | ((w >> 1) & 0x3f80 & 0u32.wrapping_sub(two));
        (z, 1 + two, two & (w >> 15))
    };
    let (a, a_len, a_long) = short(word);
    let (b, b_len, b_long) = short(word >> (8 * a_len));
    if a_long | b_long != 0 {
        return None;
    }
    let unzig = |z: u32| i64::from((z >> 1) as i32 ^ -((z & 1) as i32));
    Some((unzig(a), unzig(b), (a_len + b_len) as usize))
}

/// A zigzag varint of at most 63 bits: `Some(None)` when it is longer (read past it),
/// `None` when the bytes end inside it. Those of one and two bytes (nearly all of a steady
/// series) are read inline.
#[inline(always)]
fn get_varint_narrow(bytes: &[u8], pos: &mut usize) -> Option<Option<i64>> {
    let first = u64::from(*bytes.get(*pos)?);
    // Without a branch on the length, which a mix of one- and two-byte numbers would
    // mispredict: the second byte counts only when the first says it follows.
    let second = u64::from(bytes.get(*pos + 1).copied().unwrap_or(0x80));
    let two = first >> 7;
    if two & (second >> 7) != 0 {
        let (n, next) = get_varint_narrow_long(bytes, *pos)?;
        *pos = next;
        return Some(n);
    }
    let z = (first & 0x7f) | ((second << 7) & 0u64.wrapping_sub(two));
    *pos += 1 + two as usize;
    Some(Some(((z >> 1) as i64) ^ -((z & 1) as i64)))
}

/// [`get_varint_narrow`] for any length, from `pos`; with where the number ends.
#[inline(never)]
fn get_varint_narrow_long(bytes: &[u8], mut pos: usize) -> Option<(Option<i64>, usize)> {
    let first = *bytes.get(pos)?;
    pos += 1;
    if first < 0x80 {
        return Some((
            Some(i64::from((first >> 1) as i8 ^ -((first & 1) as i8))),
            pos,
        ));
    }
    let mut z = u64::from(first & 0x7f);
    let mut shift = 7;
    loop {
        let byte = *bytes.get(pos)?;
        pos += 1;
        if shift > 56 {
            // Past 63 bits: skip the rest of the number, and say so.
            let mut b = byte;
            while b & 0x80 != 0 {
                b = *bytes.get(pos)?;
                pos += 1;
            }
            return Some((None, pos));
        }
        z |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some((Some(((z >> 1) as i64) ^ -((z & 1) as i64)), pos));
        }
        shift += 7;
    }
}

fn decode_wide(bytes: &[u8], points: &mut Vec<Point>, offsets: &mut Vec<u32>) -> Option<()> {
    let last = *points.last()?;
    let (mut at, mut value) = (i128::from(last.at_ms), i128::from(last.value));
    let (mut dt, mut dv) = (0i128, 0i128);
    let mut pos = 0;
    while pos < bytes.len() {
        offsets.push(pos as u32);
        dt = dt.checked_add(get_varint(bytes, &mut pos)?)?;
        dv = dv.checked_add(get_varint(bytes, &mut pos)?)?;
        if dt <= 0 {
            return None;
        }
        at = at.checked_add(dt)?;
        value = value.checked_add(dv)?;
        points.push(Point {
            at_ms: i64::try_from(at).ok()?,
            value: u64::try_from(value).ok()?,
        });
    }
    Some(())
}

pub(super) fn put_varint(out: &mut Vec<u8>, n: i128) {
    if (-64..64).contains(&n) {
        // The common case, one byte: zigzag without the 128-bit shifts.
        out.push((((n as i8) << 1) ^ ((n as i8) >> 7)) as u8);
        return;
    }
    let mut z = ((n << 1) ^ (n >> 127)) as u128;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn get_varint(bytes: &[u8], pos: &mut usize) -> Option<i128> {
    let first = *bytes.get(*pos)?;
    if first < 0x80 {
        // The common case, one byte.
        *pos += 1;
        return Some(i128::from((first >> 1) as i8 ^ -((first & 1) as i8)));
    }
    let mut z = 0u128;
    let mut shift = 0u32;
    loop {
        let byte = *bytes.get(*pos)?;
        *pos += 1;
        let bits = u128::from(byte & 0x7f);
        if shift > 126 || (shift == 126 && bits > 3) {
            return None;
        }
        z |= bits << shift;
        if byte & 0x80 == 0 {
            return Some(((z >> 1) as i128) ^ -((z & 1) as i128));
        }
        shift += 7;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn the_64_bit_paths_write_and_read_what_the_128_bit_ones_do(
            steps in prop::collection::vec(
                (
                    prop_oneof![1i64..120_000, 1i64..i64::MAX / 4],
                    prop_oneof![0u64..10_000, any::<u64>()],
                ),
                1..40,
            ),
            first in prop_oneof![0u64..1_000, any::<u64>()],
        ) {
            let mut points = vec![Point { at_ms: -5_000, value: first }];
            for (dt, up) in steps {
                let last = points[points.len() - 1];
                let Some(at_ms) = last.at_ms.checked_add(dt) else { break };
                let value = last.value.saturating_add(up);
                points.push(Point { at_ms, value });
            }
            let (mut fast, mut wide) = (Vec::new(), Vec::new());
            encode(&points, 0, &mut fast);
            encode_wide(&points, 1, &mut wide);
            prop_assert_eq!(&fast, &wide);
            let (mut back, mut offsets) = (vec![points[0]], Vec::new());
            prop_assert!(decode(&fast, &mut back, &mut offsets).is_some());
            prop_assert_eq!(&back, &points);
            prop_assert_eq!(offsets.len(), points.len());
            // Encoding again from any sample, after the bytes of those before it.
            for from in 1..=points.len() {
                let mut again = fast[..offsets[from - 1] as usize].to_vec();
                encode(&points, from, &mut again);
                prop_assert_eq!(&again, &fast, "from {}", from);
            }
            let mut back_wide = vec![points[0]];
            prop_assert!(decode_wide(&fast, &mut back_wide, &mut Vec::new()).is_some());
            prop_assert_eq!(&back_wide, &points);
        }
    }
}
