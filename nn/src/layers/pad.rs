//! Reflection padding, as `nn.ReflectionPad2d` (the ResNet generators of CycleGAN and
//! pix2pixHD).

use crate::module::{Mode, Module};
use crate::param::Param;
use gantry_autodiff::Var;

/// Pads the last two axes with their reflection about the edge pixel (which is not
/// repeated): `[a b c d]` padded by 2 is `[c b a b c d c b]`.
///
/// Built from slices and one concatenation per axis, so the gradient of a padded pixel flows
/// back to the pixel it mirrors.
///
/// # Shapes
/// input `[N, C, H, W]`, output `[N, C, H + top + bottom, W + left + right]`; each padding
/// must be smaller than the axis it pads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReflectionPad2d {
    /// Columns added on the left.
    pub left: usize,
    /// Columns added on the right.
    pub right: usize,
    /// Rows added on top.
    pub top: usize,
    /// Rows added at the bottom.
    pub bottom: usize,
}

impl ReflectionPad2d {
    /// The same padding on all four sides.
    pub fn new(p: usize) -> Self {
        ReflectionPad2d {
            left: p,
            right: p,
            top: p,
            bottom: p,
        }
    }
}

impl Module for ReflectionPad2d {
    fn visit<'a>(&'a self, _prefix: &str, _f: &mut dyn FnMut(&str, &'a Param)) {}

    /// # Panics
    /// If the input is not 4-D or a padding is not smaller than the axis it pads (as
    /// PyTorch).
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t>, _mode: Mode) -> Var<'t> {
        let s = x.shape();
        assert!(
            s.len() == 4 && self.top.max(self.bottom) < s[2] && self.left.max(self.right) < s[3],
            "ReflectionPad2d: input {s:?} is not [N, C, H, W] larger than the padding {self:?}"
        );
        x.reflection_pad2d([self.left, self.right, self.top, self.bottom])
    }

    fn describe(&self) -> String {
        format!(
            "ReflectionPad2d(l={}, r={}, t={}, b={})",
            self.left, self.right, self.top, self.bottom
        )
    }
}
