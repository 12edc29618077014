//! `gantry eval`: score a trained run (or a set of images) with the metrics of its data.

mod ageing;
mod pairs;

use crate::classifier::{Labelled, labelled_images};
use crate::run::RunDir;
use crate::sampling::generate;
use anyhow::{Context, Result, bail};
use clap::Args;
use gantry_datasets::transform::resize;
use gantry_datasets::{
    Channels, FolderOptions, Mixture, Split, load_idx_images, load_image_folder,
};
use gantry_gan::checkpoint;
use gantry_gan::metrics::classifier::{ClassifierInfo, ImageClassifier, argmax_rows};
use gantry_gan::metrics::mixture::mixture_scores;
use gantry_gan::metrics::scores::{PR_K, Reference, image_scores};
use gantry_gan::models::{Gan, ModelConfig};
use gantry_gan::truncation::truncate;
use gantry_tensor::Tensor;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Samples generated per forward pass.
const CHUNK: usize = 500;

/// The most samples scored (10 times the default for digits; all are held in memory).
const MAX_N: usize = 100_000;

/// The most thresholds of one truncation sweep.
const MAX_THRESHOLDS: usize = 16;

/// `gantry eval`.
#[derive(Args, Debug)]
#[command(after_help = "Which metrics, by the run's data:\n  \
ring, grid          mode coverage on 2,500 samples (VEEGAN/PacGAN): `modes` captured of \
`modes_total`,\n                      `high_quality` (fraction within 3 std of a mode), \
`reverse_kl` (nats; 0 = even)\n  \
labelled images     (mnist, fashion-mnist, emoji, emoji128, cifar10) the data's classifier on \
10,000 samples:\n                      `classes`, `class_hist`, `class_kl` (nats from uniform), \
`confident` (max prob >= 0.9),\n                      in its 128-d feature space against the \
real reference (`reference`): `fd` (Fréchet\n                      distance: biased upwards by \
few samples, compare FDs only at equal `n`), `kid`\n                      (kernel inception \
distance, unbiased: `kid_std` over `kid_subsets` of `kid_subset_size`),\n                      \
`precision` and `recall` (Kynkäänniemi et al., k = 3, `pr_n` samples of each);\n                      \
`real` holds the same for real images not in the reference (the floor);\n                      \
`label_agreement` for label-conditional runs; with --truncation T,..., \
`truncation_sweep`:\n                      one row of `fd`, `kid`, `precision`, `recall`, \
`confident`, `class_kl` (and\n                      `label_agreement`) per threshold, plotted by \
`gantry report`\n  \
pix2pix runs        `l1`, `psnr` (dB, [-1, 1] data, capped at 100), `ssim` over the validation \
split;\n                      `features`: the scores above of the translations against the \
validation targets,\n                      in the targets' classifier (emoji for edges2emoji, \
edges2emoji128; mnist for edges2digits)\n  \
caae runs           `ageing`: each of the 60 emoji faces aged to every other age group against \
the true emoji\n                      of the same person at that age: `l1`, `ssim`, `tone_error` \
(8-bit RGB distance of the\n                      face region's mean colour), `tone_accuracy` \
(nearer the true skin tone than the\n                      other five), `age_accuracy` (the \
shipped emoji-faces age classifier), for `held_out`\n                      (medium-tone) and \
`train` faces; beside the baselines `identity` (the input\n                      unchanged), \
`mean_face` (the mean training face of the target age) and `truth`\n\
The reference is the data's test split, or its training split when the test split has fewer \
than 2,000 images (the emoji); samples of another size than the classifier's are resized to it.\n\
The result is printed as one JSON object and written to DIR/eval.json.\n\
Examples:\n  gantry eval --run runs/mlp-ring-1\n  \
gantry eval --run runs/dcgan-mnist-1 --n 2000 --seed 1\n  \
gantry eval --images samples/ --data emoji       # a folder of PNGs, or an IDX file")]
pub struct EvalArgs {
    /// Run directory (config.json and checkpoint.safetensors).
    #[arg(long, required_unless_present = "images", conflicts_with = "images")]
    pub run: Option<PathBuf>,
    /// Score images instead of a run: an IDX file or a folder of PNG/JPEG images (of the
    /// data's size, or resized to it).
    #[arg(long, requires = "data")]
    pub images: Option<PathBuf>,
    /// With --images: whose classifier and real images to compare with (mnist, fashion-mnist,
    /// emoji, emoji128, cifar10, or the name of any classifier in data/classifiers).
    #[arg(long)]
    pub data: Option<String>,
    /// Samples to score [default: 2,500 for mixtures, 10,000 for images, the whole validation
    /// split for pix2pix; caae runs always age all 60 faces and take no --n].
    #[arg(long)]
    pub n: Option<usize>,
    /// Seed of the noise (and of pix2pix's dropout, and of which real images form the floor).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Classifier file [default: classifiers/DATA.safetensors in the data folders, as
    /// shipped in data/classifiers/].
    #[arg(long)]
    pub classifier: Option<PathBuf>,
    /// Also score the samples at each of these truncation thresholds (BigGAN's truncation
    /// trick: latent values beyond +-T redrawn), e.g. `--truncation 0.25,0.5,1,2`: one row of
    /// FD, KID, precision and recall per threshold in `truncation_sweep`, which `gantry
    /// report` plots. Image runs drawn from noise only.
    #[arg(long, value_delimiter = ',', value_name = "T,...")]
    pub truncation: Vec<f32>,
    /// Worker threads [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Runs `gantry eval`.
pub fn run(args: EvalArgs) -> Result<()> {
    if let Some(n) = args.n.filter(|n| !(1..=MAX_N).contains(n)) {
        bail!("--n {n} must be in 1..={MAX_N}");
    }
    if let Some(t) = args
        .truncation
        .iter()
        .find(|t| !(**t > 0.0 && t.is_finite()))
    {
        bail!("--truncation {t}: each threshold must be positive (BigGAN sweeps 0.04 to 2)");
    }
    if args.truncation.len() > MAX_THRESHOLDS {
        bail!(
            "--truncation: {} thresholds; at most {MAX_THRESHOLDS} (each scores --n samples)",
            args.truncation.len()
        );
    }
    if args.images.is_some() && !args.truncation.is_empty() {
        bail!("--truncation sweeps the noise of a run's generator; --images are given, not drawn");
    }
    match (&args.run, &args.images) {
        (Some(dir), _) => eval_run(dir, &args),
        (None, Some(path)) => eval_images(path, &args),
        (None, None) => bail!("pass --run DIR or --images PATH --data DATA"),
    }
}

fn eval_run(dir: &Path, args: &EvalArgs) -> Result<()> {
    if !dir.is_dir() {
        bail!("--run {}: no such run directory", dir.display());
    }
    let run = RunDir {
        root: dir.to_path_buf(),
    };
    let config = run.read_config()?;
    let data = config["run"]["data"]
        .as_str()
        .with_context(|| format!("{}: no `run.data` entry", dir.join("config.json").display()))?
        .to_string();
    let path = run.checkpoint();
    if !path.is_file() {
        bail!(
            "{}: no checkpoint (has the run saved one yet?)",
            path.display()
        );
    }
    let (trainer, _) = checkpoint::load_for_sampling(&path)
        .with_context(|| format!("cannot load the run in {}", dir.display()))?;
    let gan = trainer.gan.as_ref();
    let mut out = json!({
        "run": dir.display().to_string(),
        "data": data,
        "model": gan.config().kind(),
        "step": trainer.step,
        "seed": args.seed,
    });
    let from_noise = !matches!(gan.config(), ModelConfig::Caae(_))
        && gan.config().condition_shape().is_none()
        && !matches!(data.as_str(), "ring" | "grid");
    if !args.truncation.is_empty() && !from_noise {
        bail!(
            "--truncation: the sweep scores images drawn from noise; the run in {} is a {} run on {data}",
            dir.display(),
            gan.config().kind()
        );
    }
    let metrics = if matches!(gan.config(), ModelConfig::Caae(_)) {
        ageing::ageing_metrics(gan, &data, args)?
    } else if gan.config().condition_shape().is_some() {
        pairs::paired_metrics(&trainer, &data, &config, args)?
    } else {
        match data.as_str() {
            "ring" | "grid" => mixture_metrics(gan, &data, args, dir)?,
            _ => {
                let n = args.n.unwrap_or(10_000);
                let scorer = ImageScorer::new(&data, args)?;
                let (images, labels) = generate_images(gan, n, args.seed, None, dir)?;
                let mut v = scorer
                    .score(&images, args.seed)
                    .with_context(|| format!("cannot score the run in {}", dir.display()))?;
                v["real"] = scorer.floor(n, args.seed)?;
                scorer.describe(&mut v);
                if let Some(labels) = labels {
                    v["label_agreement"] =
                        json!(label_agreement(&scorer.classifier, &images, &labels)?);
                }
                if !args.truncation.is_empty() {
                    v["truncation_sweep"] = truncation_sweep(gan, &scorer, n, args, dir)?;
                }
                v
            }
        }
    };
    merge(&mut out, metrics);
    write_json(&dir.join("eval.json"), &out)
}

/// Mode coverage of generated points, and of as many real points (the floor).
fn mixture_metrics(gan: &dyn Gan, data: &str, args: &EvalArgs, dir: &Path) -> Result<Value> {
    match gan.config() {
        ModelConfig::Mlp(c) if c.sample_shape == [2] => {}
        other => bail!(
            "the run in {} trains {data} but its checkpoint holds a {} model that does not draw 2-D points",
            dir.display(),
            other.kind()
        ),
    }
    let mixture = if data == "ring" {
        Mixture::ring8()
    } else {
        Mixture::grid25()
    };
    let n = args.n.unwrap_or(2500);
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let noise = gan
        .noise(n, &mut rng)
        .context("a model of 2-D points draws noise")?;
    let points = generate(gan, &noise, args.seed);
    let scores = mixture_scores(&points, mixture.centres(), mixture.std());
    let real = mixture.sample(n, &mut ChaCha8Rng::seed_from_u64(args.seed ^ 0x7ea1));
    let mut v = json!(scores);
    v["real"] = json!(mixture_scores(&real, mixture.centres(), mixture.std()));
    Ok(v)
}

/// `n` samples as `[n, C, H, W]`, generated in chunks, from noise truncated at `truncation`
/// where one is given; a label-conditional generator draws every class in equal shares
/// (sample `i` has label `i % classes`), returned beside.
fn generate_images(
    gan: &dyn Gan,
    n: usize,
    seed: u64,
    truncation: Option<f32>,
    dir: &Path,
) -> Result<(Tensor, Option<Vec<usize>>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let labels = gan
        .num_classes()
        .map(|k| (0..n).map(|i| i % k).collect::<Vec<_>>());
    let mut parts = Vec::new();
    for (i, start) in (0..n).step_by(CHUNK).enumerate() {
        let count = CHUNK.min(n - start);
        let Some(noise) = gan.noise(count, &mut rng) else {
            bail!("the run in {} does not generate from noise", dir.display());
        };
        let noise = match truncation {
            Some(t) => truncate(&noise, t, &mut rng),
            None => noise,
        };
        let chunk_labels = labels.as_ref().map(|l| &l[start..start + count]);
        let noise = gan.latent_input(noise, chunk_labels);
        let images = generate(gan, &noise, seed.wrapping_add(i as u64));
        if images.ndim() != 4 {
            bail!(
                "the run in {} makes samples of shape {:?}, not images",
                dir.display(),
                &images.shape()[1..]
            );
        }
        parts.push(images);
    }
    Ok((cat(parts), labels))
}

/// The truncation sweep: `n` samples at each threshold of `--truncation`, scored as the
/// untruncated ones (the same noise seed; values beyond the threshold redrawn), one row per
/// threshold with the scores that trade against each other (BigGAN's figure 4: FD, precision
/// and recall against truncation), which `gantry report` plots.
fn truncation_sweep(
    gan: &dyn Gan,
    scorer: &ImageScorer,
    n: usize,
    args: &EvalArgs,
    dir: &Path,
) -> Result<Value> {
    let bar = crate::progress::steps(0, args.truncation.len() as u64, false);
    let mut rows = Vec::new();
    for &t in &args.truncation {
        bar.set_message(format!("truncation {t}"));
        let (images, labels) = generate_images(gan, n, args.seed, Some(t), dir)?;
        let scores = scorer.score(&images, args.seed)?;
        let mut row = json!({ "truncation": t });
        for key in SWEPT {
            row[key] = scores[key].clone();
        }
        if let Some(labels) = labels {
            row["label_agreement"] =
                label_agreement(&scorer.classifier, &images, &labels)?["overall"].clone();
        }
        rows.push(row);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(Value::Array(rows))
}

/// The scores each row of a truncation sweep keeps.
const SWEPT: [&str; 7] = [
    "n",
    "fd",
    "kid",
    "precision",
    "recall",
    "confident",
    "class_kl",
];

/// For a label-conditional run: the fraction of samples the classifier puts in the class they
/// were drawn for, overall and per class (Mirza & Osindero's claim, measured).
fn label_agreement(
    classifier: &ImageClassifier,
    images: &Tensor,
    labels: &[usize],
) -> Result<Value> {
    let images = fit_to(images, classifier)?;
    let predicted = argmax_rows(&classifier.predict(&images));
    let classes = labels.iter().max().map_or(0, |&m| m + 1);
    let (mut hits, mut counts) = (vec![0usize; classes], vec![0usize; classes]);
    for (&want, &got) in labels.iter().zip(&predicted) {
        counts[want] += 1;
        hits[want] += usize::from(want == got);
    }
    let per_class: Vec<f64> = hits
        .iter()
        .zip(&counts)
        .map(|(&h, &c)| h as f64 / c.max(1) as f64)
        .collect();
    Ok(json!({
        "overall": hits.iter().sum::<usize>() as f64 / labels.len().max(1) as f64,
        "per_class": per_class,
    }))
}

/// Where the classifier for `data` is: `--classifier`, or `classifiers/{data}.safetensors` in
/// the first data folder that has it.
pub(crate) fn classifier_path(data: &str, args: &EvalArgs) -> Result<PathBuf> {
    if let Some(p) = &args.classifier {
        return Ok(p.clone());
    }
    let name = format!("{data}.safetensors");
    let roots = crate::data::roots();
    roots
        .iter()
        .map(|r| r.join("classifiers").join(&name))
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "no classifier for {data}: no classifiers/{name} in {}; train one with \
                 `gantry classifier --data {data} --out FILE` and pass --classifier FILE",
                roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// The fewest test images that serve as the reference; with fewer (the emoji), the training
/// split is the reference and the test split the floor.
const MIN_TEST_REFERENCE: usize = 2000;

/// A data set's classifier and real images, loaded once to score several sets of samples
/// (the truncation sweep scores one per threshold).
pub(crate) struct ImageScorer {
    path: PathBuf,
    classifier: ImageClassifier,
    info: ClassifierInfo,
    reference: Reference,
    /// Which split is the reference (see [`MIN_TEST_REFERENCE`]).
    split: &'static str,
    /// Real images not in the reference.
    floor: Tensor,
}

impl ImageScorer {
    /// The classifier of `data` (or `--classifier`) and its reference features.
    pub(crate) fn new(data: &str, args: &EvalArgs) -> Result<ImageScorer> {
        let path = classifier_path(data, args)?;
        let (classifier, info) = ImageClassifier::load(&path)?;
        let test = real_images(data, Split::Test, &info)?;
        let (reference, floor, split) = if test.images.shape()[0] >= MIN_TEST_REFERENCE {
            (test, real_images(data, Split::Train, &info)?, "test")
        } else {
            (real_images(data, Split::Train, &info)?, test, "train")
        };
        let reference =
            Reference::new(classifier.features(&fit_to(&reference.images, &classifier)?));
        Ok(ImageScorer {
            path,
            classifier,
            info,
            reference,
            split,
            floor: floor.images,
        })
    }

    /// The scores of `images` against the reference, `seed` drawing KID's subsets.
    pub(crate) fn score(&self, images: &Tensor, seed: u64) -> Result<Value> {
        let original = images.shape()[2..].to_vec();
        let images = fit_to(images, &self.classifier)?;
        let n = images.shape()[0];
        if n <= PR_K {
            bail!(
                "at least {} images are needed for precision and recall, got {n}",
                PR_K + 1
            );
        }
        let (f, p) = self.classifier.features_and_probs(&images);
        let mut v = json!(image_scores(&p, &f, &self.reference, seed));
        if original[..] != images.shape()[2..] {
            v["resized_from"] = json!(original);
        }
        Ok(v)
    }

    /// The same scores for `n` real images not in the reference (or all there are), drawn
    /// with `seed`: the floor.
    fn floor(&self, n: usize, seed: u64) -> Result<Value> {
        let mut order: Vec<usize> = (0..self.floor.shape()[0]).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x7ea1));
        let pick: Vec<Tensor> = order[..n.min(order.len())]
            .iter()
            .map(|&i| self.floor.slice_axis(0, i, i + 1))
            .collect();
        self.score(&cat(pick), seed)
    }

    /// What the scores were measured with: the reference and the classifier.
    fn describe(&self, v: &mut Value) {
        v["reference"] = json!({ "split": self.split, "n": self.reference.len() });
        v["classifier"] = json!({
            "path": self.path.display().to_string(),
            "data": self.info.data,
            "test_accuracy": self.info.accuracy,
        });
    }
}

/// Scores of `images` in the feature space of `data`'s classifier against the reference of
/// real images (see [`MIN_TEST_REFERENCE`]), and the same for as many real images not in the
/// reference (the floor).
fn image_metrics(images: &Tensor, data: &str, args: &EvalArgs) -> Result<Value> {
    let scorer = ImageScorer::new(data, args)?;
    let mut v = scorer.score(images, args.seed)?;
    v["real"] = scorer.floor(images.shape()[0], args.seed)?;
    scorer.describe(&mut v);
    Ok(v)
}

/// The labelled images of `split` of `data`, which must be the classifier's data (or data
/// whose images it reads).
fn real_images(data: &str, split: Split, info: &ClassifierInfo) -> Result<Labelled> {
    labelled_images(data, split, true).with_context(|| {
        format!(
            "the classifier was trained on `{}`; its real images are needed as the reference",
            info.data
        )
    })
}

/// `images` in the classifier's shape: as they are, or resized (bilinear, antialiased) when
/// only their height and width differ (a 32x32 WGAN-GP of 28x28 digits).
pub(crate) fn fit_to(images: &Tensor, classifier: &ImageClassifier) -> Result<Tensor> {
    let want = classifier.config().image_shape;
    let s = images.shape();
    if s[1..] == want {
        return Ok(images.clone());
    }
    if s[1] != want[0] {
        bail!(
            "the images have {} channels ({:?}); the classifier reads {:?} (channels, height, width)",
            s[1],
            &s[1..],
            want
        );
    }
    let parts: Vec<Tensor> = (0..s[0])
        .map(|i| {
            let one = images.slice_axis(0, i, i + 1).reshape(&s[1..]);
            resize(&one, want[1], want[2]).reshape(&[1, want[0], want[1], want[2]])
        })
        .collect();
    Ok(cat(parts))
}

/// Scores of the images in an IDX file or a folder of PNG/JPEG files against `--data`.
fn eval_images(path: &Path, args: &EvalArgs) -> Result<()> {
    let data = args.data.as_deref().unwrap_or("mnist");
    let (classifier, _) = ImageClassifier::load(&classifier_path(data, args)?)?;
    let c = classifier.config().image_shape[0];
    let set = if path.is_dir() {
        let options = FolderOptions {
            channels: if c == 1 {
                Channels::Gray
            } else {
                Channels::Rgb
            },
            skip_other_files: true,
            ..Default::default()
        };
        load_image_folder(path, &options, &mut |_, _| {})?
    } else if path.is_file() {
        load_idx_images(path, &mut |_, _| {})?
    } else {
        bail!("--images {}: no such file or folder", path.display());
    };
    if set.shape()[0] != c {
        bail!(
            "--images {}: the {data} classifier reads {c}-channel images, these are {:?} \
             (channels, height, width)",
            path.display(),
            set.shape()
        );
    }
    let n = args.n.unwrap_or(set.len()).min(set.len());
    let shape = set.shape();
    let pixels: Vec<f32> = (0..n).flat_map(|i| set.image(i).to_vec()).collect();
    let images = Tensor::from_vec(&[n, shape[0], shape[1], shape[2]], pixels);
    let mut out = json!({
        "images": path.display().to_string(),
        "data": data,
        "seed": args.seed,
    });
    merge(&mut out, image_metrics(&images, data, args)?);
    let target = if path.is_dir() {
        path.join("eval.json")
    } else {
        path.with_extension("eval.json")
    };
    write_json(&target, &out)
}

/// Images (`[1, C, H, W]` or `[n, C, H, W]` each) stacked along the batch axis.
fn cat(images: impl IntoIterator<Item = Tensor>) -> Tensor {
    let images: Vec<Tensor> = images.into_iter().collect();
    Tensor::concat(0, &images.iter().collect::<Vec<_>>())
}

/// Adds the entries of `extra` (an object) to `out`.
fn merge(out: &mut Value, extra: Value) {
    if let (Some(o), Value::Object(e)) = (out.as_object_mut(), extra) {
        o.extend(e);
    }
}

/// Writes `value` to `path` atomically (temporary sibling, then rename), then prints it.
/// The file comes first and a closed standard output (`gantry eval ... | head -1`) is not an
/// error: the result is in the file.
fn write_json(path: &Path, value: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value)? + "\n";
    let tmp = path.with_extension(format!("json.tmp-{}", std::process::id()));
    std::fs::write(&tmp, &text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("cannot write {}", path.display()))?;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write to standard output")
        }
        _ => Ok(()),
    }
}
