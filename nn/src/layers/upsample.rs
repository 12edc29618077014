//! Upsampling by an integer factor: nearest neighbour, or bilinear as PyTorch's
//! `align_corners=False`.

use crate::error::{Result, config_error};
use crate::module::{Mode, Module};
use crate::param::Param;
use gantry_autodiff::Var;
use gantry_tensor::Tensor;

/// How [`Upsample`] fills the new pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpsampleMode {
    /// Each pixel repeated `factor x factor` times (`mode='nearest'`).
    Nearest,
    /// Bilinear interpolation with `align_corners=False` (`mode='bilinear'`): output pixel
    /// `o` samples input coordinate `(o + 0.5) / factor - 0.5`, clamped at the border.
    Bilinear,
}

/// Upsampling of images by an integer `factor` on both axes, as `nn.Upsample(scale_factor=f)`.
///
/// Both modes are compositions of differentiable operations with constants, so their
/// gradients (and gradients of gradients) come from the autodiff: nearest is a broadcast
/// multiplication by ones between two reshapes; bilinear is `A_h · x · A_wᵀ` with constant
/// interpolation matrices `A` (`[H·f, H]`, two non-zeros a row).
///
/// # Shapes
/// input `[N, C, H, W]`, output `[N, C, H·f, W·f]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Upsample {
    factor: usize,
    mode: UpsampleMode,
}

impl Upsample {
    /// Upsampling by `factor` in `mode`.
    ///
    /// # Errors
    /// If `factor` is zero.
    pub fn new(factor: usize, mode: UpsampleMode) -> Result<Self> {
        if factor == 0 {
            return Err(config_error("Upsample", "the factor must be positive"));
        }
        Ok(Upsample { factor, mode })
    }

    /// Nearest-neighbour upsampling by `factor`.
    ///
    /// # Errors
    /// If `factor` is zero.
    pub fn nearest(factor: usize) -> Result<Self> {
        Upsample::new(factor, UpsampleMode::Nearest)
    }

    /// Bilinear upsampling by `factor` (`align_corners=False`).
    ///
    /// # Errors
    /// If `factor` is zero.
    pub fn bilinear(factor: usize) -> Result<Self> {
        Upsample::new(factor, UpsampleMode::Bilinear)
    }
}

/// The `[n·f, n]` matrix of 1-D linear interpolation with `align_corners=False`.
pub(crate) fn bilinear_matrix(n: usize, f: usize) -> Tensor {
    let out = n * f;
    let mut a = vec![0.0f32; out * n];
    for o in 0..out {
        // PyTorch's source index for a given scale factor, floored at 0.
        let src = (((o as f32) + 0.5) / f as f32 - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(n - 1);
        let i1 = (i0 + 1).min(n - 1);
        let l1 = src - i0 as f32;
        a[o * n + i0] += 1.0 - l1;
        a[o * n + i1] += l1;
    }
    Tensor::from_vec(&[out, n], a)
}

impl Module for Upsample {
    fn visit<'a>(&'a self, _prefix: &str, _f: &mut dyn FnMut(&str, &'a Param)) {}

    /// # Panics
    /// If the input is not 4-D.
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t>, _mode: Mode) -> Var<'t> {
        let s = x.shape();
        assert!(s.len() == 4, "Upsample: input {s:?} is not [N, C, H, W]");
        let (h, w, f) = (s[2], s[3], self.factor);
        let tape = x.tape();
        match self.mode {
            UpsampleMode::Nearest => x.upsample_nearest2d(f),
            UpsampleMode::Bilinear => {
                let a_h = tape.constant(bilinear_matrix(h, f));
                let a_w_t = tape.constant(bilinear_matrix(w, f).transpose(0, 1));
                a_h.matmul(x.matmul(a_w_t))
            }
        }
    }

    fn describe(&self) -> String {
        format!("Upsample(factor={}, {:?})", self.factor, self.mode)
    }
}
