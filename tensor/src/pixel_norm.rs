//! ProGAN's pixel norm: each position's feature vector (axis 1 of `[N, C, ...]`) scaled to unit
//! root-mean-square, and the matching input gradient.
//!
//! One kernel each way instead of the composed square, mean over channels, add, square root
//! and broadcast division (and their gradients). Samples are independent, so they run in
//! parallel and the numbers do not depend on the thread count.

use crate::parallel::for_each_chunk_mut;
use crate::tensor::Tensor;

/// `(N, C, S)` of an `[N, C, ...]` tensor, `S` the product of the trailing axes.
#[track_caller]
fn layout(x: &Tensor, what: &str) -> (usize, usize, usize) {
    let s = x.shape();
    assert!(s.len() >= 2, "{what}: input {s:?} needs [N, C, ...]");
    (s[0], s[1], s[2..].iter().product())
}

/// Writes into `out`, per position of one sample `[C, S]`, `1 / sqrt(mean over C of x² +
/// eps)`, summed in `f64` over the channels in order.
fn inverse_rms(x: &[f32], c: usize, eps: f32, out: &mut [f32]) {
    let s = out.len();
    let mut acc = vec![0.0f64; s];
    for row in x.chunks_exact(s).take(c) {
        for (a, &v) in acc.iter_mut().zip(row) {
            *a += f64::from(v) * f64::from(v);
        }
    }
    for (o, &q) in out.iter_mut().zip(&acc) {
        *o = (1.0 / (q / c as f64 + f64::from(eps)).sqrt()) as f32;
    }
}

impl Tensor {
    /// `x / sqrt(mean over axis 1 of x² + eps)` at every position of `[N, C, ...]`, and the
    /// scale `1 / sqrt(...)`, shaped `[N, 1, ...]`, that the gradient needs.
    ///
    /// # Panics
    /// If the tensor has fewer than two axes.
    #[track_caller]
    pub fn pixel_norm(&self, eps: f32) -> (Tensor, Tensor) {
        let (n, c, s) = layout(self, "pixel_norm");
        let x = self.as_slice();
        let mut y = vec![0.0f32; n * c * s];
        let mut scale = vec![0.0f32; n * s];
        for_each_chunk_mut(&mut scale, s.max(1), |b, r| {
            inverse_rms(&x[b * c * s..(b + 1) * c * s], c, eps, r);
        });
        for_each_chunk_mut(&mut y, (c * s).max(1), |b, dst| {
            let r = &scale[b * s..(b + 1) * s];
            let src = &x[b * c * s..(b + 1) * c * s];
            for (d, v) in dst.chunks_exact_mut(s).zip(src.chunks_exact(s)) {
                for ((o, &xv), &rv) in d.iter_mut().zip(v).zip(r) {
                    *o = xv * rv;
                }
            }
        });
        let mut scale_shape = self.shape().to_vec();
        scale_shape[1] = 1;
        (
            Tensor::from_vec(self.shape(), y),
            Tensor::from_vec(&scale_shape, scale),
        )
    }

    /// The input gradient of [`Tensor::pixel_norm`] from its output `y` (this tensor), the
    /// output gradient `gy` and the scale `r`: `r * (gy - y * mean over C of (gy * y))`.
    ///
    /// # Panics
    /// If the shapes disagree.
    #[track_caller]
    pub fn pixel_norm_backward(&self, gy: &Tensor, scale: &Tensor) -> Tensor {
        let (n, c, s) = layout(self, "pixel_norm_backward");
        assert!(
            gy.shape() == self.shape() && scale.len() == n * s,
            "pixel_norm_backward: y {:?}, gy {:?}, scale {:?}",
            self.shape(),
            gy.shape(),
            scale.shape()
        );
        let (y, g, r) = (self.as_slice(), gy.as_slice(), scale.as_slice());
        let mut gx = vec![0.0f32; n * c * s];
        for_each_chunk_mut(&mut gx, (c * s).max(1), |b, dst| {
            let (y, g) = (
                &y[b * c * s..(b + 1) * c * s],
                &g[b * c * s..(b + 1) * c * s],
            );
            let r = &r[b * s..(b + 1) * s];
            let mut dot = vec![0.0f64; s];
            for (yr, gr) in y.chunks_exact(s).zip(g.chunks_exact(s)) {
                for ((d, &yv), &gv) in dot.iter_mut().zip(yr).zip(gr) {
                    *d += f64::from(yv) * f64::from(gv);
                }
            }
            let mean: Vec<f32> = dot.iter().map(|&d| (d / c as f64) as f32).collect();
            for ((d, yr), gr) in dst
                .chunks_exact_mut(s)
                .zip(y.chunks_exact(s))
                .zip(g.chunks_exact(s))
            {
                for i in 0..s {
                    d[i] = r[i] * (gr[i] - yr[i] * mean[i]);
                }
            }
        });
        Tensor::from_vec(self.shape(), gx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// The kernels against the definitions in `f64`, on images and on flat `[N, C]` vectors.
    #[test]
    fn kernels_match_the_definitions() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        for shape in [vec![2, 3, 2, 5], vec![3, 7]] {
            let x = Tensor::randn(&shape, 0.3, 1.5, &mut rng);
            let gy = Tensor::randn(&shape, 0.0, 1.0, &mut rng);
            let eps = 1e-8;
            let (y, r) = x.pixel_norm(eps);
            let gx = y.pixel_norm_backward(&gy, &r);
            let (n, c) = (shape[0], shape[1]);
            let s: usize = shape[2..].iter().product();
            let (xv, gv, yv, gxv) = (x.to_vec(), gy.to_vec(), y.to_vec(), gx.to_vec());
            for b in 0..n {
                for p in 0..s {
                    let at = |ch: usize| b * c * s + ch * s + p;
                    let ms = (0..c).map(|ch| f64::from(xv[at(ch)]).powi(2)).sum::<f64>() / c as f64;
                    let rs = 1.0 / (ms + f64::from(eps)).sqrt();
                    let yh: Vec<f64> = (0..c).map(|ch| f64::from(xv[at(ch)]) * rs).collect();
                    let dot =
                        (0..c).map(|ch| f64::from(gv[at(ch)]) * yh[ch]).sum::<f64>() / c as f64;
                    for ch in 0..c {
                        let want_gx = rs * (f64::from(gv[at(ch)]) - yh[ch] * dot);
                        assert!((f64::from(yv[at(ch)]) - yh[ch]).abs() < 1e-5, "y");
                        assert!((f64::from(gxv[at(ch)]) - want_gx).abs() < 1e-5, "gx");
                    }
                }
            }
            assert_eq!(r.shape()[1], 1);
        }
    }
}
