//! The label-conditional DCGAN (Mirza and Osindero 2014, on DCGAN's networks): both players
//! see the class `y`. The generator maps `[z | embed(y)]` to an image, the discriminator
//! judges an image together with `y` given as constant one-hot planes (`[N, K, H, W]`, plane
//! `y` all ones) concatenated to its channels.
//!
//! The networks are those of [`Dcgan`](super::Dcgan) (the TensorFlow tutorial's for 28x28,
//! pytorch/examples' for powers of two), with wider inputs, so that training behaves as
//! DCGAN's does.

use super::dcgan::players;
use super::{Batch, DcganConfig, Gan, ModelConfig, Packed};
use crate::error::{Result, config_error};
use gantry_autodiff::Var;
use gantry_nn::{Embedding, Mode, Module, Param, Sequential, join};
use gantry_tensor::Tensor;
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// Settings of a [`Cdcgan`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CdcganConfig {
    /// The DCGAN it conditions: architecture, image size and channels, latent size, widths
    /// and the discriminator's packing.
    pub dcgan: DcganConfig,
    /// Number of classes (10 for MNIST; an image folder's class sub-folders).
    pub num_classes: usize,
    /// Size of the generator's label embedding, concatenated to `z`.
    pub embed_dim: usize,
}

impl CdcganConfig {
    /// The 28x28 tutorial network for the ten digits of MNIST, with a 50-dimensional label
    /// embedding.
    pub fn mnist() -> Self {
        CdcganConfig::new(DcganConfig::dcgan28(), 10)
    }

    /// `dcgan` conditioned on `num_classes` classes, with a 50-dimensional label embedding.
    pub fn new(dcgan: DcganConfig, num_classes: usize) -> Self {
        CdcganConfig {
            dcgan,
            num_classes,
            embed_dim: 50,
        }
    }

    fn validate(&self) -> Result<()> {
        self.dcgan.validate()?;
        if self.num_classes == 0 || self.embed_dim == 0 {
            return Err(config_error(
                "cdcgan",
                format!(
                    "num_classes and embed_dim must be positive: {} and {}",
                    self.num_classes, self.embed_dim
                ),
            ));
        }
        Ok(())
    }
}

/// The conditional generator: its one input is `[z | one_hot(y)]` (`[N, nz + K]`), so that it
/// stays a one-input [`Module`]; it embeds the one-hot part and runs DCGAN's generator on
/// `[z | embed(y)]`.
///
/// Parameters: `embed.weight` (`[K, E]`), then the DCGAN generator's under `net.`.
pub struct CondGenerator {
    embed: Embedding,
    net: Box<dyn Module>,
    nz: usize,
    classes: usize,
    /// pytorch/examples' generator takes its latent as `[N, nz, 1, 1]`.
    spatial: bool,
}

impl Module for CondGenerator {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        self.embed.visit(&join(prefix, "embed"), f);
        self.net.visit(&join(prefix, "net"), f);
    }

    /// # Panics
    /// If `x` is not `[N, nz + classes]`: build it with [`Gan::latent_input`].
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        let (nz, k) = (self.nz, self.classes);
        let s = x.shape();
        assert!(
            s.len() == 2 && s[1] == nz + k,
            "cdcgan generator: input {s:?} must be [N, {}] (noise then one-hot labels; see Gan::latent_input)",
            nz + k
        );
        let z = x.slice_axis(1, 0, nz);
        let e = self.embed.forward(x.slice_axis(1, nz, nz + k), mode);
        let h = Var::concat(&[z, e], 1);
        let h = if self.spatial {
            h.reshape(&[s[0], h.shape()[1], 1, 1])
        } else {
            h
        };
        self.net.forward(h, mode)
    }

    fn describe(&self) -> String {
        format!(
            "CondGenerator({}, {})",
            self.embed.describe(),
            self.net.describe()
        )
    }
}

/// `[N, K, h, w]` constant planes: plane `labels[i]` of sample `i` is all ones, the others
/// zeros.
///
/// # Panics
/// If a label is `>= k`.
#[track_caller]
pub(crate) fn label_maps(labels: &[usize], k: usize, h: usize, w: usize) -> Tensor {
    let n = labels.len();
    Embedding::one_hot(labels, k)
        .reshape(&[n, k, 1, 1])
        .broadcast_to(&[n, k, h, w])
}

/// Scales D's first weight so that the image channels start as in the unconditional
/// network.
///
/// The 28x28 network draws weights from `U(±1/sqrt(fan_in))`, PyTorch's default: ten label
/// planes next to one image channel would shrink the image's weights by `sqrt(11)`, leaving a
/// discriminator that cannot tell the generator's first blobs from digits for hundreds of
/// steps, long enough for the generator to learn to ignore `z` (measured: every column of
/// the class grid identical from step 250 on).
fn keep_image_weight_scale(d: &Sequential, inputs: usize, image_channels: usize) {
    let factor = (inputs as f32 / image_channels as f32).sqrt();
    let mut first = None;
    d.visit("", &mut |_, p| {
        if first.is_none() && p.shape().len() == 4 {
            first = Some(p);
        }
    });
    if let Some(w) = first {
        w.update(|w| w.iter_mut().for_each(|x| *x *= factor));
    }
}

/// A label-conditional DCGAN.
pub struct Cdcgan {
    config: CdcganConfig,
    g: CondGenerator,
    d: Packed<Sequential>,
}

impl Cdcgan {
    /// Builds both players: the embedding `N(0, 1)` as PyTorch's, the networks as
    /// [`Dcgan`](super::Dcgan)'s.
    ///
    /// # Errors
    /// If the DCGAN settings are invalid (see [`DcganConfig`]) or a size is zero.
    pub fn new(config: CdcganConfig, rng: &mut dyn RngCore) -> Result<Self> {
        config.validate()?;
        let c = &config.dcgan;
        let (k, e) = (config.num_classes, config.embed_dim);
        let embed = Embedding::new(k, e, rng);
        let widened = DcganConfig {
            nz: c.nz + e,
            ..c.clone()
        };
        let (net, d) = players(&widened, (c.channels + k) * c.pack, rng)?;
        if c.variant == super::DcganVariant::Dcgan28 {
            keep_image_weight_scale(&d, c.channels + k, c.channels);
        }
        let g = CondGenerator {
            embed,
            net,
            nz: c.nz,
            classes: k,
            spatial: c.variant == super::DcganVariant::Dcgan64,
        };
        let d = Packed::new(d, c.pack);
        Ok(Cdcgan { config, g, d })
    }

    fn labels<'b>(&self, labels: Option<&'b [usize]>, n: usize) -> &'b [usize] {
        let k = self.config.num_classes;
        match labels {
            Some(l) if l.len() == n && l.iter().all(|&y| y < k) => l,
            Some(l) => panic!(
                "cdcgan: {} labels for {n} samples, or one outside 0..{k}: {l:?}",
                l.len()
            ),
            None => panic!("cdcgan: the generator and discriminator need the samples' labels"),
        }
    }
}

impl Gan for Cdcgan {
    fn generator(&self) -> &dyn Module {
        &self.g
    }

    fn discriminator(&self) -> &dyn Module {
        &self.d
    }

    fn config(&self) -> ModelConfig {
        ModelConfig::Cdcgan(self.config.clone())
    }

    fn noise(&self, n: usize, rng: &mut dyn RngCore) -> Option<Tensor> {
        Some(Tensor::randn(&[n, self.config.dcgan.nz], 0.0, 1.0, rng))
    }

    fn num_classes(&self) -> Option<usize> {
        Some(self.config.num_classes)
    }

    #[track_caller]
    fn latent_input(&self, z: Tensor, labels: Option<&[usize]>) -> Tensor {
        let n = z.shape()[0];
        let one_hot = Embedding::one_hot(self.labels(labels, n), self.config.num_classes);
        Tensor::concat(1, &[&z, &one_hot])
    }

    fn pack(&self) -> usize {
        self.config.dcgan.pack
    }

    /// The image with the batch's label planes as extra channels; a fake is judged with the
    /// labels it was generated for, which are the real batch's.
    #[track_caller]
    fn discriminator_input<'t>(&self, x: Var<'t>, batch: &Batch) -> Var<'t> {
        let s = x.shape();
        let labels = self.labels(batch.labels.as_deref(), s[0]);
        let maps = label_maps(labels, self.config.num_classes, s[2], s[3]);
        Var::concat(&[x, x.tape().constant(maps)], 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_autodiff::Tape;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn label_maps_light_the_labelled_plane() {
        let m = label_maps(&[2, 0], 3, 2, 2);
        assert_eq!(m.shape(), &[2, 3, 2, 2]);
        let v = m.to_vec();
        let plane = |i: usize, c: usize| v[(i * 3 + c) * 4..(i * 3 + c + 1) * 4].to_vec();
        assert_eq!(plane(0, 2), vec![1.0; 4]);
        assert_eq!(plane(0, 0), vec![0.0; 4]);
        assert_eq!(plane(1, 0), vec![1.0; 4]);
        assert_eq!(plane(1, 1), vec![0.0; 4]);
    }

    #[test]
    fn the_image_weights_of_d_start_as_in_the_unconditional_network() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let gan = Cdcgan::new(CdcganConfig::mnist(), &mut rng).unwrap();
        let mut first = None;
        gan.d.visit("", &mut |_, p| {
            if first.is_none() && p.shape().len() == 4 {
                first = Some(p.value());
            }
        });
        let w = first.expect("a conv weight");
        assert_eq!(w.shape(), &[64, 11, 5, 5]);
        // U(±1/sqrt(fan_in)) with the fan-in of one image channel: 1/5.
        let image: Vec<f32> = (0..64)
            .flat_map(|o| w.to_vec()[o * 275..o * 275 + 25].to_vec())
            .collect();
        let max = image.iter().fold(0f32, |m, x| m.max(x.abs()));
        assert!(
            max <= 0.2 && max > 0.19,
            "image weights reach {max}, expected 0.2"
        );
    }

    #[test]
    fn the_label_changes_the_sample_and_the_judgement() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let gan = Cdcgan::new(CdcganConfig::mnist(), &mut rng).unwrap();
        let z = gan.noise(1, &mut rng).unwrap();
        let z2 = Tensor::concat(0, &[&z, &z]);
        let input = gan.latent_input(z2, Some(&[3, 8]));
        assert_eq!(input.shape(), &[2, 110]);
        let tape = Tape::new();
        let x = gan.g.forward(tape.constant(input), Mode::Eval);
        assert_eq!(x.shape(), vec![2, 1, 28, 28]);
        let v = x.value().to_vec();
        assert!(v[..784] != v[784..], "same noise, other label, same image");

        let same = Tensor::concat(0, &[&x.value().slice_axis(0, 0, 1); 2]);
        let batch = Batch {
            labels: Some(vec![3, 8]),
            ..Batch::new(same.clone())
        };
        let d_in = gan.discriminator_input(tape.constant(same), &batch);
        assert_eq!(d_in.shape(), vec![2, 11, 28, 28]);
        let logits = gan.d.forward(d_in, Mode::Eval).value().to_vec();
        assert!(logits[0] != logits[1], "D ignores the label: {logits:?}");
    }

    #[test]
    #[should_panic(expected = "must be [N, 110]")]
    fn bare_noise_is_refused_with_a_hint() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let gan = Cdcgan::new(CdcganConfig::mnist(), &mut rng).unwrap();
        let tape = Tape::new();
        let z = gan.noise(2, &mut rng).unwrap();
        gan.g.forward(tape.constant(z), Mode::Eval);
    }
}
