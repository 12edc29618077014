//! Differentiable augmentation (DiffAugment, Zhao et al. 2020): colour, translation and
//! cutout applied to everything the discriminator sees, real and fake alike, as operations on
//! the tape, so that the generator's gradient flows through them. With little data (the
//! emoji) D otherwise memorises the training set; augmenting only the reals would teach G to
//! make augmented-looking samples.
//!
//! Each call draws its own random parameters per sample (brightness, saturation and contrast
//! factors, a shift of up to 1/8 of the side, a square hole of half the side) from the given
//! stream; the trainer passes the step's tape stream, so a resumed run draws the same ones.

use gantry_autodiff::Var;
use gantry_tensor::Tensor;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// One augmentation of the DiffAugment policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiffAug {
    /// Random brightness (± 0.5), saturation (x 0 to 2) and contrast (x 0.5 to 1.5).
    Color,
    /// A random shift by up to 1/8 of the image side, filled with zeros.
    Translation,
    /// A zeroed square of half the image side at a random place.
    Cutout,
}

impl DiffAug {
    /// Every augmentation, in the order they are applied.
    pub const ALL: [DiffAug; 3] = [DiffAug::Color, DiffAug::Translation, DiffAug::Cutout];

    /// Its name (`color`, `translation`, `cutout`).
    pub fn name(self) -> &'static str {
        match self {
            DiffAug::Color => "color",
            DiffAug::Translation => "translation",
            DiffAug::Cutout => "cutout",
        }
    }

    /// The augmentation called `name`.
    pub fn parse(name: &str) -> Option<DiffAug> {
        DiffAug::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// `x` (`[N, C, H, W]`) augmented by `policy`, in the paper's order (colour, translation,
/// cutout) whatever the order of `policy`.
///
/// # Panics
/// If `x` is not 4-D.
#[track_caller]
pub fn augment<'t, R: Rng + ?Sized>(x: Var<'t>, policy: &[DiffAug], rng: &mut R) -> Var<'t> {
    let shape = x.shape();
    assert!(
        shape.len() == 4,
        "diffaug: input {shape:?} is not a batch of images [N, C, H, W]"
    );
    let mut x = x;
    for a in DiffAug::ALL {
        if policy.contains(&a) {
            x = match a {
                DiffAug::Color => color(x, rng),
                DiffAug::Translation => translation(x, rng),
                DiffAug::Cutout => cutout(x, rng),
            };
        }
    }
    x
}

/// A `[N, 1, 1, 1]` constant of per-sample uniform draws in `[lo, hi)`.
fn per_sample<'t, R: Rng + ?Sized>(x: Var<'t>, lo: f32, hi: f32, rng: &mut R) -> Var<'t> {
    let n = x.shape()[0];
    let v = (0..n)
        .map(|_| lo + (hi - lo) * rng.random::<f32>())
        .collect();
    x.tape().constant(Tensor::from_vec(&[n, 1, 1, 1], v))
}

/// Brightness, saturation, contrast: each an affine map of the sample with a random factor.
fn color<'t, R: Rng + ?Sized>(x: Var<'t>, rng: &mut R) -> Var<'t> {
    let x = x.add(per_sample(x, -0.5, 0.5, rng));
    let mean = x.mean_axes(&[1], true);
    let x = x.sub(mean).mul(per_sample(x, 0.0, 2.0, rng)).add(mean);
    let mean = x.mean_axes(&[1, 2, 3], true);
    x.sub(mean).mul(per_sample(x, 0.5, 1.5, rng)).add(mean)
}

/// Each sample shifted by whole pixels, up to 1/8 of the side each way, zeros coming in.
fn translation<'t, R: Rng + ?Sized>(x: Var<'t>, rng: &mut R) -> Var<'t> {
    let s = x.shape();
    let (n, h, w) = (s[0], s[2], s[3]);
    let (sh, sw) = (
        (h as f32 * 0.125 + 0.5) as usize,
        (w as f32 * 0.125 + 0.5) as usize,
    );
    // Padding by the largest shift, then cropping a window: output (i, j) is input
    // (i - dy, j - dx) where that lies inside, zero elsewhere.
    let padded = x.pad(&[(0, 0), (0, 0), (sh, sh), (sw, sw)], 0.0);
    let parts: Vec<Var<'t>> = (0..n)
        .map(|i| {
            let top = rng.random_range(0..=2 * sh);
            let left = rng.random_range(0..=2 * sw);
            padded
                .slice_axis(0, i, i + 1)
                .slice_axis(2, top, top + h)
                .slice_axis(3, left, left + w)
        })
        .collect();
    Var::concat(&parts, 0)
}

/// Each sample with a square of half the side set to zero, centred anywhere in the image
/// (the square is clipped at the border).
fn cutout<'t, R: Rng + ?Sized>(x: Var<'t>, rng: &mut R) -> Var<'t> {
    let s = x.shape();
    let (n, h, w) = (s[0], s[2], s[3]);
    let (ch, cw) = (
        (h as f32 * 0.5 + 0.5) as usize,
        (w as f32 * 0.5 + 0.5) as usize,
    );
    let mut mask = vec![1.0f32; n * h * w];
    for (i, plane) in mask.chunks_mut(h * w).enumerate() {
        let _ = i;
        let cy = rng.random_range(0..h + 1 - ch % 2) as isize;
        let cx = rng.random_range(0..w + 1 - cw % 2) as isize;
        let (y0, x0) = (cy - (ch / 2) as isize, cx - (cw / 2) as isize);
        for y in y0.max(0)..(y0 + ch as isize).min(h as isize) {
            for xx in x0.max(0)..(x0 + cw as isize).min(w as isize) {
                plane[y as usize * w + xx as usize] = 0.0;
            }
        }
    }
    x.mul(x.tape().constant(Tensor::from_vec(&[n, 1, h, w], mask)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_autodiff::{GradcheckConfig, Tape, gradcheck};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn images(seed: u64) -> Tensor {
        Tensor::rand_uniform(
            &[3, 2, 8, 8],
            -1.0,
            1.0,
            &mut ChaCha8Rng::seed_from_u64(seed),
        )
    }

    fn augmented(x: &Tensor, policy: &[DiffAug], seed: u64) -> Vec<f32> {
        let tape = Tape::new();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        augment(tape.constant(x.clone()), policy, &mut rng)
            .value()
            .to_vec()
    }

    #[test]
    fn one_seed_augments_a_real_fake_pair_identically() {
        // Translation and cutout are linear maps chosen by the draw, so under one seed the
        // augmentation of real + fake is the sum of the augmentations; a shared draw also
        // makes equal inputs equal outputs, under colour too.
        let (real, fake) = (images(1), images(2));
        let policy = [DiffAug::Translation, DiffAug::Cutout];
        let (a, b) = (augmented(&real, &policy, 7), augmented(&fake, &policy, 7));
        let sum = augmented(&real.add(&fake), &policy, 7);
        for ((a, b), s) in a.iter().zip(&b).zip(&sum) {
            assert!((a + b - s).abs() < 1e-5);
        }
        let all = DiffAug::ALL;
        assert_eq!(augmented(&real, &all, 7), augmented(&real, &all, 7));
        assert_ne!(augmented(&real, &all, 7), augmented(&real, &all, 8));
        // Something happened: zeros from cutout, and a changed image.
        let out = augmented(&real, &all, 7);
        assert_ne!(out, real.to_vec());
        assert!(
            augmented(&real, &[DiffAug::Cutout], 7)
                .iter()
                .filter(|v| **v == 0.0)
                .count()
                >= 3 * 2 * 4
        );
    }

    #[test]
    fn the_gradient_flows_through_every_augmentation() {
        let cfg = GradcheckConfig {
            max_checks_per_input: 96,
            ..Default::default()
        };
        for policy in [
            vec![DiffAug::Color],
            vec![DiffAug::Translation],
            vec![DiffAug::Cutout],
            DiffAug::ALL.to_vec(),
        ] {
            let checked = gradcheck(
                |_, v| augment(v[0], &policy, &mut ChaCha8Rng::seed_from_u64(3)),
                &[images(4)],
                &cfg,
            )
            .unwrap_or_else(|e| panic!("{policy:?}: {e}"));
            assert!(checked > 0);
        }
    }

    #[test]
    fn translation_moves_pixels_and_brings_in_zeros() {
        let x = Tensor::full(&[1, 1, 8, 8], 1.0);
        let shifted: Vec<Vec<f32>> = (0..20)
            .map(|s| augmented(&x, &[DiffAug::Translation], s))
            .collect();
        // A shift of at most one pixel (1/8 of 8) each way: at most 15 zeros, and some draw
        // shifts.
        assert!(
            shifted
                .iter()
                .all(|v| v.iter().filter(|p| **p == 0.0).count() <= 15)
        );
        assert!(shifted.iter().any(|v| v.contains(&0.0)));
        assert_eq!(DiffAug::parse("cutout"), Some(DiffAug::Cutout));
        assert_eq!(DiffAug::parse("flip"), None);
    }
}
