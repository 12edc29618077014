//! `gantry train --resume DIR`: continue a run from its checkpoint and `config.json`.
//!
//! Every flag is applied or refused, never ignored: what the run's data order and weights
//! depend on (`--data`, `--batch-size`, `--seed`, `--k`, `--pack`, the model's sizes) must
//! match the run, and the objective (`--loss`, the penalties, `--ema`, `--diffaug`) is fixed
//! when the run starts; what only steers this process (`--lr`, `--lr-g`, `--lr-d`,
//! `--mode-seeking`, `--sample-every`, `--checkpoint-every`, `--steps`) is applied and
//! recorded. The run's files are checked
//! against each other (settings, model, stored tensors) before anything is trained, so an
//! edited or damaged run is a one-line error rather than a panic deep in a layer.

use crate::data::{self, Kind};
use crate::flags::{MAX_BATCH, check_flags, check_mode_seeking};
use crate::run::RunDir;
use crate::train::{ModelArg, RunSettings, Started, TrainArgs, check_knobs};
use anyhow::{Context, Result, bail};
use gantry_datasets::Split;
use gantry_gan::checkpoint;
use gantry_gan::models::ModelConfig;
use gantry_gan::objective::TermSpec;
use gantry_tensor::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::fmt::Debug;
use std::path::Path;

/// Continues the run in `dir`.
///
/// # Errors
/// If the run cannot be read, is locked by another process, its files disagree, or a flag
/// asks for a change the run cannot take.
pub fn resume(args: &TrainArgs, dir: &Path) -> Result<Started> {
    check_flags(args)?;
    check_knobs(args)?;
    // The objective is part of what the run is: fixed when it starts.
    for (flag, given) in [
        ("--loss", args.loss.is_some()),
        ("--gp", args.gp.is_some()),
        ("--r1", args.r1.is_some()),
        ("--r1-every", args.r1_every.is_some()),
        ("--drift", args.drift.is_some()),
        ("--feature-matching", args.feature_matching.is_some()),
        ("--ema", args.ema.is_some()),
        ("--diffaug", args.diffaug.is_some()),
    ] {
        if given {
            bail!(
                "{flag} is fixed when a run starts; the run in {} keeps its own (see its config.json)",
                dir.display()
            );
        }
    }
    if !dir.join("config.json").is_file() {
        bail!("--resume {}: no run there (no config.json)", dir.display());
    }
    // Before anything is read: another process may be writing the checkpoint.
    let (run_dir, lock) = RunDir::open(dir, false)?;
    let mut config = run_dir.read_config()?;
    let config_path = dir.join("config.json");
    let mut settings: RunSettings = serde_json::from_value(config["run"].clone())
        .with_context(|| format!("{} has no valid `run` settings", config_path.display()))?;
    let keep = |flag: &str, given: Option<&dyn Debug>, run: &dyn Debug| -> Result<()> {
        match given {
            Some(g) if format!("{g:?}") != format!("{run:?}") => bail!(
                "--{flag} {g:?} does not match the run in {}, which has {run:?}; a resumed run keeps its {flag} (start a new run to change it)",
                dir.display()
            ),
            _ => Ok(()),
        }
    };
    keep(
        "model",
        args.model.as_ref().map(|m| m as &dyn Debug),
        &settings.model,
    )?;
    keep(
        "data",
        args.data.as_ref().map(|d| d as &dyn Debug),
        &settings.data,
    )?;
    keep(
        "batch-size",
        args.batch_size.as_ref().map(|b| b as &dyn Debug),
        &settings.batch_size,
    )?;
    keep(
        "seed",
        args.seed.as_ref().map(|s| s as &dyn Debug),
        &settings.seed,
    )?;
    keep(
        "image-size",
        args.image_size.as_ref().map(|s| s as &dyn Debug),
        &settings.image_size.unwrap_or(0),
    )?;
    let path = run_dir.checkpoint();
    let (mut trainer, extras) =
        checkpoint::load(&path).with_context(|| format!("cannot resume from {}", dir.display()))?;
    let model = trainer.gan.config();
    let pack = trainer.gan.pack();
    if let Some(p) = args.pack.filter(|p| *p != pack) {
        bail!(
            "--pack {p} does not match the run in {}, whose discriminator packs {pack}",
            dir.display()
        );
    }
    keep(
        "k",
        args.k.as_ref().map(|k| k as &dyn Debug),
        &trainer.config.k,
    )?;
    for (flag, given) in [
        ("beta1", args.beta1.is_some()),
        ("beta2", args.beta2.is_some()),
        ("critic-norm", args.critic_norm.is_some()),
        ("g-batch-norm", args.g_batch_norm),
        ("g-layers", args.g_layers.is_some()),
        ("d-layers", args.d_layers.is_some()),
        ("d-maxout", args.d_maxout.is_some()),
    ] {
        if given {
            bail!(
                "--{flag}: a resumed run in {} keeps its own (see its config.json); start a new run to change it",
                dir.display()
            );
        }
    }
    // Settings that only one family has: the run's own value, if it is of that family.
    let (progan, hd) = match &model {
        ModelConfig::ProGan(c) => (Some(c), None),
        ModelConfig::Pix2PixHd(c) => (None, Some(c)),
        _ => (None, None),
    };
    for (flag, given, run, owner) in [
        (
            "fade-images",
            args.fade_images,
            progan.map(|c| c.fade_images),
            "ProGAN's (--model progan)",
        ),
        (
            "stable-images",
            args.stable_images,
            progan.map(|c| c.stable_images),
            "ProGAN's (--model progan)",
        ),
        (
            "global-steps",
            args.global_steps,
            hd.map(|c| c.global_steps),
            "pix2pixHD's (--model pix2pixhd)",
        ),
        (
            "num-d",
            args.num_d.map(|n| n as u64),
            hd.map(|c| c.num_d as u64),
            "pix2pixHD's (--model pix2pixhd)",
        ),
    ] {
        match (given, run) {
            (Some(_), None) => bail!("--{flag} is {owner}"),
            (Some(g), Some(r)) => keep(flag, Some(&g as &dyn Debug), &r)?,
            (None, _) => {}
        }
    }
    let (ngf, ndf) = widths(&model);
    keep("ngf", args.ngf.as_ref().map(|w| w as &dyn Debug), &ngf)?;
    keep("ndf", args.ndf.as_ref().map(|w| w as &dyn Debug), &ndf)?;
    if let Some(lr) = args.lr {
        trainer.set_lr(lr);
    }
    if let Some(lr) = args.lr_g {
        trainer.set_lr_g(lr);
    }
    if let Some(lr) = args.lr_d {
        trainer.set_lr_d(lr);
    }
    if let Some(w) = args.mode_seeking {
        check_mode_seeking(w, settings.model)?;
        let mut objective = trainer.config.objective.clone();
        objective.terms.retain(|t| t.name != "loss_g_ms");
        if w > 0.0 {
            objective.terms.push(TermSpec::new("loss_g_ms", w));
        }
        trainer
            .set_objective(objective)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    check_run(dir, &settings, &model)?;
    let data = data::load(&settings.data, Split::Train, true)?;
    check_data(dir, &settings, &data.kind, &model)?;
    let skip = extras.extra["batches_consumed"]
        .as_u64()
        .with_context(|| format!("{}: no data position in the checkpoint", path.display()))?;
    // Each step consumes k batches; more would have the data iterator skip for ever.
    let most = trainer.step.saturating_mul(trainer.config.k as u64);
    if skip > most {
        bail!(
            "{}: batches_consumed {skip} is more than {} steps of k = {} consume",
            path.display(),
            trainer.step,
            trainer.config.k
        );
    }
    let mut fixed: Vec<(String, Tensor)> = extras.fixed.into_iter().collect();
    fixed.sort_by(|a, b| a.0.cmp(&b.0));
    check_fixed(&path, &fixed, &trainer, &settings, &data)?;
    // The intervals steer only this process: applied, and recorded for the next resume.
    let intervals = (settings.sample_every, settings.checkpoint_every);
    settings.sample_every = args.sample_every.unwrap_or(settings.sample_every);
    settings.checkpoint_every = args.checkpoint_every.unwrap_or(settings.checkpoint_every);
    let steered = args.lr.is_some()
        || args.lr_g.is_some()
        || args.lr_d.is_some()
        || args.mode_seeking.is_some();
    if intervals != (settings.sample_every, settings.checkpoint_every) || steered {
        config["run"] = serde_json::to_value(&settings)?;
        config["train"] = serde_json::to_value(&trainer.config)?;
        run_dir.write_config(&config)?;
    }
    Ok((run_dir, lock, settings, trainer, fixed, skip))
}

/// The generator and discriminator widths of a model, to compare with `--ngf`/`--ndf` (the
/// MLP's first hidden widths).
fn widths(model: &ModelConfig) -> (usize, usize) {
    match model {
        ModelConfig::Dcgan(c) => (c.ngf, c.ndf),
        ModelConfig::Cdcgan(c) => (c.dcgan.ngf, c.dcgan.ndf),
        ModelConfig::Pix2Pix(c) => (c.ngf, c.ndf),
        ModelConfig::WganGp(c) => (c.dcgan.ngf, c.dcgan.ndf),
        ModelConfig::BigGan(c) => (c.ch, c.ch),
        ModelConfig::ProGan(c) => (c.fmap_max, c.fmap_max),
        ModelConfig::Pix2PixHd(c) => (c.ngf, c.ndf),
        ModelConfig::Caae(c) => (c.ngf, c.ndf),
        ModelConfig::Mlp(c) => (
            c.g_hidden.first().copied().unwrap_or(0),
            c.d_hidden.first().copied().unwrap_or(0),
        ),
    }
}

/// `config.json`'s settings against the checkpoint's model: the same family, a batch that
/// the discriminator can pack.
fn check_run(dir: &Path, settings: &RunSettings, model: &ModelConfig) -> Result<()> {
    let config = dir.join("config.json");
    let family = match model {
        ModelConfig::Mlp(_) => ModelArg::Mlp,
        ModelConfig::Dcgan(_) => ModelArg::Dcgan,
        ModelConfig::Pix2Pix(_) => ModelArg::Pix2pix,
        ModelConfig::Cdcgan(_) => ModelArg::Cdcgan,
        ModelConfig::WganGp(_) => ModelArg::WganGp,
        ModelConfig::BigGan(_) => ModelArg::Biggan,
        ModelConfig::ProGan(_) => ModelArg::Progan,
        ModelConfig::Pix2PixHd(_) => ModelArg::Pix2pixhd,
        ModelConfig::Caae(_) => ModelArg::Caae,
    };
    if settings.model != family {
        bail!(
            "{}: run.model is {:?} but the checkpoint holds a {} model",
            config.display(),
            settings.model,
            model.kind()
        );
    }
    let b = settings.batch_size;
    if let ModelConfig::ProGan(c) = model
        && c.batch_size != b
    {
        bail!(
            "{}: run.batch_size {b} differs from the batch size {} the checkpoint's growth schedule counts images in",
            config.display(),
            c.batch_size
        );
    }
    if !(1..=MAX_BATCH).contains(&b) || !b.is_multiple_of(model.pack()) {
        bail!(
            "{}: run.batch_size {b} must be in 1..={MAX_BATCH} and a multiple of the discriminator's packing {}",
            config.display(),
            model.pack()
        );
    }
    Ok(())
}

/// The shape of one real sample and of one condition as the model takes them.
fn model_shapes(model: &ModelConfig) -> (Vec<usize>, Option<Vec<usize>>) {
    (model.sample_shape(), model.condition_shape())
}

/// The same for the data, brought to `size` as training brings it.
fn data_shapes(kind: &Kind, size: Option<usize>) -> (Vec<usize>, Option<Vec<usize>>) {
    let sized = |s: &[usize]| match size {
        Some(n) => vec![s[0], n, n],
        None => s.to_vec(),
    };
    match kind {
        Kind::Images(s) => (sized(s), None),
        Kind::Pairs(a, b) => (sized(b), Some(sized(a))),
        Kind::Points(_) => (vec![2], None),
    }
}

/// The run's data, at the run's image size, against what the model takes (a swapped
/// `run.data` or an edited `run.image_size` would otherwise fail inside a layer).
fn check_data(dir: &Path, settings: &RunSettings, kind: &Kind, model: &ModelConfig) -> Result<()> {
    let want = model_shapes(model);
    let have = data_shapes(kind, settings.image_size);
    if want != have {
        bail!(
            "{}: run.data {} at run.image_size {:?} gives samples of shape {:?}, but the checkpoint's {} model takes {:?}",
            dir.join("config.json").display(),
            settings.data,
            settings.image_size,
            have.0,
            model.kind(),
            want.0
        );
    }
    Ok(())
}

/// The checkpoint's fixed sample inputs against the ones this run would make: the same names
/// and the same shape per sample.
fn check_fixed(
    path: &Path,
    fixed: &[(String, Tensor)],
    trainer: &gantry_gan::Trainer,
    settings: &RunSettings,
    data: &data::Data,
) -> Result<()> {
    let gan = trainer.gan.as_ref();
    let noise = gan.noise(1, &mut ChaCha8Rng::seed_from_u64(0));
    let expected: Vec<(String, Vec<usize>)> = match noise {
        None if matches!(gan.config(), ModelConfig::Caae(_)) => {
            vec![("sample_faces".into(), gan.config().sample_shape())]
        }
        Some(z) => {
            let labels = gan.num_classes().map(|_| vec![0]);
            let input = gan.latent_input(z, labels.as_deref());
            vec![("sample_noise".into(), input.shape()[1..].to_vec())]
        }
        None => {
            let (b, a) = data_shapes(&data.kind, settings.image_size);
            vec![
                ("sample_a".into(), a.unwrap_or_default()),
                ("sample_b".into(), b),
            ]
        }
    };
    let stored: Vec<(String, Vec<usize>)> = fixed
        .iter()
        .map(|(n, t)| (n.clone(), t.shape().get(1..).unwrap_or(&[]).to_vec()))
        .collect();
    let empty = fixed.iter().any(|(_, t)| t.shape().first() == Some(&0));
    if stored != expected || empty {
        bail!(
            "{}: the fixed sample inputs {:?} do not fit the model, which takes {:?} per sample",
            path.display(),
            stored,
            expected
        );
    }
    Ok(())
}
