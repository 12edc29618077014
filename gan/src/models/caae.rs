//! The conditional adversarial autoencoder (CAAE; Zhang, Song and Qi, "Age Progression/
//! Regression by Conditional Adversarial Autoencoder", CVPR 2017): a face is encoded to a
//! code `z` that keeps who it is, and decoded together with an age label into that face at
//! that age.
//!
//! - **Encoder** `E` (`autoencoder.encoder.*`): 4x4 stride-2 convolutions with ReLU, widths
//!   `ngf, 2 ngf, 4 ngf, ...` down to an 8x8 map, then a linear layer to `z_dim` with tanh,
//!   so codes lie in `[-1, 1]^z_dim` like the uniform prior they are pushed towards.
//! - **Generator** `G` (`autoencoder.decoder.*`): a linear layer from `[z | age]` (the age
//!   one-hot in `{-1, 1}`, repeated so that it is about as long as `z`, as the reference
//!   code tiles it) to an 8x8 map of `ngf * 2^layers` channels with ReLU, 4x4 stride-2
//!   transposed convolutions halving the channels with ReLU up to the image size, then two
//!   stride-1 3x3 convolutions (to `ngf / 2` channels with ReLU, then to the image with
//!   tanh).
//! - **Image discriminator** `D_img` (`discriminator.image.*`): 4x4 stride-2 convolutions of
//!   widths `ndf, 2 ndf, 4 ndf, 8 ndf`; the age planes (`{-1, 1}`) join after the first one;
//!   batch norm and ReLU after every other convolution; a linear layer to 1024 with leaky
//!   ReLU and one to a logit.
//! - **Code discriminator** `D_z` (`discriminator.code.*`): linear layers 64-32-16 with batch
//!   norm and ReLU, and one to a logit, judging codes against draws from `U(-1, 1)`.
//!
//! How it fits the trainer's two players: the generator module is the whole autoencoder,
//! whose one input is the image with its target age as extra constant planes
//! ([`Caae::age_input`]; [`Gan::generator_input`] builds it from a batch with the batch's own
//! ages, so that the fake batch is the reconstruction `G(E(x), age(x))`). The discriminator
//! module holds both discriminators (its `visit` covers both, so D's optimizer trains both);
//! its forward is `D_img`. The code adversary is reached through [`Gan::latent_adversary`]
//! by the objective's `loss_d_z` and `loss_g_z` terms; reconstruction is `loss_g_l1` and
//! smoothness `loss_g_tv` ([`crate::objective::model_terms`] lists all four with this
//! config's weights).
//!
//! Departures from the reference code (TensorFlow, `FaceAging.py`), for a CPU and tiny data:
//! 4x4 kernels instead of 5x5 (exact halving and doubling with padding 1, as DCGAN's), an 8x8
//! map between the convolutions and the code instead of 4x4, narrower networks (`ngf`,
//! `ndf`), no batch norm on D_img's first convolution (DCGAN's practice), no gender label, 3x3
//! stride-1 output convolutions, and the loss weights of [`CaaeConfig::new`], which says why.

use super::{Batch, Gan, LatentAdversary, ModelConfig};
use crate::error::{Result, config_error};
use gantry_autodiff::Var;
use gantry_nn::{
    BatchNormConfig, Conv2dConfig, ConvTranspose2dConfig, Flatten, LeakyReLU, LinearConfig, Mode,
    Module, Param, ReLU, Reshape, Sequential, Tanh, init, join,
};
use gantry_tensor::Tensor;
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// The side of the map between the convolutions and the code (the reference code goes down
/// to 4x4; one layer fewer is cheaper on a CPU and keeps more of where things are).
const MAP: usize = 8;

/// Settings of a [`Caae`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaaeConfig {
    /// Image side: a power of two from 16 to 256 (64 for `emoji-faces`, 128 for
    /// `emoji-faces128`).
    pub image_size: usize,
    /// Image channels.
    pub channels: usize,
    /// Number of age groups (4 for the emoji faces: baby, child, adult, older).
    pub ages: usize,
    /// Length of the code `z` (the paper's 50).
    pub z_dim: usize,
    /// The encoder's first width, doubled per layer; the generator mirrors it.
    pub ngf: usize,
    /// D_img's first width, doubled per layer.
    pub ndf: usize,
    /// Weight of the reconstruction `mean |G(E(x), age(x)) - x|` in G's loss.
    pub lambda_rec: f32,
    /// Weight of the total variation of G's output in G's loss.
    pub lambda_tv: f32,
    /// Weight of E fooling D_z in G's loss (D_z's own loss has weight 1).
    pub lambda_z: f32,
}

impl CaaeConfig {
    /// The 64x64 (or `image_size`) model for RGB faces of 4 age groups: `z_dim` 50 as the
    /// paper, widths `ngf` 16 and `ndf` 16 (narrow enough for a CPU: a step of batch 10 at
    /// 64x64 is about 0.4 s of one core), and the loss weights
    /// `lambda_rec` 100, `lambda_tv` 1, `lambda_z` 1 (G's image adversary has weight 1).
    ///
    /// The reference code weighs G's loss as `L1 + 1e-4 G_img + 0 E_z + 0 TV`. Relative to
    /// the adversary, that is a reconstruction weight of 10,000 and no code adversary, which
    /// on 50 training faces would be a plain autoencoder: it copies each face, age included,
    /// and learns little from the label. Here reconstruction still dominates (100, as
    /// pix2pix's L1), the image adversary has enough pull to make each age look like its
    /// group, the code adversary (1) fills the prior so that codes of other faces decode to
    /// faces, and a small total variation (1, about 1% of the reconstruction's pull) keeps
    /// the ghosting of few-sample training down.
    pub fn new(image_size: usize, channels: usize, ages: usize) -> Self {
        CaaeConfig {
            image_size,
            channels,
            ages,
            z_dim: 50,
            ngf: 16,
            ndf: 16,
            lambda_rec: 100.0,
            lambda_tv: 1.0,
            lambda_z: 1.0,
        }
    }

    /// Stride-2 layers between the image and the 8x8 map.
    pub fn layers(&self) -> usize {
        (self.image_size / MAP).max(1).ilog2() as usize
    }

    /// How often the age one-hot is repeated in G's input: about as long as `z` in all.
    pub fn age_repeat(&self) -> usize {
        (self.z_dim / self.ages.max(1)).max(1)
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(config_error("caae", m));
        if !self.image_size.is_power_of_two() || !(16..=256).contains(&self.image_size) {
            return bad(format!(
                "image size {} is not a power of two in 16..=256 (resize the data, e.g. to 64)",
                self.image_size
            ));
        }
        if !(1..=4).contains(&self.channels) || self.ages < 2 || self.z_dim == 0 {
            return bad(format!(
                "channels must be 1..=4, ages at least 2 and z_dim positive: {self:?}"
            ));
        }
        if self.ngf < 2 || self.ndf == 0 {
            return bad(format!(
                "ngf must be at least 2 and ndf positive: {} and {}",
                self.ngf, self.ndf
            ));
        }
        for (name, w) in [
            ("lambda_rec", self.lambda_rec),
            ("lambda_tv", self.lambda_tv),
            ("lambda_z", self.lambda_z),
        ] {
            if !(w.is_finite() && w >= 0.0) {
                return bad(format!("{name} {w} must be finite and >= 0"));
            }
        }
        Ok(())
    }
}

/// `[N, ages, h, w]` constant planes in `{-1, 1}`: plane `ages[i]` of sample `i` is all
/// ones, the others all minus ones (the reference's labels in `[-1, 1]`).
///
/// # Panics
/// If an age is `>= count`.
#[track_caller]
pub fn age_planes(ages: &[usize], count: usize, h: usize, w: usize) -> Tensor {
    let n = ages.len();
    let mut v = vec![-1.0; n * count];
    for (i, &a) in ages.iter().enumerate() {
        assert!(
            a < count,
            "caae: age {a} is out of range for {count} groups"
        );
        v[i * count + a] = 1.0;
    }
    Tensor::from_vec(&[n, count, 1, 1], v).broadcast_to(&[n, count, h, w])
}

/// The shape of `x`, an input of `who` (the autoencoder or the discriminator).
///
/// # Panics
/// If `x` is not `[N, c + a, H, W]`: an image of `c` channels, then `a` age planes.
#[track_caller]
fn check_input(who: &str, x: &Var<'_>, c: usize, a: usize) -> Vec<usize> {
    let s = x.shape();
    assert!(
        s.len() == 4 && s[1] == c + a,
        "caae {who}: input {s:?} must be [N, {}, H, W] (the image, then {a} age planes; see Caae::age_input)",
        c + a
    );
    s
}

/// The autoencoder `x, age -> G(E(x), age)`, the trainer's generator. Its one input is
/// `[N, C + ages, H, W]`: the image, then the target age as constant planes
/// ([`Caae::age_input`]).
///
/// Parameters: `encoder.*`, then `decoder.*`.
pub struct CaaeAutoencoder {
    encoder: Sequential,
    decoder: Sequential,
    channels: usize,
    ages: usize,
    repeat: usize,
}

impl CaaeAutoencoder {
    /// The codes `E(x)` of images `x` (`[N, C, H, W]` -> `[N, z_dim]`).
    pub fn encode<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        self.encoder.forward(x, mode)
    }

    /// `G(z, age)` for codes `[N, z_dim]` and ages `[N, ages]` in `{-1, 1}`.
    pub fn decode<'t>(&self, z: Var<'t>, age: Var<'t>, mode: Mode) -> Var<'t> {
        let tiled = Var::concat(&vec![age; self.repeat], 1);
        self.decoder.forward(Var::concat(&[z, tiled], 1), mode)
    }
}

impl Module for CaaeAutoencoder {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        self.encoder.visit(&join(prefix, "encoder"), f);
        self.decoder.visit(&join(prefix, "decoder"), f);
    }

    /// # Panics
    /// If `x` does not have `C + ages` channels: build it with [`Caae::age_input`].
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        let (c, a) = (self.channels, self.ages);
        let s = check_input("autoencoder", &x, c, a);
        let z = self.encode(x.slice_axis(1, 0, c), mode);
        let age = x
            .slice_axis(1, c, c + a)
            .slice_axis(2, 0, 1)
            .slice_axis(3, 0, 1)
            .reshape(&[s[0], a]);
        self.decode(z, age, mode)
    }

    fn describe(&self) -> String {
        format!(
            "CaaeAutoencoder(encoder: {}, decoder: {})",
            self.encoder.describe(),
            self.decoder.describe()
        )
    }
}

/// Both discriminators; its forward is D_img on `[N, C + ages, H, W]` (the image and the
/// age planes it is judged with), D_z is reached through [`LatentAdversary::judge`].
///
/// Parameters: `image.head.*` (the first convolution), `image.body.*`, then `code.*`.
pub struct CaaeDiscriminator {
    head: Sequential,
    body: Sequential,
    code: Sequential,
    channels: usize,
    ages: usize,
}

impl Module for CaaeDiscriminator {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        let image = join(prefix, "image");
        self.head.visit(&join(&image, "head"), f);
        self.body.visit(&join(&image, "body"), f);
        self.code.visit(&join(prefix, "code"), f);
    }

    /// # Panics
    /// If `x` does not have `C + ages` channels (see [`Gan::discriminator_input`]).
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        let (c, a) = (self.channels, self.ages);
        check_input("discriminator", &x, c, a);
        let h = self.head.forward(x.slice_axis(1, 0, c), mode);
        let hs = h.shape();
        // The planes are constant: their top-left corner at the head's resolution.
        let planes = x
            .slice_axis(1, c, c + a)
            .slice_axis(2, 0, hs[2])
            .slice_axis(3, 0, hs[3]);
        self.body.forward(Var::concat(&[h, planes], 1), mode)
    }

    fn describe(&self) -> String {
        format!(
            "CaaeDiscriminator(image: {} {}, code: {})",
            self.head.describe(),
            self.body.describe(),
            self.code.describe()
        )
    }
}

/// The conditional adversarial autoencoder.
pub struct Caae {
    config: CaaeConfig,
    g: CaaeAutoencoder,
    d: CaaeDiscriminator,
}

impl Caae {
    /// Builds the four networks with the reference's initialisation: every convolution and
    /// linear weight `N(0, 0.02)`, biases 0, batch-norm scales `N(1, 0.02)`.
    ///
    /// # Errors
    /// If the configuration is invalid (see [`CaaeConfig`]).
    pub fn new(config: CaaeConfig, rng: &mut dyn RngCore) -> Result<Self> {
        config.validate()?;
        let c = &config;
        let layers = c.layers();
        let conv = |i, o, rng: &mut dyn RngCore| {
            Conv2dConfig::new(i, o, 4).stride(2).padding(1).build(rng)
        };
        let up = |i, o, rng: &mut dyn RngCore| {
            ConvTranspose2dConfig::new(i, o, 4)
                .stride(2)
                .padding(1)
                .build(rng)
        };
        // E: image -> 8x8 map -> z.
        let mut encoder = Sequential::new();
        let mut width = c.channels;
        for i in 0..layers {
            let out = c.ngf << i;
            encoder = encoder.add(conv(width, out, rng)?).add(ReLU);
            width = out;
        }
        let side = c.image_size >> layers;
        let encoder = encoder
            .add(Flatten)
            .add(LinearConfig::new(width * side * side, c.z_dim).build(rng)?)
            .add(Tanh);
        // G: [z | age] -> 8x8 map -> image.
        let top = c.ngf << layers;
        let mut decoder = Sequential::new()
            .add(
                LinearConfig::new(c.z_dim + c.ages * c.age_repeat(), top * side * side)
                    .build(rng)?,
            )
            .add(Reshape::new(&[top, side, side]))
            .add(ReLU);
        let mut width = top;
        for _ in 0..layers {
            decoder = decoder.add(up(width, width / 2, rng)?).add(ReLU);
            width /= 2;
        }
        let half = (c.ngf / 2).max(1);
        let decoder = decoder
            .add(Conv2dConfig::new(width, half, 3).padding(1).build(rng)?)
            .add(ReLU)
            .add(
                Conv2dConfig::new(half, c.channels, 3)
                    .padding(1)
                    .build(rng)?,
            )
            .add(Tanh);
        let g = CaaeAutoencoder {
            encoder,
            decoder,
            channels: c.channels,
            ages: c.ages,
            repeat: c.age_repeat(),
        };
        // D_img: 4 stride-2 convolutions, the age planes after the first.
        let head = Sequential::new()
            .add(conv(c.channels, c.ndf, rng)?)
            .add(ReLU);
        let mut body = Sequential::new();
        let mut width = c.ndf + c.ages;
        for i in 1..4 {
            let out = c.ndf << i;
            body = body
                .add(conv(width, out, rng)?)
                .add(BatchNormConfig::new(out).build()?)
                .add(ReLU);
            width = out;
        }
        let side = c.image_size / 16;
        let body = body
            .add(Flatten)
            .add(LinearConfig::new(width * side * side, 1024).build(rng)?)
            .add(LeakyReLU::new(0.2))
            .add(LinearConfig::new(1024, 1).build(rng)?);
        // D_z: 64-32-16 -> 1.
        let mut code = Sequential::new();
        let mut width = c.z_dim;
        for out in [64, 32, 16] {
            code = code
                .add(LinearConfig::new(width, out).build(rng)?)
                .add(BatchNormConfig::new(out).build()?)
                .add(ReLU);
            width = out;
        }
        let code = code.add(LinearConfig::new(width, 1).build(rng)?);
        let d = CaaeDiscriminator {
            head,
            body,
            code,
            channels: c.channels,
            ages: c.ages,
        };
        init::pix2pix(&g, rng);
        init::pix2pix(&d, rng);
        Ok(Caae { config, g, d })
    }

    /// The generator's input for `images` (`[N, C, H, W]`) to be shown at `ages`: the images
    /// with the age planes (`{-1, 1}`) as extra channels.
    ///
    /// # Panics
    /// If `ages` has another length than the batch, or an age is out of range.
    #[track_caller]
    pub fn age_input(images: &Tensor, ages: &[usize], count: usize) -> Tensor {
        let s = images.shape();
        assert_eq!(
            ages.len(),
            s[0],
            "caae: {} ages for {} images",
            ages.len(),
            s[0]
        );
        Tensor::concat(1, &[images, &age_planes(ages, count, s[2], s[3])])
    }

    fn ages<'b>(&self, batch: &'b Batch) -> &'b [usize] {
        batch
            .labels
            .as_deref()
            .expect("caae: a batch carries each face's age group as its label")
    }
}

impl Gan for Caae {
    fn generator(&self) -> &dyn Module {
        &self.g
    }

    fn discriminator(&self) -> &dyn Module {
        &self.d
    }

    fn config(&self) -> ModelConfig {
        ModelConfig::Caae(self.config.clone())
    }

    fn noise(&self, _n: usize, _rng: &mut dyn RngCore) -> Option<Tensor> {
        None
    }

    fn num_classes(&self) -> Option<usize> {
        Some(self.config.ages)
    }

    /// The real faces with their own ages: the fake batch is their reconstruction.
    fn generator_input(&self, batch: &Batch, _rng: &mut dyn RngCore) -> Tensor {
        Caae::age_input(&batch.real, self.ages(batch), self.config.ages)
    }

    /// The image with the batch's age planes.
    fn discriminator_input<'t>(&self, x: Var<'t>, batch: &Batch) -> Var<'t> {
        let s = x.shape();
        let planes = age_planes(self.ages(batch), self.config.ages, s[2], s[3]);
        Var::concat(&[x, x.tape().constant(planes)], 1)
    }

    fn latent_adversary(&self) -> Option<&dyn LatentAdversary> {
        Some(self)
    }
}

impl LatentAdversary for Caae {
    fn encode<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        self.g.encode(x, mode)
    }

    fn judge<'t>(&self, z: Var<'t>, mode: Mode) -> Var<'t> {
        self.d.code.forward(z, mode)
    }

    /// `U(-1, 1)^z_dim`, the range of E's tanh.
    fn prior(&self, n: usize, rng: &mut dyn RngCore) -> Tensor {
        Tensor::rand_uniform(&[n, self.config.z_dim], -1.0, 1.0, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_autodiff::Tape;
    use gantry_nn::named_params;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn tiny() -> CaaeConfig {
        CaaeConfig {
            ngf: 4,
            ndf: 4,
            z_dim: 6,
            ..CaaeConfig::new(32, 3, 4)
        }
    }

    fn build() -> Caae {
        Caae::new(tiny(), &mut ChaCha8Rng::seed_from_u64(3)).unwrap()
    }

    #[test]
    fn shapes_of_every_network() {
        let gan = build();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let x = Tensor::rand_uniform(&[2, 3, 32, 32], -1.0, 1.0, &mut rng);
        let tape = Tape::new();
        let input = Caae::age_input(&x, &[0, 3], 4);
        assert_eq!(input.shape(), &[2, 7, 32, 32]);
        let out = gan.g.forward(tape.constant(input), Mode::Eval);
        assert_eq!(out.shape(), vec![2, 3, 32, 32]);
        let z = gan.encode(tape.constant(x.clone()), Mode::Eval);
        assert_eq!(z.shape(), vec![2, 6]);
        assert!(z.value().to_vec().iter().all(|v| v.abs() <= 1.0));
        assert_eq!(gan.judge(z, Mode::Train).shape(), vec![2, 1]);
        let batch = Batch {
            labels: Some(vec![1, 2]),
            ..Batch::new(x.clone())
        };
        let d_in = gan.discriminator_input(tape.constant(x), &batch);
        assert_eq!(d_in.shape(), vec![2, 7, 32, 32]);
        assert_eq!(gan.d.forward(d_in, Mode::Train).shape(), vec![2, 1]);
        let prior = gan.prior(5, &mut rng).to_vec();
        assert_eq!(prior.len(), 30);
        assert!(prior.iter().all(|v| (-1.0..1.0).contains(v)));
    }

    #[test]
    fn parameters_are_named_by_network() {
        let gan = build();
        let names = |m: &dyn Module| -> Vec<String> {
            named_params(m).into_iter().map(|(n, _)| n).collect()
        };
        let g = names(gan.generator());
        // 32 -> 16 -> 8: two convolutions (ReLU between), then Flatten, Linear, Tanh.
        for name in ["encoder.0.weight", "encoder.2.bias", "encoder.5.weight"] {
            assert!(g.contains(&name.to_string()), "{name} not in {g:?}");
        }
        assert!(g.contains(&"decoder.0.weight".to_string()), "{g:?}");
        // Linear, Reshape, ReLU, 2 x (convT, ReLU), conv, ReLU, conv, Tanh.
        assert!(g.contains(&"decoder.9.weight".to_string()), "{g:?}");
        let d = names(gan.discriminator());
        for name in [
            "image.head.0.weight",
            "image.body.0.weight",
            "image.body.1.running_mean",
            "image.body.12.weight",
            "code.0.weight",
            "code.9.bias",
        ] {
            assert!(d.contains(&name.to_string()), "{name} not in {d:?}");
        }
        // The generator's first linear layer sees z and the age repeated to about z's length.
        let w = named_params(gan.generator())
            .into_iter()
            .find(|(n, _)| n == "decoder.0.weight")
            .unwrap()
            .1
            .value();
        assert_eq!(w.shape()[1], 6 + 4, "z_dim 6, 4 ages repeated once");
    }

    #[test]
    fn the_age_changes_the_output_and_the_judgement_and_the_image_the_code() {
        let gan = build();
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let x = Tensor::rand_uniform(&[1, 3, 32, 32], -1.0, 1.0, &mut rng);
        let both = Tensor::concat(0, &[&x, &x]);
        let tape = Tape::new();
        let out = gan
            .g
            .forward(
                tape.constant(Caae::age_input(&both, &[0, 3], 4)),
                Mode::Eval,
            )
            .value()
            .to_vec();
        let n = out.len() / 2;
        assert!(out[..n] != out[n..], "same face, other age, same output");

        let other = Tensor::rand_uniform(&[1, 3, 32, 32], -1.0, 1.0, &mut rng);
        let two = Tensor::concat(0, &[&x, &other]);
        let z = gan
            .encode(tape.constant(two.clone()), Mode::Eval)
            .value()
            .to_vec();
        assert!(z[..6] != z[6..], "E ignores the image");

        let batch = Batch {
            labels: Some(vec![0, 3]),
            ..Batch::new(both.clone())
        };
        let logits = gan
            .d
            .forward(
                gan.discriminator_input(tape.constant(both), &batch),
                Mode::Eval,
            )
            .value()
            .to_vec();
        assert!(logits[0] != logits[1], "D_img ignores the age: {logits:?}");
    }

    #[test]
    fn the_fake_batch_is_the_reconstruction_at_the_own_age() {
        let gan = build();
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let x = Tensor::rand_uniform(&[2, 3, 32, 32], -1.0, 1.0, &mut rng);
        let batch = Batch {
            labels: Some(vec![2, 1]),
            ..Batch::new(x.clone())
        };
        assert_eq!(
            gan.generator_input(&batch, &mut rng),
            Caae::age_input(&x, &[2, 1], 4)
        );
        let planes = age_planes(&[2], 4, 1, 1).to_vec();
        assert_eq!(planes, vec![-1.0, -1.0, 1.0, -1.0]);
    }

    #[test]
    fn invalid_settings_are_refused() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for bad in [
            CaaeConfig::new(48, 3, 4),
            CaaeConfig::new(512, 3, 4),
            CaaeConfig { ages: 1, ..tiny() },
            CaaeConfig { ngf: 1, ..tiny() },
            CaaeConfig {
                lambda_tv: -1.0,
                ..tiny()
            },
        ] {
            let e = Caae::new(bad.clone(), &mut rng).err().expect("refused");
            assert!(e.to_string().contains("caae"), "{bad:?}: {e}");
        }
    }

    #[test]
    #[should_panic(expected = "must be [N, 7, H, W]")]
    fn a_bare_image_is_refused_with_a_hint() {
        let gan = build();
        let tape = Tape::new();
        gan.g
            .forward(tape.constant(Tensor::zeros(&[1, 3, 32, 32])), Mode::Eval);
    }
}
