//! Paired image metrics for translation (pix2pix): L1, PSNR and SSIM between generated images
//! and their targets.
//!
//! Images are `[N, C, H, W]` tensors. Every function takes the **peak-to-peak range** of the
//! data: 2 for gantry's images in `[-1, 1]` ([`RANGE_UNIT`]), 1 for `[0, 1]`, 255 for bytes.
//! PSNR and SSIM depend on it; L1 is reported in the data's own units (for `[-1, 1]` data it
//! is the mean `|G(A) - B|` that pix2pix's L1 loss minimises).
//!
//! Per-image values are averaged over the batch, in `f64`.

use gantry_tensor::Tensor;

/// The peak-to-peak range of images in `[-1, 1]`.
pub const RANGE_UNIT: f64 = 2.0;

/// The PSNR reported for an image identical to its target (whose PSNR is infinite): 100 dB,
/// above any 8-bit image's distinguishable error (one grey level of noise in `[-1, 1]` data is
/// about 59 dB), so averages stay finite and comparable.
pub const PSNR_CAP: f64 = 100.0;

/// SSIM's Gaussian window: side 11, standard deviation 1.5 (Wang et al., 2004).
pub const SSIM_WINDOW: usize = 11;
/// The window's standard deviation.
pub const SSIM_SIGMA: f64 = 1.5;
/// `C1 = (K1 L)²`.
pub const SSIM_K1: f64 = 0.01;
/// `C2 = (K2 L)²`.
pub const SSIM_K2: f64 = 0.03;

#[track_caller]
fn check_pair(op: &str, a: &Tensor, b: &Tensor) -> [usize; 4] {
    assert!(
        a.shape() == b.shape() && a.ndim() == 4,
        "{op}: images {:?} and {:?} must be the same [N, C, H, W]",
        a.shape(),
        b.shape()
    );
    [a.shape()[0], a.shape()[1], a.shape()[2], a.shape()[3]]
}

/// Mean absolute difference over all pixels, channels and images.
///
/// # Panics
/// If the shapes differ or are not 4-D.
#[track_caller]
pub fn l1(a: &Tensor, b: &Tensor) -> f64 {
    check_pair("l1", a, b);
    let (x, y) = (a.as_slice(), b.as_slice());
    let sum: f64 = x
        .iter()
        .zip(y.iter())
        .map(|(p, q)| f64::from((p - q).abs()))
        .sum();
    sum / x.len().max(1) as f64
}

/// Peak signal-to-noise ratio in dB, `10 log10(range² / MSE)`, computed per image and
/// averaged; an image equal to its target counts as [`PSNR_CAP`].
///
/// # Panics
/// If the shapes differ or are not 4-D.
#[track_caller]
pub fn psnr(a: &Tensor, b: &Tensor, range: f64) -> f64 {
    let [n, ..] = check_pair("psnr", a, b);
    let (x, y) = (a.as_slice(), b.as_slice());
    let per = x.len() / n.max(1);
    let total: f64 = x
        .chunks_exact(per.max(1))
        .zip(y.chunks_exact(per.max(1)))
        .map(|(p, q)| {
            let mse: f64 = p
                .iter()
                .zip(q)
                .map(|(u, v)| f64::from(u - v).powi(2))
                .sum::<f64>()
                / per as f64;
            if mse == 0.0 {
                PSNR_CAP
            } else {
                (10.0 * (range * range / mse).log10()).min(PSNR_CAP)
            }
        })
        .sum();
    total / n.max(1) as f64
}

/// Structural similarity (Wang et al., 2004): the mean of the SSIM map over each channel of
/// each image, averaged. The map uses an 11x11 Gaussian window (σ 1.5) over the positions where
/// it fits whole ("valid"), `C1 = (0.01 L)²`, `C2 = (0.03 L)²` with `L = range`, and the
/// biased (window-weighted) variances of the paper. 1 for identical images.
///
/// # Panics
/// If the shapes differ or are not 4-D, or an image is smaller than 11x11.
#[track_caller]
pub fn ssim(a: &Tensor, b: &Tensor, range: f64) -> f64 {
    let [n, c, h, w] = check_pair("ssim", a, b);
    assert!(
        h >= SSIM_WINDOW && w >= SSIM_WINDOW,
        "ssim: images of {h}x{w} are smaller than the {SSIM_WINDOW}x{SSIM_WINDOW} window"
    );
    let c1 = (SSIM_K1 * range).powi(2);
    let c2 = (SSIM_K2 * range).powi(2);
    let kernel = gaussian_kernel();
    let (x, y) = (a.as_slice(), b.as_slice());
    let plane = h * w;
    let mut total = 0.0;
    for p in 0..n * c {
        let px: Vec<f64> = x[p * plane..(p + 1) * plane]
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let py: Vec<f64> = y[p * plane..(p + 1) * plane]
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let prod = |f: &dyn Fn(f64, f64) -> f64| -> Vec<f64> {
            px.iter().zip(&py).map(|(&u, &v)| f(u, v)).collect()
        };
        let blur = |img: &[f64]| filter_valid(img, h, w, &kernel);
        let (mx, my) = (blur(&px), blur(&py));
        let (sxx, syy, sxy) = (
            blur(&prod(&|u, _| u * u)),
            blur(&prod(&|_, v| v * v)),
            blur(&prod(&|u, v| u * v)),
        );
        let map_sum: f64 = (0..mx.len())
            .map(|i| {
                let (m1, m2) = (mx[i], my[i]);
                let v1 = sxx[i] - m1 * m1;
                let v2 = syy[i] - m2 * m2;
                let cov = sxy[i] - m1 * m2;
                ((2.0 * m1 * m2 + c1) * (2.0 * cov + c2))
                    / ((m1 * m1 + m2 * m2 + c1) * (v1 + v2 + c2))
            })
            .sum();
        total += map_sum / mx.len() as f64;
    }
    total / (n * c).max(1) as f64
}

/// The normalised 1-D Gaussian of SSIM's window (the 2-D window is its outer product).
fn gaussian_kernel() -> Vec<f64> {
    let r = (SSIM_WINDOW / 2) as f64;
    let k: Vec<f64> = (0..SSIM_WINDOW)
        .map(|i| (-((i as f64 - r).powi(2)) / (2.0 * SSIM_SIGMA * SSIM_SIGMA)).exp())
        .collect();
    let s: f64 = k.iter().sum();
    k.into_iter().map(|v| v / s).collect()
}

/// Separable "valid" filtering of an `h x w` image with the outer product of `k` with itself.
fn filter_valid(img: &[f64], h: usize, w: usize, k: &[f64]) -> Vec<f64> {
    let s = k.len();
    let (oh, ow) = (h - s + 1, w - s + 1);
    let mut rows = vec![0.0; h * ow];
    for y in 0..h {
        for x in 0..ow {
            rows[y * ow + x] = (0..s).map(|i| k[i] * img[y * w + x + i]).sum();
        }
    }
    let mut out = vec![0.0; oh * ow];
    for y in 0..oh {
        for x in 0..ow {
            out[y * ow + x] = (0..s).map(|i| k[i] * rows[(y + i) * ow + x]).sum();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn random(shape: &[usize], seed: u64) -> Tensor {
        Tensor::rand_uniform(shape, -1.0, 1.0, &mut ChaCha8Rng::seed_from_u64(seed))
    }

    #[test]
    fn identical_images() {
        let a = random(&[2, 3, 16, 16], 0);
        assert_eq!(l1(&a, &a), 0.0);
        assert_eq!(psnr(&a, &a, RANGE_UNIT), PSNR_CAP);
        assert!((ssim(&a, &a, RANGE_UNIT) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn constant_offset_has_closed_form_l1_and_psnr() {
        let a = random(&[3, 1, 12, 12], 1).mul_scalar(0.5);
        let b = a.add_scalar(0.1);
        assert!((l1(&a, &b) - 0.1).abs() < 1e-6);
        // MSE = 0.01: PSNR = 10 log10(4 / 0.01) = 26.0206 dB; in [0, 1] units 20 dB.
        let want = 10.0 * (4.0f64 / 0.01).log10();
        assert!((psnr(&a, &b, RANGE_UNIT) - want).abs() < 1e-4);
        assert!((psnr(&a, &b, 1.0) - 20.0).abs() < 1e-4);
    }

    #[test]
    fn constant_images_have_the_luminance_term_only() {
        // No variance: SSIM = (2 m1 m2 + C1) / (m1² + m2² + C1).
        let (m1, m2) = (0.2f64, -0.5f64);
        let a = Tensor::full(&[1, 2, 11, 13], m1 as f32);
        let b = Tensor::full(&[1, 2, 11, 13], m2 as f32);
        let c1 = (0.01f64 * 2.0).powi(2);
        let m1 = f64::from(m1 as f32);
        let m2 = f64::from(m2 as f32);
        let want = (2.0 * m1 * m2 + c1) / (m1 * m1 + m2 * m2 + c1);
        let got = ssim(&a, &b, RANGE_UNIT);
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
    }

    #[test]
    fn noise_lowers_ssim_monotonically() {
        let a = random(&[1, 1, 32, 32], 2);
        let noise = random(&[1, 1, 32, 32], 3);
        let s: Vec<f64> = [0.05, 0.1, 0.5, 1.0]
            .iter()
            .map(|&k| ssim(&a, &a.add(&noise.mul_scalar(k)), RANGE_UNIT))
            .collect();
        assert!(s.windows(2).all(|w| w[0] > w[1]) && s[0] < 1.0, "{s:?}");
    }

    #[test]
    fn the_window_is_a_normalised_gaussian() {
        let k = gaussian_kernel();
        assert_eq!(k.len(), 11);
        assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((k[5] / k[4] - (1.0f64 / (2.0 * 2.25)).exp()).abs() < 1e-12);
    }
}
