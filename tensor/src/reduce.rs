//! Reductions (sum, mean, max) over any set of axes, and `sum_to` for undoing a broadcast.
//!
//! Each output element is reduced by one thread in a fixed order with an `f64` accumulator, so
//! results do not depend on the thread count and stay accurate over large batches.

use crate::Tensor;
use crate::parallel::map_range;

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
        let shape: Vec<usize> = if keepdim {
            (0..nd)
                .map(|i| if reduced[i] { 1 } else { self.shape()[i] })
                .collect()
        } else {
            kept.iter().map(|&i| self.shape()[i]).collect()
        };
        Tensor::from_vec(&shape, out)
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;

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
