//! The Fréchet distance between Gaussians fitted to two feature sets (as FID computes it on
//! Inception features; here on any features, e.g. a digit classifier's):
//!
//! `FD = ||μ₁ - μ₂||² + Tr(Σ₁ + Σ₂ - 2 (Σ₁ Σ₂)^½)`
//!
//! Means and covariances are accumulated in `f64`. The trace of the matrix square root is
//! computed from symmetric eigendecompositions (nalgebra): `Tr((Σ₁ Σ₂)^½) = Tr((√Σ₁ Σ₂ √Σ₁)^½)`
//! and `√Σ₁ Σ₂ √Σ₁` is symmetric positive semi-definite, so its square root is the sum of the
//! square roots of its eigenvalues (rounding's tiny negative eigenvalues are taken as 0).
//! This avoids the complex square roots a general `sqrtm` of `Σ₁ Σ₂` produces on
//! rank-deficient covariances.

use gantry_tensor::Tensor;
use nalgebra::{DMatrix, DVector, SymmetricEigen};

/// A Gaussian fitted to a feature set: its mean and (unbiased, `N - 1`) covariance.
#[derive(Clone, Debug, PartialEq)]
pub struct Gaussian {
    /// The mean, `D` values.
    pub mean: Vec<f64>,
    /// The covariance, `D x D`, row-major.
    pub cov: Vec<f64>,
}

impl Gaussian {
    /// The dimension `D`.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Fits the mean and unbiased covariance of `features` (`[N, D]`, `N >= 2`), in `f64`.
    ///
    /// # Panics
    /// If `features` is not 2-D or has fewer than 2 rows.
    #[track_caller]
    pub fn fit(features: &Tensor) -> Gaussian {
        let s = features.shape();
        assert!(
            s.len() == 2 && s[0] >= 2,
            "Gaussian::fit: features {s:?} must be [N, D] with N >= 2"
        );
        let (n, d) = (s[0], s[1]);
        let x = DMatrix::from_row_iterator(n, d, features.as_slice().iter().map(|&v| f64::from(v)));
        let mean = x.row_mean();
        let centred = DMatrix::from_fn(n, d, |i, j| x[(i, j)] - mean[j]);
        let cov = centred.tr_mul(&centred) / (n - 1) as f64;
        Gaussian {
            mean: mean.iter().copied().collect(),
            cov: (0..d)
                .flat_map(|i| (0..d).map(move |j| (i, j)))
                .map(|(i, j)| cov[(i, j)])
                .collect(),
        }
    }

    fn cov_matrix(&self) -> DMatrix<f64> {
        let d = self.dim();
        DMatrix::from_row_slice(d, d, &self.cov)
    }
}

/// The Fréchet distance between two Gaussians, clamped at 0 (rounding can take an exact 0 a
/// hair below).
///
/// # Panics
/// If their dimensions differ.
#[track_caller]
pub fn frechet_distance(a: &Gaussian, b: &Gaussian) -> f64 {
    assert!(
        a.dim() == b.dim(),
        "frechet_distance: dimensions {} and {} differ",
        a.dim(),
        b.dim()
    );
    let mean_term: f64 = a
        .mean
        .iter()
        .zip(&b.mean)
        .map(|(x, y)| (x - y).powi(2))
        .sum();
    let (s1, s2) = (a.cov_matrix(), b.cov_matrix());
    let root1 = sqrt_psd(&s1);
    let inner = &root1 * &s2 * &root1;
    let inner = (&inner + inner.transpose()) * 0.5;
    let trace_root: f64 = SymmetricEigen::new(inner)
        .eigenvalues
        .iter()
        .map(|&l| l.max(0.0).sqrt())
        .sum();
    (mean_term + s1.trace() + s2.trace() - 2.0 * trace_root).max(0.0)
}

/// The Fréchet distance between Gaussians fitted to `a` and `b` (`[N, D]` and `[M, D]`).
///
/// # Panics
/// As [`Gaussian::fit`] and [`frechet_distance`].
#[track_caller]
pub fn frechet_distance_of(a: &Tensor, b: &Tensor) -> f64 {
    frechet_distance(&Gaussian::fit(a), &Gaussian::fit(b))
}

/// The square root of a symmetric positive semi-definite matrix, `V diag(√max(λ, 0)) Vᵀ`.
fn sqrt_psd(m: &DMatrix<f64>) -> DMatrix<f64> {
    let sym = (m + m.transpose()) * 0.5;
    let eig = SymmetricEigen::new(sym);
    let roots = DVector::from_iterator(
        eig.eigenvalues.len(),
        eig.eigenvalues.iter().map(|&l| l.max(0.0).sqrt()),
    );
    &eig.eigenvectors * DMatrix::from_diagonal(&roots) * eig.eigenvectors.transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn diagonal(mean: &[f64], var: &[f64]) -> Gaussian {
        let d = mean.len();
        let mut cov = vec![0.0; d * d];
        for (i, v) in var.iter().enumerate() {
            cov[i * d + i] = *v;
        }
        Gaussian {
            mean: mean.to_vec(),
            cov,
        }
    }

    #[test]
    fn a_set_with_itself_is_zero() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let x = Tensor::randn(&[500, 16], 0.3, 2.0, &mut rng);
        let fd = frechet_distance_of(&x, &x);
        assert!(fd < 1e-9, "{fd}");
    }

    #[test]
    fn diagonal_gaussians_match_the_closed_form() {
        let a = diagonal(&[0.0, 1.0, -2.0], &[1.0, 4.0, 0.25]);
        let b = diagonal(&[1.0, 1.0, 0.0], &[9.0, 1.0, 0.25]);
        // Σ (Δμ)² + Σ (√a - √b)² = (1 + 0 + 4) + (4 + 1 + 0)
        let fd = frechet_distance(&a, &b);
        assert!((fd - 10.0).abs() < 1e-9, "{fd}");
    }

    #[test]
    fn rotated_covariances_match_the_closed_form() {
        // Σ₁ = I, Σ₂ = R diag(4, 1) Rᵀ: (Σ₁Σ₂)^½ = R diag(2, 1) Rᵀ, so the trace term is
        // 2 + 5 - 2·3 = 1 whatever the rotation.
        let (c, s) = (0.6f64, 0.8f64);
        let r = DMatrix::from_row_slice(2, 2, &[c, -s, s, c]);
        let s2 = &r * DMatrix::from_diagonal(&DVector::from_vec(vec![4.0, 1.0])) * r.transpose();
        let a = diagonal(&[0.0, 0.0], &[1.0, 1.0]);
        let b = Gaussian {
            mean: vec![0.0, 2.0],
            cov: s2.transpose().iter().copied().collect(),
        };
        let fd = frechet_distance(&a, &b);
        assert!((fd - 5.0).abs() < 1e-9, "{fd}");
    }

    #[test]
    fn samples_of_known_gaussians_converge() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let a = Tensor::randn(&[20_000, 4], 0.0, 1.0, &mut rng);
        let b = Tensor::randn(&[20_000, 4], 0.5, 2.0, &mut rng);
        // 4 · 0.5² + 4 · (1 - 2)² = 5
        let fd = frechet_distance_of(&a, &b);
        assert!((fd - 5.0).abs() < 0.15, "{fd}");
    }

    #[test]
    fn fit_is_the_unbiased_covariance() {
        let x = Tensor::from_vec(&[3, 2], vec![1.0, 0.0, 2.0, 2.0, 3.0, 4.0]);
        let g = Gaussian::fit(&x);
        assert_eq!(g.mean, vec![2.0, 2.0]);
        assert_eq!(g.cov, vec![1.0, 2.0, 2.0, 4.0]);
    }
}
