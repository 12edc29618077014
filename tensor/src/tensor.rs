//! The `Tensor` type: construction, access and shape manipulation.

use ndarray::{ArcArray, ArrayD, ArrayViewD, Axis, IxDyn, Slice};
use std::fmt;

/// An n-dimensional array of `f32`, images laid out NCHW as in PyTorch.
///
/// Clones are cheap: the storage is reference counted (`ArcArray`) and copied only when a
/// shared tensor is written to.
///
/// ```
/// use gantry_tensor::Tensor;
/// let x = Tensor::from_vec(&[2, 3], vec![1., 2., 3., 4., 5., 6.]);
/// let y = x.add(&Tensor::from_vec(&[3], vec![10., 20., 30.])); // broadcasts over rows
/// assert_eq!(y.to_vec(), vec![11., 22., 33., 14., 25., 36.]);
/// assert_eq!(y.sum_axes(&[0], false).to_vec(), vec![25., 47., 69.]);
/// ```
#[derive(Clone, PartialEq)]
pub struct Tensor {
    data: ArcArray<f32, IxDyn>,
}

impl Tensor {
    /// Wraps an owned `ndarray` array.
    pub fn from_array(array: ArrayD<f32>) -> Self {
        Tensor {
            data: array.into_shared(),
        }
    }

    /// A tensor of `shape` holding `data` in row-major (C) order.
    ///
    /// # Panics
    /// If `data.len()` is not the product of `shape`.
    #[track_caller]
    pub fn from_vec(shape: &[usize], data: Vec<f32>) -> Self {
        let expected: usize = shape.iter().product();
        assert!(
            data.len() == expected,
            "from_vec: shape {shape:?} holds {expected} elements, data has {}",
            data.len()
        );
        let array = ArrayD::from_shape_vec(IxDyn(shape), data).expect("checked length");
        Tensor::from_array(array)
    }

    /// A tensor of `shape` filled with `value`.
    pub fn full(shape: &[usize], value: f32) -> Self {
        Tensor::from_array(ArrayD::from_elem(IxDyn(shape), value))
    }

    /// A tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        Tensor::full(shape, 0.0)
    }

    /// A tensor of ones.
    pub fn ones(shape: &[usize]) -> Self {
        Tensor::full(shape, 1.0)
    }

    /// A zero-dimensional tensor holding one value.
    pub fn scalar(value: f32) -> Self {
        Tensor::full(&[], value)
    }

    /// The dimensions, outermost first.
    pub fn shape(&self) -> &[usize] {
        self.data.shape()
    }

    /// The number of dimensions.
    pub fn ndim(&self) -> usize {
        self.data.ndim()
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor holds no element.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// A read-only `ndarray` view.
    pub fn view(&self) -> ArrayViewD<'_, f32> {
        self.data.view()
    }

    /// The underlying shared array.
    pub fn array(&self) -> &ArcArray<f32, IxDyn> {
        &self.data
    }

    /// Converts into an owned `ndarray` array (copies only if the storage is shared).
    pub fn into_array(self) -> ArrayD<f32> {
        self.data.into_owned()
    }

    /// The elements in row-major order.
    pub fn to_vec(&self) -> Vec<f32> {
        if let Some(s) = self.data.as_slice() {
            return s.to_vec();
        }
        // A view (a slice along the channels, a permutation): copied a row of the last axis at
        // a time, each row a plain slice copy when it is contiguous. Walking it element by
        // element through the general iterator cost a pix2pix step 12% of its time.
        let mut out = Vec::with_capacity(self.len());
        for row in self.data.rows() {
            match row.as_slice() {
                Some(s) => out.extend_from_slice(s),
                None => out.extend(row.iter().copied()),
            }
        }
        out
    }

    /// The single value of a tensor with one element.
    ///
    /// # Panics
    /// If the tensor does not hold exactly one element.
    #[track_caller]
    pub fn item(&self) -> f32 {
        assert!(
            self.len() == 1,
            "item: tensor of shape {:?} has {} elements, expected 1",
            self.shape(),
            self.len()
        );
        *self.data.iter().next().expect("one element")
    }

    /// The elements as a row-major slice; makes the storage contiguous first if needed.
    pub fn as_slice(&self) -> std::borrow::Cow<'_, [f32]> {
        match self.data.as_slice() {
            Some(s) => std::borrow::Cow::Borrowed(s),
            None => std::borrow::Cow::Owned(self.to_vec()),
        }
    }

    /// The elements as a mutable row-major slice, for changing a tensor in place.
    ///
    /// Tensors share storage when cloned; the storage is copied first if another tensor
    /// shares it (copy on write) or if it is not contiguous, so no other tensor sees the
    /// change, and nothing is copied when this tensor is the only owner.
    ///
    /// ```
    /// use gantry_tensor::Tensor;
    /// let mut a = Tensor::from_vec(&[2], vec![1.0, 2.0]);
    /// let b = a.clone();
    /// a.as_mut_slice()[0] = 5.0;
    /// assert_eq!(a.to_vec(), vec![5.0, 2.0]);
    /// assert_eq!(b.to_vec(), vec![1.0, 2.0]);
    /// ```
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        if !self.data.is_standard_layout() {
            *self = self.contiguous();
        }
        self.data
            .as_slice_mut()
            .expect("a tensor in standard layout is one slice")
    }

    /// The elements to change in place when this tensor alone holds its storage, contiguous
    /// (nothing to copy first); `None` otherwise.
    pub(crate) fn own_slice_mut(&mut self) -> Option<&mut [f32]> {
        if self.data.is_unique() && self.data.is_standard_layout() {
            self.data.as_slice_mut()
        } else {
            None
        }
    }

    /// A tensor with the same elements in standard (row-major, contiguous) layout.
    pub fn contiguous(&self) -> Tensor {
        if self.data.is_standard_layout() {
            self.clone()
        } else {
            Tensor::from_array(self.data.as_standard_layout().into_owned())
        }
    }

    /// The same elements viewed with another shape of equal size (row-major order).
    ///
    /// # Panics
    /// If the sizes differ.
    #[track_caller]
    pub fn reshape(&self, shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        assert!(
            n == self.len(),
            "reshape: cannot view {:?} ({} elements) as {shape:?} ({n} elements)",
            self.shape(),
            self.len()
        );
        let c = self.contiguous();
        Tensor {
            data: c
                .data
                .into_shape_with_order(IxDyn(shape))
                .expect("contiguous reshape of equal size"),
        }
    }

    /// Reorders the axes: output axis `i` is input axis `axes[i]` (as `torch.permute`).
    /// The result is contiguous.
    ///
    /// # Panics
    /// If `axes` is not a permutation of `0..ndim`.
    #[track_caller]
    pub fn permute(&self, axes: &[usize]) -> Tensor {
        let mut seen = vec![false; self.ndim()];
        let valid = axes.len() == self.ndim()
            && axes
                .iter()
                .all(|&a| a < seen.len() && !std::mem::replace(&mut seen[a], true));
        assert!(
            valid,
            "permute: {axes:?} is not a permutation of the axes of {:?}",
            self.shape()
        );
        let view = self.data.view().permuted_axes(IxDyn(axes));
        Tensor::from_array(view.as_standard_layout().into_owned())
    }

    /// Swaps two axes.
    ///
    /// # Panics
    /// If an axis is out of range.
    #[track_caller]
    pub fn transpose(&self, a: usize, b: usize) -> Tensor {
        let mut axes: Vec<usize> = (0..self.ndim()).collect();
        assert!(
            a < axes.len() && b < axes.len(),
            "transpose: axes ({a}, {b}) out of range for {:?}",
            self.shape()
        );
        axes.swap(a, b);
        self.permute(&axes)
    }

    /// Repeats the tensor along axes of length 1 (and new leading axes) to reach `shape`.
    ///
    /// # Panics
    /// If the shape does not broadcast to `shape`.
    #[track_caller]
    pub fn broadcast_to(&self, shape: &[usize]) -> Tensor {
        let from = self.shape();
        let lead = shape.len().checked_sub(from.len());
        let fits = lead.is_some_and(|lead| {
            from.iter()
                .zip(&shape[lead..])
                .all(|(&f, &t)| f == t || f == 1)
        });
        assert!(
            fits,
            "broadcast_to: {from:?} does not broadcast to {shape:?}"
        );
        if from == shape {
            return self.clone();
        }
        // The source's shape with the new leading axes as 1s, so both have one length per axis.
        let mut source_dims = vec![1; shape.len() - from.len()];
        source_dims.extend_from_slice(from);
        let mut out = vec![0.0; shape.iter().product()];
        if !out.is_empty() {
            broadcast_into(&self.as_slice(), &source_dims, &mut out, shape);
        }
        Tensor::from_vec(shape, out)
    }

    /// Elements `start..end` along `axis`.
    ///
    /// # Panics
    /// If `axis` or the range is out of bounds.
    #[track_caller]
    pub fn slice_axis(&self, axis: usize, start: usize, end: usize) -> Tensor {
        assert!(
            axis < self.ndim() && start <= end && end <= self.shape()[axis],
            "slice_axis: range {start}..{end} on axis {axis} out of bounds for {:?}",
            self.shape()
        );
        let shape = self.shape();
        let (outer, inner) = outer_inner(shape, axis);
        let (whole, kept) = (shape[axis] * inner, (end - start) * inner);
        let source = self.as_slice();
        let mut out = Vec::with_capacity(outer * kept);
        if kept > 0 {
            for block in source.chunks_exact(whole) {
                out.extend_from_slice(&block[start * inner..end * inner]);
            }
        }
        let mut sliced = shape.to_vec();
        sliced[axis] = end - start;
        Tensor::from_vec(&sliced, out)
    }

    /// Joins tensors along `axis`; all other dimensions must agree.
    ///
    /// # Panics
    /// If `parts` is empty or the shapes disagree off `axis`.
    #[track_caller]
    pub fn concat(axis: usize, parts: &[&Tensor]) -> Tensor {
        assert!(!parts.is_empty(), "concat: no tensors to join");
        let first = parts[0].shape();
        for p in parts {
            let ok = p.ndim() == first.len()
                && axis < first.len()
                && (0..first.len()).all(|i| i == axis || p.shape()[i] == first[i]);
            assert!(
                ok,
                "concat: shapes {first:?} and {:?} differ off axis {axis}",
                p.shape()
            );
        }
        // Row-major, the result is each part's block of `axis` and the axes after it, in turn,
        // once per index of the axes before it: whole slice copies.
        let (outer, _) = outer_inner(first, axis);
        let sources: Vec<_> = parts.iter().map(|p| p.as_slice()).collect();
        let blocks: Vec<usize> = sources.iter().map(|s| s.len() / outer.max(1)).collect();
        let mut out = Vec::with_capacity(blocks.iter().sum::<usize>() * outer);
        for o in 0..outer {
            for (source, &block) in sources.iter().zip(&blocks) {
                out.extend_from_slice(&source[o * block..(o + 1) * block]);
            }
        }
        let mut joined = first.to_vec();
        joined[axis] = parts.iter().map(|p| p.shape()[axis]).sum();
        Tensor::from_vec(&joined, out)
    }

    /// Splits along `axis` into pieces of the given sizes (the inverse of [`Tensor::concat`]).
    ///
    /// # Panics
    /// If the sizes do not add up to the axis length.
    #[track_caller]
    pub fn split(&self, axis: usize, sizes: &[usize]) -> Vec<Tensor> {
        assert!(
            axis < self.ndim() && sizes.iter().sum::<usize>() == self.shape()[axis],
            "split: sizes {sizes:?} do not add up to axis {axis} of {:?}",
            self.shape()
        );
        let mut start = 0;
        sizes
            .iter()
            .map(|&s| {
                let t = self.slice_axis(axis, start, start + s);
                start += s;
                t
            })
            .collect()
    }

    /// Pads with `value`: `pads[i] = (before, after)` for axis `i`; missing trailing entries
    /// mean no padding.
    ///
    /// # Panics
    /// If `pads` has more entries than the tensor has axes.
    #[track_caller]
    pub fn pad(&self, pads: &[(usize, usize)], value: f32) -> Tensor {
        assert!(
            pads.len() <= self.ndim(),
            "pad: {} pad pairs for a tensor of shape {:?}",
            pads.len(),
            self.shape()
        );
        let mut shape = self.shape().to_vec();
        for (i, &(b, a)) in pads.iter().enumerate() {
            shape[i] += b + a;
        }
        let mut out = ArrayD::from_elem(IxDyn(&shape), value);
        let mut region = out.view_mut();
        for (i, &(b, _)) in pads.iter().enumerate() {
            let n = self.shape()[i];
            region.slice_axis_inplace(Axis(i), Slice::from(b as isize..(b + n) as isize));
        }
        region.assign(&self.data);
        Tensor::from_array(out)
    }

    /// Removes `pads` from each axis: the inverse of [`Tensor::pad`].
    ///
    /// # Panics
    /// If a crop is larger than its axis.
    #[track_caller]
    pub fn unpad(&self, pads: &[(usize, usize)]) -> Tensor {
        let mut view = self.data.view();
        for (i, &(b, a)) in pads.iter().enumerate() {
            let n = self.shape()[i];
            assert!(
                b + a <= n,
                "unpad: cannot remove {b}+{a} from axis {i} of {:?}",
                self.shape()
            );
            view.slice_axis_inplace(Axis(i), Slice::from(b as isize..(n - a) as isize));
        }
        Tensor::from_array(view.as_standard_layout().into_owned())
    }

    /// Whether every element is finite (no NaN, no infinity).
    pub fn all_finite(&self) -> bool {
        self.data.iter().all(|v| v.is_finite())
    }

    /// The largest absolute difference to `other`, for tests and parity checks. NaN if any
    /// difference is NaN (a NaN on either side), so that `max_abs_diff(..) < tol` fails on it.
    ///
    /// # Panics
    /// If the shapes differ.
    #[track_caller]
    pub fn max_abs_diff(&self, other: &Tensor) -> f32 {
        assert_eq!(self.shape(), other.shape(), "max_abs_diff: shapes differ");
        self.data
            .iter()
            .zip(other.data.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, |m, d| if d > m || d.is_nan() { d } else { m })
    }
}

impl From<ArrayD<f32>> for Tensor {
    fn from(array: ArrayD<f32>) -> Self {
        Tensor::from_array(array)
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.len() <= 64 {
            write!(f, "Tensor{:?} {:?}", self.shape(), self.to_vec())
        } else {
            write!(f, "Tensor{:?} [{} elements]", self.shape(), self.len())
        }
    }
}

/// The number of elements before and after `axis` of a row-major `shape`: the number of blocks
/// along it and each index's run length.
fn outer_inner(shape: &[usize], axis: usize) -> (usize, usize) {
    (
        shape[..axis].iter().product(),
        shape[axis + 1..].iter().product(),
    )
}

/// `source` (lengths `source_dims`, each 1 or the output's) repeated out to `out_dims`.
///
/// Neighbouring axes that are all kept or all repeated are merged first, so the recursion goes
/// as deep as the pattern changes, not as deep as the tensor has axes; a kept axis followed by a
/// repeated one (a 2x2 window's `[.., 8, 1]` against `[.., 8, 2]`) is one loop, and large
/// outputs are written in parallel parts. Axis by axis, a 2x2 max pool's gradient (its maxima
/// stretched over `[16, 64, 8, 2, 8, 2]`) took 0.5 ms per broadcast, a call per value.
fn broadcast_into(source: &[f32], source_dims: &[usize], out: &mut [f32], out_dims: &[usize]) {
    let (from, to) = merged_axes(source_dims, out_dims);
    let parallel = out.len() >= crate::parallel::PAR_MIN_ELEMS;
    broadcast_merged(source, &from, out, &to, parallel);
}

/// The axes of a broadcast with the output's length-1 axes dropped and neighbours of one kind
/// (kept: the source has the output's length; repeated: the source has 1) merged.
fn merged_axes(source_dims: &[usize], out_dims: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let (mut from, mut to): (Vec<usize>, Vec<usize>) = (Vec::new(), Vec::new());
    for (&f, &t) in source_dims.iter().zip(out_dims) {
        if t == 1 {
            continue;
        }
        let kept = f == t;
        match (from.last_mut(), to.last_mut()) {
            (Some(lf), Some(lt)) if (*lf == *lt) == kept => {
                *lf *= f;
                *lt *= t;
            }
            _ => {
                from.push(f);
                to.push(t);
            }
        }
    }
    (from, to)
}

/// [`broadcast_into`] on merged axes; the first axis's parts in parallel when `parallel`.
fn broadcast_merged(source: &[f32], from: &[usize], out: &mut [f32], to: &[usize], parallel: bool) {
    if from == to {
        out.copy_from_slice(source);
    } else if source.len() == 1 {
        out.fill(source[0]);
    } else if let (&[_, 1], &[_, repeat]) = (from, to) {
        // A kept axis, then a repeated one: each value written `repeat` times in a row.
        for (run, &v) in out.chunks_exact_mut(repeat).zip(source) {
            run.fill(v);
        }
    } else {
        let block = out.len() / to[0];
        if from[0] == 1 {
            // The first axis repeats: one part, then copies of it.
            let (head, rest) = out.split_at_mut(block);
            broadcast_merged(source, &from[1..], head, &to[1..], false);
            let head = &*head;
            each_part(rest, block, parallel, |_, copy| copy.copy_from_slice(head));
        } else {
            let source_block = source.len() / to[0];
            each_part(out, block, parallel, |i, part| {
                let from_part = &source[i * source_block..(i + 1) * source_block];
                broadcast_merged(from_part, &from[1..], part, &to[1..], false);
            });
        }
    }
}

/// `f(i, part)` for each `block`-sized part of `out`, over the pool when `parallel`.
fn each_part(
    out: &mut [f32],
    block: usize,
    parallel: bool,
    f: impl Fn(usize, &mut [f32]) + Sync + Send,
) {
    if parallel {
        crate::parallel::for_each_chunk_mut(out, block, f);
    } else {
        for (i, part) in out.chunks_exact_mut(block).enumerate() {
            f(i, part);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iota(shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_vec(shape, (0..n).map(|i| i as f32).collect())
    }

    #[test]
    fn as_mut_slice_writes_in_place_and_copies_shared_or_strided_storage() {
        let mut a = iota(&[2, 3]);
        let before = a.data.as_ptr();
        a.as_mut_slice()[1] = -1.0;
        assert_eq!(a.data.as_ptr(), before, "the only owner was copied");
        assert_eq!(a.to_vec(), vec![0.0, -1.0, 2.0, 3.0, 4.0, 5.0]);

        let shared = a.clone();
        a.as_mut_slice()[0] = 9.0;
        assert_eq!(shared.to_vec()[0], 0.0, "a clone saw the write");
        assert_eq!(a.to_vec()[0], 9.0);

        let mut t = iota(&[2, 3]).transpose(0, 1);
        t.as_mut_slice()[1] = 7.0;
        assert_eq!(t.shape(), &[3, 2]);
        assert_eq!(t.to_vec(), vec![0.0, 7.0, 1.0, 4.0, 2.0, 5.0]);
    }

    #[test]
    fn permute_matches_index_mapping() {
        let x = iota(&[2, 3, 4]);
        let y = x.permute(&[2, 0, 1]);
        assert_eq!(y.shape(), &[4, 2, 3]);
        assert_eq!(y.view()[[3, 1, 2]], x.view()[[1, 2, 3]]);
    }

    #[test]
    fn views_copy_out_in_row_major_order() {
        let a = iota(&[2, 3, 4, 5]);
        let at = |n: usize, c: usize, h: usize, w: usize| (((n * 3 + c) * 4 + h) * 5 + w) as f32;
        // A channel slice: rows of the last axis are contiguous, planes are not.
        let mut want = Vec::new();
        for n in 0..2 {
            for c in 1..3 {
                for h in 0..4 {
                    want.extend((0..5).map(|w| at(n, c, h, w)));
                }
            }
        }
        assert_eq!(a.slice_axis(1, 1, 3).to_vec(), want);
        // A permutation whose last axis is strided.
        let mut want = Vec::new();
        for w in 0..5 {
            for c in 0..3 {
                for h in 0..4 {
                    want.extend((0..2).map(|n| at(n, c, h, w)));
                }
            }
        }
        assert_eq!(a.permute(&[3, 1, 2, 0]).to_vec(), want);
        assert_eq!(a.slice_axis(2, 1, 1).to_vec(), Vec::<f32>::new());
    }

    #[test]
    fn concat_then_split_round_trips() {
        let a = iota(&[2, 3]);
        let b = iota(&[2, 1]);
        let c = Tensor::concat(1, &[&a, &b]);
        assert_eq!(c.to_vec(), vec![0., 1., 2., 0., 3., 4., 5., 1.]);
        let parts = c.split(1, &[3, 1]);
        assert_eq!(parts[0], a);
        assert_eq!(parts[1], b);
    }

    #[test]
    fn pad_then_unpad_round_trips() {
        let a = iota(&[1, 2, 2]);
        let p = a.pad(&[(0, 0), (1, 0), (0, 2)], -1.0);
        assert_eq!(p.shape(), &[1, 3, 4]);
        assert_eq!(p.to_vec()[..4], [-1., -1., -1., -1.]);
        assert_eq!(p.unpad(&[(0, 0), (1, 0), (0, 2)]), a);
    }

    #[test]
    fn max_abs_diff_reports_nan() {
        let a = Tensor::from_vec(&[3], vec![1.0, 2.0, 3.0]);
        let b = Tensor::from_vec(&[3], vec![1.5, f32::NAN, 3.0]);
        assert_eq!(a.max_abs_diff(&a.add_scalar(0.25)), 0.25);
        assert!(a.max_abs_diff(&b).is_nan());
        assert!(b.max_abs_diff(&a).is_nan());
    }

    #[test]
    #[should_panic(expected = "reshape: cannot view [2, 3]")]
    fn reshape_names_shapes() {
        iota(&[2, 3]).reshape(&[4]);
    }
}
