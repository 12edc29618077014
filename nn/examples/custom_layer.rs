//! Minibatch standard deviation (Karras et al., "Progressive Growing of GANs", 2018, section 3),
//! first written here as a layer outside `gantry-nn` and since promoted to
//! [`gantry_nn::MinibatchStdDev`] (with the paper's groups); `custom_module.rs` now shows a
//! model built outside the crate.
//!
//! A discriminator that sees one sample at a time cannot tell a collapsed generator (every
//! sample nearly the same) from a healthy one when each sample on its own looks real. The layer
//! gives it a statistic of the whole batch: the standard deviation of every feature over the
//! batch, averaged into one number, appended to each sample as an extra feature (channel).
//!
//! The example checks the layer's gradient with `gantry_autodiff::gradcheck`, then trains a
//! tiny critic to tell diverse batches from collapsed ones, with and without the layer.
//!
//! ```text
//! cargo run -p gantry-nn --example custom_layer
//! cargo test -p gantry-nn --example custom_layer
//! ```

use gantry_autodiff::{GradcheckConfig, Reduction, Tape, Var, gradcheck};
use gantry_nn::optim::{AdamConfig, Optimizer};
use gantry_nn::{
    LeakyReLU, Linear, LinearConfig, MinibatchStdDev, Mode, Module, Param, join, loss,
};
use gantry_tensor::Tensor;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// A two-layer critic on 2-D points, optionally with the batch statistic: names
/// `hidden.weight`, `hidden.bias`, `out.weight`, `out.bias`.
struct Critic {
    mbstd: Option<MinibatchStdDev>,
    hidden: Linear,
    act: LeakyReLU,
    out: Linear,
}

impl Critic {
    fn new(with_mbstd: bool, rng: &mut StdRng) -> Critic {
        let inputs = if with_mbstd { 3 } else { 2 };
        Critic {
            mbstd: with_mbstd.then(MinibatchStdDev::default),
            hidden: LinearConfig::new(inputs, 16).build(rng).unwrap(),
            act: LeakyReLU::new(0.2),
            out: LinearConfig::new(16, 1).build(rng).unwrap(),
        }
    }
}

impl Module for Critic {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        self.hidden.visit(&join(prefix, "hidden"), f);
        self.out.visit(&join(prefix, "out"), f);
    }

    fn forward<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        let x = match &self.mbstd {
            Some(m) => m.forward(x, mode),
            None => x,
        };
        let h = self.act.forward(self.hidden.forward(x, mode), mode);
        self.out.forward(h, mode)
    }
}

/// A batch of `n` points: diverse (`N(0, I)`) or collapsed (one random centre plus tiny noise).
/// Each point on its own is distributed nearly alike in both cases.
fn toy_batch(n: usize, collapsed: bool, rng: &mut StdRng) -> Tensor {
    if collapsed {
        let centre = Tensor::randn(&[1, 2], 0.0, 1.0, rng);
        Tensor::randn(&[n, 2], 0.0, 0.05, rng).add(&centre)
    } else {
        Tensor::randn(&[n, 2], 0.0, 1.0, rng)
    }
}

/// Checks the layer's gradient against finite differences on a 4-D input.
fn check_gradient() -> usize {
    let mut rng = StdRng::seed_from_u64(0);
    let x = Tensor::randn(&[4, 3, 2, 2], 0.0, 1.0, &mut rng);
    let layer = MinibatchStdDev::default();
    gradcheck(
        |_, v| layer.forward(v[0], Mode::Train),
        &[x],
        &GradcheckConfig::default(),
    )
    .expect("the layer's gradient matches finite differences")
}

/// Trains a critic to output 1 on diverse batches and 0 on collapsed ones; returns the loss
/// per logged step (every 25 steps and the last).
fn train(with_mbstd: bool, steps: usize, verbose: bool) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(1);
    let critic = Critic::new(with_mbstd, &mut rng);
    let mut opt = AdamConfig {
        lr: 0.01,
        ..Default::default()
    }
    .build();
    let n = 16;
    let mut losses = Vec::new();
    for step in 0..steps {
        let tape = Tape::new();
        let mut total = None;
        for (collapsed, label) in [(false, 1.0), (true, 0.0)] {
            // The statistic is per batch, so each batch goes through on its own.
            let x = tape.constant(toy_batch(n, collapsed, &mut rng));
            let logits = critic.forward(x, Mode::Train);
            let l =
                loss::bce_with_logits(logits, &loss::full_like(&logits, label), Reduction::Mean)
                    .mul_scalar(0.5);
            total = Some(match total {
                None => l,
                Some(t) => l.add(t),
            });
        }
        let total = total.expect("two batches");
        let value = total.value().item();
        opt.step(&critic, &total.backward()).unwrap();
        if step % 25 == 0 || step + 1 == steps {
            if verbose {
                println!("  step {step:4}  loss {value:.4}");
            }
            losses.push(value);
        }
    }
    losses
}

fn main() {
    println!(
        "{}: gradcheck passed on {} coordinates",
        MinibatchStdDev::default().describe(),
        check_gradient()
    );
    println!("critic with minibatch stddev:");
    let with = train(true, 200, true);
    println!("critic without it:");
    let without = train(false, 200, true);
    println!(
        "final loss {:.4} with the layer, {:.4} without (ln 2 = {:.4} is chance)",
        with.last().unwrap(),
        without.last().unwrap(),
        std::f32::consts::LN_2
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_matches_finite_differences() {
        assert!(check_gradient() >= 48);
    }

    #[test]
    fn appends_the_average_standard_deviation() {
        let tape = Tape::new();
        // Two samples of two features: stds 1 and 3 over the batch, average 2.
        let x = tape.constant(Tensor::from_vec(&[2, 2], vec![0.0, 1.0, 2.0, 7.0]));
        let y = MinibatchStdDev {
            eps: 0.0,
            group_size: None,
        }
        .forward(x, Mode::Eval);
        assert_eq!(y.shape(), [2, 3]);
        assert_eq!(y.value().to_vec(), vec![0.0, 1.0, 2.0, 2.0, 7.0, 2.0]);
    }

    #[test]
    fn the_batch_statistic_separates_collapsed_batches() {
        let tail = |l: &[f32]| l[l.len() - 3..].iter().sum::<f32>() / 3.0;
        let with = train(true, 200, false);
        let without = train(false, 200, false);
        assert!(with[0] > 0.5, "starts near chance: {with:?}");
        assert!(tail(&with) < 0.1, "learns with the layer: {with:?}");
        assert!(tail(&without) > 0.5, "cannot without it: {without:?}");
    }
}
