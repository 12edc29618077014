//! `gantry age`: one face at every age group, side by side, from a trained caae run.

use crate::run::RunDir;
use crate::sampling::age_rows;
use anyhow::{Context, Result, bail};
use clap::Args;
use gantry_datasets::{AGE_GROUPS, Channels, load_image_on_white, transform};
use gantry_gan::models::ModelConfig;
use gantry_gan::{checkpoint, samples};
use gantry_tensor::Tensor;
use std::path::{Path, PathBuf};

/// `gantry age`.
#[derive(Args, Debug)]
#[command(
    after_help = "The input is one face, square and centred on a plain background, as the \
training faces are (an emoji PNG works as it is). Another size is resized to the run's; \
transparency is composited onto white and a grey image is made RGB. The output is one row: \
the input, then the face at each age group, youngest first (baby, child, adult, older for \
emoji-faces).\n\
Examples:\n  gantry train --model caae --steps 3000 --out runs/caae\n  \
gantry age --run runs/caae --input face.png --out face-ages.png"
)]
pub struct AgeArgs {
    /// Run directory of a caae run (`gantry train --model caae`).
    #[arg(long)]
    pub run: PathBuf,
    /// The face: a square PNG or JPEG image.
    #[arg(long)]
    pub input: PathBuf,
    /// The PNG to write: the input, then the face at every age group, in one row.
    #[arg(long)]
    pub out: PathBuf,
}

/// The face in `path` as a `[1, C, size, size]` tensor in `[-1, 1]`.
fn read_face(path: &Path, channels: usize, size: usize) -> Result<Tensor> {
    let mode = match channels {
        1 => Channels::Gray,
        3 => Channels::Rgb,
        c => bail!("the run's faces have {c} channels; gantry age reads grey or RGB images"),
    };
    let (w, h, hwc) = load_image_on_white(path, mode)?;
    if w != h {
        bail!(
            "--input {}: the image is {w}x{h}, not square; crop it to the face ({size}x{size} is the run's size)",
            path.display()
        );
    }
    let (c, s) = (channels, w as usize);
    let mut chw = vec![0.0f32; c * s * s];
    for (i, &v) in hwc.iter().enumerate() {
        let (pixel, k) = (i / c, i % c);
        chw[k * s * s + pixel] = f32::from(v) / 127.5 - 1.0;
    }
    let face = transform::resize(&Tensor::from_vec(&[c, s, s], chw), size, size);
    Ok(face.reshape(&[1, c, size, size]))
}

/// Runs `gantry age`.
pub fn run(args: AgeArgs) -> Result<()> {
    if !args.input.is_file() {
        bail!("--input {}: no such file", args.input.display());
    }
    if args.out.extension().and_then(|e| e.to_str()) != Some("png") {
        bail!(
            "--out {}: the row is written as PNG; name it .png",
            args.out.display()
        );
    }
    let dir = RunDir {
        root: args.run.clone(),
    };
    let (trainer, _) = checkpoint::load_for_sampling(&dir.checkpoint())
        .with_context(|| format!("cannot load the run in {}", args.run.display()))?;
    let gan = trainer.gan.as_ref();
    let config = gan.config();
    let ModelConfig::Caae(caae) = &config else {
        bail!(
            "{} is a {} run; gantry age takes caae runs (train one with `gantry train --model caae`)",
            args.run.display(),
            config.kind()
        );
    };
    let face = read_face(&args.input, caae.channels, caae.image_size)?;
    samples::save_grid(&age_rows(gan, &face, 0), caae.ages + 1, &args.out)?;
    let data = dir
        .read_config()
        .ok()
        .and_then(|c| c["run"]["data"].as_str().map(String::from))
        .unwrap_or_default();
    let names = if data.starts_with("emoji-faces") && caae.ages == AGE_GROUPS.len() {
        AGE_GROUPS.join(", ")
    } else {
        format!("age groups 0 to {}", caae.ages - 1)
    };
    println!("wrote {}: the input, then {names}", args.out.display());
    Ok(())
}
