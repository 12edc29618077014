//! Losses, each reducing to a scalar with a mean (default) or a sum.
//!
//! Targets are tensors of the prediction's shape, so per-element and smoothed labels work;
//! [`full_like`] makes a constant target (`full_like(&logits, 0.9)` for one-sided smoothing).

use gantry_autodiff::{Reduction, Var};
use gantry_tensor::Tensor;

/// A target filled with `value`, shaped like `pred`.
pub fn full_like(pred: &Var<'_>, value: f32) -> Tensor {
    Tensor::full(&pred.shape(), value)
}

/// Binary cross-entropy on logits, computed stably (`BCEWithLogitsLoss`).
///
/// ```
/// use gantry_autodiff::{Reduction, Tape};
/// use gantry_nn::loss;
/// use gantry_tensor::Tensor;
///
/// let tape = Tape::new();
/// let logits = tape.leaf(Tensor::from_vec(&[2], vec![80.0, -80.0]));
/// let l = loss::bce_with_logits(logits, &Tensor::from_vec(&[2], vec![0.0, 1.0]), Reduction::Mean);
/// assert_eq!(l.value().item(), 80.0); // finite where log(sigmoid(x)) would overflow
/// ```
pub fn bce_with_logits<'t>(logits: Var<'t>, target: &Tensor, reduction: Reduction) -> Var<'t> {
    logits.bce_with_logits(target, reduction)
}

/// Binary cross-entropy on probabilities, logarithms clamped at -100 (`BCELoss`).
pub fn bce<'t>(probs: Var<'t>, target: &Tensor, reduction: Reduction) -> Var<'t> {
    probs.bce(target, reduction)
}

/// Absolute error (`L1Loss`).
pub fn l1<'t>(pred: Var<'t>, target: &Tensor, reduction: Reduction) -> Var<'t> {
    pred.l1_loss(target, reduction)
}

/// Squared error (`MSELoss`).
pub fn mse<'t>(pred: Var<'t>, target: &Tensor, reduction: Reduction) -> Var<'t> {
    pred.mse_loss(target, reduction)
}
