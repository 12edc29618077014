//! Mode coverage on 2-D Gaussian mixtures, as VEEGAN (Srivastava et al., 2017) and PacGAN
//! (Lin et al., 2018) measure it.
//!
//! Each sample is assigned to its nearest mode centre. A sample is **high quality** when its
//! distance to that centre is less than [`HIGH_QUALITY_STDS`] (3) standard deviations of the
//! mixture. A mode is **captured** when at least one high-quality sample is nearest to it.
//! The **reverse KL** compares the histogram of high-quality samples over the modes with the
//! uniform distribution of the true mixture (see [`kl_to_uniform`]).

use super::kl_to_uniform;
use gantry_tensor::Tensor;
use serde::Serialize;

/// A sample within this many standard deviations of its nearest mode is high quality.
pub const HIGH_QUALITY_STDS: f64 = 3.0;

/// The mode-coverage scores of a set of 2-D samples.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MixtureScores {
    /// Modes captured: with at least one high-quality sample nearest to them.
    pub modes: usize,
    /// Modes of the mixture.
    pub modes_total: usize,
    /// Fraction of the samples that are high quality, in `[0, 1]`.
    pub high_quality: f64,
    /// `KL(p || uniform)` in nats, `p` the histogram of high-quality samples over the modes
    /// (empty modes contribute 0); 0 when they spread evenly, `ln K` when all sit on one mode.
    /// `None` (JSON `null`) when no sample is high quality.
    pub reverse_kl: Option<f64>,
    /// High-quality samples per mode, in the order of the mixture's centres.
    pub mode_counts: Vec<usize>,
    /// Samples scored.
    pub n: usize,
}

/// Scores `points` (`[N, 2]`) against the mixture with mode `centres` and per-axis standard
/// deviation `std`. Distances are computed in `f64`; a tie between two centres goes to the
/// first.
///
/// # Panics
/// If `points` is not `[N, 2]`, `centres` is empty, or `std` is not positive.
#[track_caller]
pub fn mixture_scores(points: &Tensor, centres: &[[f32; 2]], std: f32) -> MixtureScores {
    let shape = points.shape();
    assert!(
        shape.len() == 2 && shape[1] == 2,
        "mixture_scores: points {shape:?} must be [N, 2]"
    );
    assert!(!centres.is_empty(), "mixture_scores: no mode centres");
    assert!(
        std > 0.0 && std.is_finite(),
        "mixture_scores: std {std} must be positive"
    );
    let limit = HIGH_QUALITY_STDS * f64::from(std);
    let mut counts = vec![0usize; centres.len()];
    let mut good = 0usize;
    let values = points.as_slice();
    for p in values.chunks_exact(2) {
        let (x, y) = (f64::from(p[0]), f64::from(p[1]));
        let (k, d2) = centres
            .iter()
            .enumerate()
            .map(|(k, c)| {
                (
                    k,
                    (x - f64::from(c[0])).powi(2) + (y - f64::from(c[1])).powi(2),
                )
            })
            .fold((0, f64::INFINITY), |a, b| if b.1 < a.1 { b } else { a });
        if d2.sqrt() < limit {
            counts[k] += 1;
            good += 1;
        }
    }
    let n = shape[0];
    MixtureScores {
        modes: counts.iter().filter(|&&c| c > 0).count(),
        modes_total: centres.len(),
        high_quality: if n == 0 { 0.0 } else { good as f64 / n as f64 },
        reverse_kl: kl_to_uniform(&counts),
        mode_counts: counts,
        n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four modes on a square, std 0.1 (high quality: closer than 0.3).
    const SQUARE: [[f32; 2]; 4] = [[-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]];

    fn points(p: &[[f32; 2]]) -> Tensor {
        Tensor::from_vec(&[p.len(), 2], p.iter().flatten().copied().collect())
    }

    #[test]
    fn every_mode_evenly_covered() {
        // Two samples per mode, each 0.2 (2 std) from its centre.
        let p: Vec<[f32; 2]> = SQUARE
            .iter()
            .flat_map(|c| [[c[0] + 0.2, c[1]], [c[0], c[1] - 0.2]])
            .collect();
        let s = mixture_scores(&points(&p), &SQUARE, 0.1);
        assert_eq!(s.modes, 4);
        assert_eq!(s.modes_total, 4);
        assert_eq!(s.high_quality, 1.0);
        assert_eq!(s.reverse_kl, Some(0.0));
        assert_eq!(s.mode_counts, vec![2, 2, 2, 2]);
        assert_eq!(s.n, 8);
    }

    #[test]
    fn half_the_modes_with_some_samples_off() {
        // Three on mode 0, one on mode 3, and four 0.5 (5 std) away from every mode.
        let p = [
            [-1.0, -1.0],
            [-1.1, -1.0],
            [-1.0, -0.9],
            [1.0, 1.0],
            [-0.5, -1.0],
            [0.0, 0.0],
            [1.0, -0.5],
            [0.5, 1.0],
        ];
        let s = mixture_scores(&points(&p), &SQUARE, 0.1);
        assert_eq!(s.modes, 2);
        assert_eq!(s.high_quality, 0.5);
        assert_eq!(s.mode_counts, vec![3, 0, 0, 1]);
        // p = (3/4, 0, 0, 1/4): KL = 3/4 ln 3 + 1/4 ln 1.
        let want = 0.75 * 3f64.ln();
        assert!((s.reverse_kl.unwrap() - want).abs() < 1e-12, "{s:?}");
    }

    #[test]
    fn all_off_the_modes() {
        let p = [[0.0, 0.0], [0.0, 0.31 - 1.0], [5.0, 5.0]];
        let s = mixture_scores(&points(&p), &SQUARE, 0.1);
        assert_eq!(s.modes, 0);
        assert_eq!(s.high_quality, 0.0);
        assert_eq!(s.reverse_kl, None);
    }

    #[test]
    fn the_threshold_is_three_standard_deviations() {
        let inside = mixture_scores(&points(&[[-1.0 + 0.299, -1.0]]), &SQUARE, 0.1);
        let outside = mixture_scores(&points(&[[-1.0 + 0.301, -1.0]]), &SQUARE, 0.1);
        assert_eq!((inside.modes, outside.modes), (1, 0));
    }

    #[test]
    fn one_mode_only_is_ln_k() {
        let p = [[1.0, 1.0]; 10];
        let s = mixture_scores(&points(&p), &SQUARE, 0.1);
        assert_eq!(s.modes, 1);
        assert!((s.reverse_kl.unwrap() - 4f64.ln()).abs() < 1e-12);
    }
}
