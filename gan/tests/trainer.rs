//! The trainer and checkpoints: resuming is exact, bad losses stop training, models validate.

use gantry_gan::models::{Batch, DcganConfig, DcganVariant, MlpConfig, ModelConfig, Pix2PixConfig};
use gantry_gan::{GanError, GenLoss, OptimConfig, TrainConfig, Trainer, checkpoint};
use gantry_nn::state_dict::state_dict;
use gantry_tensor::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gantry-gan-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A tiny DCGAN at 16x16 with batch norm, and a tiny pix2pix at 32x32 with dropout.
fn models() -> Vec<ModelConfig> {
    vec![
        ModelConfig::Dcgan(DcganConfig {
            variant: DcganVariant::Dcgan64,
            image_size: 16,
            channels: 1,
            nz: 8,
            ngf: 4,
            ndf: 4,
        }),
        ModelConfig::Pix2Pix(Pix2PixConfig {
            ngf: 4,
            ndf: 4,
            ..Pix2PixConfig::new(32)
        }),
    ]
}

/// Deterministic batches: batch `i` depends only on `i`.
fn batch_for(model: &ModelConfig, i: u64) -> Batch {
    let mut rng = ChaCha8Rng::seed_from_u64(1000 + i);
    match model {
        ModelConfig::Pix2Pix(c) => {
            let s = [2, 3, c.image_size, c.image_size];
            Batch {
                real: Tensor::rand_uniform(&s, -1.0, 1.0, &mut rng),
                condition: Some(Tensor::rand_uniform(&s, -1.0, 1.0, &mut rng)),
            }
        }
        ModelConfig::Dcgan(c) => Batch {
            real: Tensor::rand_uniform(
                &[4, c.channels, c.image_size, c.image_size],
                -1.0,
                1.0,
                &mut rng,
            ),
            condition: None,
        },
        ModelConfig::Mlp(c) => Batch {
            real: Tensor::randn(&[8, c.sample_shape[0]], 0.0, 1.0, &mut rng),
            condition: None,
        },
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
    let dir = temp_dir("resume");
    for model in models() {
        let config = TrainConfig {
            seed: 3,
            ..Default::default()
        };
        let build = || {
            Trainer::new(
                model.build(&mut ChaCha8Rng::seed_from_u64(9)).unwrap(),
                config.clone(),
            )
        };

        let mut straight = build();
        let mut consumed = 0;
        run(&mut straight, &model, 4, &mut consumed);

        let mut first = build();
        let mut consumed_b = 0;
        run(&mut first, &model, 2, &mut consumed_b);
        let path = dir.join(format!("{}.safetensors", model.kind()));
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
            assert!(va == vb, "{}: {ka} differs after resuming", model.kind());
        }
    }
}

#[test]
fn a_non_finite_loss_stops_before_any_update() {
    let model = ModelConfig::Mlp(MlpConfig::points());
    let gan = model.build(&mut ChaCha8Rng::seed_from_u64(0)).unwrap();
    let mut trainer = Trainer::new(gan, TrainConfig::default());
    let mut consumed = 0;
    run(&mut trainer, &model, 2, &mut consumed);
    let before = everything(&trainer);
    let mut poisoned = || Batch {
        real: Tensor::full(&[8, 2], f32::NAN),
        condition: None,
    };
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
        gen_loss: GenLoss::Minimax,
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
    let mut trainer = Trainer::new(gan, config);
    let mut consumed = 0;
    run(&mut trainer, &model, 2, &mut consumed);
    assert_eq!(consumed, 6);
    let mut next = || batch_for(&model, 99);
    let m = trainer.train_step(&mut next).unwrap();
    // log(1 - D(G(z))) < 0, and it is what the minimax generator reports.
    assert!(m.loss_g < 0.0, "minimax loss {}", m.loss_g);
    assert!((m.loss_g - (1.0 - m.d_fake_g).ln()).abs() < 0.05, "{m:?}");
}

#[test]
fn pix2pix_reports_its_loss_parts() {
    let model = models().pop().unwrap();
    let mut trainer = Trainer::new(
        model.build(&mut ChaCha8Rng::seed_from_u64(1)).unwrap(),
        TrainConfig::default(),
    );
    let mut next = || batch_for(&model, 0);
    let m = trainer.train_step(&mut next).unwrap();
    let (gan, l1) = (m.loss_g_gan.unwrap(), m.loss_g_l1.unwrap());
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
    let dir = temp_dir("bad");
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
    let trainer = Trainer::new(gan, TrainConfig::default());
    let good = dir.join("good.safetensors");
    checkpoint::save(&good, &trainer, &[], &serde_json::json!({})).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = checkpoint::load(&cut).err().unwrap().to_string();
    assert!(e.contains("cut.safetensors"), "{e}");
    assert!(checkpoint::load(&good).is_ok());
}
