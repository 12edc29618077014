//! Negative controls of the first-order [`gradcheck`]: for each property family of
//! `gradcheck_props.rs`, a custom op whose `backward` has a bug of the kind that family's rules
//! could plausibly have (a missing factor, a transposed operand, a wrong sum over a broadcast
//! axis, a shifted slice, forgotten stride and padding, batch statistics taken as constants).
//! Each control also runs the same op with the right rule, so a rejection is the bug's doing and
//! not the setup's. The last test measures the checker's resolution: the smallest relative error
//! of a gradient that the default [`GradcheckConfig`] rejects.

use gantry_autodiff::tensor::{Conv2dParams, Tensor};
use gantry_autodiff::{CustomOp, GradcheckConfig, Var, gradcheck};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A forward pass or a gradient rule, as a plain function so that one struct serves every op.
type Forward = fn(&[&Tensor]) -> Tensor;
/// `(inputs, output, output gradient) -> input gradients`.
type Backward = fn(&[&Tensor], &Tensor, &Tensor) -> Vec<Option<Tensor>>;

/// A custom op made of a forward pass and one gradient rule (right or deliberately wrong).
#[derive(Clone, Copy)]
struct Op {
    name: &'static str,
    forward: Forward,
    backward: Backward,
}

impl CustomOp for Op {
    fn name(&self) -> &str {
        self.name
    }
    fn forward(&self, x: &[&Tensor]) -> Tensor {
        (self.forward)(x)
    }
    fn backward(&self, x: &[&Tensor], y: &Tensor, gy: &Tensor) -> Vec<Option<Tensor>> {
        (self.backward)(x, y, gy)
    }
}

/// Asserts that `gradcheck` accepts `forward` with the `right` rule and rejects it with the
/// `wrong` one, at every one of several seeds (projections and coordinate choices).
#[track_caller]
fn control(name: &'static str, forward: Forward, right: Backward, wrong: Backward, x: &[Tensor]) {
    for seed in 0..8 {
        let cfg = GradcheckConfig {
            seed,
            ..GradcheckConfig::default()
        };
        let apply = |backward: Backward| {
            let op = Op {
                name,
                forward,
                backward,
            };
            gradcheck(move |_, v| Var::custom(op, v), x, &cfg)
        };
        if let Err(e) = apply(right) {
            panic!("{name}: the right rule was rejected at seed {seed}: {e}");
        }
        assert!(
            apply(wrong).is_err(),
            "{name}: the wrong rule was accepted at seed {seed}"
        );
    }
}

fn uniform(shape: &[usize], lo: f32, hi: f32, seed: u64) -> Tensor {
    Tensor::rand_uniform(shape, lo, hi, &mut ChaCha8Rng::seed_from_u64(seed))
}

// ---------------------------------------------------------------- broadcasting arithmetic

#[test]
fn broadcast_add_counting_one_copy_of_the_broadcast_operand_is_rejected() {
    // b [1, 4] is broadcast over the 3 rows of a: its gradient sums gy over them. The bug
    // takes the first row only, as a backward that forgot the reduction would.
    control(
        "add_broadcast",
        |x| x[0].add(x[1]),
        |_, _, gy| vec![Some(gy.clone()), Some(gy.sum_axes(&[0], true))],
        |_, _, gy| vec![Some(gy.clone()), Some(gy.slice_axis(0, 0, 1))],
        &[
            uniform(&[3, 4], -2.0, 2.0, 1),
            uniform(&[1, 4], -2.0, 2.0, 2),
        ],
    );
}

// ---------------------------------------------------------------- elementwise math

#[test]
fn sqrt_missing_its_one_half_is_rejected() {
    control(
        "sqrt",
        |x| x[0].sqrt(),
        |_, y, gy| vec![Some(gy.div(y).mul_scalar(0.5))],
        |_, y, gy| vec![Some(gy.div(y))],
        &[uniform(&[3, 4], 0.3, 3.0, 3)],
    );
}

// ---------------------------------------------------------------- activations

#[test]
fn sigmoid_missing_the_one_minus_y_factor_is_rejected() {
    control(
        "sigmoid",
        |x| x[0].sigmoid(),
        |_, y, gy| vec![Some(gy.mul(y).mul(&y.neg().add_scalar(1.0)))],
        |_, y, gy| vec![Some(gy.mul(y))],
        &[uniform(&[3, 4], -3.0, 3.0, 4)],
    );
}

// ---------------------------------------------------------------- reductions

#[test]
fn row_sum_broadcasting_its_gradient_along_the_wrong_axis_is_rejected() {
    // A square input, so that the wrong broadcast still has the input's shape.
    control(
        "sum_rows",
        |x| x[0].sum_axes(&[1], false),
        |x, _, gy| vec![Some(gy.reshape(&[3, 1]).broadcast_to(x[0].shape()))],
        |x, _, gy| vec![Some(gy.reshape(&[1, 3]).broadcast_to(x[0].shape()))],
        &[uniform(&[3, 3], -2.0, 2.0, 5)],
    );
}

// ---------------------------------------------------------------- shape ops

#[test]
fn slice_putting_its_gradient_back_at_a_shifted_offset_is_rejected() {
    // Columns 1..3 of 4: the gradient goes back with one zero column on each side; the bug
    // pads both on the right (the start offset forgotten).
    control(
        "slice",
        |x| x[0].slice_axis(1, 1, 3),
        |_, _, gy| vec![Some(gy.pad(&[(0, 0), (1, 1)], 0.0))],
        |_, _, gy| vec![Some(gy.pad(&[(0, 0), (0, 2)], 0.0))],
        &[uniform(&[2, 4], -2.0, 2.0, 6)],
    );
}

#[test]
fn permute_applying_its_permutation_instead_of_the_inverse_is_rejected() {
    // (1, 2, 0) is not its own inverse; a cube keeps the shapes equal so the bug is silent
    // everywhere but in the values.
    control(
        "permute",
        |x| x[0].permute(&[1, 2, 0]),
        |_, _, gy| vec![Some(gy.permute(&[2, 0, 1]))],
        |_, _, gy| vec![Some(gy.permute(&[1, 2, 0]))],
        &[uniform(&[2, 2, 2], -2.0, 2.0, 7)],
    );
}

// ---------------------------------------------------------------- matmul / linear

#[test]
fn matmul_with_an_untransposed_operand_in_its_gradient_is_rejected() {
    // dA = dY · Bᵀ; the bug uses B itself (square operands, so the shapes agree).
    control(
        "matmul",
        |x| x[0].matmul(x[1]),
        |x, _, gy| {
            vec![
                Some(gy.matmul_t(x[1], false, true)),
                Some(x[0].matmul_t(gy, true, false)),
            ]
        },
        |x, _, gy| vec![Some(gy.matmul(x[1])), Some(x[0].matmul_t(gy, true, false))],
        &[
            uniform(&[3, 3], -1.0, 1.0, 8),
            uniform(&[3, 3], -1.0, 1.0, 9),
        ],
    );
}

// ---------------------------------------------------------------- convolutions

/// Stride 2 and padding 1 with a 3x3 kernel on 5x5: a 3x3 output, the same as stride 1 and no
/// padding give, so a backward that forgets both has consistent shapes and wrong values.
const STRIDED: Conv2dParams = Conv2dParams {
    stride: [2, 2],
    padding: [1, 1],
    dilation: [1, 1],
};
const PLAIN: Conv2dParams = Conv2dParams {
    stride: [1, 1],
    padding: [0, 0],
    dilation: [1, 1],
};

#[test]
fn conv_whose_input_gradient_ignores_stride_and_padding_is_rejected() {
    control(
        "conv2d",
        |x| x[0].conv2d(x[1], None, STRIDED),
        |x, _, gy| {
            vec![
                Some(gy.conv2d_grad_input(x[1], [5, 5], STRIDED)),
                Some(x[0].conv2d_grad_weight(gy, [3, 3], STRIDED)),
            ]
        },
        |x, _, gy| {
            vec![
                Some(gy.conv2d_grad_input(x[1], [5, 5], PLAIN)),
                Some(x[0].conv2d_grad_weight(gy, [3, 3], STRIDED)),
            ]
        },
        &[
            uniform(&[1, 2, 5, 5], -1.0, 1.0, 10),
            uniform(&[2, 2, 3, 3], -1.0, 1.0, 11),
        ],
    );
}

// ---------------------------------------------------------------- batch norm

/// The variance offset of the normalisation below.
const BN_EPS: f32 = 1e-5;

/// Each column of `x` (`[n, c]`) normalised with its batch mean and biased variance; returns
/// `(y, 1 / sqrt(var + eps))`.
fn normalise(x: &Tensor) -> (Tensor, Tensor) {
    let n = x.shape()[0] as f32;
    let d = x.sub(&x.sum_axes(&[0], true).mul_scalar(1.0 / n));
    let var = d.mul(&d).sum_axes(&[0], true).mul_scalar(1.0 / n);
    let inv_std = var.add_scalar(BN_EPS).sqrt().map(|s| 1.0 / s);
    (d.mul(&inv_std), inv_std)
}

#[test]
fn batch_norm_treating_the_batch_statistics_as_constants_is_rejected() {
    // dx = inv_std / n · (n·gy − Σgy − y·Σ(gy·y)); the bug keeps only inv_std · gy, the
    // gradient of an eval-mode norm used on a training batch.
    control(
        "batch_norm",
        |x| normalise(x[0]).0,
        |x, y, gy| {
            let (_, inv_std) = normalise(x[0]);
            let n = x[0].shape()[0] as f32;
            let centred = gy
                .mul_scalar(n)
                .sub(&gy.sum_axes(&[0], true))
                .sub(&y.mul(&gy.mul(y).sum_axes(&[0], true)));
            vec![Some(centred.mul(&inv_std).mul_scalar(1.0 / n))]
        },
        |x, _, gy| vec![Some(gy.mul(&normalise(x[0]).1))],
        &[uniform(&[4, 3], -2.0, 2.0, 12)],
    );
}

// ---------------------------------------------------------------- losses

#[test]
fn mse_missing_the_factor_two_of_the_square_is_rejected() {
    // Mean squared distance to 0.25 everywhere (a constant target, so the op has one input).
    control(
        "mse",
        |x| {
            let d = x[0].add_scalar(-0.25);
            Tensor::scalar(d.mul(&d).mean_all())
        },
        |x, _, gy| {
            let k = 2.0 * gy.item() / x[0].len() as f32;
            vec![Some(x[0].add_scalar(-0.25).mul_scalar(k))]
        },
        |x, _, gy| {
            let k = gy.item() / x[0].len() as f32;
            vec![Some(x[0].add_scalar(-0.25).mul_scalar(k))]
        },
        &[uniform(&[3, 4], -2.0, 2.0, 13)],
    );
}

// ---------------------------------------------------------------- resolution

/// `tanh` whose gradient is `(1 + δ)` times the right one.
struct ScaledTanh(f32);

impl CustomOp for ScaledTanh {
    fn name(&self) -> &str {
        "scaled_tanh"
    }
    fn forward(&self, x: &[&Tensor]) -> Tensor {
        x[0].tanh()
    }
    fn backward(&self, _x: &[&Tensor], y: &Tensor, gy: &Tensor) -> Vec<Option<Tensor>> {
        vec![Some(
            gy.mul(&y.mul(y).neg().add_scalar(1.0))
                .mul_scalar(1.0 + self.0),
        )]
    }
}

/// How many of `seeds` (each a fresh input and a fresh projection) reject `tanh` with its
/// gradient scaled by `1 + delta`.
fn rejections(delta: f32, seeds: std::ops::Range<u64>) -> usize {
    seeds
        .filter(|&seed| {
            let x = uniform(&[4, 4], -2.0, 2.0, 1000 + seed);
            let cfg = GradcheckConfig {
                seed,
                ..GradcheckConfig::default()
            };
            gradcheck(|_, v| Var::custom(ScaledTanh(delta), v), &[x], &cfg).is_err()
        })
        .count()
}

/// The relative error that the default configuration rejects on every one of 200 seeds: the
/// figure given in `gradcheck`'s documentation. (The survey below, 400 seeds: 1% is never
/// rejected, 1.2% on 363, 1.5% and above on all; the threshold is `rtol` plus the finite
/// difference's own error, for gradients of order one.)
const RESOLVED: f32 = 0.015;

#[test]
fn the_default_config_rejects_a_one_and_a_half_percent_error() {
    assert_eq!(rejections(RESOLVED, 0..200), 200);
    assert_eq!(rejections(-RESOLVED, 0..200), 200);
    // And the exact rule passes on the same seeds: the rejections are the error's doing. A
    // tenth of the error passes too (1%, two thirds of the resolution, passed all 400 seeds of
    // the survey, so this is far from the threshold and not flaky).
    assert_eq!(rejections(0.0, 0..200), 0);
    assert_eq!(rejections(RESOLVED / 10.0, 0..200), 0);
}

#[test]
#[ignore = "a survey, not a check: prints the rejection rate against the relative error"]
fn survey_of_the_rejection_rate() {
    for delta in [0.002, 0.005, 0.01, 0.012, 0.015, 0.02, 0.025, 0.03, 0.05] {
        println!(
            "delta {delta}: {} / 400 rejected",
            rejections(delta, 0..400)
        );
    }
}
