//! Instance normalisation's kernels: each `[H, W]` plane of `[N, C, H, W]` normalised by its
//! own mean and biased variance, and the matching input gradient.
//!
//! One pass over each plane for the statistics (accumulated in `f64`, so that a plane's
//! variance does not depend on how its sum happened to round) and one to write, instead of the
//! seven broadcast ops of the composed form and their gradients. Planes are independent, so
//! they run in parallel and the numbers do not depend on the thread count.

use crate::parallel::{for_each_chunk_mut, map_range};
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
        let stats: Vec<(f32, f32)> = map_range(planes, |p| {
            let plane = &x[p * s..(p + 1) * s];
            let mean = plane.iter().map(|&v| f64::from(v)).sum::<f64>() / s as f64;
            let var = plane
                .iter()
                .map(|&v| (f64::from(v) - mean).powi(2))
                .sum::<f64>()
                / s as f64;
            (mean as f32, (1.0 / (var + f64::from(eps)).sqrt()) as f32)
        });
        let mut y = vec![0.0f32; planes * s];
        for_each_chunk_mut(&mut y, s, |p, dst| {
            let (mean, rstd) = stats[p];
            for (d, &v) in dst.iter_mut().zip(&x[p * s..(p + 1) * s]) {
                *d = (v - mean) * rstd;
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
        let mut gx = vec![0.0f32; planes * s];
        for_each_chunk_mut(&mut gx, s, |p, dst| {
            let (y, g) = (&y[p * s..(p + 1) * s], &g[p * s..(p + 1) * s]);
            let (mut sum_g, mut sum_gy) = (0.0f64, 0.0f64);
            for (&yv, &gv) in y.iter().zip(g) {
                sum_g += f64::from(gv);
                sum_gy += f64::from(gv) * f64::from(yv);
            }
            let (mean_g, mean_gy) = ((sum_g / s as f64) as f32, (sum_gy / s as f64) as f32);
            for ((d, &yv), &gv) in dst.iter_mut().zip(y).zip(g) {
                *d = r[p] * (gv - mean_g - yv * mean_gy);
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

    #[test]
    #[should_panic(expected = "is not [N, C, H, W]")]
    fn a_flat_input_is_refused() {
        Tensor::zeros(&[2, 3]).instance_norm(1e-5);
    }
}
