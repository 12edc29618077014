//! Everything `gantry eval` reports for a set of images in a classifier's feature space, in one
//! call: the class histogram and confidence ([`digit_scores`]), the Fréchet distance, the kernel
//! inception distance ([`kid`]) and improved precision and recall ([`precision_recall`]), each
//! with the number of samples it used.
//!
//! The Fréchet distance is biased upwards by an amount that shrinks with the number of samples,
//! so two FDs compare only at equal counts; KID is unbiased at any count. Precision and recall
//! use as many samples of each set (drawn at random when one set is larger), as the paper does.

use super::digits::{DigitScores, digit_scores};
use super::frechet::Gaussian;
use super::kid::kid;
use super::precision_recall::precision_recall;
use gantry_tensor::Tensor;
use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// KID subsets (the paper's 100) ...
pub const KID_SUBSETS: usize = 100;
/// ... of this many samples of each set (the paper's 1,000), or fewer when a set is smaller.
pub const KID_SUBSET_SIZE: usize = 1000;
/// The neighbour whose distance sets each manifold ball's radius (Kynkäänniemi et al.: 3).
pub const PR_K: usize = 3;
/// The most samples of each set precision and recall compare (their cost grows with its square).
pub const PR_MAX: usize = 10_000;

/// The real images' features that samples are compared with, and their fitted Gaussian.
pub struct Reference {
    features: Tensor,
    gaussian: Gaussian,
}

impl Reference {
    /// The reference of `features` (`[N, D]`, `N >= PR_K + 1`).
    ///
    /// # Panics
    /// If `features` is not `[N, D]` with `N > PR_K`.
    #[track_caller]
    pub fn new(features: Tensor) -> Reference {
        let s = features.shape();
        assert!(
            s.len() == 2 && s[0] > PR_K,
            "Reference: features {s:?} must be [N, D] with N > {PR_K}"
        );
        let gaussian = Gaussian::fit(&features);
        Reference { features, gaussian }
    }

    /// The number of reference images.
    pub fn len(&self) -> usize {
        self.features.shape()[0]
    }

    /// Whether there are none (never: [`Reference::new`] needs more than [`PR_K`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The fitted Gaussian (mean and covariance of the features).
    pub fn gaussian(&self) -> &Gaussian {
        &self.gaussian
    }
}

/// The scores of one set of images against a [`Reference`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImageScores {
    /// Classes, class histogram, class KL, confidence, FD and the sample count `n`.
    #[serde(flatten)]
    pub classes: DigitScores,
    /// The kernel inception distance: the mean unbiased MMD² over the subsets.
    pub kid: f64,
    /// Its standard deviation over the subsets.
    pub kid_std: f64,
    /// Subsets averaged.
    pub kid_subsets: usize,
    /// Samples of each set per subset.
    pub kid_subset_size: usize,
    /// The fraction of samples inside the reference's manifold.
    pub precision: f64,
    /// The fraction of reference images inside the samples' manifold.
    pub recall: f64,
    /// The `k` of precision and recall.
    pub pr_k: usize,
    /// Samples of each set that precision and recall compared.
    pub pr_n: usize,
}

/// Scores images from their class probabilities (`[N, classes]`) and features (`[N, D]`,
/// `N > PR_K`) against `reference`; `seed` draws the KID subsets and, where a set is larger than
/// the other, the samples precision and recall compare. Deterministic for a given seed.
///
/// # Panics
/// If the shapes disagree, `N <= PR_K`, or the feature widths differ.
#[track_caller]
pub fn image_scores(
    probs: &Tensor,
    features: &Tensor,
    reference: &Reference,
    seed: u64,
) -> ImageScores {
    let classes = digit_scores(probs, features, Some(&reference.gaussian));
    let n = features.shape()[0];
    assert!(
        n > PR_K,
        "image_scores: {n} samples, at least {} needed",
        PR_K + 1
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let k = kid(
        &reference.features,
        features,
        KID_SUBSETS,
        KID_SUBSET_SIZE,
        &mut rng,
    );
    let m = n.min(reference.len()).min(PR_MAX);
    let mut pick = |set: &Tensor| {
        let rows = set.shape()[0];
        if rows == m {
            return set.clone();
        }
        let mut chosen = sample(&mut rng, rows, m).into_vec();
        chosen.sort_unstable();
        let parts: Vec<Tensor> = chosen
            .iter()
            .map(|&i| set.slice_axis(0, i, i + 1))
            .collect();
        Tensor::concat(0, &parts.iter().collect::<Vec<_>>())
    };
    let (real, fake) = (pick(&reference.features), pick(features));
    let pr = precision_recall(&real, &fake, PR_K);
    ImageScores {
        classes,
        kid: k.mean,
        kid_std: k.std,
        kid_subsets: k.subsets,
        kid_subset_size: k.subset_size,
        precision: pr.precision,
        recall: pr.recall,
        pr_k: PR_K,
        pr_n: m,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// `n` points of a `d`-dimensional Gaussian with mean `shift`, and one-hot probabilities
    /// of their sign on the first axis.
    fn cloud(n: usize, d: usize, shift: f32, seed: u64) -> (Tensor, Tensor) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let f: Vec<f32> = (0..n * d)
            .map(|_| shift + rng.random_range(-1.0f32..1.0) + rng.random_range(-1.0f32..1.0))
            .collect();
        let p: Vec<f32> = f
            .chunks(d)
            .flat_map(|row| {
                if row[0] > shift {
                    [1.0, 0.0]
                } else {
                    [0.0, 1.0]
                }
            })
            .collect();
        (Tensor::from_vec(&[n, 2], p), Tensor::from_vec(&[n, d], f))
    }

    #[test]
    fn the_same_distribution_scores_near_the_floor_and_a_shifted_one_does_not() {
        let (_, real) = cloud(600, 4, 0.0, 1);
        let reference = Reference::new(real);
        let (p, same) = cloud(400, 4, 0.0, 2);
        let s = image_scores(&p, &same, &reference, 0);
        assert_eq!((s.classes.n, s.pr_n, s.pr_k), (400, 400, 3));
        assert_eq!((s.kid_subsets, s.kid_subset_size), (100, 400));
        assert!(s.kid.abs() < 0.01, "{}", s.kid);
        assert!(s.precision > 0.9 && s.recall > 0.9, "{s:?}");
        assert_eq!(s.classes.classes, 2);
        let (p, far) = cloud(400, 4, 1.5, 3);
        let t = image_scores(&p, &far, &reference, 0);
        assert!(
            t.kid > 20.0 * s.kid.abs().max(1e-3),
            "{} vs {}",
            t.kid,
            s.kid
        );
        assert!(t.classes.fd.unwrap() > 5.0 && s.classes.fd.unwrap() < 0.2);
        assert!(t.precision < 0.6 && t.recall < 0.6, "{t:?}");
        assert_eq!(image_scores(&p, &far, &reference, 0), t, "deterministic");
    }

    #[test]
    fn a_collapsed_generator_has_precision_without_recall() {
        let (_, real) = cloud(500, 3, 0.0, 4);
        let reference = Reference::new(real.clone());
        // Every sample is one of five real points (slightly jittered): all inside the real
        // manifold, covering almost none of it.
        let few = real.slice_axis(0, 0, 5);
        let parts: Vec<Tensor> = (0..100).map(|_| few.clone()).collect();
        let collapsed = Tensor::concat(0, &parts.iter().collect::<Vec<_>>()).add(
            &Tensor::rand_uniform(&[500, 3], -1e-3, 1e-3, &mut ChaCha8Rng::seed_from_u64(5)),
        );
        let probs = Tensor::from_vec(&[500, 2], [1.0, 0.0].repeat(500));
        let s = image_scores(&probs, &collapsed, &reference, 1);
        assert!(s.precision > 0.95 && s.recall < 0.1, "{s:?}");
        assert_eq!(s.classes.class_hist, vec![500, 0]);
    }
}
