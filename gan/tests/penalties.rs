//! The gradient penalty and R1: against hand computations, against PyTorch (fixtures written
//! by `fixtures/torch/gen_objective.py`), and through the trainer.

use gantry_autodiff::{Tape, Var};
use gantry_gan::models::{Batch, DcganConfig, DcganVariant, MlpConfig, MlpOutput, ModelConfig};
use gantry_gan::objective::term::{gradient_penalty, r1_penalty};
use gantry_gan::objective::{ObjectiveConfig, TermSpec};
use gantry_gan::{TrainConfig, Trainer};
use gantry_tensor::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::path::PathBuf;

fn fixtures() -> HashMap<String, Tensor> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/torch/objective.safetensors");
    match gantry_nn::state_dict::read_safetensors(&path) {
        Ok(file) => file.tensors,
        Err(e) => panic!(
            "{e}: write it with `python fixtures/torch/make_fixtures.py objective` (see fixtures/torch/README.md)"
        ),
    }
}

/// The fixture's critic: `linear2(leaky_relu(linear1(x), 0.2))`.
fn critic<'t>(x: Var<'t>, w: &[Var<'t>]) -> Var<'t> {
    x.linear(w[0], Some(w[1]))
        .leaky_relu(0.2)
        .linear(w[2], Some(w[3]))
}

fn close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: gantry {g} vs torch {w}"
        );
    }
}

#[test]
fn a_linear_critic_has_the_hand_computed_penalties() {
    // D(x) = x . w + b has gradient w at every x: GP = (|w| - 1)^2, R1 = |w|^2 / 2.
    let tape = Tape::new();
    let w = tape.leaf(Tensor::from_vec(&[1, 2], vec![3.0, 4.0]));
    let b = tape.leaf(Tensor::from_vec(&[1], vec![0.5]));
    let x = tape.leaf(Tensor::from_vec(
        &[3, 2],
        vec![1.0, 2.0, -1.0, 0.0, 0.5, 0.5],
    ));
    let out = x.linear(w, Some(b));
    let gp = gradient_penalty(x, out).unwrap();
    assert!(
        (gp.value().item() - 16.0).abs() < 1e-4,
        "{}",
        gp.value().item()
    );
    // d GP / d w = 2 (|w| - 1) w / |w| = 2 * 4 * (0.6, 0.8).
    let g = gp.backward();
    close("dGP/dw", &g.get(w).unwrap().to_vec(), &[4.8, 6.4], 1e-4);
    let r1 = r1_penalty(x, x.linear(w, Some(b))).unwrap();
    assert!((r1.value().item() - 12.5).abs() < 1e-4);
    close(
        "dR1/dw",
        &r1.backward().get(w).unwrap().to_vec(),
        &[3.0, 4.0],
        1e-4,
    );
}

#[test]
fn the_penalties_match_pytorch() {
    let f = fixtures();
    let get = |k: &str| {
        f.get(k)
            .unwrap_or_else(|| panic!("objective.safetensors has no {k}: regenerate it"))
            .clone()
    };
    let (real, fake, alpha) = (get("critic/real"), get("critic/fake"), get("critic/alpha"));
    let names = ["w1", "b1", "w2", "b2"];
    for case in ["gp", "r1"] {
        let tape = Tape::new();
        let w: Vec<Var> = names
            .iter()
            .map(|n| tape.leaf(get(&format!("critic/{n}"))))
            .collect();
        let value = if case == "gp" {
            let x = tape.leaf(real.add(&alpha.mul(&fake.sub(&real))));
            gradient_penalty(x, critic(x, &w)).unwrap()
        } else {
            let x = tape.leaf(real.clone());
            r1_penalty(x, critic(x, &w)).unwrap()
        };
        close(
            case,
            &value.value().to_vec(),
            &get(&format!("{case}/value")).to_vec(),
            1e-4,
        );
        let grads = value.backward();
        for (n, v) in names.iter().zip(&w) {
            close(
                &format!("d{case}/d{n}"),
                &grads.get_or_zeros(*v).to_vec(),
                &get(&format!("{case}/grad_{n}")).to_vec(),
                1e-4,
            );
        }
    }
}

/// A small MLP GAN on 8x8 single-channel images: no batch norm, so penalties apply, and
/// images, so DiffAugment applies.
fn small_mlp() -> ModelConfig {
    ModelConfig::Mlp(MlpConfig {
        latent: 4,
        sample_shape: vec![1, 8, 8],
        g_hidden: vec![16],
        d_hidden: vec![16],
        leaky_slope: 0.2,
        d_dropout: 0.0,
        output: MlpOutput::Tanh,
        pack: 1,
        g_batch_norm: false,
        d_maxout: 0,
    })
}

fn wgan_gp(terms: Vec<TermSpec>) -> TrainConfig {
    TrainConfig {
        objective: ObjectiveConfig {
            loss: "wasserstein".into(),
            terms,
            ..Default::default()
        },
        seed: 5,
        ..Default::default()
    }
}

fn batch(i: u64) -> Batch {
    Batch::new(Tensor::rand_uniform(
        &[4, 1, 8, 8],
        -1.0,
        1.0,
        &mut ChaCha8Rng::seed_from_u64(i),
    ))
}

#[test]
fn wgan_gp_and_lazy_r1_train_and_log_their_terms() {
    let model = small_mlp();
    let config = wgan_gp(vec![
        TermSpec::new("gp", 10.0),
        TermSpec {
            every: 2,
            ..TermSpec::new("r1", 1.0)
        },
        TermSpec::new("drift", 0.001),
    ]);
    let gan = model.build(&mut ChaCha8Rng::seed_from_u64(0)).unwrap();
    let mut trainer = Trainer::new(gan, config).unwrap();
    let mut i = 0;
    let mut next = || {
        i += 1;
        batch(i)
    };
    let first = trainer.train_step(&mut next).unwrap();
    let second = trainer.train_step(&mut next).unwrap();
    for m in [&first, &second] {
        let gp = m.get("gp").expect("gp is logged every step");
        assert!(gp.is_finite() && gp > 0.0, "{m:?}");
        assert!(
            m.get("w_estimate").is_some() && m.get("d_real").is_none(),
            "{m:?}"
        );
        // The parts add up to the loss.
        let sum: f32 = ["loss_d_real", "loss_d_fake", "gp", "r1", "drift"]
            .iter()
            .filter_map(|k| m.get(k))
            .sum();
        assert!(
            (sum - m.loss_d).abs() < 1e-3 * (1.0 + m.loss_d.abs()),
            "{m:?}"
        );
    }
    // Lazy R1 runs on even steps only.
    assert!(
        first.get("r1").is_none() && second.get("r1").is_some(),
        "{first:?} {second:?}"
    );
}

#[test]
fn a_penalty_through_batch_norm_is_refused_before_training() {
    let dcgan = ModelConfig::Dcgan(DcganConfig {
        variant: DcganVariant::Dcgan64,
        image_size: 16,
        channels: 1,
        nz: 8,
        ngf: 4,
        ndf: 4,
        pack: 1,
        d_dropout: None,
    });
    for term in ["gp", "r1"] {
        let gan = dcgan.build(&mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        let err = match Trainer::new(gan, wgan_gp(vec![TermSpec::new(term, 1.0)])) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{term} on a batch-norm discriminator was accepted"),
        };
        assert!(err.contains(term) && err.contains("batch_norm"), "{err}");
    }
}
