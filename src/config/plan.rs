//! `[plan]`: what `headroom plan` assumes about the fleet.

use super::PlanSettings;
use super::section::Section;

/// `[plan] rebuild_mb_per_second` when absent.
pub const DEFAULT_REBUILD_MB_PER_SECOND: u64 = 50;

/// `[plan]`.
pub(super) fn plan(s: &mut Section) -> Option<PlanSettings> {
    let rate = s.whole(
        "rebuild_mb_per_second",
        Some(DEFAULT_REBUILD_MB_PER_SECOND as usize),
        1,
    );
    s.finish();
    Some(PlanSettings {
        rebuild_mb_per_second: rate? as u64,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::testing::ONE_SHARD as SHARD;

    #[test]
    fn the_rebuild_rate_defaults_to_50_and_must_be_above_zero() {
        let settings = crate::config::from_toml_str(SHARD, &|_| None).expect("valid");
        assert_eq!(settings.plan.rebuild_mb_per_second, 50);
        let text = format!("{SHARD}[plan]\nrebuild_mb_per_second = 200\n");
        let settings = crate::config::from_toml_str(&text, &|_| None).expect("valid");
        assert_eq!(settings.plan.rebuild_mb_per_second, 200);
        let text = format!("{SHARD}[plan]\nrebuild_mb_per_second = 0\n");
        let problems = crate::config::from_toml_str(&text, &|_| None).expect_err("0 is refused");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].key, "plan.rebuild_mb_per_second");
        assert!(problems[0].message.contains("at least 1"), "{problems:?}");
    }
}
