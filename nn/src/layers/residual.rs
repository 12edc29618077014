//! BigGAN's residual blocks (Brock et al. 2019, figure 15; BigGAN-PyTorch's `GBlock` and
//! `DBlock`).

use crate::Result;
use crate::layers::conditional_norm::ConditionalBatchNorm2d;
use crate::layers::conv::{Conv2d, Conv2dConfig};
use crate::layers::pool::{AvgPool2d, AvgPool2dConfig};
use crate::layers::upsample::Upsample;
use crate::module::{Mode, Module, join};
use crate::param::Param;
use gantry_autodiff::Var;
use rand::Rng;

/// The generator's up block: `h = conv2(relu(bn2(conv1(up(relu(bn1(x, c)))), c)))`, plus the
/// shortcut `conv_sc(up(x))` (1x1), with conditional batch norms and nearest 2x upsampling.
/// Names: `conv1`, `conv2`, `conv_sc`, `bn1`, `bn2`.
///
/// # Shapes
/// `x` `[N, in, H, W]`, condition `[N, D]`, output `[N, out, 2H, 2W]`.
#[derive(Debug)]
pub struct ResBlockUp {
    /// `3x3`, in -> out.
    pub conv1: Conv2d,
    /// `3x3`, out -> out.
    pub conv2: Conv2d,
    /// `1x1` shortcut, in -> out.
    pub conv_sc: Conv2d,
    /// Before `conv1`, on `in` channels.
    pub bn1: ConditionalBatchNorm2d,
    /// Before `conv2`, on `out` channels.
    pub bn2: ConditionalBatchNorm2d,
    up: Upsample,
}

impl ResBlockUp {
    /// A block from `in_channels` to `out_channels`, conditioned on vectors of `cond_size`.
    ///
    /// # Errors
    /// If a size is zero.
    pub fn new<R: Rng + ?Sized>(
        in_channels: usize,
        out_channels: usize,
        cond_size: usize,
        rng: &mut R,
    ) -> Result<Self> {
        let conv3 = |i, o, rng: &mut R| Conv2dConfig::new(i, o, 3).padding(1).build(rng);
        Ok(ResBlockUp {
            conv1: conv3(in_channels, out_channels, rng)?,
            conv2: conv3(out_channels, out_channels, rng)?,
            conv_sc: Conv2dConfig::new(in_channels, out_channels, 1).build(rng)?,
            bn1: ConditionalBatchNorm2d::new(in_channels, cond_size, rng)?,
            bn2: ConditionalBatchNorm2d::new(out_channels, cond_size, rng)?,
            up: Upsample::nearest(2)?,
        })
    }

    /// Applies the block to `x` conditioned on `cond`.
    pub fn forward_cond<'t>(&self, x: Var<'t>, cond: Var<'t>, mode: Mode) -> Var<'t> {
        let h = self.bn1.forward_cond(x, cond, mode).relu();
        let h = self.conv1.forward(self.up.forward(h, mode), mode);
        let h = self.bn2.forward_cond(h, cond, mode).relu();
        let h = self.conv2.forward(h, mode);
        h.add(self.conv_sc.forward(self.up.forward(x, mode), mode))
    }
}

impl Module for ResBlockUp {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        self.conv1.visit(&join(prefix, "conv1"), f);
        self.conv2.visit(&join(prefix, "conv2"), f);
        self.conv_sc.visit(&join(prefix, "conv_sc"), f);
        self.bn1.visit(&join(prefix, "bn1"), f);
        self.bn2.visit(&join(prefix, "bn2"), f);
    }

    /// The block at a zero condition (see [`ConditionalBatchNorm2d`]'s `forward`).
    fn forward<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        let d = self.bn1.gain.weight.shape()[1];
        let cond = x
            .tape()
            .constant(gantry_tensor::Tensor::zeros(&[x.shape()[0], d]));
        self.forward_cond(x, cond, mode)
    }

    fn describe(&self) -> String {
        let w = self.conv1.weight.shape();
        format!("ResBlockUp({} -> {})", w[1], w[0])
    }
}

/// The discriminator's down block: `h = pool(conv2(relu(conv1(relu?(x)))))` plus the shortcut
/// (`pool(conv_sc(x))` after a pre-activated block, `conv_sc(pool(x))` for the first block,
/// whose input is the image), with 2x2 average pooling when downsampling. The shortcut
/// convolution exists when the channels change or the block downsamples. Names: `conv1`,
/// `conv2`, `conv_sc`.
///
/// # Shapes
/// input `[N, in, H, W]`, output `[N, out, H/2, W/2]` (or `[N, out, H, W]` without
/// downsampling).
#[derive(Debug)]
pub struct ResBlockDown {
    /// `3x3`, in -> out.
    pub conv1: Conv2d,
    /// `3x3`, out -> out.
    pub conv2: Conv2d,
    /// `1x1` shortcut, in -> out, if learnable.
    pub conv_sc: Option<Conv2d>,
    preactivation: bool,
    pool: Option<AvgPool2d>,
}

impl ResBlockDown {
    /// A block from `in_channels` to `out_channels`; `preactivation` is false for the first
    /// block (its input is the image), `downsample` halves the resolution.
    ///
    /// # Errors
    /// If a size is zero.
    pub fn new<R: Rng + ?Sized>(
        in_channels: usize,
        out_channels: usize,
        preactivation: bool,
        downsample: bool,
        rng: &mut R,
    ) -> Result<Self> {
        let conv3 = |i, o, rng: &mut R| Conv2dConfig::new(i, o, 3).padding(1).build(rng);
        let learnable = in_channels != out_channels || downsample;
        Ok(ResBlockDown {
            conv1: conv3(in_channels, out_channels, rng)?,
            conv2: conv3(out_channels, out_channels, rng)?,
            conv_sc: if learnable {
                Some(Conv2dConfig::new(in_channels, out_channels, 1).build(rng)?)
            } else {
                None
            },
            preactivation,
            pool: if downsample {
                Some(AvgPool2dConfig::new(2).build()?)
            } else {
                None
            },
        })
    }

    fn down<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        match &self.pool {
            Some(p) => p.forward(x, mode),
            None => x,
        }
    }

    fn shortcut<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        let conv = |x| match &self.conv_sc {
            Some(c) => c.forward(x, mode),
            None => x,
        };
        if self.preactivation {
            self.down(conv(x), mode)
        } else {
            conv(self.down(x, mode))
        }
    }
}

impl Module for ResBlockDown {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        self.conv1.visit(&join(prefix, "conv1"), f);
        self.conv2.visit(&join(prefix, "conv2"), f);
        if let Some(c) = &self.conv_sc {
            c.visit(&join(prefix, "conv_sc"), f);
        }
    }

    fn forward<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        let h = if self.preactivation { x.relu() } else { x };
        let h = self.conv1.forward(h, mode).relu();
        let h = self.down(self.conv2.forward(h, mode), mode);
        h.add(self.shortcut(x, mode))
    }

    fn describe(&self) -> String {
        let w = self.conv1.weight.shape();
        format!(
            "ResBlockDown({} -> {}, preactivation={}, downsample={})",
            w[1],
            w[0],
            self.preactivation,
            self.pool.is_some()
        )
    }
}
