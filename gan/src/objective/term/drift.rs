//! The drift term of progressive growing (Karras et al. 2018): `mean D(x)²` on real data in
//! the critic's loss, which keeps a Wasserstein critic's outputs from drifting far from 0.
//! The paper weights it by 0.001.

use super::{Term, TermEntry};
use crate::error::Result;
use crate::objective::DContext;
use gantry_autodiff::Var;

/// Registration.
pub const ENTRY: TermEntry = TermEntry {
    name: "drift",
    about: "ProGAN's mean D(x)^2 on real data in D's loss (weight 0.001 in the paper)",
    build: || Box::new(Drift),
};

struct Drift;

impl Term for Drift {
    fn discriminator<'t>(&self, cx: &DContext<'_, 't>) -> Result<Option<Var<'t>>> {
        Ok(Some(cx.real_logits.mul(cx.real_logits).mean()))
    }
}
