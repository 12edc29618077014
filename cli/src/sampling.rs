//! Generating samples from a trained model, and the pictures the run directory keeps.

use crate::data::{self, Data, Kind};
use crate::run::RunDir;
use anyhow::{Context, Result};
use gantry_autodiff::Tape;
use gantry_datasets::{Augment, Mixture};
use gantry_gan::models::{Batch, Gan, ModelConfig};
use gantry_gan::{Trainer, samples};
use gantry_nn::{Mode, Module, ParamKind, named_params};
use gantry_tensor::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::path::PathBuf;

/// The mode a model generates in: pix2pix as configured (the paper keeps dropout and batch
/// statistics on), the others with running statistics.
pub fn generation_mode(gan: &dyn Gan) -> Mode {
    match gan.config() {
        ModelConfig::Pix2Pix(c) => c.test_mode(),
        _ => Mode::Eval,
    }
}

/// Runs the generator on `input` in its [`generation_mode`].
pub fn generate(gan: &dyn Gan, input: &Tensor, seed: u64) -> Tensor {
    generate_in(gan, input, seed, generation_mode(gan))
}

/// Runs the generator on `input` in `mode` without changing the model: batch-norm running
/// statistics that a training-mode pass would update are put back afterwards.
pub fn generate_in(gan: &dyn Gan, input: &Tensor, seed: u64, mode: Mode) -> Tensor {
    let g = gan.generator();
    let saved = buffers(g);
    let tape = Tape::with_seed(seed);
    let out = g.forward(tape.constant(input.clone()), mode).value();
    for (name, p) in named_params(g) {
        if let Some(v) = saved.get(&name) {
            p.set(v.clone());
        }
    }
    out
}

fn buffers(m: &dyn Module) -> HashMap<String, Tensor> {
    named_params(m)
        .into_iter()
        .filter(|(_, p)| p.kind() == ParamKind::Buffer)
        .map(|(n, p)| (n, p.value()))
        .collect()
}

/// Samples per row in the class grids of a label-conditional model.
pub const CLASS_COLUMNS: usize = 10;

/// Rows of a label-conditional model's fixed sample grid, at most.
const MAX_CLASS_ROWS: usize = 20;

/// The labels of a class grid for `k` classes: one row of [`CLASS_COLUMNS`] samples per
/// class (the first 20 classes when there are more).
pub fn class_rows(k: usize) -> Vec<usize> {
    (0..k.min(MAX_CLASS_ROWS) * CLASS_COLUMNS)
        .map(|i| i / CLASS_COLUMNS)
        .collect()
}

/// Tiles per row of a run's step grids: a row per class for a label-conditional model.
pub fn grid_columns(gan: &dyn Gan) -> usize {
    if gan.num_classes().is_some() {
        CLASS_COLUMNS
    } else {
        8
    }
}

/// The plotting extent of a 2-D mixture.
pub fn extent(mixture: &Option<Mixture>, points: &Tensor) -> f32 {
    match mixture {
        Some(m) => {
            m.centres()
                .iter()
                .flat_map(|c| c.iter().map(|v| v.abs()))
                .fold(0.0, f32::max)
                * 1.25
                + 0.25
        }
        None => points.abs().to_vec().into_iter().fold(1.0, f32::max) * 1.1,
    }
}

/// Interleaves `[N, C, H, W]` tensors row by row: a, b, c, a, b, c, ... (for strips).
pub fn interleave(parts: &[&Tensor]) -> Tensor {
    let n = parts[0].shape()[0];
    // A part smaller than the first by a whole factor (pix2pixHD's half-size translations
    // during its global phase) is shown enlarged to it, pixel by pixel.
    let side = parts[0].shape()[2];
    let sized: Vec<Tensor> = parts
        .iter()
        .map(|p| {
            let s = p.shape()[2];
            if s < side && side.is_multiple_of(s) {
                p.upsample_nearest2d(side / s)
            } else {
                (*p).clone()
            }
        })
        .collect();
    let rows: Vec<Tensor> = (0..n)
        .flat_map(|i| sized.iter().map(move |p| p.slice_axis(0, i, i + 1)))
        .collect();
    let refs: Vec<&Tensor> = rows.iter().collect();
    Tensor::concat(0, &refs)
}

/// For an age-conditional model (caae): each of `faces` (`[N, C, H, W]`) followed by the
/// generator's output for it at every age group, youngest first, as `N * (1 + ages)`
/// images (a grid of `1 + ages` columns shows a face per row).
///
/// # Panics
/// If the model is not label-conditional.
pub fn age_rows(gan: &dyn Gan, faces: &Tensor, seed: u64) -> Tensor {
    let n = faces.shape()[0];
    let mut rows = Vec::with_capacity(2 * n);
    for i in 0..n {
        let face = faces.slice_axis(0, i, i + 1);
        let aged = at_every_age(gan, &face, seed);
        rows.push(face);
        rows.push(aged);
    }
    Tensor::concat(0, &rows.iter().collect::<Vec<_>>())
}

/// For an age-conditional model (caae): the generator's output for one face (`[1, C, H, W]`)
/// at every age group, youngest first, `[ages, C, H, W]`; what `gantry age` shows and `gantry
/// eval` measures.
///
/// # Panics
/// If the model is not label-conditional.
pub fn at_every_age(gan: &dyn Gan, face: &Tensor, seed: u64) -> Tensor {
    let ages = gan.num_classes().expect("an age-conditional model");
    let batch = Batch {
        labels: Some((0..ages).collect()),
        ..Batch::new(Tensor::concat(0, &vec![face; ages]))
    };
    let input = gan.generator_input(&batch, &mut ChaCha8Rng::seed_from_u64(seed));
    generate(gan, &input, seed)
}

/// `samples/real.png`: what the data looks like, as the model sees it.
pub fn write_real_samples(
    run: &RunDir,
    data: &Data,
    augment: Option<Augment>,
    seed: u64,
) -> Result<()> {
    let path = run.sample("real.png");
    match &data.kind {
        Kind::Points(mixture) => {
            let n = data.set.len().min(2500);
            let mut it = data::batches(data, n, seed, None, 0)?;
            let pts = data::next(&mut it)?.real;
            samples::save_scatter(
                &pts,
                mixture.as_ref().map_or(&[], |m| m.centres()),
                extent(mixture, &pts),
                &path,
            )?;
        }
        Kind::Pairs(..) => {
            let mut it = data::batches(data, data.set.len().min(8), seed, augment, 0)?;
            let b = data::next(&mut it)?;
            let a = b.condition.context("pairs have inputs")?;
            samples::save_grid(&interleave(&[&a, &b.real]), 2, &path)?;
        }
        Kind::Images(_) => {
            let mut it = data::batches(data, data.set.len().min(64), seed, augment, 0)?;
            samples::save_grid(&data::next(&mut it)?.real, 8, &path)?;
        }
    }
    Ok(())
}

/// `samples/step_NNNNNN.png` from the fixed inputs, copied to `samples/STAGE.png` for a
/// model with stages ([`Gan::stage_name`]); returns its path.
pub fn write_step_samples(
    run: &RunDir,
    trainer: &Trainer,
    fixed: &[(String, Tensor)],
    kind: &Kind,
    step: u64,
) -> Result<PathBuf> {
    let path = run.sample(&format!("step_{step:06}.png"));
    let get = |name: &str| fixed.iter().find(|(n, _)| n == name).map(|(_, t)| t);
    let gan = trainer.gan.as_ref();
    if let Some(faces) = get("sample_faces") {
        let ages = gan.num_classes().context("a caae run is age-conditional")?;
        samples::save_grid(&age_rows(gan, faces, step), ages + 1, &path)?;
    } else if let Some(noise) = get("sample_noise") {
        let out = generate(gan, noise, step);
        match kind {
            Kind::Points(mixture) => {
                let modes = mixture.as_ref().map_or(&[][..], |m| m.centres());
                samples::save_scatter(&out, modes, extent(mixture, &out), &path)?;
            }
            _ => samples::save_grid(&out, grid_columns(gan), &path)?,
        }
    } else {
        let a = get("sample_a").context("the run keeps no fixed sample inputs")?;
        let b = get("sample_b").context("the run keeps no fixed sample targets")?;
        let out = generate(gan, a, step);
        samples::save_grid(&interleave(&[a, &out, b]), 3, &path)?;
    }
    // A model that changes as it trains (ProGAN's resolutions) keeps the last grid of each
    // stage beside the step grids.
    if let Some(stage) = gan.stage_name() {
        let kept = run.sample(&format!("{stage}.png"));
        std::fs::copy(&path, &kept)
            .with_context(|| format!("cannot copy {} to {}", path.display(), kept.display()))?;
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_gan::models::CaaeConfig;

    #[test]
    fn age_rows_show_each_face_then_it_at_every_age() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let config = CaaeConfig {
            ngf: 4,
            ndf: 2,
            z_dim: 6,
            ..CaaeConfig::new(16, 3, 4)
        };
        let gan = ModelConfig::Caae(config).build(&mut rng).unwrap();
        let faces = Tensor::rand_uniform(&[2, 3, 16, 16], -1.0, 1.0, &mut rng);
        let rows = age_rows(gan.as_ref(), &faces, 0);
        assert_eq!(rows.shape(), &[10, 3, 16, 16]);
        let tile = |i: usize| rows.slice_axis(0, i, i + 1);
        assert_eq!(tile(0), faces.slice_axis(0, 0, 1));
        assert_eq!(tile(5), faces.slice_axis(0, 1, 2));
        // Every age of one face differs from every other.
        for (a, b) in [(1, 2), (1, 4), (2, 3), (3, 4), (6, 9)] {
            assert!(tile(a) != tile(b), "tiles {a} and {b} are the same");
        }
        // The same face at the same age, whatever else is in the batch: row 2 is face 1 alone.
        let alone = age_rows(gan.as_ref(), &faces.slice_axis(0, 1, 2), 0);
        let (a, b) = (
            alone.slice_axis(0, 1, 5).to_vec(),
            rows.slice_axis(0, 6, 10).to_vec(),
        );
        let worst = a
            .iter()
            .zip(&b)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(worst < 1e-5, "face 1 alone differs by {worst}");
    }
}
