//! The non-saturating loss of Goodfellow et al.: D minimises binary cross-entropy, G
//! maximises `log D(G(z))`, which gives G strong gradients while D rejects its samples.

use super::{AdversarialLoss, LossEntry, log_outputs, mean_prob};
use crate::objective::Parts;
use gantry_autodiff::{Reduction, Var};
use gantry_nn::loss;

/// Registration.
pub const ENTRY: LossEntry = LossEntry {
    name: "non-saturating",
    about: "D: cross-entropy; G: maximise log D(G(z)) (strong early gradients)",
    build: || Box::new(NonSaturating),
};

struct NonSaturating;

/// D's cross-entropy parts, shared with minimax: `-log D(x)` against `real_label` and
/// `-log(1 - D(G(z)))`, each a mean over the batch.
pub(super) fn cross_entropy_d<'t>(
    real: Var<'t>,
    fake: Var<'t>,
    real_label: f32,
    parts: &mut Parts<'t>,
) {
    let real_target = loss::full_like(&real, real_label);
    parts.add(
        "loss_d_real",
        loss::bce_with_logits(real, &real_target, Reduction::Mean),
    );
    let fake_target = loss::full_like(&fake, 0.0);
    parts.add(
        "loss_d_fake",
        loss::bce_with_logits(fake, &fake_target, Reduction::Mean),
    );
    log_outputs(parts, real, fake, true);
}

impl AdversarialLoss for NonSaturating {
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
        let target = loss::full_like(&fake, 1.0);
        parts.add(
            "loss_g_gan",
            loss::bce_with_logits(fake, &target, Reduction::Mean),
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
        let mut d = Parts::default();
        NonSaturating.discriminator(real, fake, 0.9, &mut d);
        let v = values(&d);
        // BCE(x, t) = softplus(x) - t x.
        let bce = |x: f64, t: f64| softplus(x) - t * x;
        close(v["loss_d_real"], (bce(2.0, 0.9) + bce(-1.0, 0.9)) / 2.0);
        close(v["loss_d_fake"], (bce(0.5, 0.0) + bce(-3.0, 0.0)) / 2.0);
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        close(v["d_real"], (sig(2.0) + sig(-1.0)) / 2.0);
        close(v["d_fake"], (sig(0.5) + sig(-3.0)) / 2.0);
        let mut g = Parts::default();
        NonSaturating.generator(fake, &mut g);
        close(
            values(&g)["loss_g_gan"],
            (bce(0.5, 1.0) + bce(-3.0, 1.0)) / 2.0,
        );
    }
}
