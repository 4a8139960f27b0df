//! The pure arithmetic of ID headroom: integer column types and their maxima, how much of
//! a type is used, and the status that follows from the thresholds. No I/O lives here:
//! readers turn rows into these values, the poller wires them together.
//!
//! Everything is an exact integer. Type maxima go up to `u64::MAX` (BIGINT UNSIGNED) and a
//! column may already be asked to hold more than its maximum, so `current` and `remaining`
//! are `i128`. Floats appear only in [`Headroom::used_ratio`], for JSON and gauges.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// The five MySQL/MariaDB integer widths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Width {
    Tiny,
    Small,
    Medium,
    Int,
    Big,
}

impl Width {
    /// Storage size in bits.
    pub const fn bits(self) -> u32 {
        match self {
            Width::Tiny => 8,
            Width::Small => 16,
            Width::Medium => 24,
            Width::Int => 32,
            Width::Big => 64,
        }
    }

    /// The name information_schema gives in DATA_TYPE.
    pub const fn sql_name(self) -> &'static str {
        match self {
            Width::Tiny => "tinyint",
            Width::Small => "smallint",
            Width::Medium => "mediumint",
            Width::Int => "int",
            Width::Big => "bigint",
        }
    }

    /// Parses information_schema's DATA_TYPE (`int`, `bigint`, ...); `integer` is accepted
    /// as the synonym some servers print.
    pub fn from_data_type(data_type: &str) -> Option<Width> {
        // Compared whatever the case, without a lower-case copy: every column of every
        // poll is read through here.
        let data_type = data_type.trim();
        [
            ("tinyint", Width::Tiny),
            ("smallint", Width::Small),
            ("mediumint", Width::Medium),
            ("int", Width::Int),
            ("integer", Width::Int),
            ("bigint", Width::Big),
        ]
        .into_iter()
        .find(|(name, _)| data_type.eq_ignore_ascii_case(name))
        .map(|(_, width)| width)
    }
}

/// An integer column type: width and signedness. ZEROFILL implies UNSIGNED, so it needs no
/// state of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IntType {
    /// How many bits the type stores.
    pub width: Width,
    /// UNSIGNED (or ZEROFILL) doubles the positive range.
    pub unsigned: bool,
}

impl IntType {
    pub const fn new(width: Width, unsigned: bool) -> IntType {
        IntType { width, unsigned }
    }

    /// The largest value the type can store, exactly.
    pub const fn max(self) -> u64 {
        let bits = self.width.bits();
        if self.unsigned {
            if bits == 64 {
                u64::MAX
            } else {
                (1u64 << bits) - 1
            }
        } else {
            (1u64 << (bits - 1)) - 1
        }
    }

    /// Reads DATA_TYPE and COLUMN_TYPE as information_schema writes them, e.g. `int` and
    /// `int(10) unsigned zerofill`. MySQL 8.0.19+ drops the display width; both forms work.
    pub fn from_information_schema(data_type: &str, column_type: &str) -> Option<IntType> {
        let width = Width::from_data_type(data_type)?;
        let has = |word: &str| {
            column_type
                .as_bytes()
                .windows(word.len())
                .any(|w| w.eq_ignore_ascii_case(word.as_bytes()))
        };
        let unsigned = has("unsigned") || has("zerofill");
        Some(IntType { width, unsigned })
    }

    /// Reads a type as people and information_schema write it, in any case, with or
    /// without display width: `INT(11) UNSIGNED`, `int unsigned`, `bigint(20) zerofill`,
    /// `integer signed`. `None` when it is not an integer type (or has other words).
    pub fn parse(text: &str) -> Option<IntType> {
        let lower = text.to_ascii_lowercase();
        let mut rest = lower.as_str();
        let mut words = String::new();
        // Display widths are dropped: `(11)` says nothing about what the column holds.
        while let Some(open) = rest.find('(') {
            let close = rest[open..].find(')')? + open;
            if !rest[open + 1..close]
                .trim()
                .bytes()
                .all(|b| b.is_ascii_digit())
            {
                return None;
            }
            words.push_str(&rest[..open]);
            words.push(' ');
            rest = &rest[close + 1..];
        }
        words.push_str(rest);
        let mut words = words.split_whitespace();
        let width = Width::from_data_type(words.next()?)?;
        let mut unsigned = false;
        for word in words {
            match word {
                "unsigned" | "zerofill" => unsigned = true,
                "signed" => {}
                _ => return None,
            }
        }
        Some(IntType { width, unsigned })
    }

    /// The normalized name: lowercase, no display width, `zerofill` as `unsigned`
    /// (`int unsigned`, `bigint`).
    pub fn normalized(self) -> String {
        self.display_name().to_ascii_lowercase()
    }

    /// A readable name for people: `INT UNSIGNED`, `BIGINT`.
    pub fn display_name(self) -> String {
        let base = self.width.sql_name().to_ascii_uppercase();
        if self.unsigned {
            format!("{base} UNSIGNED")
        } else {
            base
        }
    }
}

impl fmt::Display for IntType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display_name())
    }
}

/// A used ratio held as an exact fraction of one million (parts per million), so that
/// comparing `current / max` with a threshold needs no float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ppm(u32);

impl Ppm {
    pub const ONE: u32 = 1_000_000;
    pub const ZERO: Ppm = Ppm(0);

    /// From a ratio in `0.0..=1.0`, rounded to the nearest millionth; `None` outside.
    pub fn from_ratio(ratio: f64) -> Option<Ppm> {
        if !ratio.is_finite() || !(0.0..=1.0).contains(&ratio) {
            return None;
        }
        Some(Ppm((ratio * f64::from(Ppm::ONE)).round() as u32))
    }

    pub const fn get(self) -> u32 {
        self.0
    }

    pub fn as_ratio(self) -> f64 {
        f64::from(self.0) / f64::from(Ppm::ONE)
    }
}

/// Warning and critical thresholds on the used ratio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub warning: Ppm,
    pub critical: Ppm,
}

/// How close a column is to running out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warning,
    Critical,
    /// `current > max`: IDs are already handed out that the column cannot hold.
    Exhausted,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Ok,
        Status::Warning,
        Status::Critical,
        Status::Exhausted,
    ];

    /// In order of urgency: 0 ok, 1 warning, 2 critical, 3 exhausted. The `*_status` gauges
    /// carry it, alert rules compare it, and a page's `level` is it.
    pub const fn number(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Critical => 2,
            Status::Exhausted => 3,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Critical => "critical",
            Status::Exhausted => "exhausted",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;

    fn from_str(s: &str) -> Result<Status, String> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                format!("unknown status {s:?}: expected ok, warning, critical or exhausted")
            })
    }
}

/// The headroom of one column (or one ID source) at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headroom {
    /// The largest value the column must be able to hold now.
    pub current: i128,
    /// The type maximum.
    pub max: u64,
}

impl Headroom {
    pub const fn new(current: i128, max: u64) -> Headroom {
        Headroom { current, max }
    }

    /// `max − current`; negative once the column is asked to hold more than it can.
    pub const fn remaining(self) -> i128 {
        self.max as i128 - self.current
    }

    /// `current / max` as a float, for JSON and gauges only. A negative current (a signed
    /// column that holds only negative IDs) counts as nothing used.
    pub fn used_ratio(self) -> f64 {
        if self.max == 0 {
            return 0.0;
        }
        self.current.max(0) as f64 / self.max as f64
    }

    /// The status under the thresholds, decided on exact integers:
    /// `current * 1e6 >= threshold_ppm * max`.
    pub fn status(self, thresholds: Thresholds) -> Status {
        let current = self.current.max(0);
        let max = i128::from(self.max);
        if current > max {
            return Status::Exhausted;
        }
        let scaled = current * i128::from(Ppm::ONE);
        if scaled >= i128::from(thresholds.critical.get()) * max {
            Status::Critical
        } else if scaled >= i128::from(thresholds.warning.get()) * max {
            Status::Warning
        } else {
            Status::Ok
        }
    }
}

/// A used ratio as a percentage for people, with one rule everywhere (pages, `check`): it
/// never rounds up to a full 100%, since 99.998% is not full.
pub fn percent(ratio: f64) -> String {
    let tenths = (ratio * 1000.0).floor() / 10.0;
    if (99.9..100.0).contains(&tenths) || (tenths >= 100.0 && ratio < 1.0) {
        format!("{:.3}%", (ratio * 100_000.0).floor() / 1000.0)
    } else {
        format!("{tenths:.1}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_parsed_in_any_case_with_or_without_display_width() {
        let int_unsigned = Some(IntType::new(Width::Int, true));
        for text in [
            "int unsigned",
            "INT(11) UNSIGNED",
            "int(10) unsigned zerofill",
            "Int ZEROFILL",
            "integer (11)  unsigned",
        ] {
            assert_eq!(IntType::parse(text), int_unsigned, "{text}");
        }
        assert_eq!(
            IntType::parse("bigint"),
            Some(IntType::new(Width::Big, false))
        );
        assert_eq!(
            IntType::parse("BIGINT(20) SIGNED"),
            Some(IntType::new(Width::Big, false))
        );
        assert_eq!(
            IntType::parse("tinyint(4)"),
            Some(IntType::new(Width::Tiny, false))
        );
        for text in [
            "",
            "varchar(20)",
            "int unsigned primary",
            "int(x)",
            "int(11",
            "decimal(20,0)",
            "(11)",
        ] {
            assert_eq!(IntType::parse(text), None, "{text}");
        }
        assert_eq!(IntType::new(Width::Int, true).normalized(), "int unsigned");
        assert_eq!(IntType::new(Width::Big, false).normalized(), "bigint");
    }

    #[test]
    fn percentages_never_round_up_to_full() {
        assert_eq!(percent(0.931), "93.1%");
        assert_eq!(percent(0.99998), "99.998%");
        assert_eq!(percent(0.9994), "99.940%");
        assert_eq!(percent(1.0), "100.0%");
        assert_eq!(percent(1.5), "150.0%");
    }

    fn thresholds(warning: f64, critical: f64) -> Thresholds {
        Thresholds {
            warning: Ppm::from_ratio(warning).unwrap(),
            critical: Ppm::from_ratio(critical).unwrap(),
        }
    }

    #[test]
    fn maxima_of_every_width_and_sign_are_exact() {
        let cases = [
            (Width::Tiny, false, 127u64),
            (Width::Tiny, true, 255),
            (Width::Small, false, 32_767),
            (Width::Small, true, 65_535),
            (Width::Medium, false, 8_388_607),
            (Width::Medium, true, 16_777_215),
            (Width::Int, false, 2_147_483_647),
            (Width::Int, true, 4_294_967_295),
            (Width::Big, false, 9_223_372_036_854_775_807),
            (Width::Big, true, 18_446_744_073_709_551_615),
        ];
        for (width, unsigned, max) in cases {
            assert_eq!(
                IntType::new(width, unsigned).max(),
                max,
                "{width:?} {unsigned}"
            );
        }
    }

    #[test]
    fn column_type_strings_parse_with_and_without_display_width() {
        let parse = IntType::from_information_schema;
        assert_eq!(
            parse("int", "int(11)"),
            Some(IntType::new(Width::Int, false))
        );
        assert_eq!(
            parse("int", "int(10) unsigned"),
            Some(IntType::new(Width::Int, true))
        );
        assert_eq!(
            parse("int", "int(10) unsigned zerofill"),
            Some(IntType::new(Width::Int, true))
        );
        assert_eq!(
            parse("bigint", "bigint unsigned"),
            Some(IntType::new(Width::Big, true))
        );
        assert_eq!(
            parse("MEDIUMINT", "MEDIUMINT(8)"),
            Some(IntType::new(Width::Medium, false))
        );
        assert_eq!(
            parse("tinyint", "tinyint(3) zerofill"),
            Some(IntType::new(Width::Tiny, true))
        );
        assert_eq!(parse("varchar", "varchar(10)"), None);
        assert_eq!(parse("decimal", "decimal(10,0) unsigned"), None);
    }

    #[test]
    fn remaining_goes_negative_past_the_maximum() {
        let h = Headroom::new(2_147_483_648 + 10, IntType::new(Width::Int, false).max());
        assert_eq!(h.remaining(), -11);
        let h = Headroom::new(i128::from(u64::MAX), u64::MAX);
        assert_eq!(h.remaining(), 0);
    }

    #[test]
    fn status_follows_thresholds_exactly_at_the_boundary() {
        let t = thresholds(0.70, 0.85);
        assert_eq!(Headroom::new(69, 100).status(t), Status::Ok);
        assert_eq!(Headroom::new(70, 100).status(t), Status::Warning);
        assert_eq!(Headroom::new(84, 100).status(t), Status::Warning);
        assert_eq!(Headroom::new(85, 100).status(t), Status::Critical);
        assert_eq!(Headroom::new(100, 100).status(t), Status::Critical);
        assert_eq!(Headroom::new(101, 100).status(t), Status::Exhausted);
        assert_eq!(Headroom::new(-5, 100).status(t), Status::Ok);
    }

    #[test]
    fn status_is_exact_where_floats_would_round() {
        // 0.85 of BIGINT UNSIGNED max is not representable in f64; the integer rule decides.
        let t = thresholds(0.70, 0.85);
        let max = u64::MAX;
        let boundary = (i128::from(max) * 850_000).div_euclid(1_000_000);
        assert_eq!(Headroom::new(boundary, max).status(t), Status::Warning);
        assert_eq!(Headroom::new(boundary + 1, max).status(t), Status::Critical);
        assert_eq!(
            Headroom::new(i128::from(max) + 1, max).status(t),
            Status::Exhausted
        );
    }

    #[test]
    fn the_etsy_case_is_exhausted_for_int_and_over_half_for_int_unsigned() {
        let t = thresholds(0.70, 0.85);
        let ticket = 2_147_483_647i128 + 1_000;
        let signed = Headroom::new(ticket, IntType::new(Width::Int, false).max());
        assert_eq!(signed.status(t), Status::Exhausted);
        let unsigned = Headroom::new(ticket, IntType::new(Width::Int, true).max());
        assert_eq!(unsigned.status(t), Status::Ok);
        assert!(unsigned.used_ratio() > 0.5);
    }

    #[test]
    fn ppm_rejects_ratios_outside_zero_to_one() {
        assert_eq!(Ppm::from_ratio(0.7).map(Ppm::get), Some(700_000));
        assert!(Ppm::from_ratio(1.5).is_none());
        assert!(Ppm::from_ratio(-0.1).is_none());
        assert!(Ppm::from_ratio(f64::NAN).is_none());
    }

    #[test]
    fn statuses_parse_from_their_names() {
        for status in Status::ALL {
            assert_eq!(status.as_str().parse::<Status>(), Ok(status));
        }
        assert!("fine".parse::<Status>().is_err());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn any_type() -> impl Strategy<Value = IntType> {
            (
                prop_oneof![
                    Just(Width::Tiny),
                    Just(Width::Small),
                    Just(Width::Medium),
                    Just(Width::Int),
                    Just(Width::Big)
                ],
                any::<bool>(),
            )
                .prop_map(|(w, u)| IntType::new(w, u))
        }

        fn any_thresholds() -> impl Strategy<Value = Thresholds> {
            (1u32..999_999)
                .prop_flat_map(|w| (Just(w), (w + 1)..=1_000_000))
                .prop_map(|(w, c)| Thresholds {
                    warning: Ppm(w),
                    critical: Ppm(c),
                })
        }

        proptest! {
            #[test]
            fn remaining_plus_current_is_max(ty in any_type(), current in any::<u64>()) {
                let h = Headroom::new(i128::from(current), ty.max());
                prop_assert_eq!(h.remaining() + h.current, i128::from(ty.max()));
            }

            #[test]
            fn exhausted_exactly_when_current_exceeds_max(
                ty in any_type(), current in any::<u64>(), t in any_thresholds()
            ) {
                let h = Headroom::new(i128::from(current), ty.max());
                prop_assert_eq!(h.status(t) == Status::Exhausted, current > ty.max());
            }

            #[test]
            fn status_never_improves_as_current_grows(
                ty in any_type(), a in any::<u64>(), b in any::<u64>(), t in any_thresholds()
            ) {
                let (lo, hi) = (a.min(b), a.max(b));
                let max = ty.max();
                prop_assert!(
                    Headroom::new(i128::from(lo), max).status(t)
                        <= Headroom::new(i128::from(hi), max).status(t)
                );
            }

            #[test]
            fn status_agrees_with_the_ratio_away_from_the_boundaries(
                (max, current) in any_type().prop_flat_map(|ty| (Just(ty.max()), 0..=ty.max())),
                t in any_thresholds()
            ) {
                let h = Headroom::new(i128::from(current), max);
                let ratio = h.used_ratio();
                let (w, c) = (t.warning.as_ratio(), t.critical.as_ratio());
                // Floats may disagree only within rounding distance of a threshold.
                prop_assume!((ratio - w).abs() > 1e-9 && (ratio - c).abs() > 1e-9);
                let expected = if ratio >= c {
                    Status::Critical
                } else if ratio >= w {
                    Status::Warning
                } else {
                    Status::Ok
                };
                prop_assert_eq!(h.status(t), expected);
            }

            #[test]
            fn every_spelling_of_a_column_type_parses_to_its_type(
                ty in any_type(), width in proptest::option::of(1u8..=20), zerofill in any::<bool>()
            ) {
                let mut text = ty.width.sql_name().to_string();
                if let Some(n) = width {
                    text.push_str(&format!("({n})"));
                }
                if ty.unsigned {
                    text.push_str(" unsigned");
                }
                if zerofill && ty.unsigned {
                    text.push_str(" zerofill");
                }
                prop_assert_eq!(
                    IntType::from_information_schema(ty.width.sql_name(), &text),
                    Some(ty)
                );
            }
        }
    }
}
