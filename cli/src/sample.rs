//! `gantry sample`: draw a grid of samples from a trained run.

use crate::run::RunDir;
use crate::sampling::{extent, generate};
use anyhow::{Context, Result, bail};
use clap::Args;
use gantry_datasets::Mixture;
use gantry_gan::models::ModelConfig;
use gantry_gan::truncation::truncate;
use gantry_gan::{checkpoint, samples};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;

/// The most samples drawn into one picture.
const MAX_N: usize = 65536;

/// `gantry sample`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    gantry sample --run runs/dcgan-mnist-1 --n 100 --seed 7 --out digits.png\n  \
    gantry sample --run runs/cdcgan-mnist-1 --label 7 --n 64 --out sevens.png\n  \
    gantry sample --run runs/biggan-emoji-1 --label 8 --truncation 0.5 --out flags.png")]
pub struct SampleArgs {
    /// Run directory (holding checkpoint.safetensors).
    #[arg(long)]
    pub run: PathBuf,
    /// Number of samples (a square grid when the number is square).
    #[arg(long, default_value_t = 64)]
    pub n: usize,
    /// Seed of the noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Draw only this class (label-conditional runs, cdcgan and biggan: 0..=9 for MNIST,
    /// 0..=8 for the emoji categories) [default: every class in turn, in equal shares, in
    /// label order].
    #[arg(long)]
    pub label: Option<usize>,
    /// The truncation trick (BigGAN): latent values beyond +-T are redrawn until inside.
    /// Smaller T gives more typical, less varied samples [default: none].
    #[arg(long)]
    pub truncation: Option<f32>,
    /// PNG file to write.
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs `gantry sample`.
pub fn run(args: SampleArgs) -> Result<()> {
    if !(1..=MAX_N).contains(&args.n) {
        bail!(
            "--n {} must be in 1..={MAX_N} (a grid of 256 x 256 samples)",
            args.n
        );
    }
    if let Some(t) = args.truncation.filter(|t| !(*t > 0.0 && t.is_finite())) {
        bail!("--truncation {t} must be a positive threshold (BigGAN samples at 0.5 to 2)");
    }
    let dir = RunDir {
        root: args.run.clone(),
    };
    let (trainer, _) = checkpoint::load_for_sampling(&dir.checkpoint())
        .with_context(|| format!("cannot load the run in {}", args.run.display()))?;
    let gan = trainer.gan.as_ref();
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let Some(noise) = gan.noise(args.n, &mut rng) else {
        let command = match gan.config() {
            ModelConfig::Caae(_) => "ages faces, use `gantry age`",
            _ => "translates inputs, use `gantry translate`",
        };
        bail!(
            "{} is a {} run: it {command}",
            args.run.display(),
            gan.config().kind()
        );
    };
    let noise = match args.truncation {
        Some(t) => truncate(&noise, t, &mut rng),
        None => noise,
    };
    let labels = match (gan.num_classes(), args.label) {
        (None, Some(_)) => bail!(
            "--label: {} is a {} run, which is not label-conditional (train one with --model cdcgan or biggan)",
            args.run.display(),
            gan.config().kind()
        ),
        (Some(k), Some(y)) if y >= k => bail!(
            "--label {y} is out of range: the run in {} has {k} classes (0..={})",
            args.run.display(),
            k - 1
        ),
        (Some(_), Some(y)) => Some(vec![y; args.n]),
        // Equal shares in label order: a square grid of k*k samples has a row per class.
        (Some(k), None) => Some((0..args.n).map(|i| i * k / args.n).collect()),
        (None, None) => None,
    };
    let input = gan.latent_input(noise, labels.as_deref());
    let out = generate(gan, &input, args.seed);
    if out.ndim() == 2 {
        let data = dir
            .read_config()
            .ok()
            .and_then(|c| c["run"]["data"].as_str().map(String::from));
        let mixture = match data.as_deref() {
            Some("ring") => Some(Mixture::ring8()),
            Some("grid") => Some(Mixture::grid25()),
            _ => None,
        };
        let modes = mixture.as_ref().map_or(&[][..], |m| m.centres());
        samples::save_scatter(&out, modes, extent(&mixture, &out), &args.out)?;
    } else {
        let nrow = (args.n as f64).sqrt().ceil() as usize;
        samples::save_grid(&out, nrow, &args.out)?;
    }
    println!("wrote {} samples to {}", args.n, args.out.display());
    Ok(())
}
