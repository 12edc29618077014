//! Gradients of gradients against PyTorch (`fixtures/torch/autodiff.safetensors`, written by
//! `fixtures/torch/gen_autodiff.py`): a WGAN-GP critic step, an R1 step, and a network of
//! transposed conv, tanh, sigmoid, linear, pow and sqrt whose input gradient's squared norm is
//! differentiated with respect to every weight. Each penalty is built from a gradient recorded
//! with `CreateGraph::Yes`, as with `torch.autograd.grad(..., create_graph=True)`.
//!
//! Every comparison must satisfy `max |ours - torch| <= 5e-6 * max(1e-3, max |torch|)`: relative
//! to the reference's own scale, since some of these gradients are of order 1e-4.

mod fixtures;

use fixtures::Fixtures;
use gantry_autodiff::tensor::{Conv2dParams, ConvTranspose2dParams, Tensor};
use gantry_autodiff::{CreateGraph, Gradients, Tape, Var};

/// Relative tolerance of every comparison here, against the reference's largest magnitude
/// (the largest error seen on an AVX-512 machine is 9e-7 of it).
const RTOL: f32 = 5e-6;

/// The smallest scale a tolerance is taken against (for an all-zero reference).
const FLOOR: f32 = 1e-3;

#[track_caller]
fn close(case: &str, key: &str, ours: &Tensor, fx: &Fixtures) {
    fixtures::assert_close(case, key, ours, &fx.get(case, key), RTOL, FLOOR);
}

#[test]
fn every_second_order_case_is_covered() {
    let cases = Fixtures::load("autodiff").all_cases();
    assert_eq!(
        cases,
        ["mixed", "r1", "wgan_gp"],
        "a fixture case without a test"
    );
}

/// The critic's weights as leaves, in PyTorch's state-dict names.
struct Critic<'t> {
    w: Vec<(String, Var<'t>)>,
}

impl<'t> Critic<'t> {
    const NAMES: [&'static str; 6] = [
        "0.weight", "0.bias", "2.weight", "2.bias", "5.weight", "5.bias",
    ];

    fn load(tape: &'t Tape, fx: &Fixtures, case: &str) -> Self {
        let w = Self::NAMES
            .iter()
            .map(|n| (n.to_string(), tape.leaf(fx.get(case, &format!("w.{n}")))))
            .collect();
        Critic { w }
    }

    fn get(&self, name: &str) -> Var<'t> {
        self.w.iter().find(|(n, _)| n == name).expect("a weight").1
    }

    /// conv(k4 s2 p1) -> lrelu 0.2 -> conv(k4 s2 p1) -> lrelu 0.2 -> flatten -> linear.
    fn forward(&self, x: Var<'t>) -> Var<'t> {
        let p = Conv2dParams {
            stride: [2, 2],
            padding: [1, 1],
            dilation: [1, 1],
        };
        let h = x
            .conv2d(self.get("0.weight"), Some(self.get("0.bias")), p)
            .leaky_relu(0.2);
        let h = h
            .conv2d(self.get("2.weight"), Some(self.get("2.bias")), p)
            .leaky_relu(0.2);
        h.flatten()
            .linear(self.get("5.weight"), Some(self.get("5.bias")))
    }

    fn check_grads(&self, case: &str, grads: &Gradients, fx: &Fixtures) {
        for (name, var) in &self.w {
            let g = grads
                .get(*var)
                .unwrap_or_else(|| panic!("{case}: no gradient for {name}"));
            close(case, &format!("grad.{name}"), g, fx);
        }
    }
}

/// `‖g‖₂` per sample of a `[N, ...]` gradient.
fn norms<'t>(g: Var<'t>) -> Var<'t> {
    g.mul(g).flatten().sum_axes(&[1], false).sqrt()
}

#[test]
fn wgan_gp_critic_step_matches_pytorch() {
    let fx = Fixtures::load("autodiff");
    let case = "wgan_gp";
    let tape = Tape::new();
    let critic = Critic::load(&tape, &fx, case);
    let (real, fake, eps) = (
        fx.get(case, "real"),
        fx.get(case, "fake"),
        fx.get(case, "eps"),
    );
    // x̂ = ε real + (1 - ε) fake, a leaf of its own so that D's gradient at it can be taken.
    let x_hat = tape.leaf(eps.mul(&real).add(&eps.neg().add_scalar(1.0).mul(&fake)));
    close(case, "x_hat", &x_hat.value(), &fx);
    let d_hat = critic.forward(x_hat);
    let g = tape.grad(&[d_hat], &[x_hat], CreateGraph::Yes).unwrap()[0];
    close(case, "grad_x_hat", &g.value(), &fx);
    let norm = norms(g);
    close(case, "norm", &norm.value(), &fx);
    let gp = norm.add_scalar(-1.0).powf(2.0).mean().mul_scalar(10.0);
    close(case, "gp", &gp.value(), &fx);
    let d_real = critic.forward(tape.constant(real));
    let d_fake = critic.forward(tape.constant(fake));
    close(case, "d_real", &d_real.value(), &fx);
    close(case, "d_fake", &d_fake.value(), &fx);
    let loss = d_fake.mean().sub(d_real.mean()).add(gp);
    close(case, "loss", &loss.value(), &fx);
    critic.check_grads(case, &loss.backward(), &fx);
}

#[test]
fn r1_step_matches_pytorch() {
    let fx = Fixtures::load("autodiff");
    let case = "r1";
    let tape = Tape::new();
    let critic = Critic::load(&tape, &fx, case);
    let real = tape.leaf(fx.get(case, "real"));
    let fake = tape.constant(fx.get(case, "fake"));
    let d_real = critic.forward(real);
    let g = tape.grad(&[d_real], &[real], CreateGraph::Yes).unwrap()[0];
    close(case, "grad_real", &g.value(), &fx);
    let r1 = g.mul(g).flatten().sum_axes(&[1], false).mean();
    close(case, "r1", &r1.value(), &fx);
    let d_fake = critic.forward(fake);
    let adv = d_real.neg().softplus().mean().add(d_fake.softplus().mean());
    close(case, "adv", &adv.value(), &fx);
    let loss = adv.add(r1.mul_scalar(10.0 / 2.0));
    close(case, "loss", &loss.value(), &fx);
    critic.check_grads(case, &loss.backward(), &fx);
}

#[test]
fn second_order_through_transposed_conv_tanh_sigmoid_linear_matches_pytorch() {
    let fx = Fixtures::load("autodiff");
    let case = "mixed";
    let tape = Tape::new();
    let names = [
        "up.weight",
        "up.bias",
        "down.weight",
        "down.bias",
        "head.weight",
        "head.bias",
    ];
    let w: Vec<Var> = names
        .iter()
        .map(|n| tape.leaf(fx.get(case, &format!("w.{n}"))))
        .collect();
    let x = tape.leaf(fx.get(case, "x"));
    let up = ConvTranspose2dParams {
        stride: [2, 2],
        padding: [1, 1],
        output_padding: [0, 0],
        dilation: [1, 1],
    };
    let same = Conv2dParams {
        stride: [1, 1],
        padding: [1, 1],
        dilation: [1, 1],
    };
    let h = x.conv_transpose2d(w[0], Some(w[1]), up).tanh();
    let h = h.conv2d(w[2], Some(w[3]), same).sigmoid();
    let y = h.flatten().linear(w[4], Some(w[5]));
    let out = y.powf(2.0).add_scalar(1.0).sqrt().sum();
    close(case, "out", &out.value(), &fx);
    let gx = tape.grad(&[out], &[x], CreateGraph::Yes).unwrap()[0];
    close(case, "grad_x", &gx.value(), &fx);
    let loss = gx.powf(2.0).sum();
    close(case, "loss", &loss.value(), &fx);
    let grads = loss.backward();
    for (name, var) in names.iter().zip(&w) {
        let g = grads
            .get(*var)
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        close(case, &format!("grad.{name}"), g, &fx);
    }
}
