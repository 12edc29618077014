//! Criterion benches of one training iteration of each model, at the reference benchmark's
//! sizes (`../shared/bench/gan_bench.py`), so a change in any crate shows in the whole step;
//! and of the WGAN-GP critic's step and gradient penalty, beside PyTorch's
//! (`bench/wgan_gp.py`).

use criterion::{Criterion, criterion_group, criterion_main};
use std::time::Duration;

mod iteration;
mod wgan_gp;

criterion_group!(benches, iteration::bench);
// Steps of seconds: criterion's minimum of 10 samples by default, which the command line
// (`--sample-size`, `--warm-up-time`, `--measurement-time`) still overrides.
criterion_group! {
    name = wgan_gp_benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = wgan_gp::bench
}
criterion_main!(benches, wgan_gp_benches);
