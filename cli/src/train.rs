//! `gantry train`: build or resume a run, train with a progress bar, log, sample, checkpoint.

use crate::data::{self, Data, Kind};
use crate::progress;
use crate::run::RunDir;
use crate::sampling;
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use gantry_datasets::Split;
use gantry_gan::models::{
    CdcganConfig, DcganConfig, DcganVariant, MlpConfig, ModelConfig, Pix2PixConfig,
};
use gantry_gan::{GenLoss, OptimConfig, TrainConfig, Trainer, checkpoint};
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

/// The generator's objective.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LossArg {
    /// Maximise log D(G(z)) (strong early gradients).
    NonSaturating,
    /// Minimise log(1 - D(G(z))), the minimax game as written.
    Minimax,
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
    /// Data: mnist, fashion-mnist, emoji, cifar10, ring, grid, edges2emoji, edges2digits, or a
    /// path (IDX file, image folder, or pix2pix folder with train/ and val/) [default: mnist,
    /// ring for mlp, edges2emoji for pix2pix].
    #[arg(long)]
    pub data: Option<String>,
    /// Total generator steps to reach (a resumed run continues up to this) [default: 1000
    /// for dcgan, 4000 for mlp, 2000 for pix2pix].
    #[arg(long, conflicts_with = "epochs")]
    pub steps: Option<u64>,
    /// Train for this many passes over the data instead of --steps.
    #[arg(long)]
    pub epochs: Option<u64>,
    /// Examples per batch [default: 64; 4 for pix2pix].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Discriminator steps per generator step (Algorithm 1's k).
    #[arg(long, default_value_t = 1)]
    pub k: usize,
    /// Generator loss.
    #[arg(long, value_enum, default_value = "non-saturating")]
    pub loss: LossArg,
    /// Optimizer of both players.
    #[arg(long, value_enum, default_value = "adam")]
    pub optimizer: OptimizerArg,
    /// Learning rate [default: 2e-4 for Adam, 0.01 for SGD]; with --resume, changes the run's.
    #[arg(long)]
    pub lr: Option<f32>,
    /// Adam's beta1.
    #[arg(long, default_value_t = 0.5)]
    pub beta1: f32,
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
    /// Generator width (ngf) of dcgan and pix2pix.
    #[arg(long, default_value_t = 64)]
    pub ngf: usize,
    /// Discriminator width (ndf) of dcgan and pix2pix.
    #[arg(long, default_value_t = 64)]
    pub ndf: usize,
    /// PacGAN: the discriminator judges this many samples at once (all real or all fake,
    /// concatenated along channels or features); the batch size must be a multiple of it
    /// [default: 1, a standard discriminator; a resumed run keeps its own].
    #[arg(long)]
    pub pack: Option<usize>,
    /// Seed of the weights, the noise, the data order and augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Run directory [default: runs/MODEL-DATA-N, the first unused N].
    #[arg(long, conflicts_with = "resume")]
    pub out: Option<PathBuf>,
    /// Continue the run in this directory from its checkpoint.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Write a sample grid every N steps (0: only at the end).
    #[arg(long, default_value_t = 250)]
    pub sample_every: u64,
    /// Write the checkpoint every N steps (0: only at the end).
    #[arg(long, default_value_t = 500)]
    pub checkpoint_every: u64,
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
}

fn default_data(model: ModelArg) -> &'static str {
    match model {
        ModelArg::Dcgan => "mnist",
        ModelArg::Mlp => "ring",
        ModelArg::Pix2pix => "edges2emoji",
        ModelArg::Cdcgan => "mnist",
    }
}

/// The DCGAN for images of shape `s` (`[C, H, W]`): the tutorial network for 28x28 data, the
/// pytorch/examples one resized to `--image-size` (64 by default) otherwise.
fn dcgan_config(args: &TrainArgs, s: &[usize]) -> DcganConfig {
    let native28 = s[1] == 28 && s[2] == 28;
    let size = args.image_size.unwrap_or(if native28 { 28 } else { 64 });
    let variant = if size == 28 {
        DcganVariant::Dcgan28
    } else {
        DcganVariant::Dcgan64
    };
    DcganConfig {
        variant,
        image_size: size,
        channels: s[0],
        nz: 100,
        ngf: args.ngf,
        ndf: args.ndf,
        pack: 1,
    }
}

/// The model configuration for `model` on data of `kind` with `classes` labels (if the data
/// is labelled), and the image size the data is brought to.
pub fn model_config(
    args: &TrainArgs,
    kind: &Kind,
    classes: Option<usize>,
) -> Result<(ModelConfig, Option<usize>)> {
    let (config, size) = unpacked_config(args, kind, classes)?;
    Ok((config.with_pack(args.pack.unwrap_or(1)), size))
}

fn unpacked_config(
    args: &TrainArgs,
    kind: &Kind,
    classes: Option<usize>,
) -> Result<(ModelConfig, Option<usize>)> {
    let model = args.model.unwrap_or(ModelArg::Dcgan);
    let name = args.data.as_deref().unwrap_or(default_data(model));
    Ok(match (model, kind) {
        (ModelArg::Mlp, Kind::Points(_)) => (ModelConfig::Mlp(MlpConfig::points()), None),
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
            let config = dcgan_config(args, s);
            let size = config.image_size;
            (ModelConfig::Dcgan(config), Some(size))
        }
        (ModelArg::Cdcgan, Kind::Images(s)) => {
            let Some(k) = classes else {
                bail!(
                    "--data {name} has no class labels; cdcgan needs labelled images (mnist, fashion-mnist, cifar10, or a folder with one sub-folder per class)"
                )
            };
            let config = dcgan_config(args, s);
            let size = config.image_size;
            (
                ModelConfig::Cdcgan(CdcganConfig::new(config, k)),
                Some(size),
            )
        }
        (ModelArg::Pix2pix, Kind::Pairs(a, b)) => {
            let size = args
                .image_size
                .unwrap_or_else(|| a[1].max(a[2]).next_power_of_two().max(32));
            let config = Pix2PixConfig {
                in_channels: a[0],
                out_channels: b[0],
                ngf: args.ngf,
                ndf: args.ndf,
                ..Pix2PixConfig::new(size)
            };
            (ModelConfig::Pix2Pix(config), Some(size))
        }
        (ModelArg::Pix2pix, _) => bail!(
            "pix2pix needs paired data (edges2emoji, edges2digits, or a folder with train/ of A|B images); --data {name} is not paired"
        ),
        (_, Kind::Pairs(..)) => {
            bail!("--data {name} is paired data: train it with --model pix2pix")
        }
        (ModelArg::Dcgan | ModelArg::Cdcgan, Kind::Points(_)) => {
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

fn optim(args: &TrainArgs) -> OptimConfig {
    match args.optimizer {
        OptimizerArg::Adam => OptimConfig::Adam {
            lr: args.lr.unwrap_or(2e-4),
            beta1: args.beta1,
            beta2: 0.999,
        },
        OptimizerArg::Sgd => OptimConfig::Sgd {
            lr: args.lr.unwrap_or(0.01),
            momentum: args.momentum,
        },
    }
}

/// Fixed inputs for the sample grids: noise, or validation pairs for pix2pix.
pub(crate) fn fixed_inputs(
    trainer: &Trainer,
    data: &Data,
    settings: &RunSettings,
) -> Result<Vec<(String, Tensor)>> {
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed ^ 0x5eed_5a3e);
    let gan = trainer.gan.as_ref();
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
    let (run_dir, settings, mut trainer, fixed, skip) = match &args.resume {
        Some(dir) => resume(&args, dir)?,
        None => start(&args)?,
    };
    let data = data::load(&settings.data, Split::Train, args.quiet)?;
    let augment = data::augment_for(&data.kind, settings.image_size, settings.jitter);
    let batch_size = settings.batch_size;
    let mut batches = data::batches(&data, batch_size, settings.seed, augment, skip)?;
    let target = match (args.steps, args.epochs) {
        (Some(s), _) => s,
        (None, Some(e)) => e * (data.set.len() / batch_size / args.k.max(1)).max(1) as u64,
        (None, None) => match settings.model {
            ModelArg::Dcgan | ModelArg::Cdcgan => 1000,
            ModelArg::Mlp => 4000,
            ModelArg::Pix2pix => 2000,
        },
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
        let m = match trainer.train_step(&mut next) {
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
        bar.set_message(format!(
            "D {:.3} G {:.3} D(x) {:.2} D(G(z)) {:.2}",
            m.loss_d, m.loss_g, m.d_real, m.d_fake
        ));
        let every = |n: u64| n > 0 && m.step.is_multiple_of(n);
        if every(args.log_every) || m.step == target {
            log.write(&m, started.elapsed().as_secs_f64())?;
        }
        if every(args.sample_every) {
            sampling::write_step_samples(&run_dir, &trainer, &fixed, &data.kind, m.step)?;
        }
        if every(args.checkpoint_every) {
            save(&trainer, consumed)?;
        }
    }
    save(&trainer, consumed)?;
    let last = sampling::write_step_samples(&run_dir, &trainer, &fixed, &data.kind, trainer.step)?;
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

type Started = (RunDir, RunSettings, Trainer, Vec<(String, Tensor)>, u64);

/// A new run: build the model for the data, write `config.json`.
fn start(args: &TrainArgs) -> Result<Started> {
    let model_arg = args.model.unwrap_or(ModelArg::Dcgan);
    let data_name = args
        .data
        .clone()
        .unwrap_or_else(|| default_data(model_arg).to_string());
    let probe = data::load(&data_name, Split::Train, args.quiet)?;
    let (model, image_size) = model_config(args, &probe.kind, probe.set.num_classes())?;
    drop(probe);
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let gan = model.build(&mut rng)?;
    let batch_size = args
        .batch_size
        .unwrap_or(if model_arg == ModelArg::Pix2pix {
            4
        } else {
            64
        });
    let mode_seeking = args
        .mode_seeking
        .unwrap_or(if model_arg == ModelArg::Cdcgan {
            1.0
        } else {
            0.0
        });
    check_mode_seeking(mode_seeking, model_arg)?;
    let pack = model.pack();
    if !batch_size.is_multiple_of(pack) {
        bail!(
            "--batch-size {batch_size} is not a multiple of --pack {pack}: the discriminator judges {pack} samples at once"
        );
    }
    let train = TrainConfig {
        k: args.k.max(1),
        gen_loss: match args.loss {
            LossArg::NonSaturating => GenLoss::NonSaturating,
            LossArg::Minimax => GenLoss::Minimax,
        },
        real_label: args.real_label,
        optim_g: optim(args),
        optim_d: optim(args),
        seed: args.seed,
        mode_seeking,
    };
    let trainer = Trainer::new(gan, train.clone());
    let stem = format!(
        "{}-{}",
        model.kind(),
        std::path::Path::new(&data_name)
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("data")
    );
    let root = args.out.clone().unwrap_or_else(|| RunDir::fresh(&stem));
    if root.join(crate::run::CHECKPOINT).exists() {
        bail!(
            "{} already holds a run; pass --resume {} to continue it, or another --out",
            root.display(),
            root.display()
        );
    }
    let run_dir = RunDir::create(&root)?;
    let settings = RunSettings {
        model: model_arg,
        data: data_name,
        batch_size,
        image_size,
        seed: args.seed,
        jitter: model_arg == ModelArg::Pix2pix,
    };
    let data = data::load(&settings.data, Split::Train, true)?;
    let fixed = fixed_inputs(&trainer, &data, &settings)?;
    run_dir.write_config(&serde_json::json!({
        "gantry": env!("CARGO_PKG_VERSION"),
        "run": settings,
        "model": model,
        "train": train,
    }))?;
    Ok((run_dir, settings, trainer, fixed, 0))
}

/// Refuses a mode-seeking weight that is negative or not finite, or any for pix2pix.
fn check_mode_seeking(weight: f32, model: ModelArg) -> Result<()> {
    if !(weight >= 0.0 && weight.is_finite()) {
        bail!("--mode-seeking {weight} must be a finite weight >= 0");
    }
    if weight > 0.0 && model == ModelArg::Pix2pix {
        bail!(
            "--mode-seeking: pix2pix draws no noise, so there are no two samples of one input to compare"
        );
    }
    Ok(())
}

/// Continue a run from its checkpoint and `config.json`.
fn resume(args: &TrainArgs, dir: &std::path::Path) -> Result<Started> {
    let run_dir = RunDir::create(dir)?;
    let config = run_dir.read_config()?;
    let settings: RunSettings = serde_json::from_value(config["run"].clone())
        .with_context(|| format!("{}/config.json has no valid `run` settings", dir.display()))?;
    if let Some(model) = args.model.filter(|m| *m != settings.model) {
        bail!(
            "--model {model:?} does not match the run in {}, which trains {:?}",
            dir.display(),
            settings.model
        );
    }
    let path = run_dir.checkpoint();
    let (mut trainer, extras) =
        checkpoint::load(&path).with_context(|| format!("cannot resume from {}", dir.display()))?;
    let pack = trainer.gan.pack();
    if let Some(p) = args.pack.filter(|p| *p != pack) {
        bail!(
            "--pack {p} does not match the run in {}, whose discriminator packs {pack}",
            dir.display()
        );
    }
    if let Some(lr) = args.lr {
        trainer.set_lr(lr);
    }
    if let Some(w) = args.mode_seeking {
        check_mode_seeking(w, settings.model)?;
        trainer.config.mode_seeking = w;
    }
    let skip = extras.extra["batches_consumed"]
        .as_u64()
        .with_context(|| format!("{}: no data position in the checkpoint", path.display()))?;
    let mut fixed: Vec<(String, Tensor)> = extras.fixed.into_iter().collect();
    fixed.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((run_dir, settings, trainer, fixed, skip))
}
