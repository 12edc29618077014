//! Parity with PyTorch: the convolution kernels, their gradients, the activations and a linear
//! layer composed from tensor ops, against `fixtures/torch/ops.safetensors` (float32, CPU).
//!
//! Every quantity must satisfy `max |ours - torch| <= 1e-5 * max(1, max |torch|)`. Run with
//! `--nocapture` to see the measured errors.

mod common;

use common::{Fixtures, OPS_PATH, max_errors};
use gantry_tensor::{Conv2dParams, ConvTranspose2dParams, Tensor};

/// The largest allowed error relative to `max(1, max |reference|)`.
const REL_TOL: f32 = 1e-5;

/// Collects the errors of one test's comparisons, prints them, and fails once at the end
/// listing every comparison over tolerance.
#[derive(Default)]
struct Report {
    failures: Vec<String>,
    compared: usize,
}

impl Report {
    /// Compares `got` with the reference `want` for `case`/`key`.
    #[track_caller]
    fn check(&mut self, case: &str, key: &str, got: &Tensor, want: &Tensor) {
        assert_eq!(got.shape(), want.shape(), "{case}/{key}: shape");
        let (diff, scale) = max_errors(got, want);
        let rel = diff / scale.max(1.0);
        println!("{case:32} {key:3} max|diff| {diff:9.3e}  max|ref| {scale:9.3e}  rel {rel:9.3e}");
        self.compared += 1;
        if rel > REL_TOL || rel.is_nan() {
            self.failures.push(format!(
                "{case}/{key}: relative error {rel:e} > {REL_TOL:e}"
            ));
        }
    }

    /// Fails if any comparison was over tolerance or none was made.
    #[track_caller]
    fn finish(self) {
        assert!(self.compared > 0, "no comparison was made");
        assert!(self.failures.is_empty(), "{}", self.failures.join("\n"));
    }
}

/// Reads a non-negative integer setting, `default` when absent.
#[track_caller]
fn setting(s: &serde_json::Value, key: &str, default: usize) -> usize {
    match s.get(key) {
        None => default,
        Some(v) => {
            v.as_u64()
                .unwrap_or_else(|| panic!("setting {key} = {v} is not a size")) as usize
        }
    }
}

/// The bias gradient PyTorch stores: `gy` summed over batch and space.
fn bias_grad(gy: &Tensor) -> Tensor {
    gy.sum_axes(&[0, 2, 3], false)
}

#[test]
fn conv2d_matches_pytorch() {
    let fx = Fixtures::open(OPS_PATH);
    let cases = fx.cases("conv2d/");
    assert!(
        cases.len() >= 5,
        "expected the 5 conv2d cases, found {cases:?}"
    );
    let mut report = Report::default();
    for case in &cases {
        let s = fx.settings(case);
        let (k, stride, pad) = (
            setting(&s, "kernel", 0),
            setting(&s, "stride", 1),
            setting(&s, "padding", 0),
        );
        let has_bias = s["bias"].as_bool().expect("bias setting");
        let (x, w, gy) = (fx.get(case, "x"), fx.get(case, "w"), fx.get(case, "gy"));
        assert_eq!(
            &w.shape()[2..],
            &[k, k],
            "{case}: kernel setting and weight disagree"
        );
        let b = has_bias.then(|| fx.get(case, "b"));
        let p = Conv2dParams::new(stride, pad);
        let hw = [x.shape()[2], x.shape()[3]];
        report.check(case, "y", &x.conv2d(&w, b.as_ref(), p), &fx.get(case, "y"));
        report.check(
            case,
            "gx",
            &gy.conv2d_grad_input(&w, hw, p),
            &fx.get(case, "gx"),
        );
        report.check(
            case,
            "gw",
            &x.conv2d_grad_weight(&gy, [k, k], p),
            &fx.get(case, "gw"),
        );
        if has_bias {
            report.check(case, "gb", &bias_grad(&gy), &fx.get(case, "gb"));
        }
    }
    report.finish();
}

#[test]
fn conv_transpose2d_matches_pytorch() {
    let fx = Fixtures::open(OPS_PATH);
    let cases = fx.cases("conv_transpose2d/");
    assert!(
        cases.len() >= 5,
        "expected the 5 conv_transpose2d cases, found {cases:?}"
    );
    let mut report = Report::default();
    for case in &cases {
        let s = fx.settings(case);
        let k = setting(&s, "kernel", 0);
        let p = ConvTranspose2dParams {
            output_padding: [setting(&s, "output_padding", 0); 2],
            ..ConvTranspose2dParams::new(setting(&s, "stride", 1), setting(&s, "padding", 0))
        };
        let has_bias = s["bias"].as_bool().expect("bias setting");
        let (x, w, gy) = (fx.get(case, "x"), fx.get(case, "w"), fx.get(case, "gy"));
        assert_eq!(
            &w.shape()[2..],
            &[k, k],
            "{case}: kernel setting and weight disagree"
        );
        let b = has_bias.then(|| fx.get(case, "b"));
        report.check(
            case,
            "y",
            &x.conv_transpose2d(&w, b.as_ref(), p),
            &fx.get(case, "y"),
        );
        report.check(
            case,
            "gx",
            &gy.conv_transpose2d_grad_input(&w, p),
            &fx.get(case, "gx"),
        );
        report.check(
            case,
            "gw",
            &x.conv_transpose2d_grad_weight(&gy, [k, k], p),
            &fx.get(case, "gw"),
        );
        if has_bias {
            report.check(case, "gb", &bias_grad(&gy), &fx.get(case, "gb"));
        }
    }
    report.finish();
}

/// The activations' forward values, and their input gradients composed from tensor ops the way
/// the autodiff crate's backward rules are (`relu'(x) = [x > 0]`, `tanh' = 1 - y^2`,
/// `sigmoid' = y (1 - y)`).
#[test]
fn activations_match_pytorch() {
    let fx = Fixtures::open(OPS_PATH);
    let cases = fx.cases("act/");
    assert_eq!(
        cases.len(),
        4,
        "expected relu, leaky_relu, tanh and sigmoid, found {cases:?}"
    );
    let mut report = Report::default();
    for case in &cases {
        let s = fx.settings(case);
        let (x, gy) = (fx.get(case, "x"), fx.get(case, "gy"));
        let zero = Tensor::scalar(0.0);
        let one = Tensor::scalar(1.0);
        let (y, dy_dx) = match s["op"].as_str().expect("op setting") {
            "relu" => (x.relu(), x.gt(&zero)),
            "leaky_relu" => {
                let slope = s["negative_slope"].as_f64().expect("negative_slope") as f32;
                (
                    x.leaky_relu(slope),
                    x.gt(&zero).add(&x.le(&zero).mul_scalar(slope)),
                )
            }
            "tanh" => {
                let y = x.tanh();
                let d = one.sub(&y.mul(&y));
                (y, d)
            }
            "sigmoid" => {
                let y = x.sigmoid();
                let d = y.mul(&one.sub(&y));
                (y, d)
            }
            other => panic!("{case}: unknown activation {other}"),
        };
        report.check(case, "y", &y, &fx.get(case, "y"));
        report.check(case, "gx", &gy.mul(&dy_dx), &fx.get(case, "gx"));
    }
    report.finish();
}

/// A linear layer `y = x w^T + b` and its gradients, from `matmul_t`, broadcasting and `sum_to`.
#[test]
fn linear_matches_pytorch() {
    let fx = Fixtures::open(OPS_PATH);
    let case = "linear";
    let (x, w, b, gy) = (
        fx.get(case, "x"),
        fx.get(case, "w"),
        fx.get(case, "b"),
        fx.get(case, "gy"),
    );
    let mut report = Report::default();
    report.check(
        case,
        "y",
        &x.matmul_t(&w, false, true).add(&b),
        &fx.get(case, "y"),
    );
    report.check(case, "gx", &gy.matmul(&w), &fx.get(case, "gx"));
    report.check(
        case,
        "gw",
        &gy.matmul_t(&x, true, false),
        &fx.get(case, "gw"),
    );
    report.check(case, "gb", &gy.sum_to(b.shape()), &fx.get(case, "gb"));
    report.finish();
}
