//! The tape's own cost and a DCGAN-sized block through it.
//!
//! - `tape/chain100`: a chain of 100 mixed elementwise ops on 16 elements, where the kernels are
//!   trivial and what is measured is the tape: recording nodes, cloning values, and the reverse
//!   `match`. `tensors_only` runs the same ops on bare tensors, so the difference to `forward`
//!   is the tape's own cost. Throughput is in ops: criterion's `elem/s` is ops per second.
//! - `tape/dcgan_d2`: conv 4x4 stride 2 -> batch norm (batch statistics) -> leaky ReLU, forward and
//!   backward, at the size of DCGAN's second discriminator layer (batch 64, 64 -> 128 channels,
//!   32x32 -> 16x16). Throughput is in FLOPs of the convolution's three products.

use criterion::{Criterion, SamplingMode, Throughput, criterion_group};
use gantry_autodiff::tensor::{Conv2dParams, Tensor};
use gantry_autodiff::{Tape, Var};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;
use std::time::Duration;

/// Ops in the chain.
const CHAIN: usize = 100;

/// Applies `CHAIN` elementwise ops to `x`, cycling through unary, scalar and binary ones so
/// that values stay bounded (`w` is a second operand of the same shape).
fn chain<'t>(x: Var<'t>, w: Var<'t>) -> Var<'t> {
    (0..CHAIN).fold(x, |v, i| match i % 5 {
        0 => v.mul(w),
        1 => v.tanh(),
        2 => v.add(w),
        3 => v.mul_scalar(0.5),
        _ => v.sigmoid(),
    })
}

/// The same chain on bare tensors, without a tape: the kernels' share of the chain's time.
fn raw_chain(x: &Tensor, w: &Tensor) -> Tensor {
    (0..CHAIN).fold(x.clone(), |v, i| match i % 5 {
        0 => v.mul(w),
        1 => v.tanh(),
        2 => v.add(w),
        3 => v.mul_scalar(0.5),
        _ => v.sigmoid(),
    })
}

/// The 100-op chain on 16 elements: bare tensors (baseline), forward on a tape, and forward +
/// backward.
fn chain100(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let x0 = Tensor::randn(&[16], 0.0, 1.0, &mut rng);
    let w0 = Tensor::randn(&[16], 0.0, 1.0, &mut rng);
    let seed = Tensor::ones(&[16]);
    let mut group = c.benchmark_group("tape/chain100");
    group.throughput(Throughput::Elements(CHAIN as u64));
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("tensors_only", |b| {
        b.iter(|| black_box(raw_chain(&x0, &w0)))
    });
    group.bench_function("forward", |b| {
        b.iter(|| {
            let tape = Tape::new();
            let (x, w) = (tape.leaf(x0.clone()), tape.leaf(w0.clone()));
            black_box(chain(x, w).value());
        })
    });
    group.bench_function("forward_backward", |b| {
        b.iter(|| {
            let tape = Tape::new();
            let (x, w) = (tape.leaf(x0.clone()), tape.leaf(w0.clone()));
            let grads = chain(x, w).backward_with(seed.clone());
            black_box(grads.get(w).map(Tensor::len));
        })
    });
    group.finish();
}

/// Batch size of DCGAN's second discriminator layer.
const N: usize = 64;
/// Input channels.
const CIN: usize = 64;
/// Output channels.
const COUT: usize = 128;
/// Input height and width (the output is half).
const HW: usize = 32;
/// Kernel size.
const K: usize = 4;

/// Conv -> batch norm -> leaky ReLU, forward and backward to the input and every parameter.
fn dcgan_d2(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let x0 = Tensor::randn(&[N, CIN, HW, HW], 0.0, 1.0, &mut rng);
    let w0 = Tensor::randn(&[COUT, CIN, K, K], 0.0, 0.02, &mut rng);
    let gamma0 = Tensor::randn(&[COUT], 1.0, 0.02, &mut rng);
    let beta0 = Tensor::zeros(&[COUT]);
    let out = HW / 2;
    let gy = Tensor::randn(&[N, COUT, out, out], 0.0, 1.0, &mut rng);
    // One product is 2 N COUT out² CIN K² FLOPs; backward does two more (input and weight).
    let conv_flops = 2 * N * COUT * out * out * CIN * K * K;

    let mut group = c.benchmark_group("tape/dcgan_d2");
    // Iterations take a few hundred milliseconds: few samples, one iteration each.
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(conv_flops as u64));
    group.bench_function("forward", |b| {
        b.iter(|| {
            let tape = Tape::new();
            let x = tape.leaf(x0.clone());
            let [w, gamma, beta] = [&w0, &gamma0, &beta0].map(|t| tape.leaf(t.clone()));
            let y = block(x, w, gamma, beta);
            black_box(y.value());
        })
    });
    group.throughput(Throughput::Elements(3 * conv_flops as u64));
    group.bench_function("forward_backward", |b| {
        b.iter(|| {
            let tape = Tape::new();
            let x = tape.leaf(x0.clone());
            let [w, gamma, beta] = [&w0, &gamma0, &beta0].map(|t| tape.leaf(t.clone()));
            let grads = block(x, w, gamma, beta).backward_with(gy.clone());
            black_box(grads.get(w).map(Tensor::len));
        })
    });
    group.finish();
}

/// The block: conv 4x4 stride 2 padding 1 without bias, batch norm, leaky ReLU 0.2.
fn block<'t>(x: Var<'t>, w: Var<'t>, gamma: Var<'t>, beta: Var<'t>) -> Var<'t> {
    x.conv2d(w, None, Conv2dParams::new(2, 1))
        .batch_norm_train(gamma, beta, 1e-5)
        .y
        .leaky_relu(0.2)
}

criterion_group!(benches, chain100, dcgan_d2);
