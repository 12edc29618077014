//! Reductions (sum, mean, max) over any set of axes, and `sum_to` for undoing a broadcast.
//!
//! Each output element is reduced by one thread in a fixed order with an `f64` accumulator, so
//! results do not depend on the thread count and stay accurate over large batches.

use crate::Tensor;
use crate::parallel::map_range;
use std::ops::Range;

/// How the elements along the reduced axes combine.
#[derive(Clone, Copy)]
enum Reduction {
    Sum,
    Max,
}

impl Tensor {
    /// Sums over `axes`; `keepdim` keeps them as length-1 axes.
    ///
    /// # Panics
    /// If an axis is out of range or repeated.
    #[track_caller]
    pub fn sum_axes(&self, axes: &[usize], keepdim: bool) -> Tensor {
        self.reduce("sum_axes", axes, keepdim, Reduction::Sum)
    }

    /// Mean over `axes`; `keepdim` keeps them as length-1 axes.
    ///
    /// # Panics
    /// If an axis is out of range or repeated.
    #[track_caller]
    pub fn mean_axes(&self, axes: &[usize], keepdim: bool) -> Tensor {
        let count: usize = axes
            .iter()
            .map(|&a| self.shape().get(a).copied().unwrap_or(1))
            .product();
        self.sum_axes(axes, keepdim)
            .mul_scalar(1.0 / count.max(1) as f32)
    }

    /// Maximum over `axes`; `keepdim` keeps them as length-1 axes. NaN wins.
    ///
    /// # Panics
    /// If an axis is out of range or repeated, or a reduced axis is empty.
    #[track_caller]
    pub fn max_axes(&self, axes: &[usize], keepdim: bool) -> Tensor {
        self.reduce("max_axes", axes, keepdim, Reduction::Max)
    }

    /// The sum of all elements.
    pub fn sum_all(&self) -> f32 {
        let all: Vec<usize> = (0..self.ndim()).collect();
        self.sum_axes(&all, false).item()
    }

    /// The mean of all elements.
    pub fn mean_all(&self) -> f32 {
        self.sum_all() / self.len().max(1) as f32
    }

    /// Sums a broadcast result back down to `shape`: the gradient of broadcasting.
    ///
    /// # Panics
    /// If `shape` does not broadcast to this tensor's shape.
    #[track_caller]
    pub fn sum_to(&self, shape: &[usize]) -> Tensor {
        if self.shape() == shape {
            return self.clone();
        }
        let lead = self.ndim().checked_sub(shape.len());
        let ok = lead.is_some_and(|lead| {
            shape
                .iter()
                .enumerate()
                .all(|(i, &d)| d == self.shape()[lead + i] || d == 1)
        });
        assert!(
            ok,
            "sum_to: {:?} does not broadcast to {:?}",
            shape,
            self.shape()
        );
        let lead = lead.expect("checked");
        let axes: Vec<usize> = (0..self.ndim())
            .filter(|&i| i < lead || (shape[i - lead] == 1 && self.shape()[i] != 1))
            .collect();
        self.sum_axes(&axes, true).reshape(shape)
    }

    #[track_caller]
    fn reduce(&self, op: &str, axes: &[usize], keepdim: bool, how: Reduction) -> Tensor {
        let nd = self.ndim();
        let mut reduced = vec![false; nd];
        for &a in axes {
            assert!(
                a < nd && !reduced[a],
                "{op}: axes {axes:?} invalid for shape {:?}",
                self.shape()
            );
            reduced[a] = true;
        }
        let kept: Vec<usize> = (0..nd).filter(|&i| !reduced[i]).collect();
        let order: Vec<usize> = kept.iter().copied().chain(axes.iter().copied()).collect();
        let outer: usize = kept.iter().map(|&i| self.shape()[i]).product();
        let inner: usize = axes.iter().map(|&i| self.shape()[i]).product();
        if let Reduction::Max = how {
            assert!(inner > 0, "{op}: empty axes {axes:?} of {:?}", self.shape());
        }
        let ascending = axes.windows(2).all(|w| w[0] < w[1]);
        if let Reduction::Sum = how
            && ascending
            && !axes.is_empty()
            && !self.is_empty()
        {
            let out = sum_in_place(&self.as_slice(), self.shape(), &reduced);
            return Tensor::from_vec(&out_shape(self.shape(), &reduced, keepdim), out);
        }
        let moved = if order.iter().enumerate().all(|(i, &a)| i == a) {
            self.contiguous()
        } else {
            self.permute(&order)
        };
        let src = moved.as_slice();
        let rows = |r: usize| -> f32 {
            let row = &src[r * inner..(r + 1) * inner];
            match how {
                Reduction::Sum => row.iter().map(|&v| f64::from(v)).sum::<f64>() as f32,
                Reduction::Max => row.iter().copied().fold(f32::NEG_INFINITY, |m, v| {
                    if v > m || v.is_nan() { v } else { m }
                }),
            }
        };
        let out = if outer * inner >= crate::parallel::PAR_MIN_ELEMS && outer > 1 {
            map_range(outer, rows)
        } else {
            (0..outer).map(rows).collect()
        };
        Tensor::from_vec(&out_shape(self.shape(), &reduced, keepdim), out)
    }
}

/// The shape of a reduction's result.
fn out_shape(shape: &[usize], reduced: &[bool], keepdim: bool) -> Vec<usize> {
    shape
        .iter()
        .zip(reduced)
        .filter_map(|(&d, &r)| match (r, keepdim) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect()
}

/// A run of adjacent axes that are all reduced or all kept, collapsed into one.
#[derive(Clone, Copy)]
struct Segment {
    len: usize,
    reduced: bool,
    /// Elements between consecutive indices of this segment, in the input and the output.
    in_stride: usize,
    out_stride: usize,
}

/// Sums the contiguous `src` of `shape` over the `reduced` axes without moving it: the input is
/// walked in memory order and each element added to its output's `f64` accumulator. Each
/// output thus adds its elements in the order of the reduced axes, ascending, exactly as the
/// permuted rows of [`Tensor::reduce`]'s general path do, so the two agree bit for bit; this
/// one skips the copy into the permuted layout (which cost more than the sum: a bias gradient
/// `[N, C, H, W] -> [C]`, the `sum_to` of a broadcast). The work is split over the first kept
/// axes' indices, whose outputs are disjoint, so the thread count changes nothing.
fn sum_in_place(src: &[f32], shape: &[usize], reduced: &[bool]) -> Vec<f32> {
    let mut segments: Vec<Segment> = Vec::new();
    for (&len, &r) in shape.iter().zip(reduced) {
        match segments.last_mut() {
            Some(last) if last.reduced == r => last.len *= len,
            _ => segments.push(Segment {
                len,
                reduced: r,
                in_stride: 0,
                out_stride: 0,
            }),
        }
    }
    let (mut in_stride, mut out_stride) = (1, 1);
    for seg in segments.iter_mut().rev() {
        seg.in_stride = in_stride;
        seg.out_stride = out_stride;
        in_stride *= seg.len;
        if !seg.reduced {
            out_stride *= seg.len;
        }
    }
    let outputs = out_stride;
    // The sum of nothing as `Iterator::sum` has it, so that every output starts as a row does.
    let zero: f64 = std::iter::empty::<f64>().sum();
    let split = segments.iter().position(|s| !s.reduced);
    let Some(k) = split else {
        let mut acc = [zero];
        walk(src, &segments, None, &mut acc);
        return vec![acc[0] as f32];
    };
    let n = segments[k].len;
    let chunks = if src.len() >= crate::parallel::PAR_MIN_ELEMS {
        n.min(4 * crate::parallel::num_threads())
    } else {
        1
    };
    let per = n.div_ceil(chunks);
    let parts = map_range(n.div_ceil(per), |c| {
        let range = c * per..((c + 1) * per).min(n);
        let mut acc = vec![zero; range.len() * segments[k].out_stride];
        walk(src, &segments, Some((k, range)), &mut acc);
        acc
    });
    let out: Vec<f32> = parts.into_iter().flatten().map(|v| v as f32).collect();
    debug_assert_eq!(out.len(), outputs);
    out
}

/// Adds every element of `src` into `acc` in memory order; with `split = Some((k, range))`
/// only those whose index along segment `k` lies in `range`, `acc` then holding the outputs of
/// that range alone.
fn walk(src: &[f32], segs: &[Segment], split: Option<(usize, Range<usize>)>, acc: &mut [f64]) {
    let last = segs.len() - 1;
    let bounds: Vec<(usize, usize)> = segs
        .iter()
        .enumerate()
        .map(|(i, s)| match &split {
            Some((k, r)) if *k == i => (r.start, r.end),
            _ => (0, s.len),
        })
        .collect();
    let mut idx: Vec<usize> = bounds.iter().map(|b| b.0).collect();
    let run = segs[last];
    let base_out = split.map_or(0, |(k, r)| r.start * segs[k].out_stride);
    loop {
        let (mut at, mut out) = (0, 0);
        for (i, s) in segs[..last].iter().enumerate() {
            at += idx[i] * s.in_stride;
            if !s.reduced {
                out += idx[i] * s.out_stride;
            }
        }
        let (from, to) = bounds[last];
        let values = &src[at + from..at + to];
        if run.reduced {
            let a = &mut acc[out - base_out];
            for &v in values {
                *a += f64::from(v);
            }
        } else {
            let start = out + from - base_out;
            for (a, &v) in acc[start..start + values.len()].iter_mut().zip(values) {
                *a += f64::from(v);
            }
        }
        // The odometer over every segment but the last.
        let mut i = last;
        loop {
            if i == 0 {
                return;
            }
            i -= 1;
            idx[i] += 1;
            if idx[i] < bounds[i].1 {
                break;
            }
            idx[i] = bounds[i].0;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;
    use proptest::prelude::*;

    /// The general path's sum: permute the reduced axes to the end, sum each row.
    fn permuted_sum(x: &Tensor, axes: &[usize], keepdim: bool) -> Tensor {
        let nd = x.ndim();
        let kept: Vec<usize> = (0..nd).filter(|a| !axes.contains(a)).collect();
        let order: Vec<usize> = kept.iter().chain(axes).copied().collect();
        let moved = x.permute(&order).contiguous();
        let inner: usize = axes.iter().map(|&a| x.shape()[a]).product();
        let v = moved.as_slice();
        let out: Vec<f32> = v
            .chunks(inner.max(1))
            .map(|row| row.iter().map(|&e| f64::from(e)).sum::<f64>() as f32)
            .collect();
        let shape: Vec<usize> = (0..nd)
            .filter_map(|i| match (axes.contains(&i), keepdim) {
                (false, _) => Some(x.shape()[i]),
                (true, true) => Some(1),
                (true, false) => None,
            })
            .collect();
        Tensor::from_vec(&shape, out)
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 256,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x5e11),
            ..ProptestConfig::default()
        })]

        /// Summing in place (ascending axes) gives the permuted rows' sums bit for bit, over
        /// every pattern of reduced and kept axes, with the work split over threads or not.
        #[test]
        fn in_place_sums_equal_the_permuted_rows_bit_for_bit(
            shape in prop::collection::vec(1usize..6, 1..=5),
            mask in prop::collection::vec(any::<bool>(), 5),
            big in any::<bool>(),
            seed in any::<u64>(),
        ) {
            let mut shape = shape;
            if big {
                // Large enough to take the parallel split.
                shape[0] *= 1500;
            }
            let axes: Vec<usize> = (0..shape.len()).filter(|&i| mask[i]).collect();
            prop_assume!(!axes.is_empty());
            let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
            let x = Tensor::randn(&shape, 0.0, 1.0, &mut rng);
            for keepdim in [false, true] {
                let got = x.sum_axes(&axes, keepdim);
                let want = permuted_sum(&x, &axes, keepdim);
                prop_assert_eq!(got.shape(), want.shape());
                let bits = |t: &Tensor| t.to_vec().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                prop_assert_eq!(bits(&got), bits(&want));
            }
        }
    }

    fn iota(shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_vec(shape, (0..n).map(|i| i as f32).collect())
    }

    #[test]
    fn sums_over_axis_sets() {
        let x = iota(&[2, 3, 2]);
        assert_eq!(x.sum_axes(&[0, 2], false).to_vec(), vec![14., 22., 30.]);
        assert_eq!(x.sum_axes(&[1], true).shape(), &[2, 1, 2]);
        assert_eq!(x.sum_all(), 66.0);
        assert_eq!(
            x.mean_axes(&[2], false).to_vec(),
            vec![0.5, 2.5, 4.5, 6.5, 8.5, 10.5]
        );
    }

    #[test]
    fn max_over_axes() {
        let x = iota(&[2, 3]);
        assert_eq!(x.max_axes(&[0], false).to_vec(), vec![3., 4., 5.]);
        assert_eq!(x.max_axes(&[1], true).to_vec(), vec![2., 5.]);
    }

    #[test]
    fn sum_to_undoes_broadcast() {
        let g = Tensor::ones(&[4, 2, 3]);
        assert_eq!(g.sum_to(&[2, 1]).to_vec(), vec![12., 12.]);
        assert_eq!(g.sum_to(&[3]).to_vec(), vec![8., 8., 8.]);
    }
}
