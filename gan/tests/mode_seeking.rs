//! The mode-seeking term's value, through the public [`Trainer`] API, against a hand
//! computation: a model whose noise draws are fixed tensors, so that the two generator outputs
//! the term compares can be computed beside the trainer.

use gantry_autodiff::Tape;
use gantry_gan::models::{Batch, Gan, MlpConfig, ModelConfig};
use gantry_gan::objective::TermSpec;
use gantry_gan::{TrainConfig, Trainer};
use gantry_nn::{Mode, Module};
use gantry_tensor::Tensor;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cell::Cell;

/// The points MLP, with noise draws of the batch's size taken in turn from a fixed list (so the
/// test knows them).
struct FixedNoise {
    inner: Box<dyn Gan>,
    draws: Vec<Tensor>,
    next: Cell<usize>,
}

impl Gan for FixedNoise {
    fn generator(&self) -> &dyn Module {
        self.inner.generator()
    }
    fn discriminator(&self) -> &dyn Module {
        self.inner.discriminator()
    }
    fn config(&self) -> ModelConfig {
        self.inner.config()
    }
    fn noise(&self, n: usize, _rng: &mut dyn RngCore) -> Option<Tensor> {
        // The trainer asks for one sample to learn whether the model has noise at all; only
        // draws of the batch's size are taken from the list.
        let batch = self.draws[0].shape()[0];
        if n != batch {
            return Some(Tensor::zeros(&[n, self.draws[0].shape()[1]]));
        }
        let i = self.next.get();
        self.next.set(i + 1);
        Some(self.draws[i % self.draws.len()].clone())
    }
}

/// A trainer of the points MLP (built from seed 9) whose noise draws are `z1`, `z2`, ...
fn trainer(weight: f32, z1: &Tensor, z2: &Tensor) -> Trainer {
    let inner = ModelConfig::Mlp(MlpConfig::points())
        .build(&mut ChaCha8Rng::seed_from_u64(9))
        .unwrap();
    let gan = FixedNoise {
        inner,
        draws: vec![z1.clone(), z2.clone()],
        next: Cell::new(0),
    };
    let mut config = TrainConfig {
        seed: 3,
        ..Default::default()
    };
    if weight > 0.0 {
        config
            .objective
            .terms
            .push(TermSpec::new("loss_g_ms", weight));
    }
    Trainer::new(Box::new(gan), config).unwrap()
}

#[test]
fn the_mode_seeking_term_equals_its_hand_computation_on_a_tiny_batch() {
    let n = 3;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let z1 = Tensor::randn(&[n, 2], 0.0, 1.0, &mut rng);
    let z2 = Tensor::randn(&[n, 2], 0.0, 1.0, &mut rng);
    let real = Batch::new(Tensor::rand_uniform(&[n, 2], -1.0, 1.0, &mut rng));
    let weight = 2.0;

    // G(z1) and G(z2) before the step (the discriminator's update does not touch G; the MLP
    // has neither batch norm nor dropout in G, so one batch or two give the same rows).
    let mut t = trainer(weight, &z1, &z2);
    let outputs = |z: &Tensor| {
        let tape = Tape::new();
        t.gan
            .generator()
            .forward(tape.constant(z.clone()), Mode::Train)
            .value()
            .to_vec()
    };
    let (a, b) = (outputs(&z1), outputs(&z2));
    let mean_abs = |x: &[f32], y: &[f32]| {
        x.iter()
            .zip(y)
            .map(|(p, q)| (p - q).abs() as f64)
            .sum::<f64>()
            / x.len() as f64
    };
    let dz = mean_abs(&z1.to_vec(), &z2.to_vec());
    let want = weight as f64 / (mean_abs(&a, &b) / dz + 1e-5);

    let m = t.train_step(&mut || real.clone()).unwrap();
    let got = m.get("loss_g_ms").expect("the weighted term is reported") as f64;
    assert!(
        (got - want).abs() <= 1e-5 * want,
        "mode-seeking term {got}, by hand {want}"
    );

    // The term is added to the generator's loss: without it (the same first noise batch, so
    // the same fake batch and adversarial term) the loss is lower by exactly the term.
    let m0 = trainer(0.0, &z1, &z2)
        .train_step(&mut || real.clone())
        .unwrap();
    assert!(m0.get("loss_g_ms").is_none());
    let gan_term = m.loss_g as f64 - got;
    assert!(
        (gan_term - m0.loss_g as f64).abs() <= 1e-5 * (1.0 + gan_term.abs()),
        "loss_g {} minus the term {got} is not the loss without it, {}",
        m.loss_g,
        m0.loss_g
    );
}
