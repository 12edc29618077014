//! Elementwise and reduction kernels at the size of a DCGAN activation (`[64, 128, 16, 16]`),
//! and the normalisation kernels: batch norm there and at dcgan28's `[64, 128, 7, 7]` (short
//! planes), instance norm at pix2pixHD's `[16, 64, 32, 32]`, forward and backward; and the MLP
//! GAN's row sums (bias gradients) and tanh (group `rows`).
//!
//! Throughput: `Elements` = FLOPs, counted as one per output element for the broadcasting add
//! and one per input element for the sum, so criterion's `elem/s` is FLOP/s (values a second
//! for tanh).

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
    // A generator's output activation, at the widest SIMD; libm's tanhf mapped over the same
    // elements for comparison (one call per value).
    group.bench_function("tanh_64x128x16x16", |b| b.iter(|| black_box(&x).tanh()));
    group.bench_function("tanh_libm_64x128x16x16", |b| {
        b.iter(|| black_box(&x).map(f32::tanh))
    });
    group.finish();

    // A fully connected layer's bias gradient (a sum over the batch's rows) at batch 64 with
    // 1024 outputs and at batch 4096 with 64, and the MLP generator's tanh.
    let mut group = c.benchmark_group("rows");
    for shape in [[64, 1024], [4096, 64]] {
        let x = randn(&shape, 3);
        group.throughput(Throughput::Elements((shape[0] * shape[1]) as u64));
        group.bench_function(format!("sum_axes_0_{}x{}", shape[0], shape[1]), |b| {
            b.iter(|| black_box(&x).sum_axes(&[0], false))
        });
    }
    let x = randn(&[64, 784], 4);
    group.throughput(Throughput::Elements(64 * 784));
    group.bench_function("tanh_64x784", |b| b.iter(|| black_box(&x).tanh()));
    group.finish();
}

fn norms(c: &mut Criterion) {
    let mut group = c.benchmark_group("norm");
    for shape in [SHAPE, [64, 128, 7, 7]] {
        let x = randn(&shape, 1);
        let gy = randn(&shape, 2);
        let (gamma, beta) = (randn(&[shape[1]], 3), randn(&[shape[1]], 4));
        let (mean, var) = x.channel_moments();
        let name = format!("{}x{}x{}x{}", shape[0], shape[1], shape[2], shape[3]);
        group.throughput(Throughput::Elements(x.len() as u64));
        group.bench_function(format!("batch_norm_forward_{name}"), |b| {
            b.iter(|| {
                let (m, v) = black_box(&x).channel_moments();
                x.batch_norm(&gamma, &beta, &m, &v, 1e-5)
            })
        });
        group.bench_function(format!("batch_norm_backward_{name}"), |b| {
            b.iter(|| black_box(&x).batch_norm_backward(&gy, &gamma, &mean, &var, 1e-5, true))
        });
    }
    let x = randn(&[16, 64, 32, 32], 5);
    let gy = randn(&[16, 64, 32, 32], 6);
    let (y, rstd) = x.instance_norm(1e-5);
    group.throughput(Throughput::Elements(x.len() as u64));
    group.bench_function("instance_norm_forward_16x64x32x32", |b| {
        b.iter(|| black_box(&x).instance_norm(1e-5))
    });
    group.bench_function("instance_norm_backward_16x64x32x32", |b| {
        b.iter(|| black_box(&y).instance_norm_backward(&gy, &rstd))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = elementwise, norms
}
