//! Terms any objective can carry, one per file, found by name in [`TERMS`].
//!
//! A term acts on one player: [`Term::discriminator`] (penalties) or [`Term::generator`]
//! (reconstruction, diversity). It returns its value unweighted; the objective multiplies it
//! by its weight (times `every` on the steps a lazy term runs) and logs the product under the
//! term's name.
//!
//! Feature matching (Salimans et al. 2016: `|mean f(x) - mean f(G(z))|²` over an intermediate
//! layer `f` of D, in G's loss) is not registered yet: it needs discriminators that return
//! their features beside their output, which `nn` does not offer yet. When they do, it is a
//! generator term whose [`Term::check`] refuses a model without features and whose
//! [`Term::generator`] runs D's feature pass on `cx.batch.real` and `cx.fake` through
//! `cx.gan`.

mod drift;
mod gp;
mod l1;
mod mode_seeking;
mod penalty;
mod r1;

pub use penalty::{gradient_penalty, r1_penalty};

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
pub const TERMS: &[TermEntry] = &[
    l1::ENTRY,
    mode_seeking::ENTRY,
    gp::ENTRY,
    r1::ENTRY,
    drift::ENTRY,
];

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

/// Whether a gradient through the discriminator can be differentiated again, found by trying:
/// one packed group of samples from the generator goes through D in training mode and the
/// gradient of its output with respect to them is asked for with `CreateGraph::Yes`. D's
/// buffers (batch-norm running statistics) are put back afterwards, so the probe changes
/// nothing.
///
/// # Errors
/// The op on the path that has no second derivative (batch norm), and what to do instead.
pub(crate) fn check_second_derivatives(gan: &dyn Gan) -> std::result::Result<(), String> {
    use crate::models::{Batch, ModelConfig};
    use gantry_autodiff::{CreateGraph, Tape};
    use gantry_nn::{Mode, named_params};
    use gantry_tensor::Tensor;
    use rand::SeedableRng;

    let n = gan.pack();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let labels = gan.num_classes().map(|_| vec![0; n]);
    let condition = match gan.config() {
        ModelConfig::Pix2Pix(c) => Some(Tensor::zeros(&[
            n,
            c.in_channels,
            c.image_size,
            c.image_size,
        ])),
        _ => None,
    };
    let input = match (&condition, gan.noise(n, &mut rng)) {
        (Some(a), _) => a.clone(),
        (None, Some(z)) => gan.latent_input(z, labels.as_deref()),
        (None, None) => return Ok(()),
    };
    let d = gan.discriminator();
    let saved: Vec<Tensor> = named_params(d).iter().map(|(_, p)| p.value()).collect();
    let tape = Tape::new();
    let x = gan
        .generator()
        .forward(tape.constant(input), Mode::Eval)
        .value();
    let batch = Batch {
        condition,
        labels,
        ..Batch::new(x.clone())
    };
    let leaf = tape.leaf(x);
    let out = d.forward(gan.discriminator_input(leaf, &batch), Mode::Train);
    let probe = tape
        .grad(&[out.sum()], &[leaf], CreateGraph::Yes)
        .map(|_| ());
    drop(tape);
    for ((_, p), v) in named_params(d).iter().zip(saved) {
        p.set(v);
    }
    probe.map_err(|e| {
        format!(
            "the discriminator of {} cannot be differentiated twice: {e}",
            gan.config().kind()
        )
    })
}
