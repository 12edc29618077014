//! Criterion benches of gantry-datasets: decoding the bundled files and assembling batches.
//! Throughput is in images per second.

mod benchmarks;

criterion::criterion_main!(benchmarks::decode::benches, benchmarks::batch::benches);
