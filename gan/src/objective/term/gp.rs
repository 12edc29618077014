//! The gradient penalty of WGAN-GP (Gulrajani et al. 2017) in the discriminator's loss:
//! `(|∇D(x̂)|₂ - 1)²` at random interpolates `x̂` between real and fake samples, which keeps a
//! Wasserstein critic 1-Lipschitz where it matters. The paper weights it by 10.

use super::penalty::{gradient_penalty, interpolates};
use super::{Term, TermEntry};
use crate::error::Result;
use crate::models::Gan;
use crate::objective::DContext;
use gantry_autodiff::Var;

/// Registration.
pub const ENTRY: TermEntry = TermEntry {
    name: "gp",
    about: "WGAN-GP's (|grad D(x^)| - 1)^2 on interpolates of real and fake (weight 10)",
    build: || Box::new(Gp),
};

struct Gp;

impl Term for Gp {
    fn check(&self, gan: &dyn Gan) -> std::result::Result<(), String> {
        super::check_second_derivatives(gan)
    }

    fn discriminator<'t>(&self, cx: &DContext<'_, 't>) -> Result<Option<Var<'t>>> {
        let x = cx.tape.leaf(interpolates(cx));
        gradient_penalty(x, cx.score(x)).map(Some)
    }
}
