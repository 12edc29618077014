//! Parity with PyTorch for the layers, losses and optimizers of this crate, against
//! `fixtures/torch/ops.safetensors` (float32, CPU; see the README beside it): `Linear`,
//! `BatchNorm` in both modes (including the running-statistics update), the activation layers,
//! `loss::*`, Adam and SGD with momentum. The convolution kernels are checked in
//! `tensor/tests/torch_parity.rs`.
//!
//! Each quantity must satisfy `max |ours - torch| <= TOL * max(1, max |torch|)`. Run with
//! `--nocapture` to see the measured errors.

mod common;

use common::{Fixtures, Report, setting_f32};
use gantry_autodiff::{Reduction, Tape};
use gantry_nn::optim::{AdamConfig, Optimizer, SgdConfig};
use gantry_nn::{
    BatchNormConfig, LeakyReLU, LinearConfig, Mode, Module, Param, ParamRole, ReLU, Sigmoid, Tanh,
    join, loss,
};
use rand::SeedableRng;

/// Tolerance of the linear layer (a 7-term dot product in f32).
const LINEAR_TOL: f32 = 1e-6;
/// Tolerance of the optimizer trajectories (three steps; Adam's bias corrections are computed
/// in f32 here and in f64 by PyTorch).
const OPTIM_TOL: f32 = 5e-7;

#[test]
fn linear_layer_matches_pytorch() {
    let fx = Fixtures::open("ops.safetensors");
    let case = "linear";
    let (x, w, b, gy) = (
        fx.get(case, "x"),
        fx.get(case, "w"),
        fx.get(case, "b"),
        fx.get(case, "gy"),
    );
    let (out_f, in_f) = (w.shape()[0], w.shape()[1]);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let layer = LinearConfig::new(in_f, out_f).build(&mut rng).unwrap();
    layer.weight.set(w);
    layer.bias.as_ref().expect("bias by default").set(b);

    let tape = Tape::new();
    let xv = tape.leaf(x);
    let y = layer.forward(xv, Mode::Train);
    let mut report = Report::default();
    report.check("linear y", &y.value(), &fx.get(case, "y"), LINEAR_TOL);
    let grads = y.backward_with(gy);
    let gw = grads.get_key(layer.weight.id().0).expect("weight gradient");
    let gb = grads
        .get_key(layer.bias.as_ref().unwrap().id().0)
        .expect("bias gradient");
    report.check(
        "linear gx",
        grads.get(xv).unwrap(),
        &fx.get(case, "gx"),
        LINEAR_TOL,
    );
    report.check("linear gw", gw, &fx.get(case, "gw"), LINEAR_TOL);
    report.check("linear gb", gb, &fx.get(case, "gb"), LINEAR_TOL);
    report.finish();
}

/// A module holding one trainable parameter, named `p`.
struct OneParam {
    p: Param,
}

impl Module for OneParam {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        f(&join(prefix, "p"), &self.p);
    }

    fn forward<'t>(&self, x: gantry_autodiff::Var<'t>, _mode: Mode) -> gantry_autodiff::Var<'t> {
        x.mul(self.p.var(x.tape()))
    }
}

/// Runs the three recorded steps of `case` with `opt`: the loss `Σ p · g` has gradient
/// exactly `g`, so the optimizer sees PyTorch's gradients.
fn run_optimizer_case(fx: &Fixtures, case: &str, opt: &mut dyn Optimizer, report: &mut Report) {
    let p0 = fx.get(case, "p0");
    let module = OneParam {
        p: Param::trainable(p0, ParamRole::Other),
    };
    for step in 1..=3 {
        let g = fx.get(case, &format!("g{step}"));
        let tape = Tape::new();
        let loss = module.forward(tape.constant(g.clone()), Mode::Train).sum();
        let grads = loss.backward();
        assert_eq!(
            grads.get_key(module.p.id().0).unwrap().to_vec(),
            g.to_vec(),
            "the gradient of sum(p * g) is g"
        );
        opt.step(&module, &grads).unwrap();
        let want = fx.get(case, &format!("p{step}"));
        report.check(
            &format!("{case} p{step}"),
            &module.p.value(),
            &want,
            OPTIM_TOL,
        );
    }
}

#[test]
fn adam_matches_pytorch() {
    let fx = Fixtures::open("ops.safetensors");
    let mut report = Report::default();
    for case in ["optim/adam_dcgan", "optim/adam_default"] {
        let s = fx.settings(case);
        assert_eq!(s["op"], "adam", "{case}");
        let config = AdamConfig {
            lr: setting_f32(&s, "lr"),
            beta1: setting_f32(&s, "beta1"),
            beta2: setting_f32(&s, "beta2"),
            eps: setting_f32(&s, "eps"),
            weight_decay: setting_f32(&s, "weight_decay"),
        };
        if case.ends_with("dcgan") {
            assert_eq!(
                config,
                AdamConfig::dcgan(),
                "the DCGAN preset is the fixture's"
            );
        } else {
            assert_eq!(config, AdamConfig::default(), "the default is PyTorch's");
        }
        run_optimizer_case(&fx, case, &mut config.build(), &mut report);
    }
    report.finish();
}

#[test]
fn sgd_momentum_matches_pytorch() {
    let fx = Fixtures::open("ops.safetensors");
    let case = "optim/sgd_momentum";
    let s = fx.settings(case);
    let mut config = SgdConfig::new(setting_f32(&s, "lr")).momentum(setting_f32(&s, "momentum"));
    config.dampening = setting_f32(&s, "dampening");
    config.nesterov = s["nesterov"].as_bool().expect("nesterov setting");
    let mut report = Report::default();
    run_optimizer_case(&fx, case, &mut config.build(), &mut report);
    report.finish();
}

/// Tolerance of the layer-level batch norm, activation and loss cases.
const LAYER_TOL: f32 = 1e-6;

#[test]
fn batch_norm_layer_matches_pytorch() {
    let fx = Fixtures::open("ops.safetensors");
    let mut report = Report::default();
    for case in [
        "batch_norm2d/train",
        "batch_norm1d/train",
        "batch_norm2d/eval",
    ] {
        let s = fx.settings(case);
        let train = s["training"].as_bool().expect("training setting");
        let gamma = fx.get(case, "gamma");
        // The fixture uses PyTorch's defaults, which must be the config's.
        let config = BatchNormConfig::new(gamma.len());
        assert_eq!(config.eps, setting_f32(&s, "eps"), "{case}: eps");
        if train {
            assert_eq!(
                config.momentum,
                setting_f32(&s, "momentum"),
                "{case}: momentum"
            );
        }
        let bn = config.build().unwrap();
        bn.weight.set(gamma);
        bn.bias.set(fx.get(case, "beta"));
        let (mean_key, var_key) = if train {
            ("running_mean_before", "running_var_before")
        } else {
            ("running_mean", "running_var")
        };
        bn.running_mean.set(fx.get(case, mean_key));
        bn.running_var.set(fx.get(case, var_key));

        let tape = Tape::new();
        let x = tape.leaf(fx.get(case, "x"));
        let mode = if train { Mode::Train } else { Mode::Eval };
        let y = bn.forward(x, mode);
        report.check(
            &format!("{case} y"),
            &y.value(),
            &fx.get(case, "y"),
            LAYER_TOL,
        );
        let grads = y.backward_with(fx.get(case, "gy"));
        report.check(
            &format!("{case} gx"),
            grads.get(x).unwrap(),
            &fx.get(case, "gx"),
            LAYER_TOL,
        );
        if train {
            let g = |p: &Param| grads.get_key(p.id().0).unwrap().clone();
            report.check(
                &format!("{case} ggamma"),
                &g(&bn.weight),
                &fx.get(case, "ggamma"),
                LAYER_TOL,
            );
            report.check(
                &format!("{case} gbeta"),
                &g(&bn.bias),
                &fx.get(case, "gbeta"),
                LAYER_TOL,
            );
            let after = |k: &str| fx.get(case, k);
            report.check(
                &format!("{case} running_mean"),
                &bn.running_mean.value(),
                &after("running_mean_after"),
                LAYER_TOL,
            );
            report.check(
                &format!("{case} running_var"),
                &bn.running_var.value(),
                &after("running_var_after"),
                LAYER_TOL,
            );
        } else {
            assert_eq!(
                bn.running_var.value().to_vec(),
                fx.get(case, "running_var").to_vec(),
                "evaluation leaves the statistics alone"
            );
        }
    }
    report.finish();
}

#[test]
fn activation_layers_match_pytorch() {
    let fx = Fixtures::open("ops.safetensors");
    let slope = setting_f32(&fx.settings("act/leaky_relu"), "negative_slope");
    let layers: [(&str, Box<dyn Module>); 4] = [
        ("act/relu", Box::new(ReLU)),
        ("act/leaky_relu", Box::new(LeakyReLU::new(slope))),
        ("act/tanh", Box::new(Tanh)),
        ("act/sigmoid", Box::new(Sigmoid)),
    ];
    let mut report = Report::default();
    for (case, layer) in &layers {
        let tape = Tape::new();
        let x = tape.leaf(fx.get(case, "x"));
        let y = layer.forward(x, Mode::Train);
        report.check(
            &format!("{case} y"),
            &y.value(),
            &fx.get(case, "y"),
            LAYER_TOL,
        );
        let grads = y.backward_with(fx.get(case, "gy"));
        report.check(
            &format!("{case} gx"),
            grads.get(x).unwrap(),
            &fx.get(case, "gx"),
            LAYER_TOL,
        );
    }
    report.finish();
}

#[test]
fn losses_match_pytorch() {
    let fx = Fixtures::open("ops.safetensors");
    let mut report = Report::default();
    let cases: [(&str, &str, &str, &str); 5] = [
        (
            "loss/bce_with_logits_hard",
            "logits",
            "glogits",
            "bce_with_logits",
        ),
        (
            "loss/bce_with_logits_soft",
            "logits",
            "glogits",
            "bce_with_logits",
        ),
        (
            "loss/bce_with_logits_extreme",
            "logits",
            "glogits",
            "bce_with_logits",
        ),
        ("loss/l1", "pred", "gpred", "l1"),
        ("loss/mse", "pred", "gpred", "mse"),
    ];
    for (case, input, grad, op) in cases {
        let s = fx.settings(case);
        assert_eq!(s["op"], op, "{case}");
        assert_eq!(s["reduction"], "mean", "{case}");
        let target = fx.get(case, "target");
        let tape = Tape::new();
        let x = tape.leaf(fx.get(case, input));
        let l = match op {
            "bce_with_logits" => loss::bce_with_logits(x, &target, Reduction::Mean),
            "l1" => loss::l1(x, &target, Reduction::Mean),
            _ => loss::mse(x, &target, Reduction::Mean),
        };
        let want = fx.get(case, "loss");
        report.check(&format!("{case} loss"), &l.value(), &want, LAYER_TOL);
        let grads = l.backward();
        // Relative to the gradient's own size (mean reduction makes it small).
        report.check_rel(
            &format!("{case} {grad}"),
            grads.get(x).unwrap(),
            &fx.get(case, grad),
            LAYER_TOL,
        );
        assert!(l.value().all_finite(), "{case}: finite loss");
    }
    report.finish();
}
