//! An op defined outside `gantry-autodiff`: SiLU (`x · σ(x)`, the "swish" activation), with
//! its forward, its backward on tensors, and its backward again in recorded ops so that a
//! gradient through it can be differentiated a second time. The example checks both
//! derivatives with the public checkers, then trains a small network with it under a
//! gradient penalty (the shape of WGAN-GP's and R1's), which needs the second derivative.
//!
//! Run it with `cargo run -p gantry-autodiff --example custom_op`.

use gantry_autodiff::tensor::Tensor;
use gantry_autodiff::{
    CreateGraph, CustomOp, GradcheckConfig, Tape, Var, gradcheck, gradgradcheck,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// `silu(x) = x σ(x)`; `silu'(x) = σ(x) (1 + x (1 - σ(x)))`.
struct Silu;

impl CustomOp for Silu {
    fn name(&self) -> &str {
        "silu"
    }

    fn forward(&self, inputs: &[&Tensor]) -> Tensor {
        inputs[0].mul(&inputs[0].sigmoid())
    }

    fn backward(&self, inputs: &[&Tensor], _y: &Tensor, gy: &Tensor) -> Vec<Option<Tensor>> {
        let x = inputs[0];
        let s = x.sigmoid();
        let slope = s.mul(&x.mul(&s.neg().add_scalar(1.0)).add_scalar(1.0));
        vec![Some(gy.mul(&slope))]
    }

    /// The same formula in `Var` ops: recorded, hence differentiable again.
    fn backward_graph<'t>(
        &self,
        inputs: &[Var<'t>],
        _y: Var<'t>,
        gy: Var<'t>,
    ) -> Option<Vec<Option<Var<'t>>>> {
        let x = inputs[0];
        let s = x.sigmoid();
        let slope = s.mul(x.mul(s.neg().add_scalar(1.0)).add_scalar(1.0));
        Some(vec![Some(gy.mul(slope))])
    }
}

/// `x -> silu(x W1ᵀ + b1) W2ᵀ`: a one-hidden-layer network using the custom op.
fn network<'t>(x: Var<'t>, w: &[Var<'t>]) -> Var<'t> {
    Var::custom(Silu, &[x.linear(w[0], Some(w[1]))]).linear(w[2], None)
}

/// Checks SiLU's first and second derivatives, then trains; returns the first and last
/// losses.
pub fn run() -> (f32, f32) {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let x = Tensor::rand_uniform(&[3, 4], -2.0, 2.0, &mut rng);
    let cfg = GradcheckConfig::default();
    let first = gradcheck(
        |_, v| Var::custom(Silu, &[v[0]]),
        std::slice::from_ref(&x),
        &cfg,
    )
    .expect("SiLU's gradient matches finite differences");
    let second = gradgradcheck(|_, v| Var::custom(Silu, &[v[0]]), &[x], &cfg)
        .expect("SiLU's second derivative matches finite differences");
    println!("silu: {first} first-order and {second} second-order coordinates checked");

    // Fit y = sin(x₀) + x₁ / 2 while keeping ‖∂f/∂x‖² small on the data: the penalty's
    // gradient with respect to the weights goes through SiLU's second derivative.
    let data = Tensor::rand_uniform(&[64, 2], -2.0, 2.0, &mut rng);
    let target = Tensor::from_vec(
        &[64, 1],
        data.to_vec()
            .chunks(2)
            .map(|p| p[0].sin() + 0.5 * p[1])
            .collect(),
    );
    let mut weights = [
        Tensor::rand_uniform(&[16, 2], -0.7, 0.7, &mut rng),
        Tensor::zeros(&[16]),
        Tensor::rand_uniform(&[1, 16], -0.25, 0.25, &mut rng),
    ];
    let (lr, penalty_weight) = (0.05, 0.01);
    let mut losses = Vec::new();
    for step in 0..300 {
        let tape = Tape::new();
        let w: Vec<Var> = weights.iter().map(|t| tape.leaf(t.clone())).collect();
        let input = tape.leaf(data.clone());
        let out = network(input, &w);
        let fit = out.mse_loss(&target, Default::default());
        let grad_x = tape
            .grad(&[out], &[input], CreateGraph::Yes)
            .expect("silu has a second derivative")[0];
        let penalty = grad_x.mul(grad_x).sum_axes(&[1], false).mean();
        let loss = fit.add(penalty.mul_scalar(penalty_weight));
        let grads = loss.backward();
        for (t, v) in weights.iter_mut().zip(&w) {
            *t = t.sub(&grads.get(*v).expect("every weight is used").mul_scalar(lr));
        }
        losses.push(loss.value().item());
        if step % 100 == 0 {
            println!(
                "step {step:3}: loss {:.4} (penalty {:.4})",
                losses[step],
                penalty.value().item()
            );
        }
    }
    let last = *losses.last().expect("trained");
    println!("step 299: loss {last:.4}");
    (losses[0], last)
}

#[allow(dead_code)] // the tests call `run` directly
fn main() {
    let (first, last) = run();
    assert!(
        last < first / 4.0,
        "training with the custom op did not learn"
    );
}
