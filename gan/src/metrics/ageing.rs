//! Face ageing measured against the truth: a face aged to another age group is compared with
//! the real image of the same person at that age, which the emoji faces make possible (every
//! person type exists at every age group and in every skin tone).
//!
//! Each [`AgeingPair`] names the true face, the target age and the face's *palette*: the same
//! person type at the target age in every skin tone (the truth among them). An ageing method's
//! images of the pairs are scored by [`ageing_scores`]:
//! - `l1` and `ssim` against the truth (as [`crate::metrics::image`], `[-1, 1]` images);
//! - `tone_error`: the distance, in 8-bit RGB levels, between the mean colour of the face
//!   region ([`TONE_ROWS`] x [`TONE_COLUMNS`], the cheeks and mouth of an emoji face) of the
//!   image and of the truth;
//! - `tone_accuracy`: the fraction of images whose face-region colour is nearer the truth's
//!   than any other skin tone of the palette: whether the skin tone survives ageing;
//! - `age_accuracy`: the fraction an age classifier puts in the target age group, when its
//!   predictions are given.
//!
//! ```
//! use gantry_gan::metrics::ageing::{AgeingPair, ageing_scores};
//! use gantry_tensor::Tensor;
//!
//! // Two real faces (16x16, one colour each); the method returns the second for the first.
//! let faces = Tensor::from_vec(&[2, 3, 16, 16], [vec![0.5; 768], vec![-0.5; 768]].concat());
//! let pair = AgeingPair { truth: 1, target_age: 0, palette: vec![0, 1] };
//! let s = ageing_scores(&faces.slice_axis(0, 1, 2), &faces, &[pair], Some(&[0]));
//! assert_eq!((s.l1, s.ssim, s.tone_error), (0.0, 1.0, 0.0));
//! assert_eq!((s.tone_accuracy, s.age_accuracy), (1.0, Some(1.0)));
//! ```

use crate::metrics::image::{RANGE_UNIT, l1, ssim};
use gantry_tensor::Tensor;
use serde::Serialize;
use std::ops::Range;

/// The rows of the face region, as fractions of the image height: the lower face (cheeks and
/// mouth), where every emoji face shows its skin tone and no hair reaches.
pub const TONE_ROWS: Range<f64> = 0.55..0.75;
/// The columns of the face region, as fractions of the image width.
pub const TONE_COLUMNS: Range<f64> = 0.25..0.75;

/// One aged face to score: the true face (an index into the real faces), the age group it
/// was aged to, and the true faces of the same person type at that age in every skin tone
/// (`palette`, holding `truth`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgeingPair {
    /// The real face of the same person at `target_age`.
    pub truth: usize,
    /// The age group the face was aged to.
    pub target_age: usize,
    /// The same person type at `target_age` in each skin tone, `truth` among them.
    pub palette: Vec<usize>,
}

/// The scores of one ageing method over a set of pairs (means over the pairs).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AgeingScores {
    /// How many aged faces were scored.
    pub pairs: usize,
    /// Mean `|aged - truth|` over pixels, `[-1, 1]` images.
    pub l1: f64,
    /// Mean SSIM against the truth.
    pub ssim: f64,
    /// Mean distance between the face-region colours of the aged face and of the truth, in
    /// 8-bit RGB levels (0 to 441).
    pub tone_error: f64,
    /// Fraction of aged faces whose face-region colour is nearest the truth's in the palette.
    pub tone_accuracy: f64,
    /// Fraction the age classifier puts in the target age group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_accuracy: Option<f64>,
}

/// The mean colour of the face region of each image of `[N, 3, H, W]` images in `[-1, 1]`, in
/// 8-bit levels (0 to 255).
///
/// # Panics
/// If the images are not 4-D with 3 channels, or smaller than 4x4.
#[track_caller]
pub fn tone_colours(images: &Tensor) -> Vec<[f64; 3]> {
    let s = images.shape();
    assert!(
        s.len() == 4 && s[1] == 3 && s[2] >= 4 && s[3] >= 4,
        "tone_colours: images {s:?} must be [N, 3, H, W] with H, W >= 4"
    );
    let (h, w) = (s[2], s[3]);
    let span = |r: &Range<f64>, side: usize| {
        (r.start * side as f64).round() as usize..(r.end * side as f64).round() as usize
    };
    let (rows, cols) = (span(&TONE_ROWS, h), span(&TONE_COLUMNS, w));
    let count = (rows.len() * cols.len()) as f64;
    let pixels = images.as_slice();
    (0..s[0])
        .map(|n| {
            std::array::from_fn(|c| {
                let plane = &pixels[(n * 3 + c) * h * w..][..h * w];
                let sum: f64 = rows
                    .clone()
                    .flat_map(|y| plane[y * w + cols.start..y * w + cols.end].iter())
                    .map(|&v| f64::from(v))
                    .sum();
                (sum / count + 1.0) * 127.5
            })
        })
        .collect()
}

fn distance(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// Scores `aged` (`[P, 3, H, W]`, image `k` for `pairs[k]`) against the real `faces`
/// (`[F, 3, H, W]`); `predicted_ages` (an age classifier's verdict on each aged image) adds
/// `age_accuracy`. Ties in the tone palette count against the method.
///
/// # Panics
/// If the counts or shapes disagree, or a pair names a face that is not there.
#[track_caller]
pub fn ageing_scores(
    aged: &Tensor,
    faces: &Tensor,
    pairs: &[AgeingPair],
    predicted_ages: Option<&[usize]>,
) -> AgeingScores {
    let n = pairs.len();
    assert!(
        n > 0 && aged.shape()[0] == n && aged.shape()[1..] == faces.shape()[1..],
        "ageing_scores: {n} pairs, aged images {:?}, faces {:?}",
        aged.shape(),
        faces.shape()
    );
    if let Some(p) = predicted_ages {
        assert_eq!(p.len(), n, "ageing_scores: one predicted age per pair");
    }
    let truth: Vec<Tensor> = pairs
        .iter()
        .map(|p| faces.slice_axis(0, p.truth, p.truth + 1))
        .collect();
    let truth = Tensor::concat(0, &truth.iter().collect::<Vec<_>>());
    let aged_tone = tone_colours(aged);
    let face_tone = tone_colours(faces);
    let (mut tone_error, mut tone_hits) = (0.0, 0usize);
    for (k, pair) in pairs.iter().enumerate() {
        let own = distance(&aged_tone[k], &face_tone[pair.truth]);
        tone_error += own;
        let nearest = pair
            .palette
            .iter()
            .filter(|&&j| j != pair.truth)
            .all(|&j| distance(&aged_tone[k], &face_tone[j]) > own);
        tone_hits += usize::from(nearest);
    }
    let age_accuracy = predicted_ages.map(|p| {
        let hits = p
            .iter()
            .zip(pairs)
            .filter(|(a, pair)| **a == pair.target_age)
            .count();
        hits as f64 / n as f64
    });
    AgeingScores {
        pairs: n,
        l1: l1(aged, &truth),
        ssim: ssim(aged, &truth, RANGE_UNIT),
        tone_error: tone_error / n as f64,
        tone_accuracy: tone_hits as f64 / n as f64,
        age_accuracy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 16x16 face of one colour (`[-1, 1]` values), with its face region painted `tone`.
    fn face(background: f32, tone: [f32; 3]) -> Vec<f32> {
        let mut v = vec![background; 3 * 256];
        for (c, t) in tone.iter().enumerate() {
            // Rows 9..12 and columns 4..12 at 16x16 (0.55 and 0.75 of 16 round to 9 and 12).
            for y in 9..12 {
                for x in 4..12 {
                    v[c * 256 + y * 16 + x] = *t;
                }
            }
        }
        v
    }

    /// The identity baseline (each face returned unchanged) on two faces, checked against
    /// values worked out by hand.
    #[test]
    fn identity_baseline_on_two_faces_by_hand() {
        // Face 0: background 0, region (0, 0, 0) -> 127.5 levels each.
        // Face 1: background 0.5, region (1, 0, -1) -> (255, 127.5, 0).
        // Face 2: face 1's palette neighbour, region (0.9, 0, -1) -> (242.25, 127.5, 0).
        let faces = Tensor::from_vec(
            &[3, 3, 16, 16],
            [
                face(0.0, [0.0; 3]),
                face(0.5, [1.0, 0.0, -1.0]),
                face(0.5, [0.9, 0.0, -1.0]),
            ]
            .concat(),
        );
        // Pair 0: face 0 aged, truth face 1 (palette 1, 2). Pair 1: face 1 aged, truth face 0
        // (palette 0 alone).
        let pairs = [
            AgeingPair {
                truth: 1,
                target_age: 2,
                palette: vec![1, 2],
            },
            AgeingPair {
                truth: 0,
                target_age: 0,
                palette: vec![0],
            },
        ];
        let identity = Tensor::concat(0, &[&faces.slice_axis(0, 0, 1), &faces.slice_axis(0, 1, 2)]);
        let s = ageing_scores(&identity, &faces, &pairs, Some(&[1, 0]));
        // L1: both pairs differ by |0 - 0.5| off the region (256 - 24 pixels per channel) and
        // by |0 - 1|, 0, |0 + 1| on it (24 pixels): (3 * 232 * 0.5 + 24 * 2) / 768, twice.
        let l1_hand = (3.0 * 232.0 * 0.5 + 48.0) / 768.0;
        assert!((s.l1 - l1_hand).abs() < 1e-12, "{} vs {l1_hand}", s.l1);
        // Tone: both pairs are (127.5, 127.5, 127.5) against (255, 127.5, 0): 127.5 sqrt(2).
        let tone_hand = 127.5 * 2f64.sqrt();
        assert!((s.tone_error - tone_hand).abs() < 1e-9, "{}", s.tone_error);
        // Pair 0: face 2 (distance sqrt(114.75² + 127.5²) = 171.5) is nearer than the truth
        // (180.3): a miss. Pair 1: a palette of one is always hit.
        assert_eq!(s.tone_accuracy, 0.5);
        // The classifier said 1 for target 2 (miss) and 0 for target 0 (hit).
        assert_eq!(s.age_accuracy, Some(0.5));
        assert_eq!(s.pairs, 2);
        // The same images against themselves: perfect on every count.
        let same = ageing_scores(
            &faces.slice_axis(0, 0, 2),
            &faces,
            &[
                AgeingPair {
                    truth: 0,
                    target_age: 0,
                    palette: vec![0, 1, 2],
                },
                AgeingPair {
                    truth: 1,
                    target_age: 0,
                    palette: vec![0, 1, 2],
                },
            ],
            None,
        );
        assert_eq!(
            (same.l1, same.tone_error, same.tone_accuracy),
            (0.0, 0.0, 1.0)
        );
        assert!((same.ssim - 1.0).abs() < 1e-9);
        assert!(s.ssim < 0.9, "{}", s.ssim);
        assert_eq!(same.age_accuracy, None);
    }

    #[test]
    fn the_face_region_is_the_lower_middle_of_the_image() {
        let mut v = face(-1.0, [1.0, -1.0, 0.0]);
        // A pixel outside the region changes nothing.
        v[8 * 16 + 8] = 1.0;
        let t = tone_colours(&Tensor::from_vec(&[1, 3, 16, 16], v));
        assert_eq!(t, vec![[255.0, 0.0, 127.5]]);
    }

    #[test]
    #[should_panic(expected = "2 pairs, aged images [1, 3, 16, 16]")]
    fn counts_must_agree() {
        let faces = Tensor::zeros(&[1, 3, 16, 16]);
        let pair = AgeingPair {
            truth: 0,
            target_age: 0,
            palette: vec![0],
        };
        ageing_scores(&faces, &faces, &[pair.clone(), pair], None);
    }
}
