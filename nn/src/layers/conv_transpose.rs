//! 2-D transposed convolution layer.

use crate::error::{Result, config_error};
use crate::init::kaiming_uniform;
use crate::module::{Mode, Module, visit_weight_bias};
use crate::param::{Param, ParamRole};
use gantry_autodiff::Var;
use gantry_tensor::ConvTranspose2dParams;
use rand::Rng;

/// Settings of a [`ConvTranspose2d`] layer (square kernels; PyTorch's defaults: stride 1,
/// padding 0, output padding 0, dilation 1, bias on).
#[derive(Clone, Debug, PartialEq)]
pub struct ConvTranspose2dConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel size.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Padding of the convolution this transposes.
    pub padding: usize,
    /// Extra size on one side of the output; smaller than the stride.
    pub output_padding: usize,
    /// Spacing between kernel taps.
    pub dilation: usize,
    /// Whether to add a bias.
    pub bias: bool,
}

impl ConvTranspose2dConfig {
    /// `in -> out` channels with a `kernel x kernel` kernel and PyTorch's other defaults.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize) -> Self {
        ConvTranspose2dConfig {
            in_channels,
            out_channels,
            kernel,
            stride: 1,
            padding: 0,
            output_padding: 0,
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

    /// With this output padding.
    pub fn output_padding(mut self, output_padding: usize) -> Self {
        self.output_padding = output_padding;
        self
    }

    /// With or without a bias.
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// The tensor-level parameters.
    pub fn params(&self) -> ConvTranspose2dParams {
        ConvTranspose2dParams {
            stride: [self.stride; 2],
            padding: [self.padding; 2],
            output_padding: [self.output_padding; 2],
            dilation: [self.dilation; 2],
        }
    }

    /// Builds the layer with PyTorch's default initialisation (fan-in from the weight's
    /// second axis, as PyTorch computes it for transposed convolutions).
    ///
    /// # Errors
    /// If a size, the stride or the dilation is zero, or `output_padding >= stride`.
    pub fn build<R: Rng + ?Sized>(&self, rng: &mut R) -> Result<ConvTranspose2d> {
        let c = self;
        if c.in_channels == 0
            || c.out_channels == 0
            || c.kernel == 0
            || c.stride == 0
            || c.dilation == 0
        {
            return Err(config_error(
                "ConvTranspose2d",
                format!("sizes must be positive, got {c:?}"),
            ));
        }
        if c.output_padding >= c.stride {
            return Err(config_error(
                "ConvTranspose2d",
                format!(
                    "output_padding {} must be smaller than stride {}",
                    c.output_padding, c.stride
                ),
            ));
        }
        let fan_in = c.out_channels * c.kernel * c.kernel;
        let shape = [c.in_channels, c.out_channels, c.kernel, c.kernel];
        // Output channels are axis 1 of this layout: spectral norm reads the weight that way.
        let weight = Param::trainable(kaiming_uniform(&shape, fan_in, rng), ParamRole::ConvWeight)
            .with_out_axis(1);
        let bias = c.bias.then(|| {
            Param::trainable(
                kaiming_uniform(&[c.out_channels], fan_in, rng),
                ParamRole::Bias,
            )
        });
        Ok(ConvTranspose2d {
            config: c.clone(),
            weight,
            bias,
        })
    }
}

/// 2-D transposed convolution: weight `[in, out, k, k]` (PyTorch's layout), bias `[out]`.
///
/// # Shapes
/// input `[N, in, H, W]`, output `[N, out, (H-1)s - 2p + d(k-1) + output_padding + 1, ...]`.
#[derive(Debug)]
pub struct ConvTranspose2d {
    config: ConvTranspose2dConfig,
    /// `[in, out, k, k]`.
    pub weight: Param,
    /// `[out]`, if configured.
    pub bias: Option<Param>,
}

impl ConvTranspose2d {
    /// The configuration it was built from.
    pub fn config(&self) -> &ConvTranspose2dConfig {
        &self.config
    }
}

impl Module for ConvTranspose2d {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        visit_weight_bias(prefix, &self.weight, self.bias.as_ref(), f);
    }

    fn forward<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        let tape = x.tape();
        let bias = self.bias.as_ref().map(|b| b.var(tape));
        x.conv_transpose2d(self.weight.read(tape, mode), bias, self.config.params())
    }

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "ConvTranspose2d({}, {}, k={}, s={}, p={}, bias={})",
            c.in_channels, c.out_channels, c.kernel, c.stride, c.padding, c.bias
        )
    }
}
