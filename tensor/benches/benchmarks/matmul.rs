//! Square matrix products through `Tensor::matmul` (the `gemm` crate's kernels).
//!
//! Throughput: `Elements` = FLOPs = `2 n^3` (a multiply and an add per term), so criterion's
//! `elem/s` is FLOP/s.

use super::{config, randn};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use std::hint::black_box;

fn square(c: &mut Criterion) {
    let mut group = c.benchmark_group("matmul");
    for n in [256usize, 512, 1024] {
        let a = randn(&[n, n], 1);
        let b = randn(&[n, n], 2);
        group.throughput(Throughput::Elements(2 * (n as u64).pow(3)));
        group.bench_with_input(BenchmarkId::new("square", n), &n, |bench, _| {
            bench.iter(|| black_box(&a).matmul(black_box(&b)))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = square
}
