//! Batch normalisation kernels over axis 1 (channels) of `[N, C, ...]` tensors.
//!
//! Forward: `y = (x - mean) / sqrt(var + eps) * gamma + beta`, per channel.
//! Backward with batch statistics (`x̂` the normalised input, `M` elements per channel):
//! `dx = gamma / sqrt(var + eps) * (dy - mean(dy) - x̂ * mean(dy * x̂))`,
//! `dgamma = Σ dy * x̂`, `dbeta = Σ dy`. With fixed (running) statistics the mean terms vanish.
//!
//! Statistics are accumulated in `f64`, one channel per task, so they do not depend on the
//! thread count.

use crate::Tensor;
use crate::parallel::{fill_planes, map_range};

/// `[N, C, S]`: batch, channels, and the product of the remaining axes.
#[track_caller]
fn layout(op: &str, x: &[usize]) -> (usize, usize, usize) {
    assert!(
        x.len() >= 2,
        "{op}: input {x:?} needs a channel axis (at least 2-D)"
    );
    (x[0], x[1], x[2..].iter().product())
}

#[track_caller]
fn check_channels(op: &str, x: &[usize], name: &str, t: &Tensor) {
    assert!(
        t.shape() == [x[1]],
        "{op}: {name} {:?} must be [{}] for input {x:?}",
        t.shape(),
        x[1]
    );
}

/// Samples whose planes a channel's sum runs side by side (see [`channel_sums`]).
const LANES: usize = 8;

/// Per-channel sums of `f(channel, index)` over the flat indices of `[N, C, S]` data, in `f64`,
/// summed in index order within each sample and then over samples (the bits of
/// `Iterator::sum` twice, tested), with several samples' planes side by side.
fn channel_sums(
    n: usize,
    c: usize,
    s: usize,
    f: impl Fn(usize, usize) -> f64 + Sync + Send,
) -> Vec<f64> {
    // The sum of nothing as `Iterator::sum` has it (-0.0).
    let zero: f64 = std::iter::empty::<f64>().sum();
    let plane = |ch: usize, b: usize| (b * c + ch) * s;
    let per_channel = |ch: usize| -> f64 {
        let mut total = zero;
        for b0 in (0..n).step_by(LANES) {
            // LANES samples' planes summed side by side, each in index order: a plane's sum
            // alone is a chain of dependent additions that waits on the adder at every element.
            let mut sums = [zero; LANES];
            if b0 + LANES <= n {
                for i in 0..s {
                    for (l, sum) in sums.iter_mut().enumerate() {
                        *sum += f(ch, plane(ch, b0 + l) + i);
                    }
                }
            } else {
                for (l, sum) in sums.iter_mut().enumerate().take(n - b0) {
                    for i in 0..s {
                        *sum += f(ch, plane(ch, b0 + l) + i);
                    }
                }
            }
            for sum in &sums[..LANES.min(n - b0)] {
                total += sum;
            }
        }
        total
    };
    if n * c * s >= crate::parallel::PAR_MIN_ELEMS {
        map_range(c, per_channel)
    } else {
        (0..c).map(per_channel).collect()
    }
}

impl Tensor {
    /// Per-channel mean and biased variance over every axis but 1, each `[C]`.
    ///
    /// # Panics
    /// If the tensor has fewer than 2 axes.
    #[track_caller]
    pub fn channel_moments(&self) -> (Tensor, Tensor) {
        let (n, c, s) = layout("channel_moments", self.shape());
        let x = self.as_slice();
        let m = (n * s).max(1) as f64;
        let mean = channel_sums(n, c, s, |_, i| f64::from(x[i]));
        let mean: Vec<f64> = mean.into_iter().map(|v| v / m).collect();
        let var = channel_sums(n, c, s, |ch, i| (f64::from(x[i]) - mean[ch]).powi(2));
        let var = var.into_iter().map(|v| (v / m) as f32).collect();
        let mean = mean.into_iter().map(|v| v as f32).collect();
        (Tensor::from_vec(&[c], mean), Tensor::from_vec(&[c], var))
    }

    /// Normalises each channel with the given statistics and applies the affine transform.
    ///
    /// # Panics
    /// If a parameter is not `[C]`.
    #[track_caller]
    pub fn batch_norm(
        &self,
        gamma: &Tensor,
        beta: &Tensor,
        mean: &Tensor,
        var: &Tensor,
        eps: f32,
    ) -> Tensor {
        let op = "batch_norm";
        let (n, c, s) = layout(op, self.shape());
        for (name, t) in [
            ("gamma", gamma),
            ("beta", beta),
            ("mean", mean),
            ("var", var),
        ] {
            check_channels(op, self.shape(), name, t);
        }
        let (g, b, m, v) = (
            gamma.as_slice(),
            beta.as_slice(),
            mean.as_slice(),
            var.as_slice(),
        );
        let scale: Vec<f32> = (0..c).map(|i| g[i] / (v[i] + eps).sqrt()).collect();
        let shift: Vec<f32> = (0..c).map(|i| b[i] - m[i] * scale[i]).collect();
        let x = self.as_slice();
        let out = fill_planes(n * c, s, |p, i0, dst| {
            let ch = p % c;
            for (o, &xv) in dst.iter_mut().zip(&x[p * s + i0..]) {
                o.write(xv * scale[ch] + shift[ch]);
            }
        });
        Tensor::from_vec(self.shape(), out)
    }

    /// Gradients of [`Tensor::batch_norm`] for input `self`, output gradient `grad_out`:
    /// `(dx, dgamma, dbeta)`. With `batch_stats` the statistics are those of `self` and their
    /// dependence on `self` is differentiated too (training mode); otherwise they are constants.
    ///
    /// # Panics
    /// If the shapes disagree.
    #[allow(clippy::too_many_arguments)]
    #[track_caller]
    pub fn batch_norm_backward(
        &self,
        grad_out: &Tensor,
        gamma: &Tensor,
        mean: &Tensor,
        var: &Tensor,
        eps: f32,
        batch_stats: bool,
    ) -> (Tensor, Tensor, Tensor) {
        let op = "batch_norm_backward";
        assert!(
            self.shape() == grad_out.shape(),
            "{op}: input {:?} and output gradient {:?} differ",
            self.shape(),
            grad_out.shape()
        );
        let (n, c, s) = layout(op, self.shape());
        for (name, t) in [("gamma", gamma), ("mean", mean), ("var", var)] {
            check_channels(op, self.shape(), name, t);
        }
        let (x, gy) = (self.as_slice(), grad_out.as_slice());
        let (g, m, v) = (gamma.as_slice(), mean.as_slice(), var.as_slice());
        let inv_std: Vec<f32> = (0..c).map(|i| 1.0 / (v[i] + eps).sqrt()).collect();
        let xhat = |ch: usize, i: usize| (x[i] - m[ch]) * inv_std[ch];
        let dbeta = channel_sums(n, c, s, |_, i| f64::from(gy[i]));
        let dgamma = channel_sums(n, c, s, |ch, i| f64::from(gy[i] * xhat(ch, i)));
        let count = (n * s).max(1) as f64;
        let (mean_dy, mean_dy_xhat): (Vec<f32>, Vec<f32>) = if batch_stats {
            (
                dbeta.iter().map(|v| (v / count) as f32).collect(),
                dgamma.iter().map(|v| (v / count) as f32).collect(),
            )
        } else {
            (vec![0.0; c], vec![0.0; c])
        };
        let dx = fill_planes(n * c, s, |p, i0, dst| {
            let ch = p % c;
            let k = g[ch] * inv_std[ch];
            let (mean, inv, mdy, mdyx) = (m[ch], inv_std[ch], mean_dy[ch], mean_dy_xhat[ch]);
            // Zipped slices rather than indices, so that the loop vectorises; `xhat` as above.
            let run = p * s + i0..p * s + i0 + dst.len();
            for ((o, &gv), &xv) in dst.iter_mut().zip(&gy[run.clone()]).zip(&x[run]) {
                o.write(k * (gv - mdy - (xv - mean) * inv * mdyx));
            }
        });
        let to_tensor =
            |v: Vec<f64>| Tensor::from_vec(&[c], v.into_iter().map(|x| x as f32).collect());
        (
            Tensor::from_vec(self.shape(), dx),
            to_tensor(dgamma),
            to_tensor(dbeta),
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;

    /// The per-channel sums as they were written before the planes went side by side: each
    /// plane a plain `sum()` in index order, then the samples' plane sums a plain `sum()`.
    fn one_plane_at_a_time(
        n: usize,
        c: usize,
        s: usize,
        f: impl Fn(usize, usize) -> f64,
    ) -> Vec<f64> {
        (0..c)
            .map(|ch| {
                (0..n)
                    .map(|b| {
                        let base = (b * c + ch) * s;
                        (base..base + s).map(|i| f(ch, i)).sum::<f64>()
                    })
                    .sum()
            })
            .collect()
    }

    /// Batch norm's statistics and gradients keep the bits of summing one plane at a time, on
    /// batches with whole and partial groups of eight samples, a `[N, C]` batch (planes of one
    /// value) and one sample. (Sums of a few `f32` values are often exact in `f64` whatever
    /// their order, so the check that fails is a missing or doubled term, not the order.)
    #[test]
    fn sums_side_by_side_keep_the_bits_of_one_plane_at_a_time() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for shape in [
            vec![3, 7, 5, 6],
            vec![19, 6, 3, 3],
            vec![64, 20],
            vec![1, 9, 4, 4],
        ] {
            let x = Tensor::randn(&shape, 0.5, 2.0, &mut rng);
            let gy = Tensor::randn(&shape, 0.0, 1.0, &mut rng);
            let (n, c) = (shape[0], shape[1]);
            let s: usize = shape[2..].iter().product();
            let (xv, gv) = (x.to_vec(), gy.to_vec());
            let m = (n * s) as f64;
            let mean: Vec<f64> = one_plane_at_a_time(n, c, s, |_, i| f64::from(xv[i]))
                .into_iter()
                .map(|v| v / m)
                .collect();
            let var: Vec<f32> =
                one_plane_at_a_time(n, c, s, |ch, i| (f64::from(xv[i]) - mean[ch]).powi(2))
                    .into_iter()
                    .map(|v| (v / m) as f32)
                    .collect();
            let (got_mean, got_var) = x.channel_moments();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let mean32: Vec<f32> = mean.iter().map(|&v| v as f32).collect();
            assert_eq!(bits(&got_mean.to_vec()), bits(&mean32), "{shape:?}");
            assert_eq!(bits(&got_var.to_vec()), bits(&var), "{shape:?}");

            let gamma = Tensor::randn(&[c], 1.0, 0.3, &mut rng);
            let (_, dgamma, dbeta) =
                x.batch_norm_backward(&gy, &gamma, &got_mean, &got_var, 1e-5, true);
            let inv_std: Vec<f32> = var.iter().map(|v| 1.0 / (v + 1e-5).sqrt()).collect();
            let xhat = |ch: usize, i: usize| (xv[i] - mean32[ch]) * inv_std[ch];
            let want_dbeta: Vec<f32> = one_plane_at_a_time(n, c, s, |_, i| f64::from(gv[i]))
                .into_iter()
                .map(|v| v as f32)
                .collect();
            let want_dgamma: Vec<f32> =
                one_plane_at_a_time(n, c, s, |ch, i| f64::from(gv[i] * xhat(ch, i)))
                    .into_iter()
                    .map(|v| v as f32)
                    .collect();
            assert_eq!(bits(&dbeta.to_vec()), bits(&want_dbeta), "{shape:?}");
            assert_eq!(bits(&dgamma.to_vec()), bits(&want_dgamma), "{shape:?}");
        }
    }

    #[test]
    fn normalised_channels_have_zero_mean_unit_variance() {
        let x = Tensor::from_vec(&[2, 2, 2], vec![1., 2., 10., 20., 3., 4., 30., 40.]);
        let (mean, var) = x.channel_moments();
        assert_eq!(mean.to_vec(), vec![2.5, 25.0]);
        assert_eq!(var.to_vec(), vec![1.25, 125.0]);
        let y = x.batch_norm(&Tensor::ones(&[2]), &Tensor::zeros(&[2]), &mean, &var, 0.0);
        let (m2, v2) = y.channel_moments();
        assert!(m2.to_vec().iter().all(|v| v.abs() < 1e-6));
        assert!(v2.to_vec().iter().all(|v| (v - 1.0).abs() < 1e-5));
    }
}
