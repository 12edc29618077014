//! A GAN model defined in user code and trained with gantry's [`Trainer`]: a generator with a
//! layer of its own (a residual block, written against `Module`) learns a two-mode 1-D
//! distribution, `N(-2, 0.3)` or `N(+2, 0.3)` with equal odds.
//!
//! ```text
//! cargo run --release -p gantry-gan --example custom_gan -- 3000
//! ```
//!
//! What a model implements is the [`Gan`] trait: its two players, how to draw noise, and
//! (optionally) what the discriminator sees and which extra losses apply. The test
//! `gan/tests/examples.rs` runs [`train`] and checks that both modes are found.

use gantry_autodiff::Var;
use gantry_gan::models::{Batch, Gan, MlpConfig, MlpOutput, ModelConfig};
use gantry_gan::{TrainConfig, Trainer};
use gantry_nn::{Linear, LinearConfig, Mode, Module, Param, ReLU, Sequential, join};
use gantry_tensor::Tensor;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `x + W2 relu(W1 x)`: a layer gantry does not ship, written by the user.
struct Residual {
    inner: Linear,
    outer: Linear,
}

impl Residual {
    fn new(width: usize, rng: &mut dyn RngCore) -> Self {
        Residual {
            inner: LinearConfig::new(width, width).build(rng).unwrap(),
            outer: LinearConfig::new(width, width).build(rng).unwrap(),
        }
    }
}

impl Module for Residual {
    // Parameter names (`inner.weight`, ...) are what optimizers and state dicts see.
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        self.inner.visit(&join(prefix, "inner"), f);
        self.outer.visit(&join(prefix, "outer"), f);
    }

    fn forward<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        let h = self.inner.forward(x, mode).relu();
        x.add(self.outer.forward(h, mode))
    }
}

/// The user's model: a residual generator and an MLP discriminator on 1-D samples.
struct TwoModes {
    g: Sequential,
    d: Sequential,
}

impl TwoModes {
    fn new(rng: &mut dyn RngCore) -> Self {
        let linear = |i, o, rng: &mut dyn RngCore| LinearConfig::new(i, o).build(rng).unwrap();
        let g = Sequential::new()
            .add(linear(4, 32, rng))
            .add(Residual::new(32, rng))
            .add(ReLU)
            .add(linear(32, 1, rng));
        let d = Sequential::new()
            .add(linear(1, 32, rng))
            .add(ReLU)
            .add(linear(32, 32, rng))
            .add(ReLU)
            .add(linear(32, 1, rng));
        TwoModes { g, d }
    }
}

impl Gan for TwoModes {
    fn generator(&self) -> &dyn Module {
        &self.g
    }

    fn discriminator(&self) -> &dyn Module {
        &self.d
    }

    /// Only checkpoints and error messages read this. The configuration enum lists the
    /// built-in models, so a user model describes itself as the nearest one: an MLP GAN
    /// with the same latent and sample sizes.
    fn config(&self) -> ModelConfig {
        ModelConfig::Mlp(MlpConfig {
            latent: 4,
            sample_shape: vec![1],
            g_hidden: vec![32],
            d_hidden: vec![32, 32],
            leaky_slope: 0.0,
            d_dropout: 0.0,
            output: MlpOutput::Linear,
            pack: 1,
            g_batch_norm: false,
            d_maxout: 0,
        })
    }

    fn noise(&self, n: usize, rng: &mut dyn RngCore) -> Option<Tensor> {
        Some(Tensor::randn(&[n, 4], 0.0, 1.0, rng))
    }
}

/// Draws `n` samples of the target distribution.
fn real(n: usize, rng: &mut impl Rng) -> Tensor {
    let x = Tensor::randn(&[n, 1], 0.0, 0.3, rng).to_vec();
    let v = x
        .into_iter()
        .map(|e| e + if rng.random_bool(0.5) { 2.0 } else { -2.0 })
        .collect();
    Tensor::from_vec(&[n, 1], v)
}

/// Trains the model for `steps` steps of 128 samples; returns the fraction of 1,000
/// generated samples near each mode (`|x -+ 2| < 1`).
pub fn train(steps: u64) -> Result<(f32, f32), Box<dyn std::error::Error>> {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let model = TwoModes::new(&mut rng);
    let mut trainer = Trainer::new(Box::new(model), TrainConfig::default())?;
    let mut data_rng = ChaCha8Rng::seed_from_u64(2);
    let mut next = || Batch::new(real(128, &mut data_rng));
    for _ in 0..steps {
        trainer.train_step(&mut next)?;
    }
    let gan = trainer.gan.as_ref();
    let z = gan.noise(1000, &mut rng).expect("the model draws noise");
    let tape = gantry_autodiff::Tape::new();
    let x = gan
        .generator()
        .forward(tape.constant(z), Mode::Eval)
        .value()
        .to_vec();
    let near = |m: f32| x.iter().filter(|v| (*v - m).abs() < 1.0).count() as f32 / 1000.0;
    Ok((near(-2.0), near(2.0)))
}

#[allow(dead_code)] // the test includes this file for `train` alone
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let steps = match std::env::args().nth(1) {
        Some(s) => s
            .parse()
            .map_err(|_| format!("steps: {s} is not a number"))?,
        None => 2000,
    };
    let (left, right) = train(steps)?;
    println!(
        "after {steps} steps: {:.0}% of samples near -2, {:.0}% near +2",
        100.0 * left,
        100.0 * right
    );
    Ok(())
}
