//! Image transforms on CHW tensors (resize, crops, horizontal flip, colour jitter) and
//! [`Augment`], a seeded
//! pipeline of them that applies the same random choices to both images of a pair.

use crate::dataset::Example;
use gantry_tensor::Tensor;
use rand::Rng;

/// Shape of a CHW image tensor.
#[track_caller]
fn chw(op: &str, img: &Tensor) -> [usize; 3] {
    match img.shape() {
        &[c, h, w] => [c, h, w],
        s => panic!("{op}: expected a CHW image, got shape {s:?}"),
    }
}

/// For each output index, the first input index and the weights of the input indices from
/// there: a triangle (bilinear) filter on pixel centres, widened when shrinking so that every
/// input pixel contributes (antialiasing, as PIL and torchvision's `antialias=True` do).
fn filter_taps(input: usize, output: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = input as f64 / output as f64;
    let support = scale.max(1.0);
    (0..output)
        .map(|o| {
            let centre = (o as f64 + 0.5) * scale - 0.5;
            let lo = (centre - support).floor().max(0.0) as usize;
            let hi = ((centre + support).ceil() as usize).min(input - 1);
            let mut w: Vec<f64> = (lo..=hi)
                .map(|x| (1.0 - (x as f64 - centre).abs() / support).max(0.0))
                .collect();
            let sum: f64 = w.iter().sum();
            if sum > 0.0 {
                w.iter_mut().for_each(|v| *v /= sum);
            } else {
                // The centre is outside the image: take the nearest edge pixel.
                w.iter_mut().for_each(|v| *v = 0.0);
                let edge = if centre < 0.0 { 0 } else { w.len() - 1 };
                w[edge] = 1.0;
            }
            (lo, w.into_iter().map(|v| v as f32).collect())
        })
        .collect()
}

/// Resizes a CHW image to `height x width` (bilinear, antialiased when shrinking).
///
/// # Panics
/// If `img` is not 3-D or a size is zero.
#[track_caller]
pub fn resize(img: &Tensor, height: usize, width: usize) -> Tensor {
    let [c, h, w] = chw("resize", img);
    assert!(
        height > 0 && width > 0,
        "resize: target {height}x{width} is empty"
    );
    if (h, w) == (height, width) {
        return img.clone();
    }
    let src = img.as_slice();
    let (tx, ty) = (filter_taps(w, width), filter_taps(h, height));
    // Rows first: [c, h, w] -> [c, h, width].
    let mut mid = vec![0f32; c * h * width];
    for (row_in, row_out) in src.chunks_exact(w).zip(mid.chunks_exact_mut(width)) {
        for (out, (lo, ws)) in row_out.iter_mut().zip(&tx) {
            *out = ws.iter().zip(&row_in[*lo..]).map(|(a, b)| a * b).sum();
        }
    }
    // Then columns: [c, h, width] -> [c, height, width].
    let mut out = vec![0f32; c * height * width];
    for ch in 0..c {
        let plane = &mid[ch * h * width..(ch + 1) * h * width];
        for (y, (lo, ws)) in ty.iter().enumerate() {
            let dst = &mut out[(ch * height + y) * width..(ch * height + y + 1) * width];
            for (k, wgt) in ws.iter().enumerate() {
                let row = &plane[(lo + k) * width..(lo + k + 1) * width];
                dst.iter_mut().zip(row).for_each(|(d, s)| *d += wgt * s);
            }
        }
    }
    Tensor::from_vec(&[c, height, width], out)
}

/// The `height x width` window of a CHW image whose top-left corner is `(top, left)`.
///
/// # Panics
/// If `img` is not 3-D or the window does not fit.
#[track_caller]
pub fn crop(img: &Tensor, top: usize, left: usize, height: usize, width: usize) -> Tensor {
    let [c, h, w] = chw("crop", img);
    assert!(
        top + height <= h && left + width <= w,
        "crop: window {height}x{width} at ({top}, {left}) does not fit a {h}x{w} image"
    );
    let src = img.as_slice();
    let mut out = Vec::with_capacity(c * height * width);
    for ch in 0..c {
        for y in top..top + height {
            let start = (ch * h + y) * w + left;
            out.extend_from_slice(&src[start..start + width]);
        }
    }
    Tensor::from_vec(&[c, height, width], out)
}

/// The centred `height x width` window of a CHW image (rounding the offset down).
///
/// # Panics
/// If `img` is not 3-D or is smaller than the window.
#[track_caller]
pub fn center_crop(img: &Tensor, height: usize, width: usize) -> Tensor {
    let [_, h, w] = chw("center_crop", img);
    assert!(
        height <= h && width <= w,
        "center_crop: {height}x{width} is larger than {h}x{w}"
    );
    crop(img, (h - height) / 2, (w - width) / 2, height, width)
}

/// Mirrors a CHW image left to right.
///
/// # Panics
/// If `img` is not 3-D.
#[track_caller]
pub fn hflip(img: &Tensor) -> Tensor {
    let [c, h, w] = chw("hflip", img);
    let mut out = img.to_vec();
    out.chunks_exact_mut(w).for_each(|row| row.reverse());
    Tensor::from_vec(&[c, h, w], out)
}

/// One step of an [`Augment`] pipeline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Transform {
    /// Resize to `height x width`.
    Resize {
        /// Output height.
        height: usize,
        /// Output width.
        width: usize,
    },
    /// Take the centred `height x width` window.
    CenterCrop {
        /// Output height.
        height: usize,
        /// Output width.
        width: usize,
    },
    /// Take a `height x width` window at a uniformly random offset.
    RandomCrop {
        /// Output height.
        height: usize,
        /// Output width.
        width: usize,
    },
    /// Mirror left to right with probability `p`.
    HorizontalFlip {
        /// Probability of flipping.
        p: f64,
    },
    /// Scale brightness, contrast and saturation (in that order) by factors drawn uniformly
    /// from `[1 - x, 1 + x]` for each setting `x`, as torchvision's `ColorJitter` (see
    /// [`color_jitter`]); 0 leaves that property alone.
    ColorJitter {
        /// Brightness spread.
        brightness: f32,
        /// Contrast spread.
        contrast: f32,
        /// Saturation spread (3-channel images only).
        saturation: f32,
    },
}

/// Scales an image in `[-1, 1]` (CHW) by brightness factor `b` (every value, seen in
/// `[0, 1]`, times `b`), then contrast `c` (each value pulled towards or pushed from the mean
/// grey level of the image by `c`), then saturation `s` (each pixel towards or away from its
/// own grey level `0.299 R + 0.587 G + 0.114 B`; only for 3 channels), clamping to the range
/// after each, as torchvision's `adjust_brightness`, `adjust_contrast` and
/// `adjust_saturation`.
///
/// # Panics
/// If `img` is not 3-D.
#[track_caller]
pub fn color_jitter(img: &Tensor, b: f32, c: f32, s: f32) -> Tensor {
    let [ch, h, w] = chw("color_jitter", img);
    let plane = h * w;
    let mut u: Vec<f32> = img.to_vec().iter().map(|v| (v + 1.0) / 2.0).collect();
    let grey = |u: &[f32], i: usize| {
        if ch == 3 {
            0.299 * u[i] + 0.587 * u[plane + i] + 0.114 * u[2 * plane + i]
        } else {
            u[i]
        }
    };
    u.iter_mut().for_each(|v| *v = (*v * b).clamp(0.0, 1.0));
    let mean = (0..plane).map(|i| grey(&u, i)).sum::<f32>() / plane.max(1) as f32;
    u.iter_mut()
        .for_each(|v| *v = (mean + c * (*v - mean)).clamp(0.0, 1.0));
    if ch == 3 {
        for i in 0..plane {
            let g = grey(&u, i);
            for k in 0..3 {
                let v = &mut u[k * plane + i];
                *v = (g + s * (*v - g)).clamp(0.0, 1.0);
            }
        }
    }
    Tensor::from_vec(&[ch, h, w], u.iter().map(|v| v * 2.0 - 1.0).collect())
}

/// A pipeline of [`Transform`]s. Random choices are drawn once per example from the `rng`
/// passed in, and the same choices are applied to the input and the target of a pair, so the
/// two stay pixel-aligned.
///
/// ```
/// use gantry_datasets::{Augment, transform};
/// use gantry_tensor::Tensor;
/// use rand::SeedableRng;
///
/// let jitter = Augment::jitter(64); // resize to 72, random crop 64, flip half the time
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
/// let a = Tensor::randn(&[3, 64, 64], 0.0, 0.5, &mut rng);
/// let (x, y) = jitter.apply_pair(&a, &a, &mut rng);
/// assert_eq!(x.shape(), &[3, 64, 64]);
/// assert_eq!(x, y);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Augment {
    steps: Vec<Transform>,
}

impl Augment {
    /// A pipeline of `steps`, applied in order.
    pub fn new(steps: Vec<Transform>) -> Augment {
        Augment { steps }
    }

    /// The pix2pix random jitter for square images of side `size`: resize to `size * 286 / 256`
    /// (rounded: 256 → 286, 64 → 72, 28 → 31), random crop back to `size`, flip with
    /// probability 0.5.
    pub fn jitter(size: usize) -> Augment {
        Augment::new(Augment::shift_and_flip(size, (size * 286 + 128) / 256))
    }

    /// Resize to `load`, random crop back to `size`, flip with probability 0.5.
    fn shift_and_flip(size: usize, load: usize) -> Vec<Transform> {
        vec![
            Transform::Resize {
                height: load,
                width: load,
            },
            Transform::RandomCrop {
                height: size,
                width: size,
            },
            Transform::HorizontalFlip { p: 0.5 },
        ]
    }

    /// The face-ageing augmentation for square images of side `size`, for a data set as small
    /// as the 50 emoji faces: resize to `size + size / 16` and crop `size` at random (shifts
    /// of up to 4 pixels at 64), flip half the time, and jitter brightness, contrast and
    /// saturation by up to 10% (small enough to keep a skin tone apart from its neighbours).
    pub fn faces(size: usize) -> Augment {
        let mut steps = Augment::shift_and_flip(size, size + size / 16);
        steps.push(Transform::ColorJitter {
            brightness: 0.1,
            contrast: 0.1,
            saturation: 0.1,
        });
        Augment::new(steps)
    }

    /// The steps.
    pub fn steps(&self) -> &[Transform] {
        &self.steps
    }

    /// Applies the pipeline to one CHW image.
    ///
    /// # Panics
    /// If `img` is not 3-D or a crop does not fit.
    #[track_caller]
    pub fn apply<R: Rng + ?Sized>(&self, img: &Tensor, rng: &mut R) -> Tensor {
        let mut out = [img.clone()];
        self.run(&mut out, rng);
        let [out] = out;
        out
    }

    /// Applies the pipeline to both images of a pair with the same random choices.
    ///
    /// # Panics
    /// If an image is not 3-D, the two differ in height or width, or a crop does not fit.
    #[track_caller]
    pub fn apply_pair<R: Rng + ?Sized>(
        &self,
        a: &Tensor,
        b: &Tensor,
        rng: &mut R,
    ) -> (Tensor, Tensor) {
        assert!(
            chw("Augment::apply_pair", a)[1..] == chw("Augment::apply_pair", b)[1..],
            "Augment::apply_pair: images {:?} and {:?} differ in size",
            a.shape(),
            b.shape()
        );
        let mut both = [a.clone(), b.clone()];
        self.run(&mut both, rng);
        let [a, b] = both;
        (a, b)
    }

    /// Applies the pipeline to an example's image and, with the same choices, its target.
    #[track_caller]
    pub fn apply_example<R: Rng + ?Sized>(&self, example: Example, rng: &mut R) -> Example {
        match example.target {
            Some(target) => {
                let (image, target) = self.apply_pair(&example.image, &target, rng);
                Example {
                    image,
                    target: Some(target),
                    label: example.label,
                }
            }
            None => Example {
                image: self.apply(&example.image, rng),
                ..example
            },
        }
    }

    /// The `[height, width]` the pipeline produces from `[height, width]`.
    pub fn output_hw(&self, hw: [usize; 2]) -> [usize; 2] {
        self.steps.iter().fold(hw, |hw, step| match *step {
            Transform::Resize { height, width }
            | Transform::CenterCrop { height, width }
            | Transform::RandomCrop { height, width } => [height, width],
            Transform::HorizontalFlip { .. } | Transform::ColorJitter { .. } => hw,
        })
    }

    #[track_caller]
    fn run<R: Rng + ?Sized>(&self, imgs: &mut [Tensor], rng: &mut R) {
        for step in &self.steps {
            let [_, h, w] = chw("Augment", &imgs[0]);
            match *step {
                Transform::Resize { height, width } => {
                    imgs.iter_mut().for_each(|x| *x = resize(x, height, width));
                }
                Transform::CenterCrop { height, width } => {
                    imgs.iter_mut()
                        .for_each(|x| *x = center_crop(x, height, width));
                }
                Transform::RandomCrop { height, width } => {
                    assert!(
                        height <= h && width <= w,
                        "RandomCrop: {height}x{width} is larger than {h}x{w}"
                    );
                    let top = rng.random_range(0..=h - height);
                    let left = rng.random_range(0..=w - width);
                    imgs.iter_mut()
                        .for_each(|x| *x = crop(x, top, left, height, width));
                }
                Transform::HorizontalFlip { p } => {
                    if rng.random_bool(p.clamp(0.0, 1.0)) {
                        imgs.iter_mut().for_each(|x| *x = hflip(x));
                    }
                }
                Transform::ColorJitter {
                    brightness,
                    contrast,
                    saturation,
                } => {
                    let mut factor = |x: f32| {
                        let x = x.clamp(0.0, 1.0);
                        if x > 0.0 {
                            rng.random_range(1.0 - x..=1.0 + x)
                        } else {
                            1.0
                        }
                    };
                    let (b, c, s) = (factor(brightness), factor(contrast), factor(saturation));
                    imgs.iter_mut().for_each(|x| *x = color_jitter(x, b, c, s));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_keeps_constants_and_upsamples_linearly() {
        let flat = Tensor::full(&[2, 5, 7], 0.25);
        for (h, w) in [(3, 4), (10, 14), (1, 1), (5, 7)] {
            let r = resize(&flat, h, w);
            assert_eq!(r.shape(), &[2, h, w]);
            assert!(r.to_vec().iter().all(|v| (v - 0.25).abs() < 1e-6));
        }
        // A 1x2 ramp doubled: pixel centres at 0.25 steps between the two values.
        let ramp = Tensor::from_vec(&[1, 1, 2], vec![0.0, 1.0]);
        assert_eq!(resize(&ramp, 1, 4).to_vec(), vec![0.0, 0.25, 0.75, 1.0]);
        // Halving averages pairs.
        let pairs = Tensor::from_vec(&[1, 1, 4], vec![0.0, 1.0, 2.0, 3.0]);
        let half = resize(&pairs, 1, 2).to_vec();
        assert!(
            half[0] > 0.4 && half[0] < 0.8 && half[1] > 2.2 && half[1] < 2.6,
            "{half:?}"
        );
    }

    #[test]
    fn crops_and_flips() {
        let x = Tensor::from_vec(&[1, 3, 3], (0..9).map(|v| v as f32).collect());
        assert_eq!(crop(&x, 1, 1, 2, 2).to_vec(), vec![4.0, 5.0, 7.0, 8.0]);
        assert_eq!(center_crop(&x, 1, 1).to_vec(), vec![4.0]);
        assert_eq!(
            hflip(&x).to_vec(),
            vec![2.0, 1.0, 0.0, 5.0, 4.0, 3.0, 8.0, 7.0, 6.0]
        );
    }

    #[test]
    fn colour_jitter_by_hand() {
        // One grey pixel and one red one, [0, 1] values (0.5, 0.5, 0.5) and (1, 0, 0).
        let unit = [0.5, 1.0, 0.5, 0.0, 0.5, 0.0];
        let x = Tensor::from_vec(&[3, 1, 2], unit.iter().map(|v| v * 2.0 - 1.0).collect());
        let same = color_jitter(&x, 1.0, 1.0, 1.0).to_vec();
        assert!(
            same.iter()
                .zip(x.to_vec())
                .all(|(a, b)| (a - b).abs() < 1e-6)
        );
        // Brightness 0.5 halves the [0, 1] values: 0.25 and 0.5 -> -0.5 and 0.
        let dim = color_jitter(&x, 0.5, 1.0, 1.0).to_vec();
        assert!(
            (dim[0] + 0.5).abs() < 1e-6 && dim[1].abs() < 1e-6,
            "{dim:?}"
        );
        // Saturation 0 turns the red pixel to its grey 0.299: 2 * 0.299 - 1 in every channel.
        let grey = color_jitter(&x, 1.0, 1.0, 0.0).to_vec();
        for k in 0..3 {
            assert!(
                (grey[2 * k + 1] - (2.0 * 0.299 - 1.0)).abs() < 1e-5,
                "{grey:?}"
            );
        }
        // Contrast 0 makes every value the mean grey (0.5 + 0.299) / 2.
        let flat = color_jitter(&x, 1.0, 0.0, 1.0).to_vec();
        assert!(
            flat.iter().all(|v| (v - (0.799 - 1.0)).abs() < 1e-5),
            "{flat:?}"
        );
    }

    #[test]
    fn jitter_sizes_follow_pix2pix() {
        assert_eq!(
            Augment::jitter(256).steps()[0],
            Transform::Resize {
                height: 286,
                width: 286
            }
        );
        assert_eq!(
            Augment::jitter(64).steps()[0],
            Transform::Resize {
                height: 72,
                width: 72
            }
        );
        assert_eq!(Augment::jitter(64).output_hw([64, 64]), [64, 64]);
    }
}
