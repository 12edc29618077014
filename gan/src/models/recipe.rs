//! How each model trains unless told otherwise: its paper's loss, terms, optimizers, number
//! of discriminator steps and weight averaging, and the run's defaults (data, steps, batch).
//!
//! A model family brings its recipe with it, so that `gantry train --model M` trains M as its
//! authors did and every flag only overrides one part of it. A new model adds one constructor
//! here beside its own file.

use super::{DcganVariant, ModelConfig};
use crate::objective::TermSpec;
use crate::train::OptimConfig;

/// A model's training defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Recipe {
    /// The bundled data set it trains on by default.
    pub data: &'static str,
    /// Generator steps of a default run.
    pub steps: u64,
    /// Examples per batch.
    pub batch_size: usize,
    /// The adversarial loss, by its registered name.
    pub loss: &'static str,
    /// Terms added to the model's own ([`crate::objective::model_terms`]), by name.
    pub terms: Vec<TermSpec>,
    /// Discriminator steps per generator step.
    pub k: usize,
    /// The generator's learning rate.
    pub lr_g: f32,
    /// The discriminator's learning rate.
    pub lr_d: f32,
    /// Adam's `(beta1, beta2)` for both players.
    pub betas: (f32, f32),
    /// Decay of the moving average of G's weights used for samples, if any.
    pub ema: Option<f32>,
}

impl Recipe {
    /// DCGAN (Radford et al.): non-saturating loss, Adam 2e-4 with beta1 0.5, batch 64, on
    /// MNIST for 1,000 steps.
    pub fn dcgan() -> Self {
        Recipe {
            data: "mnist",
            steps: 1000,
            batch_size: 64,
            loss: "non-saturating",
            terms: Vec::new(),
            k: 1,
            lr_g: 2e-4,
            lr_d: 2e-4,
            betas: (0.5, 0.999),
            ema: None,
        }
    }

    /// The 28x28 DCGAN on digits (the default `gantry train`): DCGAN's recipe with batch 32,
    /// both learning rates doubled to 4e-4 and an EMA of G (0.999), for 2,000 steps. Measured
    /// against the paper's recipe (batch 64, 2e-4, no EMA) at equal wall time on MNIST, it
    /// reaches the same Fréchet distance in about a third of the time (README: "A default run
    /// that shows digits in minutes").
    pub fn dcgan28() -> Self {
        Recipe {
            steps: 2000,
            batch_size: 32,
            lr_g: 4e-4,
            lr_d: 4e-4,
            ema: Some(0.999),
            ..Recipe::dcgan()
        }
    }

    /// The recipe of a model: its family's, or its variant's where that has its own (the 28x28
    /// DCGAN).
    pub fn for_model(model: &ModelConfig) -> Self {
        match model {
            ModelConfig::Dcgan(c) if c.variant == DcganVariant::Dcgan28 => Recipe::dcgan28(),
            ModelConfig::Dcgan(_) => Recipe::dcgan(),
            ModelConfig::Mlp(_) => Recipe::mlp(),
            ModelConfig::Pix2Pix(_) => Recipe::pix2pix(),
            ModelConfig::Cdcgan(_) => Recipe::cdcgan(),
            ModelConfig::WganGp(_) => Recipe::wgan_gp(),
            ModelConfig::BigGan(_) => Recipe::biggan(),
            ModelConfig::ProGan(_) => Recipe::progan(),
            ModelConfig::Pix2PixHd(_) => Recipe::pix2pixhd(),
            ModelConfig::Caae(_) => Recipe::caae(),
        }
    }

    /// The vanilla GAN on the 2-D ring: DCGAN's optimizer, 4,000 steps.
    pub fn mlp() -> Self {
        Recipe {
            data: "ring",
            steps: 4000,
            ..Recipe::dcgan()
        }
    }

    /// The label-conditional DCGAN: DCGAN's recipe with the mode-seeking term (weight 1, Mao
    /// et al.), without which its generator draws one image per label whatever z is.
    pub fn cdcgan() -> Self {
        Recipe {
            terms: vec![TermSpec::new("loss_g_ms", 1.0)],
            ..Recipe::dcgan()
        }
    }

    /// pix2pix (Isola et al.): batch 4 on edges2emoji, 2,000 steps; its L1 term is the
    /// model's own.
    pub fn pix2pix() -> Self {
        Recipe {
            data: "edges2emoji",
            steps: 2000,
            batch_size: 4,
            ..Recipe::dcgan()
        }
    }

    /// WGAN-GP (Gulrajani et al.): the Wasserstein loss with a gradient penalty of 10, five
    /// critic steps per generator step, Adam 1e-4 with betas (0, 0.9), batch 64; on the
    /// emoji (the small colourful sprites of the lecture's PokeGAN) for 2,000 steps.
    pub fn wgan_gp() -> Self {
        Recipe {
            data: "emoji",
            steps: 2000,
            loss: "wasserstein",
            terms: vec![TermSpec::new("gp", 10.0)],
            k: 5,
            lr_g: 1e-4,
            lr_d: 1e-4,
            betas: (0.0, 0.9),
            ..Recipe::dcgan()
        }
    }

    /// BigGAN (Brock et al.): the hinge loss, two discriminator steps per generator step,
    /// Adam with betas (0, 0.999), the discriminator's learning rate four times the
    /// generator's (1e-4 and 4e-4: BigGAN's 128-pixel settings), an EMA of G (0.999, for short
    /// runs; the paper's 0.9999 suits longer ones), batch 64, on the emoji's nine categories
    /// for 2,000 steps.
    pub fn biggan() -> Self {
        Recipe {
            data: "emoji",
            steps: 2000,
            loss: "hinge",
            k: 2,
            lr_g: 1e-4,
            lr_d: 4e-4,
            betas: (0.0, 0.999),
            ema: Some(0.999),
            ..Recipe::dcgan()
        }
    }

    /// Progressive growing (Karras et al.): the Wasserstein loss with a gradient penalty of
    /// 10 and the drift term (0.001), one critic step per generator step, Adam 1e-3 with
    /// betas (0, 0.99), an EMA of G (0.999), on the emoji at 64x64. The paper's batch of 16
    /// (at 64x64) fits a CPU; 2,000 steps show 32,000 images, which at the CPU schedule of
    /// [`crate::models::ProGanConfig::new`] (3,200 per fade and per stabilisation) grow to
    /// 64x64 by step 1,600 and stabilise there for the last 400.
    pub fn progan() -> Self {
        Recipe {
            data: "emoji",
            steps: 2000,
            batch_size: 16,
            loss: "wasserstein",
            terms: vec![TermSpec::new("gp", 10.0), TermSpec::new("drift", 0.001)],
            k: 1,
            lr_g: 1e-3,
            lr_d: 1e-3,
            betas: (0.0, 0.99),
            ema: Some(0.999),
        }
    }

    /// pix2pixHD (Wang et al.): least squares, Adam 2e-4 with beta1 0.5 (its feature-matching
    /// term is the model's own), batch 4 on edges2emoji128, 3,000 steps: the first 1,000 of
    /// them the global generator's alone at 64x64 (see [`crate::models::Pix2PixHdConfig`]).
    pub fn pix2pixhd() -> Self {
        Recipe {
            data: "edges2emoji128",
            steps: 3000,
            batch_size: 4,
            loss: "lsgan",
            ..Recipe::dcgan()
        }
    }

    /// CAAE (Zhang, Song and Qi): the cross-entropy adversaries of the reference code with
    /// Adam 2e-4, beta1 0.5 (its reconstruction, total-variation and code terms are the
    /// model's own, weighted as [`crate::models::CaaeConfig::new`] says), batch 10 of the 50
    /// training faces of `emoji-faces`, 3,000 steps.
    pub fn caae() -> Self {
        Recipe {
            data: "emoji-faces",
            steps: 3000,
            batch_size: 10,
            ..Recipe::dcgan()
        }
    }

    /// The optimizer of the generator (`g`) or discriminator with this recipe's settings.
    pub fn adam(&self, g: bool) -> OptimConfig {
        OptimConfig::Adam {
            lr: if g { self.lr_g } else { self.lr_d },
            beta1: self.betas.0,
            beta2: self.betas.1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{BigGanConfig, DcganConfig};

    #[test]
    fn the_28x28_dcgan_has_its_own_recipe_and_the_others_their_familys() {
        let digits = Recipe::for_model(&ModelConfig::Dcgan(DcganConfig::dcgan28()));
        assert_eq!(digits, Recipe::dcgan28());
        assert_eq!(
            (digits.batch_size, digits.lr_g, digits.ema),
            (32, 4e-4, Some(0.999))
        );
        let colour = Recipe::for_model(&ModelConfig::Dcgan(DcganConfig::dcgan64(3)));
        assert_eq!(colour, Recipe::dcgan());
        assert_eq!(
            (colour.batch_size, colour.lr_d, colour.ema),
            (64, 2e-4, None)
        );
        let big = Recipe::for_model(&ModelConfig::BigGan(BigGanConfig::new(32, 3, 10)));
        assert_eq!((big.loss, big.k), ("hinge", 2));
    }
}
