//! `gantry classifier`: train the image classifier that `gantry eval` scores samples with.

use crate::data;
use crate::progress;
use anyhow::{Context, Result, bail};
use clap::Args;
use gantry_datasets::{Dataset, Split};
use gantry_gan::metrics::classifier::{
    ClassifierConfig, ClassifierInfo, ImageClassifier, TrainOptions, train,
};
use gantry_tensor::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;
use std::time::Instant;

/// `gantry classifier`.
#[derive(Args, Debug)]
#[command(
    after_help = "A small CNN (a 3x3 convolution, stride-2 convolutions until the side is at most \
8, 128 penultimate features; ~500k parameters for digits, ~1.3M for 64x64 RGB) trained with Adam \
on the data's training split, with random shifts (and horizontal flips for colour images); its \
test accuracy is printed and stored in the file. `gantry eval` finds \
data/classifiers/DATA.safetensors by itself.\n\
Shipped: mnist, fashion-mnist (digits and clothes, 28x28 grey), emoji (9 Unicode categories, \
64x64 RGB), cifar10 (10 classes, 32x32 RGB), emoji-faces (the 4 age groups of the 60 emoji \
faces, the age classifier of `gantry eval` on face-ageing runs).\n\
Examples:\n  gantry classifier --data mnist --out data/classifiers/mnist.safetensors\n  \
gantry classifier --data fashion-mnist --epochs 6 --out data/classifiers/fashion-mnist.safetensors\n  \
gantry classifier --data emoji --epochs 12 --out data/classifiers/emoji.safetensors"
)]
pub struct ClassifierArgs {
    /// Labelled images: mnist, fashion-mnist, emoji, emoji128, emoji-faces, cifar10, or a folder with
    /// train/ and test/ holding one sub-folder per class.
    #[arg(long, default_value = "mnist")]
    pub data: String,
    /// The safetensors file to write (atomically).
    #[arg(long)]
    pub out: PathBuf,
    /// Passes over the training split.
    #[arg(long, default_value_t = 4)]
    pub epochs: usize,
    /// The learning rate (Adam's, 1e-3 in the first epoch) is multiplied by this after each
    /// epoch.
    #[arg(long, default_value_t = 0.5)]
    pub lr_decay: f32,
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

/// All images of a labelled split, `[N, C, H, W]`, their labels and the number of classes.
pub struct Labelled {
    /// The images, in `[-1, 1]`.
    pub images: Tensor,
    /// The class of each image.
    pub labels: Vec<usize>,
    /// The number of classes of the data set.
    pub classes: usize,
}

/// Loads every image of `split` of the data `spec` with its label.
pub fn labelled_images(spec: &str, split: Split, quiet: bool) -> Result<Labelled> {
    let data = data::load(spec, split, quiet)?;
    let shape = data.set.image_shape();
    if shape.len() != 3 || data.set.target_shape().is_some() {
        bail!("--data {spec}: a classifier reads labelled images, these are {shape:?} samples");
    }
    let set: &dyn Dataset = data.set.as_ref();
    let Some(classes) = set.num_classes() else {
        bail!("--data {spec} has no class labels");
    };
    let per: usize = shape.iter().product();
    let mut pixels = Vec::with_capacity(set.len() * per);
    let mut labels = Vec::with_capacity(set.len());
    for i in 0..set.len() {
        let e = set.get(i);
        labels.push(
            e.label
                .with_context(|| format!("--data {spec}: image {i} has no class label"))?,
        );
        pixels.extend_from_slice(&e.image.as_slice());
    }
    Ok(Labelled {
        images: Tensor::from_vec(&[set.len(), shape[0], shape[1], shape[2]], pixels),
        labels,
        classes,
    })
}

/// Runs `gantry classifier`.
pub fn run(args: ClassifierArgs) -> Result<()> {
    if args.epochs == 0 || args.batch_size == 0 {
        bail!("--epochs and --batch-size must be at least 1");
    }
    if !(args.lr_decay > 0.0 && args.lr_decay <= 1.0) {
        bail!("--lr-decay {} must be in (0, 1]", args.lr_decay);
    }
    let started = Instant::now();
    let train_set = labelled_images(&args.data, Split::Train, args.quiet)?;
    let test_set = labelled_images(&args.data, Split::Test, args.quiet)?;
    let (train_x, train_y) = (&train_set.images, &train_set.labels);
    let (test_x, test_y) = (&test_set.images, &test_set.labels);
    let [_, c, h, w] = <[usize; 4]>::try_from(train_x.shape()).expect("images are NCHW");
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let config = ClassifierConfig::for_images([c, h, w], train_set.classes);
    let model =
        ImageClassifier::new(config, &mut rng).with_context(|| format!("--data {}", args.data))?;
    let options = TrainOptions {
        epochs: args.epochs,
        batch_size: args.batch_size,
        seed: args.seed,
        lr_decay: args.lr_decay,
        // One pixel for digits, 2 for 32x32, 4 for 64x64; mirrored colour images are
        // still the same class (a mirrored digit is not).
        max_shift: (h.max(w) / 16).max(1),
        flip: c == 3,
        ..TrainOptions::default()
    };
    let steps = train_y.len().div_ceil(args.batch_size) * args.epochs;
    let bar = progress::steps(0, steps as u64, args.quiet);
    train(&model, train_x, train_y, &options, &mut |p| {
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
    let accuracy = model.accuracy(test_x, test_y);
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
