//! Range checks of `gantry train`'s flags, shared by new and resumed runs: a value out of
//! range is one line before anything is loaded, built or written.

use crate::train::{ModelArg, TrainArgs};
use anyhow::{Result, bail};
use gantry_gan::checkpoint;

/// The largest accepted `--batch-size` (and `run.batch_size` of a resumed run).
pub const MAX_BATCH: usize = 65536;

/// Refuses flags out of range before anything is loaded or built: `--k` outside
/// 1..=100, a batch size outside 1..=65536, a step target of 0, an image size beyond the limit,
/// an MLP depth outside 1..=16 or a maxout outside 2..=64 pieces.
/// (The learning rates are checked with the objective's knobs, `train::check_knobs`.)
pub fn check_flags(args: &TrainArgs) -> Result<()> {
    if let Some(k) = args.k.filter(|k| !(1..=checkpoint::MAX_K).contains(k)) {
        bail!(
            "--k {k} must be in 1..={}: the discriminator takes k steps per generator step",
            checkpoint::MAX_K
        );
    }
    if let Some(b) = args.batch_size.filter(|b| !(1..=MAX_BATCH).contains(b)) {
        bail!("--batch-size {b} must be in 1..={MAX_BATCH}");
    }
    if args.steps == Some(0) || args.epochs == Some(0) {
        bail!("--steps and --epochs must be at least 1");
    }
    for (flag, layers) in [("--g-layers", args.g_layers), ("--d-layers", args.d_layers)] {
        if let Some(n) = layers.filter(|n| !(1..=checkpoint::MAX_LAYERS).contains(n)) {
            bail!(
                "{flag} {n} must be in 1..={}: the number of hidden layers",
                checkpoint::MAX_LAYERS
            );
        }
    }
    if let Some(k) = args
        .d_maxout
        .filter(|k| !(2..=checkpoint::MAX_MAXOUT).contains(k))
    {
        bail!(
            "--d-maxout {k} must be in 2..={}: a maxout unit takes the largest of its pieces",
            checkpoint::MAX_MAXOUT
        );
    }
    if let Some(n) = args.image_size.filter(|n| *n > checkpoint::MAX_IMAGE_SIZE) {
        bail!(
            "--image-size {n} is larger than the limit {}",
            checkpoint::MAX_IMAGE_SIZE
        );
    }
    Ok(())
}

/// Refuses a mode-seeking weight that is negative or not finite, or any for the models that
/// draw no noise (pix2pix, pix2pixhd, caae).
pub fn check_mode_seeking(weight: f32, model: ModelArg) -> Result<()> {
    if !(weight >= 0.0 && weight.is_finite()) {
        bail!("--mode-seeking {weight} must be a finite weight >= 0");
    }
    let name = match model {
        ModelArg::Pix2pix => "pix2pix",
        ModelArg::Pix2pixhd => "pix2pixhd",
        ModelArg::Caae => "caae",
        _ => return Ok(()),
    };
    if weight > 0.0 {
        bail!(
            "--mode-seeking: {name} draws no noise, so there are no two samples of one input to compare"
        );
    }
    Ok(())
}
