//! The minimax game as Goodfellow et al. write it: D as in the non-saturating loss, G
//! minimises `log(1 - D(G(z)))`, which saturates while D rejects G's samples.

use super::non_saturating::cross_entropy_d;
use super::{AdversarialLoss, LossEntry, mean_prob};
use crate::objective::Parts;
use gantry_autodiff::{Reduction, Var};
use gantry_nn::loss;

/// Registration.
pub const ENTRY: LossEntry = LossEntry {
    name: "minimax",
    about: "D: cross-entropy; G: minimise log(1 - D(G(z))), the game as written",
    build: || Box::new(Minimax),
};

struct Minimax;

impl AdversarialLoss for Minimax {
    fn discriminator<'t>(
        &self,
        real: Var<'t>,
        fake: Var<'t>,
        real_label: f32,
        parts: &mut Parts<'t>,
    ) {
        cross_entropy_d(real, fake, real_label, parts);
    }

    fn generator<'t>(&self, fake: Var<'t>, parts: &mut Parts<'t>) {
        // log(1 - D) = -BCE(logit, 0).
        let target = loss::full_like(&fake, 0.0);
        parts.add(
            "loss_g_gan",
            loss::bce_with_logits(fake, &target, Reduction::Mean).neg(),
        );
        parts.log("d_fake_g", mean_prob(fake));
    }

    fn probabilities(&self) -> bool {
        true
    }

    fn has_target(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{close, softplus, tiny, values};
    use super::*;
    use gantry_autodiff::Tape;

    #[test]
    fn hand_computed_on_a_tiny_batch() {
        let tape = Tape::new();
        let (real, fake) = tiny(&tape);
        let mut g = Parts::default();
        Minimax.generator(fake, &mut g);
        // log(1 - sigmoid(x)) = -softplus(x).
        close(
            values(&g)["loss_g_gan"],
            -(softplus(0.5) + softplus(-3.0)) / 2.0,
        );
        let mut d = Parts::default();
        Minimax.discriminator(real, fake, 1.0, &mut d);
        close(
            values(&d)["loss_d_real"],
            (softplus(-2.0) + softplus(1.0)) / 2.0,
        );
    }
}
