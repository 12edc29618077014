//! The R1 penalty (Mescheder et al. 2018) in the discriminator's loss: `½ |∇D(x)|²` on real
//! data, which stops D from growing steep around the data (StyleGAN, StyleGAN2). With
//! `every = n` it runs on every n-th step only, weighted n times (StyleGAN2's lazy R1).

use super::penalty::r1_penalty;
use super::{Term, TermEntry};
use crate::error::Result;
use crate::models::Gan;
use crate::objective::DContext;
use gantry_autodiff::Var;

/// Registration.
pub const ENTRY: TermEntry = TermEntry {
    name: "r1",
    about: "R1: |grad D(x)|^2 / 2 on real data (Mescheder et al.; StyleGAN's gamma)",
    build: || Box::new(R1),
};

struct R1;

impl Term for R1 {
    fn check(&self, gan: &dyn Gan) -> std::result::Result<(), String> {
        super::check_second_derivatives(gan)
    }

    fn discriminator<'t>(&self, cx: &DContext<'_, 't>) -> Result<Option<Var<'t>>> {
        let x = cx.tape.leaf(cx.real.clone());
        r1_penalty(x, cx.score(x)).map(Some)
    }
}
