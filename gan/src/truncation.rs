//! The truncation trick (Brock et al. 2019, section 3.1): sampling the latent from a normal
//! distribution truncated to `[-t, t]`, every value outside redrawn until it falls inside.
//! Smaller thresholds trade variety for fidelity: samples move towards the modes the
//! generator renders best. Only meaningful for a generator trained on `N(0, I)` noise.

use gantry_tensor::Tensor;
use rand::RngCore;

/// `noise` (drawn from `N(0, 1)`) with every value whose magnitude exceeds `threshold`
/// redrawn from `N(0, 1)` until it does not. Deterministic for a given `rng` state.
///
/// # Panics
/// If `threshold` is not positive and finite.
///
/// ```
/// use gantry_gan::truncation::truncate;
/// use gantry_tensor::Tensor;
/// use rand::SeedableRng;
///
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
/// let z = Tensor::randn(&[1000], 0.0, 1.0, &mut rng);
/// let t = truncate(&z, 0.5, &mut rng);
/// assert!(t.to_vec().iter().all(|v| v.abs() <= 0.5));
/// ```
#[track_caller]
pub fn truncate(noise: &Tensor, threshold: f32, rng: &mut dyn RngCore) -> Tensor {
    assert!(
        threshold > 0.0 && threshold.is_finite(),
        "truncate: the threshold {threshold} must be positive and finite"
    );
    let values = noise
        .to_vec()
        .into_iter()
        .map(|mut v| {
            while v.abs() > threshold {
                v = Tensor::randn(&[1], 0.0, 1.0, rng).to_vec()[0];
            }
            v
        })
        .collect();
    Tensor::from_vec(noise.shape(), values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn values_inside_stay_and_the_rest_is_redrawn_inside() {
        let z = Tensor::from_vec(&[2, 3], vec![0.1, -2.5, 0.4, 3.0, -0.2, 0.49]);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let t = truncate(&z, 0.5, &mut rng).to_vec();
        assert_eq!([t[0], t[2], t[4], t[5]], [0.1, 0.4, -0.2, 0.49]);
        assert!(t[1].abs() <= 0.5 && t[3].abs() <= 0.5 && t[1] != t[3]);
        let again = truncate(&z, 0.5, &mut ChaCha8Rng::seed_from_u64(1)).to_vec();
        assert_eq!(t, again);
    }

    #[test]
    fn a_truncated_normal_has_the_truncated_variance() {
        // Var of N(0, 1) truncated to [-1, 1]: 1 - 2 phi(1) / (2 Phi(1) - 1) = 0.2911.
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let z = Tensor::randn(&[40_000], 0.0, 1.0, &mut rng);
        let t = truncate(&z, 1.0, &mut rng).to_vec();
        let var = t.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / t.len() as f64;
        assert!((var - 0.2911).abs() < 0.01, "{var}");
    }

    #[test]
    #[should_panic(expected = "must be positive")]
    fn a_zero_threshold_is_refused() {
        truncate(&Tensor::zeros(&[1]), 0.0, &mut ChaCha8Rng::seed_from_u64(0));
    }
}
