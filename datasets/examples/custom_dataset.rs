//! A data set type defined in user code, plugged into gantry's batches: images of stripes
//! drawn on the fly, labelled by their direction, batched with shuffling and augmentation.
//!
//! ```text
//! cargo run -p gantry-datasets --example custom_dataset
//! ```
//!
//! Implementing [`Dataset`] (`len`, `get`, `image_shape`, and `num_classes` for labelled
//! data) is all it takes: the [`Batches`] iterator, its seeded shuffling and the [`Augment`]
//! transforms read a data set only through that trait. The test
//! `datasets/tests/examples.rs` runs [`first_batch`].

use gantry_datasets::{Augment, Batch, BatchConfig, Batches, Dataset, Example, Transform};
use gantry_tensor::Tensor;

/// `len` images of `size x size` grey stripes; even indices are horizontal (label 0), odd
/// ones vertical (label 1), and the stripe period grows with the index.
pub struct Stripes {
    /// Number of images.
    pub len: usize,
    /// Side of each image.
    pub size: usize,
}

impl Dataset for Stripes {
    fn len(&self) -> usize {
        self.len
    }

    /// Images must be CHW with values in [-1, 1], as every gantry data set hands them out.
    fn get(&self, index: usize) -> Example {
        assert!(index < self.len, "Stripes: index {index} of {}", self.len);
        let (s, period) = (self.size, 2 + index % 5);
        let vertical = index % 2 == 1;
        let pixels = (0..s * s)
            .map(|i| {
                let along = if vertical { i % s } else { i / s };
                if (along / period) % 2 == 0 { 1.0 } else { -1.0 }
            })
            .collect();
        Example {
            image: Tensor::from_vec(&[1, s, s], pixels),
            target: None,
            label: Some(usize::from(vertical)),
        }
    }

    fn image_shape(&self) -> Vec<usize> {
        vec![1, self.size, self.size]
    }

    fn num_classes(&self) -> Option<usize> {
        Some(2)
    }
}

/// The first batch of 16 stripes of side 20, shuffled with seed 7 and resized to 16x16.
pub fn first_batch() -> Batch {
    let data = Stripes { len: 100, size: 20 };
    let resize = Augment::new(vec![Transform::Resize {
        height: 16,
        width: 16,
    }]);
    let config = BatchConfig::new(16).seed(7).augment(resize);
    Batches::new(&data, config)
        .next()
        .expect("100 examples make a batch")
}

#[allow(dead_code)] // the test includes this file for `first_batch` alone
fn main() {
    let batch = first_batch();
    println!(
        "a batch of {:?} images, labels {:?}",
        batch.images.shape(),
        batch.labels.unwrap_or_default()
    );
}
