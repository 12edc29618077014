//! Batch normalisation over the channel axis (BatchNorm1d and BatchNorm2d in one layer).

use crate::error::{Result, config_error};
use crate::module::{Mode, Module, join};
use crate::param::{Param, ParamRole};
use gantry_autodiff::Var;
use gantry_tensor::Tensor;

/// Settings of a [`BatchNorm`] layer, with PyTorch's defaults (eps 1e-5, momentum 0.1,
/// affine, running statistics tracked).
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNormConfig {
    /// Channels (features for 2-D input).
    pub num_features: usize,
    /// Added to the variance before the square root.
    pub eps: f32,
    /// Weight of the new batch in the running averages: `running = (1 - m) running + m batch`.
    pub momentum: f32,
}

impl BatchNormConfig {
    /// PyTorch's defaults for `num_features` channels.
    pub fn new(num_features: usize) -> Self {
        BatchNormConfig {
            num_features,
            eps: 1e-5,
            momentum: 0.1,
        }
    }

    /// Builds the layer: weight 1, bias 0, running mean 0, running variance 1.
    ///
    /// # Errors
    /// If `num_features` is 0, `eps` is not positive, or `momentum` is outside `[0, 1]`.
    pub fn build(&self) -> Result<BatchNorm> {
        let c = self.num_features;
        if c == 0 || self.eps.is_nan() || self.eps <= 0.0 || !(0.0..=1.0).contains(&self.momentum) {
            return Err(config_error(
                "BatchNorm",
                format!("invalid settings {self:?}"),
            ));
        }
        Ok(BatchNorm {
            config: self.clone(),
            weight: Param::trainable(Tensor::ones(&[c]), ParamRole::NormWeight),
            bias: Param::trainable(Tensor::zeros(&[c]), ParamRole::NormBias),
            running_mean: Param::buffer(Tensor::zeros(&[c])),
            running_var: Param::buffer(Tensor::ones(&[c])),
        })
    }
}

/// Batch normalisation over axis 1 of `[N, C]` (BatchNorm1d) or `[N, C, H, W]` (BatchNorm2d).
///
/// In [`Mode::Train`] it normalises with the batch's statistics (biased variance) and folds
/// them into the running averages (unbiased variance), as PyTorch; in [`Mode::Eval`] it uses
/// the running averages.
#[derive(Debug)]
pub struct BatchNorm {
    config: BatchNormConfig,
    /// Scale `γ`, `[C]`.
    pub weight: Param,
    /// Shift `β`, `[C]`.
    pub bias: Param,
    /// Running mean (buffer), `[C]`.
    pub running_mean: Param,
    /// Running unbiased variance (buffer), `[C]`.
    pub running_var: Param,
}

impl Module for BatchNorm {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        f(&join(prefix, "weight"), &self.weight);
        f(&join(prefix, "bias"), &self.bias);
        f(&join(prefix, "running_mean"), &self.running_mean);
        f(&join(prefix, "running_var"), &self.running_var);
    }

    fn forward<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        let tape = x.tape();
        let (gamma, beta) = (self.weight.var(tape), self.bias.var(tape));
        let eps = self.config.eps;
        match mode {
            Mode::Eval => x.batch_norm_eval(
                gamma,
                beta,
                &self.running_mean.value(),
                &self.running_var.value(),
                eps,
            ),
            Mode::Train => {
                let out = x.batch_norm_train(gamma, beta, eps);
                let m = self.config.momentum;
                let unbias = out.count as f32 / (out.count.max(2) - 1) as f32;
                let mean = self
                    .running_mean
                    .value()
                    .mul_scalar(1.0 - m)
                    .add(&out.mean.mul_scalar(m));
                let var = self
                    .running_var
                    .value()
                    .mul_scalar(1.0 - m)
                    .add(&out.var.mul_scalar(m * unbias));
                self.running_mean.set(mean);
                self.running_var.set(var);
                out.y
            }
        }
    }

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "BatchNorm({}, eps={}, momentum={})",
            c.num_features, c.eps, c.momentum
        )
    }
}
