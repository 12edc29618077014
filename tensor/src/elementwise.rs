//! Elementwise kernels: broadcasting binary arithmetic, unary maps and comparison masks.
//!
//! Broadcasting follows NumPy and PyTorch: shapes are aligned at their last axis, and an axis of
//! length 1 (or a missing leading axis) stretches to match the other operand.

use crate::Tensor;
use crate::parallel::{PAR_MIN_ELEMS, fill_chunks, for_each_chunk_mut, map_slices};
use crate::simd;

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

/// `self = self + other`, the same bits as [`Tensor::add`]: written over `self`'s values when
/// the shapes are equal and no other tensor shares `self`'s storage (a gradient summed over a
/// weight's uses), saving the new tensor and a pass over memory; otherwise a new tensor.
///
/// ```
/// use gantry_tensor::Tensor;
/// let mut a = Tensor::from_vec(&[2], vec![1.0, 2.0]);
/// let b = a.clone();
/// a += &Tensor::from_vec(&[2], vec![0.5, 0.5]);
/// assert_eq!(a.to_vec(), vec![1.5, 2.5]);
/// assert_eq!(b.to_vec(), vec![1.0, 2.0]);
/// ```
impl std::ops::AddAssign<&Tensor> for Tensor {
    #[track_caller]
    fn add_assign(&mut self, other: &Tensor) {
        if self.shape() == other.shape() {
            let src = other.as_slice();
            if let Some(dst) = self.own_slice_mut() {
                let chunk = PAR_MIN_ELEMS / 4;
                for_each_chunk_mut(dst, chunk, |i, dst| {
                    let src = &src[i * chunk..i * chunk + dst.len()];
                    simd::widest(
                        #[inline(always)]
                        || {
                            for (d, &s) in dst.iter_mut().zip(src) {
                                *d += s;
                            }
                        },
                    );
                });
                return;
            }
        }
        *self = Tensor::add(self, other);
    }
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

    /// Hyperbolic tangent, within 1 ulp of the exact value (see [`tanh`]), at the CPU's
    /// widest SIMD (the same bits at every width).
    pub fn tanh(&self) -> Tensor {
        let x = self.as_slice();
        let out = fill_chunks(x.len(), |start, dst| {
            simd::widest(
                #[inline(always)]
                || {
                    for (d, &v) in dst.iter_mut().zip(&x[start..]) {
                        d.write(tanh(v));
                    }
                },
            )
        });
        Tensor::from_vec(self.shape(), out)
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

/// `tanh(x)` for `|x| < TANH_SMALL` is `x + x^3 P(x^2)`, with these coefficients of `P` from
/// the constant term up: a weighted least-squares fit of the relative error, reweighted
/// towards its maximum (Lawson), on 4,000 Chebyshev nodes, computed in `f64` and rounded.
const TANH_P: [f32; 6] = [
    -0.333_333_3,
    0.133_332_92,
    -0.053_959_52,
    0.021_782_257,
    -0.008_412_82,
    0.002_395_026_4,
];

/// `e^r - 1 - r = r^2 Q(r)` on `|r| <= ln(2) / 2`, fitted as [`TANH_P`].
const EXP_Q: [f32; 6] = [
    0.5,
    0.166_666_64,
    0.041_666_396,
    0.008_333_899,
    0.001_393_867_2,
    0.000_195_693_43,
];

/// Below this `|x|`, [`tanh`]'s polynomial; above, `1 - 2 / (e^(2|x|) + 1)`, whose
/// cancellation costs at most a factor of 2 in relative error from here on.
const TANH_SMALL: f32 = 0.55;

/// From this `|x|` on, `tanh(x)` rounds to 1.
const TANH_ONE: f32 = 9.0;

/// `tanh(x)` within 1 ulp of the exact value, NaN, infinities and signed zeros as IEEE says,
/// in plain `f32` arithmetic (no calls, no branches a select cannot take), so that a map over
/// a tensor vectorises at every SIMD width and gives the same bits at each. glibc's `tanhf`
/// does neither: on an MLP GAN step (a 64 x 784 tanh output) it was 4.7% of the time.
/// Checked against `f64` over every 61st `f32` in `[0, 12]` and more (unit test): at most
/// 1 ulp, 98% of values exact.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let s = a * a;
    let p = TANH_P.iter().rev().fold(0.0, |p, &c| p * s + c);
    let small = a + a * s * p;
    // e^(2a) = 2^k e^r with r = 2a - k ln 2 (ln 2 split in two for an exact first product),
    // k rounded to nearest by the 1.5 * 2^23 trick, which vectorises everywhere.
    const ROUND: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let y = a + a;
    let k = (y * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = (y - k * LN2_HI) - k * LN2_LO;
    let q = EXP_Q.iter().rev().fold(0.0, |q, &c| q * r + c);
    let e_r = 1.0 + r + r * r * q;
    // 2^k from the bits of k + 127 + ROUND (an integer below 2^24, held exactly in the low
    // bits): `k as i32`, saturating at NaN, was taken lane by lane and cost half the time.
    // Large `a` is replaced below; NaN propagates through `e_r`, whatever `scale` holds.
    let biased = (k.clamp(-126.0, 127.0) + (127.0 + ROUND)).to_bits();
    let scale = f32::from_bits(biased.wrapping_sub(ROUND.to_bits()) << 23);
    let large = 1.0 - 2.0 / (e_r * scale + 1.0);
    let t = if a > TANH_ONE {
        1.0
    } else if a < TANH_SMALL {
        small
    } else {
        large
    };
    t.copysign(x)
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

    /// Distance in representable `f32` values between two finite values of one sign.
    fn ulps(a: f32, b: f32) -> u32 {
        assert_eq!(a.is_sign_negative(), b.is_sign_negative(), "{a} and {b}");
        a.to_bits().abs_diff(b.to_bits())
    }

    /// [`tanh`] is within 1 ulp of `f64`'s `tanh` rounded once, over every 61st `f32` from 0 to
    /// 12 (the polynomial, the exponential form, the switch between them and the saturation at
    /// 9), exact for at least 97% of them, odd, and IEEE at zeros, infinities and NaN.
    #[test]
    fn tanh_is_within_one_ulp() {
        let (mut worst, mut exact, mut count) = (0, 0, 0);
        for bits in (0..=12.0f32.to_bits()).step_by(61) {
            let x = f32::from_bits(bits);
            let want = f64::from(x).tanh() as f32;
            let got = tanh(x);
            let d = ulps(got, want);
            assert!(d <= 1, "tanh({x:e}) = {got:e}, {d} ulps from {want:e}");
            assert_eq!(tanh(-x).to_bits(), (-got).to_bits(), "tanh(-{x:e})");
            worst = worst.max(d);
            exact += usize::from(d == 0);
            count += 1;
        }
        assert!(exact * 100 >= count * 97, "{exact} of {count} exact");
        assert_eq!(
            worst, 1,
            "the sweep no longer reaches a rounding difference"
        );
        assert_eq!(tanh(0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(tanh(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(tanh(f32::INFINITY), 1.0);
        assert_eq!(tanh(f32::NEG_INFINITY), -1.0);
        assert_eq!(tanh(1e-40), 1e-40, "subnormals are their own tanh");
        assert!(tanh(f32::NAN).is_nan());
        // A tensor goes through the same function at the CPU's widest SIMD, and every level
        // this CPU runs gives the baseline's bits.
        let xs: Vec<f32> = (0..1000).map(|i| (i as f32 - 500.0) * 0.023).collect();
        let t = Tensor::from_vec(&[1000], xs.clone()).tanh().to_vec();
        for (x, y) in xs.iter().zip(t) {
            assert_eq!(y.to_bits(), tanh(*x).to_bits(), "tanh({x}) in a tensor");
        }
        for level in simd::Level::available() {
            let at_level: Vec<f32> = simd::at(
                level,
                #[inline(always)]
                || xs.iter().map(|&x| tanh(x)).collect(),
            );
            for (x, y) in xs.iter().zip(at_level) {
                assert_eq!(y.to_bits(), tanh(*x).to_bits(), "tanh({x}) at {level}");
            }
        }
    }

    /// `+=` gives `add`'s bits in place (large enough to split over threads, and with a
    /// short last chunk), in a new tensor when the storage is shared (the other holder keeps
    /// its values) and when `other` broadcasts.
    #[test]
    fn add_assign_is_add_in_place_or_not() {
        let n = 5 * PAR_MIN_ELEMS + 37;
        let a = Tensor::from_vec(&[n], (0..n).map(|i| (i % 97) as f32 * 0.37 - 9.0).collect());
        let b = Tensor::from_vec(&[n], (0..n).map(|i| (i % 89) as f32 * 1.1e-3).collect());
        let want = a.add(&b).to_vec();
        let mut owned = Tensor::from_vec(&[n], a.to_vec());
        let before = owned.as_slice().as_ptr();
        owned += &b;
        assert_eq!(owned.as_slice().as_ptr(), before, "written in place");
        assert_eq!(owned.to_vec(), want);
        let mut shared = a.clone();
        shared += &b;
        assert_eq!(shared.to_vec(), want);
        assert_eq!(
            a.to_vec()[..3],
            [-9.0, -8.63, -8.26],
            "the other holder is unchanged"
        );
        let mut rows = Tensor::from_vec(&[2, 2], vec![1.0, 2.0, 3.0, 4.0]);
        rows += &Tensor::from_vec(&[2], vec![10.0, 20.0]);
        assert_eq!(rows.to_vec(), vec![11.0, 22.0, 13.0, 24.0]);
    }

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
