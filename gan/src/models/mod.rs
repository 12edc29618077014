//! The models: each a generator/discriminator pair behind the [`Gan`] trait, built from a
//! validated, serialisable [`ModelConfig`].

mod biggan;
mod caae;
mod cdcgan;
mod dcgan;
mod mlp;
mod pack;
mod pix2pix;
mod pix2pixhd;
mod progan;
mod recipe;
mod wgan_gp;

pub use biggan::{BigGan, BigGanConfig, BigGanDiscriminator, BigGanGenerator};
pub use caae::{Caae, CaaeAutoencoder, CaaeConfig, CaaeDiscriminator, age_planes};
pub use cdcgan::{Cdcgan, CdcganConfig, CondGenerator};
pub use dcgan::{Dcgan, DcganConfig, DcganVariant};
pub use mlp::{Mlp, MlpConfig, MlpOutput};
pub use pack::{Packed, pack, pack_tensor};
pub use pix2pix::{PatchGan, Pix2Pix, Pix2PixConfig, UNet};
pub use pix2pixhd::{MultiscaleDiscriminator, Pix2PixHd, Pix2PixHdConfig, Pix2PixHdGenerator};
pub use progan::{ProGan, ProGanConfig, ProGanDiscriminator, ProGanGenerator, Stage};
pub use recipe::Recipe;
pub use wgan_gp::{CriticNorm, WganGp, WganGpConfig};

use crate::error::Result;
use gantry_autodiff::Var;
use gantry_nn::{Mode, Module};
use gantry_tensor::Tensor;
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// One training batch as a model sees it.
#[derive(Clone, Debug)]
pub struct Batch {
    /// Real samples (`B` of a pair for pix2pix): `[N, C, H, W]` images or `[N, D]` points.
    pub real: Tensor,
    /// The condition (`A` of a pair for pix2pix), if the model is conditional.
    pub condition: Option<Tensor>,
    /// The class of each sample of `real`, where the data has labels. A label-conditional
    /// model (cdcgan) generates its fakes for these classes and shows them to the
    /// discriminator with both the real and the fake batch; other models ignore them.
    pub labels: Option<Vec<usize>>,
}

impl Batch {
    /// An unconditional batch of `real` samples, without labels.
    pub fn new(real: Tensor) -> Self {
        Batch {
            real,
            condition: None,
            labels: None,
        }
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.real.shape()[0]
    }

    /// Whether the batch holds no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the adversarial trainer needs to know about a model: how to make the generator's
/// input for a batch and what the discriminator sees. The losses are the objective's
/// ([`crate::objective`]); a model's own terms (pix2pix's L1) are in
/// [`crate::objective::model_terms`].
pub trait Gan {
    /// The generator.
    fn generator(&self) -> &dyn Module;

    /// The discriminator (it outputs logits).
    fn discriminator(&self) -> &dyn Module;

    /// The serialisable configuration it was built from.
    fn config(&self) -> ModelConfig;

    /// Latent noise for `n` samples, or `None` for a model driven by its condition.
    fn noise(&self, n: usize, rng: &mut dyn RngCore) -> Option<Tensor>;

    /// The number of classes of a label-conditional model (cdcgan), `None` for the others.
    fn num_classes(&self) -> Option<usize> {
        None
    }

    /// The generator's input for latent noise `z` (from [`Gan::noise`]) and, for a
    /// label-conditional model, the class of each sample to draw. Unconditional models
    /// ignore `labels` and take `z` as it is; cdcgan takes `[z | one_hot(labels)]`, so that
    /// its generator stays a one-input [`Module`].
    ///
    /// # Panics
    /// For a label-conditional model, if `labels` is `None`, has another length than `z`'s
    /// batch, or holds a class out of range.
    fn latent_input(&self, z: Tensor, labels: Option<&[usize]>) -> Tensor {
        let _ = labels;
        z
    }

    /// How many samples the discriminator sees at once (PacGAN's packing degree; 1 for a
    /// standard discriminator). Batch sizes must be multiples of it.
    fn pack(&self) -> usize {
        1
    }

    /// The generator's input for `batch`: the condition, or fresh noise (with the batch's
    /// labels for a label-conditional model, the standard cGAN recipe `G(z, y)`).
    fn generator_input(&self, batch: &Batch, rng: &mut dyn RngCore) -> Tensor {
        match &batch.condition {
            Some(c) => c.clone(),
            None => {
                let z = self
                    .noise(batch.len(), rng)
                    .expect("an unconditional model makes noise");
                self.latent_input(z, batch.labels.as_deref())
            }
        }
    }

    /// What the discriminator sees for sample `x` of `batch` (pix2pix: `concat(A, x)`;
    /// cdcgan: `x` with the batch's label maps as extra channels). Packing, where the model
    /// packs, happens inside the discriminator (see [`Packed`]), after this.
    fn discriminator_input<'t>(&self, x: Var<'t>, batch: &Batch) -> Var<'t> {
        let _ = batch;
        x
    }

    /// Factor of the discriminator's loss (pix2pix halves it).
    fn d_loss_scale(&self) -> f32 {
        1.0
    }

    /// Whether the discriminator step sees the fake batch before the real one (pix2pix's
    /// order; it matters for batch-norm running statistics).
    fn fake_first(&self) -> bool {
        false
    }

    /// Tells the model how far training has come: `step` iterations are done. The trainer
    /// calls it before and after every iteration and when a checkpoint is loaded, so a model
    /// whose networks change as training goes (ProGAN grows) derives its state from the
    /// step alone, and a resumed run continues bit for bit. The default does nothing.
    fn set_progress(&self, step: u64) {
        let _ = step;
    }

    /// The real samples of a batch as the discriminator should see them at this point of
    /// training (ProGAN: at the resolution it has grown to, blended during a fade-in). The
    /// default returns them unchanged.
    fn real_samples(&self, real: Tensor) -> Tensor {
        real
    }

    /// The name of the stage training is in, for a model whose networks change during
    /// training (ProGAN: `res-008` while at or fading into 8x8); a run keeps the last sample
    /// grid of each stage under it. `None` (the default) for the others.
    fn stage_name(&self) -> Option<String> {
        None
    }

    /// The discriminator's output split into the patch maps it is made of, for
    /// `samples` of shape `[N, C, H, W]` (or `[N, D]`). A multi-scale discriminator
    /// (pix2pixHD's) returns one map per scale, flattened and concatenated; the objective
    /// averages each loss within a map and sums over the maps, so that every scale counts
    /// alike whatever its number of patches. The default is the one map it is.
    fn d_output_maps<'t>(&self, logits: Var<'t>, samples: &[usize]) -> Vec<Var<'t>> {
        let _ = samples;
        vec![logits]
    }

    /// For an adversarial autoencoder (CAAE): the encoder of the real samples and the second
    /// discriminator that judges its codes against a prior, which the objective's `loss_d_z`
    /// and `loss_g_z` terms train. The encoder's weights belong to the generator and the
    /// code discriminator's to the discriminator (each player's `visit` covers them), so the
    /// two optimizers train them without knowing. `None` (the default) for the others.
    fn latent_adversary(&self) -> Option<&dyn LatentAdversary> {
        None
    }
}

/// The code side of an adversarial autoencoder (Makhzani et al. 2016; CAAE): an encoder
/// whose codes a discriminator learns to tell from draws of a prior, while the encoder
/// learns to make them alike. See [`Gan::latent_adversary`].
pub trait LatentAdversary {
    /// The codes `[N, D]` of samples `x` (`[N, C, H, W]`).
    fn encode<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t>;

    /// The code discriminator's logits `[N, 1]` on codes `z` (`[N, D]`).
    fn judge<'t>(&self, z: Var<'t>, mode: Mode) -> Var<'t>;

    /// `n` codes drawn from the prior, `[n, D]`.
    fn prior(&self, n: usize, rng: &mut dyn RngCore) -> Tensor;
}

/// Any model's configuration, stored in checkpoints to rebuild the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "lowercase")]
pub enum ModelConfig {
    /// The vanilla GAN of Goodfellow et al.
    Mlp(MlpConfig),
    /// DCGAN (Radford et al.).
    Dcgan(DcganConfig),
    /// pix2pix (Isola et al.).
    Pix2Pix(Pix2PixConfig),
    /// Label-conditional DCGAN (Mirza and Osindero).
    Cdcgan(CdcganConfig),
    /// WGAN-GP (Gulrajani et al.) with DCGAN-shaped players.
    #[serde(rename = "wgan-gp")]
    WganGp(WganGpConfig),
    /// A small class-conditional BigGAN (Brock et al.).
    BigGan(BigGanConfig),
    /// Progressive growing of GANs (Karras et al.).
    ProGan(ProGanConfig),
    /// pix2pixHD (Wang et al.).
    #[serde(rename = "pix2pixhd")]
    Pix2PixHd(Pix2PixHdConfig),
    /// The conditional adversarial autoencoder (Zhang, Song and Qi) for face ageing.
    Caae(CaaeConfig),
}

impl ModelConfig {
    /// The model kind's name (`mlp`, `dcgan`, `pix2pix`, `cdcgan`, `wgan-gp`, `biggan`,
    /// `progan`, `pix2pixhd`, `caae`).
    pub fn kind(&self) -> &'static str {
        match self {
            ModelConfig::Mlp(_) => "mlp",
            ModelConfig::Dcgan(_) => "dcgan",
            ModelConfig::Pix2Pix(_) => "pix2pix",
            ModelConfig::Cdcgan(_) => "cdcgan",
            ModelConfig::WganGp(_) => "wgan-gp",
            ModelConfig::BigGan(_) => "biggan",
            ModelConfig::ProGan(_) => "progan",
            ModelConfig::Pix2PixHd(_) => "pix2pixhd",
            ModelConfig::Caae(_) => "caae",
        }
    }

    /// PacGAN's packing degree of the discriminator (1: no packing).
    pub fn pack(&self) -> usize {
        match self {
            ModelConfig::Mlp(c) => c.pack,
            ModelConfig::Dcgan(c) => c.pack,
            ModelConfig::Pix2Pix(c) => c.pack,
            ModelConfig::Cdcgan(c) => c.dcgan.pack,
            ModelConfig::WganGp(c) => c.dcgan.pack,
            ModelConfig::BigGan(_)
            | ModelConfig::ProGan(_)
            | ModelConfig::Pix2PixHd(_)
            | ModelConfig::Caae(_) => 1,
        }
    }

    /// The same configuration with the discriminator packing `m` samples (BigGAN's projection
    /// discriminator judges one sample with its class, ProGAN's already sees the batch
    /// through its minibatch standard deviation, and pix2pixHD's and CAAE's are not built to
    /// pack: they stay at 1).
    pub fn with_pack(mut self, m: usize) -> Self {
        match &mut self {
            ModelConfig::Mlp(c) => c.pack = m,
            ModelConfig::Dcgan(c) => c.pack = m,
            ModelConfig::Pix2Pix(c) => c.pack = m,
            ModelConfig::Cdcgan(c) => c.dcgan.pack = m,
            ModelConfig::WganGp(c) => c.dcgan.pack = m,
            ModelConfig::BigGan(_)
            | ModelConfig::ProGan(_)
            | ModelConfig::Pix2PixHd(_)
            | ModelConfig::Caae(_) => {}
        }
        self
    }

    /// Builds the model with its paper's initialisation, drawing weights from `rng`.
    ///
    /// # Errors
    /// If the configuration is invalid.
    pub fn build(&self, rng: &mut dyn RngCore) -> Result<Box<dyn Gan>> {
        Ok(match self {
            ModelConfig::Mlp(c) => Box::new(Mlp::new(c.clone(), rng)?),
            ModelConfig::Dcgan(c) => Box::new(Dcgan::new(c.clone(), rng)?),
            ModelConfig::Pix2Pix(c) => Box::new(Pix2Pix::new(c.clone(), rng)?),
            ModelConfig::Cdcgan(c) => Box::new(Cdcgan::new(c.clone(), rng)?),
            ModelConfig::WganGp(c) => Box::new(WganGp::new(c.clone(), rng)?),
            ModelConfig::BigGan(c) => Box::new(BigGan::new(c.clone(), rng)?),
            ModelConfig::ProGan(c) => Box::new(ProGan::new(c.clone(), rng)?),
            ModelConfig::Pix2PixHd(c) => Box::new(Pix2PixHd::new(c.clone(), rng)?),
            ModelConfig::Caae(c) => Box::new(Caae::new(c.clone(), rng)?),
        })
    }

    /// The shape of one sample the generator makes (at full resolution), `[C, H, W]` or
    /// the MLP's sample shape.
    pub fn sample_shape(&self) -> Vec<usize> {
        let image = |c: usize, s: usize| vec![c, s, s];
        match self {
            ModelConfig::Mlp(c) => c.sample_shape.clone(),
            ModelConfig::Dcgan(c) => image(c.channels, c.image_size),
            ModelConfig::WganGp(c) => image(c.dcgan.channels, c.dcgan.image_size),
            ModelConfig::Cdcgan(c) => image(c.dcgan.channels, c.dcgan.image_size),
            ModelConfig::Pix2Pix(c) => image(c.out_channels, c.image_size),
            ModelConfig::BigGan(c) => image(c.channels, c.image_size),
            ModelConfig::ProGan(c) => image(c.channels, c.image_size),
            ModelConfig::Pix2PixHd(c) => image(c.out_channels, c.image_size),
            ModelConfig::Caae(c) => image(c.channels, c.image_size),
        }
    }

    /// The shape of one input of a translation model (pix2pix, pix2pixHD), `[C, H, W]`;
    /// `None` for models that draw from noise, and for CAAE, whose input is a labelled
    /// image of the data itself (see [`Gan::generator_input`]).
    pub fn condition_shape(&self) -> Option<Vec<usize>> {
        match self {
            ModelConfig::Pix2Pix(c) => Some(vec![c.in_channels, c.image_size, c.image_size]),
            ModelConfig::Pix2PixHd(c) => Some(vec![c.in_channels, c.image_size, c.image_size]),
            _ => None,
        }
    }
}

/// Serde's default of the `pack` fields: configurations written before PacGAN existed
/// describe an unpacked discriminator.
pub(crate) fn one() -> usize {
    1
}

/// Rejects a packing degree of 0.
pub(crate) fn check_pack(model: &'static str, pack: usize) -> Result<()> {
    if pack == 0 {
        return Err(crate::error::config_error(
            model,
            "pack must be at least 1 (1: a standard discriminator)",
        ));
    }
    Ok(())
}
