//! Losses against constant targets, reduced to a scalar.

use crate::Var;
use crate::op::{Op, Reduction};
use gantry_tensor::Tensor;

#[track_caller]
fn check_target(op: &str, pred: &[usize], target: &Tensor) {
    assert!(
        pred == target.shape(),
        "{op}: prediction {pred:?} and target {:?} differ",
        target.shape()
    );
}

impl<'t> Var<'t> {
    /// Binary cross-entropy of logits `x` against targets `t` in `[0, 1]`, computed the stable
    /// way: `max(x, 0) - x t + ln(1 + e^-|x|)`, finite for any logit.
    /// Backward: `(σ(x) - t)`, scaled by the reduction.
    ///
    /// # Panics
    /// If the target's shape differs from the logits'.
    #[track_caller]
    pub fn bce_with_logits(self, target: &Tensor, reduction: Reduction) -> Var<'t> {
        let x = self.value();
        check_target("bce_with_logits", x.shape(), target);
        let terms = x.zip_map(target, "bce_with_logits", |x, t| {
            x.max(0.0) - x * t + (-x.abs()).exp().ln_1p()
        });
        let loss = terms.sum_all() * reduction.scale(terms.len());
        let op = Op::BceWithLogits {
            logits: self.id,
            target: target.clone(),
            reduction,
        };
        self.tape.record(Tensor::scalar(loss), op)
    }

    /// Binary cross-entropy of probabilities `p` against targets `t`, with each logarithm
    /// clamped at -100 as PyTorch's `BCELoss`: `-(t max(ln p, -100) + (1-t) max(ln(1-p), -100))`.
    /// Backward (PyTorch's): `(p - t) / max(p (1 - p), 1e-12)`. Prefer
    /// [`Var::bce_with_logits`], which is exact for any logit.
    ///
    /// # Panics
    /// If the target's shape differs from the probabilities'.
    #[track_caller]
    pub fn bce(self, target: &Tensor, reduction: Reduction) -> Var<'t> {
        let p = self.value();
        check_target("bce", p.shape(), target);
        let terms = p.zip_map(target, "bce", |p, t| {
            -(t * p.ln().max(-100.0) + (1.0 - t) * (1.0 - p).ln().max(-100.0))
        });
        let loss = terms.sum_all() * reduction.scale(terms.len());
        let op = Op::Bce {
            probs: self.id,
            target: target.clone(),
            reduction,
        };
        self.tape.record(Tensor::scalar(loss), op)
    }

    /// Mean (or summed) absolute error `|pred - target|`. Backward: `sign(pred - target)`.
    ///
    /// # Panics
    /// If the target's shape differs from the prediction's.
    #[track_caller]
    pub fn l1_loss(self, target: &Tensor, reduction: Reduction) -> Var<'t> {
        let p = self.value();
        check_target("l1_loss", p.shape(), target);
        let loss = p.sub(target).abs().sum_all() * reduction.scale(p.len());
        let op = Op::L1 {
            pred: self.id,
            target: target.clone(),
            reduction,
        };
        self.tape.record(Tensor::scalar(loss), op)
    }

    /// Mean (or summed) squared error `(pred - target)²`. Backward: `2 (pred - target)`.
    ///
    /// # Panics
    /// If the target's shape differs from the prediction's.
    #[track_caller]
    pub fn mse_loss(self, target: &Tensor, reduction: Reduction) -> Var<'t> {
        let p = self.value();
        check_target("mse_loss", p.shape(), target);
        let loss = p.sub(target).powf(2.0).sum_all() * reduction.scale(p.len());
        let op = Op::Mse {
            pred: self.id,
            target: target.clone(),
            reduction,
        };
        self.tape.record(Tensor::scalar(loss), op)
    }
}
