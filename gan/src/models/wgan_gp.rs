//! WGAN-GP (Gulrajani et al. 2017) with DCGAN-shaped players: pytorch/examples' generator and a
//! critic of the same shape without batch norm, whose output is a linear score.
//!
//! The gradient penalty asks for the gradient of each sample's score with respect to that
//! sample alone; batch norm mixes the samples of a batch (and has no second derivative here),
//! so the critic normalises per sample (instance norm) or not at all. The recipe
//! ([`super::Recipe::wgan_gp`]) is the paper's: penalty 10, five critic steps per generator
//! step, Adam 1e-4 with betas (0, 0.9).

use super::dcgan::{generator64, upsamplings};
use super::{DcganConfig, DcganVariant, Gan, ModelConfig, Packed};
use crate::error::{Result, config_error};
use gantry_nn::{Conv2dConfig, Flatten, InstanceNorm2dConfig, LeakyReLU, Module, Sequential, init};
use gantry_tensor::Tensor;
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// How the critic normalises its hidden layers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CriticNorm {
    /// No normalisation (the paper's DCGAN-shaped critic).
    #[default]
    None,
    /// Instance norm with a learned scale and shift: per sample, so the penalty stays valid.
    Instance,
}

/// Settings of a [`WganGp`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WganGpConfig {
    /// The generator and the critic's shape: a pytorch/examples DCGAN (`Dcgan64` variant, any
    /// power of two in 16..=256).
    pub dcgan: DcganConfig,
    /// The critic's normalisation.
    #[serde(default)]
    pub critic_norm: CriticNorm,
}

impl WganGpConfig {
    /// A WGAN-GP for `channels`-channel images of side `image_size`, widths 64.
    pub fn new(image_size: usize, channels: usize) -> Self {
        WganGpConfig {
            dcgan: DcganConfig {
                image_size,
                ..DcganConfig::dcgan64(channels)
            },
            critic_norm: CriticNorm::None,
        }
    }

    fn validate(&self) -> Result<()> {
        if self.dcgan.variant != DcganVariant::Dcgan64 {
            return Err(config_error(
                "wgan-gp",
                "the players are pytorch/examples' DCGAN (variant dcgan64); resize 28x28 data to 32",
            ));
        }
        self.dcgan.validate()
    }
}

/// A DCGAN generator and a critic without batch norm.
pub struct WganGp {
    config: WganGpConfig,
    g: Sequential,
    d: Packed<Sequential>,
}

impl WganGp {
    /// Builds both players: the generator with DCGAN's N(0, 0.02) initialisation, the critic
    /// with PyTorch's default one.
    ///
    /// # Errors
    /// If the image size is not a power of two in 16..=256 or a width is zero.
    pub fn new(config: WganGpConfig, rng: &mut dyn RngCore) -> Result<Self> {
        config.validate()?;
        let g = generator64(&config.dcgan, rng)?;
        init::dcgan(&g, rng);
        let d = critic(&config, rng)?;
        Ok(WganGp {
            d: Packed::new(d, config.dcgan.pack),
            g,
            config,
        })
    }
}

/// pytorch/examples' discriminator with biases, the chosen normalisation in place of batch
/// norm, and a linear score out.
fn critic(config: &WganGpConfig, rng: &mut dyn RngCore) -> Result<Sequential> {
    let c = &config.dcgan;
    let mut width = c.ndf;
    let mut d = Sequential::new()
        .add(
            Conv2dConfig::new(c.channels * c.pack, width, 4)
                .stride(2)
                .padding(1)
                .build(rng)?,
        )
        .add(LeakyReLU::new(0.2));
    for _ in 1..upsamplings(c.image_size) {
        d = d.add(
            Conv2dConfig::new(width, width * 2, 4)
                .stride(2)
                .padding(1)
                .build(rng)?,
        );
        width *= 2;
        if config.critic_norm == CriticNorm::Instance {
            d = d.add(InstanceNorm2dConfig::new(width).affine(true).build()?);
        }
        d = d.add(LeakyReLU::new(0.2));
    }
    Ok(d.add(Conv2dConfig::new(width, 1, 4).build(rng)?)
        .add(Flatten))
}

impl Gan for WganGp {
    fn generator(&self) -> &dyn Module {
        &self.g
    }

    fn discriminator(&self) -> &dyn Module {
        &self.d
    }

    fn config(&self) -> ModelConfig {
        ModelConfig::WganGp(self.config.clone())
    }

    fn noise(&self, n: usize, rng: &mut dyn RngCore) -> Option<Tensor> {
        Some(Tensor::randn(
            &[n, self.config.dcgan.nz, 1, 1],
            0.0,
            1.0,
            rng,
        ))
    }

    fn pack(&self) -> usize {
        self.config.dcgan.pack
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_autodiff::{CreateGraph, Tape};
    use gantry_nn::{Mode, Param};
    use rand::SeedableRng;

    fn small(norm: CriticNorm) -> WganGpConfig {
        let mut c = WganGpConfig::new(16, 3);
        c.dcgan.ngf = 4;
        c.dcgan.ndf = 4;
        c.critic_norm = norm;
        c
    }

    /// The critic has no batch norm, so the penalty's gradient of gradients exists, and each
    /// sample's score depends on that sample only: the gradient of sample 0's score with
    /// respect to sample 1 is zero (batch norm would couple them).
    #[test]
    fn the_critic_scores_each_sample_alone_and_has_second_derivatives() {
        for norm in [CriticNorm::None, CriticNorm::Instance] {
            let mut rng = rand::rngs::StdRng::seed_from_u64(1);
            let gan = WganGp::new(small(norm), &mut rng).unwrap();
            let mut params: Vec<(String, &Param)> = Vec::new();
            gan.discriminator()
                .visit("", &mut |n, p| params.push((n.to_string(), p)));
            assert!(params.iter().all(|(n, _)| !n.contains("running")));
            let tape = Tape::new();
            let x = tape.leaf(Tensor::randn(&[2, 3, 16, 16], 0.0, 1.0, &mut rng));
            let score = gan.discriminator().forward(x, Mode::Train);
            assert_eq!(score.shape(), [2, 1]);
            let first = score.slice_axis(0, 0, 1).sum();
            let grad = tape
                .grad(&[first], &[x], CreateGraph::Yes)
                .expect("a critic without batch norm has second derivatives");
            let g = grad[0].value().to_vec();
            let half = g.len() / 2;
            assert!(g[half..].iter().all(|v| *v == 0.0), "{norm:?}");
            assert!(g[..half].iter().any(|v| *v != 0.0));
            // The penalty's second derivative reaches the critic's first weight.
            let w = params[0].1.var(&tape);
            let penalty = grad[0].mul(grad[0]).sum();
            let dw = tape.grad(&[penalty], &[w], CreateGraph::No).unwrap();
            assert!(dw[0].value().to_vec().iter().any(|v| *v != 0.0));
        }
    }

    #[test]
    fn the_28x28_network_is_refused_with_a_hint() {
        let mut c = WganGpConfig::new(28, 1);
        c.dcgan.variant = DcganVariant::Dcgan28;
        let err = WganGp::new(c, &mut rand::rngs::StdRng::seed_from_u64(0))
            .err()
            .unwrap();
        assert!(err.to_string().contains("resize 28x28 data to 32"), "{err}");
    }
}
