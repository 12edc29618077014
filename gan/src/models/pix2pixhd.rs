//! pix2pixHD (Wang et al. 2018): translation at high resolution from a coarse-to-fine
//! generator and a multi-scale discriminator, trained with least squares and feature matching.
//!
//! - **Generator.** The global generator (`model.*`): reflection padding, a 7x7 convolution,
//!   `n_downsample_global` strided 3x3 convolutions, `n_blocks_global` residual blocks,
//!   as many transposed 3x3 convolutions back up, and a 7x7 convolution with tanh; instance
//!   norm (no affine transform) and ReLU after every convolution but the last. The local
//!   enhancer (`model1_1.*`, `model1_2.*`) works at twice its resolution: a 7x7 and a strided
//!   3x3 convolution on the full-size input, added to the global generator's last features
//!   (computed on the input average-pooled by 2), then `n_blocks_local` residual blocks, a
//!   transposed convolution and the 7x7 output convolution. The global generator is twice as
//!   wide as the enhancer (`ngf`), as in pix2pixHD's `LocalEnhancer`.
//! - **Coarse to fine.** For the first `global_steps` steps only the global generator trains,
//!   at half resolution: the generator pools its input and outputs the half-size image with
//!   its own last convolution; the targets are pooled alike ([`Gan::real_samples`]). From
//!   then on the enhancer joins and both train together at full resolution (the paper trains
//!   the global network first, then both). The state follows the step count alone
//!   ([`Gan::set_progress`]), so a run resumed across the switch continues bit for bit.
//! - **Discriminator.** `num_d` PatchGANs (`scale{i}_layer{j}.*`) with 4x4 kernels, padding 2
//!   and instance norm, each on the image average-pooled `i` times more than the finest
//!   (`scale{num_d - 1}` judges the full image, as pix2pixHD names them). Its output is every
//!   scale's patch map, flattened and concatenated; [`Gan::d_output_maps`] splits it again
//!   so that each loss averages within a scale and sums over the scales, as pix2pixHD's. It
//!   records every block's output as `scale{i}.{j}` for feature matching.
//! - **Objective.** Least squares (pix2pixHD's `use_lsgan`); the feature-matching term
//!   (`loss_g_feat`, [`crate::objective`]) over every discriminator layer at every scale,
//!   weighted `lambda_feat / 2`: gantry's least-squares loss puts Mao et al.'s ½ on G's part,
//!   pix2pixHD's does not, so halving the feature weight keeps the paper's ratio of the two
//!   (Adam does not see the common factor ½). The VGG perceptual term needs pretrained
//!   ImageNet weights that gantry does not ship; it is left out.
//! - **Initialisation.** pix2pixHD's `weights_init`: every convolution weight `N(0, 0.02)`,
//!   biases as PyTorch's default.

use super::progan::with_idle;
use super::{Batch, Gan, ModelConfig};
use crate::error::{Result, config_error};
use gantry_autodiff::{Tape, Var};
use gantry_nn::{
    AvgPool2d, AvgPool2dConfig, Conv2dConfig, ConvTranspose2dConfig, Features,
    InstanceNorm2dConfig, LeakyReLU, Mode, Module, Param, ParamRole, ReLU, ReflectionPad2d,
    ResnetBlock, Sequential, Tanh, init, join,
};
use gantry_tensor::Tensor;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::cell::Cell;

/// Settings of [`Pix2PixHd`]. [`Pix2PixHdConfig::new`] gives pix2pixHD's architecture at
/// widths a CPU can train.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pix2PixHdConfig {
    /// Side of the output images (128 for edges2emoji128); a multiple of
    /// `2^(n_downsample_global + enhancers)`.
    pub image_size: usize,
    /// Channels of the input `A`.
    pub in_channels: usize,
    /// Channels of the output `B`.
    pub out_channels: usize,
    /// Width of the finest generator: the enhancer's (the global generator's is
    /// `ngf * 2^enhancers`); pix2pixHD's `--ngf` (32 with the enhancer, 64 without).
    pub ngf: usize,
    /// Strided convolutions of the global generator (4 in the paper).
    pub n_downsample_global: usize,
    /// Residual blocks of the global generator (9).
    pub n_blocks_global: usize,
    /// Local enhancers: 1 (the coarse-to-fine generator) or 0 (the global generator alone,
    /// at full resolution).
    pub enhancers: usize,
    /// Residual blocks of the enhancer (3).
    pub n_blocks_local: usize,
    /// Discriminator width (64).
    pub ndf: usize,
    /// Strided layers of each PatchGAN (3).
    pub d_layers: usize,
    /// Discriminators, each on the image pooled once more (2 or 3; the paper's default 2).
    pub num_d: usize,
    /// pix2pixHD's feature-matching weight (10); the term enters G's loss at half of it (see
    /// the module documentation).
    pub lambda_feat: f32,
    /// Steps the global generator trains alone at half resolution before the enhancer
    /// joins (with `enhancers = 1`).
    pub global_steps: u64,
}

impl Pix2PixHdConfig {
    /// RGB to RGB at side `image_size`: one enhancer of width 16 on a global generator of
    /// width 32 with 3 downsamplings and 9 residual blocks, 3 residual blocks in the enhancer,
    /// two 3-layer PatchGANs of width 32, feature weight 10, 1,000 global steps.
    pub fn new(image_size: usize) -> Self {
        Pix2PixHdConfig {
            image_size,
            in_channels: 3,
            out_channels: 3,
            ngf: 16,
            n_downsample_global: 3,
            n_blocks_global: 9,
            enhancers: 1,
            n_blocks_local: 3,
            ndf: 32,
            d_layers: 3,
            num_d: 2,
            lambda_feat: 10.0,
            global_steps: 1000,
        }
    }

    /// The global generator's width.
    pub fn global_width(&self) -> usize {
        self.ngf << self.enhancers
    }

    /// The side the global generator works at.
    pub fn global_size(&self) -> usize {
        self.image_size >> self.enhancers
    }

    /// Whether the enhancer trains at `step` (after the global phase).
    pub fn enhancing_at(&self, step: u64) -> bool {
        self.enhancers > 0 && step >= self.global_steps
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(config_error("pix2pixhd", m));
        if self.enhancers > 1 {
            return bad(format!(
                "enhancers {} must be 0 (the global generator alone) or 1",
                self.enhancers
            ));
        }
        if self.in_channels == 0 || self.out_channels == 0 || self.ngf == 0 || self.ndf == 0 {
            return bad(format!("channels and widths must be positive: {self:?}"));
        }
        if !(1..=3).contains(&self.num_d) {
            return bad(format!("num_d {} must be 1, 2 or 3", self.num_d));
        }
        if self.d_layers == 0 || self.n_downsample_global == 0 {
            return bad("d_layers and n_downsample_global must be at least 1".into());
        }
        let unit = 1usize << (self.n_downsample_global + self.enhancers);
        let smallest = self.global_size() >> self.n_downsample_global;
        if self.image_size == 0 || !self.image_size.is_multiple_of(unit) || smallest < 2 {
            return bad(format!(
                "image size {} must be a multiple of {unit} with at least 2x2 left after the global generator's {} downsamplings{} (try 128 or 64)",
                self.image_size,
                self.n_downsample_global,
                if self.enhancers > 0 {
                    " at half resolution"
                } else {
                    ""
                }
            ));
        }
        if !(self.lambda_feat.is_finite() && self.lambda_feat >= 0.0) {
            return bad(format!(
                "lambda_feat {} must be finite and >= 0",
                self.lambda_feat
            ));
        }
        Ok(())
    }
}

/// pix2pixHD's downsampler: 3x3 average pooling with stride 2 and padding 1, the padding not
/// counted (`count_include_pad=False`), so that a side `s` becomes `ceil(s / 2)`.
fn downsampler() -> AvgPool2d {
    AvgPool2dConfig::new(3)
        .stride(2)
        .padding(1)
        .count_include_pad(false)
        .build()
        .expect("a valid pooling")
}

/// `images` pooled by [`downsampler`] `times` times.
fn pooled(images: &Tensor, times: usize) -> Tensor {
    if times == 0 {
        return images.clone();
    }
    let tape = Tape::new();
    let pool = downsampler();
    let mut x = tape.constant(images.clone());
    for _ in 0..times {
        x = pool.forward(x, Mode::Eval);
    }
    x.value()
}

fn norm(c: usize) -> InstanceNorm2dConfig {
    InstanceNorm2dConfig::new(c)
}

/// The coarse-to-fine generator: pix2pixHD's `GlobalGenerator` (`model.*`, its last three
/// layers the output head) and, with an enhancer, `LocalEnhancer`'s `model1_1.*` and
/// `model1_2.*`.
pub struct Pix2PixHdGenerator {
    global: Sequential,
    local: Option<(Sequential, Sequential)>,
    pool: AvgPool2d,
    enhancing: Cell<bool>,
}

/// The global generator's output head: reflection padding, the 7x7 convolution, tanh.
const HEAD: usize = 3;

impl Pix2PixHdGenerator {
    fn new(c: &Pix2PixHdConfig, rng: &mut dyn RngCore) -> Result<Self> {
        let g = c.global_width();
        let conv = |i, o, k| Conv2dConfig::new(i, o, k);
        let mut global = Sequential::new()
            .add(ReflectionPad2d::new(3))
            .add(conv(c.in_channels, g, 7).build(rng)?)
            .add(norm(g).build()?)
            .add(ReLU);
        for i in 0..c.n_downsample_global {
            let w = g << i;
            global = global
                .add(conv(w, 2 * w, 3).stride(2).padding(1).build(rng)?)
                .add(norm(2 * w).build()?)
                .add(ReLU);
        }
        let deepest = g << c.n_downsample_global;
        for _ in 0..c.n_blocks_global {
            global = global.add(ResnetBlock::new(deepest, rng)?);
        }
        for i in 0..c.n_downsample_global {
            let w = deepest >> i;
            global = global
                .add(up(w, w / 2).build(rng)?)
                .add(norm(w / 2).build()?)
                .add(ReLU);
        }
        let global = global
            .add(ReflectionPad2d::new(3))
            .add(conv(g, c.out_channels, 7).build(rng)?)
            .add(Tanh);
        let local = if c.enhancers == 0 {
            None
        } else {
            let f = c.ngf;
            let down = Sequential::new()
                .add(ReflectionPad2d::new(3))
                .add(conv(c.in_channels, f, 7).build(rng)?)
                .add(norm(f).build()?)
                .add(ReLU)
                .add(conv(f, 2 * f, 3).stride(2).padding(1).build(rng)?)
                .add(norm(2 * f).build()?)
                .add(ReLU);
            let mut upper = Sequential::new();
            for _ in 0..c.n_blocks_local {
                upper = upper.add(ResnetBlock::new(2 * f, rng)?);
            }
            let upper = upper
                .add(up(2 * f, f).build(rng)?)
                .add(norm(f).build()?)
                .add(ReLU)
                .add(ReflectionPad2d::new(3))
                .add(conv(f, c.out_channels, 7).build(rng)?)
                .add(Tanh);
            Some((down, upper))
        };
        Ok(Pix2PixHdGenerator {
            global,
            local,
            pool: downsampler(),
            enhancing: Cell::new(false),
        })
    }

    /// The global generator up to (without) its output head.
    fn global_features<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        let trunk = &self.global.children()[..self.global.len() - HEAD];
        trunk.iter().fold(x, |h, m| m.forward(h, mode))
    }

    fn head<'t>(&self, h: Var<'t>, mode: Mode) -> Var<'t> {
        let head = &self.global.children()[self.global.len() - HEAD..];
        head.iter().fold(h, |h, m| m.forward(h, mode))
    }
}

/// pix2pixHD's upsampling: a transposed 3x3 convolution that doubles the side exactly.
fn up(i: usize, o: usize) -> ConvTranspose2dConfig {
    ConvTranspose2dConfig::new(i, o, 3)
        .stride(2)
        .padding(1)
        .output_padding(1)
}

impl Module for Pix2PixHdGenerator {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        self.global.visit(&join(prefix, "model"), f);
        if let Some((down, upper)) = &self.local {
            down.visit(&join(prefix, "model1_1"), f);
            upper.visit(&join(prefix, "model1_2"), f);
        }
    }

    /// The full-resolution translation once the enhancer trains (or without one); the
    /// half-resolution one of the global generator on the pooled input before.
    fn forward<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        match &self.local {
            None => self.global.forward(x, mode),
            Some((down, upper)) if self.enhancing.get() => {
                let coarse = self.global_features(self.pool.forward(x, mode), mode);
                let y = upper.forward(down.forward(x, mode).add(coarse), mode);
                // The global head is not used now; it gets a gradient of zeros.
                let head = &self.global.children()[self.global.len() - HEAD..];
                let idle: Vec<&dyn Module> = head.iter().map(|m| m.as_ref()).collect();
                with_idle(y, &idle)
            }
            Some((down, upper)) => {
                let y = self.head(self.global_features(self.pool.forward(x, mode), mode), mode);
                with_idle(y, &[down, upper])
            }
        }
    }

    fn describe(&self) -> String {
        format!(
            "Pix2PixHdGenerator(global layers={}, enhancer={}, enhancing={})",
            self.global.len(),
            self.local.is_some(),
            self.enhancing.get()
        )
    }
}

/// pix2pixHD's `MultiscaleDiscriminator` with intermediate features: `num_d` PatchGANs, the
/// `i`-th applied to the input pooled `i` times. See the module documentation for its output.
pub struct MultiscaleDiscriminator {
    /// `nets[k][j]`: block `j` of the network named `scale{k}`.
    nets: Vec<Vec<Sequential>>,
    pool: AvgPool2d,
    layers: usize,
}

impl MultiscaleDiscriminator {
    /// `num_d` PatchGANs on `in_channels` with width `ndf` (at most 512, as pix2pixHD) and
    /// `layers` strided blocks.
    ///
    /// # Errors
    /// If a width is zero.
    pub fn new(
        in_channels: usize,
        ndf: usize,
        layers: usize,
        num_d: usize,
        rng: &mut dyn RngCore,
    ) -> Result<Self> {
        let conv = |i, o, s| Conv2dConfig::new(i, o, 4).stride(s).padding(2);
        let mut nets = Vec::with_capacity(num_d);
        for _ in 0..num_d {
            let mut blocks = vec![
                Sequential::new()
                    .add(conv(in_channels, ndf, 2).build(rng)?)
                    .add(LeakyReLU::new(0.2)),
            ];
            let mut nf = ndf;
            for n in 1..=layers {
                let prev = nf;
                nf = (nf * 2).min(512);
                let stride = if n == layers { 1 } else { 2 };
                blocks.push(
                    Sequential::new()
                        .add(conv(prev, nf, stride).build(rng)?)
                        .add(norm(nf).build()?)
                        .add(LeakyReLU::new(0.2)),
                );
            }
            blocks.push(Sequential::new().add(conv(nf, 1, 1).build(rng)?));
            nets.push(blocks);
        }
        Ok(MultiscaleDiscriminator {
            nets,
            pool: downsampler(),
            layers,
        })
    }

    /// The `(height, width)` of each patch map in the output, in output order, for an input
    /// of `height x width`.
    pub fn output_sizes(&self, height: usize, width: usize) -> Vec<(usize, usize)> {
        let pool = |s: usize| s.div_ceil(2);
        // `layers` strided convolutions (k 4, p 2) take a side s to s/2 + 1 each; the last
        // block and the output convolution are unstrided and add 1 each.
        let patch = |mut s: usize| {
            for _ in 0..self.layers {
                s = s / 2 + 1;
            }
            s + 2
        };
        let (mut h, mut w) = (height, width);
        let mut sizes = Vec::with_capacity(self.nets.len());
        for i in 0..self.nets.len() {
            if i > 0 {
                (h, w) = (pool(h), pool(w));
            }
            sizes.push((patch(h), patch(w)));
        }
        sizes
    }
}

impl Module for MultiscaleDiscriminator {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        for (k, blocks) in self.nets.iter().enumerate() {
            for (j, b) in blocks.iter().enumerate() {
                b.visit(&join(prefix, &format!("scale{k}_layer{j}")), f);
            }
        }
    }

    fn forward<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        self.forward_features(x, mode, &mut Features::discard())
    }

    fn forward_features<'t>(&self, x: Var<'t>, mode: Mode, features: &mut Features<'t>) -> Var<'t> {
        let num_d = self.nets.len();
        let n = x.shape()[0];
        let mut input = x;
        let mut maps = Vec::with_capacity(num_d);
        for i in 0..num_d {
            if i > 0 {
                input = self.pool.forward(input, mode);
            }
            let k = num_d - 1 - i;
            let mut h = input;
            for (j, b) in self.nets[k].iter().enumerate() {
                h = b.forward(h, mode);
                features.push(format!("scale{k}.{j}"), h);
            }
            let p = h.shape()[2] * h.shape()[3];
            maps.push(h.reshape(&[n, p]));
        }
        Var::concat(&maps, 1)
    }

    fn describe(&self) -> String {
        format!(
            "MultiscaleDiscriminator(num_d={}, layers={})",
            self.nets.len(),
            self.layers
        )
    }
}

/// A pix2pixHD pair.
pub struct Pix2PixHd {
    config: Pix2PixHdConfig,
    g: Pix2PixHdGenerator,
    d: MultiscaleDiscriminator,
}

impl Pix2PixHd {
    /// Builds both players with pix2pixHD's initialisation.
    ///
    /// # Errors
    /// If the configuration is invalid (see [`Pix2PixHdConfig`]).
    pub fn new(config: Pix2PixHdConfig, rng: &mut dyn RngCore) -> Result<Self> {
        config.validate()?;
        let c = &config;
        let g = Pix2PixHdGenerator::new(c, rng)?;
        let d = MultiscaleDiscriminator::new(
            c.in_channels + c.out_channels,
            c.ndf,
            c.d_layers,
            c.num_d,
            rng,
        )?;
        for m in [&g as &dyn Module, &d] {
            init::normal_by_role(m, rng, |role| match role {
                ParamRole::ConvWeight => Some((0.0, 0.02)),
                _ => None,
            });
        }
        g.enhancing.set(c.enhancing_at(0));
        Ok(Pix2PixHd { config, g, d })
    }

    /// The multi-scale discriminator.
    pub fn multiscale(&self) -> &MultiscaleDiscriminator {
        &self.d
    }

    fn enhancing(&self) -> bool {
        self.g.enhancing.get()
    }

    /// How many times the full-size images are pooled for the current phase.
    fn coarse_by(&self) -> usize {
        if self.config.enhancers > 0 && !self.enhancing() {
            self.config.enhancers
        } else {
            0
        }
    }
}

impl Gan for Pix2PixHd {
    fn generator(&self) -> &dyn Module {
        &self.g
    }

    fn discriminator(&self) -> &dyn Module {
        &self.d
    }

    fn config(&self) -> ModelConfig {
        ModelConfig::Pix2PixHd(self.config.clone())
    }

    fn noise(&self, _n: usize, _rng: &mut dyn RngCore) -> Option<Tensor> {
        None
    }

    /// `concat(A, x)`, with `A` pooled to `x`'s side during the global phase.
    fn discriminator_input<'t>(&self, x: Var<'t>, batch: &Batch) -> Var<'t> {
        let a = batch.condition.as_ref().expect("pix2pixhd batches carry A");
        let times = (a.shape()[2] / x.shape()[2]).max(1).ilog2() as usize;
        Var::concat(&[x.tape().constant(pooled(a, times)), x], 1)
    }

    fn fake_first(&self) -> bool {
        true
    }

    fn set_progress(&self, step: u64) {
        self.g.enhancing.set(self.config.enhancing_at(step));
    }

    fn real_samples(&self, real: Tensor) -> Tensor {
        pooled(&real, self.coarse_by())
    }

    fn stage_name(&self) -> Option<String> {
        (self.config.enhancers > 0).then(|| {
            let which = if self.enhancing() { "local" } else { "global" };
            let side = self.config.image_size >> self.coarse_by();
            format!("{which}-{side:03}")
        })
    }

    fn d_output_maps<'t>(&self, logits: Var<'t>, samples: &[usize]) -> Vec<Var<'t>> {
        let mut start = 0;
        self.d
            .output_sizes(samples[2], samples[3])
            .into_iter()
            .map(|(h, w)| {
                let map = logits.slice_axis(1, start, start + h * w);
                start += h * w;
                map
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_nn::{forward_with_features, named_params};
    use rand::SeedableRng;

    fn tiny(image_size: usize) -> Pix2PixHdConfig {
        Pix2PixHdConfig {
            ngf: 2,
            n_downsample_global: 2,
            n_blocks_global: 2,
            n_blocks_local: 1,
            ndf: 4,
            global_steps: 3,
            ..Pix2PixHdConfig::new(image_size)
        }
    }

    fn rng() -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(5)
    }

    /// pix2pixHD's state-dict names: the global generator as `model.*` (its head included),
    /// the enhancer as `model1_1.*` and `model1_2.*`, the discriminators as
    /// `scale{k}_layer{j}.*`.
    #[test]
    fn parameters_are_named_as_pix2pixhds() {
        let gan = Pix2PixHd::new(tiny(32), &mut rng()).unwrap();
        let g: Vec<String> = named_params(gan.generator())
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        // pad, conv, IN, ReLU, 2 x (conv, IN, ReLU), 2 blocks, 2 x (convT, IN, ReLU), pad,
        // conv, tanh: the head's convolution is model.19.
        for name in [
            "model.1.weight",
            "model.4.bias",
            "model.10.conv_block.5.weight",
            "model.12.weight",
            "model.19.weight",
            "model1_1.1.weight",
            "model1_1.4.weight",
            "model1_2.0.conv_block.1.weight",
            "model1_2.1.weight",
            "model1_2.5.bias",
        ] {
            assert!(g.iter().any(|n| n == name), "no {name} in {g:?}");
        }
        assert_eq!(g.len(), 2 * (3 + 2 * 2 + 2 + 1) + 2 * (2 + 2 + 1 + 1));
        let d: Vec<String> = named_params(gan.discriminator())
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(d.len(), 2 * 5 * 2);
        assert_eq!(d[0], "scale0_layer0.0.weight");
        assert_eq!(d[19], "scale1_layer4.0.bias");
    }

    /// Coarse to fine: half-size translations from the pooled input until `global_steps`,
    /// full size after; targets and D's condition follow.
    #[test]
    fn the_global_phase_works_at_half_size_and_the_enhancer_at_full() {
        let gan = Pix2PixHd::new(tiny(32), &mut rng()).unwrap();
        let a = Tensor::randn(&[2, 3, 32, 32], 0.0, 1.0, &mut rng());
        let tape = Tape::new();
        let forward = || {
            gan.generator()
                .forward(tape.constant(a.clone()), Mode::Train)
        };
        for (step, side, stage) in [(0, 16, "global-016"), (2, 16, "global-016")] {
            gan.set_progress(step);
            assert_eq!(forward().shape(), [2, 3, side, side]);
            assert_eq!(gan.real_samples(a.clone()).shape(), [2, 3, side, side]);
            assert_eq!(gan.stage_name().as_deref(), Some(stage));
        }
        // The global phase is the global generator on the pooled input, head included.
        gan.set_progress(0);
        let manual = gan
            .g
            .global
            .forward(tape.constant(pooled(&a, 1)), Mode::Train);
        assert_eq!(forward().value().to_vec(), manual.value().to_vec());
        gan.set_progress(3);
        assert_eq!(forward().shape(), [2, 3, 32, 32]);
        assert_eq!(gan.real_samples(a.clone()).shape(), [2, 3, 32, 32]);
        assert_eq!(gan.stage_name().as_deref(), Some("local-032"));
        let batch = Batch {
            condition: Some(a.clone()),
            ..Batch::new(a.clone())
        };
        let half = tape.constant(Tensor::zeros(&[2, 3, 16, 16]));
        assert_eq!(
            gan.discriminator_input(half, &batch).shape(),
            [2, 6, 16, 16]
        );
        // Without an enhancer the global generator works at full size from the start.
        let whole = Pix2PixHd::new(
            Pix2PixHdConfig {
                enhancers: 0,
                ..tiny(32)
            },
            &mut rng(),
        )
        .unwrap();
        let y = whole
            .generator()
            .forward(tape.constant(a.clone()), Mode::Train);
        assert_eq!(y.shape(), [2, 3, 32, 32]);
        assert_eq!(whole.stage_name(), None);
    }

    /// Every parameter gets a gradient in both phases (the unused ones zeros), so the
    /// optimizers need no special case.
    #[test]
    fn every_parameter_has_a_gradient_in_both_phases() {
        let gan = Pix2PixHd::new(tiny(32), &mut rng()).unwrap();
        let a = Tensor::randn(&[1, 3, 32, 32], 0.0, 1.0, &mut rng());
        for (step, idle) in [(0, "model1_1.1.weight"), (3, "model.19.weight")] {
            gan.set_progress(step);
            let tape = Tape::new();
            let y = gan
                .generator()
                .forward(tape.constant(a.clone()), Mode::Train);
            let grads = y.mul(y).mean().backward();
            for (name, p) in named_params(gan.generator()) {
                let g = grads
                    .get_key(p.id().0)
                    .unwrap_or_else(|| panic!("step {step}: no gradient for {name}"));
                if name == idle {
                    assert!(g.to_vec().iter().all(|&v| v == 0.0), "{name} is idle");
                }
            }
        }
    }

    /// The multi-scale discriminator's output is its scales' patch maps, finest first, each
    /// of the size `output_sizes` gives; its features are every block's output by scale, equal
    /// to a manual forward through the named networks on the pooled inputs.
    #[test]
    fn the_multiscale_features_match_a_manual_forward() {
        let d = MultiscaleDiscriminator::new(6, 4, 3, 3, &mut rng()).unwrap();
        let x = Tensor::randn(&[2, 6, 40, 36], 0.0, 1.0, &mut rng());
        let tape = Tape::new();
        let (y, features) = forward_with_features(&d, tape.constant(x.clone()), Mode::Train);
        let sizes = d.output_sizes(40, 36);
        let total: usize = sizes.iter().map(|(h, w)| h * w).sum();
        assert_eq!(y.shape(), [2, total]);
        assert_eq!(features.len(), 3 * 5);
        let mut input = tape.constant(x);
        let mut start = 0;
        for (i, (h, w)) in sizes.into_iter().enumerate() {
            if i > 0 {
                input = downsampler().forward(input, Mode::Train);
            }
            let k = 2 - i;
            let mut out = input;
            for (j, block) in d.nets[k].iter().enumerate() {
                out = block.forward(out, Mode::Train);
                let f = features.get(&format!("scale{k}.{j}")).unwrap();
                assert_eq!(f.value().to_vec(), out.value().to_vec(), "scale{k}.{j}");
            }
            assert_eq!(out.shape(), [2, 1, h, w]);
            let part = y.value().slice_axis(1, start, start + h * w);
            assert_eq!(part.to_vec(), out.value().to_vec());
            start += h * w;
        }
    }

    /// The objective averages each loss within a scale and sums over the scales (pix2pixHD's
    /// `GANLoss` on a list), whatever the number of patches of each.
    #[test]
    fn losses_sum_over_scales_of_per_scale_means() {
        use crate::objective::{DContext, ObjectiveConfig};
        let gan = Pix2PixHd::new(tiny(32), &mut rng()).unwrap();
        gan.set_progress(3);
        let a = Tensor::randn(&[2, 3, 32, 32], 0.0, 1.0, &mut rng());
        let b = Tensor::randn(&[2, 3, 32, 32], 0.0, 1.0, &mut rng());
        let batch = Batch {
            condition: Some(a),
            ..Batch::new(b.clone())
        };
        let tape = Tape::new();
        let judge = |x: &Tensor| {
            gan.discriminator().forward(
                gan.discriminator_input(tape.constant(x.clone()), &batch),
                Mode::Train,
            )
        };
        let (real_logits, fake_logits) = (judge(&b), judge(&b.map(|v| -v)));
        let objective = ObjectiveConfig {
            loss: "lsgan".into(),
            ..ObjectiveConfig::default()
        }
        .build()
        .unwrap();
        let parts = objective
            .discriminator(&DContext {
                gan: &gan,
                batch: &batch,
                tape: &tape,
                real: b.clone(),
                fake: b.clone(),
                real_logits,
                fake_logits,
                step: 1,
            })
            .unwrap();
        let values: std::collections::HashMap<String, f32> =
            parts.values(1.0).into_iter().collect();
        let maps = gan.d_output_maps(real_logits, b.shape());
        assert_eq!(maps.len(), 2);
        let want: f32 = maps
            .iter()
            .map(|m| {
                let v = m.value().to_vec();
                0.5 * v.iter().map(|x| (x - 1.0) * (x - 1.0)).sum::<f32>() / v.len() as f32
            })
            .sum();
        assert!((values["loss_d_real"] - want).abs() < 1e-5 * want.max(1.0));
        // One map would weigh the finest scale's patches by their number: not the same.
        let flat = real_logits.value().to_vec();
        let pooled_mean =
            0.5 * flat.iter().map(|x| (x - 1.0) * (x - 1.0)).sum::<f32>() / flat.len() as f32;
        assert!((values["loss_d_real"] - pooled_mean).abs() > 1e-3);
    }

    #[test]
    fn nonsense_settings_are_refused() {
        let cases = [
            (
                Pix2PixHdConfig {
                    enhancers: 2,
                    ..tiny(32)
                },
                "enhancers",
            ),
            (tiny(36), "multiple of 8"),
            (tiny(8), "multiple of 8"),
            (
                Pix2PixHdConfig {
                    num_d: 4,
                    ..tiny(32)
                },
                "num_d",
            ),
            (Pix2PixHdConfig { ngf: 0, ..tiny(32) }, "positive"),
            (
                Pix2PixHdConfig {
                    lambda_feat: f32::NAN,
                    ..tiny(32)
                },
                "lambda_feat",
            ),
        ];
        for (config, expected) in cases {
            let err = Pix2PixHd::new(config.clone(), &mut rng())
                .err()
                .unwrap_or_else(|| panic!("{config:?} was accepted"))
                .to_string();
            assert!(err.contains(expected), "{err}");
        }
    }
}
