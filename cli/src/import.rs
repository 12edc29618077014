//! `gantry import`: PyTorch checkpoints of pytorch/examples' DCGAN and junyanz's pix2pix into
//! a run directory that the other commands accept.

use crate::data::{self, Kind};
use crate::run::RunDir;
use crate::train::{
    ModelArg, RunSettings, default_checkpoint_every, default_sample_every, fixed_inputs,
};
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use gantry_datasets::Split;
use gantry_gan::import::{TorchModel, import, infer_config, read_state_dict};
use gantry_gan::models::ModelConfig;
use gantry_gan::{TrainConfig, Trainer, checkpoint};
use std::path::PathBuf;

/// The PyTorch projects whose checkpoints import.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ImportModel {
    /// pytorch/examples `dcgan/main.py` (netG_epoch_N.pth, netD_epoch_N.pth).
    Dcgan,
    /// junyanz/pytorch-CycleGAN-and-pix2pix, U-Net generator and PatchGAN with batch norm
    /// (latest_net_G.pth, latest_net_D.pth).
    Pix2pix,
}

/// `gantry import`.
#[derive(Args, Debug)]
#[command(
    after_help = "The sizes are read off the weights; a size flag, if given, must agree \
with them (a check that the file is the network you think it is).\n\n\
Examples:\n  \
    gantry import --model dcgan --generator netG_epoch_24.pth --discriminator netD_epoch_24.pth --out runs/dcgan-torch\n  \
    gantry sample --run runs/dcgan-torch --out torch.png\n  \
    gantry import --model pix2pix --generator latest_net_G.pth --data datasets/facades --out runs/facades\n  \
    gantry translate --run runs/facades --input photo.png --out out.png\n  \
    gantry train --resume runs/dcgan-torch --steps 1000   # fine-tune"
)]
pub struct ImportArgs {
    /// Which project's networks the files hold.
    #[arg(long, value_enum)]
    pub model: ImportModel,
    /// The generator's weights: a `torch.save` file (.pth) or a .safetensors file with
    /// PyTorch's names.
    #[arg(long)]
    pub generator: PathBuf,
    /// The discriminator's weights, in the same formats [default: a freshly initialised one;
    /// enough to sample, translate and export, but fine-tuning wants the trained one].
    #[arg(long)]
    pub discriminator: Option<PathBuf>,
    /// Image side (pix2pix: 2^depth of the U-Net) [default: read off the weights].
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Image channels (dcgan: nc; pix2pix: input and output channels) [default: read off
    /// the weights].
    #[arg(long)]
    pub channels: Option<usize>,
    /// Generator width [default: read off the weights].
    #[arg(long)]
    pub ngf: Option<usize>,
    /// Discriminator width [default: read off the weights, or ngf without --discriminator].
    #[arg(long)]
    pub ndf: Option<usize>,
    /// Latent size (dcgan) [default: read off the weights].
    #[arg(long)]
    pub nz: Option<usize>,
    /// Data set that `eval` and `train --resume` use: a built-in name or a path, as for
    /// `gantry train` [default: mnist for a 1-channel DCGAN, emoji for others, edges2emoji
    /// for pix2pix].
    #[arg(long)]
    pub data: Option<String>,
    /// Batch size of a fine-tuning `train --resume`, which keeps the run's [default: 64; 4 for
    /// pix2pix].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Seed of the run's fixed sample noise and of a fresh discriminator.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Run directory to create.
    #[arg(long)]
    pub out: PathBuf,
}

/// Refuses a size flag that disagrees with the weights.
fn agree(flag: &str, given: Option<usize>, found: usize, file: &std::path::Path) -> Result<()> {
    match given {
        Some(g) if g != found => bail!(
            "--{flag} {g} does not match {}, whose weights have {flag} {found}",
            file.display()
        ),
        _ => Ok(()),
    }
}

fn config_channels(config: &ModelConfig) -> usize {
    match config {
        ModelConfig::Dcgan(c) => c.channels,
        ModelConfig::Pix2Pix(c) => c.in_channels,
        _ => 0,
    }
}

/// Runs `gantry import`.
pub fn run(args: ImportArgs) -> Result<()> {
    if args.out.join(crate::run::CHECKPOINT).exists() {
        bail!(
            "--out {} already holds a run; choose another folder",
            args.out.display()
        );
    }
    let g = read_state_dict(&args.generator)?;
    let d = args
        .discriminator
        .as_deref()
        .map(read_state_dict)
        .transpose()?;
    let which = match args.model {
        ImportModel::Dcgan => TorchModel::Dcgan,
        ImportModel::Pix2pix => TorchModel::Pix2Pix,
    };
    let mut config = infer_config(which, &g, d.as_ref())
        .with_context(|| format!("--generator {}", args.generator.display()))?;
    let file = args.generator.as_path();
    let (model_arg, default_data) = match &mut config {
        ModelConfig::Dcgan(c) => {
            agree("image-size", args.image_size, c.image_size, file)?;
            agree("channels", args.channels, c.channels, file)?;
            agree("ngf", args.ngf, c.ngf, file)?;
            agree("nz", args.nz, c.nz, file)?;
            match (&args.discriminator, args.ndf) {
                (Some(f), ndf) => agree("ndf", ndf, c.ndf, f)?,
                (None, Some(ndf)) => c.ndf = ndf,
                (None, None) => {}
            }
            let data = if c.channels == 1 { "mnist" } else { "emoji" };
            (ModelArg::Dcgan, data)
        }
        ModelConfig::Pix2Pix(c) => {
            agree("image-size", args.image_size, c.image_size, file)?;
            agree("channels", args.channels, c.in_channels, file)?;
            agree("ngf", args.ngf, c.ngf, file)?;
            if args.nz.is_some() {
                bail!("--nz: pix2pix draws no noise (its input is an image)");
            }
            match (&args.discriminator, args.ndf) {
                (Some(f), ndf) => agree("ndf", ndf, c.ndf, f)?,
                (None, Some(ndf)) => c.ndf = ndf,
                (None, None) => {}
            }
            (ModelArg::Pix2pix, "edges2emoji")
        }
        other => bail!("cannot import a {} model", other.kind()),
    };
    let gan = import(&config, &g, d.as_ref())?;
    let train = TrainConfig {
        seed: args.seed,
        ..TrainConfig::default()
    };
    let trainer = Trainer::new(gan, train.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let image_size = match &config {
        ModelConfig::Dcgan(c) => c.image_size,
        ModelConfig::Pix2Pix(c) => c.image_size,
        _ => unreachable!("only dcgan and pix2pix import"),
    };
    let settings = RunSettings {
        model: model_arg,
        data: args
            .data
            .clone()
            .unwrap_or_else(|| default_data.to_string()),
        batch_size: args
            .batch_size
            .unwrap_or(if model_arg == ModelArg::Pix2pix {
                4
            } else {
                64
            }),
        image_size: Some(image_size),
        seed: args.seed,
        jitter: model_arg == ModelArg::Pix2pix,
        sample_every: default_sample_every(),
        checkpoint_every: default_checkpoint_every(),
    };
    // The fixed sample inputs: validation pairs for pix2pix (read from the data), noise for
    // DCGAN, for which `fixed_inputs` only asks whether the data are images, so no data set
    // needs to be at hand to import one.
    let data = match model_arg {
        ModelArg::Pix2pix => data::load(&settings.data, Split::Train, true).with_context(|| {
            format!(
                "--data {}: pix2pix runs keep validation pairs for their sample grids",
                settings.data
            )
        })?,
        _ => data::Data {
            set: Box::new(gantry_datasets::Mixture::ring8().dataset(1, 0)),
            kind: Kind::Images(vec![config_channels(&config), image_size, image_size]),
        },
    };
    let fixed = fixed_inputs(&trainer, &data, &settings)?;
    // Locked like a training run's, and refused if it holds something else.
    let (run_dir, _lock) = RunDir::open(&args.out, true)?;
    run_dir.write_config(&serde_json::json!({
        "gantry": env!("CARGO_PKG_VERSION"),
        "run": settings,
        "model": config,
        "train": train,
        "imported": {
            "generator": args.generator,
            "discriminator": args.discriminator,
        },
    }))?;
    // No steps yet: an empty log, which `report` shows as such and `train --resume` extends.
    run_dir.metrics_log(0)?;
    let extra = serde_json::json!({ "batches_consumed": 0 });
    checkpoint::save(&run_dir.checkpoint(), &trainer, &fixed, &extra)?;
    println!(
        "imported a {} generator{} into {} ({})",
        config.kind(),
        if args.discriminator.is_some() {
            " and discriminator"
        } else {
            " (fresh discriminator)"
        },
        args.out.display(),
        serde_json::to_string(&config)?
    );
    Ok(())
}
