//! Criterion benches of gantry-autodiff, one module per family under `benchmarks/` (the layout of
//! candle's `benches/`, as in gantry-tensor): `benchmarks/tape.rs`, the tape's own overhead and
//! a DCGAN-sized conv block through it.
//!
//! ```text
//! cargo bench -p gantry-autodiff                    # all
//! cargo bench -p gantry-autodiff -- tape/chain100   # a filter
//! ```

mod benchmarks;

criterion::criterion_main!(benchmarks::tape::benches);
