//! The six workloads of the reference benchmark (`../shared/bench/gan_bench.py`): the same
//! networks, losses, optimizer settings and iteration as there, so that `gantry bench`, the
//! criterion benches and the PyTorch script time the same work.
//!
//! One iteration is one [`Trainer::train_step`] with `k = 1`: the pytorch/examples DCGAN step
//! for `mlp` and the DCGANs (G makes a fake batch, D steps on the real and the detached fake
//! batch, G steps through D on the same fake batch), pix2pix's own step for `p2p*` (D on the
//! fake pair first, loss halved; G's loss GAN + 100 L1).
//!
//! [`Workload::layers`] lists each network's layers from the reference's shapes, which gives
//! parameter counts and the reference's FLOP count (forward FLOPs of convolutions, transposed
//! convolutions and linear layers only, 2 x multiply-adds; an iteration costs
//! `3 F_G + 9 F_D`: G forward and backward once, D forward and backward three times).
//!
//! ```
//! use gantry_gan::workloads::Workload;
//!
//! let w: Workload = "mlp".parse().unwrap();
//! let size = w.default_image_size();
//! assert_eq!(w.flops_per_iter(size, 64).unwrap(), 1_183_481_856);
//! let (mut trainer, batch) = w.setup(size, 4, 0).unwrap();
//! let metrics = trainer.train_step(&mut || batch.clone()).unwrap();
//! assert!(metrics.loss_d.is_finite());
//! ```

use crate::error::{Result, config_error};
use crate::models::{Batch, DcganConfig, MlpConfig, MlpOutput, ModelConfig, Pix2PixConfig};
use crate::objective::ObjectiveConfig;
use crate::train::{OptimConfig, TrainConfig, Trainer};
use gantry_tensor::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::fmt;
use std::str::FromStr;

/// A workload of the reference benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Workload {
    /// The MLP GAN on flat 784-pixel digits: G 100-256-512-1024-784 (LeakyReLU 0.2, tanh),
    /// D 784-512-256-1 (LeakyReLU 0.2); Adam 2e-4 (0.5, 0.999).
    Mlp,
    /// The TensorFlow DCGAN tutorial's network for 28x28x1; Adam 1e-4 (0.9, 0.999).
    Dcgan28,
    /// pytorch/examples DCGAN, nz 100, ngf = ndf = 64, RGB 64x64; Adam 2e-4 (0.5, 0.999).
    Dcgan64c3,
    /// The same with one channel.
    Dcgan64c1,
    /// pix2pix at 64x64: U-Net with 6 downsamplings (ngf 64, batch norm, dropout) and the
    /// 3-layer PatchGAN (ndf 64) on 3 + 3 channels; Adam 2e-4 (0.5, 0.999).
    P2p64,
    /// pix2pix at 256x256: `unet_256` (8 downsamplings) and the 3-layer PatchGAN.
    P2p256,
}

/// A layer of the reference networks, with what its cost and size depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// `nn.Linear`.
    Linear {
        /// Input features.
        inputs: usize,
        /// Output features.
        outputs: usize,
        /// Whether it has a bias.
        bias: bool,
    },
    /// `nn.Conv2d` with a square kernel, on a square input of side `input`.
    Conv2d {
        /// Input side.
        input: usize,
        /// Input channels.
        cin: usize,
        /// Output channels.
        cout: usize,
        /// Kernel side.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Padding.
        padding: usize,
        /// Whether it has a bias.
        bias: bool,
    },
    /// `nn.ConvTranspose2d` with a square kernel, on a square input of side `input`.
    ConvTranspose2d {
        /// Input side.
        input: usize,
        /// Input channels.
        cin: usize,
        /// Output channels.
        cout: usize,
        /// Kernel side.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Padding.
        padding: usize,
        /// Output padding.
        output_padding: usize,
        /// Whether it has a bias.
        bias: bool,
    },
    /// Batch norm over `features` (weight and bias trained; no FLOPs counted).
    BatchNorm {
        /// Features (channels).
        features: usize,
    },
}

impl Layer {
    /// Trainable parameters, as PyTorch's `numel` sum counts them.
    pub fn params(&self) -> usize {
        match *self {
            Layer::Linear {
                inputs,
                outputs,
                bias,
            } => inputs * outputs + if bias { outputs } else { 0 },
            Layer::Conv2d {
                cin,
                cout,
                kernel,
                bias,
                ..
            }
            | Layer::ConvTranspose2d {
                cin,
                cout,
                kernel,
                bias,
                ..
            } => cin * cout * kernel * kernel + if bias { cout } else { 0 },
            Layer::BatchNorm { features } => 2 * features,
        }
    }

    /// Side of the output.
    pub fn output_side(&self) -> usize {
        match *self {
            Layer::Conv2d {
                input,
                kernel,
                stride,
                padding,
                ..
            } => (input + 2 * padding - kernel) / stride + 1,
            Layer::ConvTranspose2d {
                input,
                kernel,
                stride,
                padding,
                output_padding,
                ..
            } => (input - 1) * stride + kernel + output_padding - 2 * padding,
            Layer::Linear { .. } | Layer::BatchNorm { .. } => 1,
        }
    }

    /// Forward FLOPs for one sample as the reference counts them: 2 x multiply-adds of
    /// convolutions (per output pixel), transposed convolutions (per input pixel) and linear
    /// layers; nothing for batch norm, biases and activations.
    pub fn flops(&self) -> u64 {
        let f = match *self {
            Layer::Linear {
                inputs, outputs, ..
            } => 2 * inputs * outputs,
            Layer::Conv2d {
                cin, cout, kernel, ..
            } => {
                let out = self.output_side();
                2 * cout * out * out * cin * kernel * kernel
            }
            Layer::ConvTranspose2d {
                input,
                cin,
                cout,
                kernel,
                ..
            } => 2 * cin * input * input * cout * kernel * kernel,
            Layer::BatchNorm { .. } => 0,
        };
        f as u64
    }

    /// Forward FLOPs for one sample of the multiply-adds whose input value is inside the input:
    /// [`Layer::flops`] without the taps that fall on a convolution's zero padding or, for a
    /// transposed convolution, outside its output. A direct convolution (oneDNN's) skips those
    /// taps; a product through a column matrix multiplies them by zero. dcgan28's first
    /// transposed convolution (5x5 over 7x7, padding 2) has 29 of 35 taps per axis on its
    /// input, so 841 / 1225 of its count.
    pub fn flops_on_input(&self) -> u64 {
        match *self {
            Layer::Conv2d {
                input,
                cin,
                cout,
                kernel,
                stride,
                padding,
                ..
            }
            | Layer::ConvTranspose2d {
                input,
                cin,
                cout,
                kernel,
                stride,
                padding,
                ..
            } => {
                // A transposed convolution's input pixel i puts tap k on output
                // i * stride - padding + k: the count of a convolution from its output back.
                let out = self.output_side();
                let (positions, len) = match self {
                    Layer::Conv2d { .. } => (out, input),
                    _ => (input, out),
                };
                let taps = taps_on_input(positions, len, kernel, stride, padding);
                (2 * cin * cout * taps * taps) as u64
            }
            Layer::Linear { .. } | Layer::BatchNorm { .. } => self.flops(),
        }
    }
}

/// Along one axis: the pairs (position `o` of `0..positions`, tap `k` of `0..kernel`) whose
/// index `o * stride + k - padding` lies in `0..len`.
fn taps_on_input(
    positions: usize,
    len: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> usize {
    (0..positions)
        .map(|o| {
            (0..kernel)
                .filter(|&k| {
                    (o * stride + k)
                        .checked_sub(padding)
                        .is_some_and(|i| i < len)
                })
                .count()
        })
        .sum()
}

/// Total trainable parameters of a layer list.
pub fn params(layers: &[Layer]) -> usize {
    layers.iter().map(Layer::params).sum()
}

/// Forward FLOPs of a layer list for one sample.
pub fn flops(layers: &[Layer]) -> u64 {
    layers.iter().map(Layer::flops).sum()
}

/// [`Layer::flops_on_input`] of a layer list for one sample.
pub fn flops_on_input(layers: &[Layer]) -> u64 {
    layers.iter().map(Layer::flops_on_input).sum()
}

/// The error for a name that is not a workload.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown workload '{0}' (expected one of: mlp, dcgan28, dcgan64c3, dcgan64c1, p2p64, p2p256)"
)]
pub struct UnknownWorkload(pub String);

impl FromStr for Workload {
    type Err = UnknownWorkload;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| UnknownWorkload(s.to_string()))
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Workload {
    /// Every workload, in the reference's order.
    pub const ALL: [Workload; 6] = [
        Workload::Mlp,
        Workload::Dcgan28,
        Workload::Dcgan64c3,
        Workload::Dcgan64c1,
        Workload::P2p64,
        Workload::P2p256,
    ];

    /// The reference's name (`--models` of `gan_bench.py`).
    pub fn name(self) -> &'static str {
        match self {
            Workload::Mlp => "mlp",
            Workload::Dcgan28 => "dcgan28",
            Workload::Dcgan64c3 => "dcgan64c3",
            Workload::Dcgan64c1 => "dcgan64c1",
            Workload::P2p64 => "p2p64",
            Workload::P2p256 => "p2p256",
        }
    }

    /// The reference's default batch sizes.
    pub fn default_batches(self) -> &'static [usize] {
        match self {
            Workload::P2p64 => &[1, 8],
            Workload::P2p256 => &[1],
            _ => &[64],
        }
    }

    /// The reference's image side (28 for the flat digits of `mlp`).
    pub fn default_image_size(self) -> usize {
        match self {
            Workload::Mlp | Workload::Dcgan28 => 28,
            Workload::Dcgan64c3 | Workload::Dcgan64c1 | Workload::P2p64 => 64,
            Workload::P2p256 => 256,
        }
    }

    /// Whether the image side may differ from the reference's (for scaling studies): the
    /// pytorch/examples DCGAN takes powers of two 16..=256, pix2pix 32..=512.
    pub fn resizable(self) -> bool {
        !matches!(self, Workload::Mlp | Workload::Dcgan28)
    }

    fn check_size(self, size: usize) -> Result<()> {
        let ok = match self {
            Workload::Mlp | Workload::Dcgan28 => size == 28,
            Workload::Dcgan64c3 | Workload::Dcgan64c1 => {
                size.is_power_of_two() && (16..=256).contains(&size)
            }
            Workload::P2p64 | Workload::P2p256 => {
                size.is_power_of_two() && (32..=512).contains(&size)
            }
        };
        if ok {
            Ok(())
        } else {
            let allowed = match self {
                Workload::Mlp | Workload::Dcgan28 => "28 only",
                Workload::Dcgan64c3 | Workload::Dcgan64c1 => "a power of two in 16..=256",
                _ => "a power of two in 32..=512",
            };
            Err(config_error(
                "workload",
                format!("{self} cannot run at image size {size} ({allowed})"),
            ))
        }
    }

    fn channels(self) -> usize {
        match self {
            Workload::Mlp | Workload::Dcgan28 | Workload::Dcgan64c1 => 1,
            _ => 3,
        }
    }

    /// The gantry model of the reference network at image side `size`.
    ///
    /// # Errors
    /// If the workload cannot run at that size (see [`Workload::resizable`]).
    pub fn model(self, size: usize) -> Result<ModelConfig> {
        self.check_size(size)?;
        Ok(match self {
            Workload::Mlp => ModelConfig::Mlp(MlpConfig {
                // Flat samples, as the reference's (b, 784) batches.
                sample_shape: vec![784],
                output: MlpOutput::Tanh,
                ..MlpConfig::digits()
            }),
            Workload::Dcgan28 => ModelConfig::Dcgan(DcganConfig::dcgan28()),
            Workload::Dcgan64c3 | Workload::Dcgan64c1 => ModelConfig::Dcgan(DcganConfig {
                image_size: size,
                ..DcganConfig::dcgan64(self.channels())
            }),
            Workload::P2p64 | Workload::P2p256 => ModelConfig::Pix2Pix(Pix2PixConfig::new(size)),
        })
    }

    /// The reference's loop settings: `k = 1`, non-saturating G loss, Adam 2e-4 (0.5, 0.999),
    /// except the TF tutorial's Adam 1e-4 (0.9, 0.999) for `dcgan28`.
    pub fn train_config(self) -> TrainConfig {
        let optim = match self {
            Workload::Dcgan28 => OptimConfig::Adam {
                lr: 1e-4,
                beta1: 0.9,
                beta2: 0.999,
            },
            _ => OptimConfig::adam_gan(),
        };
        TrainConfig {
            optim_g: optim.clone(),
            optim_d: optim,
            ..TrainConfig::default()
        }
    }

    /// A trainer for the workload at side `size` and one random batch of `batch` samples
    /// (uniform in `[-1, 1)`, as the reference's), both from `seed`. Time
    /// `trainer.train_step(&mut || data.clone())`: cloning a batch shares its storage.
    ///
    /// # Errors
    /// If the size does not fit the workload or `batch` is 0.
    pub fn setup(self, size: usize, batch: usize, seed: u64) -> Result<(Trainer, Batch)> {
        if batch == 0 {
            return Err(config_error(
                "workload",
                "the batch size must be at least 1",
            ));
        }
        let model = self.model(size)?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let gan = model.build(&mut rng)?;
        let trainer = Trainer::new(
            gan,
            TrainConfig {
                seed,
                // pix2pix's L1 term, as the reference's.
                objective: ObjectiveConfig::default_for(&model),
                ..self.train_config()
            },
        )?;
        let mut image =
            |c: usize| Tensor::rand_uniform(&[batch, c, size, size], -1.0, 1.0, &mut rng);
        let data = match self {
            Workload::Mlp => Batch::new(Tensor::rand_uniform(&[batch, 784], -1.0, 1.0, &mut rng)),
            Workload::P2p64 | Workload::P2p256 => {
                let a = image(3);
                Batch {
                    condition: Some(a),
                    ..Batch::new(image(3))
                }
            }
            _ => Batch::new(image(self.channels())),
        };
        Ok((trainer, data))
    }

    /// The reference's generator and discriminator layers at image side `size`.
    ///
    /// # Errors
    /// If the workload cannot run at that size.
    pub fn layers(self, size: usize) -> Result<(Vec<Layer>, Vec<Layer>)> {
        self.check_size(size)?;
        Ok(match self {
            Workload::Mlp => (
                linear_chain(&[100, 256, 512, 1024, 784]),
                linear_chain(&[784, 512, 256, 1]),
            ),
            Workload::Dcgan28 => dcgan28_layers(),
            Workload::Dcgan64c3 | Workload::Dcgan64c1 => dcgan64_layers(size, self.channels()),
            Workload::P2p64 | Workload::P2p256 => p2p_layers(size),
        })
    }

    /// The reference's FLOPs of one iteration with `batch` samples: `3 F_G + 9 F_D`.
    ///
    /// # Errors
    /// If the workload cannot run at that size.
    pub fn flops_per_iter(self, size: usize, batch: usize) -> Result<u64> {
        let (g, d) = self.layers(size)?;
        Ok(batch as u64 * (3 * flops(&g) + 9 * flops(&d)))
    }

    /// [`Workload::flops_per_iter`] counting only the taps on each layer's input
    /// ([`Layer::flops_on_input`]): the arithmetic a convolution that skips its zero padding
    /// does, and so the count a floor for such an implementation comes from.
    ///
    /// # Errors
    /// If the workload cannot run at that size.
    pub fn flops_on_input_per_iter(self, size: usize, batch: usize) -> Result<u64> {
        let (g, d) = self.layers(size)?;
        Ok(batch as u64 * (3 * flops_on_input(&g) + 9 * flops_on_input(&d)))
    }
}

fn linear_chain(widths: &[usize]) -> Vec<Layer> {
    widths
        .windows(2)
        .map(|w| Layer::Linear {
            inputs: w[0],
            outputs: w[1],
            bias: true,
        })
        .collect()
}

fn conv(input: usize, cin: usize, cout: usize, k: usize, s: usize, p: usize, bias: bool) -> Layer {
    Layer::Conv2d {
        input,
        cin,
        cout,
        kernel: k,
        stride: s,
        padding: p,
        bias,
    }
}

fn convt(input: usize, cin: usize, cout: usize, k: usize, s: usize, p: usize, op: usize) -> Layer {
    Layer::ConvTranspose2d {
        input,
        cin,
        cout,
        kernel: k,
        stride: s,
        padding: p,
        output_padding: op,
        bias: false,
    }
}

fn bn(features: usize) -> Layer {
    Layer::BatchNorm { features }
}

/// `DCGAN28Gen` / `DCGAN28Disc` of the reference.
fn dcgan28_layers() -> (Vec<Layer>, Vec<Layer>) {
    let g = vec![
        Layer::Linear {
            inputs: 100,
            outputs: 7 * 7 * 256,
            bias: false,
        },
        bn(7 * 7 * 256),
        convt(7, 256, 128, 5, 1, 2, 0),
        bn(128),
        convt(7, 128, 64, 5, 2, 2, 1),
        bn(64),
        convt(14, 64, 1, 5, 2, 2, 1),
    ];
    let d = vec![
        conv(28, 1, 64, 5, 2, 2, true),
        conv(14, 64, 128, 5, 2, 2, true),
        Layer::Linear {
            inputs: 128 * 7 * 7,
            outputs: 1,
            bias: true,
        },
    ];
    (g, d)
}

/// `DCGAN64Gen` / `DCGAN64Disc` (pytorch/examples), with one stride-2 block per doubling
/// of the side beyond 8 (the reference's 64: four in each player).
fn dcgan64_layers(size: usize, nc: usize) -> (Vec<Layer>, Vec<Layer>) {
    let (nz, ngf, ndf) = (100, 64, 64);
    let blocks = size.trailing_zeros() as usize - 2;
    let mut width = ngf << (blocks - 1);
    let mut g = vec![convt(1, nz, width, 4, 1, 0, 0), bn(width)];
    let mut side = 4;
    for _ in 1..blocks {
        g.push(convt(side, width, width / 2, 4, 2, 1, 0));
        g.push(bn(width / 2));
        width /= 2;
        side *= 2;
    }
    g.push(convt(side, width, nc, 4, 2, 1, 0));
    let mut d = vec![conv(size, nc, ndf, 4, 2, 1, false)];
    let (mut width, mut side) = (ndf, size / 2);
    for _ in 1..blocks {
        d.push(conv(side, width, 2 * width, 4, 2, 1, false));
        d.push(bn(2 * width));
        width *= 2;
        side /= 2;
    }
    d.push(conv(side, width, 1, 4, 1, 0, false));
    (g, d)
}

/// `UnetGenerator(3, 3, log2(size), 64)` and `NLayerDiscriminator(6, 64, 3)`.
fn p2p_layers(size: usize) -> (Vec<Layer>, Vec<Layer>) {
    let (ngf, ndf) = (64, 64);
    let downs = size.trailing_zeros() as usize;
    let width = |i: usize| ngf << i.min(3);
    let mut g = Vec::new();
    // Encoder: level i halves the side; batch norm on all but the outermost and innermost.
    for i in 0..downs {
        let cin = if i == 0 { 3 } else { width(i - 1) };
        g.push(conv(size >> i, cin, width(i), 4, 2, 1, false));
        if i != 0 && i != downs - 1 {
            g.push(bn(width(i)));
        }
    }
    // Decoder: level i takes the skip concatenation (not at the innermost) back to side
    // size >> i; the outermost has a bias and no batch norm.
    for i in (0..downs).rev() {
        let cin = if i == downs - 1 {
            width(i)
        } else {
            2 * width(i)
        };
        let cout = if i == 0 { 3 } else { width(i - 1) };
        let mut up = convt(size >> (i + 1), cin, cout, 4, 2, 1, 0);
        if i == 0 {
            if let Layer::ConvTranspose2d { bias, .. } = &mut up {
                *bias = true;
            }
            g.push(up);
        } else {
            g.push(up);
            g.push(bn(cout));
        }
    }
    let mut d = vec![conv(size, 6, ndf, 4, 2, 1, true)];
    let (mut mult, mut side) = (1, size / 2);
    for n in 1..=3 {
        let prev = mult;
        mult = (1 << n).min(8);
        let stride = if n == 3 { 1 } else { 2 };
        let layer = conv(side, ndf * prev, ndf * mult, 4, stride, 1, false);
        side = layer.output_side();
        d.push(layer);
        d.push(bn(ndf * mult));
    }
    d.push(conv(side, ndf * mult, 1, 4, 1, 1, true));
    (g, d)
}
