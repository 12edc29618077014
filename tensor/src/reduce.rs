//! Reductions (sum, mean, max) over any set of axes, and `sum_to` for undoing a broadcast.
//!
//! Each output element is reduced by one thread in a fixed order with an `f64` accumulator, so
//! results do not depend on the thread count and stay accurate over large batches.

use crate::Tensor;
use crate::parallel::{map_range, num_threads};
use crate::plane_sums::{LANES, fold_rows};
use crate::simd;
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
        if ascending && !axes.is_empty() && !self.is_empty() {
            let src = self.as_slice();
            let out = match how {
                // The sum of nothing as `Iterator::sum` has it, so that every output starts as
                // a row does.
                Reduction::Sum => reduce_in_place(
                    &src,
                    self.shape(),
                    &reduced,
                    std::iter::empty::<f64>().sum(),
                    |a: &mut f64, v| *a += f64::from(v),
                    |a| a as f32,
                ),
                Reduction::Max => reduce_in_place(
                    &src,
                    self.shape(),
                    &reduced,
                    f32::NEG_INFINITY,
                    |m: &mut f32, v| *m = max_step(*m, v),
                    |m| m,
                ),
            };
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
                Reduction::Max => row.iter().copied().fold(f32::NEG_INFINITY, max_step),
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

/// One step of a maximum in a fixed order: a larger value or a NaN takes over, so NaN wins and
/// among equal values (`-0.0` and `0.0`) the first stays.
fn max_step(m: f32, v: f32) -> f32 {
    if v > m || v.is_nan() { v } else { m }
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

/// Reduces the contiguous `src` of `shape` over the `reduced` axes without moving it: the input
/// is walked in memory order and each element folded into its output's accumulator by `add`,
/// from `init`; `finish` turns each accumulator into its output in the one collect of the
/// result. Each output thus meets its elements in the order of the reduced axes, ascending,
/// exactly as the permuted rows of [`Tensor::reduce`]'s general path do, so the two agree bit
/// for bit; this one skips the copy into the permuted layout (which cost more than
/// the reduction: a bias gradient `[N, C, H, W] -> [C]`, the `sum_to` of a broadcast, the max
/// over a pooling window's axes). The work is split over the first kept axes' indices, whose
/// outputs are disjoint, so the thread count changes nothing.
fn reduce_in_place<A, F>(
    src: &[f32],
    shape: &[usize],
    reduced: &[bool],
    init: A,
    add: F,
    finish: impl Fn(A) -> f32,
) -> Vec<f32>
where
    A: Copy + Send + Sync,
    F: Fn(&mut A, f32) + Sync,
{
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
    if let [rows, cols] = segments[..]
        && rows.reduced
        && !cols.reduced
    {
        return column_sums(src, [rows.len, cols.len], init, &add)
            .into_iter()
            .map(finish)
            .collect();
    }
    let split = segments.iter().position(|s| !s.reduced);
    let Some(k) = split else {
        let mut acc = [init];
        walk(src, &segments, None, &mut acc, &add);
        return vec![finish(acc[0])];
    };
    let n = segments[k].len;
    let chunks = if src.len() >= crate::parallel::PAR_MIN_ELEMS {
        n.min(4 * crate::parallel::num_threads())
    } else {
        1
    };
    // When the parts split the outputs that `walk` folds `LANES` at a time, each part takes
    // whole groups of them where it can.
    let last = segments.len() - 1;
    let grouped = segments[last].reduced && k + 1 == last;
    let per = match n.div_ceil(chunks) {
        per if grouped => per.next_multiple_of(LANES).min(n),
        per => per,
    };
    let parts = map_range(n.div_ceil(per), |c| {
        let range = c * per..((c + 1) * per).min(n);
        let mut acc = vec![init; range.len() * segments[k].out_stride];
        walk(src, &segments, Some((k, range)), &mut acc, &add);
        acc
    });
    let out: Vec<f32> = parts.into_iter().flatten().map(finish).collect();
    debug_assert_eq!(out.len(), outputs);
    out
}

/// Outputs of [`column_sums`] accumulated together (8 AVX-512 vectors of `f64`).
const COLUMNS: usize = 64;

/// The fewest values for each parallel part of [`column_sums`]. Through [`walk`], split eight
/// ways over two threads, `[64, 1024]` took 11.6-12.8 µs against 7.8 on one, and `[4096, 64]`
/// 81-87 against 33-39 (4096 short rows a part); here 5.0 and 14.6 µs on one thread, while
/// `[64, 12544]` takes 53 split and 92 on one (AVX-512, two threads).
const COLUMN_PART_MIN: usize = 1 << 17;

/// The reduction of a `[rows, cols]` matrix over its rows (leading axes reduced, the trailing
/// ones kept: a fully connected layer's bias gradient, the `sum_to` of a row broadcast): a
/// block of [`COLUMNS`] accumulators is carried down all the rows, four rows at a time, so
/// that each is loaded and stored once per four rows; a row at a time, as [`walk`] goes,
/// every addition waited on the store of the row before. Each output still meets its rows in
/// order, as in [`walk`]. Parts of whole blocks go to threads when large.
fn column_sums<A, F>(src: &[f32], [rows, cols]: [usize; 2], init: A, add: &F) -> Vec<A>
where
    A: Copy + Send + Sync,
    F: Fn(&mut A, f32) + Sync,
{
    let blocks = cols.div_ceil(COLUMNS);
    let parts = (src.len() / COLUMN_PART_MIN).clamp(1, blocks.min(4 * num_threads()));
    let per = blocks.div_ceil(parts) * COLUMNS;
    let sums = map_range(cols.div_ceil(per), |p| {
        let (c0, c1) = (p * per, ((p + 1) * per).min(cols));
        let mut out = Vec::with_capacity(c1 - c0);
        simd::widest(
            #[inline(always)]
            || {
                let whole = c0 + (c1 - c0) / COLUMNS * COLUMNS;
                for b0 in (c0..whole).step_by(COLUMNS) {
                    let mut acc = [init; COLUMNS];
                    let block = |r: usize| -> &[f32; COLUMNS] {
                        src[r * cols + b0..][..COLUMNS]
                            .try_into()
                            .expect("a whole block")
                    };
                    let mut r = 0;
                    while r + 4 <= rows {
                        let four = [block(r), block(r + 1), block(r + 2), block(r + 3)];
                        for (i, a) in acc.iter_mut().enumerate() {
                            let mut x = *a;
                            for row in four {
                                add(&mut x, row[i]);
                            }
                            *a = x;
                        }
                        r += 4;
                    }
                    for r in r..rows {
                        for (a, &v) in acc.iter_mut().zip(block(r)) {
                            add(a, v);
                        }
                    }
                    out.extend_from_slice(&acc);
                }
                let mut acc = vec![init; c1 - whole];
                for r in 0..rows {
                    for (a, &v) in acc.iter_mut().zip(&src[r * cols + whole..][..c1 - whole]) {
                        add(a, v);
                    }
                }
                out.extend_from_slice(&acc);
            },
        );
        out
    });
    sums.concat()
}

/// Folds every element of `src` into `acc` in memory order; with `split = Some((k, range))`
/// only those whose index along segment `k` lies in `range`, `acc` then holding the outputs of
/// that range alone. When the last segment is reduced, [`LANES`] rows of consecutive outputs
/// (the kept segment before it) are folded together, each in its own order.
fn walk<A: Copy>(
    src: &[f32],
    segs: &[Segment],
    split: Option<(usize, Range<usize>)>,
    acc: &mut [A],
    add: &impl Fn(&mut A, f32),
) {
    let last = segs.len() - 1;
    let bounds: Vec<(usize, usize)> = segs
        .iter()
        .enumerate()
        .map(|(i, s)| match &split {
            Some((k, r)) if *k == i => (r.start, r.end),
            _ => (0, s.len),
        })
        .collect();
    let base_out = split.map_or(0, |(k, r)| r.start * segs[k].out_stride);
    // The segments the odometer turns: all but the last, or but the last two when the last is
    // reduced behind a kept one, whose rows then go [`LANES`] at a time.
    let lanes = segs[last].reduced && last >= 1;
    let outer = if lanes { last - 1 } else { last };
    let mut idx: Vec<usize> = bounds.iter().map(|b| b.0).collect();
    let (from, to) = bounds[last];
    loop {
        let (mut at, mut out) = (0, 0);
        for (i, s) in segs[..outer].iter().enumerate() {
            at += idx[i] * s.in_stride;
            if !s.reduced {
                out += idx[i] * s.out_stride;
            }
        }
        if lanes {
            let kept = segs[outer];
            let (k0, k1) = bounds[outer];
            let mut j = k0;
            // Rows of neighbouring outputs folded in lockstep: one output's sum is a chain of
            // dependent additions that alone waits on the adder at every element. They are
            // read a block at a time transposed into rows of `LANES` values (read in place, a
            // row apart, they went a value a cycle: a bias gradient over [64, 64, 32, 32]).
            // Each output still meets its own elements in the same order: the same bits.
            while j + LANES <= k1 {
                let first = at + j * kept.in_stride + from;
                let o = out + j * kept.out_stride - base_out;
                // The kept segment is the innermost kept one: its outputs are adjacent.
                let dst = &mut acc[o..o + LANES];
                let sums: [A; LANES] = std::array::from_fn(|l| dst[l]);
                let dims = [LANES, to - from, kept.in_stride];
                let sums = fold_rows((&src[first..], None), dims, sums, |sums, row, _| {
                    for (sum, &v) in sums.iter_mut().zip(row) {
                        add(sum, v);
                    }
                });
                dst.copy_from_slice(&sums);
                j += LANES;
            }
            for j in j..k1 {
                let start = at + j * kept.in_stride;
                let a = &mut acc[out + j * kept.out_stride - base_out];
                for &v in &src[start + from..start + to] {
                    add(a, v);
                }
            }
        } else {
            let values = &src[at + from..at + to];
            if segs[last].reduced {
                let a = &mut acc[out - base_out];
                for &v in values {
                    add(a, v);
                }
            } else {
                let start = out + from - base_out;
                for (a, &v) in acc[start..start + values.len()].iter_mut().zip(values) {
                    add(a, v);
                }
            }
        }
        // The odometer over the outer segments.
        let mut i = outer;
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
    use proptest::test_runner::TestCaseError;

    /// The general path's sum: permute the reduced axes to the end, sum each row.
    fn permuted_sum(x: &Tensor, axes: &[usize], keepdim: bool) -> Tensor {
        permuted(x, axes, keepdim, |row| {
            row.iter().map(|&e| f64::from(e)).sum::<f64>() as f32
        })
    }

    /// The general path's maximum, written out: NaN wins, among equals the first stays.
    fn permuted_max(x: &Tensor, axes: &[usize], keepdim: bool) -> Tensor {
        permuted(x, axes, keepdim, |row| {
            let mut m = f32::NEG_INFINITY;
            for &v in row {
                if v.is_nan() || v > m {
                    m = v;
                }
            }
            m
        })
    }

    /// Permutes the reduced axes to the end and folds each row with `fold`.
    fn permuted(x: &Tensor, axes: &[usize], keepdim: bool, fold: fn(&[f32]) -> f32) -> Tensor {
        let nd = x.ndim();
        let kept: Vec<usize> = (0..nd).filter(|a| !axes.contains(a)).collect();
        let order: Vec<usize> = kept.iter().chain(axes).copied().collect();
        let moved = x.permute(&order).contiguous();
        let inner: usize = axes.iter().map(|&a| x.shape()[a]).product();
        let v = moved.as_slice();
        let out: Vec<f32> = v.chunks(inner.max(1)).map(fold).collect();
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
            (shape, axes, seed) in reduction_case(),
        ) {
            let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
            let x = Tensor::randn(&shape, 0.0, 1.0, &mut rng);
            same_bits(&x, &axes, Tensor::sum_axes, permuted_sum)?;
        }

        /// The maximum in place is the permuted rows' maximum bit for bit, with ties, signed
        /// zeros, infinities and NaN among the values (NaN wins, the first of equals stays).
        #[test]
        fn in_place_maxima_equal_the_permuted_rows_bit_for_bit(
            (shape, axes, seed) in reduction_case(),
        ) {
            let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
            let specials = [0.0, -0.0, 1.0, -1.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN];
            let n: usize = shape.iter().product();
            let values = (0..n)
                .map(|_| {
                    let i = rand::Rng::random_range(&mut rng, 0..specials.len() * 40);
                    // Mostly ties between a few values, rarely NaN.
                    specials.get(i).copied().unwrap_or((i % 5) as f32 - 2.0)
                })
                .collect();
            same_bits(&Tensor::from_vec(&shape, values), &axes, Tensor::max_axes, permuted_max)?;
        }
    }

    /// A shape of rank 1-5, a non-empty ascending set of its axes and a seed; half the shapes
    /// are large enough to take the parallel split, and of the others most have one axis nine
    /// times longer, so that runs of kept outputs fill the side-by-side rows of `walk`.
    fn reduction_case() -> impl Strategy<Value = (Vec<usize>, Vec<usize>, u64)> {
        (
            prop::collection::vec(1usize..6, 1..=5),
            prop::collection::vec(any::<bool>(), 5),
            any::<bool>(),
            0usize..6,
            any::<u64>(),
        )
            .prop_filter_map("no axis reduced", |(mut shape, mask, big, wide, seed)| {
                if big {
                    shape[0] *= 1500;
                } else if wide < shape.len() {
                    shape[wide] *= 9;
                }
                let axes: Vec<usize> = (0..shape.len()).filter(|&i| mask[i]).collect();
                (!axes.is_empty()).then_some((shape, axes, seed))
            })
    }

    type Reduce = fn(&Tensor, &[usize], bool) -> Tensor;

    /// `got` and `want` agree on shape and bits, with and without `keepdim`.
    fn same_bits(
        x: &Tensor,
        axes: &[usize],
        got: Reduce,
        want: Reduce,
    ) -> Result<(), TestCaseError> {
        let bits = |t: &Tensor| t.to_vec().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for keepdim in [false, true] {
            let (g, w) = (got(x, axes, keepdim), want(x, axes, keepdim));
            prop_assert_eq!(g.shape(), w.shape());
            prop_assert_eq!(bits(&g), bits(&w));
        }
        Ok(())
    }

    fn iota(shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_vec(shape, (0..n).map(|i| i as f32).collect())
    }

    /// Column sums (leading axes reduced) in whole and partial blocks of accumulators, rows four
    /// at a time and the rest, split into parallel parts or not, give the permuted rows' bits;
    /// a changed value is caught.
    #[test]
    fn column_sums_equal_the_permuted_rows_bit_for_bit() {
        for (rows, cols) in [
            (64, 1024),
            (67, 200),
            (3, 64),
            (4097, 130),
            (64, 12544),
            (5, 7),
        ] {
            let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(cols as u64);
            let x = Tensor::randn(&[rows, cols], 0.0, 1.0, &mut rng);
            same_bits(&x, &[0], Tensor::sum_axes, permuted_sum).unwrap();
            same_bits(&x, &[0], Tensor::max_axes, permuted_max).unwrap();
            let three = x.reshape(&[1, rows, cols]);
            same_bits(&three, &[0, 1], Tensor::sum_axes, permuted_sum).unwrap();
            let mut changed = x.to_vec();
            changed[(rows - 1) * cols + cols / 2] += 1.0;
            let changed = Tensor::from_vec(&[rows, cols], changed);
            assert_ne!(
                changed.sum_axes(&[0], false).to_vec(),
                permuted_sum(&x, &[0], false).to_vec()
            );
        }
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
