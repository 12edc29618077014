//! Forward values and gradients through the tape against PyTorch's, case by case, from
//! `fixtures/torch/ops.safetensors` (see `fixtures/torch/README.md`).
//!
//! Every gradient is the tape's vector-Jacobian product for the stored `gy` (`backward_with`),
//! or the plain gradient of a loss (`backward`). Each comparison must satisfy
//! `max |ours - torch| <= 1e-5 * max(1, max |torch|)`; run with `--nocapture` to see the errors.

use gantry_autodiff::tensor::{Conv2dParams, ConvTranspose2dParams, Tensor};
use gantry_autodiff::{Gradients, Reduction, Tape, Var};

mod fixtures;
use fixtures::Fixtures;
use serde_json::Value;

/// Relative tolerance of every comparison (against `max(1, max |reference|)`).
const RTOL: f32 = 1e-5;

/// [`fixtures::assert_close`] at this file's tolerance.
#[track_caller]
fn assert_close(case: &str, key: &str, ours: &Tensor, torch: &Tensor) -> f32 {
    fixtures::assert_close(case, key, ours, torch, RTOL, 1.0)
}

/// An integer setting.
#[track_caller]
fn int(settings: &Value, key: &str) -> usize {
    settings[key]
        .as_u64()
        .unwrap_or_else(|| panic!("setting {key} missing in {settings}")) as usize
}

/// A number setting.
#[track_caller]
fn num(settings: &Value, key: &str) -> f32 {
    settings[key]
        .as_f64()
        .unwrap_or_else(|| panic!("setting {key} missing in {settings}")) as f32
}

/// The gradient of `var`, which must exist.
#[track_caller]
fn grad(grads: &Gradients, var: Var<'_>, name: &str) -> Tensor {
    grads
        .get(var)
        .unwrap_or_else(|| panic!("no gradient for {name}"))
        .clone()
}

#[test]
fn linear() {
    let fx = Fixtures::load("ops");
    let case = "linear";
    let tape = Tape::new();
    let [x, w, b] = ["x", "w", "b"].map(|k| tape.leaf(fx.get(case, k)));
    let y = x.matmul(w.transpose(0, 1)).add(b);
    assert_close(case, "y", &y.value(), &fx.get(case, "y"));
    let grads = y.backward_with(fx.get(case, "gy"));
    for (var, key) in [(x, "gx"), (w, "gw"), (b, "gb")] {
        assert_close(case, key, &grad(&grads, var, key), &fx.get(case, key));
    }
}

/// Runs one convolution case (`transposed` or not) and compares `y`, `gx`, `gw` and `gb`.
fn conv_case(fx: &Fixtures, case: &str, transposed: bool) {
    let s = fx.settings(case);
    let (k, stride, padding) = (int(&s, "kernel"), int(&s, "stride"), int(&s, "padding"));
    let bias = s["bias"].as_bool().expect("bias setting");
    assert_eq!(bias, fx.has(case, "b"), "{case}: bias setting vs tensors");
    let tape = Tape::new();
    let (x, w) = (tape.leaf(fx.get(case, "x")), tape.leaf(fx.get(case, "w")));
    assert_eq!(w.shape()[2..], [k, k], "{case}: kernel size");
    let b = bias.then(|| tape.leaf(fx.get(case, "b")));
    let y = if transposed {
        let p = ConvTranspose2dParams {
            output_padding: [int(&s, "output_padding"); 2],
            ..ConvTranspose2dParams::new(stride, padding)
        };
        x.conv_transpose2d(w, b, p)
    } else {
        x.conv2d(w, b, Conv2dParams::new(stride, padding))
    };
    assert_close(case, "y", &y.value(), &fx.get(case, "y"));
    let grads = y.backward_with(fx.get(case, "gy"));
    assert_close(case, "gx", &grad(&grads, x, "x"), &fx.get(case, "gx"));
    assert_close(case, "gw", &grad(&grads, w, "w"), &fx.get(case, "gw"));
    if let Some(b) = b {
        assert_close(case, "gb", &grad(&grads, b, "b"), &fx.get(case, "gb"));
    }
}

#[test]
fn conv2d() {
    let fx = Fixtures::load("ops");
    let cases = fx.cases("conv2d");
    assert_eq!(cases.len(), 5, "conv2d cases: {cases:?}");
    for case in &cases {
        conv_case(&fx, case, false);
    }
}

#[test]
fn conv_transpose2d() {
    let fx = Fixtures::load("ops");
    let cases = fx.cases("conv_transpose2d");
    assert_eq!(cases.len(), 5, "conv_transpose2d cases: {cases:?}");
    for case in &cases {
        conv_case(&fx, case, true);
    }
}

/// Runs a training-mode batch-norm case: output, gradients, and the running statistics a layer
/// would keep (`running = (1 - momentum) * running + momentum * batch`, with the unbiased
/// variance `var * count / (count - 1)`).
fn batch_norm_train_case(fx: &Fixtures, case: &str) {
    let s = fx.settings(case);
    assert_eq!(s["training"], Value::Bool(true), "{case}");
    let (eps, momentum) = (num(&s, "eps"), num(&s, "momentum"));
    let tape = Tape::new();
    let [x, gamma, beta] = ["x", "gamma", "beta"].map(|k| tape.leaf(fx.get(case, k)));
    let out = x.batch_norm_train(gamma, beta, eps);
    assert_close(case, "y", &out.y.value(), &fx.get(case, "y"));
    let grads = out.y.backward_with(fx.get(case, "gy"));
    for (var, key) in [(x, "gx"), (gamma, "ggamma"), (beta, "gbeta")] {
        assert_close(case, key, &grad(&grads, var, key), &fx.get(case, key));
    }

    let expected_count = x.value().len() / x.shape()[1];
    assert_eq!(out.count, expected_count, "{case}: count");
    let unbiased = out
        .var
        .mul_scalar(out.count as f32 / (out.count - 1) as f32);
    let update = |before: Tensor, batch: &Tensor| {
        before
            .mul_scalar(1.0 - momentum)
            .add(&batch.mul_scalar(momentum))
    };
    let running_mean = update(fx.get(case, "running_mean_before"), &out.mean);
    let running_var = update(fx.get(case, "running_var_before"), &unbiased);
    let torch_mean = fx.get(case, "running_mean_after");
    let torch_var = fx.get(case, "running_var_after");
    assert_close(case, "running_mean_after", &running_mean, &torch_mean);
    assert_close(case, "running_var_after", &running_var, &torch_var);
}

#[test]
fn batch_norm2d_train() {
    batch_norm_train_case(&Fixtures::load("ops"), "batch_norm2d/train");
}

#[test]
fn batch_norm1d_train() {
    batch_norm_train_case(&Fixtures::load("ops"), "batch_norm1d/train");
}

#[test]
fn batch_norm2d_eval() {
    let fx = Fixtures::load("ops");
    let case = "batch_norm2d/eval";
    let s = fx.settings(case);
    assert_eq!(s["training"], Value::Bool(false), "{case}");
    let tape = Tape::new();
    let [x, gamma, beta] = ["x", "gamma", "beta"].map(|k| tape.leaf(fx.get(case, k)));
    let (mean, var) = (fx.get(case, "running_mean"), fx.get(case, "running_var"));
    let y = x.batch_norm_eval(gamma, beta, &mean, &var, num(&s, "eps"));
    assert_close(case, "y", &y.value(), &fx.get(case, "y"));
    let grads = y.backward_with(fx.get(case, "gy"));
    assert_close(case, "gx", &grad(&grads, x, "x"), &fx.get(case, "gx"));
}

#[test]
fn activations() {
    let fx = Fixtures::load("ops");
    let cases = fx.cases("act");
    assert_eq!(cases.len(), 4, "activation cases: {cases:?}");
    for case in &cases {
        let s = fx.settings(case);
        let tape = Tape::new();
        let x = tape.leaf(fx.get(case, "x"));
        let y = match s["op"].as_str().expect("op setting") {
            "relu" => x.relu(),
            "leaky_relu" => x.leaky_relu(num(&s, "negative_slope")),
            "tanh" => x.tanh(),
            "sigmoid" => x.sigmoid(),
            other => panic!("{case}: unknown activation {other}"),
        };
        assert_close(case, "y", &y.value(), &fx.get(case, "y"));
        let grads = y.backward_with(fx.get(case, "gy"));
        assert_close(case, "gx", &grad(&grads, x, "x"), &fx.get(case, "gx"));
    }
}

/// Runs a mean-reduced loss case: `input` is the key of the prediction (`logits` or `pred`),
/// `ginput` of its gradient. Returns the loss and the gradient.
fn loss_case(fx: &Fixtures, case: &str, input: &str, ginput: &str) -> (Tensor, Tensor) {
    let s = fx.settings(case);
    assert_eq!(s["reduction"], "mean", "{case}");
    let tape = Tape::new();
    let pred = tape.leaf(fx.get(case, input));
    let target = fx.get(case, "target");
    let loss = match s["op"].as_str().expect("op setting") {
        "bce_with_logits" => pred.bce_with_logits(&target, Reduction::Mean),
        "l1" => pred.l1_loss(&target, Reduction::Mean),
        "mse" => pred.mse_loss(&target, Reduction::Mean),
        other => panic!("{case}: unknown loss {other}"),
    };
    assert_close(case, "loss", &loss.value(), &fx.get(case, "loss"));
    let g = grad(&loss.backward(), pred, input);
    assert_close(case, ginput, &g, &fx.get(case, ginput));
    (loss.value(), g)
}

#[test]
fn bce_with_logits() {
    let fx = Fixtures::load("ops");
    for kind in ["hard", "soft", "extreme"] {
        let case = format!("loss/bce_with_logits_{kind}");
        let (loss, g) = loss_case(&fx, &case, "logits", "glogits");
        assert!(loss.all_finite() && g.all_finite(), "{case}: not finite");
    }
}

#[test]
fn l1_and_mse() {
    let fx = Fixtures::load("ops");
    loss_case(&fx, "loss/l1", "pred", "gpred");
    loss_case(&fx, "loss/mse", "pred", "gpred");
}

#[test]
fn every_op_case_is_covered() {
    // A case added to the fixtures without a test here should not go unnoticed.
    let fx = Fixtures::load("ops");
    let covered = [
        "linear",
        "conv2d/",
        "conv_transpose2d/",
        "batch_norm2d/train",
        "batch_norm1d/train",
        "batch_norm2d/eval",
        "act/",
        "loss/",
        "optim/", // optimizers are gantry-nn's to check
    ];
    for case in fx.all_cases() {
        assert!(
            covered
                .iter()
                .any(|c| case == *c || (c.ends_with('/') && case.starts_with(c))),
            "fixture case {case} has no parity test"
        );
    }
}
