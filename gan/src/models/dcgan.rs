//! DCGAN (Radford et al.): the pytorch/examples network at 64x64 (and other powers of two),
//! and the TensorFlow tutorial's network for 28x28 digits.

use super::{Gan, ModelConfig, Packed, check_pack, one};
use crate::error::{Result, config_error};
use gantry_autodiff::Var;
use gantry_nn::{
    BatchNorm, BatchNormConfig, Conv2dConfig, ConvTranspose2dConfig, Dropout, Flatten, LeakyReLU,
    Linear, LinearConfig, Mode, Module, Param, ReLU, Sequential, Tanh, init, join,
};
use gantry_tensor::Tensor;
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// Which DCGAN architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DcganVariant {
    /// pytorch/examples `dcgan`: transposed convs k4 s2 p1, batch norm, no bias, N(0, 0.02)
    /// init; 64x64 exactly as there, other powers of two (16..=256) by adding or removing
    /// blocks.
    Dcgan64,
    /// The TensorFlow DCGAN tutorial's network for 28x28 (`dcgan28` in the reference bench):
    /// dense 7x7x(4 ngf) + batch norm, transposed convs 5x5, LeakyReLU 0.3, D with dropout
    /// 0.3; the tutorial's widths at ngf = ndf = 64.
    Dcgan28,
}

/// Settings of a [`Dcgan`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DcganConfig {
    /// The architecture.
    pub variant: DcganVariant,
    /// Image side (64 for pytorch/examples, 28 for the tutorial network).
    pub image_size: usize,
    /// Image channels (1 or 3).
    pub channels: usize,
    /// Latent size.
    pub nz: usize,
    /// Generator width (`ngf`): the last hidden layer's channels, doubled per layer towards
    /// the noise (the 28x28 network: 4 ngf x 7 x 7, 2 ngf, ngf).
    pub ngf: usize,
    /// Discriminator width (`ndf`): the first layer's channels, doubled per layer.
    pub ndf: usize,
    /// Samples the discriminator judges at once (PacGAN; 1 is the standard discriminator).
    #[serde(default = "one")]
    pub pack: usize,
    /// Dropout after each hidden layer of the 28x28 discriminator [default (`None`): the
    /// tutorial's 0.3]. The 64x64 network has none and refuses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d_dropout: Option<f32>,
}

impl DcganConfig {
    /// pytorch/examples' settings: 64x64, nz 100, ngf = ndf = 64.
    pub fn dcgan64(channels: usize) -> Self {
        DcganConfig {
            variant: DcganVariant::Dcgan64,
            image_size: 64,
            channels,
            nz: 100,
            ngf: 64,
            ndf: 64,
            pack: 1,
            d_dropout: None,
        }
    }

    /// The tutorial network for 28x28 single-channel digits.
    pub fn dcgan28() -> Self {
        DcganConfig {
            variant: DcganVariant::Dcgan28,
            image_size: 28,
            channels: 1,
            nz: 100,
            ngf: 64,
            ndf: 64,
            pack: 1,
            d_dropout: None,
        }
    }

    pub(super) fn validate(&self) -> Result<()> {
        check_pack("dcgan", self.pack)?;
        let bad = |m: String| Err(config_error("dcgan", m));
        if !(1..=4).contains(&self.channels) || self.nz == 0 || self.ngf == 0 || self.ndf == 0 {
            return bad(format!(
                "channels must be 1..=4 and widths positive: {self:?}"
            ));
        }
        match self.variant {
            DcganVariant::Dcgan28 if self.image_size != 28 => bad(format!(
                "the 28x28 network needs 28x28 images, not {0}x{0}",
                self.image_size
            )),
            DcganVariant::Dcgan64
                if !self.image_size.is_power_of_two() || !(16..=256).contains(&self.image_size) =>
            {
                bad(format!(
                    "image size {} is not a power of two in 16..=256 (resize the data, e.g. to 64)",
                    self.image_size
                ))
            }
            _ => match self.d_dropout {
                Some(p) if self.variant == DcganVariant::Dcgan64 => bad(format!(
                    "dropout {p}: the 64x64 network (pytorch/examples) has no dropout"
                )),
                Some(p) if !(0.0..1.0).contains(&p) => bad(format!("dropout {p} outside [0, 1)")),
                _ => Ok(()),
            },
        }
    }

    /// The dropout of the 28x28 discriminator's hidden layers.
    pub fn dropout28(&self) -> f32 {
        self.d_dropout.unwrap_or(0.3)
    }
}

/// A DCGAN generator/discriminator pair.
pub struct Dcgan {
    config: DcganConfig,
    g: Box<dyn Module>,
    d: Packed<Sequential>,
}

impl Dcgan {
    /// Builds both players (pytorch/examples' N(0, 0.02) initialisation for `Dcgan64`,
    /// PyTorch's defaults for `Dcgan28`, as the reference bench).
    ///
    /// # Errors
    /// If the image size does not fit the variant, or a width is zero.
    pub fn new(config: DcganConfig, rng: &mut dyn RngCore) -> Result<Self> {
        config.validate()?;
        let (g, d) = players(&config, config.channels * config.pack, rng)?;
        Ok(Dcgan {
            g,
            d: Packed::new(d, config.pack),
            config,
        })
    }
}

/// The generator for `c` and a discriminator taking `d_channels` input channels, with the
/// variant's initialisation (shared with the label-conditional DCGAN, whose players differ
/// only in their input widths).
pub(super) fn players(
    c: &DcganConfig,
    d_channels: usize,
    rng: &mut dyn RngCore,
) -> Result<(Box<dyn Module>, Sequential)> {
    Ok(match c.variant {
        DcganVariant::Dcgan64 => {
            let g = generator64(c, rng)?;
            let d = discriminator64(c, d_channels, rng)?;
            init::dcgan(&g, rng);
            init::dcgan(&d, rng);
            (Box::new(g), d)
        }
        DcganVariant::Dcgan28 => (
            Box::new(Generator28::new(c, rng)?),
            discriminator28(c, d_channels, rng)?,
        ),
    })
}

/// The number of stride-2 blocks between 4x4 and the image size.
pub(super) fn upsamplings(size: usize) -> usize {
    size.trailing_zeros() as usize - 2
}

pub(super) fn generator64(c: &DcganConfig, rng: &mut dyn RngCore) -> Result<Sequential> {
    let blocks = upsamplings(c.image_size);
    let mut width = c.ngf << (blocks - 1);
    let mut g = Sequential::new()
        .add(
            ConvTranspose2dConfig::new(c.nz, width, 4)
                .bias(false)
                .build(rng)?,
        )
        .add(BatchNormConfig::new(width).build()?)
        .add(ReLU);
    for _ in 1..blocks {
        g = g
            .add(
                ConvTranspose2dConfig::new(width, width / 2, 4)
                    .stride(2)
                    .padding(1)
                    .bias(false)
                    .build(rng)?,
            )
            .add(BatchNormConfig::new(width / 2).build()?)
            .add(ReLU);
        width /= 2;
    }
    Ok(g.add(
        ConvTranspose2dConfig::new(width, c.channels, 4)
            .stride(2)
            .padding(1)
            .bias(false)
            .build(rng)?,
    )
    .add(Tanh))
}

fn discriminator64(
    c: &DcganConfig,
    in_channels: usize,
    rng: &mut dyn RngCore,
) -> Result<Sequential> {
    let blocks = upsamplings(c.image_size);
    let mut width = c.ndf;
    let mut d = Sequential::new()
        .add(
            Conv2dConfig::new(in_channels, width, 4)
                .stride(2)
                .padding(1)
                .bias(false)
                .build(rng)?,
        )
        .add(LeakyReLU::new(0.2));
    for _ in 1..blocks {
        d = d
            .add(
                Conv2dConfig::new(width, width * 2, 4)
                    .stride(2)
                    .padding(1)
                    .bias(false)
                    .build(rng)?,
            )
            .add(BatchNormConfig::new(width * 2).build()?)
            .add(LeakyReLU::new(0.2));
        width *= 2;
    }
    // Logits out: the sigmoid lives in the loss (BCE with logits), which is stable.
    Ok(
        d.add(Conv2dConfig::new(width, 1, 4).bias(false).build(rng)?)
            .add(Flatten),
    )
}

/// The tutorial generator, with the reference bench's PyTorch names (`fc`, `bn0`, `conv.N`).
struct Generator28 {
    fc: Linear,
    bn0: BatchNorm,
    conv: Sequential,
    /// Channels of the 7x7 map the dense layer makes.
    width: usize,
}

impl Generator28 {
    fn new(c: &DcganConfig, rng: &mut dyn RngCore) -> Result<Self> {
        // Keras batch norm: momentum 0.99 (PyTorch's 0.01), eps 1e-3.
        let bn = |n| {
            BatchNormConfig {
                num_features: n,
                eps: 1e-3,
                momentum: 0.01,
            }
            .build()
        };
        let slope = 0.3;
        let w = c.ngf;
        let conv = Sequential::new()
            .add(
                ConvTranspose2dConfig::new(4 * w, 2 * w, 5)
                    .padding(2)
                    .bias(false)
                    .build(rng)?,
            )
            .add(bn(2 * w)?)
            .add(LeakyReLU::new(slope))
            .add(
                ConvTranspose2dConfig::new(2 * w, w, 5)
                    .stride(2)
                    .padding(2)
                    .output_padding(1)
                    .bias(false)
                    .build(rng)?,
            )
            .add(bn(w)?)
            .add(LeakyReLU::new(slope))
            .add(
                ConvTranspose2dConfig::new(w, c.channels, 5)
                    .stride(2)
                    .padding(2)
                    .output_padding(1)
                    .bias(false)
                    .build(rng)?,
            )
            .add(Tanh);
        Ok(Generator28 {
            fc: LinearConfig::new(c.nz, 7 * 7 * 4 * w)
                .no_bias()
                .build(rng)?,
            bn0: bn(7 * 7 * 4 * w)?,
            conv,
            width: 4 * w,
        })
    }
}

impl Module for Generator28 {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        self.fc.visit(&join(prefix, "fc"), f);
        self.bn0.visit(&join(prefix, "bn0"), f);
        self.conv.visit(&join(prefix, "conv"), f);
    }

    fn forward<'t>(&self, z: Var<'t>, mode: Mode) -> Var<'t> {
        let h = self
            .bn0
            .forward(self.fc.forward(z, mode), mode)
            .leaky_relu(0.3);
        let n = h.shape()[0];
        self.conv.forward(h.reshape(&[n, self.width, 7, 7]), mode)
    }
}

/// The tutorial's discriminator (`ndf` 64: convs of 64 and 128 channels). Its dropout layers
/// stay in place at any rate, so that the parameter names do not depend on it.
fn discriminator28(
    c: &DcganConfig,
    in_channels: usize,
    rng: &mut dyn RngCore,
) -> Result<Sequential> {
    let (slope, w, p) = (0.3, c.ndf, c.dropout28());
    Ok(Sequential::new()
        .add(
            Conv2dConfig::new(in_channels, w, 5)
                .stride(2)
                .padding(2)
                .build(rng)?,
        )
        .add(LeakyReLU::new(slope))
        .add(Dropout::new(p))
        .add(
            Conv2dConfig::new(w, 2 * w, 5)
                .stride(2)
                .padding(2)
                .build(rng)?,
        )
        .add(LeakyReLU::new(slope))
        .add(Dropout::new(p))
        .add(Flatten)
        .add(LinearConfig::new(2 * w * 7 * 7, 1).build(rng)?))
}

impl Gan for Dcgan {
    fn generator(&self) -> &dyn Module {
        self.g.as_ref()
    }

    fn discriminator(&self) -> &dyn Module {
        &self.d
    }

    fn config(&self) -> ModelConfig {
        ModelConfig::Dcgan(self.config.clone())
    }

    fn noise(&self, n: usize, rng: &mut dyn RngCore) -> Option<Tensor> {
        let shape = match self.config.variant {
            DcganVariant::Dcgan64 => vec![n, self.config.nz, 1, 1],
            DcganVariant::Dcgan28 => vec![n, self.config.nz],
        };
        Some(Tensor::randn(&shape, 0.0, 1.0, rng))
    }

    fn pack(&self) -> usize {
        self.config.pack
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_autodiff::Tape;
    use gantry_nn::{forward_with_features, param_count};
    use rand::SeedableRng;

    /// The TensorFlow tutorial's parameter counts at ngf = ndf = 64, and every width
    /// following ngf and ndf otherwise.
    #[test]
    fn the_28x28_network_has_the_tutorials_widths_at_64_and_follows_ngf_ndf() {
        let count = |ngf: usize, ndf: usize| {
            let c = DcganConfig {
                ngf,
                ndf,
                ..DcganConfig::dcgan28()
            };
            let gan = Dcgan::new(c, &mut rand::rngs::StdRng::seed_from_u64(0)).unwrap();
            (
                param_count(gan.generator()),
                param_count(gan.discriminator()),
            )
        };
        let g = |w: usize| {
            let dense = 7 * 7 * 4 * w;
            100 * dense
                + 2 * dense
                + 4 * w * 2 * w * 25
                + 2 * 2 * w
                + 2 * w * w * 25
                + 2 * w
                + w * 25
        };
        let d = |w: usize| (25 * w + w) + (w * 2 * w * 25 + 2 * w) + (2 * w * 49 + 1);
        assert_eq!(
            count(64, 64),
            (2_305_472, 212_865),
            "the tutorial's trainable counts"
        );
        assert_eq!(count(64, 64), (g(64), d(64)));
        assert_eq!(count(8, 4), (g(8), d(4)));
    }

    /// The 28x28 discriminator drops 30% unless told otherwise (configs saved before the
    /// setting existed load as the tutorial's); the 64x64 network has no dropout to set.
    #[test]
    fn the_28x28_dropout_is_the_tutorials_unless_set_and_the_64_network_refuses_it() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let old: DcganConfig = serde_json::from_str(
            r#"{"variant":"dcgan28","image_size":28,"channels":1,"nz":100,"ngf":64,"ndf":64}"#,
        )
        .unwrap();
        assert_eq!((old.d_dropout, old.dropout28()), (None, 0.3));
        assert!(!serde_json::to_string(&old).unwrap().contains("d_dropout"));
        let off = DcganConfig {
            d_dropout: Some(0.0),
            ..DcganConfig::dcgan28()
        };
        assert!(Dcgan::new(off, &mut rng).is_ok());
        for (config, want) in [
            (
                DcganConfig {
                    d_dropout: Some(0.1),
                    ..DcganConfig::dcgan64(3)
                },
                "has no dropout",
            ),
            (
                DcganConfig {
                    d_dropout: Some(1.0),
                    ..DcganConfig::dcgan28()
                },
                "outside [0, 1)",
            ),
        ] {
            let err = Dcgan::new(config, &mut rng).err().unwrap().to_string();
            assert!(err.contains(want), "{err}");
        }
    }

    /// The discriminator's features (every layer's output, by `nn.Sequential` index) are the
    /// activations of a layer-by-layer forward pass, and its output is the last of them: a
    /// feature-matching loss needs no second forward pass.
    #[test]
    fn discriminator_features_equal_a_manual_forward() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let config = DcganConfig {
            image_size: 16,
            ndf: 4,
            ngf: 4,
            ..DcganConfig::dcgan64(3)
        };
        let (_, d) = players(&config, 3, &mut rng).unwrap();
        let x = Tensor::randn(&[2, 3, 16, 16], 0.0, 1.0, &mut rng);
        let tape = Tape::new();
        let (y, features) = forward_with_features(&d, tape.constant(x.clone()), Mode::Eval);
        assert_eq!(features.len(), d.len());
        let mut h = tape.constant(x);
        for (i, layer) in d.children().iter().enumerate() {
            h = layer.forward(h, Mode::Eval);
            let f = features.get(&i.to_string()).expect("one feature per layer");
            assert_eq!(f.shape(), h.shape(), "feature {i}");
            assert_eq!(f.value().to_vec(), h.value().to_vec(), "feature {i}");
        }
        assert_eq!(y.value().to_vec(), h.value().to_vec());
    }
}
