//! SAGAN's self-attention block (Zhang et al., "Self-Attention Generative Adversarial
//! Networks", 2019), as BigGAN-PyTorch's `Attention`.

use crate::Result;
use crate::error::config_error;
use crate::layers::conv::{Conv2d, Conv2dConfig};
use crate::module::{Mode, Module, join};
use crate::param::{Param, ParamRole};
use gantry_autodiff::Var;
use gantry_tensor::Tensor;
use rand::Rng;

/// Self-attention over the pixels: `y = x + γ · o(g · softmax(θᵀ φ)ᵀ)`, with 1x1 convolutions
/// `θ` (to `C/8`), `φ` (to `C/8`, then 2x2 max-pooled), `g` (to `C/2`, max-pooled) and `o`
/// (back to `C`), all without bias, and the gain `γ` starting at 0 so that the block begins as
/// the identity. Names: `theta.weight`, `phi.weight`, `g.weight`, `o.weight`, `gamma`.
///
/// # Shapes
/// input `[N, C, H, W]` with `C` a multiple of 8 and even `H`, `W`; output the same.
#[derive(Debug)]
pub struct SelfAttention {
    /// Queries, `C -> C/8`.
    pub theta: Conv2d,
    /// Keys, `C -> C/8`.
    pub phi: Conv2d,
    /// Values, `C -> C/2`.
    pub g: Conv2d,
    /// Output, `C/2 -> C`.
    pub o: Conv2d,
    /// The output gain, `[1]`, initialised to 0.
    pub gamma: Param,
}

impl SelfAttention {
    /// A block on `channels` channels.
    ///
    /// # Errors
    /// If `channels` is not a positive multiple of 8.
    pub fn new<R: Rng + ?Sized>(channels: usize, rng: &mut R) -> Result<Self> {
        if channels == 0 || !channels.is_multiple_of(8) {
            return Err(config_error(
                "SelfAttention",
                format!("channels must be a positive multiple of 8, got {channels}"),
            ));
        }
        let conv = |i, o, rng: &mut R| Conv2dConfig::new(i, o, 1).bias(false).build(rng);
        Ok(SelfAttention {
            theta: conv(channels, channels / 8, rng)?,
            phi: conv(channels, channels / 8, rng)?,
            g: conv(channels, channels / 2, rng)?,
            o: conv(channels / 2, channels, rng)?,
            gamma: Param::trainable(Tensor::zeros(&[1]), ParamRole::Other),
        })
    }
}

/// 2x2 max pooling with stride 2 by a reshape and a maximum over the two window axes.
fn max_pool2<'t>(x: Var<'t>) -> Var<'t> {
    let s = x.shape();
    x.reshape(&[s[0], s[1], s[2] / 2, 2, s[3] / 2, 2])
        .max_axes(&[3, 5], false)
}

impl Module for SelfAttention {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        self.theta.visit(&join(prefix, "theta"), f);
        self.phi.visit(&join(prefix, "phi"), f);
        self.g.visit(&join(prefix, "g"), f);
        self.o.visit(&join(prefix, "o"), f);
        f(&join(prefix, "gamma"), &self.gamma);
    }

    /// # Panics
    /// If the input is not `[N, C, H, W]` with this block's channels and even `H`, `W`.
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        let s = x.shape();
        let c = self.o.weight.shape()[0];
        assert!(
            s.len() == 4 && s[1] == c && s[2].is_multiple_of(2) && s[3].is_multiple_of(2),
            "SelfAttention({c}): input {s:?} is not [N, {c}, H, W] with even H and W"
        );
        let (n, hw) = (s[0], s[2] * s[3]);
        let theta = self.theta.forward(x, mode).reshape(&[n, c / 8, hw]);
        let phi = max_pool2(self.phi.forward(x, mode)).reshape(&[n, c / 8, hw / 4]);
        let g = max_pool2(self.g.forward(x, mode)).reshape(&[n, c / 2, hw / 4]);
        // beta[n, i, j]: how much pixel i attends to pooled position j.
        // Products read their operands transposed in place rather than through copies.
        let beta = theta.matmul_t(phi, true, false).log_softmax(2).exp();
        let attended = g
            .matmul_t(beta, false, true)
            .reshape(&[n, c / 2, s[2], s[3]]);
        let o = self.o.forward(attended, mode);
        let gamma = self.gamma.read(x.tape(), mode).reshape(&[1, 1, 1, 1]);
        x.add(o.mul(gamma))
    }

    fn describe(&self) -> String {
        format!("SelfAttention({})", self.o.weight.shape()[0])
    }
}
