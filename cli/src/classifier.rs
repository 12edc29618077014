//! `gantry classifier`: train the digit classifier that `gantry eval` scores samples with.

use crate::data;
use crate::progress;
use anyhow::{Context, Result, bail};
use clap::Args;
use gantry_datasets::{Dataset, Split};
use gantry_gan::metrics::classifier::{
    ClassifierConfig, ClassifierInfo, DigitClassifier, TrainOptions, train,
};
use gantry_tensor::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;
use std::time::Instant;

/// `gantry classifier`.
#[derive(Args, Debug)]
#[command(
    after_help = "A small CNN (3 convolutions, 128 penultimate features, ~500k parameters) \
trained with Adam on the data's training split; its test accuracy is printed and stored in the \
file. `gantry eval` finds data/classifiers/DATA.safetensors by itself.\n\
Examples:\n  gantry classifier --data mnist --out data/classifiers/mnist.safetensors\n  \
gantry classifier --data fashion-mnist --epochs 6 --out data/classifiers/fashion-mnist.safetensors"
)]
pub struct ClassifierArgs {
    /// Labelled 28x28 grey images: mnist, fashion-mnist, or a path to a data set with labels.
    #[arg(long, default_value = "mnist")]
    pub data: String,
    /// The safetensors file to write (atomically).
    #[arg(long)]
    pub out: PathBuf,
    /// Passes over the training split (the learning rate halves after each).
    #[arg(long, default_value_t = 4)]
    pub epochs: usize,
    /// Images per step.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Seed of the weights, the data order, the shifts and dropout.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// All images of a labelled split as `[N, 1, 28, 28]` and their labels.
pub fn labelled_images(spec: &str, split: Split, quiet: bool) -> Result<(Tensor, Vec<usize>)> {
    let data = data::load(spec, split, quiet)?;
    let shape = data.set.image_shape();
    if shape != [1, 28, 28] {
        bail!("--data {spec}: the classifier reads 28x28 grey images, these are {shape:?}");
    }
    let set: &dyn Dataset = data.set.as_ref();
    let mut pixels = Vec::with_capacity(set.len() * 784);
    let mut labels = Vec::with_capacity(set.len());
    for i in 0..set.len() {
        let e = set.get(i);
        labels.push(
            e.label
                .with_context(|| format!("--data {spec}: image {i} has no class label"))?,
        );
        pixels.extend_from_slice(&e.image.as_slice());
    }
    Ok((Tensor::from_vec(&[set.len(), 1, 28, 28], pixels), labels))
}

/// Runs `gantry classifier`.
pub fn run(args: ClassifierArgs) -> Result<()> {
    if args.epochs == 0 || args.batch_size == 0 {
        bail!("--epochs and --batch-size must be at least 1");
    }
    let started = Instant::now();
    let (train_x, train_y) = labelled_images(&args.data, Split::Train, args.quiet)?;
    let (test_x, test_y) = labelled_images(&args.data, Split::Test, args.quiet)?;
    if let Some(&bad) = train_y.iter().chain(&test_y).find(|&&l| l >= 10) {
        bail!(
            "--data {}: label {bad} is not a digit class 0..9",
            args.data
        );
    }
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let model = DigitClassifier::new(ClassifierConfig::default(), &mut rng)?;
    let options = TrainOptions {
        epochs: args.epochs,
        batch_size: args.batch_size,
        seed: args.seed,
        ..TrainOptions::default()
    };
    let steps = train_y.len().div_ceil(args.batch_size) * args.epochs;
    let bar = progress::steps(0, steps as u64, args.quiet);
    train(&model, &train_x, &train_y, &options, &mut |p| {
        bar.inc(1);
        bar.set_message(format!(
            "epoch {} loss {:.4} train acc {:.4}",
            p.epoch + 1,
            p.loss,
            p.accuracy
        ));
        if p.step == p.steps && !args.quiet {
            bar.suspend(|| {
                eprintln!(
                    "epoch {}: loss {:.4}, training accuracy {:.4} ({:.0}s)",
                    p.epoch + 1,
                    p.loss,
                    p.accuracy,
                    started.elapsed().as_secs_f64()
                );
            });
        }
    })?;
    bar.finish_and_clear();
    let accuracy = model.accuracy(&test_x, &test_y);
    let command = std::iter::once("gantry".to_string())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let info = ClassifierInfo {
        data: args.data.clone(),
        accuracy,
        command,
    };
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    model.save(&args.out, &info)?;
    println!(
        "test accuracy {:.2}% ({} of {} test images) after {} epochs in {:.0}s; wrote {}",
        accuracy * 100.0,
        (accuracy * test_y.len() as f64).round(),
        test_y.len(),
        args.epochs,
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(())
}
