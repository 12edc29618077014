//! The Wasserstein loss (Arjovsky et al. 2017): the critic D minimises
//! `mean D(G(z)) - mean D(x)`, G minimises `-mean D(G(z))`. It needs a Lipschitz critic: pair
//! it with the gradient penalty (`gp`, WGAN-GP) or R1. `w_estimate = mean D(x) - mean
//! D(G(z))` is the critic's estimate of the distance, logged each step.

use super::{AdversarialLoss, LossEntry, log_outputs, mean_out};
use crate::objective::Parts;
use gantry_autodiff::Var;

/// Registration.
pub const ENTRY: LossEntry = LossEntry {
    name: "wasserstein",
    about: "Wasserstein critic (Arjovsky et al.): D: mean D(G(z)) - mean D(x); G: -mean D(G(z)); use with --gp",
    build: || Box::new(Wasserstein),
};

struct Wasserstein;

impl AdversarialLoss for Wasserstein {
    fn discriminator<'t>(
        &self,
        real: Var<'t>,
        fake: Var<'t>,
        _real_label: f32,
        parts: &mut Parts<'t>,
    ) {
        parts.add("loss_d_real", real.mean().neg());
        parts.add("loss_d_fake", fake.mean());
        log_outputs(parts, real, fake, false);
        parts.log("w_estimate", mean_out(real) - mean_out(fake));
    }

    fn generator<'t>(&self, fake: Var<'t>, parts: &mut Parts<'t>) {
        parts.add("loss_g_gan", fake.mean().neg());
        parts.log("d_out_fake_g", mean_out(fake));
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{close, tiny, values};
    use super::*;
    use gantry_autodiff::Tape;

    #[test]
    fn hand_computed_on_a_tiny_batch() {
        let tape = Tape::new();
        let (real, fake) = tiny(&tape);
        let mut d = Parts::default();
        Wasserstein.discriminator(real, fake, 1.0, &mut d);
        let v = values(&d);
        close(v["loss_d_real"], -0.5);
        close(v["loss_d_fake"], -1.25);
        close(v["w_estimate"], 1.75);
        let mut g = Parts::default();
        Wasserstein.generator(fake, &mut g);
        close(values(&g)["loss_g_gan"], 1.25);
    }
}
