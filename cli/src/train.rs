//! `gantry train`: build or resume a run, train with a progress bar, log, sample, checkpoint.

use crate::data::{self, Data, Kind};
use crate::flags::{check_flags, check_mode_seeking};
use crate::interrupt::{self, Interrupt, Interrupted};
use crate::lock::RunLock;
use crate::progress;
use crate::run::RunDir;
use crate::sampling;
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use gantry_datasets::Split;
use gantry_gan::diffaug::DiffAug;
use gantry_gan::models::{
    BigGanConfig, CaaeConfig, CdcganConfig, CriticNorm, DcganConfig, DcganVariant, MlpConfig,
    ModelConfig, Pix2PixConfig, Pix2PixHdConfig, ProGanConfig, Recipe, WganGpConfig,
};
use gantry_gan::objective::{ObjectiveConfig, TermSpec, model_terms};
use gantry_gan::{OptimConfig, StepMetrics, TrainConfig, Trainer, checkpoint};
use gantry_tensor::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

/// The model families.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelArg {
    /// DCGAN (Radford et al.): the TensorFlow tutorial network for 28x28 data, pytorch/examples'
    /// network for everything else (resized to --image-size, 64 by default).
    Dcgan,
    /// The vanilla GAN of Goodfellow et al.: fully connected players.
    Mlp,
    /// pix2pix (Isola et al.): U-Net + PatchGAN + L1, for paired data.
    Pix2pix,
    /// Label-conditional DCGAN (Mirza and Osindero): DCGAN's networks, the class given to G as
    /// an embedding next to z and to D as one-hot planes; for labelled images (MNIST,
    /// Fashion-MNIST, CIFAR-10, a folder with one sub-folder per class).
    Cdcgan,
    /// WGAN-GP (Gulrajani et al.), the lecture's PokeGAN recipe: pytorch/examples' DCGAN
    /// generator and a critic of the same shape without batch norm (--critic-norm), the
    /// Wasserstein loss with gradient penalty 10, 5 critic steps per generator step, Adam 1e-4
    /// with betas (0, 0.9); on the emoji by default; 28x28 data is resized to 32.
    #[value(name = "wgan-gp")]
    #[serde(rename = "wgan-gp")]
    WganGp,
    /// A small class-conditional BigGAN (Brock et al.): residual blocks, conditional batch
    /// norm on a shared class embedding and chunks of z, a projection discriminator, spectral
    /// norm in both players, orthogonal init; hinge loss, 2 D steps, Adam 1e-4 / 4e-4 with
    /// betas (0, 0.999), EMA 0.999; on the emoji's 9 categories by default. --ngf sets the
    /// base width `ch` of both players (16), --attention a self-attention block.
    Biggan,
    /// Progressive growing (Karras et al.): both players grow from 4x4 to the data's size
    /// (64 for the emoji, 128 for emoji128), each new resolution faded in over
    /// --fade-images images and then trained alone for --stable-images; pixel norm in G,
    /// minibatch stddev in D, equalised learning rate, Wasserstein loss with gradient penalty
    /// 10 and drift 0.001, Adam 1e-3 with betas (0, 0.99), EMA 0.999, batch 16. --ngf sets
    /// the widest blocks of both players (32; halved at 64x64, again at 128x128) and the
    /// latent's length. samples/res-RRR.png keeps the last grid of each resolution.
    Progan,
    /// pix2pixHD (Wang et al.), for paired data at high resolution: a global generator
    /// (residual blocks, instance norm, reflection padding) trained alone at half resolution
    /// for --global-steps, then with its local enhancer at full size; --num-d PatchGANs on
    /// the image and its average-pooled copies; least squares and feature matching over
    /// every discriminator layer at every scale; no VGG term (no pretrained weights ship).
    /// On edges2emoji128 by default, batch 4. --ngf sets the enhancer's width (16; the
    /// global generator's is twice it), --ndf the discriminators' (32).
    Pix2pixhd,
    /// The conditional adversarial autoencoder (Zhang, Song and Qi), for face ageing: an
    /// encoder to a code z in [-1, 1]^50 pushed towards the uniform prior by a code
    /// discriminator, a generator from z and an age one-hot back to the face, and an image
    /// discriminator that judges the face with its age; reconstruction (L1, weight 100), total
    /// variation (1) and both adversaries. On emoji-faces (50 faces, 4 age groups; 10 held
    /// out) with shifts, flips and colour jitter, batch 10. --ngf sets the encoder's first
    /// width (16), --ndf the image discriminator's (16). `gantry age` shows a face at every age.
    Caae,
}

/// How WGAN-GP's critic normalises its hidden layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CriticNormArg {
    /// None: the paper's DCGAN-shaped critic.
    None,
    /// Instance norm with learned scale and shift (per sample, so the penalty holds).
    Instance,
}

/// The optimizers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerArg {
    /// Adam with --beta1 (0.5, as DCGAN) and beta2 0.999.
    Adam,
    /// SGD with --momentum.
    Sgd,
}

/// The names `--loss` takes: every registered loss.
fn loss_names() -> impl Iterator<Item = &'static str> {
    gantry_gan::objective::loss::LOSSES.iter().map(|e| e.name)
}

/// `gantry train`.
#[derive(Args, Debug, Clone)]
#[command(after_help = "Examples:\n  \
    gantry train                                    # DCGAN on the bundled MNIST\n  \
    gantry train --model mlp --data ring --steps 5000\n  \
    gantry train --model pix2pix --data edges2emoji --batch-size 4\n  \
    gantry train --model cdcgan --steps 1500                # one row per digit in samples/\n  \
    gantry train --model mlp --data grid --pack 2           # PacGAN: D judges pairs\n  \
    gantry train --resume runs/dcgan-mnist-1 --steps 3000   # continue to step 3000")]
pub struct TrainArgs {
    /// Model family [default: dcgan].
    #[arg(long, value_enum)]
    pub model: Option<ModelArg>,
    /// Data: mnist, fashion-mnist, emoji, emoji128, cifar10, ring, grid, edges2emoji,
    /// edges2emoji128, edges2digits, or a
    /// path (IDX file, image folder, or pix2pix folder with train/ and val/) [default: mnist,
    /// ring for mlp, edges2emoji for pix2pix].
    #[arg(long)]
    pub data: Option<String>,
    /// Total generator steps to reach (a resumed run continues up to this) [default: the
    /// model's recipe: 2000 for the 28x28 dcgan on digits, 1000 for other dcgan, 4000 for
    /// mlp, 2000 for pix2pix, wgan-gp and biggan].
    #[arg(long, conflicts_with = "epochs")]
    pub steps: Option<u64>,
    /// Train for this many passes over the data instead of --steps.
    #[arg(long)]
    pub epochs: Option<u64>,
    /// Examples per batch [default: the recipe's: 32 for the 28x28 dcgan on digits, 4 for
    /// pix2pix, 64 otherwise].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Discriminator steps per generator step (Algorithm 1's k), 1..=100 [default: the
    /// recipe's: 1; 5 for wgan-gp, 2 for biggan; a resumed run keeps its own].
    #[arg(long)]
    pub k: Option<usize>,
    /// The adversarial loss of both players: non-saturating (D: cross-entropy, G: maximise
    /// log D(G(z))), minimax (G: minimise log(1 - D(G(z)))), hinge (SAGAN, BigGAN), lsgan
    /// (least squares), wasserstein (a critic; pair it with --gp) [default: non-saturating].
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(loss_names()))]
    pub loss: Option<String>,
    /// Weight of the gradient penalty of WGAN-GP in D's loss: (|grad D(x^)| - 1)^2 on random
    /// interpolates x^ between real and fake samples (10 in the paper). Needs a discriminator
    /// without batch norm (mlp).
    #[arg(long)]
    pub gp: Option<f32>,
    /// Weight of the R1 penalty in D's loss: |grad D(x)|^2 / 2 on real data (Mescheder et
    /// al. 2018; StyleGAN uses 10 at 1024^2, less for small images).
    #[arg(long)]
    pub r1: Option<f32>,
    /// Apply R1 every N steps only, with its weight times N (StyleGAN2's lazy regularisation,
    /// N = 16) [default: 1].
    #[arg(long)]
    pub r1_every: Option<u64>,
    /// Weight of ProGAN's drift term, mean D(x)^2 on real data, in D's loss (0.001 in the
    /// paper), which keeps a Wasserstein critic's outputs near 0.
    #[arg(long)]
    pub drift: Option<f32>,
    /// Weight of feature matching (Salimans et al. 2016) in G's loss: G matches the batch
    /// means of D's intermediate activations on real data.
    #[arg(long)]
    pub feature_matching: Option<f32>,
    /// Keep an exponential moving average of G's weights with this decay (0.999 is usual;
    /// warmed up as min(D, (1+t)/(10+t))); samples, `gantry sample`, `eval` and `translate`
    /// use the average; 0 turns the recipe's average off [default: the recipe's: 0.999 for
    /// the 28x28 dcgan on digits and biggan, none otherwise].
    #[arg(long)]
    pub ema: Option<f32>,
    /// Differentiable augmentation of everything D sees, real and fake (DiffAugment, Zhao et
    /// al. 2020), as a comma-separated list of color, translation, cutout; for small image
    /// datasets such as the emoji.
    #[arg(long)]
    pub diffaug: Option<String>,
    /// Optimizer of both players.
    #[arg(long, value_enum, default_value = "adam")]
    pub optimizer: OptimizerArg,
    /// Learning rate of both players [default: the recipe's for Adam: 4e-4 for the 28x28
    /// dcgan on digits, 2e-4 for dcgan, mlp, cdcgan and pix2pix, 1e-4 for wgan-gp, 1e-4 (G) and
    /// 4e-4 (D) for biggan; 0.01 for SGD]; with --resume, changes the run's.
    #[arg(long)]
    pub lr: Option<f32>,
    /// The generator's learning rate, over --lr (TTUR, Heusel et al. 2017: e.g. --lr-g 1e-4
    /// --lr-d 4e-4); with --resume, changes the run's.
    #[arg(long)]
    pub lr_g: Option<f32>,
    /// The discriminator's learning rate, over --lr; with --resume, changes the run's.
    #[arg(long)]
    pub lr_d: Option<f32>,
    /// Adam's beta1 [default: the model's; 0.5 as DCGAN].
    #[arg(long)]
    pub beta1: Option<f32>,
    /// Adam's beta2 [default: the model's; 0.999 as DCGAN].
    #[arg(long)]
    pub beta2: Option<f32>,
    /// SGD's momentum.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f32,
    /// Target of real samples in D's loss; 0.9 is one-sided label smoothing.
    #[arg(long, default_value_t = 1.0)]
    pub real_label: f32,
    /// Weight of the mode-seeking term (Mao et al. 2019) in G's loss: G is rewarded for
    /// samples that differ as much as their noise does, against a label-conditional G that
    /// ignores z. 0 turns it off; 1 is the paper's. Not for pix2pix, which draws no noise
    /// [default: 1 for cdcgan, whose generator otherwise draws one digit per label whatever
    /// z is; 0 for the others]; with --resume, changes the run's.
    #[arg(long)]
    pub mode_seeking: Option<f32>,
    /// Image side the model works at (data is resized to it) [default: 28 for 28x28 data with
    /// dcgan, else 64; the next power of two for pix2pix].
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Generator width (ngf) of dcgan (the 28x28 network's dense layer makes 4 ngf channels),
    /// cdcgan, pix2pix and wgan-gp, at most 1024 [default: 64]; for mlp on 2-D points, the width of
    /// each of G's hidden layers (--g-layers) [default: 128]; for progan, the widest blocks of both
    /// players and the latent's length [default: 32].
    #[arg(long)]
    pub ngf: Option<usize>,
    /// Discriminator width (ndf) of dcgan, cdcgan, pix2pix and wgan-gp, at most 1024
    /// [default: 64]; for mlp on 2-D points, the width of each of D's hidden
    /// layers (--d-layers) [default: 128].
    #[arg(long)]
    pub ndf: Option<usize>,
    /// BigGAN's self-attention: after the blocks at this resolution, in both players (a power
    /// of two from 8 to half the image side; the paper puts it at 64 of 128) [default: none].
    #[arg(long)]
    pub attention: Option<usize>,
    /// ProGAN's fade-in: real images shown while each new resolution blends in, alpha rising
    /// from 0 to 1 [default: 3200, 200 steps of the default batch].
    #[arg(long)]
    pub fade_images: Option<u64>,
    /// ProGAN's stabilisation: real images shown at each resolution once faded in, and at
    /// 4x4 before the first growth [default: --fade-images].
    #[arg(long)]
    pub stable_images: Option<u64>,
    /// pix2pixHD's coarse phase: steps the global generator trains alone at half
    /// resolution before the local enhancer joins [default: 1000].
    #[arg(long)]
    pub global_steps: Option<u64>,
    /// pix2pixHD's discriminators, each on the image pooled once more: 1, 2 or 3
    /// [default: 2].
    #[arg(long)]
    pub num_d: Option<usize>,
    /// WGAN-GP's critic normalisation [default: none].
    #[arg(long, value_enum)]
    pub critic_norm: Option<CriticNormArg>,
    /// Batch norm after each hidden layer of the MLP generator on 2-D points, as PacGAN's
    /// toy generator (--model mlp on ring or grid) [default: off].
    #[arg(long)]
    pub g_batch_norm: bool,
    /// Hidden layers of the MLP generator on 2-D points, each --ngf wide (PacGAN's toy
    /// generator has 4), 1 to 16 [default: 3].
    #[arg(long)]
    pub g_layers: Option<usize>,
    /// Hidden layers of the MLP discriminator on 2-D points, each --ndf wide, 1 to 16
    /// [default: 3].
    #[arg(long)]
    pub d_layers: Option<usize>,
    /// Maxout units in the hidden layers of the MLP discriminator on 2-D points: each unit is
    /// the largest of this many linear pieces, in place of a linear layer and ReLU (PacGAN's
    /// toy discriminator: 5), 2 to 64 [default: plain layers].
    #[arg(long)]
    pub d_maxout: Option<usize>,
    /// PacGAN: the discriminator judges this many samples at once (all real or all fake,
    /// concatenated along channels or features); the batch size must be a multiple of it
    /// [default: 1, a standard discriminator; a resumed run keeps its own].
    #[arg(long)]
    pub pack: Option<usize>,
    /// Seed of the weights, the noise, the data order and augmentation [default: 0; a resumed
    /// run keeps its own].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Worker threads [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Run directory [default: runs/MODEL-DATA-N, the first unused N].
    #[arg(long, conflicts_with = "resume")]
    pub out: Option<PathBuf>,
    /// Continue the run in this directory from its checkpoint.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Write a sample grid every N steps (0: only at the end) [default: 250; a resumed run
    /// keeps its own unless given].
    #[arg(long)]
    pub sample_every: Option<u64>,
    /// Write the checkpoint every N steps (0: only at the end) [default: 500; a resumed run
    /// keeps its own unless given].
    #[arg(long)]
    pub checkpoint_every: Option<u64>,
    /// Append a line to metrics.jsonl every N steps.
    #[arg(long, default_value_t = 10)]
    pub log_every: u64,
    /// No progress bar and no summary (errors still print).
    #[arg(long)]
    pub quiet: bool,
}

/// What `config.json` records to rebuild the data pipeline on resume.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct RunSettings {
    pub model: ModelArg,
    pub data: String,
    pub batch_size: usize,
    pub image_size: Option<usize>,
    pub seed: u64,
    pub jitter: bool,
    /// Sample grid interval; runs written before it was recorded use the default.
    #[serde(default = "default_sample_every")]
    pub sample_every: u64,
    /// Checkpoint interval; runs written before it was recorded use the default.
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
}

/// `--sample-every`'s default.
pub fn default_sample_every() -> u64 {
    250
}

/// `--checkpoint-every`'s default.
pub fn default_checkpoint_every() -> u64 {
    500
}

impl ModelArg {
    /// The family's recipe before the data decides the variant (the run uses
    /// [`Recipe::for_model`]): its data is the default `--data`.
    pub fn recipe(self) -> Recipe {
        match self {
            ModelArg::Dcgan => Recipe::dcgan(),
            ModelArg::Mlp => Recipe::mlp(),
            ModelArg::Pix2pix => Recipe::pix2pix(),
            ModelArg::Cdcgan => Recipe::cdcgan(),
            ModelArg::WganGp => Recipe::wgan_gp(),
            ModelArg::Biggan => Recipe::biggan(),
            ModelArg::Progan => Recipe::progan(),
            ModelArg::Pix2pixhd => Recipe::pix2pixhd(),
            ModelArg::Caae => Recipe::caae(),
        }
    }
}

/// The DCGAN for images of shape `s` (`[C, H, W]`): the tutorial network for 28x28 data, the
/// pytorch/examples one resized to `--image-size` (64 by default) otherwise.
fn dcgan_config(args: &TrainArgs, s: &[usize]) -> Result<DcganConfig> {
    let native28 = s[1] == 28 && s[2] == 28;
    let size = args.image_size.unwrap_or(if native28 { 28 } else { 64 });
    let variant = if size == 28 {
        DcganVariant::Dcgan28
    } else {
        DcganVariant::Dcgan64
    };
    Ok(DcganConfig {
        variant,
        image_size: size,
        channels: s[0],
        nz: 100,
        ngf: args.ngf.unwrap_or(64),
        ndf: args.ndf.unwrap_or(64),
        pack: 1,
        d_dropout: None,
    })
}

/// ProGAN for images of shape `s` (`[C, H, W]`): grown to `--image-size`, else the data's
/// side (a power of two, at least 8), with the CPU widths of `--ngf` (32) and the schedule of
/// the flags, counted in batches of `--batch-size`.
fn progan_config(args: &TrainArgs, s: &[usize]) -> Result<ProGanConfig> {
    if args.ndf.is_some() {
        bail!("--ndf: ProGAN's players share their widths; set them with --ngf");
    }
    let size = args
        .image_size
        .unwrap_or_else(|| s[1].max(s[2]).next_power_of_two().max(8));
    if !size.is_power_of_two() || size < 8 {
        bail!(
            "--image-size {size}: ProGAN grows by doubling from 4x4 to a power of two of at least 8"
        );
    }
    let batch = args.batch_size.unwrap_or(Recipe::progan().batch_size);
    let mut config = ProGanConfig::new(size, s[0], args.ngf.unwrap_or(32), batch);
    config.fade_images = args.fade_images.unwrap_or(config.fade_images);
    config.stable_images = args.stable_images.unwrap_or(config.fade_images);
    Ok(config)
}

/// The model configuration for `model` on data of `kind` with `classes` labels (if the data
/// is labelled), and the image size the data is brought to.
pub fn model_config(
    args: &TrainArgs,
    kind: &Kind,
    classes: Option<usize>,
) -> Result<(ModelConfig, Option<usize>)> {
    let (config, size) = unpacked_config(args, kind, classes)?;
    if matches!(config, ModelConfig::BigGan(_)) && args.pack.is_some_and(|m| m != 1) {
        bail!(
            "--pack: BigGAN's projection discriminator judges one sample with its class; it does not pack"
        );
    }
    if matches!(config, ModelConfig::ProGan(_)) && args.pack.is_some_and(|m| m != 1) {
        bail!(
            "--pack: ProGAN's discriminator sees the batch through its minibatch standard deviation; it does not pack"
        );
    }
    Ok((config.with_pack(args.pack.unwrap_or(1)), size))
}

fn unpacked_config(
    args: &TrainArgs,
    kind: &Kind,
    classes: Option<usize>,
) -> Result<(ModelConfig, Option<usize>)> {
    let model = args.model.unwrap_or(ModelArg::Dcgan);
    let name = args.data.as_deref().unwrap_or(model.recipe().data);
    if args.critic_norm.is_some() && model != ModelArg::WganGp {
        bail!("--critic-norm is WGAN-GP's (--model wgan-gp)");
    }
    let point_mlp = model == ModelArg::Mlp && matches!(kind, Kind::Points(_));
    for (flag, given) in [
        ("--g-batch-norm", args.g_batch_norm),
        ("--g-layers", args.g_layers.is_some()),
        ("--d-layers", args.d_layers.is_some()),
        ("--d-maxout", args.d_maxout.is_some()),
    ] {
        if given && !point_mlp {
            bail!("{flag} is the point MLP's (--model mlp --data ring|grid)");
        }
    }
    if args.attention.is_some() && model != ModelArg::Biggan {
        bail!("--attention is BigGAN's (--model biggan)");
    }
    if (args.fade_images.is_some() || args.stable_images.is_some()) && model != ModelArg::Progan {
        bail!("--fade-images and --stable-images are ProGAN's (--model progan)");
    }
    if (args.global_steps.is_some() || args.num_d.is_some()) && model != ModelArg::Pix2pixhd {
        bail!("--global-steps and --num-d are pix2pixHD's (--model pix2pixhd)");
    }
    Ok(match (model, kind) {
        (ModelArg::Mlp, Kind::Points(_)) => {
            let mut config = MlpConfig::points();
            let g_layers = args.g_layers.unwrap_or(config.g_hidden.len());
            let d_layers = args.d_layers.unwrap_or(config.d_hidden.len());
            config.g_hidden = vec![args.ngf.unwrap_or(config.g_hidden[0]); g_layers];
            config.d_hidden = vec![args.ndf.unwrap_or(config.d_hidden[0]); d_layers];
            config.g_batch_norm = args.g_batch_norm;
            config.d_maxout = args.d_maxout.unwrap_or(0);
            (ModelConfig::Mlp(config), None)
        }
        (ModelArg::Mlp, Kind::Images(_)) if args.ngf.is_some() || args.ndf.is_some() => {
            bail!(
                "--ngf/--ndf set the MLP's hidden widths on 2-D points; the MLP for images has the reference benchmark's fixed widths (G 256-512-1024, D 512-256)"
            )
        }
        (ModelArg::Mlp, Kind::Images(s)) => {
            let size = args.image_size;
            let shape = match size {
                Some(n) => vec![s[0], n, n],
                None => s.clone(),
            };
            (
                ModelConfig::Mlp(MlpConfig {
                    sample_shape: shape,
                    ..MlpConfig::digits()
                }),
                size,
            )
        }
        (ModelArg::Dcgan, Kind::Images(s)) => {
            let config = dcgan_config(args, s)?;
            let size = config.image_size;
            (ModelConfig::Dcgan(config), Some(size))
        }
        (ModelArg::Cdcgan, Kind::Images(s)) => {
            let Some(k) = classes else {
                bail!(
                    "--data {name} has no class labels; cdcgan needs labelled images (mnist, fashion-mnist, emoji, emoji128, cifar10, or a folder with one sub-folder per class)"
                )
            };
            let config = dcgan_config(args, s)?;
            let size = config.image_size;
            (
                ModelConfig::Cdcgan(CdcganConfig::new(config, k)),
                Some(size),
            )
        }
        (ModelArg::WganGp, Kind::Images(s)) => {
            // pytorch/examples' network needs a power of two: 28x28 digits become 32x32.
            let native = s[1].max(s[2]).next_power_of_two().clamp(16, 256);
            let size = args.image_size.unwrap_or(native);
            let mut config = WganGpConfig::new(size, s[0]);
            config.dcgan.ngf = args.ngf.unwrap_or(64);
            config.dcgan.ndf = args.ndf.unwrap_or(64);
            config.critic_norm = match args.critic_norm {
                Some(CriticNormArg::Instance) => CriticNorm::Instance,
                Some(CriticNormArg::None) | None => CriticNorm::None,
            };
            (ModelConfig::WganGp(config), Some(size))
        }
        (ModelArg::Biggan, Kind::Images(s)) => {
            let Some(k) = classes else {
                bail!(
                    "--data {name} has no class labels; biggan is class-conditional and needs labelled images (emoji, emoji128, cifar10, mnist, fashion-mnist, or a folder with one sub-folder per class)"
                )
            };
            if args.ndf.is_some() {
                bail!("--ndf: BigGAN's players share one base width; set it with --ngf");
            }
            let native = s[1].max(s[2]).next_power_of_two().clamp(16, 256);
            let size = args.image_size.unwrap_or(native);
            let mut config = BigGanConfig::new(size, s[0], k);
            config.ch = args.ngf.unwrap_or(config.ch);
            config.attention = args.attention;
            (ModelConfig::BigGan(config), Some(size))
        }
        (ModelArg::Progan, Kind::Images(s)) => {
            let config = progan_config(args, s)?;
            let size = config.image_size;
            (ModelConfig::ProGan(config), Some(size))
        }
        (ModelArg::Pix2pix, Kind::Pairs(a, b)) => {
            let size = args
                .image_size
                .unwrap_or_else(|| a[1].max(a[2]).next_power_of_two().max(32));
            let config = Pix2PixConfig {
                in_channels: a[0],
                out_channels: b[0],
                ngf: args.ngf.unwrap_or(64),
                ndf: args.ndf.unwrap_or(64),
                ..Pix2PixConfig::new(size)
            };
            (ModelConfig::Pix2Pix(config), Some(size))
        }
        (ModelArg::Pix2pixhd, Kind::Pairs(a, b)) => {
            let size = args.image_size.unwrap_or(a[1].max(a[2]));
            let mut config = Pix2PixHdConfig {
                in_channels: a[0],
                out_channels: b[0],
                ..Pix2PixHdConfig::new(size)
            };
            config.ngf = args.ngf.unwrap_or(config.ngf);
            config.ndf = args.ndf.unwrap_or(config.ndf);
            config.global_steps = args.global_steps.unwrap_or(config.global_steps);
            config.num_d = args.num_d.unwrap_or(config.num_d);
            (ModelConfig::Pix2PixHd(config), Some(size))
        }
        (ModelArg::Caae, Kind::Images(s)) => {
            let Some(k) = classes else {
                bail!(
                    "--data {name} has no labels; caae needs faces labelled by age group (emoji-faces, emoji-faces128, or a folder with one sub-folder per age group, youngest first)"
                )
            };
            let size = args.image_size.unwrap_or(s[1].max(s[2]));
            let mut config = CaaeConfig::new(size, s[0], k);
            config.ngf = args.ngf.unwrap_or(config.ngf);
            config.ndf = args.ndf.unwrap_or(config.ndf);
            (ModelConfig::Caae(config), Some(size))
        }
        (ModelArg::Pix2pix | ModelArg::Pix2pixhd, _) => bail!(
            "{} needs paired data (edges2emoji, edges2emoji128, edges2digits, or a folder with train/ of A|B images); --data {name} is not paired",
            model_name(model)
        ),
        (_, Kind::Pairs(..)) => {
            bail!("--data {name} is paired data: train it with --model pix2pix or pix2pixhd")
        }
        (
            ModelArg::Dcgan
            | ModelArg::Cdcgan
            | ModelArg::WganGp
            | ModelArg::Biggan
            | ModelArg::Progan
            | ModelArg::Caae,
            Kind::Points(_),
        ) => {
            bail!(
                "--data {name} holds 2-D points; {} needs images (use --model mlp for points)",
                model_name(model)
            )
        }
    })
}

/// The name `--model` takes for `model`.
fn model_name(model: ModelArg) -> String {
    model
        .to_possible_value()
        .map_or_else(|| format!("{model:?}"), |v| v.get_name().to_string())
}

/// The optimizer of the generator (`g`) or the discriminator: the recipe's, with what the
/// flags change.
fn optim(args: &TrainArgs, recipe: &Recipe, g: bool) -> OptimConfig {
    let own = if g { args.lr_g } else { args.lr_d };
    match args.optimizer {
        OptimizerArg::Adam => {
            let OptimConfig::Adam { lr, beta1, beta2 } = recipe.adam(g) else {
                unreachable!("a recipe's optimizer is Adam")
            };
            OptimConfig::Adam {
                lr: own.or(args.lr).unwrap_or(lr),
                beta1: args.beta1.unwrap_or(beta1),
                beta2: args.beta2.unwrap_or(beta2),
            }
        }
        OptimizerArg::Sgd => OptimConfig::Sgd {
            lr: own.or(args.lr).unwrap_or(0.01),
            momentum: args.momentum,
        },
    }
}

/// Refuses learning rates, betas, weights and decays that make no sense, and unknown
/// augmentations, before anything is read or written.
pub(crate) fn check_knobs(args: &TrainArgs) -> Result<()> {
    for (flag, lr) in [
        ("--lr", args.lr),
        ("--lr-g", args.lr_g),
        ("--lr-d", args.lr_d),
    ] {
        if let Some(lr) = lr
            && !(lr > 0.0 && lr.is_finite())
        {
            bail!("{flag} {lr} must be a finite learning rate > 0");
        }
    }
    for (flag, beta) in [("--beta1", args.beta1), ("--beta2", args.beta2)] {
        if let Some(beta) = beta
            && !(0.0..1.0).contains(&beta)
        {
            bail!("{flag} {beta} must be in [0, 1)");
        }
    }
    for (flag, w) in [
        ("--gp", args.gp),
        ("--r1", args.r1),
        ("--drift", args.drift),
        ("--feature-matching", args.feature_matching),
    ] {
        if let Some(w) = w
            && !(w >= 0.0 && w.is_finite())
        {
            bail!("{flag} {w} must be a finite weight >= 0");
        }
    }
    if args.r1_every == Some(0) {
        bail!("--r1-every 0: R1 runs every N >= 1 steps");
    }
    if args.r1_every.is_some() && args.r1.is_none() {
        bail!("--r1-every needs --r1 (the penalty's weight)");
    }
    if let Some(d) = args.ema
        && !((0.0..1.0).contains(&d))
    {
        bail!("--ema {d} must be a decay in (0, 1), such as 0.999, or 0 for no average");
    }
    diffaug_policy(args)?;
    Ok(())
}

/// The `--diffaug` list.
fn diffaug_policy(args: &TrainArgs) -> Result<Vec<DiffAug>> {
    let Some(list) = &args.diffaug else {
        return Ok(Vec::new());
    };
    let mut policy = Vec::new();
    for name in list.split(',').map(str::trim) {
        let Some(a) = DiffAug::parse(name) else {
            bail!(
                "--diffaug: unknown augmentation {name:?}; choose from color, translation, cutout (comma-separated)"
            );
        };
        if !policy.contains(&a) {
            policy.push(a);
        }
    }
    Ok(policy)
}

/// The objective of a new run: the recipe's loss and terms after the model's own (pix2pix's
/// L1), each replaced (weight 0: removed) by its flag where one is given.
fn objective(args: &TrainArgs, model: &ModelConfig, recipe: &Recipe) -> ObjectiveConfig {
    let mut terms = model_terms(model);
    terms.extend(recipe.terms.iter().cloned());
    let flags = [
        ("loss_g_ms", args.mode_seeking, 1),
        ("gp", args.gp, 1),
        ("r1", args.r1, args.r1_every.unwrap_or(1)),
        ("drift", args.drift, 1),
        ("feature_matching", args.feature_matching, 1),
    ];
    for (name, weight, every) in flags {
        let Some(weight) = weight else { continue };
        terms.retain(|t| t.name != name);
        if weight > 0.0 {
            terms.push(TermSpec {
                every,
                ..TermSpec::new(name, weight)
            });
        }
    }
    ObjectiveConfig {
        loss: args.loss.clone().unwrap_or_else(|| recipe.loss.to_string()),
        real_label: args.real_label,
        terms,
    }
}

/// Fixed inputs for the sample grids: noise, validation pairs for pix2pix, or held-out faces
/// for caae.
pub(crate) fn fixed_inputs(
    trainer: &Trainer,
    data: &Data,
    settings: &RunSettings,
) -> Result<Vec<(String, Tensor)>> {
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed ^ 0x5eed_5a3e);
    let gan = trainer.gan.as_ref();
    if matches!(gan.config(), ModelConfig::Caae(_)) {
        // The held-out faces (8 at most), each to be shown at every age.
        let val = data::load(&settings.data, Split::Test, true)?;
        let augment = data::augment_for(&val.kind, settings.image_size, false);
        let count = val.set.len().min(8);
        let mut it = data::batches(&val, count, 0, augment, 0)?;
        return Ok(vec![("sample_faces".into(), data::next(&mut it)?.real)]);
    }
    if let Some(k) = gan.num_classes() {
        // One row per class (the first 20 at most) and the same noise down each column, so
        // that the grid shows what the label controls (the class) and what z does (style).
        let labels = sampling::class_rows(k);
        let cols = sampling::CLASS_COLUMNS;
        let z = gan.noise(cols, &mut rng).context("cdcgan makes noise")?;
        let rows = labels.len() / cols;
        let z = Tensor::concat(0, &vec![&z; rows]);
        return Ok(vec![(
            "sample_noise".into(),
            gan.latent_input(z, Some(&labels)),
        )]);
    }
    let n = if matches!(data.kind, Kind::Points(_)) {
        2500
    } else {
        64
    };
    if let Some(noise) = gan.noise(n, &mut rng) {
        return Ok(vec![("sample_noise".into(), noise)]);
    }
    let val = data::load(&settings.data, Split::Test, true)?;
    let augment = data::augment_for(&val.kind, settings.image_size, false);
    let count = val.set.len().min(8);
    let mut it = data::batches(&val, count, 0, augment, 0)?;
    let batch = data::next(&mut it)?;
    let a = batch.condition.context("validation pairs have inputs")?;
    Ok(vec![
        ("sample_a".into(), a),
        ("sample_b".into(), batch.real),
    ])
}

/// Runs `gantry train`.
pub fn run(args: TrainArgs) -> Result<()> {
    let started = Instant::now();
    // `_lock` keeps other processes out of the run directory until this one ends.
    let (run_dir, _lock, settings, mut trainer, fixed, skip) = match &args.resume {
        Some(dir) => crate::resume::resume(&args, dir)?,
        None => start(&args)?,
    };
    let data = data::load(&settings.data, Split::Train, args.quiet)?;
    let augment = data::train_augment(&data.kind, &settings);
    let batch_size = settings.batch_size;
    let mut batches = data::batches(&data, batch_size, settings.seed, augment, skip)?;
    let target = match (args.steps, args.epochs) {
        (Some(s), _) => s,
        (None, Some(e)) => {
            e.saturating_mul((data.set.len() / batch_size / trainer.config.k.max(1)).max(1) as u64)
        }
        (None, None) => Recipe::for_model(&trainer.gan.config()).steps,
    };
    if trainer.step >= target {
        bail!(
            "the run is already at step {} (target {target}); pass a larger --steps",
            trainer.step
        );
    }
    if trainer.step == 0 {
        let augment = data::augment_for(&data.kind, settings.image_size, false);
        sampling::write_real_samples(&run_dir, &data, augment, settings.seed)?;
    }
    let mut log = run_dir.metrics_log(trainer.step)?;
    let interrupt = Interrupt::install()?;
    let bar = progress::steps(trainer.step, target, args.quiet);
    let mut consumed = skip;
    let save = |trainer: &Trainer, consumed: u64| -> Result<()> {
        let extra = serde_json::json!({ "batches_consumed": consumed });
        checkpoint::save(&run_dir.checkpoint(), trainer, &fixed, &extra)?;
        Ok(())
    };
    while trainer.step < target {
        let mut next = || {
            consumed += 1;
            batches
                .next()
                .map(data::to_gan_batch)
                .expect("endless batches")
        };
        let stepped = trainer.train_step(&mut next);
        // The losses can be finite while the weights or Adam's moments are not.
        let stepped = stepped.and_then(|m| checkpoint::check_finite(&trainer).map(|()| m));
        let m = match stepped {
            Ok(m) => m,
            Err(e) => {
                bar.abandon();
                let kept = match checkpoint::load(&run_dir.checkpoint()) {
                    Ok((t, _)) => format!(
                        "{} holds the last good state (step {})",
                        run_dir.checkpoint().display(),
                        t.step
                    ),
                    Err(_) => "no checkpoint was written before it".to_string(),
                };
                return Err(e).context(format!("training stopped; {kept}"));
            }
        };
        bar.set_position(m.step);
        bar.set_message(progress_message(&m));
        let every = |n: u64| n > 0 && m.step.is_multiple_of(n);
        if every(args.log_every) || m.step == target {
            log.write(&m, started.elapsed().as_secs_f64())?;
        }
        if every(settings.sample_every) {
            trainer.with_sampling_weights(|t| {
                sampling::write_step_samples(&run_dir, t, &fixed, &data.kind, m.step)
            })?;
        }
        if every(settings.checkpoint_every) {
            save(&trainer, consumed)?;
        }
        if let Some(signal) = interrupt.received() {
            save(&trainer, consumed)?;
            bar.abandon();
            return Err(Interrupted {
                signal,
                message: format!(
                    "{} at step {}: the checkpoint {} holds it; continue with `gantry train --resume {}`",
                    interrupt::signal_name(signal),
                    trainer.step,
                    run_dir.checkpoint().display(),
                    run_dir.root.display()
                ),
            }
            .into());
        }
    }
    save(&trainer, consumed)?;
    let step = trainer.step;
    let last = trainer.with_sampling_weights(|t| {
        sampling::write_step_samples(&run_dir, t, &fixed, &data.kind, step)
    })?;
    bar.finish_and_clear();
    if !args.quiet {
        println!(
            "trained {} to step {} in {:.1}s\n  run:        {}\n  samples:    {}\n  checkpoint: {}",
            trainer.gan.config().kind(),
            trainer.step,
            started.elapsed().as_secs_f64(),
            run_dir.root.display(),
            last.display(),
            run_dir.checkpoint().display()
        );
    }
    Ok(())
}

/// The progress bar's line: both losses, and D's mean outputs where they are probabilities
/// (the critic's estimate for Wasserstein).
fn progress_message(m: &StepMetrics) -> String {
    let mut text = format!("D {:.3} G {:.3}", m.loss_d, m.loss_g);
    if let (Some(r), Some(f)) = (m.get("d_real"), m.get("d_fake")) {
        text += &format!(" D(x) {r:.2} D(G(z)) {f:.2}");
    } else if let Some(w) = m.get("w_estimate") {
        text += &format!(" W {w:.3}");
    }
    text
}

/// What training starts from: the locked run directory, its settings, the trainer, the fixed
/// sample inputs and the number of batches already consumed.
pub type Started = (
    RunDir,
    RunLock,
    RunSettings,
    Trainer,
    Vec<(String, Tensor)>,
    u64,
);

/// A new run: build the model for the data, write `config.json`. Every setting is checked
/// (the model built, the data loaded) before the run directory is created or locked.
fn start(args: &TrainArgs) -> Result<Started> {
    check_flags(args)?;
    check_knobs(args)?;
    let model_arg = args.model.unwrap_or(ModelArg::Dcgan);
    let data_name = args
        .data
        .clone()
        .unwrap_or_else(|| model_arg.recipe().data.to_string());
    let data = data::load(&data_name, Split::Train, args.quiet)?;
    let (model, image_size) = model_config(args, &data.kind, data.set.num_classes())?;
    // Before anything is built: a size from a flag may be absurd.
    checkpoint::check_sizes(&model)?;
    let seed = args.seed.unwrap_or(0);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let gan = model.build(&mut rng)?;
    let recipe = Recipe::for_model(&model);
    let batch_size = args.batch_size.unwrap_or(recipe.batch_size);
    if let Some(w) = args.mode_seeking {
        check_mode_seeking(w, model_arg)?;
    }
    let pack = model.pack();
    if !batch_size.is_multiple_of(pack) {
        bail!(
            "--batch-size {batch_size} is not a multiple of --pack {pack}: the discriminator judges {pack} samples at once"
        );
    }
    let train = TrainConfig {
        k: args.k.unwrap_or(recipe.k),
        objective: objective(args, &model, &recipe),
        optim_g: optim(args, &recipe, true),
        optim_d: optim(args, &recipe, false),
        seed,
        ema: match args.ema {
            Some(0.0) => None,
            Some(d) => Some(d),
            None => recipe.ema,
        },
        diffaug: diffaug_policy(args)?,
    };
    // Refuses an objective that does not fit the model before anything is written.
    let trainer = Trainer::new(gan, train.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let stem = format!(
        "{}-{}",
        model.kind(),
        std::path::Path::new(&data_name)
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("data")
    );
    let root = args.out.clone().unwrap_or_else(|| RunDir::fresh(&stem));
    let settings = RunSettings {
        model: model_arg,
        data: data_name,
        batch_size,
        image_size,
        seed,
        jitter: matches!(model_arg, ModelArg::Pix2pix | ModelArg::Caae),
        sample_every: args.sample_every.unwrap_or_else(default_sample_every),
        checkpoint_every: args
            .checkpoint_every
            .unwrap_or_else(default_checkpoint_every),
    };
    // Refuses a batch larger than the data now rather than after writing the run.
    data::batches(&data, batch_size, seed, None, 0)?;
    let fixed = fixed_inputs(&trainer, &data, &settings)?;
    let config = serde_json::json!({
        "gantry": env!("CARGO_PKG_VERSION"),
        "run": settings,
        "model": model,
        "train": train,
    });
    let (run_dir, lock) = RunDir::open(&root, true)?;
    run_dir.write_config(&config)?;
    Ok((run_dir, lock, settings, trainer, fixed, 0))
}
