//! Maxout (Goodfellow et al., 2013): a fully connected layer whose every output is the
//! largest of several linear pieces.

use crate::error::{Result, config_error};
use crate::init::kaiming_uniform;
use crate::module::{Mode, Module, visit_weight_bias};
use crate::param::{Param, ParamRole};
use gantry_autodiff::Var;
use rand::Rng;

/// Settings of a [`Maxout`] layer.
#[derive(Clone, Debug, PartialEq)]
pub struct MaxoutConfig {
    /// Input features.
    pub in_features: usize,
    /// Output features (units).
    pub out_features: usize,
    /// Linear pieces each unit takes the maximum of (PacGAN's toy discriminator: 5).
    pub pieces: usize,
}

impl MaxoutConfig {
    /// `in_features -> out_features` units of `pieces` pieces each, with biases.
    pub fn new(in_features: usize, out_features: usize, pieces: usize) -> Self {
        MaxoutConfig {
            in_features,
            out_features,
            pieces,
        }
    }

    /// Builds the layer with PyTorch's default initialisation of a linear layer of
    /// `in_features` inputs (`U(-1/√in, 1/√in)` for weights and biases).
    ///
    /// # Errors
    /// If a size or the number of pieces is zero.
    pub fn build<R: Rng + ?Sized>(&self, rng: &mut R) -> Result<Maxout> {
        if self.in_features == 0 || self.out_features == 0 || self.pieces == 0 {
            return Err(config_error(
                "Maxout",
                format!("sizes and pieces must be positive, got {self:?}"),
            ));
        }
        let (i, rows) = (self.in_features, self.out_features * self.pieces);
        let weight = Param::trainable(kaiming_uniform(&[rows, i], i, rng), ParamRole::LinearWeight);
        let bias = Param::trainable(kaiming_uniform(&[rows], i, rng), ParamRole::Bias);
        Ok(Maxout {
            config: self.clone(),
            weight,
            bias,
        })
    }
}

/// `y_j = max_k (x W_{jk}ᵀ + b_{jk})`: one linear map to `out × pieces` values, then the
/// maximum over each unit's pieces. Row `j * pieces + k` of the weight is piece `k` of unit
/// `j` (the layout of Blocks' `LinearMaxout`, which PacGAN's toy discriminator uses). The
/// gradient goes to the maximal piece of each unit (shared equally by ties).
///
/// # Shapes
/// input `[N, in]`, output `[N, out]`; weight `[out * pieces, in]`, bias `[out * pieces]`.
#[derive(Debug)]
pub struct Maxout {
    config: MaxoutConfig,
    /// `[out * pieces, in]`.
    pub weight: Param,
    /// `[out * pieces]`.
    pub bias: Param,
}

impl Module for Maxout {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        visit_weight_bias(prefix, &self.weight, Some(&self.bias), f);
    }

    fn forward<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        let tape = x.tape();
        let n = x.shape()[0];
        let c = &self.config;
        x.linear(self.weight.read(tape, mode), Some(self.bias.var(tape)))
            .reshape(&[n, c.out_features, c.pieces])
            .max_axes(&[2], false)
    }

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "Maxout({}, {}, pieces={})",
            c.in_features, c.out_features, c.pieces
        )
    }
}
