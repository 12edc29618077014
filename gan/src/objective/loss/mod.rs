//! Adversarial losses, one per file, found by name in [`LOSSES`].
//!
//! A loss turns D's logits on a real and a fake batch into D's loss parts
//! (`loss_d_real`, `loss_d_fake`) and D's logits on the generator's batch into G's
//! (`loss_g_gan`), and logs what its outputs mean: probabilities through a sigmoid for the
//! cross-entropy losses (`d_real`, `d_fake`, `d_fake_g`), raw means for the others
//! (`d_out_real`, `d_out_fake`, `d_out_fake_g`), the critic's estimate for Wasserstein.

mod hinge;
mod lsgan;
mod minimax;
mod non_saturating;
mod wasserstein;

use super::{Parts, objective_error};
use crate::error::Result;
use gantry_autodiff::Var;

/// One adversarial loss: D's and G's parts from D's logits.
pub trait AdversarialLoss {
    /// Adds D's parts for logits on a real and a fake batch; `real_label` is the target of
    /// real samples (1, or less for one-sided label smoothing, where [`Self::has_target`]).
    fn discriminator<'t>(
        &self,
        real: Var<'t>,
        fake: Var<'t>,
        real_label: f32,
        parts: &mut Parts<'t>,
    );

    /// Adds G's part for D's logits on the generator's batch.
    fn generator<'t>(&self, fake: Var<'t>, parts: &mut Parts<'t>);

    /// Whether `sigmoid(logit)` is D's probability that its input is real.
    fn probabilities(&self) -> bool {
        false
    }

    /// Whether real samples have a target that label smoothing can lower.
    fn has_target(&self) -> bool {
        false
    }
}

/// A registered loss: its name (what `--loss` takes), one line about it, and its constructor.
pub struct LossEntry {
    /// The name.
    pub name: &'static str,
    /// What it is, for help texts.
    pub about: &'static str,
    /// Makes it.
    pub build: fn() -> Box<dyn AdversarialLoss>,
}

/// Every loss, by name.
pub const LOSSES: &[LossEntry] = &[
    non_saturating::ENTRY,
    minimax::ENTRY,
    hinge::ENTRY,
    lsgan::ENTRY,
    wasserstein::ENTRY,
];

/// The loss called `name`.
///
/// # Errors
/// If no loss has that name; the message lists the names.
pub fn build(name: &str) -> Result<Box<dyn AdversarialLoss>> {
    match LOSSES.iter().find(|e| e.name == name) {
        Some(e) => Ok((e.build)()),
        None => Err(objective_error(format!(
            "unknown loss {name}; known: {}",
            LOSSES.iter().map(|e| e.name).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// The mean of `logits` through a sigmoid: D's mean probability that the batch is real.
pub(crate) fn mean_prob(logits: Var<'_>) -> f32 {
    logits.value().sigmoid().mean_all()
}

/// The mean raw output.
pub(crate) fn mean_out(logits: Var<'_>) -> f32 {
    logits.value().mean_all()
}

/// Logs D's mean outputs on a real and a fake batch under `{prefix}_real`, `{prefix}_fake`.
pub(crate) fn log_outputs(
    parts: &mut Parts<'_>,
    real: Var<'_>,
    fake: Var<'_>,
    probabilities: bool,
) {
    if probabilities {
        parts.log("d_real", mean_prob(real));
        parts.log("d_fake", mean_prob(fake));
    } else {
        parts.log("d_out_real", mean_out(real));
        parts.log("d_out_fake", mean_out(fake));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use gantry_autodiff::Tape;
    use gantry_tensor::Tensor;

    /// Logits of a tiny batch: real `[2, -1]`, fake `[0.5, -3]`.
    pub fn tiny(tape: &Tape) -> (Var<'_>, Var<'_>) {
        (
            tape.leaf(Tensor::from_vec(&[2, 1], vec![2.0, -1.0])),
            tape.leaf(Tensor::from_vec(&[2, 1], vec![0.5, -3.0])),
        )
    }

    /// `name -> value` of D's or G's parts.
    pub fn values(parts: &Parts<'_>) -> std::collections::HashMap<String, f32> {
        parts.values(1.0).into_iter().collect()
    }

    /// `ln(1 + e^x)`, in f64.
    pub fn softplus(x: f64) -> f64 {
        x.exp().ln_1p()
    }

    pub fn close(a: f32, b: f64) {
        assert!((f64::from(a) - b).abs() < 1e-5, "{a} vs {b}");
    }

    #[test]
    fn unknown_losses_list_the_known_ones() {
        let e = build("nope").err().unwrap().to_string();
        assert!(
            e.contains("unknown loss nope") && e.contains("hinge") && e.contains("wasserstein"),
            "{e}"
        );
    }
}
