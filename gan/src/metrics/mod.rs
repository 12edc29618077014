//! What measures a GAN: mode coverage on 2-D mixtures ([`mixture`]), an image classifier's
//! scores on generated images ([`classifier`], [`digits`]), the Fréchet distance between feature
//! sets ([`frechet`]), the kernel inception distance ([`kid`]), improved precision and recall
//! ([`precision_recall`]), all of them at once ([`scores`]), and L1 / PSNR / SSIM of translated
//! images ([`image`]), and aged faces against the true faces of the same person ([`ageing`]).
//!
//! Every function here is deterministic: the same inputs give the same numbers, whatever the
//! thread count. Histogram comparisons share one convention, [`kl_to_uniform`].
//!
//! ```
//! use gantry_gan::metrics::mixture::mixture_scores;
//! use gantry_tensor::Tensor;
//!
//! // Two samples exactly on two of four modes of std 0.1.
//! let centres = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]];
//! let points = Tensor::from_vec(&[2, 2], vec![0.0, 0.0, 1.0, 1.0]);
//! let s = mixture_scores(&points, &centres, 0.1);
//! assert_eq!((s.modes, s.modes_total, s.high_quality), (2, 4, 1.0));
//! assert!((s.reverse_kl.unwrap() - 2f64.ln()).abs() < 1e-12);
//! ```

pub mod ageing;
pub mod classifier;
pub mod digits;
pub mod frechet;
pub mod image;
pub mod kid;
pub mod mixture;
pub mod precision_recall;
pub mod scores;

/// `KL(p || uniform)` of the histogram `counts` over `counts.len()` bins, in nats:
/// `Σ_k p_k ln(K p_k)` with `p_k = counts[k] / Σ counts`, summed over the bins with a nonzero
/// count (`0 ln 0 = 0`, as PacGAN computes it). It is 0 for a uniform histogram and `ln K` when
/// every count falls in one bin. `None` when the histogram is empty (no counts, or no bins).
///
/// ```
/// use gantry_gan::metrics::kl_to_uniform;
/// assert_eq!(kl_to_uniform(&[5, 5, 5, 5]), Some(0.0));
/// assert!((kl_to_uniform(&[7, 0, 0, 0]).unwrap() - 4f64.ln()).abs() < 1e-12);
/// assert_eq!(kl_to_uniform(&[0, 0]), None);
/// ```
pub fn kl_to_uniform(counts: &[usize]) -> Option<f64> {
    let total: usize = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let k = counts.len() as f64;
    Some(
        counts
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = c as f64 / total as f64;
                p * (k * p).ln()
            })
            .sum::<f64>()
            .max(0.0),
    )
}
