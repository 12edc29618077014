//! Least squares (LSGAN, Mao et al. 2017) with the 0-1 coding: D minimises
//! `½ mean (D(x) - 1)² + ½ mean D(G(z))²`, G minimises `½ mean (D(G(z)) - 1)²`.

use super::{AdversarialLoss, LossEntry, log_outputs, mean_out};
use crate::objective::Parts;
use gantry_autodiff::{Reduction, Var};
use gantry_nn::loss;

/// Registration.
pub const ENTRY: LossEntry = LossEntry {
    name: "lsgan",
    about: "least squares (Mao et al.): D pulls D(x) to 1 and D(G(z)) to 0, G pulls D(G(z)) to 1",
    build: || Box::new(Lsgan),
};

struct Lsgan;

fn half_mse<'t>(x: Var<'t>, target: f32) -> Var<'t> {
    loss::mse(x, &loss::full_like(&x, target), Reduction::Mean).mul_scalar(0.5)
}

impl AdversarialLoss for Lsgan {
    fn discriminator<'t>(
        &self,
        real: Var<'t>,
        fake: Var<'t>,
        real_label: f32,
        parts: &mut Parts<'t>,
    ) {
        parts.add("loss_d_real", half_mse(real, real_label));
        parts.add("loss_d_fake", half_mse(fake, 0.0));
        log_outputs(parts, real, fake, false);
    }

    fn generator<'t>(&self, fake: Var<'t>, parts: &mut Parts<'t>) {
        parts.add("loss_g_gan", half_mse(fake, 1.0));
        parts.log("d_out_fake_g", mean_out(fake));
    }

    fn has_target(&self) -> bool {
        true
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
        Lsgan.discriminator(real, fake, 1.0, &mut d);
        let v = values(&d);
        // ½ ((2 - 1)² + (-1 - 1)²) / 2 = 1.25; ½ (0.25 + 9) / 2 = 2.3125.
        close(v["loss_d_real"], 1.25);
        close(v["loss_d_fake"], 2.3125);
        let mut g = Parts::default();
        Lsgan.generator(fake, &mut g);
        // ½ (0.25 + 16) / 2.
        close(values(&g)["loss_g_gan"], 4.0625);
    }
}
