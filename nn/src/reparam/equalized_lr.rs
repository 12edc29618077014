//! The equalised learning rate (Karras et al., "Progressive Growing of GANs", 2018, 4.1).

use super::Reparam;
use crate::Result;
use crate::error::config_error;
use crate::module::Mode;
use crate::param::Param;
use gantry_autodiff::Var;

/// Settings of the equalised learning rate: the weight is stored as drawn (ProGAN draws it
/// `N(0, 1)`) and multiplied by He's constant `c = gain / √fan_in` at every read, so that
/// Adam's per-parameter step sizes are the same for every layer.
#[derive(Clone, Debug, PartialEq)]
pub struct EqualizedLr {
    /// The numerator of He's constant: `√2` (the default) for layers followed by a (leaky)
    /// ReLU, 1 for ProGAN's last layers.
    pub gain: f32,
}

impl Default for EqualizedLr {
    fn default() -> Self {
        EqualizedLr {
            gain: std::f32::consts::SQRT_2,
        }
    }
}

impl EqualizedLr {
    /// The reparameterisation of `param`, with `fan_in = shape[1] · shape[2] · …` as PyTorch's
    /// `_calculate_fan_in_and_fan_out` (for a transposed convolution's `[in, out, k, k]`
    /// weight this is `out · k · k`, PyTorch's convention). The stored value is not changed:
    /// draw it `N(0, 1)` first for ProGAN (`init::normal_by_role`).
    ///
    /// # Errors
    /// If the parameter has fewer than two axes.
    pub fn attach(&self, param: &Param) -> Result<Box<dyn Reparam>> {
        let shape = param.shape();
        if shape.len() < 2 || param.is_empty() {
            return Err(config_error(
                "EqualizedLr",
                format!("needs a weight with at least two axes, got shape {shape:?}"),
            ));
        }
        let fan_in: usize = shape[1..].iter().product();
        Ok(Box::new(EqualizedLrWeight {
            gain: self.gain,
            scale: self.gain / (fan_in as f32).sqrt(),
        }))
    }
}

/// A weight read as `c · W` with He's constant `c = gain / √fan_in`; no buffers, so the state
/// dict holds only `NAME_orig` (the stored `W`), as the hook-based PyTorch implementations.
///
/// # Shapes
/// any weight with at least two axes; the output has its shape.
#[derive(Debug)]
pub struct EqualizedLrWeight {
    gain: f32,
    scale: f32,
}

impl EqualizedLrWeight {
    /// He's constant `c`.
    pub fn scale(&self) -> f32 {
        self.scale
    }
}

impl Reparam for EqualizedLrWeight {
    fn apply<'t>(&self, raw: Var<'t>, _mode: Mode) -> Var<'t> {
        raw.mul_scalar(self.scale)
    }

    fn buffers(&self) -> Vec<(&'static str, &Param)> {
        Vec::new()
    }

    fn describe(&self) -> String {
        format!("EqualizedLr(gain={}, scale={:.4e})", self.gain, self.scale)
    }
}
