//! What a backward rule computes with.
//!
//! Every rule in `op.rs` is written once, generic over [`Calc`]. On the first-order path the
//! values are plain [`Tensor`]s: nothing is recorded and the fused kernels run as before. When a
//! gradient must be differentiable again ([`CreateGraph::Yes`](crate::CreateGraph)) the same
//! rule runs on [`Var`]s, so each step of it is recorded on the tape like any forward op, and a
//! loss built from the gradient can be differentiated once more.

use crate::custom::CustomOp;
use crate::error::GradError;
use crate::tape::Var;
use gantry_tensor::{Conv2dParams, Pads2d, Tensor};

/// The operations backward rules are written in, for tensors and for recorded variables.
pub(crate) trait Calc: Clone + Sized {
    fn shape(&self) -> Vec<usize>;
    /// The current value, for what a rule treats as a constant (masks, signs).
    fn value(&self) -> Tensor;
    /// `t` as a constant of this kind: its derivative is zero.
    fn lift(&self, t: Tensor) -> Self;

    fn add(&self, o: &Self) -> Self;
    /// `self + o`, written over `self` where nothing else holds it (a gradient summed over
    /// the uses of a value).
    fn accumulate(self, o: &Self) -> Self {
        self.add(o)
    }
    fn sub(&self, o: &Self) -> Self;
    fn mul(&self, o: &Self) -> Self;
    fn div(&self, o: &Self) -> Self;
    fn neg(&self) -> Self;
    fn add_scalar(&self, c: f32) -> Self;
    fn mul_scalar(&self, c: f32) -> Self;
    fn exp(&self) -> Self;
    fn sigmoid(&self) -> Self;
    fn powf(&self, p: f32) -> Self;
    fn clamp(&self, lo: f32, hi: f32) -> Self;
    /// `self * factor(x)` for a piecewise-constant `factor` (relu, clamp, sign): the factor is
    /// a constant, and 0 gives 0 even for a non-finite `self`, as PyTorch's threshold rule.
    fn mul_step(&self, x: &Self, name: &str, factor: impl Fn(f32) -> f32 + Sync + Send) -> Self;
    /// `self * k * s` for a single-element `s` (a loss's output gradient).
    fn scale_by(&self, s: &Self, k: f32) -> Self;

    fn sum_to(&self, shape: &[usize]) -> Self;
    fn broadcast_to(&self, shape: &[usize]) -> Self;
    fn sum_axes(&self, axes: &[usize], keepdim: bool) -> Self;
    fn reshape(&self, shape: &[usize]) -> Self;
    fn permute(&self, axes: &[usize]) -> Self;
    fn slice_axis(&self, axis: usize, start: usize, end: usize) -> Self;
    fn pad(&self, pads: &[(usize, usize)]) -> Self;
    fn unpad(&self, pads: &[(usize, usize)]) -> Self;
    fn upsample_nearest2d(&self, f: usize) -> Self;
    fn sum_pool2d(&self, f: usize) -> Self;
    fn reflection_pad2d(&self, pads: Pads2d) -> Self;
    fn reflection_pad2d_fold(&self, pads: Pads2d) -> Self;

    fn matmul_t(&self, o: &Self, ta: bool, tb: bool) -> Self;
    fn conv2d(&self, w: &Self, p: Conv2dParams) -> Self;
    fn conv2d_grad_input(&self, w: &Self, input_hw: [usize; 2], p: Conv2dParams) -> Self;
    fn conv2d_grad_weight(&self, gy: &Self, kernel: [usize; 2], p: Conv2dParams) -> Self;
    /// `(self.conv2d(w, p), self.conv2d_grad_weight(gy, kernel of w, p))`: on tensors one
    /// column matrix of `self` serves both (a transposed convolution's backward needs both).
    fn conv2d_and_grad_weight(&self, w: &Self, gy: &Self, p: Conv2dParams) -> (Self, Self) {
        let ws = w.shape();
        (
            self.conv2d(w, p),
            self.conv2d_grad_weight(gy, [ws[2], ws[3]], p),
        )
    }

    /// tanh's rule, `gy (1 - y²)` for `y = tanh(x)`.
    fn tanh_backward(gy: &Self, y: &Self) -> Self {
        gy.mul(&y.mul(y).neg().add_scalar(1.0))
    }

    /// Batch norm's fused rule, first order only.
    #[allow(clippy::too_many_arguments)]
    fn batch_norm_backward(
        x: &Self,
        gy: &Self,
        gamma: &Self,
        mean: &Tensor,
        var: &Tensor,
        eps: f32,
        batch_stats: bool,
    ) -> Result<(Self, Self, Self), GradError>;

    /// Instance norm's input gradient from the input `x`, the output `y`, the output gradient
    /// `gy` and the per-plane `rstd` of the forward pass.
    fn instance_norm_backward(x: &Self, y: &Self, gy: &Self, rstd: &Tensor, eps: f32) -> Self;

    /// Pixel norm's input gradient from the input `x`, the output `y`, the output gradient
    /// `gy` and the per-position `scale` of the forward pass.
    fn pixel_norm_backward(x: &Self, y: &Self, gy: &Self, scale: &Tensor, eps: f32) -> Self;

    /// A user-defined op's rule: `None` for inputs that get no gradient.
    fn custom_backward(
        op: &dyn CustomOp,
        inputs: &[Self],
        y: &Self,
        gy: &Self,
    ) -> Result<Vec<Option<Self>>, GradError>;
}

impl Calc for Tensor {
    fn shape(&self) -> Vec<usize> {
        Tensor::shape(self).to_vec()
    }
    fn value(&self) -> Tensor {
        self.clone()
    }
    fn lift(&self, t: Tensor) -> Self {
        t
    }
    fn add(&self, o: &Self) -> Self {
        Tensor::add(self, o)
    }
    fn accumulate(mut self, o: &Self) -> Self {
        self += o;
        self
    }
    fn tanh_backward(gy: &Self, y: &Self) -> Self {
        // The composite's operations in its order, in one pass: the same bits.
        gy.zip_map(y, "tanh_backward", |g, t| g * (-(t * t) + 1.0))
    }
    fn sub(&self, o: &Self) -> Self {
        Tensor::sub(self, o)
    }
    fn mul(&self, o: &Self) -> Self {
        Tensor::mul(self, o)
    }
    fn div(&self, o: &Self) -> Self {
        Tensor::div(self, o)
    }
    fn neg(&self) -> Self {
        Tensor::neg(self)
    }
    fn add_scalar(&self, c: f32) -> Self {
        Tensor::add_scalar(self, c)
    }
    fn mul_scalar(&self, c: f32) -> Self {
        Tensor::mul_scalar(self, c)
    }
    fn exp(&self) -> Self {
        Tensor::exp(self)
    }
    fn sigmoid(&self) -> Self {
        Tensor::sigmoid(self)
    }
    fn powf(&self, p: f32) -> Self {
        Tensor::powf(self, p)
    }
    fn clamp(&self, lo: f32, hi: f32) -> Self {
        Tensor::clamp(self, lo, hi)
    }
    fn mul_step(&self, x: &Self, name: &str, factor: impl Fn(f32) -> f32 + Sync + Send) -> Self {
        self.zip_map(x, name, |g, v| {
            let k = factor(v);
            if k == 0.0 { 0.0 } else { g * k }
        })
    }
    fn scale_by(&self, s: &Self, k: f32) -> Self {
        self.mul_scalar(s.item() * k)
    }
    fn sum_to(&self, shape: &[usize]) -> Self {
        Tensor::sum_to(self, shape)
    }
    fn broadcast_to(&self, shape: &[usize]) -> Self {
        Tensor::broadcast_to(self, shape)
    }
    fn sum_axes(&self, axes: &[usize], keepdim: bool) -> Self {
        Tensor::sum_axes(self, axes, keepdim)
    }
    fn reshape(&self, shape: &[usize]) -> Self {
        Tensor::reshape(self, shape)
    }
    fn permute(&self, axes: &[usize]) -> Self {
        Tensor::permute(self, axes)
    }
    fn slice_axis(&self, axis: usize, start: usize, end: usize) -> Self {
        Tensor::slice_axis(self, axis, start, end)
    }
    fn pad(&self, pads: &[(usize, usize)]) -> Self {
        Tensor::pad(self, pads, 0.0)
    }
    fn unpad(&self, pads: &[(usize, usize)]) -> Self {
        Tensor::unpad(self, pads)
    }
    fn upsample_nearest2d(&self, f: usize) -> Self {
        Tensor::upsample_nearest2d(self, f)
    }
    fn sum_pool2d(&self, f: usize) -> Self {
        Tensor::sum_pool2d(self, f)
    }
    fn reflection_pad2d(&self, pads: Pads2d) -> Self {
        Tensor::reflection_pad2d(self, pads)
    }
    fn reflection_pad2d_fold(&self, pads: Pads2d) -> Self {
        Tensor::reflection_pad2d_fold(self, pads)
    }
    fn matmul_t(&self, o: &Self, ta: bool, tb: bool) -> Self {
        Tensor::matmul_t(self, o, ta, tb)
    }
    fn conv2d(&self, w: &Self, p: Conv2dParams) -> Self {
        Tensor::conv2d(self, w, None, p)
    }
    fn conv2d_grad_input(&self, w: &Self, input_hw: [usize; 2], p: Conv2dParams) -> Self {
        Tensor::conv2d_grad_input(self, w, input_hw, p)
    }
    fn conv2d_grad_weight(&self, gy: &Self, kernel: [usize; 2], p: Conv2dParams) -> Self {
        Tensor::conv2d_grad_weight(self, gy, kernel, p)
    }
    fn conv2d_and_grad_weight(&self, w: &Self, gy: &Self, p: Conv2dParams) -> (Self, Self) {
        Tensor::conv2d_and_grad_weight(self, w, gy, p)
    }
    fn batch_norm_backward(
        x: &Self,
        gy: &Self,
        gamma: &Self,
        mean: &Tensor,
        var: &Tensor,
        eps: f32,
        batch_stats: bool,
    ) -> Result<(Self, Self, Self), GradError> {
        Ok(x.batch_norm_backward(gy, gamma, mean, var, eps, batch_stats))
    }
    fn instance_norm_backward(_x: &Self, y: &Self, gy: &Self, rstd: &Tensor, _eps: f32) -> Self {
        y.instance_norm_backward(gy, rstd)
    }
    fn pixel_norm_backward(_x: &Self, y: &Self, gy: &Self, scale: &Tensor, _eps: f32) -> Self {
        y.pixel_norm_backward(gy, scale)
    }
    fn custom_backward(
        op: &dyn CustomOp,
        inputs: &[Self],
        y: &Self,
        gy: &Self,
    ) -> Result<Vec<Option<Self>>, GradError> {
        let refs: Vec<&Tensor> = inputs.iter().collect();
        Ok(op.backward(&refs, y, gy))
    }
}

impl<'t> Calc for Var<'t> {
    fn shape(&self) -> Vec<usize> {
        Var::shape(self)
    }
    fn value(&self) -> Tensor {
        Var::value(self)
    }
    fn lift(&self, t: Tensor) -> Self {
        self.tape.constant(t)
    }
    fn add(&self, o: &Self) -> Self {
        Var::add(*self, *o)
    }
    fn sub(&self, o: &Self) -> Self {
        Var::sub(*self, *o)
    }
    fn mul(&self, o: &Self) -> Self {
        Var::mul(*self, *o)
    }
    fn div(&self, o: &Self) -> Self {
        Var::div(*self, *o)
    }
    fn neg(&self) -> Self {
        Var::neg(*self)
    }
    fn add_scalar(&self, c: f32) -> Self {
        Var::add_scalar(*self, c)
    }
    fn mul_scalar(&self, c: f32) -> Self {
        Var::mul_scalar(*self, c)
    }
    fn exp(&self) -> Self {
        Var::exp(*self)
    }
    fn sigmoid(&self) -> Self {
        Var::sigmoid(*self)
    }
    fn powf(&self, p: f32) -> Self {
        Var::powf(*self, p)
    }
    fn clamp(&self, lo: f32, hi: f32) -> Self {
        Var::clamp(*self, lo, hi)
    }
    fn mul_step(&self, x: &Self, _name: &str, factor: impl Fn(f32) -> f32 + Sync + Send) -> Self {
        // The factor is constant almost everywhere: its own derivative is zero.
        let k = self.lift(x.value().map(factor));
        Var::mul(*self, k)
    }
    fn scale_by(&self, s: &Self, k: f32) -> Self {
        Var::mul(*self, s.reshape(&[])).mul_scalar(k)
    }
    fn sum_to(&self, shape: &[usize]) -> Self {
        Var::sum_to(*self, shape)
    }
    fn broadcast_to(&self, shape: &[usize]) -> Self {
        Var::broadcast_to(*self, shape)
    }
    fn sum_axes(&self, axes: &[usize], keepdim: bool) -> Self {
        Var::sum_axes(*self, axes, keepdim)
    }
    fn reshape(&self, shape: &[usize]) -> Self {
        Var::reshape(*self, shape)
    }
    fn permute(&self, axes: &[usize]) -> Self {
        Var::permute(*self, axes)
    }
    fn slice_axis(&self, axis: usize, start: usize, end: usize) -> Self {
        Var::slice_axis(*self, axis, start, end)
    }
    fn pad(&self, pads: &[(usize, usize)]) -> Self {
        Var::pad(*self, pads, 0.0)
    }
    fn unpad(&self, pads: &[(usize, usize)]) -> Self {
        Var::unpad(*self, pads)
    }
    fn upsample_nearest2d(&self, f: usize) -> Self {
        Var::upsample_nearest2d(*self, f)
    }
    fn sum_pool2d(&self, f: usize) -> Self {
        Var::sum_pool2d(*self, f)
    }
    fn reflection_pad2d(&self, pads: Pads2d) -> Self {
        Var::reflection_pad2d(*self, pads)
    }
    fn reflection_pad2d_fold(&self, pads: Pads2d) -> Self {
        Var::reflection_pad2d_fold(*self, pads)
    }
    fn matmul_t(&self, o: &Self, ta: bool, tb: bool) -> Self {
        Var::matmul_t(*self, *o, ta, tb)
    }
    fn conv2d(&self, w: &Self, p: Conv2dParams) -> Self {
        Var::conv2d(*self, *w, None, p)
    }
    fn conv2d_grad_input(&self, w: &Self, input_hw: [usize; 2], p: Conv2dParams) -> Self {
        Var::conv2d_grad_input(*self, *w, input_hw, p)
    }
    fn conv2d_grad_weight(&self, gy: &Self, kernel: [usize; 2], p: Conv2dParams) -> Self {
        Var::conv2d_grad_weight(*self, *gy, kernel, p)
    }
    fn batch_norm_backward(
        _x: &Self,
        _gy: &Self,
        _gamma: &Self,
        _mean: &Tensor,
        _var: &Tensor,
        _eps: f32,
        _batch_stats: bool,
    ) -> Result<(Self, Self, Self), GradError> {
        Err(GradError::NoSecondDerivative {
            op: "batch_norm".into(),
        })
    }
    /// Recorded, so that the gradient can be differentiated again: the statistics are
    /// recomputed from `x` on the tape (the saved `rstd` would be a constant to it), and `y`
    /// is the op's own output, whose dependence on `x` the tape already holds.
    fn instance_norm_backward(x: &Self, y: &Self, gy: &Self, _rstd: &Tensor, eps: f32) -> Self {
        let shape = x.shape();
        let per_plane = 1.0 / (shape[2] * shape[3]) as f32;
        let mean = |t: Var<'t>| {
            t.sum_axes(&[2, 3], true)
                .mul_scalar(per_plane)
                .broadcast_to(&shape)
        };
        let centred = Var::sub(*x, mean(*x));
        let rstd = Var::powf(Var::add_scalar(mean(Var::mul(centred, centred)), eps), -0.5);
        let projection = Var::mul(*y, mean(Var::mul(*gy, *y)));
        Var::mul(Var::sub(Var::sub(*gy, mean(*gy)), projection), rstd)
    }
    /// Recorded as [`Calc::instance_norm_backward`] is: the scale recomputed from `x`.
    fn pixel_norm_backward(x: &Self, y: &Self, gy: &Self, _scale: &Tensor, eps: f32) -> Self {
        let shape = x.shape();
        let per_channel = 1.0 / shape[1] as f32;
        let mean = |t: Var<'t>| {
            t.sum_axes(&[1], true)
                .mul_scalar(per_channel)
                .broadcast_to(&shape)
        };
        let scale = Var::powf(Var::add_scalar(mean(Var::mul(*x, *x)), eps), -0.5);
        let projection = Var::mul(*y, mean(Var::mul(*gy, *y)));
        Var::mul(Var::sub(*gy, projection), scale)
    }
    fn custom_backward(
        op: &dyn CustomOp,
        inputs: &[Self],
        y: &Self,
        gy: &Self,
    ) -> Result<Vec<Option<Self>>, GradError> {
        op.backward_graph(inputs, *y, *gy)
            .ok_or_else(|| GradError::NoSecondDerivative {
                op: op.name().to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fused tanh rule on tensors gives the composite's bits (the rule variables record),
    /// and not those of `gy` alone.
    #[test]
    fn fused_tanh_rule_is_the_composite_bit_for_bit() {
        let n = 70_001;
        let y = Tensor::from_vec(&[n], (0..n).map(|i| (i as f32 * 0.37).sin()).collect());
        let gy = Tensor::from_vec(&[n], (0..n).map(|i| (i as f32 * 0.11).cos()).collect());
        let fused = <Tensor as Calc>::tanh_backward(&gy, &y).to_vec();
        let composite = gy.mul(&y.mul(&y).neg().add_scalar(1.0)).to_vec();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&fused), bits(&composite));
        assert_ne!(bits(&fused), bits(&gy.to_vec()));
    }
}
