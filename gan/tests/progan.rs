//! ProGAN's growing networks: a fade at alpha 0 is the network one level down, images keep
//! the final size at every stage, real batches are brought to the stage's resolution, the
//! blocks a stage does not use get zero gradients and stay as they are, and the critic's
//! penalty differentiates through the growing network.

use gantry_autodiff::{CreateGraph, Tape};
use gantry_gan::models::{Batch, Gan, ProGan, ProGanConfig, Stage};
use gantry_gan::objective::{ObjectiveConfig, TermSpec};
use gantry_gan::{OptimConfig, TrainConfig, Trainer};
use gantry_nn::{Mode, Module, named_params};
use gantry_tensor::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// 16x16 RGB, widths 8 (4 at 16x16), batch 4; 2 steps at 4x4, then 2 fading to 8x8, 2 at
/// 8x8, 2 fading to 16x16.
fn tiny() -> ProGanConfig {
    ProGanConfig {
        fade_images: 8,
        stable_images: 8,
        ..ProGanConfig::new(16, 3, 8, 4)
    }
}

fn build(config: &ProGanConfig) -> ProGan {
    ProGan::new(config.clone(), &mut ChaCha8Rng::seed_from_u64(5)).unwrap()
}

fn images(n: usize, seed: u64) -> Tensor {
    Tensor::rand_uniform(
        &[n, 3, 16, 16],
        -1.0,
        1.0,
        &mut ChaCha8Rng::seed_from_u64(seed),
    )
}

/// G's output and D's score of `x` with both players at `stage`.
fn outputs(gan: &ProGan, stage: Stage, z: &Tensor, x: &Tensor) -> (Vec<f32>, Vec<f32>) {
    gan.set_stage(stage);
    let tape = Tape::new();
    let g = gan
        .generator()
        .forward(tape.constant(z.clone()), Mode::Eval);
    let d = gan
        .discriminator()
        .forward(tape.constant(x.clone()), Mode::Eval);
    (g.value().to_vec(), d.value().to_vec())
}

/// Whether every `f x f` block of each `[H, W]` plane of `x` holds one value.
fn blocky(x: &Tensor, f: usize) -> bool {
    let s = x.shape().to_vec();
    let (h, w) = (s[2], s[3]);
    let v = x.to_vec();
    v.chunks(h * w).all(|plane| {
        (0..h).all(|i| (0..w).all(|j| plane[i * w + j] == plane[(i / f * f) * w + j / f * f]))
    })
}

#[test]
fn a_fade_at_alpha_0_is_the_network_one_level_down() {
    let gan = build(&tiny());
    let z = gan.noise(4, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
    let x = images(4, 2);
    for level in 1..=2 {
        let lower = outputs(&gan, Stage::stable(level - 1), &z, &x);
        let fading = outputs(&gan, Stage { level, alpha: 0.0 }, &z, &x);
        assert!(
            lower == fading,
            "level {level}: alpha 0 differs from the level below"
        );
        // Halfway the new block counts, and at alpha 1 the level below no longer does.
        let half = outputs(&gan, Stage { level, alpha: 0.5 }, &z, &x);
        let full = outputs(&gan, Stage::stable(level), &z, &x);
        assert!(half.0 != lower.0 && half.0 != full.0, "level {level}: G");
        assert!(half.1 != lower.1 && half.1 != full.1, "level {level}: D");
        for ((a, b), c) in half.0.iter().zip(&lower.0).zip(&full.0) {
            assert!(
                (a - (b + c) / 2.0).abs() < 1e-5,
                "G blends linearly: {a} {b} {c}"
            );
        }
    }
}

#[test]
fn images_keep_the_final_size_at_every_stage_and_are_drawn_at_its_resolution() {
    let config = tiny();
    let gan = build(&config);
    let z = gan.noise(4, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
    for step in 0..10 {
        gan.set_progress(step);
        let stage = config.stage(step);
        assert_eq!(gan.stage(), stage);
        let want = format!("res-{:03}", stage.resolution());
        assert_eq!(gan.stage_name(), Some(want));
        let tape = Tape::new();
        let y = gan
            .generator()
            .forward(tape.constant(z.clone()), Mode::Eval)
            .value();
        assert_eq!(y.shape(), [4, 3, 16, 16], "step {step}");
        let d = gan
            .discriminator()
            .forward(tape.constant(y.clone()), Mode::Eval);
        assert_eq!(d.shape(), [4, 1], "step {step}");
        // Drawn at the stage's resolution, or at half of it where that still blends in.
        let f = 16 / stage.resolution();
        let coarse = f * 2;
        assert!(blocky(&y, f), "step {step}: not {f}x{f} blocks");
        if coarse <= 16 && stage.alpha > 0.0 {
            assert!(!blocky(&y, coarse), "step {step}: {coarse}x{coarse} blocks");
        }
    }
}

#[test]
fn real_batches_are_pooled_to_the_stage_and_blended_during_a_fade() {
    let gan = build(&tiny());
    let x = images(2, 3);
    assert!(
        gan.reals_at(x.clone(), Stage::stable(2)) == x,
        "full size: unchanged"
    );
    let at4 = gan.reals_at(x.clone(), Stage::stable(0));
    assert!(blocky(&at4, 4) && !blocky(&at4, 8));
    // The top-left 4x4 block of the first plane is its mean.
    let v = x.to_vec();
    let mean: f32 = (0..4)
        .flat_map(|i| (0..4).map(move |j| i * 16 + j))
        .map(|k| v[k])
        .sum::<f32>()
        / 16.0;
    assert!((at4.to_vec()[0] - mean).abs() < 1e-6);
    // A fade at alpha 0 shows the level below; halfway, the mean of the two.
    let diff = |a: &Tensor, b: &Tensor| a.max_abs_diff(b);
    let start = gan.reals_at(
        x.clone(),
        Stage {
            level: 1,
            alpha: 0.0,
        },
    );
    assert!(diff(&start, &at4) < 1e-6);
    let at8 = gan.reals_at(x.clone(), Stage::stable(1));
    let half = gan.reals_at(
        x,
        Stage {
            level: 1,
            alpha: 0.5,
        },
    );
    let mid = at4.add(&at8).mul_scalar(0.5);
    assert!(diff(&half, &mid) < 1e-6);
    assert!(diff(&at8, &at4) > 0.1);
}

/// The trained parameters of `m` whose gradient of `loss` is not zero everywhere.
fn moved(m: &dyn Module, grads: &gantry_autodiff::Gradients) -> Vec<String> {
    named_params(m)
        .into_iter()
        .filter(|(_, p)| {
            let g = grads
                .get_key(p.id().0)
                .expect("every parameter has a gradient");
            g.to_vec().iter().any(|v| *v != 0.0)
        })
        .map(|(n, _)| n)
        .collect()
}

#[test]
fn every_parameter_has_a_gradient_and_the_unused_ones_a_zero_gradient() {
    let gan = build(&tiny());
    let z = gan.noise(4, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
    let x = images(4, 2);
    for (stage, g_used, d_used) in [
        (
            Stage::stable(0),
            vec!["blocks.0.", "to_rgb.0."],
            vec!["blocks.0.", "from_rgb.0."],
        ),
        (
            Stage {
                level: 1,
                alpha: 0.25,
            },
            vec!["blocks.0.", "blocks.1.", "to_rgb.0.", "to_rgb.1."],
            vec!["blocks.0.", "blocks.1.", "from_rgb.0.", "from_rgb.1."],
        ),
        (
            Stage::stable(1),
            vec!["blocks.0.", "blocks.1.", "to_rgb.1."],
            vec!["blocks.0.", "blocks.1.", "from_rgb.1."],
        ),
    ] {
        gan.set_stage(stage);
        let tape = Tape::new();
        let y = gan
            .generator()
            .forward(tape.constant(z.clone()), Mode::Train);
        let d = gan.discriminator().forward(y, Mode::Train);
        let d_real = gan
            .discriminator()
            .forward(tape.constant(x.clone()), Mode::Train);
        let grads = d.sum().add(d_real.sum()).backward();
        for (m, used) in [(gan.generator(), &g_used), (gan.discriminator(), &d_used)] {
            let got = moved(m, &grads);
            let expected: Vec<String> = named_params(m)
                .into_iter()
                .map(|(n, _)| n)
                .filter(|n| used.iter().any(|u| n.starts_with(u)))
                .collect();
            assert_eq!(got, expected, "{stage:?}");
        }
    }
}

#[test]
fn weights_are_unit_normal_under_the_equalised_learning_rate() {
    let gan = build(&ProGanConfig::new(16, 3, 16, 4));
    let names: Vec<(String, Vec<usize>)> = named_params(gan.generator())
        .into_iter()
        .map(|(n, p)| (n, p.shape()))
        .collect();
    assert_eq!(names[0], ("blocks.0.1.weight_orig".into(), vec![256, 16]));
    assert!(
        names
            .iter()
            .any(|(n, s)| n == "to_rgb.2.weight_orig" && s == &[3, 16, 1, 1])
    );
    for (name, p) in named_params(gan.discriminator()) {
        let v = p.value().to_vec();
        if name.ends_with("weight_orig") && v.len() >= 256 {
            let mean = v.iter().sum::<f32>() / v.len() as f32;
            let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / v.len() as f32;
            assert!(
                mean.abs() < 0.2 && (var - 1.0).abs() < 0.2,
                "{name}: {mean} {var}"
            );
        } else if name.ends_with("bias") {
            assert!(v.iter().all(|x| *x == 0.0), "{name}");
        }
    }
}

#[test]
fn the_penalty_reaches_the_critic_while_it_fades() {
    let gan = build(&tiny());
    gan.set_progress(3); // fading into 8x8 at alpha 0.5
    assert!(gan.stage().fading());
    let tape = Tape::new();
    let x = tape.leaf(images(4, 7));
    let score = gan.discriminator().forward(x, Mode::Train);
    let g = tape.grad(&[score.sum()], &[x], CreateGraph::Yes).unwrap()[0];
    // The score reads the 8x8 and 4x4 poolings of x: each 2x2 block gets one gradient.
    assert!(blocky(&g.value(), 2) && !blocky(&g.value(), 4));
    let penalty = g.mul(g).sum();
    let (_, from8) = named_params(gan.discriminator())
        .into_iter()
        .find(|(n, _)| n == "from_rgb.1.0.weight_orig")
        .unwrap();
    let dw = tape
        .grad(&[penalty], &[from8.var(&tape)], CreateGraph::No)
        .unwrap();
    assert!(dw[0].value().to_vec().iter().any(|v| *v != 0.0));
}

#[test]
fn training_across_a_growth_leaves_the_blocks_to_come_untouched_until_they_come() {
    let config = tiny();
    let gan = ProGan::new(config.clone(), &mut ChaCha8Rng::seed_from_u64(5)).unwrap();
    let train = TrainConfig {
        objective: ObjectiveConfig {
            loss: "wasserstein".into(),
            terms: vec![TermSpec::new("gp", 10.0), TermSpec::new("drift", 0.001)],
            ..Default::default()
        },
        optim_g: OptimConfig::Adam {
            lr: 1e-3,
            beta1: 0.0,
            beta2: 0.99,
        },
        optim_d: OptimConfig::Adam {
            lr: 1e-3,
            beta1: 0.0,
            beta2: 0.99,
        },
        ema: Some(0.999),
        ..Default::default()
    };
    let mut trainer = Trainer::new(Box::new(gan), train).unwrap();
    let top = |t: &Trainer| -> Vec<Vec<f32>> {
        named_params(t.gan.generator())
            .into_iter()
            .filter(|(n, _)| n.starts_with("blocks.2.") || n.starts_with("to_rgb.2."))
            .map(|(_, p)| p.value().to_vec())
            .collect()
    };
    let before = top(&trainer);
    let mut i = 0;
    let mut next = || {
        i += 1;
        Batch::new(images(4, 100 + i))
    };
    // Steps 1..=7 train at 4x4 and 8x8, and step 7 at alpha 0 of the 16x16 block's fade,
    // which gives it no gradient yet; it learns from step 8.
    for _ in 0..7 {
        let m = trainer.train_step(&mut next).unwrap();
        for key in ["loss_d", "loss_g", "gp", "drift", "w_estimate"] {
            assert!(m.get(key).unwrap().is_finite(), "{key}: {m:?}");
        }
    }
    assert_eq!(
        config.stage(6),
        Stage {
            level: 2,
            alpha: 0.0
        }
    );
    assert!(
        top(&trainer) == before,
        "the 16x16 block moved before its time"
    );
    trainer.train_step(&mut next).unwrap();
    assert!(
        top(&trainer) != before,
        "the 16x16 block did not train in its fade"
    );
}

#[test]
fn the_trainer_shows_the_critic_real_batches_at_the_stage() {
    let config = tiny();
    let train = TrainConfig {
        objective: ObjectiveConfig {
            loss: "wasserstein".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut trainer = Trainer::new(Box::new(build(&config)), train).unwrap();
    let mut i = 0;
    let mut next = || {
        i += 1;
        Batch::new(images(4, 200 + i))
    };
    for _ in 0..3 {
        trainer.train_step(&mut next).unwrap();
    }
    // Step 4 is halfway through the fade into 8x8, where the blend of the real batch counts.
    assert_eq!(
        config.stage(3),
        Stage {
            level: 1,
            alpha: 0.5
        }
    );
    let x = images(4, 300);
    let mean_score = |x: Tensor| {
        let tape = Tape::new();
        let d = trainer.gan.discriminator();
        d.forward(tape.constant(x), Mode::Train).value().mean_all()
    };
    let seen = mean_score(trainer.gan.real_samples(x.clone()));
    let raw = mean_score(x.clone());
    assert!((seen - raw).abs() > 1e-4, "the blend changes what D sees");
    let m = trainer.train_step(&mut || Batch::new(x.clone())).unwrap();
    assert_eq!(m.get("d_out_real"), Some(seen));
}

#[test]
fn the_schedule_grows_fades_and_stabilises_by_images_shown() {
    // Batch 4, 4 images at each resolution and 8 per fade: 1 step at 4x4, 2 fading into 8x8,
    // 1 at 8x8, 2 fading into 16x16, then 16x16.
    let c = ProGanConfig {
        stable_images: 4,
        ..tiny()
    };
    let got: Vec<(usize, f32)> = (0..8)
        .map(|step| (c.stage(step).resolution(), c.stage(step).alpha))
        .collect();
    let want = [
        (4, 1.0),
        (8, 0.0),
        (8, 0.5),
        (8, 1.0),
        (16, 0.0),
        (16, 0.5),
        (16, 1.0),
        (16, 1.0),
    ];
    assert_eq!(got, want);
    assert_eq!(c.grown_at_step(), 6);
    assert!(c.stage(5).fading() && !c.stage(6).fading());
    // Steps of 3 images do not line up with the phases: alpha is the share of the fade's
    // images shown before the step.
    let odd = ProGanConfig {
        batch_size: 3,
        ..c.clone()
    };
    assert_eq!(odd.stage(1), Stage::stable(0));
    let quarter = Stage {
        level: 1,
        alpha: 0.25,
    };
    assert_eq!(odd.stage(2), quarter);
    assert_eq!(odd.stage(4), Stage::stable(1));
    // The paper's: 800k images at 4x4, then 8x8 fades in over the next 800k.
    let paper = ProGanConfig::paper(64, 3, 16);
    assert_eq!(paper.stage(49_999), Stage::stable(0));
    let half = Stage {
        level: 1,
        alpha: 0.5,
    };
    assert_eq!(paper.stage(75_000), half);
    assert_eq!(paper.stage(u64::MAX), Stage::stable(4));
    assert_eq!(paper.grown_at_step(), 8 * 50_000);
    // Without a fade, a new resolution starts at alpha 1.
    let abrupt = ProGanConfig {
        fade_images: 0,
        ..c
    };
    assert_eq!(abrupt.stage(1), Stage::stable(1));
}

#[test]
fn widths_halve_from_the_cap_and_sizes_are_validated() {
    let paper = ProGanConfig::paper(128, 3, 16);
    let widths: Vec<usize> = (0..=paper.levels()).map(|l| paper.width(l)).collect();
    assert_eq!(widths, [512, 512, 512, 512, 256, 128]);
    let cpu = ProGanConfig::new(64, 3, 32, 16);
    let widths: Vec<usize> = (0..=cpu.levels()).map(|l| cpu.width(l)).collect();
    assert_eq!(widths, [32, 32, 32, 32, 16]);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut refused = |config: ProGanConfig| match ProGan::new(config, &mut rng) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("accepted"),
    };
    let e = refused(ProGanConfig::new(48, 3, 8, 4));
    assert!(e.contains("image size 48 is not a power of two"), "{e}");
    let e = refused(ProGanConfig { z_dim: 0, ..tiny() });
    assert!(e.contains("z_dim must be at least 1"), "{e}");
}
