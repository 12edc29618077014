//! Progressive growing of GANs (Karras et al. 2018): both players start at 4x4 and gain a
//! block per doubling of the resolution up to the final size, each new block faded in over a
//! set number of images and then trained alone for as many again (the stabilisation phase).
//!
//! - **Schedule.** Where growth stands is a pure function of the step:
//!   [`ProGanConfig::stage`] counts the images shown (`step x batch_size`), so a run resumed
//!   from a checkpoint in the middle of a fade-in continues bit for bit. The trainer tells the
//!   model the step through [`Gan::set_progress`].
//! - **Sizes.** Every block is built up front (the parameters, their names and the optimizer
//!   state stay the same for the whole run); a stage uses the blocks up to its resolution.
//!   The generator's image is upsampled (nearest) to the final size and the discriminator
//!   average-pools its input down to the resolution it works at, so samples, real batches,
//!   metrics and checkpoints have one shape all run long (the paper's code does the same).
//!   Real batches are brought to the stage's resolution ([`Gan::real_samples`]): pooled, and
//!   during a fade blended with their half-resolution version as the generator's output is.
//! - **Layers.** The generator: the latent normalised, a dense layer to 4x4, then per block
//!   nearest upsampling and two 3x3 convolutions, each followed by leaky ReLU (0.2) and pixel
//!   norm; a 1x1 toRGB per resolution with a linear output. The discriminator: a 1x1 fromRGB
//!   per resolution, two 3x3 convolutions and 2x2 average pooling per block, and at 4x4
//!   minibatch standard deviation, a 3x3 convolution and two dense layers. Every weight is
//!   drawn `N(0, 1)` and scaled at run time by He's constant (the equalised learning rate).
//! - **Unused blocks.** The blocks a stage does not use enter the output times zero, so every
//!   parameter has a gradient (zero) at every step: the optimizers, which refuse a missing
//!   gradient, need no special case, and Adam leaves an unused weight exactly as it is.

use super::{Gan, ModelConfig};
use crate::error::{Result, config_error};
use gantry_autodiff::{Tape, Var};
use gantry_nn::reparam::EqualizedLr;
use gantry_nn::{
    AvgPool2d, AvgPool2dConfig, Conv2d, Conv2dConfig, Flatten, LeakyReLU, Linear, LinearConfig,
    MinibatchStdDev, Mode, Module, Param, ParamRole, PixelNorm, Reshape, Sequential, Upsample,
    named_params, visit_list,
};
use gantry_tensor::Tensor;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::f32::consts::SQRT_2;

/// Settings of a [`ProGan`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProGanConfig {
    /// The final image side: a power of two, at least 4 (64 for the emoji, 128 for
    /// `emoji128`; the paper reaches 1024).
    pub image_size: usize,
    /// Image channels.
    pub channels: usize,
    /// Length of the latent vector (the paper: 512).
    pub z_dim: usize,
    /// Feature maps at 4x4 before the cap; they halve with each doubling of the resolution
    /// (the paper: 4096, so with the cap 512 up to 32x32, 256 at 64x64, 128 at 128x128).
    pub fmap_base: usize,
    /// The most feature maps of any block (the paper: 512).
    pub fmap_max: usize,
    /// Real images shown while a new resolution fades in (alpha from 0 to 1; the paper:
    /// 800,000).
    pub fade_images: u64,
    /// Real images shown at each resolution once faded in (and at 4x4 before any growth; the
    /// paper: 800,000).
    pub stable_images: u64,
    /// Real images per step, which turns steps into images shown.
    pub batch_size: usize,
    /// Samples per group of the minibatch standard deviation (the paper: 4); a batch that
    /// is not a multiple of it uses its largest divisor below it.
    pub mbstd_group: usize,
}

impl ProGanConfig {
    /// The paper's networks (widths capped at 512, a 512-long latent) and schedule (800,000
    /// images per fade and per stabilisation) for `channels`-channel images of side
    /// `image_size`, trained with batches of `batch_size`.
    pub fn paper(image_size: usize, channels: usize, batch_size: usize) -> Self {
        ProGanConfig {
            image_size,
            channels,
            z_dim: 512,
            fmap_base: 4096,
            fmap_max: 512,
            fade_images: 800_000,
            stable_images: 800_000,
            batch_size,
            mbstd_group: 4,
        }
    }

    /// A network for a CPU: widths `width` up to 32x32 and halving above (the paper's shape
    /// at `width` / 512 of its size), a latent of `width`, and 3,200 images per fade and per
    /// stabilisation (the paper's 800,000 take days on a GPU; at batch 16 these are 200
    /// steps a phase, and 64x64 is reached after 1,600).
    pub fn new(image_size: usize, channels: usize, width: usize, batch_size: usize) -> Self {
        ProGanConfig {
            z_dim: width,
            fmap_base: width.saturating_mul(8),
            fmap_max: width,
            fade_images: 3_200,
            stable_images: 3_200,
            ..ProGanConfig::paper(image_size, channels, batch_size)
        }
    }

    /// The number of doublings from 4x4 to the final size (4 for 64x64).
    pub fn levels(&self) -> usize {
        (self.image_size.max(4).ilog2() - 2) as usize
    }

    /// The feature maps of the block at `level` (0: 4x4): `fmap_base / 2^level`, at most
    /// `fmap_max`, at least 1.
    pub fn width(&self, level: usize) -> usize {
        (self.fmap_base >> level.min(63)).clamp(1, self.fmap_max.max(1))
    }

    /// Where growth stands at the step after `step` steps: `step x batch_size` real images
    /// have been shown. First `stable_images` at 4x4; then per resolution `fade_images` with
    /// alpha rising linearly from 0 and `stable_images` with alpha 1; the final resolution
    /// stays.
    pub fn stage(&self, step: u64) -> Stage {
        let images = step.saturating_mul(self.batch_size as u64);
        let mut start = self.stable_images;
        for level in 1..=self.levels() {
            if images < start {
                return Stage::stable(level - 1);
            }
            if images < start.saturating_add(self.fade_images) {
                let alpha = (images - start) as f64 / self.fade_images as f64;
                return Stage {
                    level,
                    alpha: alpha as f32,
                };
            }
            start = start
                .saturating_add(self.fade_images)
                .saturating_add(self.stable_images);
        }
        Stage::stable(self.levels())
    }

    /// The first step at which the final resolution is fully faded in.
    pub fn grown_at_step(&self) -> u64 {
        let levels = self.levels() as u64;
        let images = self
            .stable_images
            .saturating_add(levels.saturating_mul(self.fade_images))
            .saturating_add(levels.saturating_sub(1).saturating_mul(self.stable_images));
        images.div_ceil(self.batch_size.max(1) as u64)
    }

    fn validate(&self) -> Result<()> {
        let bad = |message: String| Err(config_error("progan", message));
        if !self.image_size.is_power_of_two() || self.image_size < 4 {
            return bad(format!(
                "image size {} is not a power of two of at least 4 (growth doubles from 4x4)",
                self.image_size
            ));
        }
        for (name, value) in [
            ("channels", self.channels),
            ("z_dim", self.z_dim),
            ("fmap_base", self.fmap_base),
            ("fmap_max", self.fmap_max),
            ("batch_size", self.batch_size),
            ("mbstd_group", self.mbstd_group),
        ] {
            if value == 0 {
                return bad(format!("{name} must be at least 1"));
            }
        }
        Ok(())
    }
}

/// Where progressive growing stands: the resolution the players work at and the weight of
/// its newest block.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stage {
    /// The resolution level: 0 for 4x4, `l` for `4 x 2^l`.
    pub level: usize,
    /// The newest block's weight: rising from 0 towards 1 during its fade-in, 1 once stable.
    pub alpha: f32,
}

impl Stage {
    /// A stable stage (alpha 1) at `level`.
    pub fn stable(level: usize) -> Self {
        Stage { level, alpha: 1.0 }
    }

    /// The side of the images at this stage.
    pub fn resolution(&self) -> usize {
        4 << self.level
    }

    /// Whether the newest block is fading in (the stage blends it with the level below).
    pub fn fading(&self) -> bool {
        self.level > 0 && self.alpha < 1.0
    }
}

/// `old + alpha (new - old)`: exactly `old` at alpha 0.
fn blend<'t>(old: Var<'t>, new: Var<'t>, alpha: f32) -> Var<'t> {
    old.add(new.sub(old).mul_scalar(alpha))
}

/// `x` plus zero times the sum of every trained parameter of `idle`, so that the blocks a
/// stage does not use get a gradient (of zeros) as the others do.
pub(super) fn with_idle<'t>(x: Var<'t>, idle: &[&dyn Module]) -> Var<'t> {
    let tape = x.tape();
    let mut total: Option<Var<'t>> = None;
    for m in idle {
        m.visit("", &mut |_, p| {
            if p.is_trained() {
                let s = p.var(tape).sum();
                total = Some(total.map_or(s, |t| t.add(s)));
            }
        });
    }
    match total {
        Some(t) => x.add(t.mul_scalar(0.0)),
        None => x,
    }
}

/// What `stage` does not use: the blocks above its level, and the RGB layers other than
/// its level's (and the one below while fading).
fn idle<'a, B: Module, R: Module>(
    blocks: &'a [B],
    rgb: &'a [R],
    stage: Stage,
) -> Vec<&'a dyn Module> {
    let top = stage.level;
    let used = |l: usize| l == top || (stage.fading() && l + 1 == top);
    let mut idle: Vec<&dyn Module> = Vec::new();
    idle.extend(blocks[top + 1..].iter().map(|b| b as &dyn Module));
    idle.extend(
        rgb.iter()
            .enumerate()
            .filter(|(l, _)| !used(*l))
            .map(|(_, m)| m as &dyn Module),
    );
    idle
}

/// `m` with its weights drawn `N(0, 1)` and read through the equalised learning rate with
/// `gain`, and its biases zero.
fn equalized<M: Module>(m: M, gain: f32, rng: &mut dyn RngCore) -> Result<M> {
    for (_, p) in named_params(&m) {
        match p.role() {
            ParamRole::LinearWeight | ParamRole::ConvWeight => {
                p.set(Tensor::randn(&p.shape(), 0.0, 1.0, rng));
                p.set_reparam(EqualizedLr { gain }.attach(p)?)?;
            }
            ParamRole::Bias => p.set(Tensor::zeros(&p.shape())),
            _ => {}
        }
    }
    Ok(m)
}

/// An equalised `k x k` convolution (same padding) from `cin` to `cout` channels.
fn conv(cin: usize, cout: usize, k: usize, gain: f32, rng: &mut dyn RngCore) -> Result<Conv2d> {
    equalized(
        Conv2dConfig::new(cin, cout, k).padding(k / 2).build(rng)?,
        gain,
        rng,
    )
}

/// An equalised dense layer.
fn dense(cin: usize, cout: usize, gain: f32, rng: &mut dyn RngCore) -> Result<Linear> {
    equalized(LinearConfig::new(cin, cout).build(rng)?, gain, rng)
}

/// Nearest upsampling from level `level` to the final size, `None` at the final size.
fn upsamplers(config: &ProGanConfig) -> Result<Vec<Option<Upsample>>> {
    (0..=config.levels())
        .map(|l| {
            let f = config.image_size >> (l + 2);
            Ok(if f > 1 {
                Some(Upsample::nearest(f)?)
            } else {
                None
            })
        })
        .collect()
}

/// Average pooling from the final size to level `level`, `None` at the final size.
fn poolers(config: &ProGanConfig) -> Result<Vec<Option<AvgPool2d>>> {
    (0..=config.levels())
        .map(|l| {
            let f = config.image_size >> (l + 2);
            Ok(if f > 1 {
                Some(AvgPool2dConfig::new(f).build()?)
            } else {
                None
            })
        })
        .collect()
}

/// Panics naming `what` unless `shape` is `[N, channels, size, size]`.
#[track_caller]
fn check_images(what: &str, shape: &[usize], channels: usize, size: usize) {
    assert!(
        shape.len() == 4 && shape[1] == channels && shape[2] == size && shape[3] == size,
        "{what} {shape:?} is not [N, {channels}, {size}, {size}]"
    );
}

/// Applies an optional resampler.
fn resample<'t, M: Module>(m: &Option<M>, x: Var<'t>) -> Var<'t> {
    match m {
        Some(m) => m.forward(x, Mode::Train),
        None => x,
    }
}

/// ProGAN's generator: `[N, z_dim]` latents to `[N, channels, image_size, image_size]`
/// images, drawn at the resolution of its [`Stage`] and upsampled (nearest) to the final
/// size.
///
/// # Shapes
/// input `[N, z_dim]`, output `[N, channels, image_size, image_size]`.
pub struct ProGanGenerator {
    blocks: Vec<Sequential>,
    to_rgb: Vec<Conv2d>,
    upsample: Vec<Option<Upsample>>,
    stage: Cell<Stage>,
}

impl ProGanGenerator {
    fn new(c: &ProGanConfig, rng: &mut dyn RngCore) -> Result<Self> {
        let w0 = c.width(0);
        let lrelu = || LeakyReLU::new(0.2);
        let first = Sequential::new()
            .add(PixelNorm::default())
            .add(dense(c.z_dim, 16 * w0, SQRT_2 / 4.0, rng)?)
            .add(Reshape::new(&[w0, 4, 4]))
            .add(lrelu())
            .add(PixelNorm::default())
            .add(conv(w0, w0, 3, SQRT_2, rng)?)
            .add(lrelu())
            .add(PixelNorm::default());
        let mut blocks = vec![first];
        for l in 1..=c.levels() {
            let (cin, cout) = (c.width(l - 1), c.width(l));
            blocks.push(
                Sequential::new()
                    .add(Upsample::nearest(2)?)
                    .add(conv(cin, cout, 3, SQRT_2, rng)?)
                    .add(lrelu())
                    .add(PixelNorm::default())
                    .add(conv(cout, cout, 3, SQRT_2, rng)?)
                    .add(lrelu())
                    .add(PixelNorm::default()),
            );
        }
        let mut to_rgb = Vec::new();
        for l in 0..=c.levels() {
            to_rgb.push(conv(c.width(l), c.channels, 1, 1.0, rng)?);
        }
        Ok(ProGanGenerator {
            blocks,
            to_rgb,
            upsample: upsamplers(c)?,
            stage: Cell::new(c.stage(0)),
        })
    }
}

impl Module for ProGanGenerator {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        visit_list(prefix, "blocks", &self.blocks, f);
        visit_list(prefix, "to_rgb", &self.to_rgb, f);
    }

    fn forward<'t>(&self, z: Var<'t>, mode: Mode) -> Var<'t> {
        let s = self.stage.get();
        let top = s.level;
        let mut h = self.blocks[0].forward(z, mode);
        let mut below = h;
        for block in &self.blocks[1..=top] {
            below = h;
            h = block.forward(h, mode);
        }
        let rgb =
            |l: usize, h: Var<'t>| resample(&self.upsample[l], self.to_rgb[l].forward(h, mode));
        let new = rgb(top, h);
        let out = if s.fading() {
            blend(rgb(top - 1, below), new, s.alpha)
        } else {
            new
        };
        let idle = idle(&self.blocks, &self.to_rgb, s);
        with_idle(out, &idle)
    }

    fn describe(&self) -> String {
        let s = self.stage.get();
        format!(
            "ProGanGenerator(at {0}x{0}, alpha {1})",
            s.resolution(),
            s.alpha
        )
    }
}

/// ProGAN's discriminator: images at the final size, average-pooled to the resolution of
/// its [`Stage`], to one score each.
///
/// # Shapes
/// input `[N, channels, image_size, image_size]`, output `[N, 1]`.
pub struct ProGanDiscriminator {
    from_rgb: Vec<Sequential>,
    blocks: Vec<Sequential>,
    pool: Vec<Option<AvgPool2d>>,
    mbstd_group: usize,
    channels: usize,
    image_size: usize,
    stage: Cell<Stage>,
}

impl ProGanDiscriminator {
    fn new(c: &ProGanConfig, rng: &mut dyn RngCore) -> Result<Self> {
        let w0 = c.width(0);
        let lrelu = || LeakyReLU::new(0.2);
        let head = Sequential::new()
            .add(conv(w0 + 1, w0, 3, SQRT_2, rng)?)
            .add(lrelu())
            .add(Flatten)
            .add(dense(16 * w0, w0, SQRT_2, rng)?)
            .add(lrelu())
            .add(dense(w0, 1, 1.0, rng)?);
        let mut blocks = vec![head];
        for l in 1..=c.levels() {
            let (w, below) = (c.width(l), c.width(l - 1));
            blocks.push(
                Sequential::new()
                    .add(conv(w, w, 3, SQRT_2, rng)?)
                    .add(lrelu())
                    .add(conv(w, below, 3, SQRT_2, rng)?)
                    .add(lrelu())
                    .add(AvgPool2dConfig::new(2).build()?),
            );
        }
        let mut from_rgb = Vec::new();
        for l in 0..=c.levels() {
            from_rgb.push(
                Sequential::new()
                    .add(conv(c.channels, c.width(l), 1, SQRT_2, rng)?)
                    .add(lrelu()),
            );
        }
        Ok(ProGanDiscriminator {
            from_rgb,
            blocks,
            pool: poolers(c)?,
            mbstd_group: c.mbstd_group,
            channels: c.channels,
            image_size: c.image_size,
            stage: Cell::new(c.stage(0)),
        })
    }

    /// The minibatch standard deviation for a batch of `n`: groups of the configured size,
    /// or of its largest divisor that divides `n`.
    fn mbstd(&self, n: usize) -> MinibatchStdDev {
        let g = (1..=self.mbstd_group.min(n).max(1))
            .rev()
            .find(|g| n.is_multiple_of(*g))
            .unwrap_or(1);
        MinibatchStdDev {
            group_size: Some(g),
            ..Default::default()
        }
    }
}

impl Module for ProGanDiscriminator {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        visit_list(prefix, "from_rgb", &self.from_rgb, f);
        visit_list(prefix, "blocks", &self.blocks, f);
    }

    /// # Panics
    /// If the input is not `[N, channels, image_size, image_size]`.
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        let shape = x.shape();
        check_images(
            "ProGanDiscriminator: input",
            &shape,
            self.channels,
            self.image_size,
        );
        let s = self.stage.get();
        let top = s.level;
        let from = |l: usize| self.from_rgb[l].forward(resample(&self.pool[l], x), mode);
        let mut h = from(top);
        if top > 0 {
            h = self.blocks[top].forward(h, mode);
            if s.fading() {
                h = blend(from(top - 1), h, s.alpha);
            }
            for block in self.blocks[1..top].iter().rev() {
                h = block.forward(h, mode);
            }
        }
        let idle = idle(&self.blocks, &self.from_rgb, s);
        let h = self.mbstd(shape[0]).forward(h, mode);
        with_idle(self.blocks[0].forward(h, mode), &idle)
    }

    fn describe(&self) -> String {
        let s = self.stage.get();
        format!(
            "ProGanDiscriminator(at {0}x{0}, alpha {1})",
            s.resolution(),
            s.alpha
        )
    }
}

/// Progressive growing of GANs: a [`ProGanGenerator`] and a [`ProGanDiscriminator`] that
/// grow together with the step the trainer reports.
pub struct ProGan {
    config: ProGanConfig,
    g: ProGanGenerator,
    d: ProGanDiscriminator,
}

impl ProGan {
    /// Builds both players with every block up to the final size, weights `N(0, 1)` under
    /// the equalised learning rate, at the stage of step 0.
    ///
    /// # Errors
    /// If the image size is not a power of two of at least 4 or a size is zero.
    pub fn new(config: ProGanConfig, rng: &mut dyn RngCore) -> Result<Self> {
        config.validate()?;
        let g = ProGanGenerator::new(&config, rng)?;
        let d = ProGanDiscriminator::new(&config, rng)?;
        Ok(ProGan { config, g, d })
    }

    /// The stage both players are at.
    pub fn stage(&self) -> Stage {
        self.g.stage.get()
    }

    /// Puts both players at `stage` (training sets it from the step, [`Gan::set_progress`]).
    ///
    /// # Panics
    /// If its level is beyond the final resolution.
    #[track_caller]
    pub fn set_stage(&self, stage: Stage) {
        assert!(
            stage.level <= self.config.levels(),
            "ProGan: level {} is beyond the final level {}",
            stage.level,
            self.config.levels()
        );
        self.g.stage.set(stage);
        self.d.stage.set(stage);
    }

    /// Real images `[N, C, S, S]` at the final size as the discriminator sees them at
    /// `stage`: average-pooled to its resolution and upsampled back (nearest), and during a
    /// fade-in `alpha x` that plus `(1 - alpha) x` the same at half the resolution, as the
    /// generator's output blends its two newest resolutions (the paper's Figure 2). At the
    /// final resolution, once stable, the images are returned unchanged.
    ///
    /// # Panics
    /// If the images are not `[N, channels, image_size, image_size]`.
    #[track_caller]
    pub fn reals_at(&self, real: Tensor, stage: Stage) -> Tensor {
        let c = &self.config;
        check_images("ProGan: real batch", real.shape(), c.channels, c.image_size);
        if stage.level == c.levels() && !stage.fading() {
            return real;
        }
        let tape = Tape::new();
        let x = tape.constant(real);
        let at = |l: usize| resample(&self.g.upsample[l], resample(&self.d.pool[l], x));
        let new = at(stage.level);
        let out = if stage.fading() {
            blend(at(stage.level - 1), new, stage.alpha)
        } else {
            new
        };
        out.value()
    }
}

impl Gan for ProGan {
    fn generator(&self) -> &dyn Module {
        &self.g
    }

    fn discriminator(&self) -> &dyn Module {
        &self.d
    }

    fn config(&self) -> ModelConfig {
        ModelConfig::ProGan(self.config.clone())
    }

    fn noise(&self, n: usize, rng: &mut dyn RngCore) -> Option<Tensor> {
        Some(Tensor::randn(&[n, self.config.z_dim], 0.0, 1.0, rng))
    }

    fn set_progress(&self, step: u64) {
        self.set_stage(self.config.stage(step));
    }

    fn real_samples(&self, real: Tensor) -> Tensor {
        self.reals_at(real, self.stage())
    }

    fn stage_name(&self) -> Option<String> {
        Some(format!("res-{:03}", self.stage().resolution()))
    }
}
