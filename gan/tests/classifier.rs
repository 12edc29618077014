//! The shipped classifiers (`data/classifiers/{mnist,fashion-mnist}.safetensors`) on their whole
//! test sets: at least 99% (MNIST) and 90% (Fashion-MNIST) accurate, the accuracy stored in the
//! file is the measured one, and their scores of the test set against training images (what
//! `gantry eval` reports as the floor) are balanced, confident and a small, non-zero FD.

use gantry_datasets::{Split, builtin, data_roots};
use gantry_gan::metrics::classifier::{DigitClassifier, argmax_rows};
use gantry_gan::metrics::digits::digit_scores;
use gantry_gan::metrics::frechet::Gaussian;
use gantry_tensor::Tensor;
use std::path::Path;

/// Loads `data/classifiers/{data}.safetensors`, scores the whole test set of `data`, and
/// checks the accuracy (at least `min`, equal to the stored one) and the real-data floor: the
/// test set scored against as many training images, whose FD must be above 0.1 (two samples,
/// not one set twice) and below `max_fd`.
fn check_shipped(data: &str, min: f64, min_confident: f64, max_fd: f64) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/classifiers")
        .join(format!("{data}.safetensors"));
    let (model, info) = DigitClassifier::load(&path).expect("the shipped classifier loads");
    assert_eq!(info.data, data);
    let (images, labels) = load(data, Split::Test, usize::MAX);
    let n = labels.len();
    let (features, probs) = model.features_and_probs(&images);
    let right = argmax_rows(&probs)
        .iter()
        .zip(&labels)
        .filter(|(p, l)| p == l)
        .count();
    let accuracy = right as f64 / n as f64;
    println!(
        "{data} test accuracy {accuracy:.4} (stored: {:.4})",
        info.accuracy
    );
    assert!(accuracy >= min, "{data}: accuracy {accuracy}");
    assert!(
        (accuracy - info.accuracy).abs() < 1e-9,
        "the stored accuracy is the measured one"
    );

    // The test set against training images, as `gantry eval` scores its floor: every class,
    // balanced as the data is, confident, and an FD that is small but not the 0 of a set
    // compared with itself (two samples of one distribution differ by their sampling).
    let (train, _) = load(data, Split::Train, n);
    let (train_features, _) = model.features_and_probs(&train);
    let scores = digit_scores(&probs, &features, Some(&Gaussian::fit(&train_features)));
    println!("{data} floor: {scores:?}");
    assert_eq!(scores.classes, 10);
    assert!(scores.class_kl < 0.01, "{scores:?}");
    assert!(scores.confident > min_confident, "{scores:?}");
    let fd = scores.fd.unwrap();
    assert!(
        fd > 0.1 && fd < max_fd,
        "{data}: FD of test vs training images {fd}"
    );
}

/// The first `max` images of a split of `data` (`[n, 1, 28, 28]`) and their labels.
fn load(data: &str, split: Split, max: usize) -> (Tensor, Vec<usize>) {
    let set = builtin(data, split).unwrap();
    let n = set.len().min(max);
    let (mut pixels, mut labels) = (Vec::with_capacity(n * 784), Vec::with_capacity(n));
    for i in 0..n {
        let example = set.get(i);
        pixels.extend(example.image.to_vec());
        labels.push(example.label.expect("the data set is labelled"));
    }
    (Tensor::from_vec(&[n, 1, 28, 28], pixels), labels)
}

#[test]
fn the_shipped_mnist_classifier_is_at_least_99_percent_accurate() {
    // Measured floor FD: 2.10.
    check_shipped("mnist", 0.99, 0.97, 4.0);
}

/// Fashion-MNIST is not bundled: it is read from the shared data folder beside the checkout
/// (`../shared/data`, as CI has it) or `$GANTRY_DATA`; without it the test fails and says so.
#[test]
fn the_shipped_fashion_mnist_classifier_is_at_least_90_percent_accurate() {
    let roots = data_roots();
    assert!(
        roots.iter().any(|r| r.join("fashion-mnist").is_dir()),
        "no fashion-mnist/ in the data folders {roots:?}: put the shared data folder at \
         ../shared/data beside the checkout (its SOURCES.md says where each file comes from: \
         Debian's dataset-fashion-mnist package) or set GANTRY_DATA to a folder holding fashion-mnist/"
    );
    // Measured floor FD: 0.67.
    check_shipped("fashion-mnist", 0.90, 0.75, 1.5);
}
