//! Instance normalisation's kernels: each `[H, W]` plane of `[N, C, H, W]` normalised by its
//! own mean and biased variance, and the matching input gradient.
//!
//! One pass over each plane for the statistics (accumulated in `f64`, so that a plane's
//! variance does not depend on how its sum happened to round) and one to write, instead of the
//! seven broadcast ops of the composed form and their gradients. Planes are independent, so
//! they run in parallel and the numbers do not depend on the thread count.

use crate::parallel::{fill_planes, map_range};
use crate::plane_sums::{LANES, side_by_side};
use crate::tensor::Tensor;

#[track_caller]
fn plane_layout(x: &Tensor, what: &str) -> (usize, usize) {
    let s = x.shape();
    assert!(
        s.len() == 4 && s[2] * s[3] > 0,
        "{what}: input {s:?} is not [N, C, H, W] with non-empty planes"
    );
    (s[0] * s[1], s[2] * s[3])
}

/// For every plane `p` of `s` values, the `K` sums from `zero` over `i` in `0..s` (in index
/// order, in `f64`) of `term(per_plane[p], a[p * s + i], b[p * s + i])`, with `b`'s values 0
/// where not given; [`LANES`] planes [`side_by_side`], the groups in parallel.
fn plane_sums<P: Copy + Sync, const K: usize>(
    [planes, s]: [usize; 2],
    zero: f64,
    (a, b): (&[f32], Option<&[f32]>),
    per_plane: &[P],
    term: impl Fn(P, f32, f32) -> [f64; K] + Sync,
) -> Vec<[f64; K]> {
    let groups = map_range(planes.div_ceil(LANES), |g| {
        let (first, lanes) = (g * LANES, LANES.min(planes - g * LANES));
        let sums = side_by_side(
            (&a[first * s..], b.map(|b| &b[first * s..])),
            [lanes, s, s],
            &per_plane[first..],
            zero,
            &term,
        );
        (0..lanes)
            .map(|l| std::array::from_fn(|k| sums[k][l]))
            .collect::<Vec<[f64; K]>>()
    });
    groups.into_iter().flatten().collect()
}

impl Tensor {
    /// `(x - mean) / sqrt(var + eps)` over each `[H, W]` plane (biased variance, as
    /// PyTorch's `InstanceNorm2d`), and the per-plane `1 / sqrt(var + eps)`, `[N, C]`, that
    /// the gradient needs.
    ///
    /// # Panics
    /// If the tensor is not 4-D with non-empty planes.
    #[track_caller]
    pub fn instance_norm(&self, eps: f32) -> (Tensor, Tensor) {
        let (planes, s) = plane_layout(self, "instance_norm");
        let x = self.as_slice();
        // The sum of nothing as `Iterator::sum` has it (-0.0): these sums are `iter().sum()`'s.
        let zero: f64 = std::iter::empty::<f64>().sum();
        let means: Vec<f64> = plane_sums(
            [planes, s],
            zero,
            (&x, None),
            &vec![(); planes],
            |(), v, _| [f64::from(v)],
        )
        .iter()
        .map(|[sum]| sum / s as f64)
        .collect();
        let squares = plane_sums([planes, s], zero, (&x, None), &means, |mean, v, _| {
            [(f64::from(v) - mean).powi(2)]
        });
        let stats: Vec<(f32, f32)> = means
            .iter()
            .zip(&squares)
            .map(|(&mean, [sq])| {
                let var = sq / s as f64;
                (mean as f32, (1.0 / (var + f64::from(eps)).sqrt()) as f32)
            })
            .collect();
        let y = fill_planes(planes, s, |p, i0, dst| {
            let (mean, rstd) = stats[p];
            let src = &x[p * s + i0..][..dst.len()];
            for (d, &v) in dst.iter_mut().zip(src) {
                d.write((v - mean) * rstd);
            }
        });
        let sh = self.shape();
        let rstd = stats.iter().map(|&(_, r)| r).collect();
        (
            Tensor::from_vec(sh, y),
            Tensor::from_vec(&[sh[0], sh[1]], rstd),
        )
    }

    /// The input gradient of [`Tensor::instance_norm`] from its output `y` (this tensor), the
    /// output gradient `gy` and the per-plane `rstd`:
    /// `rstd * (gy - mean(gy) - y * mean(gy * y))` over each plane.
    ///
    /// # Panics
    /// If the shapes disagree.
    #[track_caller]
    pub fn instance_norm_backward(&self, gy: &Tensor, rstd: &Tensor) -> Tensor {
        let (planes, s) = plane_layout(self, "instance_norm_backward");
        assert!(
            gy.shape() == self.shape() && rstd.len() == planes,
            "instance_norm_backward: y {:?}, gy {:?}, rstd {:?}",
            self.shape(),
            gy.shape(),
            rstd.shape()
        );
        let (y, g, r) = (self.as_slice(), gy.as_slice(), rstd.as_slice());
        let means: Vec<(f32, f32)> = plane_sums(
            [planes, s],
            0.0,
            (&y, Some(&g)),
            &vec![(); planes],
            |(), y, g| {
                let (yv, gv) = (f64::from(y), f64::from(g));
                [gv, gv * yv]
            },
        )
        .iter()
        .map(|[sum_g, sum_gy]| ((sum_g / s as f64) as f32, (sum_gy / s as f64) as f32))
        .collect();
        let gx = fill_planes(planes, s, |p, i0, dst| {
            let (mean_g, mean_gy) = means[p];
            let (y, g) = (&y[p * s + i0..][..dst.len()], &g[p * s + i0..][..dst.len()]);
            for ((d, &yv), &gv) in dst.iter_mut().zip(y).zip(g) {
                d.write(r[p] * (gv - mean_g - yv * mean_gy));
            }
        });
        Tensor::from_vec(self.shape(), gx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// The kernels against the definitions in `f64`.
    #[test]
    fn kernels_match_the_definitions() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let x = Tensor::randn(&[2, 3, 4, 5], 0.5, 2.0, &mut rng);
        let gy = Tensor::randn(&[2, 3, 4, 5], 0.0, 1.0, &mut rng);
        let eps = 1e-5;
        let (y, rstd) = x.instance_norm(eps);
        let gx = y.instance_norm_backward(&gy, &rstd);
        let (xv, gv, yv, gxv) = (x.to_vec(), gy.to_vec(), y.to_vec(), gx.to_vec());
        for p in 0..6 {
            let r = p * 20..(p + 1) * 20;
            let xs: Vec<f64> = xv[r.clone()].iter().map(|&v| f64::from(v)).collect();
            let mean = xs.iter().sum::<f64>() / 20.0;
            let var = xs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 20.0;
            let rs = 1.0 / (var + f64::from(eps)).sqrt();
            let yh: Vec<f64> = xs.iter().map(|v| (v - mean) * rs).collect();
            let g: Vec<f64> = gv[r.clone()].iter().map(|&v| f64::from(v)).collect();
            let mg = g.iter().sum::<f64>() / 20.0;
            let mgy = g.iter().zip(&yh).map(|(a, b)| a * b).sum::<f64>() / 20.0;
            for i in 0..20 {
                let want_y = yh[i];
                let want_gx = rs * (g[i] - mg - yh[i] * mgy);
                assert!(
                    (f64::from(yv[p * 20 + i]) - want_y).abs() < 1e-5,
                    "y {p} {i}"
                );
                assert!(
                    (f64::from(gxv[p * 20 + i]) - want_gx).abs() < 1e-5,
                    "gx {p} {i}"
                );
            }
            assert!((f64::from(rstd.to_vec()[p]) - rs).abs() < 1e-5 * rs);
        }
    }

    /// One plane at a time, each sum a plain fold: the kernels' planes side by side and their
    /// writes must give these bits exactly, over whole and partial groups of planes.
    #[test]
    fn planes_side_by_side_keep_the_bits_of_one_at_a_time() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        // Whole and partial groups of planes; planes of one block of steps and of several.
        for shape in [[3, 7, 5, 6], [2, 9, 7, 11]] {
            let x = Tensor::randn(&shape, 0.5, 2.0, &mut rng);
            let gy = Tensor::randn(&shape, 0.0, 1.0, &mut rng);
            let (y, rstd) = x.instance_norm(1e-5);
            let gx = y.instance_norm_backward(&gy, &rstd);
            let (xv, yv, gv) = (x.to_vec(), y.to_vec(), gy.to_vec());
            let (planes, s) = (shape[0] * shape[1], shape[2] * shape[3]);
            let (mut want_y, mut want_r, mut want_gx) = (Vec::new(), Vec::new(), Vec::new());
            for p in 0..planes {
                let at = p * s..(p + 1) * s;
                let plane = &xv[at.clone()];
                let mean = plane.iter().map(|&v| f64::from(v)).sum::<f64>() / s as f64;
                let var = plane
                    .iter()
                    .map(|&v| (f64::from(v) - mean).powi(2))
                    .sum::<f64>()
                    / s as f64;
                let (mean, r) = (mean as f32, (1.0 / (var + 1e-5f64).sqrt()) as f32);
                want_y.extend(plane.iter().map(|&v| (v - mean) * r));
                want_r.push(r);
                let (yp, gp) = (&yv[at.clone()], &gv[at]);
                let (mut sum_g, mut sum_gy) = (0.0f64, 0.0f64);
                for (&a, &b) in yp.iter().zip(gp) {
                    sum_g += f64::from(b);
                    sum_gy += f64::from(b) * f64::from(a);
                }
                let (mg, mgy) = ((sum_g / s as f64) as f32, (sum_gy / s as f64) as f32);
                want_gx.extend(yp.iter().zip(gp).map(|(&a, &b)| r * (b - mg - a * mgy)));
            }
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&y.to_vec()), bits(&want_y), "{shape:?}");
            assert_eq!(bits(&rstd.to_vec()), bits(&want_r), "{shape:?}");
            assert_eq!(bits(&gx.to_vec()), bits(&want_gx), "{shape:?}");
        }
    }

    #[test]
    #[should_panic(expected = "is not [N, C, H, W]")]
    fn a_flat_input_is_refused() {
        Tensor::zeros(&[2, 3]).instance_norm(1e-5);
    }
}
