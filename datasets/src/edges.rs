//! Edge maps (Canny on luminance: blur, Sobel, non-maximum suppression, hysteresis) and the
//! paired data sets built from them, `edges2emoji` and `edges2digits`, which stand in for
//! pix2pix's edges2shoes: the input is a line drawing (black lines on white), the target the
//! image it was drawn from.

use crate::builtin::Split;
use crate::image_set::ImageSet;
use crate::pairs::PairSet;
use rayon::prelude::*;

/// Parameters of [`edge_map`]. Thresholds are on the Sobel gradient magnitude of luminance in
/// 0..255 (a hard step from black to white gives about 1020 without blur).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EdgeOptions {
    /// Smooth with a 3x3 binomial filter first (suppresses texture and JPEG noise).
    pub blur: bool,
    /// Weak edges at or above this magnitude are kept where they touch a strong edge.
    pub low: f32,
    /// Edges at or above this magnitude are always kept.
    pub high: f32,
}

impl Default for EdgeOptions {
    /// Blur on, thresholds 60 and 140: clean outlines of the emoji and the digits.
    fn default() -> Self {
        EdgeOptions {
            blur: true,
            low: 60.0,
            high: 140.0,
        }
    }
}

/// Luminance (ITU-R BT.601: 0.299 R + 0.587 G + 0.114 B) of a planar image of `c` channels;
/// a 1-channel image is returned as it is.
pub fn luminance(chw: &[u8], c: usize) -> Vec<f32> {
    let plane = chw.len() / c.max(1);
    if c < 3 {
        return chw[..plane].iter().map(|&v| v as f32).collect();
    }
    let (r, rest) = chw.split_at(plane);
    let (g, b) = rest.split_at(plane);
    r.iter()
        .zip(g)
        .zip(b)
        .map(|((&r, &g), &b)| 0.299 * r as f32 + 0.587 * g as f32 + 0.114 * b as f32)
        .collect()
}

/// Reads `img[y][x]` with coordinates clamped to the border.
fn at(img: &[f32], w: usize, h: usize, x: isize, y: isize) -> f32 {
    let x = x.clamp(0, w as isize - 1) as usize;
    let y = y.clamp(0, h as isize - 1) as usize;
    img[y * w + x]
}

/// 3x3 binomial blur ([1 2 1] / 4 along each axis).
fn blur(img: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mut out = vec![0f32; w * h];
    for y in 0..h as isize {
        for x in 0..w as isize {
            let mut s = 0.0;
            for (dy, ky) in [(-1, 1.0), (0, 2.0), (1, 1.0)] {
                for (dx, kx) in [(-1, 1.0), (0, 2.0), (1, 1.0)] {
                    s += ky * kx * at(img, w, h, x + dx, y + dy);
                }
            }
            out[y as usize * w + x as usize] = s / 16.0;
        }
    }
    out
}

/// Canny edges of a `w x h` luminance image: bytes 0 on edges, 255 elsewhere.
///
/// # Panics
/// If `gray.len() != w * h`.
#[track_caller]
pub fn edge_map(gray: &[f32], w: usize, h: usize, options: EdgeOptions) -> Vec<u8> {
    assert_eq!(
        gray.len(),
        w * h,
        "edge_map: {} values for a {w}x{h} image",
        gray.len()
    );
    let smoothed;
    let img = if options.blur {
        smoothed = blur(gray, w, h);
        &smoothed
    } else {
        gray
    };
    // Sobel gradient.
    let mut mag = vec![0f32; w * h];
    let mut dir = vec![0u8; w * h];
    for y in 0..h as isize {
        for x in 0..w as isize {
            let p = |dx, dy| at(img, w, h, x + dx, y + dy);
            let gx = (p(1, -1) + 2.0 * p(1, 0) + p(1, 1)) - (p(-1, -1) + 2.0 * p(-1, 0) + p(-1, 1));
            let gy = (p(-1, 1) + 2.0 * p(0, 1) + p(1, 1)) - (p(-1, -1) + 2.0 * p(0, -1) + p(1, -1));
            let i = y as usize * w + x as usize;
            mag[i] = gx.hypot(gy);
            // Gradient direction in four sectors: 0 horizontal, 1 diagonal /, 2 vertical, 3 \.
            let angle = gy.atan2(gx).to_degrees().rem_euclid(180.0);
            dir[i] = (((angle + 22.5) / 45.0) as u8) % 4;
        }
    }
    // Non-maximum suppression across the edge, then the two thresholds.
    let (strong, weak) = (2u8, 1u8);
    let mut class = vec![0u8; w * h];
    for y in 0..h as isize {
        for x in 0..w as isize {
            let i = y as usize * w + x as usize;
            let m = mag[i];
            if m < options.low {
                continue;
            }
            let (dx, dy) = [(1, 0), (1, 1), (0, 1), (-1, 1)][dir[i] as usize];
            if m < at(&mag, w, h, x + dx, y + dy) || m < at(&mag, w, h, x - dx, y - dy) {
                continue;
            }
            class[i] = if m >= options.high { strong } else { weak };
        }
    }
    // Hysteresis: grow strong edges through 8-connected weak ones.
    let mut stack: Vec<usize> = (0..w * h).filter(|&i| class[i] == strong).collect();
    while let Some(i) = stack.pop() {
        let (x, y) = ((i % w) as isize, (i / w) as isize);
        for dy in -1..=1 {
            for dx in -1..=1 {
                let (nx, ny) = (x + dx, y + dy);
                if nx < 0 || ny < 0 || nx >= w as isize || ny >= h as isize {
                    continue;
                }
                let j = ny as usize * w + nx as usize;
                if class[j] == weak {
                    class[j] = strong;
                    stack.push(j);
                }
            }
        }
    }
    class
        .iter()
        .map(|&c| if c == strong { 0 } else { 255 })
        .collect()
}

/// The edge map of every image of `set` as a set of `channels` identical planes (1 or 3), in
/// parallel; the result does not depend on the number of threads.
pub fn edges_of(set: &ImageSet, options: EdgeOptions, channels: usize) -> ImageSet {
    let [c, h, w] = set.shape();
    let maps: Vec<Vec<u8>> = (0..set.len())
        .into_par_iter()
        .map(|i| {
            let edges = edge_map(&luminance(set.pixels(i), c), w, h, options);
            edges.repeat(channels)
        })
        .collect();
    ImageSet::from_chw([channels, h, w], maps.concat())
}

/// Indices of the fixed emoji split: every 10th image (index % 10 == 0) is held out as the
/// test (validation) split, the rest is the training split.
pub fn emoji_split(len: usize, split: Split) -> Vec<usize> {
    (0..len)
        .filter(|i| (i % 10 == 0) == (split == Split::Test))
        .collect()
}

/// `edges2emoji`: input = the emoji's edge map as a 3-channel line drawing, target = the emoji,
/// for the given split of [`emoji_split`]. `emoji` is the whole emoji set (all 3,786).
pub fn edges2emoji(emoji: &ImageSet, split: Split) -> PairSet {
    let part = emoji.subset(&emoji_split(emoji.len(), split));
    let edges = edges_of(&part, EdgeOptions::default(), 3);
    PairSet::new(edges, part)
}

/// `edges2digits`: input = the digit's edge map (1 channel), target = the MNIST digit (the
/// train/test split is the one of the set given).
pub fn edges2digits(digits: &ImageSet) -> PairSet {
    let edges = edges_of(digits, EdgeOptions::default(), 1);
    PairSet::new(edges, digits.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_square_gives_a_closed_outline() {
        // 12x12 white image with a black 6x6 square in the middle.
        let (w, h) = (12, 12);
        let gray: Vec<f32> = (0..w * h)
            .map(|i| {
                if (3..9).contains(&(i % w)) && (3..9).contains(&(i / w)) {
                    0.0
                } else {
                    255.0
                }
            })
            .collect();
        let e = edge_map(&gray, w, h, EdgeOptions::default());
        let on = |x: usize, y: usize| e[y * w + x] == 0;
        // Far from the square: no lines; on every side of the square: a line nearby.
        assert!(!on(0, 0) && !on(11, 11) && !on(6, 6));
        for k in 4..8 {
            assert!(
                (2..=3).any(|x| on(x, k)) && (8..=9).any(|x| on(x, k)),
                "vertical sides at row {k}"
            );
            assert!(
                (2..=3).any(|y| on(k, y)) && (8..=9).any(|y| on(k, y)),
                "horizontal sides at col {k}"
            );
        }
        assert!(e.iter().all(|&v| v == 0 || v == 255));
    }

    #[test]
    fn flat_images_have_no_edges() {
        let e = edge_map(&[200.0; 64], 8, 8, EdgeOptions::default());
        assert!(e.iter().all(|&v| v == 255));
    }

    #[test]
    fn split_holds_out_every_tenth() {
        let test = emoji_split(25, Split::Test);
        assert_eq!(test, vec![0, 10, 20]);
        assert_eq!(emoji_split(25, Split::Train).len(), 22);
    }
}
