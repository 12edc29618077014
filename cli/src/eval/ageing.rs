//! `gantry eval` of a caae run: every emoji face aged to each other age group and compared
//! with the true emoji of the same person at that age (see `gantry_gan::metrics::ageing`),
//! beside the baselines that return the input unchanged and the mean face of the target age,
//! and the truth itself (the age classifier's ceiling). Training faces and held-out faces
//! (the `medium` skin tone) are reported apart.

use super::{EvalArgs, cat, classifier_path, fit_to};
use crate::sampling::at_every_age;
use anyhow::{Context, Result, bail};
use gantry_datasets::{
    AGE_GROUPS, EmojiInfo, FACES_HELD_OUT_TONE, ImageSet, load_face_table, same_person_at,
    transform,
};
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
    if config.ages != AGE_GROUPS.len() || config.channels != 3 {
        bail!(
            "the run's model draws {} age groups of {}-channel faces; {data} has {} age groups of RGB faces",
            config.ages,
            config.channels,
            AGE_GROUPS.len()
        );
    }
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
    let (set, rows) = load_face_table(data, &crate::data::roots(), &mut |_, _| {})?;
    let faces = faces_at(&set, config.image_size);
    let (cases, aged) = age_every_face(gan, &rows, &faces, args.seed)
        .with_context(|| format!("{data}: the label table"))?;

    let one = |i: usize| faces.slice_axis(0, i, i + 1);
    let means = mean_training_faces(&rows, &faces);
    let methods = [
        ("caae", aged),
        ("identity", cat(cases.iter().map(|c| one(c.source)))),
        (
            "mean_face",
            cat(cases.iter().map(|c| means[c.pair.target_age].clone())),
        ),
        ("truth", cat(cases.iter().map(|c| one(c.pair.truth)))),
    ];
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
    for (split, held_out) in [("held_out", true), ("train", false)] {
        let index: Vec<usize> = (0..cases.len())
            .filter(|&k| cases[k].held_out == held_out)
            .collect();
        let pairs: Vec<AgeingPair> = index.iter().map(|&k| cases[k].pair.clone()).collect();
        let mut scores = serde_json::Map::new();
        for (method, images) in &methods {
            let images = cat(index.iter().map(|&k| images.slice_axis(0, k, k + 1)));
            let predicted = argmax_rows(&classifier.predict(&fit_to(&images, &classifier)?));
            let s = ageing_scores(&images, &faces, &pairs, Some(&predicted));
            scores.insert(method.to_string(), json!(s));
        }
        out[split] = Value::Object(scores);
    }
    Ok(json!({ "ageing": out }))
}

/// The faces of `set` as one `[N, 3, side, side]` tensor (resized where the run works at
/// another size than the data's).
fn faces_at(set: &ImageSet, side: usize) -> Tensor {
    cat((0..set.len()).map(|i| {
        let face = set.image(i);
        let face = if face.shape()[1] == side {
            face
        } else {
            transform::resize(&face, side, side)
        };
        face.reshape(&[1, 3, side, side])
    }))
}

/// Every face aged by the model to each other age group (as `gantry age` draws it: the face
/// at all ages in one batch), the cases in order and their images, `[cases, 3, H, W]`.
fn age_every_face(
    gan: &dyn Gan,
    rows: &[EmojiInfo],
    faces: &Tensor,
    seed: u64,
) -> Result<(Vec<Case>, Tensor)> {
    let age = |i: usize| rows[i].age_group.expect("a face table holds faces");
    let mut cases = Vec::new();
    let mut aged = Vec::new();
    for source in 0..rows.len() {
        let every = at_every_age(gan, &faces.slice_axis(0, source, source + 1), seed);
        for target_age in (0..AGE_GROUPS.len()).filter(|&a| a != age(source)) {
            let truth = same_person_at(rows, source, target_age).with_context(|| {
                format!(
                    "{} ({}) has no true face at age group {}",
                    rows[source].short_name, rows[source].skin_tone, AGE_GROUPS[target_age]
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
                held_out: rows[source].skin_tone == FACES_HELD_OUT_TONE,
            });
        }
    }
    Ok((cases, cat(aged)))
}

/// The mean training face (not held out) of each age group, `[1, 3, H, W]` each.
fn mean_training_faces(rows: &[EmojiInfo], faces: &Tensor) -> Vec<Tensor> {
    (0..AGE_GROUPS.len())
        .map(|a| {
            let members = (0..rows.len())
                .filter(|&j| {
                    rows[j].age_group == Some(a) && rows[j].skin_tone != FACES_HELD_OUT_TONE
                })
                .map(|j| faces.slice_axis(0, j, j + 1));
            cat(members).mean_axes(&[0], true)
        })
        .collect()
}
