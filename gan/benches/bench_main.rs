//! Criterion benches of one training iteration of each model, at the reference benchmark's
//! sizes (`../shared/bench/gan_bench.py`), so a change in any crate shows in the whole step.

use criterion::{criterion_group, criterion_main};

mod iteration;

criterion_group!(benches, iteration::bench);
criterion_main!(benches);
