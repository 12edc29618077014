//! A small convolutional image classifier, built from gantry-nn layers, whose penultimate
//! features and class probabilities score generated images (see [`digits`](super::digits)): the
//! digit classifiers of MNIST and Fashion-MNIST (28x28 grey), the emoji-category and CIFAR-10
//! classifiers (RGB), any `[C, H, W]` with `H, W >= 8`.
//!
//! ```text
//! features: Conv2d(C, w, k3, s1, p1) ReLU                        [N, w, H, W]
//!           Conv2d(w, 2w, k4, s2, p1) BatchNorm ReLU             [N, 2w, H/2, W/2]
//!           ... halving until the side is at most 8; the third and later halvings have 4w
//!           Flatten Linear(.., features) ReLU                    [N, features]  <- features()
//! head:     Dropout(0.3) Linear(features, classes)               [N, classes]   logits
//! ```
//!
//! For 28x28 digits (two halvings, w = 32): 501,834 trainable parameters (a 2.0 MB safetensors
//! file). Trained with Adam and cross-entropy, with random shifts (edge pixels repeated) and,
//! for photographs and emoji, random horizontal flips.

use crate::error::{GanError, Result};
use gantry_autodiff::{Reduction, Tape};
use gantry_nn::optim::{AdamConfig, Optimizer};
use gantry_nn::state_dict::{
    LoadOptions, load_tensors, read_safetensors, state_dict, write_safetensors,
};
use gantry_nn::{
    BatchNormConfig, Conv2dConfig, Dropout, Flatten, LinearConfig, Mode, Module, Param, ReLU,
    Sequential, join, loss,
};
use gantry_tensor::Tensor;
use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

const FORMAT: &str = "gantry-classifier-1";

/// The digit classifiers' image shape, `[1, 28, 28]` (and the default of [`ClassifierConfig`]).
pub const DIGIT_SHAPE: [usize; 3] = [1, 28, 28];

/// The smallest image side the classifier reads.
pub const MIN_SIDE: usize = 8;

/// Images per forward pass when scoring (bounds memory, not the result).
const CHUNK: usize = 500;

/// The classifier's sizes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifierConfig {
    /// The images it reads, `[C, H, W]` (files of older versions, which read only digits,
    /// have none: `[1, 28, 28]`).
    #[serde(default = "digit_shape")]
    pub image_shape: [usize; 3],
    /// Classes (10 for digits).
    pub classes: usize,
    /// Channels of the first convolution (the second and third have twice as many).
    pub width: usize,
    /// Penultimate features.
    pub features: usize,
    /// Dropout before the last layer.
    pub dropout: f32,
}

fn digit_shape() -> [usize; 3] {
    DIGIT_SHAPE
}

impl ClassifierConfig {
    /// The default sizes for images of `image_shape` in `classes` classes.
    pub fn for_images(image_shape: [usize; 3], classes: usize) -> Self {
        ClassifierConfig {
            image_shape,
            classes,
            ..ClassifierConfig::default()
        }
    }
}

impl Default for ClassifierConfig {
    /// The digit classifier: `[1, 28, 28]`, 10 classes.
    fn default() -> Self {
        ClassifierConfig {
            image_shape: DIGIT_SHAPE,
            classes: 10,
            width: 32,
            features: 128,
            dropout: 0.3,
        }
    }
}

/// Where a trained classifier came from, stored in its file's metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifierInfo {
    /// The data it was trained on (`mnist`, `fashion-mnist`, `emoji`, `cifar10`).
    pub data: String,
    /// Accuracy on that data's test set, in `[0, 1]`.
    pub accuracy: f64,
    /// The command that trained it.
    pub command: String,
}

/// The classifier: a convolutional feature extractor and a linear head.
pub struct ImageClassifier {
    config: ClassifierConfig,
    features: Sequential,
    head: Sequential,
}

impl ImageClassifier {
    /// A freshly initialised classifier (PyTorch's default initialisation, drawn from `rng`).
    ///
    /// # Errors
    /// If a size in `config` is zero or the dropout is outside `[0, 1)`.
    pub fn new(config: ClassifierConfig, rng: &mut dyn RngCore) -> Result<Self> {
        let bad = |m: &str| GanError::Config {
            model: "classifier",
            message: m.to_string(),
        };
        let [c, h, w_px] = config.image_shape;
        if config.classes == 0 || config.width == 0 || config.features == 0 || c == 0 {
            return Err(bad(
                "classes, width, features and channels must be positive",
            ));
        }
        if !(0.0..1.0).contains(&config.dropout) {
            return Err(bad("dropout must be in [0, 1)"));
        }
        if h.min(w_px) < MIN_SIDE || h.max(w_px) > 1024 {
            return Err(bad(&format!(
                "images of {h}x{w_px}: the classifier reads sides from {MIN_SIDE} to 1024"
            )));
        }
        let (w, f) = (config.width, config.features);
        let mut features = Sequential::new()
            .add(Conv2dConfig::new(c, w, 3).padding(1).build(rng)?)
            .add(ReLU);
        let (mut channels, mut side) = (w, [h, w_px]);
        for halving in 0..halvings(h.max(w_px)) {
            let out = if halving < 2 { 2 * w } else { 4 * w };
            features = features
                .add(
                    Conv2dConfig::new(channels, out, 4)
                        .stride(2)
                        .padding(1)
                        .build(rng)?,
                )
                .add(BatchNormConfig::new(out).build()?)
                .add(ReLU);
            channels = out;
            side = side.map(|s| s / 2);
        }
        let features = features
            .add(Flatten)
            .add(LinearConfig::new(channels * side[0] * side[1], f).build(rng)?)
            .add(ReLU);
        let head = Sequential::new()
            .add(Dropout::new(config.dropout))
            .add(LinearConfig::new(f, config.classes).build(rng)?);
        Ok(ImageClassifier {
            config,
            features,
            head,
        })
    }

    /// Its sizes.
    pub fn config(&self) -> &ClassifierConfig {
        &self.config
    }

    /// Penultimate features and class probabilities of `images` (`[N, C, H, W]` of its
    /// image shape, in `[-1, 1]`), in evaluation mode, computed in chunks:
    /// `([N, features], [N, classes])`.
    ///
    /// # Panics
    /// If `images` are not of its image shape.
    #[track_caller]
    pub fn features_and_probs(&self, images: &Tensor) -> (Tensor, Tensor) {
        check_images(images, self.config.image_shape);
        let n = images.shape()[0];
        let (mut feats, mut probs) = (Vec::new(), Vec::new());
        for start in (0..n).step_by(CHUNK) {
            let x = images.slice_axis(0, start, (start + CHUNK).min(n));
            let tape = Tape::new();
            let h = self.features.forward(tape.constant(x), Mode::Eval);
            let logits = self.head.forward(h, Mode::Eval);
            feats.push(h.value());
            probs.push(logits.log_softmax(1).value().exp());
        }
        if n == 0 {
            return (
                Tensor::zeros(&[0, self.config.features]),
                Tensor::zeros(&[0, self.config.classes]),
            );
        }
        let cat = |parts: &[Tensor]| Tensor::concat(0, &parts.iter().collect::<Vec<_>>());
        (cat(&feats), cat(&probs))
    }

    /// The penultimate features of `images` (`[N, features]`, after the ReLU).
    ///
    /// # Panics
    /// As [`ImageClassifier::features_and_probs`].
    #[track_caller]
    pub fn features(&self, images: &Tensor) -> Tensor {
        self.features_and_probs(images).0
    }

    /// Class probabilities of `images` (`[N, classes]`, rows summing to 1).
    ///
    /// # Panics
    /// As [`ImageClassifier::features_and_probs`].
    #[track_caller]
    pub fn predict(&self, images: &Tensor) -> Tensor {
        self.features_and_probs(images).1
    }

    /// The fraction of `images` whose most probable class is its label.
    ///
    /// # Panics
    /// As [`ImageClassifier::features_and_probs`], or if the counts of images and labels
    /// differ.
    #[track_caller]
    pub fn accuracy(&self, images: &Tensor, labels: &[usize]) -> f64 {
        assert_eq!(
            images.shape()[0],
            labels.len(),
            "accuracy: images and labels differ in number"
        );
        let probs = self.predict(images);
        let right = argmax_rows(&probs)
            .iter()
            .zip(labels)
            .filter(|(p, l)| p == l)
            .count();
        right as f64 / labels.len().max(1) as f64
    }

    /// Saves the weights, the configuration and `info` to a safetensors file, atomically.
    ///
    /// # Errors
    /// If the file cannot be written.
    pub fn save(&self, path: &Path, info: &ClassifierInfo) -> Result<()> {
        let mut meta = BTreeMap::new();
        meta.insert("format".to_string(), FORMAT.to_string());
        meta.insert("config".to_string(), to_json(&self.config));
        meta.insert("info".to_string(), to_json(info));
        meta.insert("data".to_string(), info.data.clone());
        meta.insert("accuracy".to_string(), format!("{:.4}", info.accuracy));
        meta.insert("command".to_string(), info.command.clone());
        write_safetensors(path, &state_dict(self), &meta)?;
        Ok(())
    }

    /// Loads a classifier saved by [`ImageClassifier::save`].
    ///
    /// # Errors
    /// If the file is missing, not a safetensors file, not a gantry classifier, or its
    /// tensors do not fit its configuration; the message names the file.
    pub fn load(path: &Path) -> Result<(ImageClassifier, ClassifierInfo)> {
        let file = read_safetensors(path)?;
        let bad = |message: String| GanError::Checkpoint {
            path: path.to_path_buf(),
            message,
        };
        if file.metadata.get("format").map(String::as_str) != Some(FORMAT) {
            return Err(bad(format!(
                "not a gantry classifier (its metadata has no format `{FORMAT}`)"
            )));
        }
        let get = |key: &str| {
            file.metadata
                .get(key)
                .ok_or_else(|| bad(format!("metadata has no `{key}` entry")))
        };
        let config: ClassifierConfig = serde_json::from_str(get("config")?)
            .map_err(|e| bad(format!("metadata `config` is invalid: {e}")))?;
        let info: ClassifierInfo = serde_json::from_str(get("info")?)
            .map_err(|e| bad(format!("metadata `info` is invalid: {e}")))?;
        let model = ImageClassifier::new(config, &mut ChaCha8Rng::seed_from_u64(0))?;
        let strict = LoadOptions {
            strict: true,
            rename: None,
        };
        load_tensors(&model, &file.tensors, &strict, path)?;
        Ok((model, info))
    }
}

/// The metadata structs always serialise.
fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("metadata serialises")
}

impl Module for ImageClassifier {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        self.features.visit(&join(prefix, "features"), f);
        self.head.visit(&join(prefix, "head"), f);
    }

    /// The class logits.
    fn forward<'t>(&self, x: gantry_autodiff::Var<'t>, mode: Mode) -> gantry_autodiff::Var<'t> {
        self.head.forward(self.features.forward(x, mode), mode)
    }

    fn describe(&self) -> String {
        format!(
            "ImageClassifier({:?})\n{}\n{}",
            self.config,
            self.features.describe(),
            self.head.describe()
        )
    }
}

#[track_caller]
fn check_images(images: &Tensor, shape: [usize; 3]) {
    assert!(
        images.ndim() == 4 && images.shape()[1..] == shape,
        "ImageClassifier: images {:?} must be [N, {}, {}, {}]",
        images.shape(),
        shape[0],
        shape[1],
        shape[2]
    );
}

/// How many stride-2 convolutions take a side of `side` to at most [`MIN_SIDE`] (28 -> 7: 2;
/// 32 -> 8: 2; 64 -> 8: 3).
fn halvings(side: usize) -> usize {
    let (mut side, mut n) = (side, 0);
    while side > MIN_SIDE {
        side /= 2;
        n += 1;
    }
    n
}

/// The index of the largest value of each row of `[N, C]` (the first on ties).
pub fn argmax_rows(probs: &Tensor) -> Vec<usize> {
    let c = probs.shape().get(1).copied().unwrap_or(1).max(1);
    probs
        .as_slice()
        .chunks(c)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |a, (i, &v)| if v > a.1 { (i, v) } else { a },
                )
                .0
        })
        .collect()
}

/// How [`train`] trains.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainOptions {
    /// Passes over the training images.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Adam's learning rate in the first epoch.
    pub lr: f32,
    /// The learning rate is multiplied by this after each epoch.
    pub lr_decay: f32,
    /// Random shifts of up to this many pixels per axis (the edge pixels repeated).
    pub max_shift: usize,
    /// Random horizontal flips (for photographs and emoji, not for digits).
    pub flip: bool,
    /// Seed of the data order, the shifts and dropout.
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            epochs: 4,
            batch_size: 128,
            lr: 1e-3,
            lr_decay: 0.5,
            max_shift: 1,
            flip: false,
            seed: 0,
        }
    }
}

/// Progress of [`train`], reported after every step.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainProgress {
    /// 0-based epoch.
    pub epoch: usize,
    /// Steps done in this epoch.
    pub step: usize,
    /// Steps per epoch.
    pub steps: usize,
    /// Mean cross-entropy of this epoch's steps so far.
    pub loss: f64,
    /// Training accuracy of this epoch's steps so far (with dropout and shifts on).
    pub accuracy: f64,
}

/// Trains `model` on `images` (`[N, C, H, W]` of its image shape, in `[-1, 1]`) with class
/// `labels`: Adam on the cross-entropy, the data reshuffled every epoch. Deterministic for a
/// given seed.
///
/// # Errors
/// If the loss stops being finite, or the optimizer fails.
///
/// # Panics
/// If the images are not of the model's image shape, the counts differ, or a label is not below
/// the number of classes.
#[track_caller]
pub fn train(
    model: &ImageClassifier,
    images: &Tensor,
    labels: &[usize],
    options: &TrainOptions,
    progress: &mut dyn FnMut(&TrainProgress),
) -> Result<()> {
    let shape = model.config.image_shape;
    check_images(images, shape);
    let n = images.shape()[0];
    assert_eq!(n, labels.len(), "train: images and labels differ in number");
    let pixels = images.as_slice();
    let mut opt = AdamConfig {
        lr: options.lr,
        ..Default::default()
    }
    .build();
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let bs = options.batch_size.max(1);
    let steps = n.div_ceil(bs);
    let mut order: Vec<usize> = (0..n).collect();
    let mut global = 0u64;
    for epoch in 0..options.epochs {
        opt.set_lr(options.lr * options.lr_decay.powi(epoch as i32));
        order.shuffle(&mut rng);
        let (mut loss_sum, mut right, mut seen) = (0.0f64, 0usize, 0usize);
        for (step, idx) in order.chunks(bs).enumerate() {
            let x = gather_augmented(&pixels, shape, idx, options, &mut rng);
            let y: Vec<usize> = idx.iter().map(|&i| labels[i]).collect();
            global += 1;
            let tape = Tape::with_seed(options.seed.wrapping_mul(0x9e37_79b9).wrapping_add(global));
            let logits = model.forward(tape.constant(x), Mode::Train);
            let l = loss::cross_entropy(logits, &y, Reduction::Mean);
            let value = l.value().item();
            if !value.is_finite() {
                return Err(GanError::NonFinite {
                    step: global,
                    what: "classifier loss",
                    value,
                });
            }
            opt.step(model, &l.backward())?;
            loss_sum += f64::from(value) * idx.len() as f64;
            right += argmax_rows(&logits.value())
                .iter()
                .zip(&y)
                .filter(|(p, l)| p == l)
                .count();
            seen += idx.len();
            progress(&TrainProgress {
                epoch,
                step: step + 1,
                steps,
                loss: loss_sum / seen as f64,
                accuracy: right as f64 / seen as f64,
            });
        }
    }
    Ok(())
}

/// The images at `idx` as a batch, each shifted by a random offset in `-max..=max` per axis
/// (the edge pixels repeated into the space it leaves) and, with `flip`, mirrored with
/// probability 1/2.
fn gather_augmented(
    pixels: &[f32],
    [c, h, w]: [usize; 3],
    idx: &[usize],
    options: &TrainOptions,
    rng: &mut ChaCha8Rng,
) -> Tensor {
    let per = c * h * w;
    let mut out = Vec::with_capacity(idx.len() * per);
    let m = options.max_shift as i64;
    for &i in idx {
        let src = &pixels[i * per..(i + 1) * per];
        let (dy, dx) = if m > 0 {
            (rng.random_range(-m..=m), rng.random_range(-m..=m))
        } else {
            (0, 0)
        };
        let flip = options.flip && rng.random_bool(0.5);
        let clamp = |v: i64, n: usize| v.clamp(0, n as i64 - 1) as usize;
        for plane in src.chunks(h * w) {
            for y in 0..h {
                let row = &plane[clamp(y as i64 - dy, h) * w..][..w];
                for x in 0..w {
                    let x = if flip { w - 1 - x } else { x };
                    out.push(row[clamp(x as i64 - dx, w)]);
                }
            }
        }
    }
    Tensor::from_vec(&[idx.len(), c, h, w], out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_names_and_size() {
        let model = ImageClassifier::new(
            ClassifierConfig::default(),
            &mut ChaCha8Rng::seed_from_u64(0),
        )
        .unwrap();
        let names: Vec<String> = gantry_nn::named_params(&model)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names[0], "features.0.weight");
        assert!(names.contains(&"head.1.weight".to_string()));
        let count = gantry_nn::param_count(&model);
        assert!(count < 520_000, "{count}");
        let x = Tensor::zeros(&[3, 1, 28, 28]);
        let (f, p) = model.features_and_probs(&x);
        assert_eq!(f.shape(), &[3, 128]);
        assert_eq!(p.shape(), &[3, 10]);
        for row in p.to_vec().chunks(10) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }

    /// 48 images of two classes: a bright top half or a bright bottom half.
    fn halves() -> (Tensor, Vec<usize>) {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let labels: Vec<usize> = (0..48).map(|i| i % 2).collect();
        let mut v = Vec::new();
        for &l in &labels {
            for y in 0..28 {
                for _ in 0..28 {
                    let on = (y < 14) == (l == 0);
                    v.push(if on { 0.8 } else { -0.8 } + rng.random_range(-0.2f32..0.2));
                }
            }
        }
        (Tensor::from_vec(&[48, 1, 28, 28], v), labels)
    }

    #[test]
    fn training_learns_a_simple_task_deterministically() {
        let (x, y) = halves();
        // Enough steps (30) for batch norm's running statistics to settle.
        let options = TrainOptions {
            epochs: 10,
            batch_size: 16,
            lr_decay: 1.0,
            seed: 9,
            ..TrainOptions::default()
        };
        let fit = || {
            let config = ClassifierConfig {
                width: 4,
                features: 16,
                ..ClassifierConfig::default()
            };
            let m = ImageClassifier::new(config, &mut ChaCha8Rng::seed_from_u64(9)).unwrap();
            let mut last = None;
            train(&m, &x, &y, &options, &mut |p| last = Some(p.clone())).unwrap();
            (m, last.unwrap())
        };
        let (a, progress) = fit();
        assert_eq!((progress.epoch, progress.step, progress.steps), (9, 3, 3));
        assert_eq!(a.accuracy(&x, &y), 1.0);
        let (b, _) = fit();
        assert_eq!(a.predict(&x).to_vec(), b.predict(&x).to_vec());
    }

    #[test]
    fn shifts_move_pixels_and_repeat_the_edges() {
        let mut img = vec![-1.0f32; 784];
        img[14 * 28 + 14] = 1.0;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let options = |max_shift, flip| TrainOptions {
            max_shift,
            flip,
            ..TrainOptions::default()
        };
        let batch = gather_augmented(&img, DIGIT_SHAPE, &[0; 16], &options(1, false), &mut rng);
        let mut moved = 0;
        for one in batch.to_vec().chunks(784) {
            let at: Vec<usize> = (0..784).filter(|&i| one[i] == 1.0).collect();
            assert_eq!(at.len(), 1);
            let (y, x) = (at[0] / 28, at[0] % 28);
            assert!((13..=15).contains(&y) && (13..=15).contains(&x));
            moved += usize::from(at[0] != 14 * 28 + 14);
        }
        assert!(moved > 8, "{moved} of 16 moved");
        let same = gather_augmented(&img, DIGIT_SHAPE, &[0], &options(0, false), &mut rng);
        assert_eq!(same.to_vec(), img);
        // A 2-channel 3x8 ramp: a shift right by 2 repeats the left column twice; a flip
        // mirrors every row of every channel.
        let ramp: Vec<f32> = (0..48)
            .map(|i| (i % 8) as f32 + 10.0 * (i / 24) as f32)
            .collect();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..64 {
            let out = gather_augmented(&ramp, [2, 3, 8], &[0], &options(2, true), &mut rng);
            let row: Vec<f32> = out.to_vec()[..8].to_vec();
            let plane2: Vec<f32> = out.to_vec()[24..32].to_vec();
            assert_eq!(plane2, row.iter().map(|v| v + 10.0).collect::<Vec<_>>());
            seen.insert(row.iter().map(|&v| v as i32).collect::<Vec<_>>());
        }
        assert!(seen.contains(&vec![0, 0, 0, 1, 2, 3, 4, 5]), "{seen:?}");
        assert!(seen.contains(&vec![7, 6, 5, 4, 3, 2, 1, 0]), "{seen:?}");
        assert!(seen.contains(&vec![2, 3, 4, 5, 6, 7, 7, 7]), "{seen:?}");
        assert!(
            seen.iter()
                .all(|r| r.windows(2).all(|p| (p[1] - p[0]).abs() <= 1))
        );
    }

    #[test]
    fn rgb_images_of_any_size_have_their_own_stack() {
        for (shape, halvings_want, params_want) in [
            ([3, 32, 32], 2, None),
            ([3, 64, 64], 3, None),
            ([1, 28, 28], 2, Some(501_834)),
        ] {
            assert_eq!(halvings(shape[1]), halvings_want);
            let config = ClassifierConfig::for_images(shape, 9);
            let model = ImageClassifier::new(config, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
            let x = Tensor::zeros(&[2, shape[0], shape[1], shape[2]]);
            let (f, p) = model.features_and_probs(&x);
            assert_eq!((f.shape(), p.shape()), (&[2, 128][..], &[2, 9][..]));
            if let Some(want) = params_want {
                // The shipped digit classifiers' layout, with 9 classes instead of 10.
                assert_eq!(gantry_nn::param_count(&model), want - 129);
            }
        }
        let tiny = ClassifierConfig::for_images([3, 4, 4], 2);
        let e = ImageClassifier::new(tiny, &mut ChaCha8Rng::seed_from_u64(0)).err();
        assert!(e.unwrap().to_string().contains("4x4"));
    }

    #[test]
    #[should_panic(expected = "must be [N, 3, 32, 32]")]
    fn images_of_another_shape_are_refused() {
        let config = ClassifierConfig::for_images([3, 32, 32], 10);
        let model = ImageClassifier::new(config, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        model.predict(&Tensor::zeros(&[1, 1, 28, 28]));
    }

    #[test]
    fn files_without_an_image_shape_are_digit_classifiers() {
        let json = r#"{"classes":10,"width":32,"features":128,"dropout":0.3}"#;
        let config: ClassifierConfig = serde_json::from_str(json).unwrap();
        assert_eq!(config, ClassifierConfig::default());
    }

    #[test]
    fn save_load_round_trip_and_bad_files() {
        let dir = std::env::temp_dir().join(format!("gantry-clf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.safetensors");
        let model = ImageClassifier::new(
            ClassifierConfig::default(),
            &mut ChaCha8Rng::seed_from_u64(1),
        )
        .unwrap();
        let info = ClassifierInfo {
            data: "mnist".into(),
            accuracy: 0.5,
            command: "test".into(),
        };
        model.save(&path, &info).unwrap();
        let (back, info2) = ImageClassifier::load(&path).unwrap();
        assert_eq!(info, info2);
        let x = Tensor::rand_uniform(
            &[2, 1, 28, 28],
            -1.0,
            1.0,
            &mut ChaCha8Rng::seed_from_u64(2),
        );
        assert_eq!(model.predict(&x).to_vec(), back.predict(&x).to_vec());

        std::fs::write(&path, b"not safetensors").unwrap();
        let err = ImageClassifier::load(&path).err().unwrap().to_string();
        assert!(err.contains("c.safetensors"), "{err}");
        let missing = ImageClassifier::load(&dir.join("none.safetensors"))
            .err()
            .unwrap()
            .to_string();
        assert!(missing.contains("none.safetensors"), "{missing}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
