//! Activation functions.

use crate::Var;
use crate::op::Op;

impl<'t> Var<'t> {
    /// `max(x, 0)`. Backward: `gy` where `x > 0`.
    pub fn relu(self) -> Var<'t> {
        self.unary(Op::Relu(self.id), |x| x.relu())
    }

    /// `x` where `x > 0`, else `slope * x`. Backward: `gy` or `slope * gy`.
    pub fn leaky_relu(self, slope: f32) -> Var<'t> {
        self.unary(Op::LeakyRelu(self.id, slope), |x| x.leaky_relu(slope))
    }

    /// `σ(x) = 1 / (1 + e^-x)`, stable for large `|x|`. Backward: `gy * σ(x) * (1 - σ(x))`.
    pub fn sigmoid(self) -> Var<'t> {
        self.unary(Op::Sigmoid(self.id), |x| x.sigmoid())
    }

    /// `tanh x`. Backward: `gy * (1 - tanh² x)`.
    pub fn tanh(self) -> Var<'t> {
        self.unary(Op::Tanh(self.id), |x| x.tanh())
    }

    /// `ln(1 + eˣ)`, written `max(x, 0) + ln(1 + e^-|x|)` so that it neither overflows nor
    /// loses precision for large `|x|`. Backward: `gy * sigmoid(x)`.
    pub fn softplus(self) -> Var<'t> {
        self.unary(Op::Softplus(self.id), |x| {
            x.map(|v| v.max(0.0) + (-v.abs()).exp().ln_1p())
        })
    }

    /// `log softmax` along `axis`: `y = x - ln Σ_axis e^x`, computed with the maximum
    /// subtracted first so that no exponential overflows.
    /// Backward: `gy - e^y · Σ_axis gy` (`e^y` is the softmax).
    ///
    /// # Panics
    /// If `axis` is not an axis of `x`.
    #[track_caller]
    pub fn log_softmax(self, axis: usize) -> Var<'t> {
        let shape = self.shape();
        assert!(
            axis < shape.len(),
            "log_softmax: axis {axis} out of range for shape {shape:?}"
        );
        self.unary(Op::LogSoftmax { x: self.id, axis }, |x| {
            let shifted = x.sub(&x.max_axes(&[axis], true));
            let lse = shifted.exp().sum_axes(&[axis], true).ln();
            shifted.sub(&lse)
        })
    }
}
