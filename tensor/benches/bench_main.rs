//! Criterion benches of gantry-tensor's hot paths, one module per kernel family (the layout of
//! candle's `benches/`): `benchmarks/matmul.rs`, `benchmarks/conv.rs`,
//! `benchmarks/elementwise.rs`.
//!
//! Every bench declares `Throughput::Elements(flops)`: the "elements" criterion counts are
//! floating-point operations, so the `elem/s` it reports are FLOP/s.
//!
//! ```text
//! cargo bench -p gantry-tensor                       # all threads
//! RAYON_NUM_THREADS=1 cargo bench -p gantry-tensor   # one thread
//! cargo bench -p gantry-tensor -- conv/forward       # a filter
//! ```

mod benchmarks;

criterion::criterion_main!(
    benchmarks::matmul::benches,
    benchmarks::conv::benches,
    benchmarks::elementwise::benches
);
