//! BigGAN's class-conditional batch normalisation (Brock et al., "Large Scale GAN Training
//! for High Fidelity Natural Image Synthesis", 2019, appendix B; BigGAN-PyTorch's `ccbn`).

use crate::error::{Result, config_error};
use crate::layers::linear::{Linear, LinearConfig};
use crate::module::{Mode, Module, join};
use crate::param::Param;
use gantry_autodiff::Var;
use gantry_tensor::Tensor;
use rand::Rng;

/// Conditional batch norm: batch normalisation without its own affine transform, then a
/// per-sample gain and bias computed by two linear layers from a conditioning vector (in
/// BigGAN, a shared class embedding concatenated with this block's chunk of the noise):
/// `y = BN(x) · (1 + gain(cond)) + bias(cond)`.
///
/// Names (BigGAN-PyTorch's): `gain.weight`, `gain.bias`, `bias.weight`, `bias.bias` and the
/// buffers `stored_mean`, `stored_var` (running statistics, momentum 0.1, as `BatchNorm`).
///
/// # Shapes
/// `x` `[N, C, H, W]`, `cond` `[N, D]`, output `[N, C, H, W]`.
#[derive(Debug)]
pub struct ConditionalBatchNorm2d {
    /// `cond -> [N, C]`, added to 1 for the gain.
    pub gain: Linear,
    /// `cond -> [N, C]`, the shift.
    pub bias: Linear,
    /// Running mean (buffer), `[C]`.
    pub stored_mean: Param,
    /// Running unbiased variance (buffer), `[C]`.
    pub stored_var: Param,
    eps: f32,
    momentum: f32,
}

impl ConditionalBatchNorm2d {
    /// `channels` normalised, conditioned on vectors of size `cond_size`; eps 1e-5, momentum
    /// 0.1; the linear layers get PyTorch's default initialisation.
    ///
    /// # Errors
    /// If a size is zero.
    pub fn new<R: Rng + ?Sized>(channels: usize, cond_size: usize, rng: &mut R) -> Result<Self> {
        if channels == 0 || cond_size == 0 {
            return Err(config_error(
                "ConditionalBatchNorm2d",
                format!("sizes must be positive, got {channels} channels, condition {cond_size}"),
            ));
        }
        Ok(ConditionalBatchNorm2d {
            gain: LinearConfig::new(cond_size, channels).build(rng)?,
            bias: LinearConfig::new(cond_size, channels).build(rng)?,
            stored_mean: Param::buffer(Tensor::zeros(&[channels])),
            stored_var: Param::buffer(Tensor::ones(&[channels])),
            eps: 1e-5,
            momentum: 0.1,
        })
    }

    /// Normalises `x` and applies the gain and bias computed from `cond`.
    ///
    /// # Panics
    /// If `x` is not `[N, C, H, W]` or `cond` not `[N, D]` with this layer's sizes.
    #[track_caller]
    pub fn forward_cond<'t>(&self, x: Var<'t>, cond: Var<'t>, mode: Mode) -> Var<'t> {
        let (s, c) = (x.shape(), self.stored_mean.len());
        assert!(
            s.len() == 4 && s[1] == c && cond.shape().first() == Some(&s[0]),
            "ConditionalBatchNorm2d({c}): input {s:?} and condition {:?} do not fit",
            cond.shape()
        );
        let gain = self.gain.forward(cond, mode).add_scalar(1.0);
        let bias = self.bias.forward(cond, mode);
        let n = s[0];
        self.normalise(x, mode)
            .mul(gain.reshape(&[n, c, 1, 1]))
            .add(bias.reshape(&[n, c, 1, 1]))
    }

    /// Batch normalisation without an affine transform, updating the stored statistics in
    /// training mode.
    fn normalise<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        let tape = x.tape();
        let c = self.stored_mean.len();
        let (one, zero) = (
            tape.constant(Tensor::ones(&[c])),
            tape.constant(Tensor::zeros(&[c])),
        );
        match mode {
            Mode::Eval => x.batch_norm_eval(
                one,
                zero,
                &self.stored_mean.value(),
                &self.stored_var.value(),
                self.eps,
            ),
            Mode::Train => {
                let out = x.batch_norm_train(one, zero, self.eps);
                let m = self.momentum;
                let unbias = out.count as f32 / (out.count.max(2) - 1) as f32;
                let mean = self.stored_mean.value().mul_scalar(1.0 - m);
                self.stored_mean.set(mean.add(&out.mean.mul_scalar(m)));
                let var = self.stored_var.value().mul_scalar(1.0 - m);
                self.stored_var
                    .set(var.add(&out.var.mul_scalar(m * unbias)));
                out.y
            }
        }
    }
}

impl Module for ConditionalBatchNorm2d {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        self.gain.visit(&join(prefix, "gain"), f);
        self.bias.visit(&join(prefix, "bias"), f);
        f(&join(prefix, "stored_mean"), &self.stored_mean);
        f(&join(prefix, "stored_var"), &self.stored_var);
    }

    /// The layer at a zero condition vector: gain `1 + gain.bias`, shift `bias.bias`. Use
    /// [`ConditionalBatchNorm2d::forward_cond`] to condition.
    fn forward<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        let d = self.gain.weight.shape()[1];
        let cond = x.tape().constant(Tensor::zeros(&[x.shape()[0], d]));
        self.forward_cond(x, cond, mode)
    }

    fn describe(&self) -> String {
        let w = self.gain.weight.shape();
        format!("ConditionalBatchNorm2d({}, cond={})", w[0], w[1])
    }
}
