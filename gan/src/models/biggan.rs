//! A small class-conditional BigGAN (Brock et al. 2019): residual generator blocks whose
//! conditional batch norms read a shared class embedding beside a chunk of the latent
//! ("hierarchical z"), an optional self-attention block, a residual discriminator with a
//! projection head (Miyato and Koyama 2018), spectral norm on every layer of both players,
//! orthogonal initialisation, and the hinge loss with two discriminator steps per generator
//! step ([`super::Recipe::biggan`]).
//!
//! ```text
//! G: [z | one_hot(y)] -> z_0 .. z_B (chunks of `z_chunk`), s = shared(y)
//!    linear(z_0) -> [N, 2^B ch, 4, 4]
//!    B x ResBlockUp(cond = [s | z_i])  (x2 each; SelfAttention after the block that reaches
//!                                       `attention`, if set)
//!    BatchNorm ReLU conv3x3 tanh        -> [N, C, S, S]           S = 4 * 2^B
//! D: [x | label planes] -> x, one_hot(y)
//!    ResBlockDown x B (halving; the first without pre-activation), one more without halving
//!    (SelfAttention after the block that reaches `attention`, if set)
//!    ReLU, ProjectionHead: linear(sum_hw h) + <embed(y), sum_hw h>
//! ```
//!
//! The generator and discriminator stay one-input [`Module`]s: G reads the class as a one-hot
//! block after z ([`Gan::latent_input`]), D as constant planes after the image channels
//! ([`Gan::discriminator_input`]), as the label-conditional DCGAN does.

use super::cdcgan::label_maps;
use super::{Batch, Gan, ModelConfig};
use crate::error::{Result, config_error};
use gantry_autodiff::Var;
use gantry_nn::reparam::{SpectralNorm, apply, layer_weights};
use gantry_nn::{
    BatchNorm, BatchNormConfig, Conv2d, Conv2dConfig, Embedding, Linear, LinearConfig, Mode,
    Module, Param, ProjectionHead, ResBlockDown, ResBlockUp, SelfAttention, init, join,
};
use gantry_tensor::Tensor;
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// Settings of a [`BigGan`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BigGanConfig {
    /// Image side: a power of two from 16 to 256.
    pub image_size: usize,
    /// Image channels.
    pub channels: usize,
    /// Classes.
    pub classes: usize,
    /// Latent values per chunk; G reads one chunk in its first layer and one in each block.
    pub z_chunk: usize,
    /// Base width `ch`: G's blocks go from `2^B ch` down to `ch` channels, D's up from `ch`.
    pub ch: usize,
    /// Size of the shared class embedding.
    pub shared_dim: usize,
    /// The resolution (8 to half the image side) at which a self-attention block runs in both
    /// players, if any.
    pub attention: Option<usize>,
}

impl BigGanConfig {
    /// A BigGAN for `channels`-channel images of side `image_size` in `classes` classes:
    /// `ch` 16, chunks of 20, a shared embedding of 64, no attention.
    pub fn new(image_size: usize, channels: usize, classes: usize) -> Self {
        BigGanConfig {
            image_size,
            channels,
            classes,
            z_chunk: 20,
            ch: 16,
            shared_dim: 64,
            attention: None,
        }
    }

    /// Generator blocks: one per doubling from 4x4.
    pub fn blocks(&self) -> usize {
        self.image_size.trailing_zeros() as usize - 2
    }

    /// The latent size: one chunk per block and one for the first layer.
    pub fn nz(&self) -> usize {
        self.z_chunk * (self.blocks() + 1)
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(config_error("biggan", m));
        if !self.image_size.is_power_of_two() || !(16..=256).contains(&self.image_size) {
            return bad(format!(
                "image size {} is not a power of two in 16..=256",
                self.image_size
            ));
        }
        if self.channels == 0 || self.z_chunk == 0 || self.ch == 0 || self.shared_dim == 0 {
            return bad(format!("channels and sizes must be positive: {self:?}"));
        }
        if self.classes < 2 {
            return bad(format!(
                "a class-conditional model needs at least 2 classes, not {}",
                self.classes
            ));
        }
        match self.attention {
            Some(r) if !r.is_power_of_two() || !(8..=self.image_size / 2).contains(&r) => {
                bad(format!(
                    "attention at {r}x{r}: both players' blocks pass through the powers of two from 8 to {}",
                    self.image_size / 2
                ))
            }
            Some(_) if !self.ch.is_multiple_of(8) => bad(format!(
                "attention needs a base width ch that is a multiple of 8, not {}",
                self.ch
            )),
            _ => Ok(()),
        }
    }
}

/// BigGAN's generator.
pub struct BigGanGenerator {
    config: BigGanConfig,
    shared: Embedding,
    linear: Linear,
    blocks: Vec<ResBlockUp>,
    attention: Option<(usize, SelfAttention)>,
    bn: BatchNorm,
    conv: Conv2d,
}

impl BigGanGenerator {
    fn new(config: &BigGanConfig, rng: &mut dyn RngCore) -> Result<Self> {
        let b = config.blocks();
        let width = |i: usize| config.ch << (b - i);
        let cond = config.shared_dim + config.z_chunk;
        let blocks = (0..b)
            .map(|i| ResBlockUp::new(width(i), width(i + 1), cond, rng))
            .collect::<gantry_nn::Result<Vec<_>>>()?;
        let attention = match config.attention {
            Some(r) => {
                // The block whose output has side r: 8 after block 0.
                let i = r.trailing_zeros() as usize - 3;
                Some((i, SelfAttention::new(width(i + 1), rng)?))
            }
            None => None,
        };
        Ok(BigGanGenerator {
            config: config.clone(),
            shared: Embedding::new(config.classes, config.shared_dim, rng),
            linear: LinearConfig::new(config.z_chunk, width(0) * 16).build(rng)?,
            blocks,
            attention,
            bn: BatchNormConfig::new(config.ch).build()?,
            conv: Conv2dConfig::new(config.ch, config.channels, 3)
                .padding(1)
                .build(rng)?,
        })
    }
}

impl Module for BigGanGenerator {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        self.shared.visit(&join(prefix, "shared"), f);
        self.linear.visit(&join(prefix, "linear"), f);
        for (i, block) in self.blocks.iter().enumerate() {
            block.visit(&join(prefix, &format!("blocks.{i}")), f);
        }
        if let Some((_, a)) = &self.attention {
            a.visit(&join(prefix, "attention"), f);
        }
        self.bn.visit(&join(prefix, "bn"), f);
        self.conv.visit(&join(prefix, "conv"), f);
    }

    /// `x` is `[z | one_hot(y)]`, `[N, nz + classes]`.
    fn forward<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        let c = &self.config;
        let (n, nz) = (x.shape()[0], c.nz());
        assert_eq!(
            x.shape()[1],
            nz + c.classes,
            "BigGanGenerator: input {:?} is not [N, nz {nz} + classes {}]",
            x.shape(),
            c.classes
        );
        let shared = self
            .shared
            .forward(x.slice_axis(1, nz, nz + c.classes), mode);
        let chunk = |i: usize| x.slice_axis(1, i * c.z_chunk, (i + 1) * c.z_chunk);
        let mut h = self
            .linear
            .forward(chunk(0), mode)
            .reshape(&[n, c.ch << c.blocks(), 4, 4]);
        for (i, block) in self.blocks.iter().enumerate() {
            let cond = Var::concat(&[shared, chunk(i + 1)], 1);
            h = block.forward_cond(h, cond, mode);
            if let Some((at, a)) = &self.attention
                && *at == i
            {
                h = a.forward(h, mode);
            }
        }
        self.conv
            .forward(self.bn.forward(h, mode).relu(), mode)
            .tanh()
    }

    fn describe(&self) -> String {
        format!("BigGanGenerator({:?})", self.config)
    }
}

/// BigGAN's discriminator with its projection head.
pub struct BigGanDiscriminator {
    config: BigGanConfig,
    blocks: Vec<ResBlockDown>,
    attention: Option<(usize, SelfAttention)>,
    head: ProjectionHead,
}

impl BigGanDiscriminator {
    fn new(config: &BigGanConfig, rng: &mut dyn RngCore) -> Result<Self> {
        let b = config.blocks();
        // Block i takes width(i) to width(i + 1); the image comes in first.
        let width = |i: usize| {
            if i == 0 {
                config.channels
            } else {
                config.ch << (i - 1).min(b)
            }
        };
        let blocks = (0..=b)
            .map(|i| ResBlockDown::new(width(i), width(i + 1), i > 0, i < b, rng))
            .collect::<gantry_nn::Result<Vec<_>>>()?;
        let attention = match config.attention {
            Some(r) => {
                // The block whose output has side r: S/2 after block 0.
                let i = (config.image_size / r).trailing_zeros() as usize - 1;
                Some((i, SelfAttention::new(width(i + 1), rng)?))
            }
            None => None,
        };
        Ok(BigGanDiscriminator {
            config: config.clone(),
            blocks,
            attention,
            head: ProjectionHead::new(width(b + 1), config.classes, rng)?,
        })
    }
}

impl Module for BigGanDiscriminator {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        for (i, block) in self.blocks.iter().enumerate() {
            block.visit(&join(prefix, &format!("blocks.{i}")), f);
        }
        if let Some((_, a)) = &self.attention {
            a.visit(&join(prefix, "attention"), f);
        }
        self.head.visit(&join(prefix, "head"), f);
    }

    /// `x` is the image with one constant plane per class after its channels.
    fn forward<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        let c = &self.config;
        let s = x.shape();
        assert_eq!(
            s[1],
            c.channels + c.classes,
            "BigGanDiscriminator: input {s:?} is not [N, channels {} + classes {}, H, W]",
            c.channels,
            c.classes
        );
        let one_hot = x
            .slice_axis(1, c.channels, c.channels + c.classes)
            .slice_axis(2, 0, 1)
            .slice_axis(3, 0, 1)
            .reshape(&[s[0], c.classes]);
        let mut h = x.slice_axis(1, 0, c.channels);
        for (i, block) in self.blocks.iter().enumerate() {
            h = block.forward(h, mode);
            if let Some((at, a)) = &self.attention
                && *at == i
            {
                h = a.forward(h, mode);
            }
        }
        self.head.forward_cond(h.relu(), one_hot, mode)
    }

    fn describe(&self) -> String {
        format!("BigGanDiscriminator({:?})", self.config)
    }
}

/// A class-conditional BigGAN.
pub struct BigGan {
    config: BigGanConfig,
    g: BigGanGenerator,
    d: BigGanDiscriminator,
}

impl BigGan {
    /// Builds both players: orthogonal weights, then spectral norm on every linear,
    /// convolution and embedding weight (BigGAN's `G_ortho`/`D_ortho` and `SN` layers).
    ///
    /// # Errors
    /// If the configuration is invalid.
    pub fn new(config: BigGanConfig, rng: &mut dyn RngCore) -> Result<Self> {
        config.validate()?;
        let g = BigGanGenerator::new(&config, rng)?;
        let d = BigGanDiscriminator::new(&config, rng)?;
        for player in [&g as &dyn Module, &d] {
            init::orthogonal_weights(player, 1.0, rng);
            apply(player, layer_weights, |p| {
                SpectralNorm::default().attach(p, rng)
            })?;
        }
        Ok(BigGan { config, g, d })
    }

    #[track_caller]
    fn labels<'a>(&self, labels: Option<&'a [usize]>, n: usize) -> &'a [usize] {
        let labels = labels.expect("biggan is label-conditional: labels are needed");
        assert_eq!(
            labels.len(),
            n,
            "biggan: {} labels for {n} samples",
            labels.len()
        );
        labels
    }
}

impl Gan for BigGan {
    fn generator(&self) -> &dyn Module {
        &self.g
    }

    fn discriminator(&self) -> &dyn Module {
        &self.d
    }

    fn config(&self) -> ModelConfig {
        ModelConfig::BigGan(self.config.clone())
    }

    fn noise(&self, n: usize, rng: &mut dyn RngCore) -> Option<Tensor> {
        Some(Tensor::randn(&[n, self.config.nz()], 0.0, 1.0, rng))
    }

    fn num_classes(&self) -> Option<usize> {
        Some(self.config.classes)
    }

    #[track_caller]
    fn latent_input(&self, z: Tensor, labels: Option<&[usize]>) -> Tensor {
        let n = z.shape()[0];
        let one_hot = Embedding::one_hot(self.labels(labels, n), self.config.classes);
        Tensor::concat(1, &[&z, &one_hot])
    }

    /// The image with one constant plane per class (1 on the batch's label): a fake is judged
    /// with the labels it was drawn for, which are the real batch's.
    #[track_caller]
    fn discriminator_input<'t>(&self, x: Var<'t>, batch: &Batch) -> Var<'t> {
        let s = x.shape();
        let labels = self.labels(batch.labels.as_deref(), s[0]);
        let maps = label_maps(labels, self.config.classes, s[2], s[3]);
        Var::concat(&[x, x.tape().constant(maps)], 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_autodiff::Tape;
    use gantry_nn::{ParamKind, named_params};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn tiny(attention: Option<usize>) -> BigGan {
        let config = BigGanConfig {
            ch: 8,
            z_chunk: 3,
            shared_dim: 5,
            attention,
            ..BigGanConfig::new(16, 3, 4)
        };
        BigGan::new(config, &mut ChaCha8Rng::seed_from_u64(0)).unwrap()
    }

    fn draw(gan: &BigGan, labels: &[usize], seed: u64) -> Tensor {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let z = gan.noise(labels.len(), &mut rng).unwrap();
        let tape = Tape::new();
        let x = tape.constant(gan.latent_input(z, Some(labels)));
        gan.generator().forward(x, Mode::Eval).value()
    }

    #[test]
    fn shapes_names_and_spectral_norm_everywhere() {
        let gan = tiny(Some(8));
        assert_eq!((gan.config.blocks(), gan.config.nz()), (2, 9));
        let img = draw(&gan, &[0, 3], 1);
        assert_eq!(img.shape(), &[2, 3, 16, 16]);
        assert!(img.to_vec().iter().all(|v| v.abs() <= 1.0));
        let g: Vec<String> = named_params(gan.generator())
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        for name in [
            "shared.weight_orig",
            "linear.weight_orig",
            "blocks.0.bn1.gain.weight_orig",
            "blocks.1.conv2.weight_orig",
            "attention.theta.weight_orig",
            "conv.weight_orig",
            "bn.running_mean",
        ] {
            assert!(g.iter().any(|n| n == name), "{name} not in {g:?}");
        }
        // Every layer weight is spectrally normalised; the batch norm's scale is not a layer
        // weight.
        let plain: Vec<&String> = g.iter().filter(|n| n.ends_with(".weight")).collect();
        assert_eq!(plain, ["bn.weight"], "unnormalised weights");
        let d: Vec<String> = named_params(gan.discriminator())
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        for name in [
            "blocks.0.conv1.weight_orig",
            "head.embed.weight_orig",
            "head.linear.weight_orig",
        ] {
            assert!(d.iter().any(|n| n == name), "{name} not in {d:?}");
        }
        assert!(
            !d.iter().any(|n| n.contains("running")),
            "no batch norm in D: {d:?}"
        );
    }

    #[test]
    fn the_class_changes_the_image_and_the_score() {
        let gan = tiny(None);
        let (a, b) = (draw(&gan, &[0], 7), draw(&gan, &[2], 7));
        assert_ne!(a.to_vec(), b.to_vec(), "same z, another class");
        assert_eq!(a.to_vec(), draw(&gan, &[0], 7).to_vec(), "deterministic");
        let tape = Tape::new();
        let x = tape.constant(a.clone());
        let score = |label: usize| {
            let batch = Batch {
                real: a.clone(),
                condition: None,
                labels: Some(vec![label]),
            };
            gan.discriminator()
                .forward(gan.discriminator_input(x, &batch), Mode::Eval)
                .value()
        };
        let (s0, s1) = (score(0), score(1));
        assert_eq!(s0.shape(), &[1, 1]);
        assert_ne!(s0.to_vec(), s1.to_vec(), "the projection reads the label");
    }

    /// Trainable values counted by hand for `tiny(None)`: ch 8, chunks of 3, shared 5, 4
    /// classes, 16x16x3 (two blocks; G 32 -> 16 -> 8 channels, D 3 -> 8 -> 16 -> 32).
    #[test]
    fn parameter_counts_match_a_hand_count() {
        let gan = tiny(None);
        let count = |m: &dyn Module| -> usize {
            named_params(m)
                .iter()
                .filter(|(_, p)| p.kind() == ParamKind::Trainable)
                .map(|(_, p)| p.len())
                .sum()
        };
        let conv = |i: usize, o: usize, k: usize| o * i * k * k + o;
        // A conditional batch norm: gain and bias, each a linear from the condition (8).
        let cbn = |c: usize| 2 * (8 * c + c);
        let g = 4 * 5 // shared embedding
            + (3 * 512 + 512) // linear: chunk 0 -> 32 x 4 x 4
            + conv(32, 16, 3) + conv(16, 16, 3) + conv(32, 16, 1) + cbn(32) + cbn(16)
            + conv(16, 8, 3) + conv(8, 8, 3) + conv(16, 8, 1) + cbn(16) + cbn(8)
            + 2 * 8 // batch norm
            + conv(8, 3, 3);
        let d = conv(3, 8, 3) + conv(8, 8, 3) + conv(3, 8, 1)
            + conv(8, 16, 3) + conv(16, 16, 3) + conv(8, 16, 1)
            + conv(16, 32, 3) + conv(32, 32, 3) + conv(16, 32, 1)
            + (32 + 1) // head.linear
            + 4 * 32; // head.embed
        assert_eq!((g, d), (12951, 19065));
        assert_eq!(count(gan.generator()), g);
        assert_eq!(count(gan.discriminator()), d);
    }

    /// D's score is `linear(p) + <embed(y), p>` for the pooled features `p`: affine in the
    /// one-hot label, and the label's part is the projection of `p` on the class embedding.
    #[test]
    fn the_score_projects_the_class_embedding_on_the_pooled_features() {
        let gan = tiny(None);
        let img = draw(&gan, &[1], 3);
        let tape = Tape::new();
        let classes = gan.config.classes;
        // The image with a plane of `w[k]` for each class k.
        let score = |w: &[f32]| {
            let planes: Vec<f32> = w.iter().flat_map(|&v| [v; 16 * 16]).collect();
            let planes = Tensor::from_vec(&[1, classes, 16, 16], planes);
            let x = tape.constant(Tensor::concat(1, &[&img, &planes]));
            gan.discriminator().forward(x, Mode::Eval).value().to_vec()[0]
        };
        let mut h = tape.constant(img.clone());
        for block in &gan.d.blocks {
            h = block.forward(h, Mode::Eval);
        }
        let pooled = h.relu().sum_axes(&[2, 3], false).value().to_vec();
        let all = Embedding::one_hot(&(0..classes).collect::<Vec<_>>(), classes);
        let embed = gan
            .d
            .head
            .embed
            .forward(tape.constant(all), Mode::Eval)
            .value();
        let c = pooled.len();
        let unlabelled = score(&[0.0; 4]);
        let mut one_hot_scores = vec![];
        for y in 0..classes {
            let mut w = [0.0; 4];
            w[y] = 1.0;
            let s = score(&w);
            let row = &embed.to_vec()[y * c..(y + 1) * c];
            let projection: f32 = row.iter().zip(&pooled).map(|(e, p)| e * p).sum();
            let tol = 1e-4 * (1.0 + projection.abs());
            assert!(
                (s - unlabelled - projection).abs() < tol,
                "class {y}: score {s}, without a label {unlabelled}, <embed, pooled> {projection}"
            );
            one_hot_scores.push(s);
        }
        let half = score(&[0.5, 0.5, 0.0, 0.0]);
        let mean = (one_hot_scores[0] + one_hot_scores[1]) / 2.0;
        assert!(
            (half - mean).abs() < 1e-4 * (1.0 + mean.abs()),
            "{half} {mean}"
        );
        assert_ne!(one_hot_scores[0], one_hot_scores[1]);
    }

    #[test]
    fn bad_settings_are_refused() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for (config, want) in [
            (BigGanConfig::new(24, 3, 4), "power of two"),
            (BigGanConfig::new(16, 3, 1), "at least 2 classes"),
            (
                BigGanConfig {
                    attention: Some(32),
                    ..BigGanConfig::new(16, 3, 4)
                },
                "attention at 32x32",
            ),
            (
                BigGanConfig {
                    attention: Some(8),
                    ch: 12,
                    ..BigGanConfig::new(16, 3, 4)
                },
                "multiple of 8",
            ),
        ] {
            let err = BigGan::new(config, &mut rng).err().unwrap().to_string();
            assert!(err.contains(want), "{err}");
        }
    }
}
