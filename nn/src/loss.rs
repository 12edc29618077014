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

/// Cross-entropy of class `logits` (`[N, C]`) against class indices `labels` (`N` of them,
/// each below `C`): `-log softmax(logits)[i, labels[i]]`, reduced over the batch
/// (`CrossEntropyLoss`). Built on [`Var::log_softmax`], so it is finite for any logit; its
/// gradient is `softmax(logits) - onehot(labels)`, scaled by the reduction.
///
/// ```
/// use gantry_autodiff::{Reduction, Tape};
/// use gantry_nn::loss;
/// use gantry_tensor::Tensor;
///
/// let tape = Tape::new();
/// let logits = tape.leaf(Tensor::from_vec(&[2, 3], vec![0.0, 0.0, 0.0, 100.0, 0.0, 0.0]));
/// let l = loss::cross_entropy(logits, &[2, 0], Reduction::Sum);
/// assert!((l.value().item() - 3f32.ln()).abs() < 1e-6); // uniform row: ln 3; sure row: 0
/// ```
///
/// # Panics
/// If `logits` is not 2-D, the number of labels differs from its rows, or a label is not
/// below its columns.
#[track_caller]
pub fn cross_entropy<'t>(logits: Var<'t>, labels: &[usize], reduction: Reduction) -> Var<'t> {
    let shape = logits.shape();
    assert!(
        shape.len() == 2 && shape[0] == labels.len(),
        "cross_entropy: logits {shape:?} and {} labels do not match",
        labels.len()
    );
    let (n, c) = (shape[0], shape[1]);
    let mut onehot = vec![0.0f32; n * c];
    for (i, &l) in labels.iter().enumerate() {
        assert!(
            l < c,
            "cross_entropy: label {l} of row {i} is not below {c} classes"
        );
        onehot[i * c + l] = 1.0;
    }
    let picked = logits
        .log_softmax(1)
        .mul(logits.tape().constant(Tensor::from_vec(&[n, c], onehot)))
        .sum();
    picked.mul_scalar(-reduction.scale(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_autodiff::Tape;

    #[test]
    fn cross_entropy_value_and_gradient_are_softmax_minus_onehot() {
        let raw = vec![1.0, 2.0, 3.0, -1.0, 0.5, 4.0];
        let tape = Tape::new();
        let logits = tape.leaf(Tensor::from_vec(&[2, 3], raw.clone()));
        let l = cross_entropy(logits, &[0, 2], Reduction::Mean);
        let mut want_loss = 0.0;
        let mut want_grad = Vec::new();
        for (row, label) in raw.chunks(3).zip([0, 2]) {
            let z: f64 = row.iter().map(|&v| f64::from(v).exp()).sum();
            want_loss += -(f64::from(row[label]).exp() / z).ln() / 2.0;
            for (j, &v) in row.iter().enumerate() {
                let p = f64::from(v).exp() / z;
                want_grad.push((p - f64::from(u8::from(j == label))) / 2.0);
            }
        }
        assert!((f64::from(l.value().item()) - want_loss).abs() < 1e-6);
        let g = l.backward().get(logits).unwrap().to_vec();
        for (a, b) in g.iter().zip(&want_grad) {
            assert!((f64::from(*a) - b).abs() < 1e-6, "{g:?} vs {want_grad:?}");
        }
    }

    #[test]
    fn cross_entropy_is_finite_for_huge_logits() {
        let tape = Tape::new();
        let logits = tape.leaf(Tensor::from_vec(&[1, 2], vec![1e4, -1e4]));
        let l = cross_entropy(logits, &[1], Reduction::Mean);
        assert_eq!(l.value().item(), 2e4);
        let g = l.backward().get(logits).unwrap().to_vec();
        assert_eq!(g, vec![1.0, -1.0]);
    }
}
