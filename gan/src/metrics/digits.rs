//! Classifier-based scores of generated digits (or any images a
//! [`ImageClassifier`](super::classifier::ImageClassifier) can read): how many classes the
//! samples cover, how evenly, how confidently they are recognised, and how far their feature
//! distribution is from the real test set's (a Fréchet distance on the classifier's
//! penultimate features, as FID does with Inception's).

use super::classifier::argmax_rows;
use super::frechet::{Gaussian, frechet_distance};
use super::kl_to_uniform;
use gantry_tensor::Tensor;
use serde::Serialize;

/// A sample is confidently recognised when its most probable class has at least this
/// probability.
pub const CONFIDENT: f32 = 0.9;

/// Classifier-based scores of a set of images.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DigitScores {
    /// Classes predicted for at least one sample.
    pub classes: usize,
    /// Samples per predicted class.
    pub class_hist: Vec<usize>,
    /// `KL(p || uniform)` in nats of the predicted-class histogram (empty classes contribute
    /// 0; see [`kl_to_uniform`]): 0 for balanced classes, `ln 10` for a single class.
    pub class_kl: f64,
    /// Fraction of samples whose most probable class has probability `>=` [`CONFIDENT`].
    pub confident: f64,
    /// Fréchet distance of the samples' penultimate features to the reference's (the real
    /// test set); `None` without a reference.
    pub fd: Option<f64>,
    /// Samples scored.
    pub n: usize,
}

/// Scores `probs` (`[N, classes]`) and `features` (`[N, D]`) of `N` samples, comparing the
/// features with `reference` (a Gaussian fitted to the real test set's features) if given.
///
/// # Panics
/// If the shapes are not `[N, C]` and `[N, D]` with the same `N >= 2`, or the reference's
/// dimension is not `D`.
#[track_caller]
pub fn digit_scores(
    probs: &Tensor,
    features: &Tensor,
    reference: Option<&Gaussian>,
) -> DigitScores {
    let (ps, fs) = (probs.shape(), features.shape());
    assert!(
        ps.len() == 2 && fs.len() == 2 && ps[0] == fs[0] && ps[0] >= 2,
        "digit_scores: probabilities {ps:?} and features {fs:?} must be [N, C] and [N, D], N >= 2"
    );
    let (n, c) = (ps[0], ps[1]);
    let mut hist = vec![0usize; c];
    for k in argmax_rows(probs) {
        hist[k] += 1;
    }
    let confident = probs
        .as_slice()
        .chunks(c)
        .filter(|row| row.iter().copied().fold(f32::NEG_INFINITY, f32::max) >= CONFIDENT)
        .count();
    DigitScores {
        classes: hist.iter().filter(|&&h| h > 0).count(),
        class_kl: kl_to_uniform(&hist).unwrap_or(0.0),
        class_hist: hist,
        confident: confident as f64 / n as f64,
        fd: reference.map(|r| frechet_distance(&Gaussian::fit(features), r)),
        n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One-hot-ish probabilities: `p` on `class`, the rest spread evenly over 10 classes.
    fn probs(classes: &[usize], p: f32) -> Tensor {
        let mut v = Vec::new();
        for &k in classes {
            for j in 0..10 {
                v.push(if j == k { p } else { (1.0 - p) / 9.0 });
            }
        }
        Tensor::from_vec(&[classes.len(), 10], v)
    }

    #[test]
    fn balanced_confident_classes() {
        let classes: Vec<usize> = (0..20).map(|i| i % 10).collect();
        let f = Tensor::from_vec(&[20, 1], (0..20).map(|i| i as f32).collect());
        let s = digit_scores(&probs(&classes, 0.95), &f, Some(&Gaussian::fit(&f)));
        assert_eq!(s.classes, 10);
        assert_eq!(s.class_hist, vec![2; 10]);
        assert_eq!(s.class_kl, 0.0);
        assert_eq!(s.confident, 1.0);
        assert!(s.fd.unwrap() < 1e-9);
    }

    #[test]
    fn collapsed_unsure_classes() {
        let f = Tensor::from_vec(&[4, 1], vec![0.0, 1.0, 2.0, 3.0]);
        let s = digit_scores(&probs(&[3, 3, 3, 3], 0.5), &f, None);
        assert_eq!(s.classes, 1);
        assert!((s.class_kl - 10f64.ln()).abs() < 1e-12);
        assert_eq!(s.confident, 0.0);
        assert_eq!(s.fd, None);
        let half = digit_scores(&probs(&[1, 2], 0.9), &f.slice_axis(0, 0, 2), None);
        assert_eq!(half.confident, 1.0); // 0.9 itself counts
    }
}
