//! The shipped digit classifier (`data/classifiers/mnist.safetensors`) on the whole MNIST test
//! set: at least 99% accurate, and its scores of real digits are what `gantry eval` reports as
//! the floor.

use gantry_datasets::{Dataset, Split, data_dir, load_mnist};
use gantry_gan::metrics::classifier::DigitClassifier;
use gantry_gan::metrics::digits::digit_scores;
use gantry_gan::metrics::frechet::Gaussian;
use gantry_tensor::Tensor;
use std::path::Path;

#[test]
fn the_shipped_mnist_classifier_is_at_least_99_percent_accurate() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/classifiers/mnist.safetensors");
    let (model, info) = DigitClassifier::load(&path).expect("the shipped classifier loads");
    assert_eq!(info.data, "mnist");
    let test = load_mnist(&data_dir().join("mnist"), Split::Test).unwrap();
    let n = test.len();
    let pixels: Vec<f32> = (0..n).flat_map(|i| test.get(i).image.to_vec()).collect();
    let images = Tensor::from_vec(&[n, 1, 28, 28], pixels);
    let labels: Vec<usize> = (0..n).map(|i| test.label(i).unwrap()).collect();
    let (features, probs) = model.features_and_probs(&images);
    let right = gantry_gan::metrics::classifier::argmax_rows(&probs)
        .iter()
        .zip(&labels)
        .filter(|(p, l)| p == l)
        .count();
    let accuracy = right as f64 / n as f64;
    println!(
        "MNIST test accuracy {accuracy:.4} (stored: {:.4})",
        info.accuracy
    );
    assert!(accuracy >= 0.99, "accuracy {accuracy}");
    assert!(
        (accuracy - info.accuracy).abs() < 1e-9,
        "the stored accuracy is the measured one"
    );

    // The test set against itself: every class, balanced as MNIST is, confident, FD 0.
    let scores = digit_scores(&probs, &features, Some(&Gaussian::fit(&features)));
    assert_eq!(scores.classes, 10);
    assert!(scores.class_kl < 0.01, "{scores:?}");
    assert!(scores.confident > 0.97, "{scores:?}");
    assert!(scores.fd.unwrap() < 1e-6, "{scores:?}");
}
