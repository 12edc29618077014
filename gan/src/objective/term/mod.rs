//! Terms any objective can carry, one per file, found by name in [`TERMS`].
//!
//! A term acts on one player: [`Term::discriminator`] (penalties) or [`Term::generator`]
//! (reconstruction, diversity). It returns its value unweighted; the objective multiplies it
//! by its weight (times `every` on the steps a lazy term runs) and logs the product under the
//! term's name.
//!
//! Feature matching (Salimans et al. 2016's batch means; pix2pixHD's per-sample L1) reads the
//! activations a discriminator records with `Module::forward_features`; a model whose
//! discriminator records none is refused.

mod drift;
mod feature_matching;
mod feature_matching_l1;
mod gp;
mod l1;
mod latent;
mod mode_seeking;
mod penalty;
mod r1;
mod tv;

pub use penalty::{gradient_penalty, r1_penalty};

use super::{DContext, GContext, objective_error};
use crate::error::Result;
use crate::models::{Batch, Gan};
use gantry_autodiff::{CreateGraph, Tape, Var};
use gantry_nn::{Mode, forward_with_features, named_params};
use gantry_tensor::Tensor;
use rand::SeedableRng;

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
    feature_matching::ENTRY,
    feature_matching_l1::ENTRY,
    tv::ENTRY,
    latent::D_ENTRY,
    latent::G_ENTRY,
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
    gan.noise(1, &mut rand_chacha::ChaCha8Rng::seed_from_u64(0))
        .is_some()
}

/// A probe for checks: one packed group of samples from the generator (in evaluation mode)
/// and the batch they belong to, or `None` for a model that draws neither noise nor a known
/// condition.
fn probe(gan: &dyn Gan) -> Option<Batch> {
    let n = gan.pack();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let labels = gan.num_classes().map(|_| vec![0; n]);
    let condition = gan.config().condition_shape().map(|s| {
        let mut shape = vec![n];
        shape.extend(s);
        Tensor::zeros(&shape)
    });
    let input = match (&condition, gan.noise(n, &mut rng)) {
        (Some(a), _) => a.clone(),
        (None, Some(z)) => gan.latent_input(z, labels.as_deref()),
        (None, None) => return None,
    };
    let tape = Tape::new();
    let x = gan
        .generator()
        .forward(tape.constant(input), Mode::Eval)
        .value();
    Some(Batch {
        condition,
        labels,
        ..Batch::new(x)
    })
}

/// Runs `f` on the discriminator and puts its buffers (batch-norm running statistics that a
/// training-mode pass updates) back afterwards, so a check changes nothing.
fn keeping_buffers<R>(gan: &dyn Gan, f: impl FnOnce() -> R) -> R {
    let d = gan.discriminator();
    let saved: Vec<Tensor> = named_params(d).iter().map(|(_, p)| p.value()).collect();
    let out = f();
    for ((_, p), v) in named_params(d).iter().zip(saved) {
        p.set(v);
    }
    out
}

/// Whether a gradient through the discriminator can be differentiated again, found by trying:
/// a probe goes through D in training mode and the gradient of its output with respect to
/// the samples is asked for with `CreateGraph::Yes`.
///
/// # Errors
/// The op on the path that has no second derivative (batch norm), and what to do instead.
pub(crate) fn check_second_derivatives(gan: &dyn Gan) -> std::result::Result<(), String> {
    let Some(batch) = probe(gan) else {
        return Ok(());
    };
    let result = keeping_buffers(gan, || {
        let tape = Tape::new();
        let leaf = tape.leaf(batch.real.clone());
        let out = gan
            .discriminator()
            .forward(gan.discriminator_input(leaf, &batch), Mode::Train);
        tape.grad(&[out.sum()], &[leaf], CreateGraph::Yes)
            .map(|_| ())
    });
    result.map_err(|e| {
        format!(
            "the discriminator of {} cannot be differentiated twice: {e}",
            gan.config().kind()
        )
    })
}

/// How many activations the discriminator records besides its output.
/// The activations D records, by name, on samples `x` of the generator step's batch (what the
/// model shows D beside them added), in training mode.
fn d_features<'t>(cx: &GContext<'_, 't>, x: Var<'t>) -> Vec<(String, Var<'t>)> {
    let input = cx.gan.discriminator_input(x, cx.batch);
    let (_, features) = forward_with_features(cx.gan.discriminator(), input, Mode::Train);
    features.into_vec()
}

/// Refuses a model whose discriminator records no intermediate activation.
fn check_records_features(gan: &dyn Gan) -> std::result::Result<(), String> {
    if feature_count(gan) == 0 {
        return Err(format!(
            "the discriminator of {} records no intermediate activations to match",
            gan.config().kind()
        ));
    }
    Ok(())
}

pub(crate) fn feature_count(gan: &dyn Gan) -> usize {
    let Some(batch) = probe(gan) else {
        return 0;
    };
    keeping_buffers(gan, || {
        let tape = Tape::new();
        let x = gan.discriminator_input(tape.constant(batch.real.clone()), &batch);
        let (_, features) = forward_with_features(gan.discriminator(), x, Mode::Train);
        features.len().saturating_sub(1)
    })
}
