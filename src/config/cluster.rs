//! `[cluster]`: this replica's share of a fleet split across replicas.

use super::section::Section;
use crate::cluster::{MAX_MEMBERS, Member};

/// `[cluster] member = I`, `members = N`: both required, `0 ≤ I < N`.
pub(super) fn cluster(s: &mut Section) -> Option<Member> {
    let member = s.whole("member", None, 0);
    let members = s.whole("members", None, 1);
    s.finish();
    let (member, members) = (member?, members?);
    let members = match u32::try_from(members) {
        Ok(n) if n <= MAX_MEMBERS => n,
        _ => {
            s.problem(
                "members",
                format!("{members} is more than the {MAX_MEMBERS} members a cluster may have"),
            );
            return None;
        }
    };
    match u32::try_from(member)
        .map_err(|_| String::new())
        .and_then(|m| Member::new(m, members))
    {
        Ok(m) => Some(m),
        Err(_) => {
            s.problem(
                "member",
                format!(
                    "{member} is not a member of {members}: members are counted from 0, so it must be below members"
                ),
            );
            None
        }
    }
}
