//! The kernel inception distance (Bińkowski et al. 2018): the squared maximum mean discrepancy
//! between two feature sets under the cubic polynomial kernel `k(x, y) = (x·y / D + 1)³`,
//! estimated without bias.
//!
//! Unlike the Fréchet distance, whose estimate from `N` samples is biased upwards by an amount
//! that shrinks with `N` (so FDs from different sample counts cannot be compared), the unbiased
//! estimator's expectation is the true MMD² at any sample count: 0 for two samples of one
//! distribution (an estimate may then be slightly negative). As the paper does, the estimate is
//! averaged over random subsets of a fixed size, and its spread over them is reported.

use gantry_tensor::Tensor;
use nalgebra::DMatrix;
use rand::RngCore;
use rand::seq::index::sample;
use serde::{Deserialize, Serialize};

/// A KID estimate: the mean of the unbiased MMD² over `subsets` random subsets of
/// `subset_size` samples of each set, and its standard deviation over them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Kid {
    /// The mean estimate of MMD².
    pub mean: f64,
    /// The standard deviation of the subset estimates (0 for one subset).
    pub std: f64,
    /// How many subsets were averaged.
    pub subsets: usize,
    /// How many samples of each set a subset holds.
    pub subset_size: usize,
}

/// The rows of `features` (`[N, D]`) as an `N x D` matrix in `f64`.
pub(crate) fn to_matrix(features: &Tensor) -> DMatrix<f64> {
    let s = features.shape();
    assert!(s.len() == 2, "features {s:?} must be [N, D]");
    DMatrix::from_row_iterator(
        s[0],
        s[1],
        features.as_slice().iter().map(|&v| f64::from(v)),
    )
}

/// The unbiased estimate of MMD² between the rows of `x` (`m x D`) and `y` (`n x D`), `m, n >= 2`,
/// under `k(a, b) = (a·b / D + 1)³`:
/// `Σ_{i≠j} k(xᵢ, xⱼ) / m(m-1) + Σ_{i≠j} k(yᵢ, yⱼ) / n(n-1) - 2 Σ_{i,j} k(xᵢ, yⱼ) / mn`.
///
/// # Panics
/// If either set has fewer than 2 rows or the dimensions differ.
#[track_caller]
pub fn mmd2_unbiased(x: &DMatrix<f64>, y: &DMatrix<f64>) -> f64 {
    let (m, n, d) = (x.nrows(), y.nrows(), x.ncols());
    assert!(
        m >= 2 && n >= 2 && y.ncols() == d,
        "mmd2_unbiased: sets of {m}x{d} and {n}x{} features (need 2+ rows each, equal widths)",
        y.ncols()
    );
    let kernel = |g: DMatrix<f64>| g.map(|v| (v / d as f64 + 1.0).powi(3));
    let off_diagonal_sum = |k: &DMatrix<f64>| k.sum() - k.trace();
    let kxx = kernel(x * x.transpose());
    let kyy = kernel(y * y.transpose());
    let kxy = kernel(x * y.transpose());
    let (m, n) = (m as f64, n as f64);
    off_diagonal_sum(&kxx) / (m * (m - 1.0)) + off_diagonal_sum(&kyy) / (n * (n - 1.0))
        - 2.0 * kxy.sum() / (m * n)
}

/// KID between `real` and `fake` features (`[N, D]` each): the unbiased MMD² averaged over
/// `subsets` draws of `min(subset_size, N_real, N_fake)` rows of each set without replacement
/// (the paper's defaults are 100 subsets of 1,000). When both sets are no larger than
/// `subset_size`, every draw would be the whole of both: one estimate is made (`subsets` 1).
///
/// # Panics
/// If `subsets` is 0, either set has fewer than 2 rows, or the widths differ.
#[track_caller]
pub fn kid(
    real: &Tensor,
    fake: &Tensor,
    subsets: usize,
    subset_size: usize,
    rng: &mut dyn RngCore,
) -> Kid {
    assert!(subsets > 0, "kid: at least one subset");
    let (x, y) = (to_matrix(real), to_matrix(fake));
    let size = subset_size.min(x.nrows()).min(y.nrows());
    // Subsets as large as both sets are all the same set: one estimate, not 100 copies of it
    // with a spread of 0 that would read as certainty.
    let subsets = if size == x.nrows() && size == y.nrows() {
        1
    } else {
        subsets
    };
    let pick = |m: &DMatrix<f64>, rng: &mut dyn RngCore| -> DMatrix<f64> {
        let mut rows = sample(rng, m.nrows(), size).into_vec();
        rows.sort_unstable();
        m.select_rows(rows.iter())
    };
    let estimates: Vec<f64> = (0..subsets)
        .map(|_| {
            let xs = pick(&x, rng);
            let ys = pick(&y, rng);
            mmd2_unbiased(&xs, &ys)
        })
        .collect();
    let mean = estimates.iter().sum::<f64>() / subsets as f64;
    let var = estimates.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / subsets as f64;
    Kid {
        mean,
        std: var.sqrt(),
        subsets,
        subset_size: size,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn gaussian(n: usize, d: usize, shift: f32, seed: u64) -> Tensor {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Tensor::randn(&[n, d], shift, 1.0, &mut rng)
    }

    #[test]
    fn two_samples_of_one_distribution_are_near_zero() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let k = kid(
            &gaussian(600, 8, 0.0, 1),
            &gaussian(600, 8, 0.0, 2),
            10,
            300,
            &mut rng,
        );
        assert!(k.mean.abs() < 0.02, "{k:?}");
        assert_eq!((k.subsets, k.subset_size), (10, 300));
    }

    #[test]
    fn a_shifted_distribution_is_far_and_the_distance_grows_with_the_shift() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let near = kid(
            &gaussian(400, 8, 0.0, 1),
            &gaussian(400, 8, 0.5, 2),
            5,
            200,
            &mut rng,
        );
        let far = kid(
            &gaussian(400, 8, 0.0, 1),
            &gaussian(400, 8, 1.5, 2),
            5,
            200,
            &mut rng,
        );
        assert!(near.mean > 0.1, "{near:?}");
        assert!(far.mean > 5.0 * near.mean, "{near:?} {far:?}");
    }

    #[test]
    fn the_estimator_matches_a_hand_computation() {
        // D = 1, x = {0, 1}, y = {1, 2}: k(a, b) = (ab + 1)³.
        let x = DMatrix::from_row_slice(2, 1, &[0.0, 1.0]);
        let y = DMatrix::from_row_slice(2, 1, &[1.0, 2.0]);
        // kxx off-diagonal: 2 k(0,1) = 2; kyy: 2 k(1,2) = 54; kxy: k(0,1)+k(0,2)+k(1,1)+k(1,2) = 1+1+8+27.
        let want = 2.0 / 2.0 + 54.0 / 2.0 - 2.0 * 37.0 / 4.0;
        assert!((mmd2_unbiased(&x, &y) - want).abs() < 1e-12);
    }

    #[test]
    fn sets_no_larger_than_a_subset_are_estimated_once() {
        let (x, y) = (gaussian(50, 4, 0.0, 1), gaussian(50, 4, 1.0, 2));
        let k = kid(&x, &y, 100, 1000, &mut ChaCha8Rng::seed_from_u64(0));
        assert_eq!((k.subsets, k.subset_size, k.std), (1, 50, 0.0));
        let whole = mmd2_unbiased(&to_matrix(&x), &to_matrix(&y));
        assert!(
            (k.mean - whole).abs() < 1e-9 * whole.abs(),
            "{k:?} vs {whole}"
        );
        // One set larger than the subsets: they differ, and all 100 are drawn.
        let k = kid(
            &gaussian(80, 4, 0.0, 1),
            &y,
            100,
            1000,
            &mut ChaCha8Rng::seed_from_u64(0),
        );
        assert_eq!((k.subsets, k.subset_size), (100, 50));
        assert!(k.std > 0.0, "{k:?}");
    }
}
