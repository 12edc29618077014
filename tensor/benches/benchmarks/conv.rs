//! Convolutions at the shapes of DCGAN 64x64's layers (pytorch/examples, ngf = ndf = 64) with
//! batch 64: the generator's transposed convolutions (forward, input gradient, weight
//! gradient) and the discriminator's convolutions (forward, input gradient, weight gradient),
//! and the second discriminator layer of dcgan28 (5x5, stride 2, 7x7 outputs; its generator's
//! second transposed convolution is the same product), and dcgan28's first transposed
//! convolution (5x5, stride 1, 7x7 maps).
//!
//! Throughput: `Elements` = FLOPs = `2 N O C kh kw oh ow` of the convolution (for a transposed
//! convolution, of the convolution it transposes: its own input size plays `oh ow`). The three
//! passes of a layer are GEMMs of the same size, so they share the count; criterion's `elem/s`
//! is FLOP/s.
//!
//! `gemm_only` runs just the forward pass's batch-wide GEMM on operands built beforehand: the
//! ceiling the layer could reach (for dcgan28's stride-1 layer, the im2col route's GEMM, padding
//! taps included, which its taps route beats), so that `forward - gemm_only` is the cost of im2col/col2im,
//! the layout changes and allocation.

use super::{config, randn};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use gantry_tensor::{Conv2dParams, ConvTranspose2dParams, gemm};
use std::hint::black_box;

const BATCH: usize = 64;

/// One layer: `in_ch -> out_ch` channels, a square `kernel`, `stride`, `padding`, on an input of
/// `in_px x in_px`.
struct Layer {
    name: &'static str,
    in_ch: usize,
    out_ch: usize,
    in_px: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
}

const fn layer(
    name: &'static str,
    in_ch: usize,
    out_ch: usize,
    in_px: usize,
    k: usize,
    s: usize,
    p: usize,
) -> Layer {
    Layer {
        name,
        in_ch,
        out_ch,
        in_px,
        kernel: k,
        stride: s,
        padding: p,
    }
}

/// The generator: z `[64, 100, 1, 1]` up to `[64, 3, 64, 64]`, then dcgan28's first
/// transposed convolution (5x5, stride 1, padding 2, on 7x7 maps: 31% of its taps on the
/// padding, which it skips).
const GENERATOR: [Layer; 6] = [
    layer("G1_ct100to512_1to4", 100, 512, 1, 4, 1, 0),
    layer("G2_ct512to256_4to8", 512, 256, 4, 4, 2, 1),
    layer("G3_ct256to128_8to16", 256, 128, 8, 4, 2, 1),
    layer("G4_ct128to64_16to32", 128, 64, 16, 4, 2, 1),
    layer("G5_ct64to3_32to64", 64, 3, 32, 4, 2, 1),
    layer("dcgan28_G1_ct256to128_7to7_k5", 256, 128, 7, 5, 1, 2),
];

/// The discriminator: `[64, 3, 64, 64]` down to one logit per image, then dcgan28's layer.
const DISCRIMINATOR: [Layer; 6] = [
    layer("D1_conv3to64_64to32", 3, 64, 64, 4, 2, 1),
    layer("D2_conv64to128_32to16", 64, 128, 32, 4, 2, 1),
    layer("D3_conv128to256_16to8", 128, 256, 16, 4, 2, 1),
    layer("D4_conv256to512_8to4", 256, 512, 8, 4, 2, 1),
    layer("D5_conv512to1_4to1", 512, 1, 4, 4, 1, 0),
    layer("dcgan28_D2_conv64to128_14to7_k5", 64, 128, 14, 5, 2, 2),
];

/// The batch-wide GEMM `[m, k] x [k, BATCH * n]` of a forward pass alone (the left operand
/// read transposed when `trans_a`), threaded inside the GEMM as `conv.rs` runs it, on operands
/// made once outside the timing.
fn batch_gemm(m: usize, n: usize, k: usize, trans_a: bool) -> impl FnMut() {
    let a = randn(&[m * k], 4).to_vec();
    let b = randn(&[k * BATCH * n], 5).to_vec();
    let mut out = vec![0.0f32; m * BATCH * n];
    move || {
        gemm(
            m,
            BATCH * n,
            k,
            &a,
            trans_a,
            &b,
            false,
            &mut out,
            false,
            true,
        );
        black_box(&out);
    }
}

fn generator(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv_transpose2d");
    for l in &GENERATOR {
        let p = ConvTranspose2dParams::new(l.stride, l.padding);
        let x = randn(&[BATCH, l.in_ch, l.in_px, l.in_px], 1);
        let w = randn(&[l.in_ch, l.out_ch, l.kernel, l.kernel], 2);
        let y = x.conv_transpose2d(&w, None, p);
        let gy = randn(y.shape(), 3);
        // The transposed convolution is the adjoint of a convolution from `y`'s size to `x`'s.
        let flops = 2 * BATCH * l.in_ch * l.out_ch * l.kernel * l.kernel * l.in_px * l.in_px;
        group.throughput(Throughput::Elements(flops as u64));
        group.bench_function(BenchmarkId::new("forward", l.name), |b| {
            b.iter(|| black_box(&x).conv_transpose2d(black_box(&w), None, p))
        });
        // The forward pass is the convolution's input gradient: the column matrix
        // `[Cout kh kw, N H W] = w^T x gy` (w `[Cin, Cout kh kw]`), then col2im.
        let rows = l.out_ch * l.kernel * l.kernel;
        let mut gemms = batch_gemm(rows, l.in_px * l.in_px, l.in_ch, true);
        group.bench_function(BenchmarkId::new("gemm_only", l.name), |b| {
            b.iter(&mut gemms)
        });
        group.bench_function(BenchmarkId::new("grad_input", l.name), |b| {
            b.iter(|| black_box(&gy).conv_transpose2d_grad_input(black_box(&w), p))
        });
        group.bench_function(BenchmarkId::new("grad_weight", l.name), |b| {
            b.iter(|| black_box(&x).conv_transpose2d_grad_weight(black_box(&gy), [l.kernel; 2], p))
        });
    }
    group.finish();
}

fn discriminator(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv2d");
    for l in &DISCRIMINATOR {
        let p = Conv2dParams::new(l.stride, l.padding);
        let x = randn(&[BATCH, l.in_ch, l.in_px, l.in_px], 1);
        let w = randn(&[l.out_ch, l.in_ch, l.kernel, l.kernel], 2);
        let y = x.conv2d(&w, None, p);
        let gy = randn(y.shape(), 3);
        let (oh, ow) = (y.shape()[2], y.shape()[3]);
        let flops = 2 * BATCH * l.out_ch * l.in_ch * l.kernel * l.kernel * oh * ow;
        group.throughput(Throughput::Elements(flops as u64));
        group.bench_function(BenchmarkId::new("forward", l.name), |b| {
            b.iter(|| black_box(&x).conv2d(black_box(&w), None, p))
        });
        // The forward pass: `[O, C kh kw] x [C kh kw, N oh ow]` after im2col.
        let rows = l.in_ch * l.kernel * l.kernel;
        let mut gemms = batch_gemm(l.out_ch, oh * ow, rows, false);
        group.bench_function(BenchmarkId::new("gemm_only", l.name), |b| {
            b.iter(&mut gemms)
        });
        group.bench_function(BenchmarkId::new("grad_input", l.name), |b| {
            b.iter(|| black_box(&gy).conv2d_grad_input(black_box(&w), [l.in_px; 2], p))
        });
        group.bench_function(BenchmarkId::new("grad_weight", l.name), |b| {
            b.iter(|| black_box(&x).conv2d_grad_weight(black_box(&gy), [l.kernel; 2], p))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = generator, discriminator
}
