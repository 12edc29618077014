//! The vanilla GAN of Goodfellow et al.: fully connected generator and discriminator, for flat
//! data of any width (2-D points, 784-pixel digits).

use super::{Gan, ModelConfig, Packed, check_pack, one};
use crate::error::{Result, config_error};
use gantry_nn::{
    BatchNormConfig, Dropout, LeakyReLU, LinearConfig, MaxoutConfig, Module, ReLU, Reshape,
    Sequential, Tanh,
};
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
    /// Batch norm after each hidden layer of G, before its activation, as PacGAN's generator
    /// for the 2-D mixtures (the bias of those layers is then dropped: the norm's shift
    /// replaces it). Runs saved before the field existed had none.
    #[serde(default)]
    pub g_batch_norm: bool,
    /// Maxout units in D's hidden layers, each the largest of this many linear pieces, in
    /// place of linear layers and their activation (PacGAN's toy discriminator: 5 pieces);
    /// 0 for plain layers. Runs saved before the field existed had plain layers.
    #[serde(default)]
    pub d_maxout: usize,
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
            g_batch_norm: false,
            d_maxout: 0,
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
            g_batch_norm: false,
            d_maxout: 0,
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
    /// If a width is zero, the dropout probability is outside `[0, 1)`, or D has maxout units
    /// with no hidden layer.
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
        if config.d_maxout > 0 && config.d_hidden.is_empty() {
            return Err(config_error(
                "mlp",
                "maxout units need at least one hidden layer in D",
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
            let mut linear = LinearConfig::new(width, h);
            if config.g_batch_norm {
                linear = linear.no_bias();
            }
            g.push(Box::new(linear.build(rng)?));
            if config.g_batch_norm {
                g.push(Box::new(BatchNormConfig::new(h).build()?));
            }
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
            if config.d_maxout > 0 {
                d.push(Box::new(
                    MaxoutConfig::new(width, h, config.d_maxout).build(rng)?,
                ));
            } else {
                d.push(Box::new(LinearConfig::new(width, h).build(rng)?));
                d.push(config.activation());
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn names(module: &dyn Module) -> Vec<String> {
        let mut names = Vec::new();
        module.visit("", &mut |name, _| names.push(name.to_string()));
        names
    }

    #[test]
    fn the_generator_takes_batch_norm_in_place_of_its_hidden_biases() {
        let mut rng = StdRng::seed_from_u64(0);
        let plain = Mlp::new(MlpConfig::points(), &mut rng).unwrap();
        let config = MlpConfig {
            g_batch_norm: true,
            ..MlpConfig::points()
        };
        let normed = Mlp::new(config, &mut rng).unwrap();
        assert_eq!(
            names(plain.generator()),
            [
                "0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias", "6.weight",
                "6.bias"
            ]
        );
        let normed = names(normed.generator());
        assert_eq!(
            &normed[..5],
            [
                "0.weight",
                "1.weight",
                "1.bias",
                "1.running_mean",
                "1.running_var"
            ]
        );
        // Three hidden layers of (linear weight, 4 norm tensors), then the biased output layer.
        assert_eq!(normed.len(), 3 * 5 + 2);
        assert_eq!(normed[15..], ["9.weight", "9.bias"]);
        // The discriminator is untouched.
        assert_eq!(
            names(plain.discriminator()),
            names(
                Mlp::new(MlpConfig::points(), &mut rng)
                    .unwrap()
                    .discriminator()
            )
        );
    }

    #[test]
    fn a_maxout_discriminator_replaces_each_hidden_layer_and_its_activation() {
        let mut rng = StdRng::seed_from_u64(0);
        let config = MlpConfig {
            d_hidden: vec![6, 6],
            d_maxout: 5,
            pack: 2,
            ..MlpConfig::points()
        };
        let gan = Mlp::new(config.clone(), &mut rng).unwrap();
        let shapes: Vec<(String, Vec<usize>)> = {
            let mut v = Vec::new();
            gan.discriminator()
                .visit("", &mut |name, p| v.push((name.to_string(), p.shape())));
            v
        };
        // Two maxout layers of 6 units x 5 pieces (the first reads a pair of points), then
        // the linear output; no activation layers between them.
        let want: Vec<(String, Vec<usize>)> = [
            ("0.weight", vec![30, 4]),
            ("0.bias", vec![30]),
            ("1.weight", vec![30, 6]),
            ("1.bias", vec![30]),
            ("2.weight", vec![1, 6]),
            ("2.bias", vec![1]),
        ]
        .into_iter()
        .map(|(n, s)| (n.to_string(), s))
        .collect();
        assert_eq!(shapes.len(), want.len(), "{shapes:?}");
        for ((n, s), (wn, ws)) in shapes.iter().zip(&want) {
            assert!(n.ends_with(wn.as_str()) && s == ws, "{shapes:?}");
        }
        // The generator is untouched.
        assert_eq!(
            names(gan.generator()),
            names(Mlp::new(MlpConfig::points(), &mut rng).unwrap().generator())
        );
        let no_hidden = MlpConfig {
            d_hidden: vec![],
            ..config
        };
        let err = Mlp::new(no_hidden, &mut rng).err().unwrap().to_string();
        assert!(
            err.contains("maxout units need at least one hidden layer"),
            "{err}"
        );
    }

    #[test]
    fn configs_saved_before_the_norm_or_maxout_existed_load_without_them() {
        let mut json = serde_json::to_value(MlpConfig::points()).unwrap();
        json.as_object_mut().unwrap().remove("g_batch_norm");
        json.as_object_mut().unwrap().remove("d_maxout");
        let config: MlpConfig = serde_json::from_value(json).unwrap();
        assert_eq!(config, MlpConfig::points());
    }
}
