//! The shipped classifiers (`data/classifiers/{mnist,fashion-mnist}.safetensors`) on their whole
//! test sets: at least 99% (MNIST) and 90% (Fashion-MNIST) accurate, the accuracy stored in the
//! file is the measured one, and their scores of real images are what `gantry eval` reports as
//! the floor.

use gantry_datasets::{Split, builtin, data_roots};
use gantry_gan::metrics::classifier::{DigitClassifier, argmax_rows};
use gantry_gan::metrics::digits::digit_scores;
use gantry_gan::metrics::frechet::Gaussian;
use gantry_tensor::Tensor;
use std::path::Path;

/// Loads `data/classifiers/{data}.safetensors`, scores the whole test set of `data`, and
/// checks the accuracy (at least `min`, equal to the stored one) and the real-data floor.
fn check_shipped(data: &str, min: f64, min_confident: f64) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/classifiers")
        .join(format!("{data}.safetensors"));
    let (model, info) = DigitClassifier::load(&path).expect("the shipped classifier loads");
    assert_eq!(info.data, data);
    let test = builtin(data, Split::Test).unwrap();
    let n = test.len();
    let (mut pixels, mut labels) = (Vec::with_capacity(n * 784), Vec::with_capacity(n));
    for i in 0..n {
        let example = test.get(i);
        pixels.extend(example.image.to_vec());
        labels.push(example.label.expect("the test set is labelled"));
    }
    let images = Tensor::from_vec(&[n, 1, 28, 28], pixels);
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

    // The test set against itself: every class, balanced as the data is, confident, FD 0.
    let scores = digit_scores(&probs, &features, Some(&Gaussian::fit(&features)));
    assert_eq!(scores.classes, 10);
    assert!(scores.class_kl < 0.01, "{scores:?}");
    assert!(scores.confident > min_confident, "{scores:?}");
    assert!(scores.fd.unwrap() < 1e-6, "{scores:?}");
}

#[test]
fn the_shipped_mnist_classifier_is_at_least_99_percent_accurate() {
    check_shipped("mnist", 0.99, 0.97);
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
    check_shipped("fashion-mnist", 0.90, 0.75);
}
