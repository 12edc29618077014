//! Batch and instance normalisation, and dropout.

use crate::Var;
use crate::op::Op;
use gantry_tensor::Tensor;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// The result of [`Var::batch_norm_train`]: the normalised output and the batch statistics
/// that a layer folds into its running averages.
pub struct BatchNormOutput<'t> {
    /// `(x - mean) / sqrt(var + eps) * gamma + beta`.
    pub y: Var<'t>,
    /// The per-channel batch mean, `[C]`.
    pub mean: Tensor,
    /// The per-channel biased batch variance, `[C]` (the one used to normalise).
    pub var: Tensor,
    /// The number of elements per channel (`N * H * W`), to unbias the variance.
    pub count: usize,
}

impl<'t> Var<'t> {
    /// Batch normalisation over axis 1 with the batch's own statistics (training mode):
    /// input `[N, C, ...]`, `gamma` and `beta` `[C]`. Backward differentiates through the
    /// statistics too: `dx = γ/σ (dy - mean(dy) - x̂ mean(dy x̂))`.
    #[track_caller]
    pub fn batch_norm_train(self, gamma: Var<'t>, beta: Var<'t>, eps: f32) -> BatchNormOutput<'t> {
        let x = self.value();
        let (mean, var) = x.channel_moments();
        let count = x.len() / x.shape().get(1).copied().unwrap_or(1).max(1);
        BatchNormOutput {
            y: self.normalise(gamma, beta, &mean, &var, eps, true),
            mean,
            var,
            count,
        }
    }

    /// Instance normalisation: each `[H, W]` plane of `[N, C, H, W]` minus its mean, divided
    /// by `sqrt(var + eps)` (biased variance), as PyTorch's `InstanceNorm2d` without its affine
    /// part. Backward: `dx = (dy - mean(dy) - y mean(dy y)) / sqrt(var + eps)` per plane,
    /// differentiable again.
    ///
    /// # Panics
    /// If the value is not 4-D with non-empty planes.
    #[track_caller]
    pub fn instance_norm(self, eps: f32) -> Var<'t> {
        let (y, rstd) = self.value().instance_norm(eps);
        self.tape.record(
            y,
            Op::InstanceNorm {
                x: self.id,
                rstd,
                eps,
            },
        )
    }

    /// ProGAN's pixel norm: every position's feature vector (axis 1 of `[N, C, ...]`) divided
    /// by `sqrt(mean over C of x² + eps)`. Backward:
    /// `dx = (dy - y mean_C(dy y)) / sqrt(mean_C(x²) + eps)`, differentiable again.
    ///
    /// # Panics
    /// If the value has fewer than two axes.
    #[track_caller]
    pub fn pixel_norm(self, eps: f32) -> Var<'t> {
        let (y, scale) = self.value().pixel_norm(eps);
        self.tape.record(
            y,
            Op::PixelNorm {
                x: self.id,
                scale,
                eps,
            },
        )
    }

    /// Batch normalisation with fixed statistics (evaluation mode): `mean` and `var` are
    /// constants. Backward: `dx = γ/σ dy`.
    #[track_caller]
    pub fn batch_norm_eval(
        self,
        gamma: Var<'t>,
        beta: Var<'t>,
        mean: &Tensor,
        var: &Tensor,
        eps: f32,
    ) -> Var<'t> {
        self.normalise(gamma, beta, mean, var, eps, false)
    }

    /// Normalises with `mean` and `var` and records the op; `batch_stats` says whether they
    /// are this batch's own (so the backward differentiates through them).
    fn normalise(
        self,
        gamma: Var<'t>,
        beta: Var<'t>,
        mean: &Tensor,
        var: &Tensor,
        eps: f32,
        batch_stats: bool,
    ) -> Var<'t> {
        crate::tape::same_tape("batch_norm", &[self, gamma, beta]);
        let y = self
            .value()
            .batch_norm(&gamma.value(), &beta.value(), mean, var, eps);
        let op = Op::BatchNorm {
            x: self.id,
            gamma: gamma.id,
            beta: beta.id,
            mean: mean.clone(),
            var: var.clone(),
            eps,
            batch_stats,
        };
        self.tape.record(y, op)
    }

    /// Zeroes each element with probability `p` and scales the rest by `1 / (1 - p)`, drawing
    /// the mask from `rng` (the tape's own, [`Tape::rng`](crate::Tape::rng), in the layers).
    /// Backward: `gy` times the same mask.
    ///
    /// Element `i` uses word `i` of `rng`'s stream from where it stands, as
    /// `Tensor::bernoulli` would draw them one after another, and `rng` is left after the
    /// last: the mask is the same at any thread count, though a large one is drawn by several
    /// threads at once (each seeking to its part of the stream).
    ///
    /// # Panics
    /// If `p` is outside `[0, 1)`.
    #[track_caller]
    pub fn dropout(self, p: f32, rng: &mut ChaCha8Rng) -> Var<'t> {
        assert!(
            (0.0..1.0).contains(&p),
            "dropout: probability {p} outside [0, 1)"
        );
        let shape = self.shape();
        let first = rng.get_word_pos();
        let origin = rng.clone();
        let keep = Tensor::keep_mask(&shape, 1.0 - p, 1.0 / (1.0 - p), |start, dst| {
            let mut part = origin.clone();
            part.set_word_pos(first + start as u128);
            part.fill(dst);
        });
        rng.set_word_pos(first + shape.iter().product::<usize>() as u128);
        let value = self.value().mul(&keep);
        self.tape.record(
            value,
            Op::Dropout {
                x: self.id,
                mask: keep,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::Tape;
    use gantry_tensor::Tensor;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The mask is the one `bernoulli` draws from the same stream, one word per element, and
    /// the generator ends where those draws leave it: a large mask drawn in parallel parts
    /// changes no bit of a training run.
    #[test]
    fn dropout_draws_what_serial_bernoulli_draws() {
        for (shape, p) in [
            (vec![3, 5], 0.3f32),
            (vec![64, 64, 14, 14], 0.3),
            (vec![7, 4099], 0.5),
        ] {
            let tape = Tape::new();
            let x = Tensor::rand_uniform(&shape, -1.0, 1.0, &mut ChaCha8Rng::seed_from_u64(1));
            let mut rng = ChaCha8Rng::seed_from_u64(2);
            rng.random::<u32>();
            let mut serial = rng.clone();
            let xv = tape.leaf(x.clone());
            let y = xv.dropout(p, &mut rng);
            let mask = Tensor::bernoulli(&shape, 1.0 - p, &mut serial).mul_scalar(1.0 / (1.0 - p));
            assert_eq!(y.value(), x.mul(&mask), "{shape:?}");
            assert_eq!(rng.random::<u64>(), serial.random::<u64>(), "{shape:?}");
            assert_eq!(y.sum().backward().get(xv), Some(&mask), "{shape:?}");
        }
    }
}
