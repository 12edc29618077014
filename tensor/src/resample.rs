//! Index maps of `[N, C, H, W]` planes and their adjoints, each the other's gradient:
//! nearest-neighbour upsampling by an integer factor and the sum over non-overlapping `f x f`
//! blocks; reflection padding and its fold (each padded pixel's value added back onto the pixel
//! it mirrors).
//!
//! Written as kernels of their own because the composed forms cost far more than the copy they
//! are: upsampling as a product with a broadcast `[1, 1, 1, f, 1, f]` of ones walked a 6-D
//! iterator per element, its gradient (a sum over two interleaved axes) permuted the whole
//! tensor into a new layout first, and reflection padding was a concatenation of one-row
//! slices. Each output plane depends on one input plane only, so the planes run in parallel and
//! the numbers do not depend on the thread count.

use crate::parallel::for_each_chunk_mut;
use crate::tensor::Tensor;

impl Tensor {
    /// Each pixel repeated into an `f x f` block: `[N, C, H, W] -> [N, C, f H, f W]`, as
    /// PyTorch's `interpolate(mode="nearest", scale_factor=f)`.
    ///
    /// # Panics
    /// If the tensor is not 4-D or `f` is 0.
    #[track_caller]
    pub fn upsample_nearest2d(&self, f: usize) -> Tensor {
        let (n, c, h, w) = planes(self, "upsample_nearest2d", f);
        let (oh, ow) = (h * f, w * f);
        let x = self.as_slice();
        let mut out = vec![0.0f32; n * c * oh * ow];
        for_each_chunk_mut(&mut out, oh * ow, |p, dst| {
            let src = &x[p * h * w..(p + 1) * h * w];
            for (i, row) in src.chunks_exact(w).enumerate() {
                let block = &mut dst[i * f * ow..(i + 1) * f * ow];
                let (first, rest) = block.split_at_mut(ow);
                for (pixel, &v) in first.chunks_exact_mut(f).zip(row) {
                    pixel.fill(v);
                }
                for copy in rest.chunks_exact_mut(ow) {
                    copy.copy_from_slice(first);
                }
            }
        });
        Tensor::from_vec(&[n, c, oh, ow], out)
    }

    /// The sum of each non-overlapping `f x f` block: `[N, C, H, W] -> [N, C, H / f, W / f]`,
    /// the adjoint of [`Tensor::upsample_nearest2d`] (and `f²` times an average pooling with
    /// kernel and stride `f`). Each block is summed row by row, left to right.
    ///
    /// # Panics
    /// If the tensor is not 4-D, `f` is 0, or `H` or `W` is not a multiple of `f`.
    #[track_caller]
    pub fn sum_pool2d(&self, f: usize) -> Tensor {
        let (n, c, h, w) = planes(self, "sum_pool2d", f);
        assert!(
            h % f == 0 && w % f == 0,
            "sum_pool2d: {h}x{w} planes are not a multiple of the block {f}"
        );
        let (oh, ow) = (h / f, w / f);
        let x = self.as_slice();
        let mut out = vec![0.0f32; n * c * oh * ow];
        for_each_chunk_mut(&mut out, oh * ow, |p, dst| {
            let src = &x[p * h * w..(p + 1) * h * w];
            for (i, out_row) in dst.chunks_exact_mut(ow).enumerate() {
                for row in src[i * f * w..(i + 1) * f * w].chunks_exact(w) {
                    for (o, block) in out_row.iter_mut().zip(row.chunks_exact(f)) {
                        *o += block.iter().sum::<f32>();
                    }
                }
            }
        });
        Tensor::from_vec(&[n, c, oh, ow], out)
    }
}

/// Reflection padding of a 2-D plane: `[left, right, top, bottom]`, as PyTorch's
/// `ReflectionPad2d` (the edge itself is not repeated).
pub type Pads2d = [usize; 4];

/// The source index of padded position `o` on an axis of length `n` padded by `before`.
fn mirror(o: usize, before: usize, n: usize) -> usize {
    let i = o as isize - before as isize;
    let n = n as isize;
    let r = if i < 0 {
        -i
    } else if i >= n {
        2 * (n - 1) - i
    } else {
        i
    };
    r as usize
}

impl Tensor {
    /// Reflection padding of each `[H, W]` plane by `[left, right, top, bottom]`, as PyTorch's
    /// `ReflectionPad2d`.
    ///
    /// # Panics
    /// If the tensor is not 4-D or a padding is not smaller than the axis it pads.
    #[track_caller]
    pub fn reflection_pad2d(&self, pads: Pads2d) -> Tensor {
        let (n, c, h, w) = planes(self, "reflection_pad2d", 1);
        let [l, r, t, b] = pads;
        assert!(
            l.max(r) < w && t.max(b) < h,
            "reflection_pad2d: padding {pads:?} is not smaller than the {h}x{w} plane"
        );
        let (oh, ow) = (h + t + b, w + l + r);
        let cols: Vec<usize> = (0..ow).map(|o| mirror(o, l, w)).collect();
        let x = self.as_slice();
        let mut out = vec![0.0f32; n * c * oh * ow];
        for_each_chunk_mut(&mut out, oh * ow, |p, dst| {
            let src = &x[p * h * w..(p + 1) * h * w];
            for (o, row) in dst.chunks_exact_mut(ow).enumerate() {
                let from = &src[mirror(o, t, h) * w..][..w];
                for (d, &j) in row.iter_mut().zip(&cols) {
                    *d = from[j];
                }
            }
        });
        Tensor::from_vec(&[n, c, oh, ow], out)
    }

    /// The adjoint of [`Tensor::reflection_pad2d`]: an `[N, C, H + top + bottom, W + left +
    /// right]` gradient folded back onto `[N, C, H, W]`, each padded position's value added to
    /// the pixel it mirrors (rows first, then columns, in index order).
    ///
    /// # Panics
    /// If the tensor is not 4-D or the padding leaves a plane no larger than it.
    #[track_caller]
    pub fn reflection_pad2d_fold(&self, pads: Pads2d) -> Tensor {
        let (n, c, oh, ow) = planes(self, "reflection_pad2d_fold", 1);
        let [l, r, t, b] = pads;
        assert!(
            oh > t + b && ow > l + r && l.max(r) < ow - l - r && t.max(b) < oh - t - b,
            "reflection_pad2d_fold: a {oh}x{ow} gradient is not a plane padded by {pads:?}"
        );
        let (h, w) = (oh - t - b, ow - l - r);
        let cols: Vec<usize> = (0..ow).map(|o| mirror(o, l, w)).collect();
        let gy = self.as_slice();
        let mut out = vec![0.0f32; n * c * h * w];
        for_each_chunk_mut(&mut out, h * w, |p, dst| {
            let src = &gy[p * oh * ow..(p + 1) * oh * ow];
            for (o, row) in src.chunks_exact(ow).enumerate() {
                let into = &mut dst[mirror(o, t, h) * w..][..w];
                for (&v, &j) in row.iter().zip(&cols) {
                    into[j] += v;
                }
            }
        });
        Tensor::from_vec(&[n, c, h, w], out)
    }
}

#[track_caller]
fn planes(x: &Tensor, what: &str, f: usize) -> (usize, usize, usize, usize) {
    let s = x.shape();
    assert!(s.len() == 4, "{what}: input {s:?} is not [N, C, H, W]");
    assert!(f > 0, "{what}: the factor must be positive");
    (s[0], s[1], s[2], s[3])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive_upsample(x: &Tensor, f: usize) -> Tensor {
        let s = x.shape().to_vec();
        let v = x.to_vec();
        let (h, w) = (s[2], s[3]);
        let mut out = Vec::new();
        for p in 0..s[0] * s[1] {
            for i in 0..h * f {
                for j in 0..w * f {
                    out.push(v[p * h * w + (i / f) * w + j / f]);
                }
            }
        }
        Tensor::from_vec(&[s[0], s[1], h * f, w * f], out)
    }

    fn naive_sum_pool(x: &Tensor, f: usize) -> Tensor {
        let s = x.shape().to_vec();
        let v = x.to_vec();
        let (h, w) = (s[2], s[3]);
        let mut out = Vec::new();
        for p in 0..s[0] * s[1] {
            for i in 0..h / f {
                for j in 0..w / f {
                    // Row by row, as the kernel.
                    let mut sum = 0.0f32;
                    for a in 0..f {
                        let start = p * h * w + (i * f + a) * w + j * f;
                        sum += v[start..start + f].iter().sum::<f32>();
                    }
                    out.push(sum);
                }
            }
        }
        Tensor::from_vec(&[s[0], s[1], h / f, w / f], out)
    }

    fn dot(a: &Tensor, b: &Tensor) -> f64 {
        a.to_vec()
            .iter()
            .zip(b.to_vec())
            .map(|(&x, y)| f64::from(x) * f64::from(y))
            .sum()
    }

    #[test]
    fn a_hand_worked_plane() {
        let x = Tensor::from_vec(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]);
        let up = x.upsample_nearest2d(2);
        assert_eq!(
            up.to_vec(),
            [
                1., 1., 2., 2., 1., 1., 2., 2., 3., 3., 4., 4., 3., 3., 4., 4.
            ]
        );
        assert_eq!(up.sum_pool2d(2).to_vec(), [4.0, 8.0, 12.0, 16.0]);
        assert_eq!(x.upsample_nearest2d(1).to_vec(), x.to_vec());
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 48,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x7e5a),
            ..ProptestConfig::default()
        })]

        /// Both kernels equal their naive definitions exactly (the same sums in the same
        /// order), and are adjoint: <up(x), y> = <x, pool(y)>.
        #[test]
        fn kernels_equal_the_naive_loops_and_are_adjoint(
            n in 1usize..3, c in 1usize..4, h in 1usize..6, w in 1usize..6, f in 1usize..4,
            seed in any::<u64>(),
        ) {
            let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
            let x = Tensor::randn(&[n, c, h, w], 0.0, 1.0, &mut rng);
            let y = Tensor::randn(&[n, c, h * f, w * f], 0.0, 1.0, &mut rng);
            let up = x.upsample_nearest2d(f);
            prop_assert_eq!(up.to_vec(), naive_upsample(&x, f).to_vec());
            let pooled = y.sum_pool2d(f);
            prop_assert_eq!(pooled.to_vec(), naive_sum_pool(&y, f).to_vec());
            let (lhs, rhs) = (dot(&up, &y), dot(&x, &pooled));
            prop_assert!((lhs - rhs).abs() <= 1e-4 * (1.0 + lhs.abs()), "{} vs {}", lhs, rhs);
        }
    }

    /// PyTorch's `ReflectionPad2d((2, 1, 1, 2))` of `arange(12).view(1, 1, 3, 4)`.
    #[test]
    fn reflection_of_a_hand_worked_plane() {
        let x = Tensor::from_vec(&[1, 1, 3, 4], (0..12).map(|v| v as f32).collect());
        let y = x.reflection_pad2d([2, 1, 1, 2]);
        assert_eq!(y.shape(), &[1, 1, 6, 7]);
        #[rustfmt::skip]
        let want = [
            6., 5., 4., 5., 6., 7., 6.,
            2., 1., 0., 1., 2., 3., 2.,
            6., 5., 4., 5., 6., 7., 6.,
            10., 9., 8., 9., 10., 11., 10.,
            6., 5., 4., 5., 6., 7., 6.,
            2., 1., 0., 1., 2., 3., 2.,
        ];
        assert_eq!(y.to_vec(), want);
        // The fold of all ones counts how often each pixel appears in the padded plane: the
        // columns appear 1, 2, 3, 1 times, the rows 2, 3, 1 times.
        let counts = Tensor::ones(&[1, 1, 6, 7]).reflection_pad2d_fold([2, 1, 1, 2]);
        #[rustfmt::skip]
        let want = [
            2., 4., 6., 2.,
            3., 6., 9., 3.,
            1., 2., 3., 1.,
        ];
        assert_eq!(counts.to_vec(), want);
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 48,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x9ad),
            ..ProptestConfig::default()
        })]

        /// Reflection padding equals its definition by mirrored indices, and the fold is its
        /// adjoint: <pad(x), y> = <x, fold(y)>.
        #[test]
        fn reflection_equals_mirrored_indices_and_the_fold_is_its_adjoint(
            (h, w, pads) in (2usize..6, 2usize..6).prop_flat_map(|(h, w)| {
                (Just(h), Just(w), [0..w, 0..w, 0..h, 0..h])
            }),
            n in 1usize..3, c in 1usize..3, seed in any::<u64>(),
        ) {
            let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
            let x = Tensor::randn(&[n, c, h, w], 0.0, 1.0, &mut rng);
            let [l, r, t, b] = pads;
            let (oh, ow) = (h + t + b, w + l + r);
            let y = x.reflection_pad2d(pads);
            let v = x.to_vec();
            let mut want = Vec::new();
            for p in 0..n * c {
                for i in 0..oh {
                    for j in 0..ow {
                        let si = (i as isize - t as isize).abs();
                        let si = if si >= h as isize { 2 * (h as isize - 1) - si } else { si };
                        let sj = (j as isize - l as isize).abs();
                        let sj = if sj >= w as isize { 2 * (w as isize - 1) - sj } else { sj };
                        want.push(v[p * h * w + si as usize * w + sj as usize]);
                    }
                }
            }
            prop_assert_eq!(y.to_vec(), want);
            let g = Tensor::randn(&[n, c, oh, ow], 0.0, 1.0, &mut rng);
            let (lhs, rhs) = (dot(&y, &g), dot(&x, &g.reflection_pad2d_fold(pads)));
            prop_assert!((lhs - rhs).abs() <= 1e-4 * (1.0 + lhs.abs()), "{} vs {}", lhs, rhs);
        }
    }

    #[test]
    #[should_panic(expected = "is not smaller than the 3x4 plane")]
    fn a_padding_as_wide_as_the_plane_is_refused() {
        Tensor::zeros(&[1, 1, 3, 4]).reflection_pad2d([0, 0, 3, 0]);
    }

    #[test]
    #[should_panic(expected = "not a multiple of the block 2")]
    fn a_plane_that_does_not_tile_is_refused() {
        Tensor::zeros(&[1, 1, 3, 4]).sum_pool2d(2);
    }
}
