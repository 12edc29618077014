//! Broadcasting arithmetic and elementwise math.

use crate::Var;
use crate::op::Op;
use gantry_tensor::Tensor;

// `add`, `sub`, `mul`, `div` and `neg` mirror `Tensor`'s methods of the same names; `Var` is
// `Copy`, so they take `self`, which clippy mistakes for would-be operator impls.
#[allow(clippy::should_implement_trait)]
impl<'t> Var<'t> {
    #[track_caller]
    fn binary(
        self,
        other: Var<'t>,
        op: fn(usize, usize) -> Op,
        f: fn(&Tensor, &Tensor) -> Tensor,
    ) -> Var<'t> {
        assert!(
            std::ptr::eq(self.tape, other.tape),
            "binary op: variables come from different tapes"
        );
        let value = {
            let nodes = self.tape.nodes();
            f(&nodes[self.id].value, &nodes[other.id].value)
        };
        self.tape.record(value, op(self.id, other.id))
    }

    pub(crate) fn unary(self, op: Op, f: impl FnOnce(&Tensor) -> Tensor) -> Var<'t> {
        let value = f(&self.tape.nodes()[self.id].value);
        self.tape.record(value, op)
    }

    /// `self + other`, broadcasting. Backward: the gradient, summed over broadcast axes.
    #[track_caller]
    pub fn add(self, other: Var<'t>) -> Var<'t> {
        self.binary(other, Op::Add, |a, b| a.add(b))
    }

    /// `self - other`, broadcasting.
    #[track_caller]
    pub fn sub(self, other: Var<'t>) -> Var<'t> {
        self.binary(other, Op::Sub, |a, b| a.sub(b))
    }

    /// `self * other`, broadcasting. Backward: `gy * other`, `gy * self`.
    #[track_caller]
    pub fn mul(self, other: Var<'t>) -> Var<'t> {
        self.binary(other, Op::Mul, |a, b| a.mul(b))
    }

    /// `self / other`, broadcasting. Backward: `gy / other`, `-gy * self / other²`.
    #[track_caller]
    pub fn div(self, other: Var<'t>) -> Var<'t> {
        self.binary(other, Op::Div, |a, b| a.div(b))
    }

    /// `-self`.
    pub fn neg(self) -> Var<'t> {
        self.unary(Op::Neg(self.id), |x| x.neg())
    }

    /// `self + c`.
    pub fn add_scalar(self, c: f32) -> Var<'t> {
        self.unary(Op::AddScalar(self.id), |x| x.add_scalar(c))
    }

    /// `self * c`.
    pub fn mul_scalar(self, c: f32) -> Var<'t> {
        self.unary(Op::MulScalar(self.id, c), |x| x.mul_scalar(c))
    }

    /// `e^x`. Backward: `gy * e^x`.
    pub fn exp(self) -> Var<'t> {
        self.unary(Op::Exp(self.id), |x| x.exp())
    }

    /// `ln x`. Backward: `gy / x`.
    pub fn ln(self) -> Var<'t> {
        self.unary(Op::Ln(self.id), |x| x.ln())
    }

    /// `√x`. Backward: `gy / (2√x)`.
    pub fn sqrt(self) -> Var<'t> {
        self.unary(Op::Sqrt(self.id), |x| x.sqrt())
    }

    /// `x^p`. Backward: `gy * p * x^(p-1)`.
    pub fn powf(self, p: f32) -> Var<'t> {
        self.unary(Op::Powf(self.id, p), |x| x.powf(p))
    }

    /// `|x|`. Backward: `gy * sign(x)`, 0 at 0.
    pub fn abs(self) -> Var<'t> {
        self.unary(Op::Abs(self.id), |x| x.abs())
    }

    /// `x` limited to `[lo, hi]`. Backward: `gy` where `lo <= x <= hi`, else 0.
    pub fn clamp(self, lo: f32, hi: f32) -> Var<'t> {
        self.unary(Op::Clamp(self.id, lo, hi), |x| x.clamp(lo, hi))
    }
}
