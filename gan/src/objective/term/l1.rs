//! pix2pix's reconstruction term (Isola et al.): `mean |G(A) - B|` in the generator's loss,
//! so that G's output is near the target as well as realistic. pix2pix weights it by 100.

use super::{Term, TermEntry};
use crate::error::Result;
use crate::models::Gan;
use crate::objective::GContext;
use gantry_autodiff::{Reduction, Var};
use gantry_nn::loss;

/// Registration.
pub const ENTRY: TermEntry = TermEntry {
    name: "loss_g_l1",
    about: "pix2pix's mean |G(A) - B| in G's loss (weight 100 in the paper)",
    build: || Box::new(L1),
};

struct L1;

impl Term for L1 {
    fn check(&self, gan: &dyn Gan) -> std::result::Result<(), String> {
        // A model driven by noise has no target for each sample.
        if super::draws_noise(gan) {
            return Err(format!(
                "{} draws its samples from noise, so no sample has a target to be near; L1 needs paired data (pix2pix)",
                gan.config().kind()
            ));
        }
        Ok(())
    }

    fn generator<'t>(&self, cx: &GContext<'_, 't>) -> Result<Option<Var<'t>>> {
        Ok(Some(loss::l1(cx.fake, &cx.batch.real, Reduction::Mean)))
    }
}
