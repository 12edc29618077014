//! Reductions.

use crate::Var;
use crate::op::Op;

impl<'t> Var<'t> {
    /// Sum over `axes`. Backward: `gy` broadcast back over the reduced axes.
    #[track_caller]
    pub fn sum_axes(self, axes: &[usize], keepdim: bool) -> Var<'t> {
        let op = Op::SumAxes {
            x: self.id,
            axes: axes.to_vec(),
            keepdim,
        };
        self.unary(op, |x| x.sum_axes(axes, keepdim))
    }

    /// Sum of all elements, as a scalar (0-D) value.
    pub fn sum(self) -> Var<'t> {
        let axes: Vec<usize> = (0..self.shape().len()).collect();
        self.sum_axes(&axes, false)
    }

    /// Mean over `axes`: a sum scaled by the count.
    #[track_caller]
    pub fn mean_axes(self, axes: &[usize], keepdim: bool) -> Var<'t> {
        let shape = self.shape();
        let count: usize = axes
            .iter()
            .map(|&a| shape.get(a).copied().unwrap_or(1))
            .product();
        self.sum_axes(axes, keepdim)
            .mul_scalar(1.0 / count.max(1) as f32)
    }

    /// Mean of all elements, as a scalar (0-D) value.
    pub fn mean(self) -> Var<'t> {
        let n: usize = self.shape().iter().product();
        self.sum().mul_scalar(1.0 / n.max(1) as f32)
    }

    /// Maximum over `axes`. Backward: `gy` to the maximal elements, shared equally by ties.
    #[track_caller]
    pub fn max_axes(self, axes: &[usize], keepdim: bool) -> Var<'t> {
        let op = Op::MaxAxes {
            x: self.id,
            axes: axes.to_vec(),
            keepdim,
        };
        self.unary(op, |x| x.max_axes(axes, keepdim))
    }
}
