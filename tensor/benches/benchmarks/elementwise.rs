//! Elementwise and reduction kernels at the size of a DCGAN activation (`[64, 128, 16, 16]`).
//!
//! Throughput: `Elements` = FLOPs, counted as one per output element for the broadcasting add
//! and one per input element for the sum, so criterion's `elem/s` is FLOP/s.

use super::{config, randn};
use criterion::{Criterion, Throughput, criterion_group};
use std::hint::black_box;

const SHAPE: [usize; 4] = [64, 128, 16, 16];

fn elementwise(c: &mut Criterion) {
    let x = randn(&SHAPE, 1);
    let bias = randn(&[128, 1, 1], 2);
    let n = SHAPE.iter().product::<usize>() as u64;
    let mut group = c.benchmark_group("elementwise");
    group.throughput(Throughput::Elements(n));
    // A per-channel bias broadcast over batch and space, as a conv layer's bias.
    group.bench_function("add_broadcast_64x128x16x16", |b| {
        b.iter(|| black_box(&x).add(black_box(&bias)))
    });
    // The bias gradient and batch-norm statistics: a sum over batch and space per channel.
    group.bench_function("sum_axes_023_64x128x16x16", |b| {
        b.iter(|| black_box(&x).sum_axes(&[0, 2, 3], false))
    });
    // The same elements summed over channels (pixel norm's mean square) and over the batch
    // (minibatch stddev, a linear layer's bias gradient).
    group.bench_function("sum_axes_1_64x128x16x16", |b| {
        b.iter(|| black_box(&x).sum_axes(&[1], true))
    });
    group.bench_function("sum_axes_0_64x128x16x16", |b| {
        b.iter(|| black_box(&x).sum_axes(&[0], true))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = elementwise
}
