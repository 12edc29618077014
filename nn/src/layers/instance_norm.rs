//! Instance normalisation, as `nn.InstanceNorm2d` (pix2pixHD, CycleGAN).

use crate::error::{Result, config_error};
use crate::module::{Mode, Module, join};
use crate::param::{Param, ParamRole};
use gantry_autodiff::Var;
use gantry_tensor::Tensor;

/// Settings of [`InstanceNorm2d`], with PyTorch's defaults (eps 1e-5, no affine transform).
/// Running statistics are not offered: PyTorch does not track them by default, and every
/// mode then normalises with the instance's own statistics.
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceNorm2dConfig {
    /// Channels.
    pub num_features: usize,
    /// Added to the variance before the square root.
    pub eps: f32,
    /// Whether to learn a per-channel scale and shift (`weight` 1, `bias` 0 at first).
    pub affine: bool,
}

impl InstanceNorm2dConfig {
    /// PyTorch's defaults for `num_features` channels.
    pub fn new(num_features: usize) -> Self {
        InstanceNorm2dConfig {
            num_features,
            eps: 1e-5,
            affine: false,
        }
    }

    /// With or without the affine transform.
    pub fn affine(mut self, on: bool) -> Self {
        self.affine = on;
        self
    }

    /// Builds the layer.
    ///
    /// # Errors
    /// If `num_features` is 0 or `eps` is not positive.
    pub fn build(&self) -> Result<InstanceNorm2d> {
        let c = self.num_features;
        if c == 0 || self.eps.is_nan() || self.eps <= 0.0 {
            return Err(config_error(
                "InstanceNorm2d",
                format!("invalid settings {self:?}"),
            ));
        }
        let affine = self.affine.then(|| {
            (
                Param::trainable(Tensor::ones(&[c]), ParamRole::NormWeight),
                Param::trainable(Tensor::zeros(&[c]), ParamRole::NormBias),
            )
        });
        Ok(InstanceNorm2d {
            config: self.clone(),
            affine,
        })
    }
}

/// `y = (x - mean) / √(var + eps) · γ + β` with the mean and biased variance of each sample's
/// channel over its pixels; the same in training and evaluation.
///
/// # Shapes
/// input `[N, C, H, W]`, output the same; `weight` and `bias` `[C]` if affine.
#[derive(Debug)]
pub struct InstanceNorm2d {
    config: InstanceNorm2dConfig,
    affine: Option<(Param, Param)>,
}

impl InstanceNorm2d {
    /// The scale `γ` and shift `β`, if affine.
    pub fn affine(&self) -> Option<(&Param, &Param)> {
        self.affine.as_ref().map(|(w, b)| (w, b))
    }
}

impl Module for InstanceNorm2d {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        if let Some((w, b)) = &self.affine {
            f(&join(prefix, "weight"), w);
            f(&join(prefix, "bias"), b);
        }
    }

    /// # Panics
    /// If the input is not `[N, C, H, W]` with the configured channels.
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        let s = x.shape();
        let c = self.config.num_features;
        assert!(
            s.len() == 4 && s[1] == c,
            "InstanceNorm2d({c}): input {s:?} is not [N, {c}, H, W]"
        );
        let y = x.instance_norm(self.config.eps);
        match &self.affine {
            None => y,
            Some((w, b)) => {
                let tape = x.tape();
                y.mul(w.read(tape, mode).reshape(&[1, c, 1, 1]))
                    .add(b.read(tape, mode).reshape(&[1, c, 1, 1]))
            }
        }
    }

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "InstanceNorm2d({}, eps={}, affine={})",
            c.num_features, c.eps, c.affine
        )
    }
}
