//! The trainer and checkpoints: resuming is exact, bad losses stop training, models validate.

use gantry_gan::diffaug::DiffAug;
use gantry_gan::models::{
    Batch, BigGanConfig, CaaeConfig, CdcganConfig, CriticNorm, DcganConfig, DcganVariant,
    MlpConfig, MlpOutput, ModelConfig, Pix2PixConfig, Pix2PixHdConfig, ProGanConfig, WganGpConfig,
};
use gantry_gan::objective::{ObjectiveConfig, TermSpec};
use gantry_gan::{GanError, OptimConfig, TrainConfig, Trainer, checkpoint};
use gantry_nn::state_dict::state_dict;
use gantry_tensor::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A scratch directory for test `name`, removed when dropped.
fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("gantry-gan-{name}-"))
        .tempdir()
        .unwrap()
}

/// A tiny DCGAN at 16x16 with batch norm.
fn tiny_dcgan() -> DcganConfig {
    DcganConfig {
        variant: DcganVariant::Dcgan64,
        image_size: 16,
        channels: 1,
        nz: 8,
        ngf: 4,
        ndf: 4,
        pack: 1,
        d_dropout: None,
    }
}

/// A tiny label-conditional DCGAN on 3 classes.
fn tiny_cdcgan() -> CdcganConfig {
    CdcganConfig {
        embed_dim: 5,
        ..CdcganConfig::new(tiny_dcgan(), 3)
    }
}

/// A tiny DCGAN, a tiny pix2pix at 32x32 with dropout, a tiny conditional DCGAN, a tiny
/// WGAN-GP, a tiny BigGAN with self-attention and a tiny ProGAN growing from 4x4 to 8x8
/// (one step at 4x4, then a fade over two: the resume tests checkpoint it mid-fade), a tiny
/// pix2pixHD and a tiny CAAE.
fn models() -> Vec<ModelConfig> {
    vec![
        ModelConfig::Dcgan(tiny_dcgan()),
        ModelConfig::Pix2Pix(Pix2PixConfig {
            ngf: 4,
            ndf: 4,
            ..Pix2PixConfig::new(32)
        }),
        ModelConfig::Cdcgan(tiny_cdcgan()),
        ModelConfig::WganGp(WganGpConfig {
            dcgan: tiny_dcgan(),
            critic_norm: CriticNorm::Instance,
        }),
        ModelConfig::BigGan(BigGanConfig {
            ch: 8,
            z_chunk: 3,
            shared_dim: 4,
            attention: Some(8),
            ..BigGanConfig::new(16, 3, 3)
        }),
        ModelConfig::ProGan(ProGanConfig {
            fade_images: 8,
            stable_images: 4,
            ..ProGanConfig::new(8, 3, 4, 4)
        }),
        // The enhancer joins at step 3: after a resume from step 2.
        ModelConfig::Pix2PixHd(Pix2PixHdConfig {
            ngf: 2,
            n_downsample_global: 2,
            n_blocks_global: 1,
            n_blocks_local: 1,
            ndf: 4,
            global_steps: 3,
            ..Pix2PixHdConfig::new(32)
        }),
        // Four networks, the code adversary among the objective's terms.
        ModelConfig::Caae(CaaeConfig {
            ngf: 4,
            ndf: 2,
            z_dim: 6,
            ..CaaeConfig::new(16, 3, 4)
        }),
    ]
}

/// Every model kind that packs (BigGAN's projection discriminator, ProGAN's and pix2pixHD's
/// do not) with a discriminator packing two samples.
fn packed_models() -> Vec<ModelConfig> {
    let mut all = vec![ModelConfig::Mlp(MlpConfig::points())];
    all.extend(models());
    all.into_iter()
        .filter(|m| m.clone().with_pack(2).pack() == 2)
        .map(|m| m.with_pack(2))
        .collect()
}

/// Deterministic batches: batch `i` depends only on `i`.
fn batch_for(model: &ModelConfig, i: u64) -> Batch {
    let mut rng = ChaCha8Rng::seed_from_u64(1000 + i);
    match model {
        ModelConfig::Pix2Pix(Pix2PixConfig { image_size, .. })
        | ModelConfig::Pix2PixHd(Pix2PixHdConfig { image_size, .. }) => {
            let s = [2, 3, *image_size, *image_size];
            Batch {
                condition: Some(Tensor::rand_uniform(&s, -1.0, 1.0, &mut rng)),
                ..Batch::new(Tensor::rand_uniform(&s, -1.0, 1.0, &mut rng))
            }
        }
        ModelConfig::Dcgan(c) | ModelConfig::WganGp(WganGpConfig { dcgan: c, .. }) => {
            squares([c.channels, c.image_size], &mut rng)
        }
        ModelConfig::Mlp(c) => {
            Batch::new(Tensor::randn(&[8, c.sample_shape[0]], 0.0, 1.0, &mut rng))
        }
        ModelConfig::Cdcgan(c) => labelled(
            i,
            c.num_classes,
            [c.dcgan.channels, c.dcgan.image_size],
            &mut rng,
        ),
        ModelConfig::BigGan(c) => labelled(i, c.classes, [c.channels, c.image_size], &mut rng),
        ModelConfig::Caae(c) => labelled(i, c.ages, [c.channels, c.image_size], &mut rng),
        ModelConfig::ProGan(c) => squares([c.channels, c.image_size], &mut rng),
    }
}

/// A batch of 4 images `[channels, side, side]`, uniform in [-1, 1].
fn squares([channels, side]: [usize; 2], rng: &mut ChaCha8Rng) -> Batch {
    Batch::new(Tensor::rand_uniform(
        &[4, channels, side, side],
        -1.0,
        1.0,
        rng,
    ))
}

/// [`squares`] with labels cycling over `classes`.
fn labelled(i: u64, classes: usize, shape: [usize; 2], rng: &mut ChaCha8Rng) -> Batch {
    Batch {
        labels: Some((0..4).map(|j| (i as usize + j) % classes).collect()),
        ..squares(shape, rng)
    }
}

fn run(trainer: &mut Trainer, model: &ModelConfig, steps: u64, consumed: &mut u64) {
    for _ in 0..steps {
        let mut next = || {
            *consumed += 1;
            batch_for(model, *consumed)
        };
        trainer.train_step(&mut next).unwrap();
    }
}

fn everything(trainer: &Trainer) -> Vec<(String, Vec<f32>)> {
    let (g, d) = (trainer.gan.generator(), trainer.gan.discriminator());
    let mut all: Vec<(String, Vec<f32>)> = Vec::new();
    if let Some(ema) = &trainer.ema {
        all.extend(
            ema.tensors()
                .iter()
                .map(|(k, t)| (format!("ema.{k}"), t.to_vec())),
        );
    }
    for (prefix, items) in [
        ("G", state_dict(g)),
        ("D", state_dict(d)),
        ("opt_g", trainer.opt_g.state(g)),
        ("opt_d", trainer.opt_d.state(d)),
    ] {
        all.extend(
            items
                .into_iter()
                .map(|(k, t)| (format!("{prefix}.{k}"), t.to_vec())),
        );
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

#[test]
fn save_resume_continue_equals_training_straight() {
    let scratch = temp_dir("resume");
    let dir = scratch.path();
    for model in models().into_iter().chain(packed_models()) {
        // With the model's own terms (pix2pix's L1, CAAE's code adversary, ...).
        let config = TrainConfig {
            seed: 3,
            objective: ObjectiveConfig::default_for(&model),
            ..Default::default()
        };
        let build = || {
            Trainer::new(
                model.build(&mut ChaCha8Rng::seed_from_u64(9)).unwrap(),
                config.clone(),
            )
            .unwrap()
        };

        let mut straight = build();
        let mut consumed = 0;
        run(&mut straight, &model, 4, &mut consumed);

        let mut first = build();
        let mut consumed_b = 0;
        run(&mut first, &model, 2, &mut consumed_b);
        let path = dir.join(format!("{}-{}.safetensors", model.kind(), model.pack()));
        let extra = serde_json::json!({ "batches_consumed": consumed_b });
        checkpoint::save(&path, &first, &[], &extra).unwrap();
        drop(first);
        let (mut resumed, extras) = checkpoint::load(&path).unwrap();
        assert_eq!(resumed.step, 2);
        let mut consumed_b = extras.extra["batches_consumed"].as_u64().unwrap();
        run(&mut resumed, &model, 2, &mut consumed_b);

        let (a, b) = (everything(&straight), everything(&resumed));
        assert_eq!(a.len(), b.len());
        for ((ka, va), (kb, vb)) in a.iter().zip(&b) {
            assert_eq!(ka, kb);
            assert!(
                va == vb,
                "{} pack {}: {ka} differs after resuming",
                model.kind(),
                model.pack()
            );
        }
    }
}

#[test]
fn a_non_finite_loss_stops_before_any_update() {
    let model = ModelConfig::Mlp(MlpConfig::points());
    let gan = model.build(&mut ChaCha8Rng::seed_from_u64(0)).unwrap();
    let mut trainer = Trainer::new(gan, TrainConfig::default()).unwrap();
    let mut consumed = 0;
    run(&mut trainer, &model, 2, &mut consumed);
    let before = everything(&trainer);
    let mut poisoned = || Batch::new(Tensor::full(&[8, 2], f32::NAN));
    match trainer.train_step(&mut poisoned) {
        Err(GanError::NonFinite { step, what, .. }) => {
            assert_eq!(step, 3);
            assert_eq!(what, "loss_d");
        }
        other => panic!(
            "expected a non-finite error, got {:?}",
            other.map(|m| m.step)
        ),
    }
    assert_eq!(trainer.step, 2);
    assert!(
        before == everything(&trainer),
        "a failed step changed the model"
    );
}

#[test]
fn k_discriminator_steps_consume_k_batches_and_minimax_is_negative() {
    let model = ModelConfig::Mlp(MlpConfig::points());
    let gan = model.build(&mut ChaCha8Rng::seed_from_u64(0)).unwrap();
    let config = TrainConfig {
        k: 3,
        objective: ObjectiveConfig {
            loss: "minimax".into(),
            ..Default::default()
        },
        optim_g: OptimConfig::Sgd {
            lr: 0.01,
            momentum: 0.9,
        },
        optim_d: OptimConfig::Sgd {
            lr: 0.01,
            momentum: 0.9,
        },
        ..Default::default()
    };
    let mut trainer = Trainer::new(gan, config).unwrap();
    let mut consumed = 0;
    run(&mut trainer, &model, 2, &mut consumed);
    assert_eq!(consumed, 6);
    let mut next = || batch_for(&model, 99);
    let m = trainer.train_step(&mut next).unwrap();
    // log(1 - D(G(z))) < 0, and it is what the minimax generator reports.
    assert!(m.loss_g < 0.0, "minimax loss {}", m.loss_g);
    let d_fake_g = m.get("d_fake_g").unwrap();
    assert!((m.loss_g - (1.0 - d_fake_g).ln()).abs() < 0.05, "{m:?}");
}

#[test]
fn pix2pix_reports_its_loss_parts() {
    let model = models().swap_remove(1);
    let mut trainer = Trainer::new(
        model.build(&mut ChaCha8Rng::seed_from_u64(1)).unwrap(),
        TrainConfig {
            objective: ObjectiveConfig::default_for(&model),
            ..Default::default()
        },
    )
    .unwrap();
    let mut next = || batch_for(&model, 0);
    let m = trainer.train_step(&mut next).unwrap();
    let (gan, l1) = (m.get("loss_g_gan").unwrap(), m.get("loss_g_l1").unwrap());
    assert!((gan + l1 - m.loss_g).abs() < 1e-4);
    // 100 * mean |G(A) - B| with B uniform in [-1, 1] and G(A) near 0 at the start.
    assert!(l1 > 20.0 && l1 < 80.0, "weighted L1 {l1}");
}

#[test]
fn generators_make_the_configured_shapes() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let tape = gantry_autodiff::Tape::new();
    for (config, input, want) in [
        (
            ModelConfig::Dcgan(DcganConfig {
                ngf: 4,
                ndf: 4,
                ..DcganConfig::dcgan64(3)
            }),
            vec![2, 100, 1, 1],
            vec![2, 3, 64, 64],
        ),
        (
            ModelConfig::Dcgan(DcganConfig {
                image_size: 32,
                ngf: 4,
                ndf: 4,
                ..DcganConfig::dcgan64(1)
            }),
            vec![2, 100, 1, 1],
            vec![2, 1, 32, 32],
        ),
        (
            ModelConfig::Dcgan(DcganConfig::dcgan28()),
            vec![2, 100],
            vec![2, 1, 28, 28],
        ),
        (
            ModelConfig::Mlp(MlpConfig::digits()),
            vec![2, 100],
            vec![2, 1, 28, 28],
        ),
        (
            ModelConfig::Pix2Pix(Pix2PixConfig {
                ngf: 4,
                ndf: 4,
                ..Pix2PixConfig::new(64)
            }),
            vec![2, 3, 64, 64],
            vec![2, 3, 64, 64],
        ),
    ] {
        let gan = config.build(&mut rng).unwrap();
        let x = tape.constant(Tensor::zeros(&input));
        let y = gan.generator().forward(x, gantry_nn::Mode::Eval);
        assert_eq!(y.shape(), want, "{config:?}");
        let d_in = match &config {
            ModelConfig::Pix2Pix(_) => tape.constant(Tensor::zeros(&[2, 6, 64, 64])),
            _ => y,
        };
        let logits = gan.discriminator().forward(d_in, gantry_nn::Mode::Eval);
        assert_eq!(logits.shape()[0], 2);
    }
}

#[test]
fn invalid_sizes_are_clear_errors() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut err = |c: ModelConfig| match c.build(&mut rng) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("{c:?} should be rejected"),
    };
    let dcgan = err(ModelConfig::Dcgan(DcganConfig {
        image_size: 48,
        ..DcganConfig::dcgan64(3)
    }));
    assert!(
        dcgan.contains("image size 48 is not a power of two"),
        "{dcgan}"
    );
    let dcgan28 = err(ModelConfig::Dcgan(DcganConfig {
        image_size: 32,
        ..DcganConfig::dcgan28()
    }));
    assert!(dcgan28.contains("needs 28x28"), "{dcgan28}");
    let p2p = err(ModelConfig::Pix2Pix(Pix2PixConfig::new(100)));
    assert!(p2p.contains("image size 100"), "{p2p}");
    let mlp = err(ModelConfig::Mlp(MlpConfig {
        d_dropout: 1.5,
        ..MlpConfig::points()
    }));
    assert!(mlp.contains("dropout"), "{mlp}");
}

#[test]
fn checkpoints_name_what_is_wrong() {
    let scratch = temp_dir("bad");
    let dir = scratch.path();
    let missing = dir.join("nope.safetensors");
    let e = checkpoint::load(&missing).err().unwrap().to_string();
    assert!(e.contains("nope.safetensors"), "{e}");
    let junk = dir.join("junk.safetensors");
    std::fs::write(&junk, b"not a checkpoint at all").unwrap();
    let e = checkpoint::load(&junk).err().unwrap().to_string();
    assert!(e.contains("junk.safetensors"), "{e}");
    // A plain state dict is a valid safetensors file but not a checkpoint.
    let plain = dir.join("plain.safetensors");
    let gan = ModelConfig::Mlp(MlpConfig::points())
        .build(&mut ChaCha8Rng::seed_from_u64(0))
        .unwrap();
    gantry_nn::state_dict::save(gan.generator(), &plain).unwrap();
    let e = checkpoint::load(&plain).err().unwrap().to_string();
    assert!(e.contains("not a gantry checkpoint"), "{e}");
    // Truncated: the first half of a real checkpoint.
    let trainer = Trainer::new(gan, TrainConfig::default()).unwrap();
    let good = dir.join("good.safetensors");
    checkpoint::save(&good, &trainer, &[], &serde_json::json!({})).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = checkpoint::load(&cut).err().unwrap().to_string();
    assert!(e.contains("cut.safetensors"), "{e}");
    assert!(checkpoint::load(&good).is_ok());
}

#[test]
fn packed_models_train_with_finite_losses_and_packed_discriminators() {
    for model in packed_models() {
        let what = format!("{} pack 2", model.kind());
        let gan = model.build(&mut ChaCha8Rng::seed_from_u64(2)).unwrap();
        assert_eq!(gan.pack(), 2, "{what}");
        // The first layer of D takes twice the per-sample width: two samples side by side.
        let (name, first) = gantry_nn::named_params(gan.discriminator())
            .into_iter()
            .map(|(n, p)| (n, p.shape()))
            .next()
            .unwrap();
        let per_sample = match &model {
            ModelConfig::Mlp(c) => c.sample_shape.iter().product(),
            ModelConfig::Dcgan(c) => c.channels,
            ModelConfig::WganGp(c) => c.dcgan.channels,
            ModelConfig::Pix2Pix(c) => c.in_channels + c.out_channels,
            ModelConfig::Cdcgan(c) => c.dcgan.channels + c.num_classes,
            ModelConfig::BigGan(_)
            | ModelConfig::ProGan(_)
            | ModelConfig::Pix2PixHd(_)
            | ModelConfig::Caae(_) => {
                unreachable!("biggan, progan, pix2pixhd and caae do not pack")
            }
        };
        assert_eq!(first[1], 2 * per_sample, "{what}: {name} {first:?}");

        // D judges N/2 packs: one logit (or one patch map) per pair of samples.
        let batch = batch_for(&model, 1);
        let n = batch.len();
        let tape = gantry_autodiff::Tape::new();
        let x = gan.discriminator_input(tape.constant(batch.real.clone()), &batch);
        let logits = gan.discriminator().forward(x, gantry_nn::Mode::Eval);
        assert_eq!(logits.shape()[0], n / 2, "{what}");

        let mut trainer = Trainer::new(gan, TrainConfig::default()).unwrap();
        let mut consumed = 0;
        for _ in 0..2 {
            let mut next = || {
                consumed += 1;
                batch_for(&model, consumed)
            };
            let m = trainer.train_step(&mut next).unwrap();
            for key in ["loss_d", "loss_g", "d_real", "d_fake", "d_fake_g"] {
                let v = m.get(key).unwrap();
                assert!(v.is_finite(), "{what}: {m:?}");
            }
        }
    }
}

#[test]
fn a_batch_that_does_not_fit_is_an_error_before_any_update() {
    let model = ModelConfig::Mlp(MlpConfig::points()).with_pack(3);
    let gan = model.build(&mut ChaCha8Rng::seed_from_u64(0)).unwrap();
    let mut trainer = Trainer::new(gan, TrainConfig::default()).unwrap();
    let before = everything(&trainer);
    let mut eight = || batch_for(&model, 0);
    let e = trainer.train_step(&mut eight).err().unwrap().to_string();
    assert!(
        e.contains("step 1") && e.contains("8 samples cannot be packed by 3"),
        "{e}"
    );
    assert_eq!(trainer.step, 0);
    assert!(before == everything(&trainer));

    let model = ModelConfig::Cdcgan(tiny_cdcgan());
    let gan = model.build(&mut ChaCha8Rng::seed_from_u64(0)).unwrap();
    let mut trainer = Trainer::new(gan, TrainConfig::default()).unwrap();
    let mut unlabelled = || Batch {
        labels: None,
        ..batch_for(&model, 0)
    };
    let e = trainer
        .train_step(&mut unlabelled)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("cdcgan is label-conditional"), "{e}");
    let mut out_of_range = || Batch {
        labels: Some(vec![0, 1, 2, 3]),
        ..batch_for(&model, 0)
    };
    let e = trainer
        .train_step(&mut out_of_range)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("label 3 is out of range for 3 classes"), "{e}");
    assert_eq!(trainer.step, 0);
}

#[test]
fn configurations_round_trip_and_old_ones_load_unpacked() {
    for model in models().into_iter().chain(packed_models()) {
        let text = serde_json::to_string(&model).unwrap();
        let back: ModelConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(back, model);
    }
    // A configuration written before packing existed has no `pack`: it means 1.
    let old = r#"{"model":"dcgan","variant":"dcgan28","image_size":28,"channels":1,"nz":100,"ngf":64,"ndf":64}"#;
    let c: ModelConfig = serde_json::from_str(old).unwrap();
    assert_eq!(c, ModelConfig::Dcgan(DcganConfig::dcgan28()));
    assert_eq!(c.pack(), 1);
    let cd = serde_json::to_value(ModelConfig::Cdcgan(CdcganConfig::mnist())).unwrap();
    assert_eq!(cd["model"], "cdcgan");
    assert_eq!(cd["num_classes"], 10);
    assert_eq!(cd["dcgan"]["variant"], "dcgan28");
    let e = ModelConfig::Mlp(MlpConfig::points())
        .with_pack(0)
        .build(&mut ChaCha8Rng::seed_from_u64(0))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("pack must be at least 1"), "{e}");
}

#[test]
fn cdcgan_generates_each_class_at_both_sizes() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let tape = gantry_autodiff::Tape::new();
    for (config, want) in [
        (CdcganConfig::mnist(), vec![3, 1, 28, 28]),
        (tiny_cdcgan(), vec![3, 1, 16, 16]),
    ] {
        let gan = ModelConfig::Cdcgan(config).build(&mut rng).unwrap();
        assert_eq!(gan.num_classes(), Some(if want[2] == 28 { 10 } else { 3 }));
        let z = gan.noise(3, &mut rng).unwrap();
        let input = gan.latent_input(z, Some(&[0, 1, 2]));
        let y = gan
            .generator()
            .forward(tape.constant(input), gantry_nn::Mode::Eval);
        assert_eq!(y.shape(), want);
    }
}

#[test]
fn mode_seeking_adds_its_term_deterministically_and_needs_noise() {
    for model in [
        ModelConfig::Cdcgan(tiny_cdcgan()),
        ModelConfig::Mlp(MlpConfig::points()),
    ] {
        let trained = |weight: f32| {
            let config = TrainConfig {
                seed: 3,
                objective: ObjectiveConfig {
                    terms: vec![TermSpec::new("loss_g_ms", weight)],
                    ..Default::default()
                },
                ..Default::default()
            };
            let gan = model.build(&mut ChaCha8Rng::seed_from_u64(9)).unwrap();
            let mut trainer = Trainer::new(gan, config).unwrap();
            let mut consumed = 0;
            let mut metrics = Vec::new();
            for _ in 0..2 {
                let mut next = || {
                    consumed += 1;
                    batch_for(&model, consumed)
                };
                metrics.push(trainer.train_step(&mut next).unwrap());
            }
            (metrics, everything(&trainer))
        };
        let (with, weights) = trained(2.0);
        for m in &with {
            let ms = m.get("loss_g_ms").expect("the weighted term is reported");
            assert!(ms.is_finite() && ms > 0.0, "{}: {ms}", model.kind());
            assert!(m.loss_g > ms, "loss_g includes the term");
        }
        let (again, same_weights) = trained(2.0);
        assert_eq!(with, again, "{}: not deterministic", model.kind());
        assert!(weights == same_weights);
        let (without, _) = trained(0.0);
        assert!(without.iter().all(|m| m.get("loss_g_ms").is_none()));
    }

    let model = models()
        .into_iter()
        .find(|m| matches!(m, ModelConfig::Pix2Pix(_)))
        .unwrap();
    let config = TrainConfig {
        objective: ObjectiveConfig {
            terms: vec![TermSpec::new("loss_g_ms", 1.0)],
            ..Default::default()
        },
        ..Default::default()
    };
    let err = Trainer::new(
        model.build(&mut ChaCha8Rng::seed_from_u64(9)).unwrap(),
        config,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("draws no noise"), "{err}");
}

/// A small MLP GAN on 8x8 images: no batch norm (penalties apply), images (DiffAugment
/// applies).
fn small_image_mlp() -> ModelConfig {
    ModelConfig::Mlp(MlpConfig {
        latent: 4,
        sample_shape: vec![1, 8, 8],
        g_hidden: vec![16],
        d_hidden: vec![16],
        leaky_slope: 0.2,
        d_dropout: 0.2,
        output: MlpOutput::Tanh,
        pack: 1,
        g_batch_norm: false,
        d_maxout: 0,
    })
}

fn image_batch(i: u64) -> Batch {
    Batch::new(Tensor::rand_uniform(
        &[4, 1, 8, 8],
        -1.0,
        1.0,
        &mut ChaCha8Rng::seed_from_u64(500 + i),
    ))
}

#[test]
fn resuming_is_exact_with_ema_penalties_and_augmentation() {
    let scratch = temp_dir("resume-knobs");
    let dir = scratch.path();
    let model = small_image_mlp();
    let config = TrainConfig {
        k: 2,
        objective: ObjectiveConfig {
            loss: "wasserstein".into(),
            terms: vec![
                TermSpec::new("gp", 10.0),
                TermSpec {
                    every: 3,
                    ..TermSpec::new("r1", 0.5)
                },
                TermSpec::new("drift", 0.001),
                TermSpec::new("loss_g_ms", 0.1),
            ],
            ..Default::default()
        },
        optim_g: OptimConfig::Adam {
            lr: 1e-4,
            beta1: 0.0,
            beta2: 0.9,
        },
        optim_d: OptimConfig::Adam {
            lr: 4e-4,
            beta1: 0.0,
            beta2: 0.9,
        },
        seed: 11,
        ema: Some(0.99),
        diffaug: DiffAug::ALL.to_vec(),
    };
    let build = || {
        Trainer::new(
            model.build(&mut ChaCha8Rng::seed_from_u64(4)).unwrap(),
            config.clone(),
        )
        .unwrap()
    };
    let steps = |t: &mut Trainer, n: u64, consumed: &mut u64| {
        let mut out = Vec::new();
        for _ in 0..n {
            let mut next = || {
                *consumed += 1;
                image_batch(*consumed)
            };
            out.push(t.train_step(&mut next).unwrap());
        }
        out
    };
    let mut straight = build();
    let mut consumed = 0;
    let all = steps(&mut straight, 6, &mut consumed);

    let mut first = build();
    let mut consumed_b = 0;
    steps(&mut first, 3, &mut consumed_b);
    let path = dir.join("knobs.safetensors");
    let extra = serde_json::json!({ "batches_consumed": consumed_b });
    checkpoint::save(&path, &first, &[], &extra).unwrap();
    drop(first);
    let (mut resumed, extras) = checkpoint::load(&path).unwrap();
    assert_eq!(resumed.config, config);
    let mut consumed_b = extras.extra["batches_consumed"].as_u64().unwrap();
    let rest = steps(&mut resumed, 3, &mut consumed_b);
    assert_eq!(
        &all[3..],
        &rest[..],
        "the logged metrics differ after resuming"
    );
    assert!(all.iter().all(|m| m.get("gp").is_some()));
    assert!(all[2].get("r1").is_some() && all[3].get("r1").is_none());
    let (a, b) = (everything(&straight), everything(&resumed));
    assert!(a.iter().any(|(k, _)| k.starts_with("ema.")));
    assert_eq!(a.len(), b.len());
    for ((ka, va), (kb, vb)) in a.iter().zip(&b) {
        assert_eq!(ka, kb);
        assert!(va == vb, "{ka} differs after resuming");
    }
    // The average is not the live generator, and sampling sees the average.
    let ema = resumed.ema.as_ref().unwrap().tensors()[0].clone();
    let live = gantry_nn::named_params(resumed.gan.generator())[0]
        .1
        .value();
    assert_ne!(ema.1.to_vec(), live.to_vec());
    let seen = resumed.with_sampling_weights(|t| {
        gantry_nn::named_params(t.gan.generator())[0]
            .1
            .value()
            .to_vec()
    });
    assert_eq!(seen, ema.1.to_vec());
    let back = gantry_nn::named_params(resumed.gan.generator())[0]
        .1
        .value();
    assert_eq!(back.to_vec(), live.to_vec());
    let (sampling, _) = checkpoint::load_for_sampling(&path).unwrap();
    assert!(
        sampling.ema.is_none(),
        "the average is in the generator for good"
    );
}

#[test]
fn checkpoints_from_before_objectives_load_as_the_same_objective() {
    let scratch = temp_dir("legacy");
    let dir = scratch.path();
    let model = models().swap_remove(1); // pix2pix
    let gan = model.build(&mut ChaCha8Rng::seed_from_u64(0)).unwrap();
    let trainer = Trainer::new(gan, TrainConfig::default()).unwrap();
    let path = dir.join("old.safetensors");
    checkpoint::save(&path, &trainer, &[], &serde_json::json!({})).unwrap();
    // Rewrite the training settings as they were stored before objectives.
    let file = gantry_nn::state_dict::read_safetensors(&path).unwrap();
    let mut meta = file.metadata.clone();
    meta.insert(
        "train".into(),
        r#"{"k":1,"gen_loss":"minimax","real_label":0.9,"optim_g":{"kind":"adam","lr":0.0002,"beta1":0.5,"beta2":0.999},"optim_d":{"kind":"adam","lr":0.0002,"beta1":0.5,"beta2":0.999},"seed":0,"mode_seeking":0.0}"#.into(),
    );
    let tensors: Vec<(String, Tensor)> = file.tensors.into_iter().collect();
    gantry_nn::state_dict::write_safetensors(&path, &tensors, &meta).unwrap();
    let (old, _) = checkpoint::load(&path).unwrap();
    let o = &old.config.objective;
    assert_eq!((o.loss.as_str(), o.real_label), ("minimax", 0.9));
    assert_eq!(o.terms, vec![TermSpec::new("loss_g_l1", 100.0)]);
    assert!(old.ema.is_none() && old.config.diffaug.is_empty());
}

#[test]
fn nonsense_settings_are_refused_by_name() {
    let model = ModelConfig::Mlp(MlpConfig::points());
    let refuse = |config: TrainConfig| -> String {
        let gan = model.build(&mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        match Trainer::new(gan, config) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted"),
        }
    };
    let with = |objective: ObjectiveConfig| TrainConfig {
        objective,
        ..Default::default()
    };
    let e = refuse(with(ObjectiveConfig {
        loss: "relativistic".into(),
        ..Default::default()
    }));
    assert!(
        e.contains("unknown loss relativistic") && e.contains("lsgan"),
        "{e}"
    );
    let e = refuse(with(ObjectiveConfig {
        terms: vec![TermSpec::new("spectral", 1.0)],
        ..Default::default()
    }));
    assert!(
        e.contains("unknown term spectral") && e.contains("gp"),
        "{e}"
    );
    let e = refuse(with(ObjectiveConfig {
        loss: "hinge".into(),
        real_label: 0.9,
        ..Default::default()
    }));
    assert!(e.contains("hinge loss has no target"), "{e}");
    let e = refuse(with(ObjectiveConfig {
        terms: vec![TermSpec::new("drift", -1.0)],
        ..Default::default()
    }));
    assert!(e.contains("weight -1 of drift"), "{e}");
    let e = refuse(TrainConfig {
        ema: Some(1.5),
        ..Default::default()
    });
    assert!(e.contains("EMA decay 1.5"), "{e}");
    let e = refuse(TrainConfig {
        diffaug: vec![DiffAug::Color],
        ..Default::default()
    });
    assert!(e.contains("points"), "{e}");
    let e = refuse(with(ObjectiveConfig {
        terms: vec![TermSpec::new("loss_g_l1", 100.0)],
        ..Default::default()
    }));
    assert!(e.contains("no sample has a target"), "{e}");
}

#[test]
fn feature_matching_trains_and_logs_its_term() {
    for model in [
        ModelConfig::Mlp(MlpConfig::points()),
        ModelConfig::Mlp(MlpConfig::points()).with_pack(2),
        ModelConfig::Dcgan(tiny_dcgan()),
    ] {
        let config = TrainConfig {
            objective: ObjectiveConfig {
                terms: vec![TermSpec::new("feature_matching", 1.0)],
                ..Default::default()
            },
            ..Default::default()
        };
        let gan = model.build(&mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        let mut trainer = Trainer::new(gan, config).unwrap();
        let m = trainer.train_step(&mut || batch_for(&model, 1)).unwrap();
        let fm = m.get("feature_matching").expect("the term is logged");
        assert!(fm.is_finite() && fm > 0.0, "{}: {m:?}", model.kind());
        let gan_part = m.get("loss_g_gan").unwrap();
        assert!((gan_part + fm - m.loss_g).abs() < 1e-4 * (1.0 + m.loss_g.abs()));
    }
}

#[test]
fn caae_logs_its_terms_trains_both_discriminators_and_needs_its_code_loss() {
    let model = models()
        .into_iter()
        .find(|m| matches!(m, ModelConfig::Caae(_)))
        .unwrap();
    let build = |objective: ObjectiveConfig| {
        Trainer::new(
            model.build(&mut ChaCha8Rng::seed_from_u64(1)).unwrap(),
            TrainConfig {
                objective,
                ..Default::default()
            },
        )
    };
    let mut trainer = build(ObjectiveConfig::default_for(&model)).unwrap();
    let weights = |t: &Trainer| -> Vec<(String, Vec<f32>)> {
        state_dict(t.gan.discriminator())
            .into_iter()
            .map(|(k, v)| (k, v.to_vec()))
            .collect()
    };
    let before = weights(&trainer);
    let mut next = || batch_for(&model, 1);
    let m = trainer.train_step(&mut next).unwrap();
    for key in [
        "loss_d_real",
        "loss_d_fake",
        "loss_d_z",
        "loss_g_gan",
        "loss_g_l1",
        "loss_g_tv",
        "loss_g_z",
    ] {
        let v = m
            .get(key)
            .unwrap_or_else(|| panic!("{key} not logged: {m:?}"));
        assert!(v.is_finite() && v > 0.0, "{key}: {v}");
    }
    // Both discriminators learned: D_img from the adversarial loss, D_z from loss_d_z.
    let after = weights(&trainer);
    for name in ["image.head.0.weight", "code.0.weight"] {
        let get = |w: &[(String, Vec<f32>)]| w.iter().find(|(k, _)| k == name).unwrap().1.clone();
        assert!(get(&before) != get(&after), "{name} did not move");
    }
    // Without its code loss, D_z would get no gradient: refused up front.
    let err = build(ObjectiveConfig::default()).err().unwrap().to_string();
    assert!(err.contains("loss_d_z"), "{err}");
    // The code adversary on a model without an encoder is refused by name.
    let dcgan = ModelConfig::Dcgan(tiny_dcgan());
    let err = Trainer::new(
        dcgan.build(&mut ChaCha8Rng::seed_from_u64(1)).unwrap(),
        TrainConfig {
            objective: ObjectiveConfig {
                terms: vec![TermSpec::new("loss_g_z", 1.0)],
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("loss_g_z") && err.contains("no encoder"),
        "{err}"
    );
}
