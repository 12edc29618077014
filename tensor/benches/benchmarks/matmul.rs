//! Matrix products through `Tensor::matmul` and `Tensor::linear` (the `gemm` crate's kernels,
//! or on AVX2 and AVX-512 the narrow products of a batch): square ones, and the MLP GAN's
//! linear layers at batch 64, forward (the weight read transposed), input gradient and weight
//! gradient (`linear/*/64x784x1024` is the generator's last layer: in 1024, out 784), the
//! forward pass and input gradient again with the weights evicted from the caches before each
//! call (`linear_cold/*`: inside a training step they come from memory, as the other layers'
//! weights and the optimiser's moments pass between two uses), and `gemm/a_bt`:
//! products `a · bᵀ` with both operands read along `k`, as a convolution's weight gradient
//! has them (`128x1152x4096`: a 3x3 convolution, 128 channels, 16 samples of 16x16;
//! `128x1024x16384`: the 64x64 DCGAN discriminator's second layer; `64x25x12544`: dcgan28's
//! first, 25 outputs summed over 12,544 positions).
//!
//! Throughput: `Elements` = FLOPs = `2 m n k` (a multiply and an add per term), so criterion's
//! `elem/s` is FLOP/s.

use super::{config, randn};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group};
use gantry_tensor::gemm;
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

fn linear(c: &mut Criterion) {
    let mut group = c.benchmark_group("linear");
    for (batch, out, inp) in [
        (64usize, 784usize, 1024usize),
        (64, 1024, 512),
        (64, 512, 784),
    ] {
        let x = randn(&[batch, inp], 1);
        let w = randn(&[out, inp], 2);
        group.throughput(Throughput::Elements(2 * (batch * out * inp) as u64));
        let id = format!("{batch}x{out}x{inp}");
        group.bench_function(BenchmarkId::new("forward", &id), |bench| {
            bench.iter(|| black_box(&x).linear(black_box(&w), None))
        });
        let gy = randn(&[batch, out], 3);
        group.bench_function(BenchmarkId::new("input_grad", &id), |bench| {
            bench.iter(|| black_box(&gy).matmul(black_box(&w)))
        });
        group.bench_function(BenchmarkId::new("weight_grad", &id), |bench| {
            bench.iter(|| black_box(&gy).matmul_t(black_box(&x), true, false))
        });
    }
    group.finish();
}

/// Bytes read between two calls of a `linear_cold` bench: twice the largest L3 cache of the
/// machines this project measures on (32 MiB). Read, not written: written lines would have to
/// be written back as the product's loads evict them, which a training step does not pay.
const EVICT_BYTES: usize = 64 << 20;

fn linear_cold(c: &mut Criterion) {
    let mut group = c.benchmark_group("linear_cold");
    let evict: Vec<u8> = (0..EVICT_BYTES).map(|i| i as u8).collect();
    for (batch, out, inp) in [(64usize, 784usize, 1024usize), (64, 512, 784)] {
        let x = randn(&[batch, inp], 1);
        let w = randn(&[out, inp], 2);
        let gy = randn(&[batch, out], 3);
        group.throughput(Throughput::Elements(2 * (batch * out * inp) as u64));
        let id = format!("{batch}x{out}x{inp}");
        // The batch stays in the caches (a step has just made it); the weights do not.
        let cold = |keep: &gantry_tensor::Tensor| {
            black_box(evict.iter().step_by(64).map(|&b| b as u32).sum::<u32>());
            black_box(keep.as_slice().iter().sum::<f32>());
        };
        group.bench_function(BenchmarkId::new("forward", &id), |bench| {
            bench.iter_batched(
                || cold(&x),
                |()| black_box(&x).linear(black_box(&w), None),
                BatchSize::PerIteration,
            )
        });
        group.bench_function(BenchmarkId::new("input_grad", &id), |bench| {
            bench.iter_batched(
                || cold(&gy),
                |()| black_box(&gy).matmul(black_box(&w)),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

fn a_bt(c: &mut Criterion) {
    let mut group = c.benchmark_group("gemm");
    for (m, n, k) in [
        (128usize, 1152usize, 4096usize),
        (128, 1024, 16384),
        (64, 25, 12544),
    ] {
        let a = randn(&[m, k], 1).to_vec();
        let b = randn(&[n, k], 2).to_vec();
        let mut out = vec![0.0; m * n];
        group.throughput(Throughput::Elements(2 * (m * n * k) as u64));
        let id = format!("{m}x{n}x{k}");
        group.bench_function(BenchmarkId::new("a_bt", id), |bench| {
            bench.iter(|| gemm(m, n, k, &a, false, &b, true, &mut out, false, true))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = square, linear, linear_cold, a_bt
}
