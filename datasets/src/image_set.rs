//! [`ImageSet`]: a whole image data set decoded once into one buffer of bytes.

use crate::dataset::{Dataset, Example, check_index};
use crate::error::{DataError, Result};
use gantry_tensor::Tensor;
use std::path::Path;

/// `u8` to `f32` in [-1, 1]: `(x - 127.5) / 127.5`, so 0 maps to -1 and 255 to 1 exactly.
const TO_UNIT: [f32; 256] = {
    let mut lut = [0f32; 256];
    let mut i = 0;
    while i < 256 {
        lut[i] = (i as f32 - 127.5) / 127.5;
        i += 1;
    }
    lut
};

/// Converts bytes to `f32` in [-1, 1].
pub fn bytes_to_unit(bytes: &[u8]) -> Vec<f32> {
    bytes.iter().map(|&b| TO_UNIT[b as usize]).collect()
}

/// Converts `f32` in [-1, 1] back to bytes (values outside are clamped; rounds to nearest).
pub fn unit_to_bytes(values: &[f32]) -> Vec<u8> {
    values
        .iter()
        .map(|&v| ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8)
        .collect()
}

/// Images of one size held as bytes, planar (CHW) and contiguous, with optional class labels.
///
/// Loading decodes a whole file or folder into one `ImageSet`; [`Dataset::get`] converts one
/// image to a CHW `f32` tensor in [-1, 1] when it is asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageSet {
    pixels: Vec<u8>,
    len: usize,
    shape: [usize; 3],
    labels: Option<Vec<usize>>,
    class_names: Vec<String>,
    classes: usize,
}

impl ImageSet {
    /// A set of `pixels.len() / (c*h*w)` images stored planar (CHW), one after another.
    ///
    /// # Panics
    /// If a dimension of `shape` is zero or `pixels.len()` is not a multiple of `c*h*w`.
    #[track_caller]
    pub fn from_chw(shape: [usize; 3], pixels: Vec<u8>) -> ImageSet {
        let per: usize = shape.iter().product();
        assert!(
            per > 0,
            "ImageSet::from_chw: shape {shape:?} has a zero dimension"
        );
        assert!(
            pixels.len().is_multiple_of(per),
            "ImageSet::from_chw: {} bytes is not a whole number of {shape:?} images",
            pixels.len()
        );
        ImageSet {
            len: pixels.len() / per,
            pixels,
            shape,
            labels: None,
            class_names: Vec::new(),
            classes: 0,
        }
    }

    /// A set from interleaved (HWC) bytes, as image files and the emoji IDX store them.
    ///
    /// # Panics
    /// As [`ImageSet::from_chw`], with `shape` given as `[c, h, w]`.
    #[track_caller]
    pub fn from_hwc(shape: [usize; 3], hwc: &[u8]) -> ImageSet {
        let [c, h, w] = shape;
        let per = c * h * w;
        assert!(
            per > 0,
            "ImageSet::from_hwc: shape {shape:?} has a zero dimension"
        );
        assert!(
            hwc.len().is_multiple_of(per),
            "ImageSet::from_hwc: {} bytes is not a whole number of {shape:?} images",
            hwc.len()
        );
        let mut pixels = vec![0u8; hwc.len()];
        for (src, dst) in hwc.chunks_exact(per).zip(pixels.chunks_exact_mut(per)) {
            hwc_to_chw(src, dst, c);
        }
        ImageSet::from_chw(shape, pixels)
    }

    /// Attaches labels, checking each is below `classes`; `path` names the source in errors.
    ///
    /// `class_names` may be empty; when it is not it must hold `classes` names.
    pub fn with_labels(
        mut self,
        labels: Vec<usize>,
        classes: usize,
        class_names: Vec<String>,
        path: &Path,
    ) -> Result<ImageSet> {
        if labels.len() != self.len {
            return Err(DataError::format(
                path,
                format!("{} labels for {} images", labels.len(), self.len),
            ));
        }
        if let Some((index, &label)) = labels.iter().enumerate().find(|(_, l)| **l >= classes) {
            return Err(DataError::LabelOutOfRange {
                path: path.to_path_buf(),
                index,
                label,
                classes,
            });
        }
        debug_assert!(class_names.is_empty() || class_names.len() == classes);
        self.labels = Some(labels);
        self.classes = classes;
        self.class_names = class_names;
        Ok(self)
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `[channels, height, width]` of every image.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// The bytes of image `index`, planar CHW.
    ///
    /// # Panics
    /// If `index >= self.len()`.
    #[track_caller]
    pub fn pixels(&self, index: usize) -> &[u8] {
        check_index("ImageSet::pixels", index, self.len);
        let per: usize = self.shape.iter().product();
        &self.pixels[index * per..(index + 1) * per]
    }

    /// All bytes, image after image, each planar CHW.
    pub fn as_bytes(&self) -> &[u8] {
        &self.pixels
    }

    /// The label of image `index`, if the set has labels.
    pub fn label(&self, index: usize) -> Option<usize> {
        self.labels.as_ref().and_then(|l| l.get(index).copied())
    }

    /// All labels, if the set has labels.
    pub fn labels(&self) -> Option<&[usize]> {
        self.labels.as_deref()
    }

    /// Class names (folder names for an image folder); empty when classes are unnamed.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// Number of images of each class (empty when there are no labels).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes];
        for &l in self.labels.iter().flatten() {
            counts[l] += 1;
        }
        counts
    }

    /// The images at `indices` (in that order), with their labels.
    ///
    /// # Panics
    /// If an index is out of range.
    #[track_caller]
    pub fn subset(&self, indices: &[usize]) -> ImageSet {
        let mut pixels = Vec::with_capacity(indices.len() * self.shape.iter().product::<usize>());
        for &i in indices {
            pixels.extend_from_slice(self.pixels(i));
        }
        ImageSet {
            pixels,
            len: indices.len(),
            shape: self.shape,
            labels: self
                .labels
                .as_ref()
                .map(|l| indices.iter().map(|&i| l[i]).collect()),
            class_names: self.class_names.clone(),
            classes: self.classes,
        }
    }

    /// Image `index` as a CHW tensor in [-1, 1].
    ///
    /// # Panics
    /// If `index >= self.len()`.
    #[track_caller]
    pub fn image(&self, index: usize) -> Tensor {
        Tensor::from_vec(&self.shape, bytes_to_unit(self.pixels(index)))
    }

    /// Image `index` as interleaved HWC bytes (as the `image` crate wants them).
    pub fn hwc(&self, index: usize) -> Vec<u8> {
        let [c, h, w] = self.shape;
        let chw = self.pixels(index);
        let mut out = vec![0u8; c * h * w];
        for ch in 0..c {
            for (p, &v) in chw[ch * h * w..(ch + 1) * h * w].iter().enumerate() {
                out[p * c + ch] = v;
            }
        }
        out
    }
}

/// Deinterleaves one HWC image into planar CHW.
pub(crate) fn hwc_to_chw(src: &[u8], dst: &mut [u8], c: usize) {
    let plane = src.len() / c;
    for (p, px) in src.chunks_exact(c).enumerate() {
        for (ch, &v) in px.iter().enumerate() {
            dst[ch * plane + p] = v;
        }
    }
}

impl Dataset for ImageSet {
    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, index: usize) -> Example {
        Example {
            image: self.image(index),
            target: None,
            label: self.label(index),
        }
    }

    fn image_shape(&self) -> Vec<usize> {
        self.shape.to_vec()
    }

    fn num_classes(&self) -> Option<usize> {
        self.labels.as_ref().map(|_| self.classes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_scale_round_trips_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let unit = bytes_to_unit(&all);
        assert_eq!(unit[0], -1.0);
        assert_eq!(unit[255], 1.0);
        assert_eq!(unit_to_bytes(&unit), all);
    }

    #[test]
    fn hwc_and_chw_agree() {
        // 2x2 RGB image: pixel p has channels (p, 10+p, 20+p).
        let hwc = [0, 10, 20, 1, 11, 21, 2, 12, 22, 3, 13, 23];
        let set = ImageSet::from_hwc([3, 2, 2], &hwc);
        assert_eq!(set.pixels(0), &[0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23]);
        assert_eq!(set.hwc(0), hwc);
    }

    #[test]
    fn labels_are_checked() {
        let set = ImageSet::from_chw([1, 1, 1], vec![0, 1, 2]);
        let err = set
            .clone()
            .with_labels(vec![0, 3, 1], 3, vec![], Path::new("x"))
            .unwrap_err();
        assert!(matches!(
            err,
            DataError::LabelOutOfRange {
                index: 1,
                label: 3,
                ..
            }
        ));
        let ok = set
            .with_labels(vec![0, 2, 2], 3, vec![], Path::new("x"))
            .unwrap();
        assert_eq!(ok.class_counts(), vec![1, 0, 2]);
        assert_eq!(ok.subset(&[2, 0]).labels(), Some(&[2, 0][..]));
    }
}
