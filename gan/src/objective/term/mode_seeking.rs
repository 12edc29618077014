//! Mode seeking (Mao et al. 2019): `1 / (mean|G(z1) - G(z2)| / mean|z1 - z2| + 1e-5)` in the
//! generator's loss for two noise batches `z1`, `z2` with the same labels: samples must
//! differ as their noise does, which counters a label-conditional generator that learns to
//! ignore `z`. The paper weights it by 1.

use super::{Term, TermEntry};
use crate::error::Result;
use crate::models::Gan;
use crate::objective::GContext;
use gantry_autodiff::Var;

/// Registration.
pub const ENTRY: TermEntry = TermEntry {
    name: "loss_g_ms",
    about: "mode seeking (Mao et al.): G rewarded for samples that differ as their noise does",
    build: || Box::new(ModeSeeking),
};

struct ModeSeeking;

impl Term for ModeSeeking {
    fn check(&self, gan: &dyn Gan) -> std::result::Result<(), String> {
        if !super::draws_noise(gan) {
            return Err(format!(
                "mode seeking compares samples of two noise batches; {} draws no noise",
                gan.config().kind()
            ));
        }
        Ok(())
    }

    fn needs_twins(&self) -> bool {
        true
    }

    fn generator<'t>(&self, cx: &GContext<'_, 't>) -> Result<Option<Var<'t>>> {
        let (twin, dz) = cx
            .twin
            .expect("the trainer draws twins for a term that needs them");
        Ok(Some(mode_seeking(cx.fake, twin, dz)))
    }
}

/// `1 / (mean|a - b| / dz + 1e-5)`: large when two samples of different noise (`dz` apart
/// on average) are alike.
fn mode_seeking<'t>(a: Var<'t>, b: Var<'t>, dz: f32) -> Var<'t> {
    a.sub(b)
        .abs()
        .mean()
        .mul_scalar(1.0 / dz)
        .add_scalar(1e-5)
        .powf(-1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_autodiff::Tape;
    use gantry_tensor::Tensor;

    #[test]
    fn large_for_alike_samples_and_pushes_them_apart() {
        let tape = Tape::new();
        let same = tape.constant(Tensor::from_vec(&[2], vec![0.5, -0.5]));
        let t = mode_seeking(same, same, 1.0).value().item();
        assert!((t - 1e5).abs() < 1.0, "{t}");

        let a = tape.leaf(Tensor::from_vec(&[2], vec![1.0, -3.0]));
        let b = tape.constant(Tensor::zeros(&[2]));
        // mean|a - b| = 2, noise 4 apart: 1 / (0.5 + 1e-5).
        let term = mode_seeking(a, b, 4.0);
        assert!((term.value().item() - 1.0 / 0.50001).abs() < 1e-5);
        let g = term.backward().get(a).unwrap().to_vec();
        // Descending the term moves each element of `a` away from `b`.
        assert!(g[0] < 0.0 && g[1] > 0.0, "{g:?}");
        assert!(
            (g[0] + 0.5).abs() < 1e-3,
            "d/da0 = -1/(4 * 0.25 * 2) = -0.5, got {g:?}"
        );
    }
}
