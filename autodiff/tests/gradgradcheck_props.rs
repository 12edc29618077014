//! Every op's second derivative against finite differences of its first-order gradient,
//! through the public [`gradgradcheck`], over random shapes, strides, paddings and dilations;
//! and, per family, a negative control: a custom op whose recorded rule has a deliberately wrong
//! second derivative (right values, a dependence dropped), which the check must catch.
//!
//! Inputs are conditioned as in `gradcheck_props.rs` (away from kinks, positive where a log or
//! root needs it); the runner has a fixed seed and no failure persistence.

#[allow(dead_code)] // shared with gradcheck_props.rs, which uses the rest
mod common;

use common::{away_from, broadcast_pair, config, conv_case, distinct, shape, signed, uniform};
use gantry_autodiff::tensor::{Conv2dParams, Tensor};
use gantry_autodiff::{
    Check, CreateGraph, CustomOp, GradError, GradcheckConfig, Reduction, Tape, Var, gradgradcheck,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The finite-difference step (a second derivative in f32 needs a larger one than a first).
const EPS: f32 = 1e-2;

/// Kinks are avoided by this much: more than the `2 * EPS` a central difference spans.
const MARGIN: f32 = 3.0 * EPS;

fn cfg(seed: u64) -> GradcheckConfig {
    GradcheckConfig {
        eps: EPS,
        rtol: 2e-2,
        atol: 2e-3,
        max_checks_per_input: 24,
        seed,
    }
}

/// Runs [`gradgradcheck`] and turns a disagreement into a test failure that names it.
fn check2<F>(f: F, inputs: &[Tensor], cfg: &GradcheckConfig) -> Result<(), TestCaseError>
where
    F: for<'t> Fn(&'t Tape, &[Var<'t>]) -> Var<'t>,
{
    let shapes: Vec<&[usize]> = inputs.iter().map(Tensor::shape).collect();
    match gradgradcheck(f, inputs, cfg) {
        Ok(0) => Err(TestCaseError::fail(format!(
            "gradgradcheck checked nothing for {shapes:?}"
        ))),
        Ok(_) => Ok(()),
        Err(e) => Err(TestCaseError::fail(format!(
            "{e} (input shapes {shapes:?})"
        ))),
    }
}

/// Asserts that `gradgradcheck` rejects `f` with a second-derivative disagreement.
#[track_caller]
fn rejected<F>(f: F, inputs: &[Tensor])
where
    F: for<'t> Fn(&'t Tape, &[Var<'t>]) -> Var<'t>,
{
    let err =
        gradgradcheck(f, inputs, &cfg(7)).expect_err("a wrong second derivative must be caught");
    assert_eq!(err.check, Check::SecondDerivative, "{err}");
}

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

proptest! {
    #![proptest_config(config(24))]

    // ---------------------------------------------------------------- broadcasting arithmetic
    // A product of two inputs has a non-zero cross derivative; `tanh` after each op makes
    // the output gradient depend on the inputs, so the rule's dependence on `gy` is checked too.

    #[test]
    fn add_sub_broadcast((sa, sb) in broadcast_pair(), seed in any::<u64>()) {
        let mut r = rng(seed);
        let (a, b) = (uniform(&sa, -1.0, 1.0, &mut r), uniform(&sb, -1.0, 1.0, &mut r));
        check2(|_, v| v[0].add(v[1]).tanh(), &[a.clone(), b.clone()], &cfg(seed))?;
        check2(|_, v| v[0].sub(v[1]).tanh(), &[a, b], &cfg(seed))?;
    }

    #[test]
    fn mul_div_broadcast((sa, sb) in broadcast_pair(), seed in any::<u64>()) {
        let mut r = rng(seed);
        let a = uniform(&sa, -1.0, 1.0, &mut r);
        let b = signed(&sb, 0.5, 1.5, &mut r);
        check2(|_, v| v[0].mul(v[1]).tanh(), &[a.clone(), b.clone()], &cfg(seed))?;
        check2(|_, v| v[0].div(v[1]), &[a, b], &cfg(seed))?;
    }

    // ---------------------------------------------------------------- elementwise math

    #[test]
    fn scalar_ops_exp_ln_sqrt_powf(s in shape(3, 4), c in -2.0f32..2.0, p in -1.5f32..2.5, seed in any::<u64>()) {
        let mut r = rng(seed);
        let x = uniform(&s, -1.0, 1.0, &mut r);
        let pos = uniform(&s, 0.5, 2.0, &mut r);
        check2(|_, v| v[0].neg().add_scalar(c).mul_scalar(c).tanh(), std::slice::from_ref(&x), &cfg(seed))?;
        check2(|_, v| v[0].exp(), std::slice::from_ref(&x), &cfg(seed))?;
        check2(|_, v| v[0].ln(), std::slice::from_ref(&pos), &cfg(seed))?;
        check2(|_, v| v[0].sqrt(), std::slice::from_ref(&pos), &cfg(seed))?;
        check2(|_, v| v[0].powf(p), &[pos], &cfg(seed))?;
    }

    #[test]
    fn piecewise_linear_activations(s in shape(3, 4), slope in 0.01f32..0.5, lo in -1.0f32..0.0, seed in any::<u64>()) {
        // Their second derivative is zero away from the kinks; the check still sees the
        // gradient's dependence on `gy` through the square.
        let mut r = rng(seed);
        let x = away_from(&s, -2.0, 2.0, &[0.0, lo, lo + 1.0], MARGIN, &mut r);
        check2(|_, v| v[0].relu().powf(2.0), std::slice::from_ref(&x), &cfg(seed))?;
        check2(|_, v| v[0].leaky_relu(slope).powf(2.0), std::slice::from_ref(&x), &cfg(seed))?;
        check2(|_, v| v[0].abs().powf(2.0), std::slice::from_ref(&x), &cfg(seed))?;
        check2(|_, v| v[0].clamp(lo, lo + 1.0).powf(2.0), &[x], &cfg(seed))?;
    }

    #[test]
    fn smooth_activations(s in shape(3, 4), seed in any::<u64>()) {
        let x = uniform(&s, -2.0, 2.0, &mut rng(seed));
        check2(|_, v| v[0].sigmoid(), std::slice::from_ref(&x), &cfg(seed))?;
        check2(|_, v| v[0].tanh(), std::slice::from_ref(&x), &cfg(seed))?;
        check2(|_, v| v[0].softplus(), std::slice::from_ref(&x), &cfg(seed))?;
        check2(|_, v| v[0].log_softmax(v[0].shape().len() - 1), &[x], &cfg(seed))?;
    }

    #[test]
    fn dropout_with_a_fixed_mask(s in shape(3, 4), p in 0.0f32..0.8, seed in any::<u64>()) {
        let x = uniform(&s, -1.0, 1.0, &mut rng(seed));
        // Same tape seed on every evaluation: the same mask.
        check2(|t, v| v[0].dropout(p, &mut t.rng()).powf(2.0), &[x], &cfg(seed))?;
    }

    // ---------------------------------------------------------------- reductions

    #[test]
    fn sum_mean_max(s in shape(3, 4), axis in 0usize..3, keepdim in any::<bool>(), seed in any::<u64>()) {
        let axis = axis % s.len();
        let mut r = rng(seed);
        let x = uniform(&s, -1.0, 1.0, &mut r);
        let d = distinct(&s, 4.0 * EPS, &mut r);
        check2(|_, v| v[0].sum_axes(&[axis], keepdim).tanh(), std::slice::from_ref(&x), &cfg(seed))?;
        check2(|_, v| v[0].mean().mul(v[0].sum()), std::slice::from_ref(&x), &cfg(seed))?;
        check2(|_, v| v[0].max_axes(&[axis], keepdim).powf(2.0), &[d], &cfg(seed))?;
    }

    // ---------------------------------------------------------------- shapes

    #[test]
    fn reshape_permute_slice_pad(s in shape(3, 4), seed in any::<u64>()) {
        let x = uniform(&s, -1.0, 1.0, &mut rng(seed));
        let n: usize = s.iter().product();
        let last = s.len() - 1;
        let pads: Vec<(usize, usize)> = s.iter().enumerate().map(|(i, _)| (i % 2, 1)).collect();
        check2(|_, v| v[0].reshape(&[n]).tanh(), std::slice::from_ref(&x), &cfg(seed))?;
        check2(|_, v| v[0].transpose(0, last).tanh(), std::slice::from_ref(&x), &cfg(seed))?;
        check2(|_, v| v[0].slice_axis(last, 0, s[last].div_ceil(2)).tanh(), std::slice::from_ref(&x), &cfg(seed))?;
        check2(|_, v| v[0].pad(&pads, 0.5).tanh(), std::slice::from_ref(&x), &cfg(seed))?;
        check2(|_, v| v[0].pad(&pads, 0.0).tanh().unpad(&pads), &[x], &cfg(seed))?;
    }

    #[test]
    fn upsample_nearest_and_sum_pool(
        n in 1usize..=2, c in 1usize..=2, h in 1usize..=3, w in 1usize..=3, f in 1usize..=3,
        seed in any::<u64>(),
    ) {
        let mut r = rng(seed);
        let x = uniform(&[n, c, h, w], -1.0, 1.0, &mut r);
        let y = uniform(&[n, c, h * f, w * f], -1.0, 1.0, &mut r);
        check2(|_, v| v[0].upsample_nearest2d(f).tanh(), &[x], &cfg(seed))?;
        check2(|_, v| v[0].sum_pool2d(f).tanh(), &[y], &cfg(seed))?;
    }

    #[test]
    fn reflection_pad_and_fold(
        (h, w, pads) in (2usize..=4, 2usize..=4).prop_flat_map(|(h, w)| {
            (Just(h), Just(w), [0..w, 0..w, 0..h, 0..h])
        }),
        seed in any::<u64>(),
    ) {
        let mut r = rng(seed);
        let [l, rt, t, b] = pads;
        let x = uniform(&[1, 2, h, w], -1.0, 1.0, &mut r);
        let y = uniform(&[1, 2, h + t + b, w + l + rt], -1.0, 1.0, &mut r);
        check2(|_, v| v[0].reflection_pad2d(pads).tanh(), &[x], &cfg(seed))?;
        check2(|_, v| v[0].reflection_pad2d_fold(pads).tanh(), &[y], &cfg(seed))?;
    }

    #[test]
    fn instance_norm(
        n in 1usize..=2, c in 1usize..=2, h in 2usize..=3, w in 2usize..=3,
        seed in any::<u64>(),
    ) {
        let mut r = rng(seed);
        let noise = uniform(&[n, c, h, w], -0.3, 0.3, &mut r).to_vec();
        let s = h * w;
        // A ramp in every plane keeps its deviation away from 0.
        let x: Vec<f32> = noise.iter().enumerate().map(|(i, e)| (i % s) as f32 * 2.0 / s as f32 + e).collect();
        let x = Tensor::from_vec(&[n, c, h, w], x);
        let gy = uniform(&[n, c, h, w], -1.0, 1.0, &mut r);
        check2(|_, v| v[0].instance_norm(1e-5).mul(v[1]).tanh(), &[x, gy], &cfg(seed))?;
    }

    #[test]
    fn pixel_norm(
        shape in prop::collection::vec(1usize..=3, 2..=4), seed in any::<u64>(),
    ) {
        let mut r = rng(seed);
        let x = uniform(&shape, 0.5, 1.5, &mut r);
        let gy = uniform(&shape, -1.0, 1.0, &mut r);
        check2(|_, v| v[0].pixel_norm(1e-8).mul(v[1]).tanh(), &[x, gy], &cfg(seed))?;
    }

    #[test]
    fn concat_broadcast_to_sum_to(s in shape(3, 3), seed in any::<u64>()) {
        let mut r = rng(seed);
        let (a, b) = (uniform(&s, -1.0, 1.0, &mut r), uniform(&s, -1.0, 1.0, &mut r));
        let mut big = vec![2];
        big.extend(&s);
        check2(|_, v| Var::concat(&[v[0], v[1], v[0]], 0).tanh().mul(Var::concat(&[v[1], v[0], v[1]], 0)), &[a.clone(), b], &cfg(seed))?;
        check2(|_, v| v[0].broadcast_to(&big).tanh(), std::slice::from_ref(&a), &cfg(seed))?;
        check2(|_, v| v[0].broadcast_to(&big).tanh().sum_to(&s).tanh(), &[a], &cfg(seed))?;
    }

    // ---------------------------------------------------------------- matrix products

    #[test]
    fn matmul_with_transposes(m in 1usize..=4, k in 1usize..=4, n in 1usize..=4, batch in 0usize..=2,
                              ta in any::<bool>(), tb in any::<bool>(), seed in any::<u64>()) {
        let mut r = rng(seed);
        let lead: Vec<usize> = if batch == 0 { vec![] } else { vec![batch] };
        let dims = |rows: usize, cols: usize, t: bool| {
            let mut s = lead.clone();
            s.extend(if t { [cols, rows] } else { [rows, cols] });
            s
        };
        let a = uniform(&dims(m, k, ta), -1.0, 1.0, &mut r);
        let b = uniform(&dims(k, n, tb), -1.0, 1.0, &mut r);
        check2(|_, v| v[0].matmul_t(v[1], ta, tb).tanh(), &[a, b], &cfg(seed))?;
    }

    #[test]
    fn linear(n in 1usize..=3, i in 1usize..=4, o in 1usize..=4, bias in any::<bool>(), seed in any::<u64>()) {
        let mut r = rng(seed);
        let mut inputs = vec![uniform(&[n, i], -1.0, 1.0, &mut r), uniform(&[o, i], -1.0, 1.0, &mut r)];
        if bias {
            inputs.push(uniform(&[o], -1.0, 1.0, &mut r));
        }
        check2(|_, v| v[0].linear(v[1], v.get(2).copied()).tanh(), &inputs, &cfg(seed))?;
    }

    // ---------------------------------------------------------------- convolutions
    // Strides, paddings and dilations per axis from `conv_case`. The gradient ops are checked
    // twice over: directly (their own rules, first and second order) and inside the
    // convolutions' second derivatives.

    #[test]
    fn conv2d(c in conv_case(false), seed in any::<u64>()) {
        let mut r = rng(seed);
        let mut inputs = vec![
            uniform(&c.input_shape(), -1.0, 1.0, &mut r),
            uniform(&c.weight_shape(false), -1.0, 1.0, &mut r),
        ];
        if c.bias {
            inputs.push(uniform(&[c.cout], -1.0, 1.0, &mut r));
        }
        let p = c.conv_params();
        check2(|_, v| v[0].conv2d(v[1], v.get(2).copied(), p).tanh(), &inputs, &cfg(seed))?;
    }

    #[test]
    fn conv_transpose2d(c in conv_case(true), seed in any::<u64>()) {
        let mut r = rng(seed);
        let mut inputs = vec![
            uniform(&c.input_shape(), -1.0, 1.0, &mut r),
            uniform(&c.weight_shape(true), -1.0, 1.0, &mut r),
        ];
        if c.bias {
            inputs.push(uniform(&[c.cout], -1.0, 1.0, &mut r));
        }
        let p = c.transpose_params();
        check2(|_, v| v[0].conv_transpose2d(v[1], v.get(2).copied(), p).tanh(), &inputs, &cfg(seed))?;
    }

    #[test]
    fn conv_gradient_ops(c in conv_case(false), seed in any::<u64>()) {
        let mut r = rng(seed);
        let p = c.conv_params();
        let x = uniform(&c.input_shape(), -1.0, 1.0, &mut r);
        let w = uniform(&c.weight_shape(false), -1.0, 1.0, &mut r);
        let y_shape = x.conv2d(&w, None, p).shape().to_vec();
        let g = uniform(&y_shape, -1.0, 1.0, &mut r);
        let hw = [c.input_hw[0], c.input_hw[1]];
        let k = [c.kernel[0], c.kernel[1]];
        check2(|_, v| v[0].conv2d_grad_input(v[1], hw, p).tanh(), &[g.clone(), w], &cfg(seed))?;
        check2(|_, v| v[0].conv2d_grad_weight(v[1], k, p).tanh(), &[x, g], &cfg(seed))?;
    }

    // ---------------------------------------------------------------- losses

    #[test]
    fn losses(s in shape(3, 4), sum in any::<bool>(), seed in any::<u64>()) {
        let mut r = rng(seed);
        let reduction = if sum { Reduction::Sum } else { Reduction::Mean };
        let x = uniform(&s, -2.0, 2.0, &mut r);
        let target = uniform(&s, 0.0, 1.0, &mut r);
        let probs = uniform(&s, 0.2, 0.8, &mut r);
        let away = away_from(&s, -2.0, 2.0, &[], 0.0, &mut r);
        let t2 = away.map(|v| v + if v > 0.0 { -0.5 } else { 0.5 });
        // Each loss squared, so that its output gradient depends on the input.
        check2(|_, v| v[0].bce_with_logits(&target, reduction).powf(2.0), std::slice::from_ref(&x), &cfg(seed))?;
        check2(|_, v| v[0].bce(&target, reduction).powf(2.0), &[probs], &cfg(seed))?;
        check2(|_, v| v[0].mse_loss(&target, reduction).powf(2.0), std::slice::from_ref(&x), &cfg(seed))?;
        check2(|_, v| v[0].l1_loss(&t2, reduction).powf(2.0), &[away], &cfg(seed))?;
    }

    // ---------------------------------------------------------------- a critic, end to end

    #[test]
    fn a_small_conv_critic(n in 1usize..=3, width in 1usize..=3, seed in any::<u64>()) {
        let mut r = rng(seed);
        let x = uniform(&[n, 2, 6, 6], -1.0, 1.0, &mut r);
        let w1 = uniform(&[width, 2, 3, 3], -0.7, 0.7, &mut r);
        let w2 = uniform(&[1, width * 9], -0.7, 0.7, &mut r);
        let p = Conv2dParams { stride: [2, 2], padding: [1, 1], dilation: [1, 1] };
        check2(
            |_, v| v[0].conv2d(v[1], None, p).tanh().flatten().linear(v[2], None),
            &[x, w1, w2],
            &cfg(seed),
        )?;
    }
}

// -------------------------------------------------------------------- negative controls
//
// Each custom op below computes its family's first-order gradient correctly (so the first-order
// pass and the recorded values agree) but records it with one dependence dropped, as a wrong
// rule would: the check must report a second-derivative disagreement.

/// `tanh` whose recorded rule treats `1 - y²` as a constant.
struct TanhFrozenSlope;

impl CustomOp for TanhFrozenSlope {
    fn name(&self) -> &str {
        "tanh_frozen_slope"
    }
    fn forward(&self, x: &[&Tensor]) -> Tensor {
        x[0].tanh()
    }
    fn backward(&self, _x: &[&Tensor], y: &Tensor, gy: &Tensor) -> Vec<Option<Tensor>> {
        vec![Some(gy.mul(&y.mul(y).neg().add_scalar(1.0)))]
    }
    fn backward_graph<'t>(
        &self,
        _x: &[Var<'t>],
        y: Var<'t>,
        gy: Var<'t>,
    ) -> Option<Vec<Option<Var<'t>>>> {
        let slope = y.value().mul(&y.value()).neg().add_scalar(1.0);
        Some(vec![Some(gy.mul(y.tape().constant(slope)))])
    }
}

/// `a * b` whose recorded gradient for `a` uses `b` as a constant (the cross term lost).
struct MulLostCross;

impl CustomOp for MulLostCross {
    fn name(&self) -> &str {
        "mul_lost_cross"
    }
    fn forward(&self, x: &[&Tensor]) -> Tensor {
        x[0].mul(x[1])
    }
    fn backward(&self, x: &[&Tensor], _y: &Tensor, gy: &Tensor) -> Vec<Option<Tensor>> {
        vec![Some(gy.mul(x[1])), Some(gy.mul(x[0]))]
    }
    fn backward_graph<'t>(
        &self,
        x: &[Var<'t>],
        _y: Var<'t>,
        gy: Var<'t>,
    ) -> Option<Vec<Option<Var<'t>>>> {
        Some(vec![Some(gy.mul(x[1].detach())), Some(gy.mul(x[0]))])
    }
}

/// A rule that records its output gradient as a constant: what a reduction, a shape op or a
/// loss would do if its backward lost track of `gy` (`reshape` here; `sum` and `mse` below).
#[derive(Clone, Copy)]
struct ShapeOp {
    name: &'static str,
    forward: fn(&Tensor) -> Tensor,
    backward: fn(&Tensor, &[usize]) -> Tensor,
}

impl CustomOp for ShapeOp {
    fn name(&self) -> &str {
        self.name
    }
    fn forward(&self, x: &[&Tensor]) -> Tensor {
        (self.forward)(x[0])
    }
    fn backward(&self, x: &[&Tensor], _y: &Tensor, gy: &Tensor) -> Vec<Option<Tensor>> {
        vec![Some((self.backward)(gy, x[0].shape()))]
    }
    fn backward_graph<'t>(
        &self,
        x: &[Var<'t>],
        _y: Var<'t>,
        gy: Var<'t>,
    ) -> Option<Vec<Option<Var<'t>>>> {
        let g = (self.backward)(&gy.value(), &x[0].shape());
        Some(vec![Some(gy.tape().constant(g))])
    }
}

/// `mse` whose recorded rule treats `pred - target` as a constant.
struct MseFrozenResidual(Tensor);

impl CustomOp for MseFrozenResidual {
    fn name(&self) -> &str {
        "mse_frozen_residual"
    }
    fn forward(&self, x: &[&Tensor]) -> Tensor {
        let d = x[0].sub(&self.0);
        Tensor::scalar(d.mul(&d).sum_all() / d.len() as f32)
    }
    fn backward(&self, x: &[&Tensor], _y: &Tensor, gy: &Tensor) -> Vec<Option<Tensor>> {
        let k = 2.0 * gy.item() / x[0].len() as f32;
        vec![Some(x[0].sub(&self.0).mul_scalar(k))]
    }
    fn backward_graph<'t>(
        &self,
        x: &[Var<'t>],
        _y: Var<'t>,
        gy: Var<'t>,
    ) -> Option<Vec<Option<Var<'t>>>> {
        let k = 2.0 / x[0].value().len() as f32;
        let d = x[0].tape().constant(x[0].value().sub(&self.0));
        Some(vec![Some(d.mul(gy.reshape(&[])).mul_scalar(k))])
    }
}

/// `x · w` whose recorded input gradient uses `w` as a constant.
struct MatmulLostCross;

impl CustomOp for MatmulLostCross {
    fn name(&self) -> &str {
        "matmul_lost_cross"
    }
    fn forward(&self, x: &[&Tensor]) -> Tensor {
        x[0].matmul(x[1])
    }
    fn backward(&self, x: &[&Tensor], _y: &Tensor, gy: &Tensor) -> Vec<Option<Tensor>> {
        vec![
            Some(gy.matmul_t(x[1], false, true)),
            Some(x[0].matmul_t(gy, true, false)),
        ]
    }
    fn backward_graph<'t>(
        &self,
        x: &[Var<'t>],
        _y: Var<'t>,
        gy: Var<'t>,
    ) -> Option<Vec<Option<Var<'t>>>> {
        Some(vec![
            Some(gy.matmul_t(x[1].detach(), false, true)),
            Some(x[0].matmul_t(gy, true, false)),
        ])
    }
}

/// A convolution whose recorded input gradient uses the weight as a constant.
struct ConvLostCross(Conv2dParams);

impl CustomOp for ConvLostCross {
    fn name(&self) -> &str {
        "conv_lost_cross"
    }
    fn forward(&self, x: &[&Tensor]) -> Tensor {
        x[0].conv2d(x[1], None, self.0)
    }
    fn backward(&self, x: &[&Tensor], _y: &Tensor, gy: &Tensor) -> Vec<Option<Tensor>> {
        let (xs, ws) = (x[0].shape(), x[1].shape());
        vec![
            Some(gy.conv2d_grad_input(x[1], [xs[2], xs[3]], self.0)),
            Some(x[0].conv2d_grad_weight(gy, [ws[2], ws[3]], self.0)),
        ]
    }
    fn backward_graph<'t>(
        &self,
        x: &[Var<'t>],
        _y: Var<'t>,
        gy: Var<'t>,
    ) -> Option<Vec<Option<Var<'t>>>> {
        let (xs, ws) = (x[0].shape(), x[1].shape());
        Some(vec![
            Some(gy.conv2d_grad_input(x[1].detach(), [xs[2], xs[3]], self.0)),
            Some(x[0].conv2d_grad_weight(gy, [ws[2], ws[3]], self.0)),
        ])
    }
}

fn values(shape: &[usize], seed: u64) -> Tensor {
    uniform(shape, -1.0, 1.0, &mut rng(seed))
}

#[test]
fn elementwise_family_catches_a_frozen_slope() {
    rejected(
        |_, v| Var::custom(TanhFrozenSlope, &[v[0]]),
        &[values(&[3, 4], 1)],
    );
    // The correct recorded rule passes the same check.
    gradgradcheck(|_, v| v[0].tanh(), &[values(&[3, 4], 1)], &cfg(7)).unwrap();
}

#[test]
fn arithmetic_family_catches_a_lost_cross_term() {
    rejected(
        |_, v| Var::custom(MulLostCross, &[v[0], v[1]]).tanh(),
        &[values(&[2, 3], 2), values(&[2, 3], 3)],
    );
}

#[test]
fn shape_and_reduction_families_catch_a_constant_output_gradient() {
    let reshape = ShapeOp {
        name: "reshape_constant_gy",
        forward: |x| x.reshape(&[x.len()]),
        backward: |gy, shape| gy.reshape(shape),
    };
    rejected(
        |_, v| Var::custom(reshape, &[v[0]]).tanh(),
        &[values(&[2, 3], 4)],
    );
    let sum = ShapeOp {
        name: "sum_constant_gy",
        forward: |x| x.sum_axes(&[1], false),
        backward: |gy, shape| gy.reshape(&[shape[0], 1]).broadcast_to(shape),
    };
    rejected(
        |_, v| Var::custom(sum, &[v[0]]).tanh(),
        &[values(&[2, 3], 5)],
    );
}

#[test]
fn loss_family_catches_a_frozen_residual() {
    let target = values(&[2, 3], 6);
    rejected(
        move |_, v| Var::custom(MseFrozenResidual(target.clone()), &[v[0]]).powf(2.0),
        &[values(&[2, 3], 7)],
    );
}

#[test]
fn matmul_family_catches_a_lost_cross_term() {
    rejected(
        |_, v| Var::custom(MatmulLostCross, &[v[0], v[1]]).tanh(),
        &[values(&[2, 3], 8), values(&[3, 2], 9)],
    );
}

#[test]
fn conv_family_catches_a_lost_cross_term() {
    let p = Conv2dParams {
        stride: [2, 1],
        padding: [1, 0],
        dilation: [1, 2],
    };
    rejected(
        move |_, v| Var::custom(ConvLostCross(p), &[v[0], v[1]]).tanh(),
        &[values(&[2, 2, 5, 6], 10), values(&[3, 2, 3, 2], 11)],
    );
}

#[test]
fn a_recorded_gradient_with_a_wrong_value_is_caught() {
    struct Doubled;
    impl CustomOp for Doubled {
        fn name(&self) -> &str {
            "doubled"
        }
        fn forward(&self, x: &[&Tensor]) -> Tensor {
            x[0].mul(x[0])
        }
        fn backward(&self, x: &[&Tensor], _y: &Tensor, gy: &Tensor) -> Vec<Option<Tensor>> {
            vec![Some(gy.mul(x[0]).mul_scalar(2.0))]
        }
        fn backward_graph<'t>(
            &self,
            x: &[Var<'t>],
            _y: Var<'t>,
            gy: Var<'t>,
        ) -> Option<Vec<Option<Var<'t>>>> {
            Some(vec![Some(gy.mul(x[0]).mul_scalar(4.0))])
        }
    }
    let err = gradgradcheck(
        |_, v| Var::custom(Doubled, &[v[0]]),
        &[values(&[4], 12)],
        &cfg(7),
    )
    .expect_err("a recorded gradient twice the first-order one must be caught");
    assert_eq!(err.check, Check::RecordedGradient, "{err}");
    assert!((err.analytic - 2.0 * err.numeric).abs() < 1e-5, "{err}");
}

// -------------------------------------------------------------------- ops without a second derivative

#[test]
fn a_differentiable_gradient_through_batch_norm_is_an_error_naming_it() {
    let tape = Tape::new();
    let x = tape.leaf(values(&[4, 2, 3, 3], 13));
    let gamma = tape.leaf(Tensor::ones(&[2]));
    let beta = tape.leaf(Tensor::zeros(&[2]));
    let y = x.batch_norm_train(gamma, beta, 1e-5).y.tanh().sum();
    let err = tape.grad(&[y], &[x], CreateGraph::Yes).unwrap_err();
    assert_eq!(
        err,
        GradError::NoSecondDerivative {
            op: "batch_norm".into()
        }
    );
    assert!(
        err.to_string()
            .starts_with("batch_norm has no second derivative"),
        "{err}"
    );
    // The first-order gradient is still there, and equals backward's.
    let g = tape.grad(&[y], &[x], CreateGraph::No).unwrap()[0].value();
    let reference = y.backward().get(x).unwrap().clone();
    assert_eq!(g.to_vec(), reference.to_vec());
}

#[test]
fn a_custom_op_without_a_recorded_rule_is_an_error_naming_it() {
    struct FirstOrderOnly;
    impl CustomOp for FirstOrderOnly {
        fn name(&self) -> &str {
            "first_order_only"
        }
        fn forward(&self, x: &[&Tensor]) -> Tensor {
            x[0].exp()
        }
        fn backward(&self, _x: &[&Tensor], y: &Tensor, gy: &Tensor) -> Vec<Option<Tensor>> {
            vec![Some(gy.mul(y))]
        }
    }
    let tape = Tape::new();
    let x = tape.leaf(values(&[3], 14));
    let y = Var::custom(FirstOrderOnly, &[x]).sum();
    assert_eq!(
        tape.grad(&[y], &[x], CreateGraph::Yes).unwrap_err(),
        GradError::NoSecondDerivative {
            op: "first_order_only".into()
        }
    );
    assert_eq!(
        y.backward().get(x).unwrap().to_vec(),
        x.value().exp().to_vec()
    );
}

#[test]
fn batch_norm_off_the_differentiated_path_is_fine() {
    // A generator with batch norm feeding a critic without it: the penalty is taken at the
    // critic's input, so the batch norm is not on the path and a recorded gradient exists.
    let tape = Tape::new();
    let z = tape.leaf(values(&[4, 2, 3, 3], 15));
    let (gamma, beta) = (
        tape.leaf(Tensor::ones(&[2])),
        tape.leaf(Tensor::zeros(&[2])),
    );
    let fake = z.batch_norm_train(gamma, beta, 1e-5).y.tanh();
    let x = tape.leaf(fake.value());
    let w = tape.leaf(values(&[1, 18], 16));
    let d = x.flatten().linear(w, None).sum();
    let g = tape.grad(&[d], &[x], CreateGraph::Yes).unwrap()[0];
    let penalty = g.mul(g).sum();
    assert!(penalty.backward().get(w).is_some());
}

// -------------------------------------------------------------------- the grad call itself

#[test]
fn grad_matches_backward_and_gives_zeros_for_unused_inputs() {
    let tape = Tape::new();
    let a = tape.leaf(values(&[2, 3], 17));
    let b = tape.leaf(values(&[3], 18));
    let unused = tape.leaf(values(&[5], 19));
    let y = a.mul(b).tanh().sum();
    let reference = y.backward();
    for create in [CreateGraph::Yes, CreateGraph::No] {
        let g = tape.grad(&[y], &[a, b, unused], create).unwrap();
        assert_eq!(g[0].value().to_vec(), reference.get(a).unwrap().to_vec());
        assert_eq!(g[1].value().to_vec(), reference.get(b).unwrap().to_vec());
        assert_eq!(g[2].value().to_vec(), vec![0.0; 5]);
        assert_eq!(g[0].needs_grad(), create == CreateGraph::Yes);
    }
}

#[test]
fn grad_of_a_non_leaf_input_includes_every_path() {
    // y = h² + h with h = 2x: dy/dh = 2h + 1, whichever node h is.
    let tape = Tape::new();
    let x = tape.leaf(Tensor::from_vec(&[2], vec![1.0, -0.5]));
    let h = x.mul_scalar(2.0);
    let y = h.mul(h).add(h).sum();
    let g = tape.grad(&[y], &[h, x], CreateGraph::No).unwrap();
    assert_eq!(g[0].value().to_vec(), vec![5.0, -1.0]);
    assert_eq!(g[1].value().to_vec(), vec![10.0, -2.0]);
}

#[test]
fn grad_with_respect_to_a_constant_is_an_error() {
    let tape = Tape::new();
    let x = tape.leaf(values(&[2], 20));
    let c = tape.constant(values(&[2], 21));
    let y = x.mul(c).sum();
    assert_eq!(
        tape.grad(&[y], &[x, c], CreateGraph::Yes).unwrap_err(),
        GradError::ConstantInput { index: 1 }
    );
}

#[test]
fn third_derivatives_work_too() {
    // d³/dx³ x⁴ = 24x.
    let tape = Tape::new();
    let x = tape.leaf(Tensor::from_vec(&[2], vec![0.5, -2.0]));
    let y = x.powf(4.0).sum();
    let g1 = tape.grad(&[y], &[x], CreateGraph::Yes).unwrap()[0];
    let g2 = tape.grad(&[g1], &[x], CreateGraph::Yes).unwrap()[0];
    let g3 = tape.grad(&[g2], &[x], CreateGraph::No).unwrap()[0];
    let got = g3.value().to_vec();
    assert!(
        (got[0] - 12.0).abs() < 1e-4 && (got[1] + 48.0).abs() < 1e-3,
        "{got:?}"
    );
}
