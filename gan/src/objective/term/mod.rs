//! Terms any objective can carry, one per file, found by name in [`TERMS`].
//!
//! A term acts on one player: [`Term::discriminator`] (penalties) or [`Term::generator`]
//! (reconstruction, diversity). It returns its value unweighted; the objective multiplies it
//! by its weight (times `every` on the steps a lazy term runs) and logs the product under the
//! term's name.

mod drift;
mod l1;
mod mode_seeking;

use super::{DContext, GContext, objective_error};
use crate::error::Result;
use crate::models::Gan;
use gantry_autodiff::Var;

/// One extra term of an objective.
pub trait Term {
    /// Refuses a model the term cannot work with, saying why (before anything trains).
    ///
    /// # Errors
    /// What the model lacks.
    fn check(&self, gan: &dyn Gan) -> std::result::Result<(), String> {
        let _ = gan;
        Ok(())
    }

    /// Whether the generator's step must also draw a twin batch for the same inputs from
    /// other noise ([`GContext::twin`]).
    fn needs_twins(&self) -> bool {
        false
    }

    /// Its unweighted value in the discriminator's loss, if it is a discriminator term.
    ///
    /// # Errors
    /// If it cannot be computed on this model.
    fn discriminator<'t>(&self, cx: &DContext<'_, 't>) -> Result<Option<Var<'t>>> {
        let _ = cx;
        Ok(None)
    }

    /// Its unweighted value in the generator's loss, if it is a generator term.
    ///
    /// # Errors
    /// If it cannot be computed on this model.
    fn generator<'t>(&self, cx: &GContext<'_, 't>) -> Result<Option<Var<'t>>> {
        let _ = cx;
        Ok(None)
    }
}

/// A registered term: its name (the key in the objective and in `metrics.jsonl`), one line
/// about it, and its constructor.
pub struct TermEntry {
    /// The name.
    pub name: &'static str,
    /// What it is, for help texts.
    pub about: &'static str,
    /// Makes it.
    pub build: fn() -> Box<dyn Term>,
}

/// Every term, by name.
pub const TERMS: &[TermEntry] = &[l1::ENTRY, mode_seeking::ENTRY, drift::ENTRY];

/// The term called `name`.
///
/// # Errors
/// If no term has that name; the message lists the names.
pub fn build(name: &str) -> Result<Box<dyn Term>> {
    match TERMS.iter().find(|e| e.name == name) {
        Some(e) => Ok((e.build)()),
        None => Err(objective_error(format!(
            "unknown term {name}; known: {}",
            TERMS.iter().map(|e| e.name).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Whether `gan` draws its samples from noise (pix2pix does not).
pub(crate) fn draws_noise(gan: &dyn Gan) -> bool {
    use rand::SeedableRng;
    gan.noise(1, &mut rand_chacha::ChaCha8Rng::seed_from_u64(0))
        .is_some()
}
