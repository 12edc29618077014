//! The [`Dataset`] trait and the [`Example`] it hands out.

use gantry_tensor::Tensor;
use std::sync::Arc;

/// One example of a data set.
///
/// For an image data set `image` is CHW with values in [-1, 1]; for a paired (image-to-image)
/// data set `image` is the input side and `target` the output side, both CHW in [-1, 1]; for a
/// 2-D point set `image` is a tensor of shape `[2]` (the point, not scaled).
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    /// The image (CHW, [-1, 1]), the input side of a pair, or a point.
    pub image: Tensor,
    /// The output side of a pair (CHW, [-1, 1]); `None` for unpaired data.
    pub target: Option<Tensor>,
    /// The class label, where the data set has labels.
    pub label: Option<usize>,
}

/// A finite, indexable collection of examples, held in memory.
///
/// Implementations keep their data decoded once (as bytes) and convert an example to `f32` in
/// [`get`](Dataset::get). The [`Batches`](crate::Batches) iterator reads a data set only through
/// this trait.
///
/// ```
/// use gantry_datasets::{Dataset, Mixture};
/// let points = Mixture::ring8().dataset(100, 7);
/// assert_eq!(points.len(), 100);
/// assert_eq!(points.get(3).image.shape(), &[2]);
/// assert!(points.get(3).label.unwrap() < 8);
/// ```
pub trait Dataset: Send + Sync {
    /// Number of examples.
    fn len(&self) -> usize;

    /// Whether there are no examples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The example at `index`.
    ///
    /// # Panics
    /// If `index >= self.len()`.
    fn get(&self, index: usize) -> Example;

    /// Shape of [`Example::image`] (`[C, H, W]` for images, `[2]` for points).
    fn image_shape(&self) -> Vec<usize>;

    /// Shape of [`Example::target`] for a paired data set, `None` otherwise.
    fn target_shape(&self) -> Option<Vec<usize>> {
        None
    }

    /// Number of classes, when examples carry labels.
    fn num_classes(&self) -> Option<usize> {
        None
    }
}

macro_rules! forward_dataset {
    ($($wrapper:ty),*) => {$(
        impl<D: Dataset + ?Sized> Dataset for $wrapper {
            fn len(&self) -> usize {
                (**self).len()
            }
            fn get(&self, index: usize) -> Example {
                (**self).get(index)
            }
            fn image_shape(&self) -> Vec<usize> {
                (**self).image_shape()
            }
            fn target_shape(&self) -> Option<Vec<usize>> {
                (**self).target_shape()
            }
            fn num_classes(&self) -> Option<usize> {
                (**self).num_classes()
            }
        }
    )*};
}

forward_dataset!(&D, Box<D>, Arc<D>);

/// Panics with a clear message when `index` is out of bounds.
#[track_caller]
pub(crate) fn check_index(what: &str, index: usize, len: usize) {
    assert!(
        index < len,
        "{what}: index {index} out of range for a data set of {len}"
    );
}
