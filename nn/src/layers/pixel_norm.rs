//! ProGAN's pixelwise feature normalisation (Karras et al. 2018, 4.2).

use crate::module::{Mode, Module};
use crate::param::Param;
use gantry_autodiff::Var;

/// `y = x / √(mean over channels of x² + eps)`: every pixel's feature vector scaled to unit
/// root-mean-square, in place of batch norm in ProGAN's generator. No parameters.
///
/// # Shapes
/// input `[N, C, ...]`, output the same.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PixelNorm {
    /// Added under the square root (ProGAN: 1e-8).
    pub eps: f32,
}

impl Default for PixelNorm {
    fn default() -> Self {
        PixelNorm { eps: 1e-8 }
    }
}

impl Module for PixelNorm {
    fn visit<'a>(&'a self, _prefix: &str, _f: &mut dyn FnMut(&str, &'a Param)) {}

    /// # Panics
    /// If the input has fewer than two axes.
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t>, _mode: Mode) -> Var<'t> {
        let s = x.shape();
        assert!(s.len() >= 2, "PixelNorm: input {s:?} needs [N, C, ...]");
        x.pixel_norm(self.eps)
    }

    fn describe(&self) -> String {
        format!("PixelNorm(eps={:e})", self.eps)
    }
}
