//! The crate's examples, run: `examples/custom_dataset.rs` is compiled into this test, so
//! that what a user copies keeps working.

#[path = "../examples/custom_dataset.rs"]
mod custom_dataset;

use gantry_datasets::Dataset;

#[test]
fn a_user_defined_dataset_batches_with_labels_and_augmentation() {
    let batch = custom_dataset::first_batch();
    assert_eq!(batch.images.shape(), &[16, 1, 16, 16]);
    let labels = batch.labels.expect("the stripes are labelled");
    assert_eq!(labels.len(), 16);
    // The labels follow the shuffled indices: vertical stripes are the odd ones.
    for (i, l) in batch.indices.iter().zip(&labels) {
        assert_eq!(*l, i % 2, "example {i}");
    }
    assert!(labels.contains(&0) && labels.contains(&1), "{labels:?}");
    assert!(
        batch
            .images
            .to_vec()
            .iter()
            .all(|v| (-1.0..=1.0).contains(v))
    );
    let data = custom_dataset::Stripes { len: 4, size: 5 };
    assert_eq!(data.num_classes(), Some(2));
    let vertical = data.get(1).image.to_vec();
    // Index 1: vertical stripes of period 3, so a row reads 3 light pixels then dark ones.
    assert_eq!(vertical[..5], [1.0, 1.0, 1.0, -1.0, -1.0]);
}
