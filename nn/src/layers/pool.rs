//! Average pooling, as `nn.AvgPool2d`.

use crate::error::{Result, config_error};
use crate::module::{Mode, Module};
use crate::param::Param;
use gantry_autodiff::Var;
use gantry_tensor::{Conv2dParams, Tensor};

/// Settings of [`AvgPool2d`], with PyTorch's defaults (stride = kernel, no padding, padding
/// counted in the average).
#[derive(Clone, Debug, PartialEq)]
pub struct AvgPool2dConfig {
    /// Square window size.
    pub kernel: usize,
    /// Step between windows.
    pub stride: usize,
    /// Implicit zero padding on each side.
    pub padding: usize,
    /// Whether padded zeros count in the divisor (pix2pixHD's downsampler sets `false`).
    pub count_include_pad: bool,
}

impl AvgPool2dConfig {
    /// A `kernel x kernel` window with stride `kernel`.
    pub fn new(kernel: usize) -> Self {
        AvgPool2dConfig {
            kernel,
            stride: kernel,
            padding: 0,
            count_include_pad: true,
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

    /// Whether padded zeros count in the divisor.
    pub fn count_include_pad(mut self, on: bool) -> Self {
        self.count_include_pad = on;
        self
    }

    /// Builds the layer.
    ///
    /// # Errors
    /// If the kernel or stride is zero, or the padding exceeds half the kernel (PyTorch's
    /// limit).
    pub fn build(&self) -> Result<AvgPool2d> {
        if self.kernel == 0 || self.stride == 0 || 2 * self.padding > self.kernel {
            return Err(config_error(
                "AvgPool2d",
                format!(
                    "kernel and stride must be positive and padding at most kernel/2, got {self:?}"
                ),
            ));
        }
        Ok(AvgPool2d {
            config: self.clone(),
        })
    }
}

/// Average pooling over `kernel x kernel` windows (floor mode, as PyTorch's default).
///
/// Composed from differentiable operations: every channel is convolved on its own with a
/// constant kernel of ones, then divided by the window size, or, with
/// `count_include_pad = false`, by a constant map of how many real pixels each window covers.
///
/// # Shapes
/// input `[N, C, H, W]`, output `[N, C, (H + 2p - k)/s + 1, (W + 2p - k)/s + 1]`.
#[derive(Clone, Debug, PartialEq)]
pub struct AvgPool2d {
    config: AvgPool2dConfig,
}

impl AvgPool2d {
    /// The configuration it was built from.
    pub fn config(&self) -> &AvgPool2dConfig {
        &self.config
    }
}

impl Module for AvgPool2d {
    fn visit<'a>(&'a self, _prefix: &str, _f: &mut dyn FnMut(&str, &'a Param)) {}

    /// # Panics
    /// If the input is not 4-D or is smaller than the window.
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t>, _mode: Mode) -> Var<'t> {
        let s = x.shape();
        let c = &self.config;
        assert!(
            s.len() == 4 && s[2] + 2 * c.padding >= c.kernel && s[3] + 2 * c.padding >= c.kernel,
            "AvgPool2d: input {s:?} is not [N, C, H, W] of at least the window {}",
            c.kernel
        );
        let (n, ch, h, w) = (s[0], s[1], s[2], s[3]);
        let k = c.kernel;
        if c.stride == k && c.padding == 0 && h % k == 0 && w % k == 0 {
            // Windows that tile the plane (ProGAN's and BigGAN's 2x2 downsampling): a block
            // sum, far cheaper than a one-channel convolution.
            return x.sum_pool2d(k).mul_scalar(1.0 / (k * k) as f32);
        }
        let params = Conv2dParams {
            stride: [c.stride; 2],
            padding: [c.padding; 2],
            dilation: [1; 2],
        };
        let ones = Tensor::ones(&[1, 1, c.kernel, c.kernel]);
        let tape = x.tape();
        let sums = x
            .reshape(&[n * ch, 1, h, w])
            .conv2d(tape.constant(ones.clone()), None, params);
        let (ho, wo) = (sums.shape()[2], sums.shape()[3]);
        let mean = if c.count_include_pad || c.padding == 0 {
            sums.mul_scalar(1.0 / (c.kernel * c.kernel) as f32)
        } else {
            let counts = Tensor::ones(&[1, 1, h, w]).conv2d(&ones, None, params);
            sums.div(tape.constant(counts))
        };
        mean.reshape(&[n, ch, ho, wo])
    }

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "AvgPool2d(k={}, s={}, p={}, count_include_pad={})",
            c.kernel, c.stride, c.padding, c.count_include_pad
        )
    }
}
