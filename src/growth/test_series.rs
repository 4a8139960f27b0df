//! Series of samples for the tests: polls at a steady interval, with jitter.

/// The maximum of INT.
pub(super) const INT_MAX: u64 = 2_147_483_647;

/// One sample of a test series: milliseconds since the previous one, the value, the
/// type's maximum.
pub(super) type Sample = (u64, i128, u64);

/// A small deterministic generator (64-bit LCG), for jitter.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}

/// `count` samples `every_ms` apart (± up to 1 s of jitter: a big shard's poll takes
/// longer some times than others), each `grow(i)` above the previous.
pub(super) fn series(
    count: usize,
    every_ms: u64,
    start: i128,
    max: u64,
    grow: impl Fn(usize) -> i128,
) -> Vec<Sample> {
    let mut rng = Lcg(count as u64 ^ every_ms);
    let mut value = start;
    (0..count)
        .map(|i| {
            value += grow(i);
            (every_ms - 1_000 + rng.below(2_000), value, max)
        })
        .collect()
}
