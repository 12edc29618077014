//! The hinge loss (Lim and Ye 2017; SAGAN, BigGAN): D minimises
//! `mean(relu(1 - D(x))) + mean(relu(1 + D(G(z))))`, G minimises `-mean D(G(z))`.

use super::{AdversarialLoss, LossEntry, log_outputs, mean_out};
use crate::objective::Parts;
use gantry_autodiff::Var;

/// Registration.
pub const ENTRY: LossEntry = LossEntry {
    name: "hinge",
    about: "D: mean relu(1 - D(x)) + mean relu(1 + D(G(z))); G: -mean D(G(z)) (SAGAN, BigGAN)",
    build: || Box::new(Hinge),
};

struct Hinge;

impl AdversarialLoss for Hinge {
    fn discriminator<'t>(
        &self,
        real: Var<'t>,
        fake: Var<'t>,
        _real_label: f32,
        parts: &mut Parts<'t>,
    ) {
        parts.add("loss_d_real", real.neg().add_scalar(1.0).relu().mean());
        parts.add("loss_d_fake", fake.add_scalar(1.0).relu().mean());
        log_outputs(parts, real, fake, false);
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
        Hinge.discriminator(real, fake, 1.0, &mut d);
        let v = values(&d);
        // relu(1 - 2) = 0, relu(1 + 1) = 2; relu(1.5) = 1.5, relu(-2) = 0.
        close(v["loss_d_real"], 1.0);
        close(v["loss_d_fake"], 0.75);
        close(v["d_out_real"], 0.5);
        let mut g = Parts::default();
        Hinge.generator(fake, &mut g);
        close(values(&g)["loss_g_gan"], 1.25);
        let grads = g.total(1.0).backward();
        assert_eq!(grads.get(fake).unwrap().to_vec(), vec![-0.5, -0.5]);
    }
}
