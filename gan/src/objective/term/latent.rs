//! The code adversary of an adversarial autoencoder (CAAE's `D_z`; Makhzani et al. 2016):
//! a discriminator learns to tell the encoder's codes `E(x)` from draws of a prior, and the
//! encoder learns to make its codes look drawn from it, so that every point of the prior
//! decodes to a plausible sample and the code carries no more than it must.
//!
//! Two terms, one per player, so that each has its weight and its name in the logs:
//! - `loss_d_z` (D): `BCE(D_z(p), 1) + BCE(D_z(E(x)), 0)` for prior draws `p` (from the
//!   tape's seeded stream) and the batch's codes, the encoder a constant (its weights are
//!   the generator's).
//! - `loss_g_z` (G): `BCE(D_z(E(x)), 1)`, the non-saturating form; D_z is frozen with the
//!   rest of the discriminator during G's step.
//!
//! Both need a model with a [`Gan::latent_adversary`] (CAAE).

use super::{Term, TermEntry};
use crate::error::Result;
use crate::models::{Gan, LatentAdversary};
use crate::objective::{DContext, GContext};
use gantry_autodiff::{Reduction, Var};
use gantry_nn::{Mode, loss};

/// Registration of the discriminator's side.
pub const D_ENTRY: TermEntry = TermEntry {
    name: "loss_d_z",
    about: "the code discriminator's cross-entropy: prior draws real, the encoder's codes fake (CAAE's D_z)",
    build: || Box::new(CodeDiscriminator),
};

/// Registration of the encoder's side.
pub const G_ENTRY: TermEntry = TermEntry {
    name: "loss_g_z",
    about: "the encoder fools the code discriminator: -log D_z(E(x)) in G's loss (CAAE)",
    build: || Box::new(CodeEncoder),
};

struct CodeDiscriminator;
struct CodeEncoder;

/// Refuses a model without a code adversary.
fn adversary(gan: &dyn Gan) -> std::result::Result<&dyn LatentAdversary, String> {
    gan.latent_adversary().ok_or_else(|| {
        format!(
            "{} has no encoder whose codes a discriminator judges; the code adversary is an adversarial autoencoder's (caae)",
            gan.config().kind()
        )
    })
}

/// `mean BCE(logits, target)`.
fn bce<'t>(logits: Var<'t>, target: f32) -> Var<'t> {
    loss::bce_with_logits(logits, &loss::full_like(&logits, target), Reduction::Mean)
}

/// D_z's loss on its logits for prior draws and for codes.
fn d_loss<'t>(prior_logits: Var<'t>, code_logits: Var<'t>) -> Var<'t> {
    bce(prior_logits, 1.0).add(bce(code_logits, 0.0))
}

impl Term for CodeDiscriminator {
    fn check(&self, gan: &dyn Gan) -> std::result::Result<(), String> {
        adversary(gan).map(|_| ())
    }

    fn discriminator<'t>(&self, cx: &DContext<'_, 't>) -> Result<Option<Var<'t>>> {
        let adv = adversary(cx.gan).expect("checked before training");
        let tape = cx.tape;
        // The codes as constants: this step trains D_z only.
        let codes = adv
            .encode(tape.constant(cx.batch.real.clone()), Mode::Train)
            .value();
        let prior = adv.prior(codes.shape()[0], &mut *tape.rng());
        let prior_logits = adv.judge(tape.constant(prior), Mode::Train);
        let code_logits = adv.judge(tape.constant(codes), Mode::Train);
        Ok(Some(d_loss(prior_logits, code_logits)))
    }
}

impl Term for CodeEncoder {
    fn check(&self, gan: &dyn Gan) -> std::result::Result<(), String> {
        adversary(gan).map(|_| ())
    }

    fn generator<'t>(&self, cx: &GContext<'_, 't>) -> Result<Option<Var<'t>>> {
        let adv = adversary(cx.gan).expect("checked before training");
        let codes = adv.encode(cx.tape.constant(cx.batch.real.clone()), Mode::Train);
        Ok(Some(bce(adv.judge(codes, Mode::Train), 1.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_autodiff::Tape;
    use gantry_tensor::Tensor;

    #[test]
    fn hand_computed_on_a_tiny_batch() {
        // Prior logits 0 and ln 3: -ln(1/2), -ln(3/4); code logits 0 and -ln 3 against 0:
        // -ln(1/2), -ln(3/4). Means: (ln 2 + ln 4/3) / 2 each.
        let tape = Tape::new();
        let l3 = 3f32.ln();
        let prior = tape.leaf(Tensor::from_vec(&[2, 1], vec![0.0, l3]));
        let codes = tape.leaf(Tensor::from_vec(&[2, 1], vec![0.0, -l3]));
        let d = d_loss(prior, codes);
        let half = (2f32.ln() + (4.0f32 / 3.0).ln()) / 2.0;
        assert!((d.value().item() - 2.0 * half).abs() < 1e-6);
        // d/dlogit of BCE(l, 1) = (σ(l) - 1) / N; of BCE(l, 0) = σ(l) / N.
        let grads = d.backward();
        let gp = grads.get(prior).unwrap().to_vec();
        let gc = grads.get(codes).unwrap().to_vec();
        assert!(
            (gp[0] + 0.25).abs() < 1e-6 && (gp[1] + 0.125).abs() < 1e-6,
            "{gp:?}"
        );
        assert!(
            (gc[0] - 0.25).abs() < 1e-6 && (gc[1] - 0.125).abs() < 1e-6,
            "{gc:?}"
        );
        // G's side on the codes: -ln σ(l), mean of ln 2 and ln 4.
        let g = bce(codes, 1.0).value().item();
        assert!((g - (2f32.ln() + 4f32.ln()) / 2.0).abs() < 1e-6, "{g}");
    }
}
