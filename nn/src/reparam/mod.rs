//! Weight reparameterisation: one mechanism for spectral normalisation, the equalised learning
//! rate, or a user's own, on any layer and on networks that are already built.
//!
//! A layer reads its weight through [`Param::read`]; a [`Reparam`] attached to that parameter
//! ([`Param::set_reparam`]) turns the raw value into the one the layer computes with. No layer
//! is copied: `Linear`, `Conv2d`, `ConvTranspose2d`, `Embedding` and any user module that reads
//! its parameters with `read` are covered. [`apply`] walks a built network and attaches a
//! reparameterisation to every parameter a selector picks ("every convolution of this
//! discriminator"). The state dict then uses PyTorch's hook names: the raw parameter is saved
//! as `NAME_orig` and the reparameterisation's buffers as `NAME` + suffix (`weight_u`,
//! `weight_v` for spectral norm), so a PyTorch `spectral_norm` state dict loads as it is.
//!
//! ```
//! use gantry_nn::reparam::{self, SpectralNorm};
//! use gantry_nn::{Conv2dConfig, LeakyReLU, Sequential, named_params};
//! use rand::SeedableRng;
//!
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! let d = Sequential::new()
//!     .add(Conv2dConfig::new(3, 8, 4).stride(2).padding(1).build(&mut rng).unwrap())
//!     .add(LeakyReLU::new(0.2))
//!     .add(Conv2dConfig::new(8, 1, 4).build(&mut rng).unwrap());
//! let wrapped = reparam::apply(&d, reparam::conv_weights, |p| SpectralNorm::default().attach(p, &mut rng)).unwrap();
//! assert_eq!(wrapped, ["0.weight", "2.weight"]);
//! let names: Vec<String> = named_params(&d).into_iter().map(|(n, _)| n).collect();
//! assert_eq!(names, ["0.weight_orig", "0.weight_u", "0.weight_v", "0.bias",
//!                    "2.weight_orig", "2.weight_u", "2.weight_v", "2.bias"]);
//! ```

mod equalized_lr;
mod spectral_norm;

pub use equalized_lr::{EqualizedLr, EqualizedLrWeight};
pub use spectral_norm::{SpectralNorm, SpectralNormWeight, largest_singular_value};

use crate::module::{Mode, Module};
use crate::param::{Param, ParamKind, ParamRole};
use crate::{Result, named_params};
use gantry_autodiff::Var;
use std::fmt::Debug;

/// A function of a raw parameter that layers compute with instead of it.
///
/// Implementations compose differentiable [`Var`] operations, so gradients (and, where the
/// operations support it, gradients of gradients) reach the raw parameter. `Send`, so that a
/// [`Param`] (and a model) can still move to another thread.
pub trait Reparam: Debug + Send {
    /// The effective value from the raw parameter `raw` (already on the tape). In
    /// [`Mode::Train`] it may update its own buffers.
    fn apply<'t>(&self, raw: Var<'t>, mode: Mode) -> Var<'t>;

    /// Saved-only state, each with the suffix appended to the parameter's name in the state
    /// dict (spectral norm: `("_u", u)`, `("_v", v)`).
    fn buffers(&self) -> Vec<(&'static str, &Param)>;

    /// A short description such as `SpectralNorm(dim=0, iterations=1)`.
    fn describe(&self) -> String;
}

/// Attaches `make(param)` to every parameter of `module` for which `select(name, param)` holds;
/// returns their names (before renaming to `NAME_orig`), in visiting order.
///
/// # Errors
/// If `make` fails, or a selected parameter already has a reparameterisation (its name is
/// then `NAME_orig`). Parameters visited before the failing one keep theirs. Buffers are never
/// selected.
pub fn apply<S, M>(module: &dyn Module, select: S, mut make: M) -> Result<Vec<String>>
where
    S: Fn(&str, &Param) -> bool,
    M: FnMut(&Param) -> Result<Box<dyn Reparam>>,
{
    let mut done = Vec::new();
    for (name, p) in named_params(module) {
        if p.kind() == ParamKind::Trainable && select(&name, p) {
            p.set_reparam(make(p)?)?;
            done.push(name);
        }
    }
    Ok(done)
}

/// Selects the weights of convolutions and transposed convolutions.
pub fn conv_weights(_name: &str, p: &Param) -> bool {
    p.role() == ParamRole::ConvWeight
}

/// Selects the weights of linear layers, convolutions, transposed convolutions and embeddings
/// (the layers BigGAN spectrally normalises).
pub fn layer_weights(_name: &str, p: &Param) -> bool {
    matches!(
        p.role(),
        ParamRole::LinearWeight | ParamRole::ConvWeight | ParamRole::Embedding
    )
}
