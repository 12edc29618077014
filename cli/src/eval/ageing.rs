//! `gantry eval` of a caae run: every emoji face aged to each other age group and compared
//! with the true emoji of the same person at that age (see `gantry_gan::metrics::ageing`),
//! beside the baselines that return the input unchanged and the mean face of the target age,
//! and the truth itself (the age classifier's ceiling). Training faces and held-out faces
//! (the `medium` skin tone) are reported apart.

use super::{EvalArgs, classifier_path, fit_to};
use crate::sampling::at_every_age;
use anyhow::{Context, Result, bail};
use gantry_datasets::{FACES_HELD_OUT_TONE, load_face_table, same_person_at, transform};
use gantry_gan::metrics::ageing::{AgeingPair, TONE_COLUMNS, TONE_ROWS, ageing_scores};
use gantry_gan::metrics::classifier::{ImageClassifier, argmax_rows};
use gantry_gan::models::{Gan, ModelConfig};
use gantry_tensor::Tensor;
use serde_json::{Value, json};

/// The data whose age classifier judges the aged faces (at its own size: the 128-pixel faces
/// are resized to it).
const AGE_CLASSIFIER: &str = "emoji-faces";

/// One aged face of the measurement: whose face, the pair it is scored as, and the split.
struct Case {
    source: usize,
    pair: AgeingPair,
    held_out: bool,
}

/// The ageing measurement of a caae run trained on `data` (`emoji-faces` or
/// `emoji-faces128`).
pub fn ageing_metrics(gan: &dyn Gan, data: &str, args: &EvalArgs) -> Result<Value> {
    let ModelConfig::Caae(config) = gan.config() else {
        bail!("the ageing measurement takes caae runs");
    };
    if let Some(n) = args.n {
        bail!(
            "--n {n}: the ageing measurement of a caae run ages every face of the data to every \
             other age group; it takes no sample count"
        );
    }
    if !data.starts_with("emoji-faces") {
        bail!(
            "the ageing measurement pairs each face with the same person at another age, which \
             only the emoji face sets know (emoji-faces, emoji-faces128); the run's data \
             `{data}` has no person types and skin tones"
        );
    }
    let (set, rows) = load_face_table(data, &crate::data::roots(), &mut |_, _| {})?;
    if config.ages != gantry_datasets::AGE_GROUPS.len() || config.channels != 3 {
        bail!(
            "the run's model draws {} age groups of {}-channel faces; {data} has 4 age groups of RGB faces",
            config.ages,
            config.channels
        );
    }
    let side = config.image_size;
    let faces: Vec<Tensor> = (0..set.len())
        .map(|i| {
            let face = set.image(i);
            let face = if face.shape()[1] == side {
                face
            } else {
                transform::resize(&face, side, side)
            };
            face.reshape(&[1, 3, side, side])
        })
        .collect();
    let faces = Tensor::concat(0, &faces.iter().collect::<Vec<_>>());
    let age = |i: usize| rows[i].age_group.expect("a face table holds faces");
    let held_out = |i: usize| rows[i].skin_tone == FACES_HELD_OUT_TONE;

    let mut cases = Vec::new();
    let mut aged = Vec::new();
    for source in 0..rows.len() {
        let every = at_every_age(gan, &faces.slice_axis(0, source, source + 1), args.seed);
        for target_age in (0..config.ages).filter(|&a| a != age(source)) {
            let truth = same_person_at(&rows, source, target_age).with_context(|| {
                format!(
                    "{data}: {} ({}) has no true face at age group {target_age}",
                    rows[source].short_name, rows[source].skin_tone
                )
            })?;
            let palette = (0..rows.len())
                .filter(|&j| age(j) == target_age && rows[j].gender == rows[truth].gender)
                .collect();
            aged.push(every.slice_axis(0, target_age, target_age + 1));
            cases.push(Case {
                source,
                pair: AgeingPair {
                    truth,
                    target_age,
                    palette,
                },
                held_out: held_out(source),
            });
        }
    }
    let pick = |images: Vec<Tensor>| Tensor::concat(0, &images.iter().collect::<Vec<_>>());
    let one = |i: usize| faces.slice_axis(0, i, i + 1);
    // The mean training face of each age group.
    let means: Vec<Tensor> = (0..config.ages)
        .map(|a| {
            let members: Vec<Tensor> = (0..rows.len())
                .filter(|&j| age(j) == a && !held_out(j))
                .map(one)
                .collect();
            pick(members).mean_axes(&[0], true)
        })
        .collect();
    let methods = [
        ("caae", pick(aged)),
        (
            "identity",
            pick(cases.iter().map(|c| one(c.source)).collect()),
        ),
        (
            "mean_face",
            pick(
                cases
                    .iter()
                    .map(|c| means[c.pair.target_age].clone())
                    .collect(),
            ),
        ),
        (
            "truth",
            pick(cases.iter().map(|c| one(c.pair.truth)).collect()),
        ),
    ];

    let path = classifier_path(AGE_CLASSIFIER, args)?;
    let (classifier, info) = ImageClassifier::load(&path)?;
    if classifier.config().classes != config.ages {
        bail!(
            "{}: the classifier tells {} classes, not the {} age groups",
            path.display(),
            classifier.config().classes,
            config.ages
        );
    }
    let mut splits = serde_json::Map::new();
    for (name, wanted) in [("held_out", true), ("train", false)] {
        let index: Vec<usize> = (0..cases.len())
            .filter(|&k| cases[k].held_out == wanted)
            .collect();
        let pairs: Vec<AgeingPair> = index.iter().map(|&k| cases[k].pair.clone()).collect();
        let mut scores = serde_json::Map::new();
        for (method, images) in &methods {
            let images = pick(
                index
                    .iter()
                    .map(|&k| images.slice_axis(0, k, k + 1))
                    .collect(),
            );
            let predicted = argmax_rows(&classifier.predict(&fit_to(&images, &classifier)?));
            let s = ageing_scores(&images, &faces, &pairs, Some(&predicted));
            scores.insert(method.to_string(), json!(s));
        }
        splits.insert(name.to_string(), Value::Object(scores));
    }
    let mut out = json!({
        "faces": rows.len(),
        "held_out_tone": FACES_HELD_OUT_TONE,
        "range": "[-1, 1]",
        "tone_region": {
            "rows": [TONE_ROWS.start, TONE_ROWS.end],
            "columns": [TONE_COLUMNS.start, TONE_COLUMNS.end],
        },
        "age_classifier": {
            "path": path.display().to_string(),
            "data": info.data,
            "test_accuracy": info.accuracy,
        },
    });
    for (k, v) in splits {
        out[k] = v;
    }
    Ok(json!({ "ageing": out }))
}
