//! The projection discriminator's output head (Miyato & Koyama, "cGANs with Projection
//! Discriminator", 2018).

use crate::Result;
use crate::layers::embedding::Embedding;
use crate::layers::linear::{Linear, LinearConfig};
use crate::module::{Mode, Module, join};
use crate::param::Param;
use gantry_autodiff::Var;
use rand::Rng;

/// `out = linear(φ) + ⟨embed(y), φ⟩` with `φ` the features summed over the pixels: the
/// unconditional score plus the inner product of the class embedding with the pooled
/// features (BigGAN-PyTorch's discriminator head; names `linear.weight`, `linear.bias`,
/// `embed.weight`). Apply the activation before it, as BigGAN does (`relu`, then the sum).
///
/// # Shapes
/// features `[N, C, H, W]`, labels one-hot `[N, classes]`, output `[N, 1]`.
#[derive(Debug)]
pub struct ProjectionHead {
    /// `[C] -> [1]`.
    pub linear: Linear,
    /// `classes x C`.
    pub embed: Embedding,
}

impl ProjectionHead {
    /// A head on `channels` features for `classes` classes (PyTorch's default initialisation).
    ///
    /// # Errors
    /// If a size is zero.
    pub fn new<R: Rng + ?Sized>(channels: usize, classes: usize, rng: &mut R) -> Result<Self> {
        let linear = LinearConfig::new(channels, 1).build(rng)?;
        if classes == 0 {
            return Err(crate::error::config_error(
                "ProjectionHead",
                "the number of classes must be positive",
            ));
        }
        Ok(ProjectionHead {
            linear,
            embed: Embedding::new(classes, channels, rng),
        })
    }

    /// The score of `features` for the one-hot `labels`.
    ///
    /// # Panics
    /// If the shapes do not fit.
    #[track_caller]
    pub fn forward_cond<'t>(&self, features: Var<'t>, labels: Var<'t>, mode: Mode) -> Var<'t> {
        let pooled = features.sum_axes(&[2, 3], false);
        let projection = self
            .embed
            .forward(labels, mode)
            .mul(pooled)
            .sum_axes(&[1], true);
        self.linear.forward(pooled, mode).add(projection)
    }
}

impl Module for ProjectionHead {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        self.linear.visit(&join(prefix, "linear"), f);
        self.embed.visit(&join(prefix, "embed"), f);
    }

    /// The unconditional score `linear(φ)`; [`ProjectionHead::forward_cond`] adds the
    /// projection.
    fn forward<'t>(&self, features: Var<'t>, mode: Mode) -> Var<'t> {
        self.linear.forward(features.sum_axes(&[2, 3], false), mode)
    }

    fn describe(&self) -> String {
        let s = self.embed.weight.shape();
        format!("ProjectionHead(channels={}, classes={})", s[1], s[0])
    }
}
