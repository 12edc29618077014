//! Optimizers (SGD with momentum, Adam) and learning-rate schedules.
//!
//! An optimizer walks a module's parameters, finds each trained one's gradient by its id,
//! and errors (rather than silently skipping) when one has none. Its state is keyed by
//! parameter id in memory and by parameter name when saved, so it survives a rebuild of the
//! model on resume.

mod adam;
mod schedule;
mod sgd;

pub use adam::{Adam, AdamConfig};
pub use schedule::LrSchedule;
pub use sgd::{Sgd, SgdConfig};

use crate::error::{NnError, Result};
use crate::module::{Module, named_params};
use crate::param::Param;
use gantry_autodiff::Gradients;
use gantry_tensor::Tensor;
use gantry_tensor::profile::{self, Timer};
use std::collections::HashMap;

/// Adds an optimizer step's time to the profile ([`profile::OPTIMIZER`]), labelled by the
/// optimizer's name and how many tensors and values it updated.
pub(crate) fn stop_step_timer(timer: Timer, name: &str, params: &[(String, &Param, Tensor)]) {
    let label = || {
        let values: usize = params.iter().map(|(_, _, g)| g.len()).sum();
        format!("{name}, {values} values in {} tensors", params.len())
    };
    timer.stop(profile::OPTIMIZER, label, 0.0);
}

/// A rule that updates a module's trained parameters from their gradients.
pub trait Optimizer {
    /// Applies one update to every trained (trainable and not frozen) parameter of `module`.
    ///
    /// # Errors
    /// [`NnError::MissingGradient`] naming the first trained parameter without a gradient;
    /// nothing is updated then.
    fn step(&mut self, module: &dyn Module, grads: &Gradients) -> Result<()>;

    /// The learning rate in force.
    fn lr(&self) -> f32;

    /// Sets the learning rate (schedules call this).
    fn set_lr(&mut self, lr: f32);

    /// The state as named tensors (`{param}.exp_avg`, ..., and a scalar `step`).
    fn state(&self, module: &dyn Module) -> Vec<(String, Tensor)>;

    /// Restores state saved by [`Optimizer::state`] for the same architecture.
    ///
    /// # Errors
    /// If an entry is missing or mis-shaped.
    fn load_state(&mut self, module: &dyn Module, state: &HashMap<String, Tensor>) -> Result<()>;
}

/// The trained parameters of `module` with their gradients, or the name of the first one
/// without a gradient.
pub(crate) fn with_grads<'a>(
    module: &'a dyn Module,
    grads: &Gradients,
) -> Result<Vec<(String, &'a Param, Tensor)>> {
    named_params(module)
        .into_iter()
        .filter(|(_, p)| p.is_trained())
        .map(|(name, p)| match grads.get_key(p.id().0) {
            Some(g) => Ok((name, p, g.clone())),
            None => Err(NnError::MissingGradient { name }),
        })
        .collect()
}

/// Reads `{name}.{slot}` from saved state, checking its shape against the parameter.
pub(crate) fn saved_slot(
    state: &HashMap<String, Tensor>,
    name: &str,
    slot: &str,
    p: &Param,
) -> Result<Tensor> {
    let key = format!("{name}.{slot}");
    let t = state
        .get(&key)
        .ok_or_else(|| NnError::OptimizerState(format!("missing {key}")))?;
    if t.shape() != p.shape().as_slice() {
        return Err(NnError::OptimizerState(format!(
            "{key} has shape {:?}, the parameter {:?}",
            t.shape(),
            p.shape()
        )));
    }
    Ok(t.clone())
}

/// Parameters at least twice this long are updated in parallel chunks of this size: an
/// optimizer's update is elementwise, so the split changes no number.
pub(crate) const PAR_CHUNK: usize = 1 << 16;

/// Whether a parameter of `len` values is updated in parallel chunks of [`PAR_CHUNK`].
pub(crate) fn in_parallel_chunks(len: usize) -> bool {
    len >= 2 * PAR_CHUNK && rayon::current_num_threads() > 1
}

/// The elements of a tensor as an owned vector.
pub(crate) fn to_vec(t: &Tensor) -> Vec<f32> {
    t.as_slice().into_owned()
}
