//! The proptest configuration of the kernel properties: a fixed seed, so that a failure seen
//! once (in CI or on a laptop) is seen again by anyone who runs the tests, and no failure
//! files written into the source tree.

use proptest::test_runner::{Config as ProptestConfig, RngAlgorithm, RngSeed};

/// `cases` cases from a fixed ChaCha seed, without failure persistence.
pub fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(0x7465_6e73_6f72),
        ..ProptestConfig::default()
    }
}
