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
}
