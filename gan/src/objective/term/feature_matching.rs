//! Feature matching (Salimans et al. 2016) in the generator's loss: the generator matches the
//! batch means of the discriminator's intermediate activations on real data,
//! `|mean_n f(x) - mean_n f(G(z))|²`, averaged over the features of each recorded layer and
//! over the layers (every activation D records with `forward_features` except its output).

use super::{Term, TermEntry};
use crate::error::Result;
use crate::models::Gan;
use crate::objective::GContext;
use gantry_autodiff::Var;

/// Registration.
pub const ENTRY: TermEntry = TermEntry {
    name: "feature_matching",
    about: "Salimans et al.: G matches the batch means of D's intermediate activations on real data",
    build: || Box::new(FeatureMatching),
};

struct FeatureMatching;

impl Term for FeatureMatching {
    fn check(&self, gan: &dyn Gan) -> std::result::Result<(), String> {
        super::check_records_features(gan)
    }

    fn generator<'t>(&self, cx: &GContext<'_, 't>) -> Result<Option<Var<'t>>> {
        let vars = |f: Vec<(String, Var<'t>)>| f.into_iter().map(|(_, v)| v).collect::<Vec<_>>();
        let real = vars(super::d_features(
            cx,
            cx.tape.constant(cx.batch.real.clone()),
        ));
        let fake = vars(super::d_features(cx, cx.fake));
        Ok(feature_distance(&real, &fake))
    }
}

/// The mean over layers (all but the last, D's output) of the mean squared difference of the
/// batch means; `None` when there is no intermediate layer.
fn feature_distance<'t>(real: &[Var<'t>], fake: &[Var<'t>]) -> Option<Var<'t>> {
    let layers = real.len().min(fake.len()).saturating_sub(1);
    let per_layer = (0..layers).map(|i| {
        let (r, f) = (
            real[i].mean_axes(&[0], false),
            fake[i].mean_axes(&[0], false),
        );
        let d = f.sub(r);
        d.mul(d).mean()
    });
    let sum = per_layer.reduce(|a, b| a.add(b))?;
    Some(sum.mul_scalar(1.0 / layers as f32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_autodiff::Tape;
    use gantry_tensor::Tensor;

    #[test]
    fn hand_computed_distance_of_batch_means() {
        let tape = Tape::new();
        let c = |shape: &[usize], v: Vec<f32>| tape.constant(Tensor::from_vec(shape, v));
        // Layer 1: real means (1, 2), fake means (2, 4): mean((1, 2)²) = 2.5.
        // Layer 2: real mean 0, fake mean 3: 9. The output layer is left out.
        let real = [
            c(&[2, 2], vec![0.0, 1.0, 2.0, 3.0]),
            c(&[2, 1], vec![-1.0, 1.0]),
            c(&[2, 1], vec![5.0, 5.0]),
        ];
        let fake = [
            c(&[2, 2], vec![2.0, 4.0, 2.0, 4.0]),
            c(&[2, 1], vec![3.0, 3.0]),
            c(&[2, 1], vec![-5.0, 0.0]),
        ];
        let d = feature_distance(&real, &fake).unwrap().value().item();
        assert!((d - (2.5 + 9.0) / 2.0).abs() < 1e-6, "{d}");
        assert!(feature_distance(&real[2..], &fake[2..]).is_none());
    }
}
