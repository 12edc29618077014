//! Trains a DCGAN on the bundled MNIST digits from Rust, with the crates and no CLI, and
//! writes an 8x8 grid of samples.
//!
//! ```text
//! cargo run --release -p gantry-gan --example train_dcgan -- 2000 digits.png
//! ```
//!
//! Arguments: the number of steps (default 500) and the PNG to write (default
//! `dcgan_samples.png`). The test `gan/tests/examples.rs` runs [`train`] for a few steps.

use gantry_autodiff::Tape;
use gantry_datasets::{BatchConfig, Batches, Split, builtin};
use gantry_gan::models::{Batch, DcganConfig, ModelConfig};
use gantry_gan::{StepMetrics, TrainConfig, Trainer, samples};
use gantry_nn::Mode;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;

/// Trains the TensorFlow tutorial's 28x28 DCGAN for `steps` steps of 64 digits and writes 64
/// samples to `out`; returns the last step's metrics.
pub fn train(steps: u64, out: &Path) -> Result<StepMetrics, Box<dyn std::error::Error>> {
    let digits = builtin("mnist", Split::Train)?;
    let config = BatchConfig::new(64).seed(0).drop_last(true).forever();
    let mut batches = Batches::new(digits.as_ref(), config);

    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let gan = ModelConfig::Dcgan(DcganConfig::dcgan28()).build(&mut rng)?;
    let mut trainer = Trainer::new(gan, TrainConfig::default())?; // Adam 2e-4, beta1 0.5

    let mut next = || Batch::new(batches.next().expect("the batches never end").images);
    let mut last = None;
    for step in 1..=steps {
        let m = trainer.train_step(&mut next)?;
        if step % 100 == 0 || step == steps {
            println!(
                "step {step}: loss D {:.3}, loss G {:.3}",
                m.loss_d, m.loss_g
            );
        }
        last = Some(m);
    }

    // Sampling: noise through the generator with running batch-norm statistics.
    let gan = trainer.gan.as_ref();
    let z = gan.noise(64, &mut rng).expect("DCGAN draws noise");
    let tape = Tape::new();
    let images = gan
        .generator()
        .forward(tape.constant(z), Mode::Eval)
        .value();
    samples::save_grid(&images, 8, out)?;
    Ok(last.ok_or("no steps were run")?)
}

#[allow(dead_code)] // the test includes this file for `train` alone
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let steps = match args.next() {
        Some(s) => s
            .parse()
            .map_err(|_| format!("steps: {s} is not a number"))?,
        None => 500,
    };
    let out = args.next().unwrap_or_else(|| "dcgan_samples.png".into());
    train(steps, Path::new(&out))?;
    println!("wrote {out}");
    Ok(())
}
