//! The vanilla GAN of Goodfellow et al.: fully connected generator and discriminator, for flat
//! data of any width (2-D points, 784-pixel digits).

use super::{Gan, ModelConfig, Packed, check_pack, one};
use crate::error::{Result, config_error};
use gantry_nn::{Dropout, LeakyReLU, LinearConfig, Module, ReLU, Reshape, Sequential, Tanh};
use gantry_tensor::Tensor;
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// The generator's output layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MlpOutput {
    /// `tanh`, for images scaled to `[-1, 1]`.
    Tanh,
    /// No activation, for points.
    Linear,
}

/// Settings of the [`Mlp`] GAN.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MlpConfig {
    /// Size of the latent noise.
    pub latent: usize,
    /// Shape of one sample (`[2]` for points, `[1, 28, 28]` for digits); G outputs its product.
    pub sample_shape: Vec<usize>,
    /// Hidden widths of the generator.
    pub g_hidden: Vec<usize>,
    /// Hidden widths of the discriminator.
    pub d_hidden: Vec<usize>,
    /// LeakyReLU slope of the hidden layers (0 means ReLU).
    pub leaky_slope: f32,
    /// Dropout probability after each hidden layer of D (0 for none).
    pub d_dropout: f32,
    /// The generator's output layer.
    pub output: MlpOutput,
    /// Samples the discriminator judges at once (PacGAN; 1 is the standard discriminator).
    #[serde(default = "one")]
    pub pack: usize,
}

impl MlpConfig {
    /// The MLP GAN of the reference benchmark for 28x28 digits: G 100-256-512-1024-784
    /// (LeakyReLU 0.2, tanh), D 784-512-256-1.
    pub fn digits() -> Self {
        MlpConfig {
            latent: 100,
            sample_shape: vec![1, 28, 28],
            g_hidden: vec![256, 512, 1024],
            d_hidden: vec![512, 256],
            leaky_slope: 0.2,
            d_dropout: 0.0,
            output: MlpOutput::Tanh,
            pack: 1,
        }
    }

    /// A GAN for 2-D points (the mixtures of VEEGAN and PacGAN): latent 2, three hidden
    /// layers of 128 in both players (ReLU), linear output.
    pub fn points() -> Self {
        MlpConfig {
            latent: 2,
            sample_shape: vec![2],
            g_hidden: vec![128, 128, 128],
            d_hidden: vec![128, 128, 128],
            leaky_slope: 0.0,
            d_dropout: 0.0,
            output: MlpOutput::Linear,
            pack: 1,
        }
    }

    fn activation(&self) -> Box<dyn Module> {
        if self.leaky_slope > 0.0 {
            Box::new(LeakyReLU::new(self.leaky_slope))
        } else {
            Box::new(ReLU)
        }
    }
}

/// The vanilla GAN: `G: z -> x`, `D: x -> logit`, both multilayer perceptrons.
pub struct Mlp {
    config: MlpConfig,
    g: Sequential,
    d: Packed<Sequential>,
}

impl Mlp {
    /// Builds both players with PyTorch's default initialisation.
    ///
    /// # Errors
    /// If a width is zero or the dropout probability is outside `[0, 1)`.
    pub fn new(config: MlpConfig, rng: &mut dyn RngCore) -> Result<Self> {
        check_pack("mlp", config.pack)?;
        let data: usize = config.sample_shape.iter().product();
        if config.latent == 0
            || data == 0
            || config.g_hidden.contains(&0)
            || config.d_hidden.contains(&0)
        {
            return Err(config_error(
                "mlp",
                format!("widths must be positive: {config:?}"),
            ));
        }
        if !(0.0..1.0).contains(&config.d_dropout) {
            return Err(config_error(
                "mlp",
                format!("dropout {} outside [0, 1)", config.d_dropout),
            ));
        }
        let mut g = Sequential::new();
        let mut width = config.latent;
        for &h in &config.g_hidden {
            g.push(Box::new(LinearConfig::new(width, h).build(rng)?));
            g.push(config.activation());
            width = h;
        }
        g.push(Box::new(LinearConfig::new(width, data).build(rng)?));
        if config.output == MlpOutput::Tanh {
            g.push(Box::new(Tanh));
        }
        if config.sample_shape.len() > 1 {
            g.push(Box::new(Reshape::new(&config.sample_shape)));
        }
        // A packed discriminator sees `pack` samples' features side by side.
        let d_in = data * config.pack;
        let mut d = Sequential::new();
        if config.sample_shape.len() > 1 {
            d.push(Box::new(Reshape::new(&[d_in])));
        }
        let mut width = d_in;
        for &h in &config.d_hidden {
            d.push(Box::new(LinearConfig::new(width, h).build(rng)?));
            d.push(config.activation());
            if config.d_dropout > 0.0 {
                d.push(Box::new(Dropout::new(config.d_dropout)));
            }
            width = h;
        }
        d.push(Box::new(LinearConfig::new(width, 1).build(rng)?));
        let d = Packed::new(d, config.pack);
        Ok(Mlp { config, g, d })
    }
}

impl Gan for Mlp {
    fn generator(&self) -> &dyn Module {
        &self.g
    }

    fn discriminator(&self) -> &dyn Module {
        &self.d
    }

    fn config(&self) -> ModelConfig {
        ModelConfig::Mlp(self.config.clone())
    }

    fn noise(&self, n: usize, rng: &mut dyn RngCore) -> Option<Tensor> {
        Some(Tensor::randn(&[n, self.config.latent], 0.0, 1.0, rng))
    }

    fn pack(&self) -> usize {
        self.config.pack
    }
}
