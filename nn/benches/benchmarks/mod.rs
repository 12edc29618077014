//! One module per family of benches.

pub mod gan_layers;
pub mod layers;
pub mod optim;

use criterion::Criterion;
use std::time::Duration;

/// Few, short samples: the layer benches run for a tenth of a second per iteration.
pub fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
}
