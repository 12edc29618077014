//! The WGAN-GP critic's update as gantry trains it, batch 64: the shipped model
//! (`models::WganGp`, default widths, no normalisation in the critic) with its recipe
//! (`Recipe::wgan_gp`: Wasserstein loss, gradient penalty 10, Adam 1e-4 with betas (0, 0.9)).
//!
//! - `critic_step_*`: one `Trainer::discriminator_step`, the trainer's own code path: G makes
//!   a fake batch (training mode, recorded but never differentiated), D scores the real and
//!   the fake batch, the penalty differentiates D's gradient at random interpolates once more
//!   (double backward), Adam updates D.
//! - `gradient_penalty_*`: the penalty alone, as its term computes it
//!   (`objective::term::gradient_penalty`): D on fixed interpolates (a leaf), the input gradient with a
//!   recorded graph, `10 * mean (|g| - 1)²`, and the backward to D's weights; no update.
//!
//! At 64x64 RGB (the emoji) and at 32x32 with one channel (MNIST, resized as the model
//! needs). Real batches and interpolates are uniform in `[-1, 1)` and made before timing.
//!
//! Throughput is a nominal FLOP count in the reference's convention
//! (`gantry_gan::workloads`: forward FLOPs of the convolutions, 2 x multiply-adds, and a
//! forward plus backward costing three forwards). With `F_G`, `F_D` the forward FLOPs of one
//! sample, the penalty costs `6 F_D` (forward; input gradient, one transposed convolution per
//! convolution; its backward, a weight and an input gradient for each convolution and each
//! recorded input-gradient op) and a critic step `F_G + 2 * 3 F_D + 6 F_D`, times the batch.
//!
//! `bench/wgan_gp.py` times PyTorch's version under the same names and counts; run both at one
//! thread count to compare them (`bench/README.md`).

use criterion::{Criterion, Throughput};
use gantry_autodiff::Tape;
use gantry_gan::models::{Batch, ModelConfig, Recipe, WganGpConfig};
use gantry_gan::objective::term::gradient_penalty;
use gantry_gan::objective::{ObjectiveConfig, model_terms};
use gantry_gan::workloads::{self, Layer, Workload};
use gantry_gan::{TrainConfig, Trainer};
use gantry_nn::{Mode, param_count};
use gantry_tensor::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;

const BATCH: usize = 64;
/// The penalty's weight in the recipe.
const GP_WEIGHT: f32 = 10.0;

/// The critic's layers at side `size` with `channels` input channels: pytorch/examples'
/// discriminator with biases and without batch norm (see `gan/src/models/wgan_gp.rs`).
fn critic_layers(size: usize, channels: usize) -> Vec<Layer> {
    let conv = |input, cin, cout, stride, padding| Layer::Conv2d {
        input,
        cin,
        cout,
        kernel: 4,
        stride,
        padding,
        bias: true,
    };
    let (mut width, mut side) = (64, size / 2);
    let mut d = vec![conv(size, channels, width, 2, 1)];
    while side > 4 {
        d.push(conv(side, width, 2 * width, 2, 1));
        width *= 2;
        side /= 2;
    }
    d.push(conv(side, width, 1, 1, 0));
    d
}

/// Times both benches for images of side `size` with `channels` channels.
fn bench_size(c: &mut Criterion, size: usize, channels: usize, suffix: &str) {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let model = ModelConfig::WganGp(WganGpConfig::new(size, channels));
    let recipe = Recipe::wgan_gp();
    let mut terms = model_terms(&model);
    terms.extend(recipe.terms.iter().cloned());
    let config = TrainConfig {
        k: recipe.k,
        objective: ObjectiveConfig {
            loss: recipe.loss.to_string(),
            terms,
            ..ObjectiveConfig::default()
        },
        optim_g: recipe.adam(true),
        optim_d: recipe.adam(false),
        ema: recipe.ema,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(model.build(&mut rng).expect("the shipped model"), config)
        .expect("the recipe fits the model");
    let data = Batch::new(Tensor::rand_uniform(
        &[BATCH, channels, size, size],
        -1.0,
        1.0,
        &mut rng,
    ));
    let interpolates = Tensor::rand_uniform(&[BATCH, channels, size, size], -1.0, 1.0, &mut rng);

    // The FLOP counts are of these networks: the shipped ones have the same parameters.
    let generator = match channels {
        1 => Workload::Dcgan64c1,
        _ => Workload::Dcgan64c3,
    }
    .layers(size)
    .expect("a DCGAN size")
    .0;
    let critic = critic_layers(size, channels);
    let (pg, pd) = (
        param_count(trainer.gan.generator()),
        param_count(trainer.gan.discriminator()),
    );
    assert_eq!(pg, workloads::params(&generator), "generator parameters");
    assert_eq!(pd, workloads::params(&critic), "critic parameters");
    let (fg, fd) = (workloads::flops(&generator), workloads::flops(&critic));
    eprintln!(
        "wgan_gp {size}x{size}x{channels}: generator {pg} parameters, critic {pd}; \
         forward FLOPs per sample F_G {fg}, F_D {fd}"
    );

    let mut g = c.benchmark_group("wgan_gp_b64");
    g.throughput(Throughput::Elements(BATCH as u64 * (fg + 12 * fd)));
    g.bench_function(format!("critic_step_{suffix}"), |b| {
        b.iter(|| {
            let mut next = || data.clone();
            black_box(trainer.discriminator_step(&mut next).expect("finite loss"))
        })
    });
    g.throughput(Throughput::Elements(BATCH as u64 * 6 * fd));
    let d = trainer.gan.discriminator();
    g.bench_function(format!("gradient_penalty_{suffix}"), |b| {
        b.iter(|| {
            let tape = Tape::new();
            let x = tape.leaf(interpolates.clone());
            let gp = gradient_penalty(x, d.forward(x, Mode::Train)).expect("no batch norm");
            black_box(gp.mul_scalar(GP_WEIGHT).backward())
        })
    });
    g.finish();
}

/// Benches the critic's step and its gradient penalty at 64x64 RGB and 32x32 grey.
pub fn bench(c: &mut Criterion) {
    bench_size(c, 64, 3, "64x64");
    bench_size(c, 32, 1, "32x32c1");
}
