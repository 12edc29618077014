//! pix2pix (Isola et al.): a U-Net generator with skip connections and a 70x70 PatchGAN
//! discriminator on `concat(A, B)`; the generator's loss adds `lambda * L1(G(A), B)`.

use super::{Batch, Gan, ModelConfig, Packed, check_pack, one};
use crate::error::{Result, config_error};
use gantry_autodiff::Var;
use gantry_nn::{
    BatchNorm, BatchNormConfig, Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig,
    LeakyReLU, Mode, Module, Param, Sequential, init, join,
};
use gantry_tensor::Tensor;
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// Settings of [`Pix2Pix`]; the defaults are the paper's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pix2PixConfig {
    /// Image side, a power of two from 32 to 512; the U-Net downsamples `log2(size)` times
    /// (8 for 256, 6 for 64) to a 1x1 bottleneck.
    pub image_size: usize,
    /// Channels of `A` (the input).
    pub in_channels: usize,
    /// Channels of `B` (the output).
    pub out_channels: usize,
    /// Generator width (64 in the paper).
    pub ngf: usize,
    /// Discriminator width (64 in the paper).
    pub ndf: usize,
    /// Convolutions of the PatchGAN between the first and the last (3: the 70x70 PatchGAN).
    pub d_layers: usize,
    /// Weight of the L1 term (100 in the paper).
    pub lambda_l1: f32,
    /// Dropout 0.5 in the decoder blocks that pix2pix gives it.
    pub dropout: bool,
    /// Mode used when translating after training: the paper keeps dropout and batch
    /// statistics on (`Train`).
    pub test_mode_train: bool,
    /// `concat(A, B)` pairs the discriminator judges at once (PacGAN; 1 is the standard
    /// discriminator).
    #[serde(default = "one")]
    pub pack: usize,
}

impl Pix2PixConfig {
    /// The paper's settings for RGB images of side `image_size`.
    pub fn new(image_size: usize) -> Self {
        Pix2PixConfig {
            image_size,
            in_channels: 3,
            out_channels: 3,
            ngf: 64,
            ndf: 64,
            d_layers: 3,
            lambda_l1: 100.0,
            dropout: true,
            test_mode_train: true,
            pack: 1,
        }
    }

    /// The number of downsamplings of the U-Net.
    pub fn num_downs(&self) -> usize {
        self.image_size.trailing_zeros() as usize
    }

    /// The mode for translation after training.
    pub fn test_mode(&self) -> Mode {
        if self.test_mode_train {
            Mode::Train
        } else {
            Mode::Eval
        }
    }

    fn validate(&self) -> Result<()> {
        check_pack("pix2pix", self.pack)?;
        if !self.image_size.is_power_of_two() || !(32..=512).contains(&self.image_size) {
            return Err(config_error(
                "pix2pix",
                format!(
                    "image size {} is not a power of two in 32..=512 (the U-Net halves it down to 1x1; resize to 64 or 256)",
                    self.image_size
                ),
            ));
        }
        if self.in_channels == 0 || self.out_channels == 0 || self.ngf == 0 || self.ndf == 0 {
            return Err(config_error(
                "pix2pix",
                format!("channels and widths must be positive: {self:?}"),
            ));
        }
        Ok(())
    }
}

/// The U-Net generator, named as the reference fixture: `down.{i}`, `down_bn.{i}` (none on
/// the outermost nor the innermost), `up.{i}` (bias only on `up.0`), `up_bn.{i}` (none on
/// `up.0`).
pub struct UNet {
    down: Vec<Conv2d>,
    down_bn: Vec<Option<BatchNorm>>,
    up: Vec<ConvTranspose2d>,
    up_bn: Vec<Option<BatchNorm>>,
    dropout: Vec<bool>,
}

impl UNet {
    /// A U-Net with `num_downs` downsamplings, width `ngf`.
    ///
    /// # Errors
    /// If a width is zero.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        num_downs: usize,
        ngf: usize,
        dropout: bool,
        rng: &mut dyn RngCore,
    ) -> Result<Self> {
        let n = num_downs;
        let width = |i: usize| ngf * (1usize << i.min(3));
        let (mut down, mut down_bn, mut up, mut up_bn, mut drop) =
            (vec![], vec![], vec![], vec![], vec![]);
        for i in 0..n {
            let input = if i == 0 { in_channels } else { width(i - 1) };
            down.push(
                Conv2dConfig::new(input, width(i), 4)
                    .stride(2)
                    .padding(1)
                    .bias(false)
                    .build(rng)?,
            );
            down_bn.push(if i == 0 || i == n - 1 {
                None
            } else {
                Some(BatchNormConfig::new(width(i)).build()?)
            });
            let up_in = if i == n - 1 { width(i) } else { 2 * width(i) };
            let up_out = if i == 0 { out_channels } else { width(i - 1) };
            up.push(
                ConvTranspose2dConfig::new(up_in, up_out, 4)
                    .stride(2)
                    .padding(1)
                    .bias(i == 0)
                    .build(rng)?,
            );
            up_bn.push(if i == 0 {
                None
            } else {
                Some(BatchNormConfig::new(up_out).build()?)
            });
            // pix2pix's UnetGenerator: dropout in the ngf*8 blocks between the innermost and
            // the ngf*4 one (three of them at 256x256).
            drop.push(dropout && i >= 4 && i + 1 < n);
        }
        Ok(UNet {
            down,
            down_bn,
            up,
            up_bn,
            dropout: drop,
        })
    }
}

impl Module for UNet {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        for (i, m) in self.down.iter().enumerate() {
            m.visit(&join(prefix, &format!("down.{i}")), f);
        }
        for (i, m) in self.down_bn.iter().enumerate() {
            if let Some(m) = m {
                m.visit(&join(prefix, &format!("down_bn.{i}")), f);
            }
        }
        for (i, m) in self.up.iter().enumerate() {
            m.visit(&join(prefix, &format!("up.{i}")), f);
        }
        for (i, m) in self.up_bn.iter().enumerate() {
            if let Some(m) = m {
                m.visit(&join(prefix, &format!("up_bn.{i}")), f);
            }
        }
    }

    fn forward<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        let n = self.down.len();
        let mut skips = Vec::with_capacity(n);
        let mut h = x;
        for i in 0..n {
            if i > 0 {
                h = h.leaky_relu(0.2);
            }
            h = self.down[i].forward(h, mode);
            if let Some(bn) = &self.down_bn[i] {
                h = bn.forward(h, mode);
            }
            skips.push(h);
        }
        for i in (0..n).rev() {
            let input = if i == n - 1 {
                h
            } else {
                Var::concat(&[skips[i], h], 1)
            };
            h = self.up[i].forward(input.relu(), mode);
            if let Some(bn) = &self.up_bn[i] {
                h = bn.forward(h, mode);
            }
            if self.dropout[i] && mode == Mode::Train {
                let tape = h.tape();
                h = h.dropout(0.5, &mut tape.rng());
            }
        }
        h.tanh()
    }

    fn describe(&self) -> String {
        format!("UNet(downs={})", self.down.len())
    }
}

/// The PatchGAN discriminator (`NLayerDiscriminator`): named by `nn.Sequential` index.
pub struct PatchGan;

impl PatchGan {
    /// A PatchGAN on `in_channels` with width `ndf` and `layers` strided blocks (3 gives
    /// the 70x70 receptive field).
    ///
    /// # Errors
    /// If a width is zero.
    pub fn build(
        in_channels: usize,
        ndf: usize,
        layers: usize,
        rng: &mut dyn RngCore,
    ) -> Result<Sequential> {
        let conv = |i, o, s| Conv2dConfig::new(i, o, 4).stride(s).padding(1);
        let mut d = Sequential::new()
            .add(conv(in_channels, ndf, 2).build(rng)?)
            .add(LeakyReLU::new(0.2));
        let mut mult = 1;
        for n in 1..=layers {
            let prev = mult;
            mult = (1 << n).min(8);
            let stride = if n == layers { 1 } else { 2 };
            d = d
                .add(
                    conv(ndf * prev, ndf * mult, stride)
                        .bias(false)
                        .build(rng)?,
                )
                .add(BatchNormConfig::new(ndf * mult).build()?)
                .add(LeakyReLU::new(0.2));
        }
        Ok(d.add(conv(ndf * mult, 1, 1).build(rng)?))
    }
}

/// A pix2pix pair.
pub struct Pix2Pix {
    config: Pix2PixConfig,
    g: UNet,
    d: Packed<Sequential>,
}

impl Pix2Pix {
    /// Builds both players with pix2pix's N(0, 0.02) initialisation.
    ///
    /// # Errors
    /// If the configuration is invalid (see [`Pix2PixConfig`]).
    pub fn new(config: Pix2PixConfig, rng: &mut dyn RngCore) -> Result<Self> {
        config.validate()?;
        let c = &config;
        let g = UNet::new(
            c.in_channels,
            c.out_channels,
            c.num_downs(),
            c.ngf,
            c.dropout,
            rng,
        )?;
        let pair = c.in_channels + c.out_channels;
        let d = PatchGan::build(pair * c.pack, c.ndf, c.d_layers, rng)?;
        init::pix2pix(&g, rng);
        init::pix2pix(&d, rng);
        let d = Packed::new(d, c.pack);
        Ok(Pix2Pix { config, g, d })
    }
}

impl Gan for Pix2Pix {
    fn generator(&self) -> &dyn Module {
        &self.g
    }

    fn discriminator(&self) -> &dyn Module {
        &self.d
    }

    fn config(&self) -> ModelConfig {
        ModelConfig::Pix2Pix(self.config.clone())
    }

    fn noise(&self, _n: usize, _rng: &mut dyn RngCore) -> Option<Tensor> {
        None
    }

    fn discriminator_input<'t>(&self, x: Var<'t>, batch: &Batch) -> Var<'t> {
        let a = batch.condition.as_ref().expect("pix2pix batches carry A");
        Var::concat(&[x.tape().constant(a.clone()), x], 1)
    }

    fn pack(&self) -> usize {
        self.config.pack
    }

    fn d_loss_scale(&self) -> f32 {
        0.5
    }

    fn fake_first(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_autodiff::Tape;
    use gantry_nn::forward_with_features;
    use rand::SeedableRng;

    /// The PatchGAN's features (every layer's output, by `nn.Sequential` index, the taps of
    /// pix2pixHD's feature matching) equal a layer-by-layer forward pass in training mode, and
    /// recording them changes neither the output nor the gradient.
    #[test]
    fn patchgan_features_equal_a_manual_forward() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(6);
        let d = PatchGan::build(6, 4, 3, &mut rng).unwrap();
        let x = Tensor::randn(&[2, 6, 32, 32], 0.0, 1.0, &mut rng);
        let tape = Tape::new();
        let (y, features) = forward_with_features(&d, tape.constant(x.clone()), Mode::Train);
        assert_eq!(features.len(), d.len());
        let mut h = tape.constant(x.clone());
        for (i, layer) in d.children().iter().enumerate() {
            h = layer.forward(h, Mode::Train);
            let f = features.get(&i.to_string()).expect("one feature per layer");
            assert_eq!(f.value().to_vec(), h.value().to_vec(), "feature {i}");
        }
        assert_eq!(y.value().to_vec(), h.value().to_vec());
        assert_eq!(
            y.value().to_vec(),
            d.forward(tape.constant(x), Mode::Train).value().to_vec()
        );
    }
}
