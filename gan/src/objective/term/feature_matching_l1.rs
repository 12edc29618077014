//! pix2pixHD's feature matching (Wang et al. 2018): the generator makes the discriminator's
//! intermediate activations on `(A, G(A))` equal to those on the real pair `(A, B)`, sample
//! by sample, in L1. With the activations a discriminator records grouped by scale (the
//! part of the name before its last `.`: `scale0.2` is layer 2 of scale 0; a one-scale
//! discriminator's `0`, `1`, ... form one group), and the last of each group (its output)
//! left out:
//!
//! `(1 / scales) Σ_scales (4 / layers) Σ_layers mean |D_l(A, G(A)) - D_l(A, B)|`,
//!
//! pix2pixHD's weights (`D_weights = 1 / num_D`, `feat_weights = 4 / (n_layers_D + 1)`, so
//! that its 3-layer discriminator's four layers are summed). The real activations are
//! constants. Unlike Salimans et al.'s batch-mean matching (`feature_matching`) it needs
//! each fake sample's own real counterpart, so it is for translation models.

use super::{Term, TermEntry};
use crate::error::Result;
use crate::models::Gan;
use crate::objective::GContext;
use gantry_autodiff::{Reduction, Var};
use gantry_nn::loss;

/// Registration.
pub const ENTRY: TermEntry = TermEntry {
    name: "loss_g_feat",
    about: "pix2pixHD's feature matching: L1 between D's activations on (A, G(A)) and on (A, B), every layer at every scale",
    build: || Box::new(FeatureMatchingL1),
};

struct FeatureMatchingL1;

impl Term for FeatureMatchingL1 {
    fn check(&self, gan: &dyn Gan) -> std::result::Result<(), String> {
        if gan.config().condition_shape().is_none() {
            return Err(format!(
                "{} draws its samples from noise, so no fake sample has a real counterpart to match; per-sample feature matching is for translation models (pix2pix, pix2pixhd)",
                gan.config().kind()
            ));
        }
        super::check_records_features(gan)
    }

    fn generator<'t>(&self, cx: &GContext<'_, 't>) -> Result<Option<Var<'t>>> {
        let real = super::d_features(cx, cx.tape.constant(cx.batch.real.clone()));
        let fake = super::d_features(cx, cx.fake);
        Ok(matched_distance(&real, &fake))
    }
}

/// pix2pixHD's weighted sum of the per-layer L1 distances (see the module documentation);
/// `None` when no group has an intermediate layer.
fn matched_distance<'t>(real: &[(String, Var<'t>)], fake: &[(String, Var<'t>)]) -> Option<Var<'t>> {
    let group = |name: &str| name.rsplit_once('.').map_or("", |(g, _)| g).to_string();
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, (name, _)) in fake.iter().enumerate() {
        let g = group(name);
        match groups.iter_mut().find(|(n, _)| *n == g) {
            Some((_, members)) => members.push(i),
            None => groups.push((g, vec![i])),
        }
    }
    let scales: Vec<Var<'t>> = groups
        .iter()
        .filter(|(_, m)| m.len() > 1)
        .map(|(_, members)| {
            let layers = &members[..members.len() - 1];
            let sum = layers
                .iter()
                .map(|&i| {
                    let target = real[i].1.value();
                    loss::l1(fake[i].1, &target, Reduction::Mean)
                })
                .reduce(|a, b| a.add(b))
                .expect("a group with an intermediate layer");
            sum.mul_scalar(4.0 / layers.len() as f32)
        })
        .collect();
    let n = scales.len();
    let total = scales.into_iter().reduce(|a, b| a.add(b))?;
    Some(total.mul_scalar(1.0 / n as f32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_autodiff::Tape;
    use gantry_tensor::Tensor;

    fn named<'t>(n: &str, v: Var<'t>) -> (String, Var<'t>) {
        (n.to_string(), v)
    }

    #[test]
    fn hand_computed_over_two_scales() {
        let tape = Tape::new();
        let c = |v: Vec<f32>| tape.constant(Tensor::from_vec(&[2, 1], v));
        // Scale 0: two layers, |d| means 1 and 3 (4/2 * (1 + 3) = 8); its output is left out.
        // Scale 1: one layer, |d| mean 0.5 (4/1 * 0.5 = 2). Mean over scales: 5.
        let real = vec![
            named("scale0.0", c(vec![0.0, 0.0])),
            named("scale0.1", c(vec![1.0, -1.0])),
            named("scale0.2", c(vec![9.0, 9.0])),
            named("scale1.0", c(vec![2.0, 2.0])),
            named("scale1.1", c(vec![0.0, 0.0])),
        ];
        let fake = vec![
            named("scale0.0", c(vec![1.0, -1.0])),
            named("scale0.1", c(vec![4.0, -4.0])),
            named("scale0.2", c(vec![-9.0, 0.0])),
            named("scale1.0", c(vec![2.5, 1.5])),
            named("scale1.1", c(vec![7.0, 7.0])),
        ];
        let d = matched_distance(&real, &fake).unwrap();
        assert!(
            (d.value().item() - 5.0).abs() < 1e-6,
            "{}",
            d.value().item()
        );
        // One group of taps named by index, as a Sequential records them: 4/2 * (1 + 3).
        let flat: Vec<_> = ["0", "1", "2"]
            .iter()
            .zip(&fake[..3])
            .map(|(n, (_, v))| named(n, *v))
            .collect();
        let flat_real: Vec<_> = ["0", "1", "2"]
            .iter()
            .zip(&real[..3])
            .map(|(n, (_, v))| named(n, *v))
            .collect();
        let d = matched_distance(&flat_real, &flat).unwrap();
        assert!((d.value().item() - 8.0).abs() < 1e-6);
        assert!(matched_distance(&real[2..3], &fake[2..3]).is_none());
    }
}
