//! What the gradient penalties share: the gradient of D's output with respect to its input,
//! recorded on the tape (`CreateGraph::Yes`) so that a penalty on it can be differentiated
//! with respect to D's weights.

use crate::error::Result;
use crate::objective::{DContext, objective_error};
use gantry_autodiff::{CreateGraph, Var};

/// `d sum(out) / d x` per sample, flattened to `[N, features]`, as a differentiable value.
///
/// # Errors
/// If the path from `x` to `out` has an op without a second derivative (batch norm): the
/// message names it.
fn input_gradient<'t>(x: Var<'t>, out: Var<'t>) -> Result<Var<'t>> {
    let tape = x.tape();
    let grads = tape
        .grad(&[out.sum()], &[x], CreateGraph::Yes)
        .map_err(|e| {
            objective_error(format!("a gradient penalty needs second derivatives: {e}"))
        })?;
    let g = grads[0];
    let n = g.shape()[0];
    Ok(g.reshape(&[n, g.shape().iter().skip(1).product()]))
}

/// WGAN-GP's penalty (Gulrajani et al. 2017): `mean_n (|d D(x) / d x|_2 - 1)²` at the
/// samples `x` (a leaf), with `out = D(x)`.
///
/// # Errors
/// If the path from `x` to `out` has an op without a second derivative (batch norm): the
/// message names it.
pub fn gradient_penalty<'t>(x: Var<'t>, out: Var<'t>) -> Result<Var<'t>> {
    let g = input_gradient(x, out)?;
    // The small constant keeps the square root's derivative finite at a zero gradient.
    let norm = g.mul(g).sum_axes(&[1], false).add_scalar(1e-12).sqrt();
    Ok(norm.add_scalar(-1.0).powf(2.0).mean())
}

/// The R1 penalty (Mescheder et al. 2018): `½ mean_n |d D(x) / d x|²` at real samples `x`
/// (a leaf), with `out = D(x)`.
///
/// # Errors
/// If the path from `x` to `out` has an op without a second derivative (batch norm): the
/// message names it.
pub fn r1_penalty<'t>(x: Var<'t>, out: Var<'t>) -> Result<Var<'t>> {
    let g = input_gradient(x, out)?;
    let n = g.shape()[0] as f32;
    Ok(g.mul(g).sum().mul_scalar(0.5 / n))
}

/// Random interpolates `real + α (fake - real)` with one `α ~ U[0, 1)` per sample, drawn from
/// the step's tape stream.
pub(super) fn interpolates(cx: &DContext<'_, '_>) -> gantry_tensor::Tensor {
    use rand::Rng;
    let shape = cx.real.shape().to_vec();
    let mut alpha_shape = vec![1; shape.len()];
    alpha_shape[0] = shape[0];
    let alpha: Vec<f32> = {
        let mut rng = cx.tape.rng();
        (0..shape[0]).map(|_| rng.random::<f32>()).collect()
    };
    let alpha = gantry_tensor::Tensor::from_vec(&alpha_shape, alpha);
    cx.real.add(&alpha.mul(&cx.fake.sub(&cx.real)))
}
