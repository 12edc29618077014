//! Shape changes: reshape, permute, slice, concat, pad.

use crate::Var;
use crate::op::Op;
use gantry_tensor::{Pads2d, Tensor};

impl<'t> Var<'t> {
    /// The same elements with another shape. Backward: `gy` reshaped back.
    #[track_caller]
    pub fn reshape(self, shape: &[usize]) -> Var<'t> {
        self.unary(Op::Reshape(self.id), |x| x.reshape(shape))
    }

    /// Flattens every axis after the first: `[N, ...] -> [N, rest]`.
    pub fn flatten(self) -> Var<'t> {
        let shape = self.shape();
        let n = shape.first().copied().unwrap_or(1);
        let rest = shape.iter().skip(1).product();
        self.reshape(&[n, rest])
    }

    /// Reorders axes (as `torch.permute`). Backward: the inverse permutation.
    #[track_caller]
    pub fn permute(self, axes: &[usize]) -> Var<'t> {
        self.unary(Op::Permute(self.id, axes.to_vec()), |x| x.permute(axes))
    }

    /// Swaps two axes.
    #[track_caller]
    pub fn transpose(self, a: usize, b: usize) -> Var<'t> {
        let mut axes: Vec<usize> = (0..self.shape().len()).collect();
        axes.swap(a, b);
        self.permute(&axes)
    }

    /// Elements `start..end` along `axis`. Backward: `gy` padded with zeros.
    #[track_caller]
    pub fn slice_axis(self, axis: usize, start: usize, end: usize) -> Var<'t> {
        let op = Op::SliceAxis {
            x: self.id,
            axis,
            start,
            end,
        };
        self.unary(op, |x| x.slice_axis(axis, start, end))
    }

    /// Pads with `value` (`pads[i] = (before, after)` for axis `i`). Backward: `gy` cropped.
    #[track_caller]
    pub fn pad(self, pads: &[(usize, usize)], value: f32) -> Var<'t> {
        let op = Op::Pad {
            x: self.id,
            pads: pads.to_vec(),
        };
        self.unary(op, |x| x.pad(pads, value))
    }

    /// Removes `pads[i] = (before, after)` elements from each end of axis `i`: the inverse of
    /// [`Var::pad`]. Backward: `gy` padded with zeros.
    ///
    /// # Panics
    /// If a crop is larger than its axis.
    #[track_caller]
    pub fn unpad(self, pads: &[(usize, usize)]) -> Var<'t> {
        let op = Op::Unpad {
            x: self.id,
            pads: pads.to_vec(),
        };
        self.unary(op, |x| x.unpad(pads))
    }

    /// Nearest-neighbour upsampling of `[N, C, H, W]` by the integer factor `f` (each pixel
    /// becomes an `f x f` block). Backward: `gy` summed over those blocks.
    ///
    /// # Panics
    /// If the value is not 4-D or `f` is 0.
    #[track_caller]
    pub fn upsample_nearest2d(self, f: usize) -> Var<'t> {
        let op = Op::UpsampleNearest { x: self.id, f };
        self.unary(op, |x| x.upsample_nearest2d(f))
    }

    /// The sum of each non-overlapping `f x f` block of `[N, C, H, W]` (`f²` times an average
    /// pooling with kernel and stride `f`). Backward: `gy` upsampled by `f`.
    ///
    /// # Panics
    /// If the value is not 4-D, `f` is 0, or `H` or `W` is not a multiple of `f`.
    #[track_caller]
    pub fn sum_pool2d(self, f: usize) -> Var<'t> {
        let op = Op::SumPool { x: self.id, f };
        self.unary(op, |x| x.sum_pool2d(f))
    }

    /// Reflection padding of `[N, C, H, W]` by `[left, right, top, bottom]`, as PyTorch's
    /// `ReflectionPad2d`. Backward: `gy` folded back, each padded position onto the pixel it
    /// mirrors.
    ///
    /// # Panics
    /// If the value is not 4-D or a padding is not smaller than the axis it pads.
    #[track_caller]
    pub fn reflection_pad2d(self, pads: Pads2d) -> Var<'t> {
        let op = Op::ReflectionPad { x: self.id, pads };
        self.unary(op, |x| x.reflection_pad2d(pads))
    }

    /// The adjoint of [`Var::reflection_pad2d`]: a padded `[N, C, H', W']` folded back onto
    /// the unpadded plane. Backward: `gy` reflection-padded.
    ///
    /// # Panics
    /// If the value is not 4-D or the padding leaves a plane no larger than it.
    #[track_caller]
    pub fn reflection_pad2d_fold(self, pads: Pads2d) -> Var<'t> {
        let op = Op::ReflectionPadFold { x: self.id, pads };
        self.unary(op, |x| x.reflection_pad2d_fold(pads))
    }

    /// The value repeated along broadcast axes to `shape` (NumPy's rules).
    /// Backward: `gy` summed back to this shape.
    ///
    /// # Panics
    /// If the shape does not broadcast to `shape`.
    #[track_caller]
    pub fn broadcast_to(self, shape: &[usize]) -> Var<'t> {
        self.unary(Op::BroadcastTo(self.id), |x| x.broadcast_to(shape))
    }

    /// Sums over the axes along which `shape` broadcasts to this value's shape: the inverse of
    /// [`Var::broadcast_to`]. Backward: `gy` broadcast back.
    ///
    /// # Panics
    /// If `shape` does not broadcast to this value's shape.
    #[track_caller]
    pub fn sum_to(self, shape: &[usize]) -> Var<'t> {
        self.unary(Op::SumTo(self.id), |x| x.sum_to(shape))
    }

    /// Joins variables of one tape along `axis` (the U-Net's skip connections).
    /// Backward: `gy` split into the parts.
    ///
    /// # Panics
    /// If `parts` is empty, mixes tapes, or the shapes disagree off `axis`.
    #[track_caller]
    pub fn concat(parts: &[Var<'t>], axis: usize) -> Var<'t> {
        assert!(!parts.is_empty(), "concat: no variables to join");
        let tape = parts[0].tape;
        assert!(
            parts.iter().all(|p| std::ptr::eq(p.tape, tape)),
            "concat: variables come from different tapes"
        );
        let value = {
            let nodes = tape.nodes();
            let values: Vec<&Tensor> = parts.iter().map(|p| &nodes[p.id].value).collect();
            Tensor::concat(axis, &values)
        };
        let ids = parts.iter().map(|p| p.id).collect();
        tape.record(value, Op::Concat { parts: ids, axis })
    }
}
