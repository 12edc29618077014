//! Elementwise kernels: broadcasting binary arithmetic, unary maps and comparison masks.
//!
//! Broadcasting follows NumPy and PyTorch: shapes are aligned at their last axis, and an axis of
//! length 1 (or a missing leading axis) stretches to match the other operand.

use crate::Tensor;
use crate::parallel::{fill_chunks, map_slices};

/// The shape two operands broadcast to.
///
/// # Panics
/// If an axis differs and neither length is 1; the message names `op` and both shapes.
#[track_caller]
pub fn broadcast_shape(op: &str, a: &[usize], b: &[usize]) -> Vec<usize> {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| {
            let da = if i + a.len() >= n {
                a[i + a.len() - n]
            } else {
                1
            };
            let db = if i + b.len() >= n {
                b[i + b.len() - n]
            } else {
                1
            };
            match (da, db) {
                _ if da == db => da,
                (1, d) | (d, 1) => d,
                _ => panic!("{op}: shapes {a:?} and {b:?} do not broadcast"),
            }
        })
        .collect()
}

/// If `small` broadcasts to `full` by repeating one contiguous block of axes (a bias `[F]`
/// against `[N, F]`, a per-channel `[1, C, 1, 1]` against `[N, C, H, W]`, a scalar), the number
/// of consecutive output elements that share one element of `small` (1 for `[N, F]` + `[F]`).
fn block_broadcast(full: &[usize], small: &[usize]) -> Option<usize> {
    let lead = full.len().checked_sub(small.len())?;
    let dim = |i: usize| if i < lead { 1 } else { small[i - lead] };
    let kept: Vec<usize> = (0..full.len()).filter(|&i| dim(i) != 1).collect();
    let (Some(&k0), Some(&k1)) = (kept.first(), kept.last()) else {
        return Some(full.iter().product::<usize>().max(1));
    };
    let contiguous_and_equal = (k0..=k1).all(|i| dim(i) == full[i]);
    contiguous_and_equal.then(|| full[k1 + 1..].iter().product())
}

/// `f(a[i], b[(i / inner) % b.len()])` for every `i`: the broadcast [`block_broadcast`] found,
/// as plain loops over contiguous runs (`inner` outputs share one `b`, or with `inner == 1`
/// whole rows zip with `b`), in parallel chunks when large.
fn zip_block<F>(a: &[f32], b: &[f32], inner: usize, f: F) -> Vec<f32>
where
    F: Fn(f32, f32) -> f32 + Sync + Send,
{
    if b.is_empty() || inner == 0 {
        return Vec::new();
    }
    fill_chunks(a.len(), |start, dst| {
        let end = start + dst.len();
        let mut i = start;
        while i < end {
            // A run of outputs that meets `b` contiguously: a row of `b` or one repeated value.
            let (run, ys) = if inner == 1 {
                let p = i % b.len();
                ((b.len() - p).min(end - i), &b[p..])
            } else {
                let j = i / inner;
                (
                    ((j + 1) * inner).min(end) - i,
                    &b[j % b.len()..=j % b.len()],
                )
            };
            let out = &mut dst[i - start..i - start + run];
            let xs = &a[i..i + run];
            if inner == 1 {
                for ((d, &x), &y) in out.iter_mut().zip(xs).zip(ys) {
                    d.write(f(x, y));
                }
            } else {
                let y = ys[0];
                for (d, &x) in out.iter_mut().zip(xs) {
                    d.write(f(x, y));
                }
            }
            i += run;
        }
    })
}

impl Tensor {
    /// Applies `f` to every element.
    pub fn map<F>(&self, f: F) -> Tensor
    where
        F: Fn(f32) -> f32 + Sync + Send,
    {
        let out = map_slices(&self.as_slice(), None, |x, _| f(x));
        Tensor::from_vec(self.shape(), out)
    }

    /// Combines two tensors elementwise with broadcasting; `op` names the operation in panics.
    ///
    /// # Panics
    /// If the shapes do not broadcast.
    #[track_caller]
    pub fn zip_map<F>(&self, other: &Tensor, op: &str, f: F) -> Tensor
    where
        F: Fn(f32, f32) -> f32 + Sync + Send,
    {
        if self.shape() == other.shape() {
            let out = map_slices(&self.as_slice(), Some(&other.as_slice()), f);
            return Tensor::from_vec(self.shape(), out);
        }
        let shape = broadcast_shape(op, self.shape(), other.shape());
        if shape == self.shape()
            && let Some(inner) = block_broadcast(&shape, other.shape())
        {
            let out = zip_block(&self.as_slice(), &other.as_slice(), inner, f);
            return Tensor::from_vec(&shape, out);
        }
        if shape == other.shape()
            && let Some(inner) = block_broadcast(&shape, self.shape())
        {
            let out = zip_block(&other.as_slice(), &self.as_slice(), inner, |y, x| f(x, y));
            return Tensor::from_vec(&shape, out);
        }
        // Any other pattern (both operands stretched, or a repeated axis inside the kept
        // ones): both are copied out to the full shape, a few block copies each, and zipped as
        // equal shapes. Walking the two strided views together costs an index step per element,
        // several times the copies when the repeated runs are short (a 2x2 window's axes).
        let stretch = |t: &Tensor| {
            if t.shape() == shape.as_slice() {
                t.clone()
            } else {
                t.broadcast_to(&shape)
            }
        };
        let (a, b) = (stretch(self), stretch(other));
        let out = map_slices(&a.as_slice(), Some(&b.as_slice()), f);
        Tensor::from_vec(&shape, out)
    }

    /// `self + other`, broadcasting.
    #[track_caller]
    pub fn add(&self, other: &Tensor) -> Tensor {
        self.zip_map(other, "add", |a, b| a + b)
    }

    /// `self - other`, broadcasting.
    #[track_caller]
    pub fn sub(&self, other: &Tensor) -> Tensor {
        self.zip_map(other, "sub", |a, b| a - b)
    }

    /// `self * other`, broadcasting.
    #[track_caller]
    pub fn mul(&self, other: &Tensor) -> Tensor {
        self.zip_map(other, "mul", |a, b| a * b)
    }

    /// `self / other`, broadcasting.
    #[track_caller]
    pub fn div(&self, other: &Tensor) -> Tensor {
        self.zip_map(other, "div", |a, b| a / b)
    }

    /// The larger of the two at each position, broadcasting.
    #[track_caller]
    pub fn maximum(&self, other: &Tensor) -> Tensor {
        self.zip_map(other, "maximum", f32::max)
    }

    /// The smaller of the two at each position, broadcasting.
    #[track_caller]
    pub fn minimum(&self, other: &Tensor) -> Tensor {
        self.zip_map(other, "minimum", f32::min)
    }

    /// `self + c`.
    pub fn add_scalar(&self, c: f32) -> Tensor {
        self.map(move |x| x + c)
    }

    /// `self * c`.
    pub fn mul_scalar(&self, c: f32) -> Tensor {
        self.map(move |x| x * c)
    }

    /// `-self`.
    pub fn neg(&self) -> Tensor {
        self.map(|x| -x)
    }

    /// `e^self`.
    pub fn exp(&self) -> Tensor {
        self.map(f32::exp)
    }

    /// Natural logarithm.
    pub fn ln(&self) -> Tensor {
        self.map(f32::ln)
    }

    /// Square root.
    pub fn sqrt(&self) -> Tensor {
        self.map(f32::sqrt)
    }

    /// `self^p`.
    pub fn powf(&self, p: f32) -> Tensor {
        self.map(move |x| x.powf(p))
    }

    /// Absolute value.
    pub fn abs(&self) -> Tensor {
        self.map(f32::abs)
    }

    /// Limits every element to `[lo, hi]`.
    pub fn clamp(&self, lo: f32, hi: f32) -> Tensor {
        self.map(move |x| x.clamp(lo, hi))
    }

    /// `max(x, 0)`; NaN stays NaN (as PyTorch), so a diverging run is noticed.
    pub fn relu(&self) -> Tensor {
        self.map(|x| if x < 0.0 { 0.0 } else { x })
    }

    /// `x` where positive, `slope * x` elsewhere.
    pub fn leaky_relu(&self, slope: f32) -> Tensor {
        self.map(move |x| if x > 0.0 { x } else { slope * x })
    }

    /// The logistic function `1 / (1 + e^-x)`, computed without overflow for large `|x|`.
    pub fn sigmoid(&self) -> Tensor {
        self.map(sigmoid)
    }

    /// Hyperbolic tangent.
    pub fn tanh(&self) -> Tensor {
        self.map(f32::tanh)
    }

    /// 1 where `self > other`, else 0 (broadcasting).
    #[track_caller]
    pub fn gt(&self, other: &Tensor) -> Tensor {
        self.zip_map(other, "gt", |a, b| f32::from(u8::from(a > b)))
    }

    /// 1 where `self >= other`, else 0 (broadcasting).
    #[track_caller]
    pub fn ge(&self, other: &Tensor) -> Tensor {
        self.zip_map(other, "ge", |a, b| f32::from(u8::from(a >= b)))
    }

    /// 1 where `self < other`, else 0 (broadcasting).
    #[track_caller]
    pub fn lt(&self, other: &Tensor) -> Tensor {
        self.zip_map(other, "lt", |a, b| f32::from(u8::from(a < b)))
    }

    /// 1 where `self <= other`, else 0 (broadcasting).
    #[track_caller]
    pub fn le(&self, other: &Tensor) -> Tensor {
        self.zip_map(other, "le", |a, b| f32::from(u8::from(a <= b)))
    }

    /// 1 where `self == other`, else 0 (broadcasting).
    #[track_caller]
    pub fn eq_mask(&self, other: &Tensor) -> Tensor {
        self.zip_map(other, "eq_mask", |a, b| f32::from(u8::from(a == b)))
    }
}

/// The logistic function of one value, stable for large `|x|`.
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasts_rows_and_columns() {
        let col = Tensor::from_vec(&[2, 1], vec![1., 2.]);
        let row = Tensor::from_vec(&[3], vec![10., 20., 30.]);
        assert_eq!(col.mul(&row).to_vec(), vec![10., 20., 30., 20., 40., 60.]);
    }

    #[test]
    #[should_panic(expected = "add: shapes [2, 3] and [2] do not broadcast")]
    fn mismatch_names_op_and_shapes() {
        Tensor::zeros(&[2, 3]).add(&Tensor::zeros(&[2]));
    }

    #[test]
    fn relu_keeps_nan() {
        let r = Tensor::from_vec(&[3], vec![-1.0, f32::NAN, 2.0])
            .relu()
            .to_vec();
        assert_eq!(r[0], 0.0);
        assert!(r[1].is_nan());
        assert_eq!(r[2], 2.0);
    }

    #[test]
    fn sigmoid_is_finite_at_extremes() {
        let s = Tensor::from_vec(&[2], vec![-1000., 1000.]).sigmoid();
        assert_eq!(s.to_vec(), vec![0., 1.]);
    }

    #[test]
    fn large_map_matches_serial() {
        let n = 100_003;
        let x = Tensor::from_vec(&[n], (0..n).map(|i| i as f32 * 1e-3).collect());
        let y = x.map(|v| v.sin());
        assert!(
            y.to_vec()
                .iter()
                .enumerate()
                .all(|(i, &v)| v == (i as f32 * 1e-3).sin())
        );
    }
}
