//! 2-D convolution layer.

use crate::error::{Result, config_error};
use crate::init::kaiming_uniform;
use crate::module::{Mode, Module, visit_weight_bias};
use crate::param::{Param, ParamRole};
use gantry_autodiff::Var;
use gantry_tensor::Conv2dParams;
use rand::Rng;

/// Settings of a [`Conv2d`] layer (square kernels; PyTorch's defaults: stride 1, padding 0,
/// dilation 1, bias on).
#[derive(Clone, Debug, PartialEq)]
pub struct Conv2dConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel size.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on each side.
    pub padding: usize,
    /// Spacing between kernel taps.
    pub dilation: usize,
    /// Whether to add a bias.
    pub bias: bool,
}

impl Conv2dConfig {
    /// `in -> out` channels with a `kernel x kernel` kernel and PyTorch's other defaults.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize) -> Self {
        Conv2dConfig {
            in_channels,
            out_channels,
            kernel,
            stride: 1,
            padding: 0,
            dilation: 1,
            bias: true,
        }
    }

    /// With this stride.
    pub fn stride(mut self, stride: usize) -> Self {
        self.stride = stride;
        self
    }

    /// With this padding.
    pub fn padding(mut self, padding: usize) -> Self {
        self.padding = padding;
        self
    }

    /// With this dilation.
    pub fn dilation(mut self, dilation: usize) -> Self {
        self.dilation = dilation;
        self
    }

    /// With or without a bias.
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// The tensor-level parameters.
    pub fn params(&self) -> Conv2dParams {
        Conv2dParams {
            stride: [self.stride; 2],
            padding: [self.padding; 2],
            dilation: [self.dilation; 2],
        }
    }

    /// Builds the layer with PyTorch's default initialisation.
    ///
    /// # Errors
    /// If a size, the stride or the dilation is zero.
    pub fn build<R: Rng + ?Sized>(&self, rng: &mut R) -> Result<Conv2d> {
        let c = self;
        if c.in_channels == 0
            || c.out_channels == 0
            || c.kernel == 0
            || c.stride == 0
            || c.dilation == 0
        {
            return Err(config_error(
                "Conv2d",
                format!("sizes must be positive, got {c:?}"),
            ));
        }
        let fan_in = c.in_channels * c.kernel * c.kernel;
        let shape = [c.out_channels, c.in_channels, c.kernel, c.kernel];
        let weight = Param::trainable(kaiming_uniform(&shape, fan_in, rng), ParamRole::ConvWeight);
        let bias = c.bias.then(|| {
            Param::trainable(
                kaiming_uniform(&[c.out_channels], fan_in, rng),
                ParamRole::Bias,
            )
        });
        Ok(Conv2d {
            config: c.clone(),
            weight,
            bias,
        })
    }
}

/// 2-D convolution: weight `[out, in, k, k]`, bias `[out]`.
///
/// # Shapes
/// input `[N, in, H, W]`, output `[N, out, (H + 2p - d(k-1) - 1)/s + 1, ...]`.
#[derive(Debug)]
pub struct Conv2d {
    config: Conv2dConfig,
    /// `[out, in, k, k]`.
    pub weight: Param,
    /// `[out]`, if configured.
    pub bias: Option<Param>,
}

impl Conv2d {
    /// The configuration it was built from.
    pub fn config(&self) -> &Conv2dConfig {
        &self.config
    }
}

impl Module for Conv2d {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        visit_weight_bias(prefix, &self.weight, self.bias.as_ref(), f);
    }

    fn forward<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        let tape = x.tape();
        let bias = self.bias.as_ref().map(|b| b.var(tape));
        x.conv2d(self.weight.read(tape, mode), bias, self.config.params())
    }

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "Conv2d({}, {}, k={}, s={}, p={}, bias={})",
            c.in_channels, c.out_channels, c.kernel, c.stride, c.padding, c.bias
        )
    }
}
