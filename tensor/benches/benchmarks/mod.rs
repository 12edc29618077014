//! The bench families and their shared settings.

pub mod conv;
pub mod elementwise;
pub mod matmul;

use criterion::Criterion;
use std::time::Duration;

/// Small samples and short measurements, so that the whole suite runs in a few minutes on two
/// cores; the kernels are long and steady enough for ten samples to be stable.
pub fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

/// A seeded random tensor of `shape` with entries from `N(0, 1)`.
pub fn randn(shape: &[usize], seed: u64) -> gantry_tensor::Tensor {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    gantry_tensor::Tensor::randn(shape, 0.0, 1.0, &mut rng)
}
