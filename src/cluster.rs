//! A fleet split across replicas: `--member I/N` (or `[cluster] member`, `members`) makes a
//! replica own the shards whose name hashes to it. Rendezvous (highest random weight)
//! hashing: each shard goes to the member whose hash of (member, shard name) is highest, so
//! going from N to N + 1 members moves only the shards the new member wins (about 1/(N+1)
//! of them) and no shard moves between the members that stay. Pure; the hash is fixed
//! (FNV-1a, then a 64-bit finalizer), so every replica, of every version and on every
//! machine, computes the same split.

use std::fmt;
use std::str::FromStr;

/// This replica's place in the cluster: member `index` of `members`, counted from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// This replica, `0 ≤ index < members`.
    pub index: u32,
    /// How many members share the fleet.
    pub members: u32,
}

/// The most members a cluster may have: far more than a fleet needs, small enough that
/// choosing an owner stays cheap.
pub const MAX_MEMBERS: u32 = 1024;

impl Member {
    /// Member `index` of `members`; the error says what is wrong with the pair.
    pub fn new(index: u32, members: u32) -> Result<Member, String> {
        if members == 0 || members > MAX_MEMBERS {
            return Err(format!(
                "members is {members}: it must be between 1 and {MAX_MEMBERS}"
            ));
        }
        if index >= members {
            return Err(format!(
                "member is {index}: members are counted from 0, so it must be below members ({members})"
            ));
        }
        Ok(Member { index, members })
    }

    /// Whether this member owns the shard called `shard`.
    pub fn owns(&self, shard: &str) -> bool {
        owner(shard, self.members) == self.index
    }
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.members)
    }
}

impl FromStr for Member {
    type Err = String;

    /// `I/N`, e.g. `0/3`.
    fn from_str(text: &str) -> Result<Member, String> {
        let shown = format!("{text:?}");
        let (index, members) = text
            .split_once('/')
            .ok_or_else(|| format!("{shown} is not I/N (e.g. 0/3: member 0 of 3)"))?;
        let number = |part: &str| {
            part.parse::<u32>()
                .map_err(|_| format!("{shown} is not I/N (e.g. 0/3: member 0 of 3)"))
        };
        Member::new(number(index)?, number(members)?)
    }
}

/// The member, of `members` (at least 1), that owns the shard called `shard`.
pub fn owner(shard: &str, members: u32) -> u32 {
    (0..members.max(1))
        .max_by_key(|&member| (weight(member, shard), std::cmp::Reverse(member)))
        .unwrap_or(0)
}

/// The weight of `member` for `shard`: FNV-1a over the name, mixed with the member's number
/// through the splitmix64 finalizer, so that names that differ in one byte, and members
/// next to each other, still spread over the whole range.
fn weight(member: u32, shard: &str) -> u64 {
    let name = crate::hash::fnv1a(shard.as_bytes());
    mix(mix(name) ^ mix(u64::from(member).wrapping_add(0x9e37_79b9_7f4a_7c15)))
}

/// The splitmix64 finalizer.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("shard-{i:03}")).collect()
    }

    #[test]
    fn member_is_read_as_i_of_n_counted_from_zero() {
        assert_eq!(
            "2/3".parse::<Member>(),
            Ok(Member {
                index: 2,
                members: 3
            })
        );
        assert_eq!(
            "0/1".parse::<Member>().map(|m| m.to_string()),
            Ok("0/1".into())
        );
        for bad in ["3/3", "1/0", "a/3", "1", "1/2/3", "-1/3", "0/1025", ""] {
            let error = bad.parse::<Member>().expect_err(bad);
            assert!(
                error.contains("I/N") || error.contains("member"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn the_split_is_fixed_so_that_every_replica_computes_the_same() {
        // Pinned: a change of hash would move shards between running replicas.
        let owners: Vec<u32> = names(8).iter().map(|n| owner(n, 3)).collect();
        assert_eq!(owners, [2, 1, 2, 0, 0, 1, 0, 2]);
    }

    #[test]
    fn every_shard_has_exactly_one_owner_and_the_split_is_even() {
        let fleet = names(3000);
        for members in [1u32, 2, 3, 5, 8] {
            let mut counts = vec![0usize; members as usize];
            for name in &fleet {
                let owning: Vec<u32> = (0..members)
                    .filter(|&i| Member::new(i, members).is_ok_and(|m| m.owns(name)))
                    .collect();
                assert_eq!(owning.len(), 1, "{name} of {members}");
                counts[owning[0] as usize] += 1;
            }
            let fair = fleet.len() / members as usize;
            for count in counts {
                assert!(
                    count.abs_diff(fair) * 10 < fair,
                    "{count} vs {fair} of {members}"
                );
            }
        }
    }

    #[test]
    fn adding_a_member_moves_only_the_shards_it_takes() {
        let fleet = names(3000);
        for members in [1u32, 2, 4, 7] {
            let moved = fleet
                .iter()
                .filter(|n| owner(n, members) != owner(n, members + 1))
                .inspect(|n| assert_eq!(owner(n, members + 1), members, "{n}"))
                .count();
            let expected = fleet.len() / (members as usize + 1);
            assert!(
                moved.abs_diff(expected) * 5 < expected,
                "{moved} moved going to {} members, expected about {expected}",
                members + 1
            );
        }
    }

    proptest! {
        #[test]
        fn any_name_has_one_owner_below_members(name in ".{0,64}", members in 1u32..64) {
            let owner = owner(&name, members);
            prop_assert!(owner < members);
            let owning = (0..members).filter(|&i| Member { index: i, members }.owns(&name)).count();
            prop_assert_eq!(owning, 1);
        }
    }
}
