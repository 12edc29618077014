//! Forward + backward of the ProGAN, BigGAN and pix2pixHD layers and of the weight
//! reparameterisations, batch 16, in training mode, at the sizes those models use them.
//!
//! Throughput is in FLOPs for layers that are convolutions underneath (forward plus both
//! gradients, about three times the forward's `2·M·N·K`) and in input elements for the
//! memory-bound ones. `conv_plain` and `conv_spectral_norm` / `conv_equalized_lr` are the same
//! convolution, so their difference is the reparameterisation's cost.
//!
//! `bench/layers.py` times PyTorch's versions of the same benches under the same names, shapes
//! and work counts; run both at one thread count to compare them (`bench/README.md`).

use criterion::{Criterion, Throughput, criterion_group};
use gantry_autodiff::Tape;
use gantry_nn::reparam::{self, EqualizedLr, SpectralNorm};
use gantry_nn::{
    AvgPool2dConfig, ConditionalBatchNorm2d, Conv2dConfig, InstanceNorm2dConfig, MinibatchStdDev,
    Mode, Module, PixelNorm, ReflectionPad2d, ResBlockDown, ResBlockUp, SelfAttention, Upsample,
};
use gantry_tensor::Tensor;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::hint::black_box;

const BATCH: usize = 16;

/// One forward and backward of `f` with the input as a leaf, from a seed of ones.
fn forward_backward(
    f: &dyn for<'t> Fn(gantry_autodiff::Var<'t>) -> gantry_autodiff::Var<'t>,
    x: &Tensor,
) {
    let tape = Tape::new();
    let y = f(tape.leaf(x.clone()));
    let seed = Tensor::ones(&y.shape());
    black_box(y.backward_with(seed));
}

fn bench(c: &mut Criterion, name: &str, layer: &dyn Module, x: &Tensor, work: Throughput) {
    let mut g = c.benchmark_group("gan_layer_fwd_bwd_b16");
    g.throughput(work);
    g.bench_function(name, |b| {
        b.iter(|| forward_backward(&|v| layer.forward(v, Mode::Train), x))
    });
    g.finish();
}

fn elements(x: &Tensor) -> Throughput {
    Throughput::Elements(x.len() as u64)
}

/// Forward `2·M·N·K` multiply-adds, times three for the two gradients.
fn gemm_flops(m: usize, n: usize, k: usize) -> Throughput {
    Throughput::Elements(3 * 2 * (m * n * k) as u64)
}

fn gan_layers(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(0);
    let x64 = Tensor::randn(&[BATCH, 64, 32, 32], 0.0, 1.0, &mut rng);
    let x128 = Tensor::randn(&[BATCH, 128, 16, 16], 0.0, 1.0, &mut rng);

    bench(
        c,
        "upsample_nearest2_64x32x32",
        &Upsample::nearest(2).unwrap(),
        &x64,
        elements(&x64),
    );
    bench(
        c,
        "upsample_bilinear2_64x32x32",
        &Upsample::bilinear(2).unwrap(),
        &x64,
        elements(&x64),
    );
    let pool = AvgPool2dConfig::new(3)
        .stride(2)
        .padding(1)
        .count_include_pad(false);
    bench(
        c,
        "avg_pool_k3s2p1_64x32x32",
        &pool.build().unwrap(),
        &x64,
        elements(&x64),
    );
    let inorm = InstanceNorm2dConfig::new(64).affine(true).build().unwrap();
    bench(c, "instance_norm_64x32x32", &inorm, &x64, elements(&x64));
    bench(
        c,
        "reflection_pad3_64x32x32",
        &ReflectionPad2d::new(3),
        &x64,
        elements(&x64),
    );
    bench(
        c,
        "pixel_norm_64x32x32",
        &PixelNorm::default(),
        &x64,
        elements(&x64),
    );
    let mbstd = MinibatchStdDev {
        group_size: Some(4),
        ..Default::default()
    };
    bench(
        c,
        "minibatch_std_g4_128x16x16",
        &mbstd,
        &x128,
        elements(&x128),
    );

    // 3x3 convolution 128 -> 128 on 16x16: plain, spectrally normalised, equalised.
    let flops = || gemm_flops(BATCH * 16 * 16, 128, 128 * 9);
    let conv = |rng: &mut StdRng| {
        Conv2dConfig::new(128, 128, 3)
            .padding(1)
            .build(rng)
            .unwrap()
    };
    bench(
        c,
        "conv_plain_128_k3_16x16",
        &conv(&mut rng),
        &x128,
        flops(),
    );
    let sn = conv(&mut rng);
    reparam::apply(&sn, reparam::conv_weights, |p| {
        SpectralNorm::default().attach(p, &mut rng)
    })
    .unwrap();
    bench(c, "conv_spectral_norm_128_k3_16x16", &sn, &x128, flops());
    let eq = conv(&mut rng);
    reparam::apply(&eq, reparam::conv_weights, |p| {
        EqualizedLr::default().attach(p)
    })
    .unwrap();
    bench(c, "conv_equalized_lr_128_k3_16x16", &eq, &x128, flops());

    // Self-attention at 128 channels, 16x16: the four 1x1 convolutions and the two batched
    // products (256 x 64 positions, 16 and 64 channels).
    let att = SelfAttention::new(128, &mut rng).unwrap();
    att.gamma.set(Tensor::from_vec(&[1], vec![0.5]));
    let hw = 16 * 16;
    let attn_flops =
        BATCH * (hw * 128 * (16 + 16 + 64) + hw * 64 * 128 + hw * (hw / 4) * (16 + 64));
    bench(
        c,
        "self_attention_128x16x16",
        &att,
        &x128,
        Throughput::Elements(3 * 2 * attn_flops as u64),
    );

    // BigGAN's blocks, 128 -> 64 channels up from 16x16, and 64 -> 128 down from 32x32.
    let cond = Tensor::randn(&[BATCH, 148], 0.0, 1.0, &mut rng);
    let up = ResBlockUp::new(128, 64, 148, &mut rng).unwrap();
    let up_flops = gemm_flops(BATCH * 32 * 32, 64, 128 * 9 + 64 * 9 + 128);
    let mut g = c.benchmark_group("gan_layer_fwd_bwd_b16");
    g.throughput(up_flops);
    g.bench_function("res_block_up_128_64_16x16", |b| {
        b.iter(|| {
            forward_backward(
                &|v| up.forward_cond(v, v.tape().constant(cond.clone()), Mode::Train),
                &x128,
            )
        })
    });
    let cbn = ConditionalBatchNorm2d::new(128, 148, &mut rng).unwrap();
    g.throughput(elements(&x128));
    g.bench_function("conditional_batch_norm_128x16x16", |b| {
        b.iter(|| {
            forward_backward(
                &|v| cbn.forward_cond(v, v.tape().constant(cond.clone()), Mode::Train),
                &x128,
            )
        })
    });
    g.finish();
    let down = ResBlockDown::new(64, 128, true, true, &mut rng).unwrap();
    let down_flops = gemm_flops(BATCH * 32 * 32, 128, 64 * 9 + 128 * 9 + 64);
    bench(c, "res_block_down_64_128_32x32", &down, &x64, down_flops);
}

criterion_group! {
    name = benches;
    config = super::config();
    targets = gan_layers
}
