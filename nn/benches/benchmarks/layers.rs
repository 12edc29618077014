//! Forward + backward of each layer at DCGAN sizes, batch 64, in training mode.

use criterion::{Criterion, Throughput, criterion_group};
use gantry_autodiff::Tape;
use gantry_nn::{
    BatchNormConfig, Conv2dConfig, ConvTranspose2dConfig, LeakyReLU, LinearConfig, Mode, Module,
};
use gantry_tensor::Tensor;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::hint::black_box;

const BATCH: usize = 64;

/// Runs `layer` forward on a fresh tape with the input as a leaf (so the input's gradient is
/// computed, as inside a network) and back from a seed of ones.
fn forward_backward(layer: &dyn Module, x: &Tensor, seed: &Tensor) {
    let tape = Tape::new();
    let y = layer.forward(tape.leaf(x.clone()), Mode::Train);
    black_box(y.backward_with(seed.clone()));
}

/// The output of one forward pass, for the seed's shape.
fn output_shape(layer: &dyn Module, x: &Tensor) -> Vec<usize> {
    let tape = Tape::new();
    layer.forward(tape.constant(x.clone()), Mode::Train).shape()
}

fn bench_layer(c: &mut Criterion, name: &str, layer: &dyn Module, x: Tensor, work: Throughput) {
    let seed = Tensor::ones(&output_shape(layer, &x));
    let mut g = c.benchmark_group("layer_fwd_bwd_b64");
    g.throughput(work);
    g.bench_function(name, |b| b.iter(|| forward_backward(layer, &x, &seed)));
    g.finish();
}

/// Forward `2·M·N·K` multiply-adds, times three for the two gradients.
fn gemm_flops(m: usize, n: usize, k: usize) -> Throughput {
    Throughput::Elements(3 * 2 * (m * n * k) as u64)
}

fn layers(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(0);
    let mut input = |shape: &[usize]| Tensor::randn(shape, 0.0, 1.0, &mut rng);
    let (x_lin, x_conv, x_convt, x_act) = (
        input(&[BATCH, 784]),
        input(&[BATCH, 64, 32, 32]),
        input(&[BATCH, 128, 16, 16]),
        input(&[BATCH, 128, 16, 16]),
    );
    let mut rng = StdRng::seed_from_u64(1);

    let linear = LinearConfig::new(784, 512).build(&mut rng).unwrap();
    bench_layer(
        c,
        "linear_784_512",
        &linear,
        x_lin,
        gemm_flops(BATCH, 512, 784),
    );

    // 32x32 -> 16x16: M = 64·256 output pixels, N = 128 channels, K = 64·4·4.
    let conv = Conv2dConfig::new(64, 128, 4)
        .stride(2)
        .padding(1)
        .bias(false)
        .build(&mut rng)
        .unwrap();
    let flops = gemm_flops(BATCH * 16 * 16, 128, 64 * 16);
    bench_layer(c, "conv2d_64_128_k4s2p1_32x32", &conv, x_conv, flops);

    // 16x16 -> 32x32: the adjoint of the convolution above, the same work.
    let convt = ConvTranspose2dConfig::new(128, 64, 4)
        .stride(2)
        .padding(1)
        .bias(false)
        .build(&mut rng)
        .unwrap();
    let flops = gemm_flops(BATCH * 16 * 16, 64 * 16, 128);
    bench_layer(
        c,
        "conv_transpose2d_128_64_k4s2p1_16x16",
        &convt,
        x_convt,
        flops,
    );

    let elems = Throughput::Elements(x_act.len() as u64);
    let bn = BatchNormConfig::new(128).build().unwrap();
    bench_layer(
        c,
        "batch_norm2d_128_16x16",
        &bn,
        x_act.clone(),
        elems.clone(),
    );
    bench_layer(
        c,
        "leaky_relu_64x128x16x16",
        &LeakyReLU::new(0.2),
        x_act,
        elems,
    );
}

criterion_group! {
    name = benches;
    config = super::config();
    targets = layers
}
