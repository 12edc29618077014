//! Fully connected layer.

use crate::error::{Result, config_error};
use crate::init::kaiming_uniform;
use crate::module::{Mode, Module, visit_weight_bias};
use crate::param::{Param, ParamRole};
use gantry_autodiff::Var;
use rand::Rng;

/// Settings of a [`Linear`] layer.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearConfig {
    /// Input features.
    pub in_features: usize,
    /// Output features.
    pub out_features: usize,
    /// Whether to add a bias (default true).
    pub bias: bool,
}

impl LinearConfig {
    /// `in_features -> out_features` with a bias.
    pub fn new(in_features: usize, out_features: usize) -> Self {
        LinearConfig {
            in_features,
            out_features,
            bias: true,
        }
    }

    /// Without a bias.
    pub fn no_bias(mut self) -> Self {
        self.bias = false;
        self
    }

    /// Builds the layer with PyTorch's default initialisation.
    ///
    /// # Errors
    /// If a size is zero.
    pub fn build<R: Rng + ?Sized>(&self, rng: &mut R) -> Result<Linear> {
        if self.in_features == 0 || self.out_features == 0 {
            return Err(config_error(
                "Linear",
                format!("sizes must be positive, got {self:?}"),
            ));
        }
        let (i, o) = (self.in_features, self.out_features);
        let weight = Param::trainable(kaiming_uniform(&[o, i], i, rng), ParamRole::LinearWeight);
        let bias = self
            .bias
            .then(|| Param::trainable(kaiming_uniform(&[o], i, rng), ParamRole::Bias));
        Ok(Linear {
            config: self.clone(),
            weight,
            bias,
        })
    }
}

/// `y = x Wᵀ + b`: weight `[out, in]`, bias `[out]` (PyTorch's layout).
///
/// # Shapes
/// input `[N, in]`, output `[N, out]`.
#[derive(Debug)]
pub struct Linear {
    config: LinearConfig,
    /// `[out, in]`.
    pub weight: Param,
    /// `[out]`, if configured.
    pub bias: Option<Param>,
}

impl Module for Linear {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        visit_weight_bias(prefix, &self.weight, self.bias.as_ref(), f);
    }

    fn forward<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        let tape = x.tape();
        x.linear(
            self.weight.read(tape, mode),
            self.bias.as_ref().map(|b| b.var(tape)),
        )
    }

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "Linear({}, {}, bias={})",
            c.in_features, c.out_features, c.bias
        )
    }
}
