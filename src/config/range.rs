//! Shard ranges: `name = "shard-{001..256}"` written once stands for 256 shards. Pure.
//!
//! Only `{<digits>..<digits>}` is a range; any other brace (`{table}` in a password file's
//! path, `{..3}`, `{a..b}`) is text. Numbers keep the zero-padding they are written with:
//! when either bound starts with a `0`, every number is padded to the width of the wider
//! bound as written (`{001..256}` → `001` … `256`; `{1..12}` → `1` … `12`).

use std::ops::Range;

/// The most entries one range may expand to.
pub const MAX_RANGE: u64 = 10_000;

/// One range found in a text: where it is, its bounds and the width its numbers take.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    /// Byte span of `{lo..hi}` in the text.
    span: Range<usize>,
    lo: u64,
    hi: u64,
    /// Zero-padded width; 0 for none.
    width: usize,
}

impl Found {
    fn len(&self) -> u64 {
        self.hi - self.lo + 1
    }

    /// The text with the range replaced by its `i`-th number.
    fn nth(&self, text: &str, i: u64) -> String {
        let n = self.lo + i;
        format!(
            "{}{n:0width$}{}",
            &text[..self.span.start],
            &text[self.span.end..],
            width = self.width
        )
    }
}

/// Finds the ranges in `text`: `Ok(None)` without one, an error for a reversed or huge
/// range, or more than one.
fn find(text: &str) -> Result<Option<Found>, String> {
    let bytes = text.as_bytes();
    let mut found: Option<Found> = None;
    let mut at = 0;
    while let Some(offset) = text[at..].find('{') {
        let start = at + offset;
        at = start + 1;
        let Some((lo_text, hi_text, end)) = parse_at(bytes, start) else {
            continue;
        };
        if found.is_some() {
            return Err("holds more than one {N..M} range: write one".to_string());
        }
        let (Ok(lo), Ok(hi)) = (lo_text.parse::<u64>(), hi_text.parse::<u64>()) else {
            return Err(format!(
                "range {{{lo_text}..{hi_text}}} is too large: at most {MAX_RANGE} entries"
            ));
        };
        if lo > hi {
            return Err(format!(
                "range {{{lo_text}..{hi_text}}} is reversed: write the lower bound first"
            ));
        }
        if hi - lo >= MAX_RANGE {
            return Err(format!(
                "range {{{lo_text}..{hi_text}}} is too large: {} entries, at most {MAX_RANGE}",
                u128::from(hi - lo) + 1
            ));
        }
        let padded = lo_text.len() > 1 && lo_text.starts_with('0')
            || hi_text.len() > 1 && hi_text.starts_with('0');
        let width = if padded {
            lo_text.len().max(hi_text.len())
        } else {
            0
        };
        found = Some(Found {
            span: start..end,
            lo,
            hi,
            width,
        });
        at = end;
    }
    Ok(found)
}

/// `{digits..digits}` starting at `bytes[start] == b'{'`: the two bounds and the end.
fn parse_at(bytes: &[u8], start: usize) -> Option<(&str, &str, usize)> {
    let digits = |from: usize| {
        let n = bytes[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        (n > 0).then_some(from + n)
    };
    let lo_end = digits(start + 1)?;
    if bytes.get(lo_end..lo_end + 2) != Some(b"..") {
        return None;
    }
    let hi_end = digits(lo_end + 2)?;
    if bytes.get(hi_end) != Some(&b'}') {
        return None;
    }
    // Every byte in between is an ASCII digit or a dot: the slices are on char boundaries.
    let lo = std::str::from_utf8(&bytes[start + 1..lo_end]).ok()?;
    let hi = std::str::from_utf8(&bytes[lo_end + 2..hi_end]).ok()?;
    Some((lo, hi, hi_end + 1))
}

/// Expands the fields of one `[[shards]]` entry, `(key, text)` with the name first: one
/// `Vec` of texts (in field order) per shard. A field without a range is the same in every
/// shard. A problem is `(key, message)`: a bad range, a range in another field but not in
/// the name, a range whose size differs from the name's.
pub fn expand(fields: &[(&str, &str)]) -> Result<Vec<Vec<String>>, Vec<(String, String)>> {
    let mut problems = Vec::new();
    let mut ranges = Vec::new();
    for (key, text) in fields {
        match find(text) {
            Ok(found) => ranges.push(found),
            Err(message) => {
                problems.push((key.to_string(), message));
                ranges.push(None);
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let Some((name_key, _)) = fields.first() else {
        return Ok(vec![Vec::new()]);
    };
    let count = ranges.first().cloned().flatten().map_or(1, |r| r.len());
    for ((key, _), range) in fields.iter().zip(&ranges).skip(1) {
        match (range, &ranges[0]) {
            (Some(r), None) => problems.push((
                key.to_string(),
                format!(
                    "has the range {{{}..{}}} but {name_key} has none: put the same range in {name_key}",
                    r.lo, r.hi
                ),
            )),
            (Some(r), Some(_)) if r.len() != count => problems.push((
                key.to_string(),
                format!(
                    "has a range of {} entries but {name_key} has one of {count}: the sizes must match",
                    r.len()
                ),
            )),
            _ => {}
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok((0..count)
        .map(|i| {
            fields
                .iter()
                .zip(&ranges)
                .map(|((_, text), range)| match range {
                    Some(r) => r.nth(text, i),
                    None => text.to_string(),
                })
                .collect()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(fields: &[(&str, &str)]) -> Vec<Vec<String>> {
        expand(fields).expect("expands")
    }

    fn problems(fields: &[(&str, &str)]) -> Vec<(String, String)> {
        expand(fields).expect_err("a problem")
    }

    #[test]
    fn a_padded_range_expands_in_name_and_url_keeping_the_written_width() {
        let out = names(&[
            ("name", "shard-{001..256}"),
            ("url", "mysql://m@db-{001..256}:3306/"),
        ]);
        assert_eq!(out.len(), 256);
        assert_eq!(out[0], ["shard-001", "mysql://m@db-001:3306/"]);
        assert_eq!(out[9], ["shard-010", "mysql://m@db-010:3306/"]);
        assert_eq!(out[255], ["shard-256", "mysql://m@db-256:3306/"]);
    }

    #[test]
    fn an_unpadded_range_is_not_padded_and_the_other_fields_may_pad_on_their_own() {
        let out = names(&[("name", "s{8..10}"), ("url", "mysql://m@h{08..10}/")]);
        assert_eq!(
            out,
            [
                ["s8", "mysql://m@h08/"],
                ["s9", "mysql://m@h09/"],
                ["s10", "mysql://m@h10/"]
            ]
        );
    }

    #[test]
    fn a_field_without_a_range_is_the_same_in_every_shard() {
        let out = names(&[
            ("name", "s-{1..2}"),
            ("url", "mysql://m@h/"),
            ("password_file", "pw-{1..2}"),
        ]);
        assert_eq!(
            out,
            [
                ["s-1", "mysql://m@h/", "pw-1"],
                ["s-2", "mysql://m@h/", "pw-2"]
            ]
        );
    }

    #[test]
    fn a_name_without_a_range_stays_as_it_is() {
        assert_eq!(
            names(&[("name", "shard-7"), ("url", "mysql://m@h/")]),
            [["shard-7", "mysql://m@h/"]]
        );
        assert_eq!(names(&[("name", "{5..5}")]), [["5"]]);
    }

    #[test]
    fn braces_that_are_not_digit_ranges_are_text() {
        let odd = [
            "{table}", "{..3}", "{1..}", "{a..b}", "{1...2}", "{1..2", "x{}y", "{{1..2}",
            "{ 1..2}", "{1..2 }", "{1.2}", "{-1..2}",
        ];
        for text in odd {
            let out = expand(&[("name", "n"), ("password_file", text)]);
            if text == "{{1..2}" {
                // The inner `{1..2}` is a range, outside a name without one.
                assert!(out.is_err(), "{text}");
                continue;
            }
            assert_eq!(
                out,
                Ok(vec![vec!["n".to_string(), text.to_string()]]),
                "{text}"
            );
        }
        // Hostile text around a real range is kept byte for byte.
        let out = names(&[("name", "`a{table}#é{1..2}--{x}")]);
        assert_eq!(out, [["`a{table}#é1--{x}"], ["`a{table}#é2--{x}"]]);
    }

    #[test]
    fn a_range_in_url_but_not_in_name_is_a_problem_naming_the_key() {
        assert_eq!(
            problems(&[("name", "shard"), ("url", "mysql://m@db-{1..3}/")]),
            [(
                "url".to_string(),
                "has the range {1..3} but name has none: put the same range in name".to_string()
            )]
        );
    }

    #[test]
    fn ranges_of_different_sizes_are_a_problem_naming_the_key() {
        assert_eq!(
            problems(&[
                ("name", "s{1..4}"),
                ("url", "mysql://m@h{1..4}/"),
                ("password_file", "p{0..4}")
            ]),
            [(
                "password_file".to_string(),
                "has a range of 5 entries but name has one of 4: the sizes must match".to_string()
            )]
        );
    }

    #[test]
    fn reversed_huge_and_repeated_ranges_are_problems() {
        let p = problems(&[("name", "s{9..1}")]);
        assert_eq!(p[0].0, "name");
        assert!(p[0].1.contains("is reversed"), "{p:?}");
        let p = problems(&[
            ("name", "s{1..10001}"),
            ("url", "h{1..99999999999999999999999}"),
        ]);
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(
            p[0].1,
            "range {1..10001} is too large: 10001 entries, at most 10000"
        );
        assert_eq!(p[1].0, "url");
        assert!(p[1].1.contains("is too large"), "{p:?}");
        assert_eq!(names(&[("name", "s{1..10000}")]).len(), 10_000);
        let p = problems(&[("name", "s{1..2}-{1..2}")]);
        assert_eq!(p[0].1, "holds more than one {N..M} range: write one");
    }
}
