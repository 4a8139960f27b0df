//! Whether the servers of one ticket source can hand out the same ID. A ticket server hands
//! out `offset + k × increment` (its session's `auto_increment_offset` and
//! `auto_increment_increment`, what `REPLACE INTO` uses), so two servers are disjoint only
//! when their sequences never meet. Pure: the readers pass the values in.
//!
//! A source is at risk ([`risk`]) when any of these holds:
//! 1. **too few residues**: some server's increment is smaller than the number of servers
//!    configured for the source (they cannot all have a residue of their own);
//! 2. **overlapping sequences**: two servers' sequences meet. `a + k·i` and `b + j·m` share a
//!    value exactly when `a ≡ b (mod gcd(i, m))`: for equal increments, the same offset
//!    modulo the increment (increment 1 meets everything);
//! 3. **counters in each other's range**: the last IDs two servers have handed out (the
//!    ticket table's `MAX(id)`: never a counter's estimate, which for a fresh pair set up
//!    with one `AUTO_INCREMENT` would be the same on both) are congruent modulo the gcd of
//!    their increments and less than `max(increments) × servers` apart. Two correctly configured servers never have congruent counters (each stays in
//!    its own residue class), so this is a server that handed out IDs of another's
//!    sequence where that other one has just been (a changed offset, a server restored
//!    from its partner's copy, explicit IDs).
//!
//! An offset larger than the increment counts modulo the increment ([`Sequence::residue`]):
//! MariaDB 10.11 hands out 2, 6, 10, ... for increment 4 and offset 6, on InnoDB and MyISAM.

/// One server's auto-increment step and start, as its ticket connection sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sequence {
    /// `@@auto_increment_increment` (1 to 65535).
    pub increment: u64,
    /// `@@auto_increment_offset` (1 to 65535).
    pub offset: u64,
}

impl Sequence {
    /// The residue modulo the increment of every ID the server hands out; an increment of
    /// 0 is taken as 1.
    pub fn residue(self) -> u64 {
        self.offset % self.increment()
    }

    fn increment(self) -> u64 {
        self.increment.max(1)
    }
}

/// What is known of one server of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter<'a> {
    /// The server's label (`host:port`), for the reason.
    pub server: &'a str,
    pub sequence: Sequence,
    /// The last ID it has handed out, `MAX(id)` of its ticket table; 0 when the table is
    /// empty (nothing to compare).
    pub highest: i128,
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Why the source whose `servers` servers are configured (of which `counters` have been
/// read) can hand out the same ID twice, every reason found, joined with `; `; `None` when
/// it cannot.
pub fn risk(servers: usize, counters: &[Counter<'_>]) -> Option<String> {
    let mut reasons = Vec::new();
    for c in counters {
        if servers > 1 && c.sequence.increment() < servers as u64 {
            reasons.push(format!(
                "{} has auto_increment_increment {}, fewer than the source's {servers} servers: some servers hand out the same IDs",
                c.server,
                c.sequence.increment()
            ));
        }
    }
    for (i, a) in counters.iter().enumerate() {
        for b in &counters[i + 1..] {
            if let Some(reason) = pair_risk(servers, a, b) {
                reasons.push(reason);
            }
        }
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// Rules 2 and 3 for one pair of servers.
fn pair_risk(servers: usize, a: &Counter<'_>, b: &Counter<'_>) -> Option<String> {
    let (sa, sb) = (a.sequence, b.sequence);
    let g = gcd(sa.increment(), sb.increment());
    if sa.residue() % g == sb.residue() % g {
        let why = if sa.increment() == sb.increment() {
            format!(
                "the same auto_increment_offset modulo their auto_increment_increment {} ({} and {})",
                sa.increment(),
                sa.offset,
                sb.offset
            )
        } else {
            format!(
                "offsets {} and {} are equal modulo {g}, the greatest common divisor of their increments {} and {}",
                sa.offset,
                sb.offset,
                sa.increment(),
                sb.increment()
            )
        };
        return Some(format!(
            "{} and {} hand out the same IDs: {why}",
            a.server, b.server
        ));
    }
    let window = i128::from(sa.increment().max(sb.increment())) * servers as i128;
    let (ha, hb) = (a.highest, b.highest);
    if ha > 0 && hb > 0 && (ha - hb).rem_euclid(i128::from(g)) == 0 && (ha - hb).abs() < window {
        return Some(format!(
            "the counters of {} ({ha}) and {} ({hb}) are in the same sequence and within {window} of each other: one hands out IDs the other has just handed out",
            a.server, b.server
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn seq(increment: u64, offset: u64) -> Sequence {
        Sequence { increment, offset }
    }

    fn counter(server: &str, increment: u64, offset: u64, highest: i128) -> Counter<'_> {
        Counter {
            server,
            sequence: seq(increment, offset),
            highest,
        }
    }

    #[test]
    fn a_flickr_pair_with_offsets_one_and_two_is_safe() {
        let pair = [
            counter("a:3306", 2, 1, 2_147_483_001),
            counter("b:3306", 2, 2, 2_147_483_002),
        ];
        assert_eq!(risk(2, &pair), None);
        // Fresh tables: nothing handed out yet.
        let fresh = [counter("a:3306", 2, 1, 0), counter("b:3306", 2, 2, 0)];
        assert_eq!(risk(2, &fresh), None);
    }

    #[test]
    fn two_servers_with_the_same_offset_collide() {
        let pair = [counter("a:3306", 2, 1, 1001), counter("b:3306", 2, 1, 5)];
        assert_eq!(
            risk(2, &pair).as_deref(),
            Some(
                "a:3306 and b:3306 hand out the same IDs: the same auto_increment_offset modulo their auto_increment_increment 2 (1 and 1)"
            )
        );
        // Offsets 1 and 3 with increment 2 are the same sequence too.
        let pair = [counter("a:3306", 2, 1, 0), counter("b:3306", 2, 3, 0)];
        assert!(risk(2, &pair).is_some());
    }

    #[test]
    fn an_increment_below_the_number_of_servers_collides() {
        let pair = [counter("a:3306", 1, 1, 10), counter("b:3306", 1, 1, 20)];
        let reason = risk(2, &pair).unwrap_or_default();
        assert!(
            reason.starts_with(
                "a:3306 has auto_increment_increment 1, fewer than the source's 2 servers: some servers hand out the same IDs; b:3306 has auto_increment_increment 1"
            ),
            "{reason}"
        );
        // Counted over the configured servers, also when only one could be read.
        assert!(risk(3, &[counter("a:3306", 2, 1, 7)]).is_some());
        // A single server with increment 1 is the ordinary case.
        assert_eq!(risk(1, &[counter("a:3306", 1, 1, 7)]), None);
    }

    #[test]
    fn different_increments_collide_when_the_offsets_agree_modulo_their_gcd() {
        // 1, 5, 9, ... and 3, 9, 15, ...: both hand out 9.
        let pair = [counter("a:3306", 4, 1, 0), counter("b:3306", 6, 3, 0)];
        assert_eq!(
            risk(2, &pair).as_deref(),
            Some(
                "a:3306 and b:3306 hand out the same IDs: offsets 1 and 3 are equal modulo 2, the greatest common divisor of their increments 4 and 6"
            )
        );
        // 1, 5, 9, ... and 2, 8, 14, ...: never.
        let pair = [counter("a:3306", 4, 1, 0), counter("b:3306", 6, 2, 0)];
        assert_eq!(risk(2, &pair), None);
    }

    #[test]
    fn a_counter_in_the_range_its_partner_just_handed_out_collides() {
        // b was restored from a's copy: its counter is a's, and its offset is right again.
        let pair = [counter("a:3306", 2, 1, 1001), counter("b:3306", 2, 2, 1001)];
        assert_eq!(
            risk(2, &pair).as_deref(),
            Some(
                "the counters of a:3306 (1001) and b:3306 (1001) are in the same sequence and within 4 of each other: one hands out IDs the other has just handed out"
            )
        );
        assert!(risk(2, &[counter("a", 2, 1, 1001), counter("b", 2, 2, 1003)]).is_some());
        // Far apart, or in different sequences: no evidence.
        assert_eq!(
            risk(2, &[counter("a", 2, 1, 1001), counter("b", 2, 2, 1005)]),
            None
        );
        assert_eq!(
            risk(2, &[counter("a", 2, 1, 1001), counter("b", 2, 2, 1002)]),
            None
        );
    }

    #[test]
    fn an_offset_above_the_increment_counts_modulo_the_increment() {
        assert_eq!(seq(2, 5).residue(), 1);
        assert_eq!(seq(2, 2).residue(), 0);
        assert_eq!(seq(3, 2).residue(), 2);
        assert_eq!(seq(4, 6).residue(), 2);
        // Offset 4 with increment 2 hands out even IDs: the same sequence as b's.
        let pair = [counter("a", 2, 4, 0), counter("b", 2, 2, 0)];
        assert!(risk(2, &pair).is_some());
        assert_eq!(
            risk(2, &[counter("a", 2, 3, 0), counter("b", 2, 2, 0)]),
            None
        );
    }

    /// Values a server with this sequence hands out, from the first, up to `limit`.
    fn handed_out(s: Sequence, limit: u64) -> Vec<u64> {
        let step = s.increment();
        let first = if s.residue() == 0 { step } else { s.residue() };
        (0..)
            .map(|k| first + k * step)
            .take_while(|v| *v <= limit)
            .collect()
    }

    fn any_sequence() -> impl Strategy<Value = Sequence> {
        (1u64..=12)
            .prop_flat_map(|i| (Just(i), 1u64..=i + 3))
            .prop_map(|(i, o)| seq(i, o))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The residue rule says two sequences meet exactly when listing their values finds
        /// a common one (within the least common multiple of the increments, past both
        /// offsets, any meeting repeats).
        #[test]
        fn overlap_agrees_with_listing_both_sequences(a in any_sequence(), b in any_sequence()) {
            let limit = 2 * a.increment() * b.increment() + 2 * 12;
            let va: std::collections::HashSet<u64> = handed_out(a, limit).into_iter().collect();
            let meet = handed_out(b, limit).iter().any(|v| va.contains(v));
            let pair = [Counter { server: "a", sequence: a, highest: 0 },
                        Counter { server: "b", sequence: b, highest: 0 }];
            prop_assert_eq!(risk(2, &pair).is_some(), meet);
        }

        /// `n` servers with one increment of at least `n` and distinct offsets, each at
        /// any point of its own sequence, are never at risk.
        #[test]
        fn a_correct_ring_is_never_at_risk(
            (increment, offsets) in (1usize..=6).prop_flat_map(|n| (n as u64..=16).prop_flat_map(move |i| {
                (Just(i), proptest::sample::subsequence((1..=i).collect::<Vec<u64>>(), n))
            })),
            steps in proptest::collection::vec(0i128..1_000_000, 6),
        ) {
            let names: Vec<String> = (0..offsets.len()).map(|i| format!("s{i}")).collect();
            let counters: Vec<Counter<'_>> = offsets.iter().zip(&steps).zip(&names).map(|((o, k), name)| {
                Counter { server: name, sequence: seq(increment, *o), highest: i128::from(*o) + k * i128::from(increment) }
            }).collect();
            prop_assert_eq!(risk(offsets.len(), &counters), None);
        }

        /// Risk does not depend on the order the servers are listed in.
        #[test]
        fn risk_is_the_same_in_any_order(
            list in proptest::collection::vec((any_sequence(), 0i128..200), 1..5),
            shuffle in any::<prop::sample::Index>(),
        ) {
            let names: Vec<String> = (0..list.len()).map(|i| format!("s{i}")).collect();
            let counters: Vec<Counter<'_>> = list.iter().zip(&names)
                .map(|((s, h), n)| Counter { server: n, sequence: *s, highest: *h }).collect();
            let mut rotated = counters.clone();
            rotated.rotate_left(shuffle.index(counters.len()));
            rotated.reverse();
            prop_assert_eq!(risk(list.len(), &counters).is_some(), risk(list.len(), &rotated).is_some());
        }

        /// Two servers with the same sequence always collide, wherever their counters are.
        #[test]
        fn the_same_sequence_twice_always_collides(s in any_sequence(), ha in 0i128..1_000_000, hb in 0i128..1_000_000) {
            let pair = [Counter { server: "a", sequence: s, highest: ha },
                        Counter { server: "b", sequence: s, highest: hb }];
            prop_assert!(risk(2, &pair).is_some());
        }
    }
}
