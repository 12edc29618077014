//! `gantry eval` of a translation run (pix2pix, pix2pixHD): the validation inputs translated
//! and compared with their targets image by image (L1, PSNR, SSIM) and, where a classifier
//! reads the targets, as a distribution in its feature space (FD, KID, precision and recall
//! against the validation targets), with as many real training targets as the floor.

use super::{EvalArgs, cat, classifier_path, fit_to};
use crate::data::{self, Kind};
use crate::sampling::generate;
use anyhow::{Context, Result, bail};
use gantry_datasets::{Augment, BatchConfig, Batches, Dataset, Split};
use gantry_gan::Trainer;
use gantry_gan::metrics::classifier::ImageClassifier;
use gantry_gan::metrics::image::{RANGE_UNIT, l1, psnr, ssim};
use gantry_gan::metrics::scores::{PR_K, Reference, image_scores};
use gantry_gan::models::Gan;
use gantry_tensor::Tensor;
use serde_json::{Value, json};

/// The classifier whose feature space compares translations of `data` with real targets:
/// the one of the targets' own data.
fn target_classifier(data: &str) -> Option<&'static str> {
    match data {
        "edges2emoji" | "edges2emoji128" => Some("emoji"),
        "edges2digits" => Some("mnist"),
        _ => None,
    }
}

/// L1, PSNR and SSIM of the run's translations of the validation split against the targets,
/// and their feature-space scores where a classifier reads the targets.
pub(super) fn paired_metrics(
    trainer: &Trainer,
    data: &str,
    config: &Value,
    args: &EvalArgs,
) -> Result<Value> {
    let val = data::load(data, Split::Test, true)?;
    if !matches!(val.kind, Kind::Pairs(..)) {
        bail!(
            "--data {data} of the {} run is not paired data",
            trainer.gan.config().kind()
        );
    }
    let size = config["run"]["image_size"].as_u64().map(|s| s as usize);
    let augment = data::augment_for(&val.kind, size, false);
    let n = args.n.unwrap_or(val.set.len()).min(val.set.len());
    let gan = trainer.gan.as_ref();
    let (mut outs, mut targets) = (Vec::new(), Vec::new());
    for (i, (a, b)) in pairs(val.set.as_ref(), augment.clone(), gan, None)
        .take(n)
        .enumerate()
    {
        // One image at a time, as `gantry translate` (batch statistics of one image).
        outs.push(generate(gan, &a?, args.seed.wrapping_add(i as u64)));
        targets.push(b);
    }
    let (out, target) = (cat(outs), cat(targets));
    let mut v = json!({
        "n": n,
        "split": "validation",
        "l1": l1(&out, &target),
        "psnr": psnr(&out, &target, RANGE_UNIT),
        "ssim": ssim(&out, &target, RANGE_UNIT),
        "range": "[-1, 1]",
    });
    let classifier = match (&args.classifier, target_classifier(data)) {
        (Some(path), _) => Some(path.clone()),
        (None, Some(name)) => Some(classifier_path(name, args)?),
        (None, None) => None,
    };
    match classifier {
        Some(_) if n <= PR_K => eprintln!(
            "note: {n} translations are too few for the feature-space scores (at least {} are needed)",
            PR_K + 1
        ),
        Some(path) => {
            let train = data::load(data, Split::Train, true)?;
            let floor: Vec<Tensor> = pairs(train.set.as_ref(), augment, gan, Some(args.seed))
                .take(n)
                .map(|(_, b)| b)
                .collect();
            v["features"] = feature_scores(&out, &target, &cat(floor), &path, args.seed)?;
        }
        None => eprintln!(
            "note: no classifier reads the targets of {data}: pass --classifier FILE for FD, \
             KID, precision and recall of the translations"
        ),
    }
    Ok(v)
}

/// The pairs of `set` one at a time, in order or shuffled with `shuffle`: the input (an error
/// if the set has none) and the target at the resolution the model works at now (pix2pixHD's
/// global phase: half).
fn pairs<'a>(
    set: &'a dyn Dataset,
    augment: Option<Augment>,
    gan: &'a dyn Gan,
    shuffle: Option<u64>,
) -> impl Iterator<Item = (Result<Tensor>, Tensor)> + 'a {
    let mut config = BatchConfig::new(1).shuffle(shuffle.is_some());
    if let Some(seed) = shuffle {
        config = config.seed(seed);
    }
    if let Some(a) = augment {
        config = config.augment(a);
    }
    Batches::new(set, config).map(move |batch| {
        let b = data::to_gan_batch(batch);
        let a = b.condition.context("pairs have inputs");
        (a, gan.real_samples(b.real))
    })
}

/// The translations against the validation targets in the feature space of the classifier
/// in `path`, and as many real training targets against them (the floor).
fn feature_scores(
    out: &Tensor,
    target: &Tensor,
    floor: &Tensor,
    path: &std::path::Path,
    seed: u64,
) -> Result<Value> {
    let (classifier, info) = ImageClassifier::load(path)?;
    let features = |images: &Tensor| -> Result<(Tensor, Tensor)> {
        Ok(classifier.features_and_probs(&fit_to(images, &classifier)?))
    };
    let (target_features, _) = features(target)?;
    let reference = Reference::new(target_features);
    let (f, p) = features(out)?;
    let mut v = json!(image_scores(&p, &f, &reference, seed));
    let (rf, rp) = features(floor)?;
    v["real"] = json!(image_scores(&rp, &rf, &reference, seed));
    v["reference"] = json!({ "split": "validation targets", "n": reference.len() });
    v["classifier"] = json!({
        "path": path.display().to_string(),
        "data": info.data,
        "test_accuracy": info.accuracy,
    });
    Ok(v)
}
