//! Aligned image pairs for image-to-image translation, and the pix2pix folder layout:
//! `root/train/*.jpg`, `root/val/…`, `root/test/…`, each image holding A on its left half and B
//! on its right half.

use crate::dataset::{Dataset, Example};
use crate::error::{DataError, Result};
use crate::folder::{FolderOptions, check_size, decode_files, fit, image_files};
use crate::image_set::ImageSet;
use crate::source::Progress;
use std::path::Path;

/// Which side of a pair is the input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Direction {
    /// Translate A (left half) into B (right half).
    #[default]
    AtoB,
    /// Translate B into A.
    BtoA,
}

/// Aligned pairs: example `i` is input image `i` and target image `i`, of the same height and
/// width (channel counts may differ, e.g. a 1-channel edge map to an RGB photo).
///
/// As a [`Dataset`], [`Example::image`] is the input and [`Example::target`] the target.
#[derive(Clone, Debug, PartialEq)]
pub struct PairSet {
    input: ImageSet,
    target: ImageSet,
}

impl PairSet {
    /// Pairs `input[i]` with `target[i]`.
    ///
    /// # Panics
    /// If the two sets differ in length, height or width.
    #[track_caller]
    pub fn new(input: ImageSet, target: ImageSet) -> PairSet {
        let (si, st) = (input.shape(), target.shape());
        assert!(
            input.len() == target.len() && si[1..] == st[1..],
            "PairSet::new: input {} x {si:?} and target {} x {st:?} do not align",
            input.len(),
            target.len()
        );
        PairSet { input, target }
    }

    /// The input images.
    pub fn input(&self) -> &ImageSet {
        &self.input
    }

    /// The target images.
    pub fn target(&self) -> &ImageSet {
        &self.target
    }

    /// The same pairs with input and target exchanged.
    pub fn swapped(self) -> PairSet {
        PairSet {
            input: self.target,
            target: self.input,
        }
    }

    /// The pairs at `indices`.
    ///
    /// # Panics
    /// If an index is out of range.
    #[track_caller]
    pub fn subset(&self, indices: &[usize]) -> PairSet {
        PairSet {
            input: self.input.subset(indices),
            target: self.target.subset(indices),
        }
    }
}

impl Dataset for PairSet {
    fn len(&self) -> usize {
        self.input.len()
    }

    fn get(&self, index: usize) -> Example {
        Example {
            image: self.input.image(index),
            target: Some(self.target.image(index)),
            label: None,
        }
    }

    fn image_shape(&self) -> Vec<usize> {
        self.input.shape().to_vec()
    }

    fn target_shape(&self) -> Option<Vec<usize>> {
        Some(self.target.shape().to_vec())
    }
}

/// Splits one interleaved `2w x h` image into its left and right `w x h` halves.
fn split_halves(hwc: &[u8], width: usize, height: usize, c: usize) -> (Vec<u8>, Vec<u8>) {
    let half = width / 2 * c;
    let row = width * c;
    let mut left = Vec::with_capacity(half * height);
    let mut right = Vec::with_capacity(half * height);
    for r in hwc.chunks_exact(row).take(height) {
        left.extend_from_slice(&r[..half]);
        right.extend_from_slice(&r[half..2 * half]);
    }
    (left, right)
}

/// Loads the pix2pix folder `root/split` (`split` is `"train"`, `"val"` or `"test"`, or any
/// sub-folder name) of side-by-side A|B images.
///
/// Each image must have an even width; its halves become A and B, brought to
/// `options.size` (the size of the first image's half when `None`) or rejected as
/// `options.on_mismatch` says. `direction` picks the input side. `progress` gets
/// `(files decoded, files)`.
pub fn load_pix2pix(
    root: &Path,
    split: &str,
    direction: Direction,
    options: &FolderOptions,
    progress: Progress<'_>,
) -> Result<PairSet> {
    let dir = root.join(split);
    let files = image_files(&dir, options.skip_other_files)?;
    let decoded = decode_files(&files, options.channels, progress)?;
    for img in &decoded {
        if !img.width.is_multiple_of(2) {
            return Err(DataError::OddWidth {
                path: img.path.clone(),
                width: img.width,
            });
        }
    }
    let size = options
        .size
        .unwrap_or((decoded[0].width / 2, decoded[0].height));
    check_size(&dir, size)?;
    let c = options.channels.count();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for img in decoded {
        let (w, h) = (img.width as usize, img.height as usize);
        let (left, right) = split_halves(&img.hwc, w, h, c);
        for (half, out) in [(left, &mut a), (right, &mut b)] {
            let half = crate::folder::Decoded {
                path: img.path.clone(),
                width: img.width / 2,
                height: img.height,
                hwc: half,
            };
            out.extend_from_slice(&fit(half, size, options.on_mismatch, options.channels)?.hwc);
        }
    }
    let shape = [c, size.1 as usize, size.0 as usize];
    let pairs = PairSet::new(ImageSet::from_hwc(shape, &a), ImageSet::from_hwc(shape, &b));
    Ok(match direction {
        Direction::AtoB => pairs,
        Direction::BtoA => pairs.swapped(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_split_row_by_row() {
        // 4x2 grey image: rows [0 1 | 2 3], [4 5 | 6 7].
        let (l, r) = split_halves(&[0, 1, 2, 3, 4, 5, 6, 7], 4, 2, 1);
        assert_eq!(l, vec![0, 1, 4, 5]);
        assert_eq!(r, vec![2, 3, 6, 7]);
    }
}
