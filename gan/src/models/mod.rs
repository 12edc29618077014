//! The models: each a generator/discriminator pair behind the [`Gan`] trait, built from a
//! validated, serialisable [`ModelConfig`].

mod dcgan;
mod mlp;
mod pix2pix;

pub use dcgan::{Dcgan, DcganConfig, DcganVariant};
pub use mlp::{Mlp, MlpConfig, MlpOutput};
pub use pix2pix::{PatchGan, Pix2Pix, Pix2PixConfig, UNet};

use crate::error::Result;
use gantry_autodiff::Var;
use gantry_nn::Module;
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
}

/// What the adversarial trainer needs to know about a model: how to make the generator's
/// input for a batch, what the discriminator sees, and which extra loss terms apply.
pub trait Gan {
    /// The generator.
    fn generator(&self) -> &dyn Module;

    /// The discriminator (it outputs logits).
    fn discriminator(&self) -> &dyn Module;

    /// The serialisable configuration it was built from.
    fn config(&self) -> ModelConfig;

    /// Latent noise for `n` samples, or `None` for a model driven by its condition.
    fn noise(&self, n: usize, rng: &mut dyn RngCore) -> Option<Tensor>;

    /// The generator's input for `batch`: fresh noise, or the condition.
    fn generator_input(&self, batch: &Batch, rng: &mut dyn RngCore) -> Tensor {
        match &batch.condition {
            Some(c) => c.clone(),
            None => self
                .noise(batch.real.shape()[0], rng)
                .expect("an unconditional model makes noise"),
        }
    }

    /// What the discriminator sees for sample `x` of `batch` (pix2pix: `concat(A, x)`).
    fn discriminator_input<'t>(&self, x: Var<'t>, batch: &Batch) -> Var<'t> {
        let _ = batch;
        x
    }

    /// Weight of `L1(G(input), real)` in the generator's loss (pix2pix: 100).
    fn l1_weight(&self) -> f32 {
        0.0
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
}

impl ModelConfig {
    /// The model kind's name (`mlp`, `dcgan`, `pix2pix`).
    pub fn kind(&self) -> &'static str {
        match self {
            ModelConfig::Mlp(_) => "mlp",
            ModelConfig::Dcgan(_) => "dcgan",
            ModelConfig::Pix2Pix(_) => "pix2pix",
        }
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
        })
    }
}
