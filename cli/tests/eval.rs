//! `gantry eval` and `gantry classifier` end to end: tiny runs of each kind scored with the
//! metrics of their data, images scored from a folder and an IDX file, and bad input as one
//! clear line.

mod common;

use common::{fails_in_one_line, ok, s, temp};
use gantry_datasets::{Split, data_dir, load_mnist};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Runs `gantry eval ARGS`, checks stdout is one JSON object equal to the file it wrote.
fn eval(args: &[&str], written: &Path) -> Value {
    let mut all = vec!["eval"];
    all.extend_from_slice(args);
    let stdout = ok(&all);
    let printed: Value = serde_json::from_str(&stdout).expect("stdout is one JSON object");
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(written).expect("eval.json written"))
            .unwrap();
    assert_eq!(printed, file);
    printed
}

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

fn mnist_classifier() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/classifiers/mnist.safetensors");
    assert!(
        p.is_file(),
        "the shipped classifier {} is missing",
        p.display()
    );
    p
}

#[test]
fn a_ring_run_gets_mode_coverage_and_the_real_floor() {
    let run = temp("ring");
    ok(&[
        "train",
        "--model",
        "mlp",
        "--data",
        "ring",
        "--steps",
        "30",
        "--quiet",
        "--out",
        s(&run),
    ]);
    let v = eval(&["--run", s(&run)], &run.join("eval.json"));
    assert_eq!(v["data"], "ring");
    assert_eq!(v["model"], "mlp");
    assert_eq!(v["step"], 30);
    assert_eq!(v["n"], 2500);
    assert_eq!(v["modes_total"], 8);
    assert!(v["modes"].as_u64().unwrap() <= 8);
    let hq = num(&v, "high_quality");
    assert!((0.0..=1.0).contains(&hq));
    assert!(
        v["reverse_kl"].is_null() || num(&v, "reverse_kl") >= 0.0,
        "{v}"
    );
    let counts: u64 = v["mode_counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(counts as f64, (hq * 2500.0).round());
    // Real points: every mode, almost all within 3 std (a 2-D Gaussian: 98.9%), evenly.
    let real = &v["real"];
    assert_eq!(real["modes"], 8);
    assert!(num(real, "high_quality") > 0.97, "{real}");
    assert!(num(real, "reverse_kl") < 0.01, "{real}");
    // Deterministic, and the seed matters.
    let again = eval(&["--run", s(&run)], &run.join("eval.json"));
    assert_eq!(v, again);
    let other = eval(
        &["--run", s(&run), "--seed", "5", "--n", "100"],
        &run.join("eval.json"),
    );
    assert_eq!(other["n"], 100);
    assert_eq!(other["seed"], 5);
}

#[test]
fn a_dcgan_mnist_run_gets_digit_scores_and_the_real_floor() {
    let run = temp("dcgan");
    ok(&[
        "train",
        "--steps",
        "2",
        "--batch-size",
        "8",
        "--quiet",
        "--out",
        s(&run),
    ]);
    let v = eval(&["--run", s(&run), "--n", "300"], &run.join("eval.json"));
    assert_eq!(
        (v["data"].as_str(), v["model"].as_str()),
        (Some("mnist"), Some("dcgan"))
    );
    assert_eq!(v["n"], 300);
    let hist: Vec<u64> = v["class_hist"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect();
    assert_eq!(hist.len(), 10);
    assert_eq!(hist.iter().sum::<u64>(), 300);
    assert_eq!(v["classes"], hist.iter().filter(|&&h| h > 0).count());
    assert!((0.0..=1.0).contains(&num(&v, "confident")));
    assert!((0.0..=10f64.ln() + 1e-9).contains(&num(&v, "class_kl")));
    // Real training digits: all classes, nearly balanced, recognised, close to the test set;
    // two steps of training make noise far from it.
    let real = &v["real"];
    assert_eq!(real["classes"], 10, "{real}");
    assert!(num(real, "class_kl") < 0.05, "{real}");
    assert!(num(real, "confident") > 0.95, "{real}");
    assert!(num(&v, "fd") > 3.0 * num(real, "fd"), "{v}");
    assert!(num(&v["classifier"], "test_accuracy") >= 0.99);
}

#[test]
fn a_cdcgan_run_gets_the_label_agreement_per_class() {
    let run = temp("cdcgan");
    ok(&[
        "train",
        "--model",
        "cdcgan",
        "--steps",
        "2",
        "--batch-size",
        "10",
        "--quiet",
        "--out",
        s(&run),
    ]);
    let v = eval(&["--run", s(&run), "--n", "200"], &run.join("eval.json"));
    assert_eq!(v["model"].as_str(), Some("cdcgan"));
    let hist: u64 = v["class_hist"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(hist, 200);
    // Each class drawn 20 times: every per-class share is a multiple of 1/20, and the overall
    // share is their mean.
    let per_class: Vec<f64> = v["label_agreement"]["per_class"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_f64().unwrap())
        .collect();
    assert_eq!(per_class.len(), 10);
    for p in &per_class {
        assert!((p * 20.0 - (p * 20.0).round()).abs() < 1e-9 && (0.0..=1.0).contains(p));
    }
    let mean = per_class.iter().sum::<f64>() / 10.0;
    assert!(
        (num(&v["label_agreement"], "overall") - mean).abs() < 1e-9,
        "{v}"
    );
}

#[test]
fn a_pix2pix_run_gets_l1_psnr_and_ssim_on_the_validation_split() {
    let run = temp("p2p");
    ok(&[
        "train",
        "--model",
        "pix2pix",
        "--data",
        "edges2digits",
        "--image-size",
        "32",
        "--ngf",
        "4",
        "--ndf",
        "4",
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--quiet",
        "--out",
        s(&run),
    ]);
    let v = eval(&["--run", s(&run), "--n", "6"], &run.join("eval.json"));
    assert_eq!(v["model"], "pix2pix");
    assert_eq!(v["n"], 6);
    let (l1, psnr, ssim) = (num(&v, "l1"), num(&v, "psnr"), num(&v, "ssim"));
    assert!(l1 > 0.0 && l1 <= 2.0, "{v}");
    // PSNR and L1 agree: MSE <= max|d| · mean|d| <= 2 L1, so PSNR >= 10 log10(4 / (2 L1)).
    assert!(
        psnr >= 10.0 * (2.0 / l1).log10() - 1e-9 && psnr < 100.0,
        "{v}"
    );
    assert!((-1.0..1.0).contains(&ssim), "{v}");
    // In the feature space of the targets' classifier (MNIST's, the 32x32 images resized to
    // 28x28): the translations of a model two steps old against the validation targets, far
    // from as many real training targets (the floor).
    let f = &v["features"];
    assert_eq!(f["reference"]["n"], 6, "{f}");
    assert_eq!(f["classifier"]["data"], "mnist", "{f}");
    assert_eq!(
        (f["n"].as_u64(), f["kid_subsets"].as_u64()),
        (Some(6), Some(1)),
        "{f}"
    );
    for key in ["precision", "recall"] {
        assert!((0.0..=1.0).contains(&num(f, key)), "{key}: {f}");
    }
    assert!(num(f, "fd") > 2.0 * num(&f["real"], "fd"), "{f}");
    assert!(num(f, "kid") > num(&f["real"], "kid") + 1.0, "{f}");
}

/// MNIST test digits `0..n` as 28x28 grey PNGs in `root/digits`, and as an IDX file
/// `root/digits.idx`: the folder and the file.
fn write_digits(root: &Path, n: usize) -> (PathBuf, PathBuf) {
    let dir = root.join("digits");
    std::fs::create_dir_all(&dir).unwrap();
    let test = load_mnist(&data_dir().join("mnist"), Split::Test).unwrap();
    let mut idx = vec![0, 0, 8, 3];
    for d in [n as u32, 28, 28] {
        idx.extend_from_slice(&d.to_be_bytes());
    }
    for i in 0..n {
        let px = test.pixels(i).to_vec();
        idx.extend_from_slice(&px);
        image::GrayImage::from_raw(28, 28, px)
            .unwrap()
            .save(dir.join(format!("{i:03}.png")))
            .unwrap();
    }
    let file = root.join("digits.idx");
    std::fs::write(&file, idx).unwrap();
    (dir, file)
}

#[test]
fn images_from_a_folder_or_an_idx_file_get_digit_scores() {
    let root = temp("pngs");
    let (dir, idx) = write_digits(&root, 40);
    std::fs::write(dir.join("notes.txt"), "skipped").unwrap();
    let v = eval(
        &["--images", s(&dir), "--data", "mnist"],
        &dir.join("eval.json"),
    );
    assert_eq!(v["n"], 40);
    assert!(v["classes"].as_u64().unwrap() >= 8, "{v}");
    assert!(num(&v, "confident") > 0.9, "{v}");
    let from_idx = eval(
        &["--images", s(&idx), "--data", "mnist"],
        &idx.with_extension("eval.json"),
    );
    for key in [
        "classes",
        "class_hist",
        "confident",
        "fd",
        "kid",
        "precision",
        "recall",
    ] {
        assert_eq!(
            v[key], from_idx[key],
            "{key}: the PNGs and the IDX file hold the same digits"
        );
    }
    assert_eq!(v.get("resized_from"), None);

    // The same digits at 32x32 are resized to the classifier's 28x28, and say so.
    let big = temp("pngs32");
    std::fs::create_dir_all(&big).unwrap();
    for i in 0..40 {
        let small = image::open(dir.join(format!("{i:03}.png"))).unwrap();
        small
            .resize_exact(32, 32, image::imageops::FilterType::Triangle)
            .save(big.join(format!("{i:03}.png")))
            .unwrap();
    }
    let resized = eval(
        &["--images", s(&big), "--data", "mnist"],
        &big.join("eval.json"),
    );
    assert_eq!(resized["resized_from"], serde_json::json!([32, 32]));
    assert!(num(&resized, "confident") > 0.85, "{resized}");
    assert!(resized["classes"].as_u64().unwrap() >= 8, "{resized}");
}

/// A DCGAN of the emoji, scored by the shipped emoji classifier: nine category bins, KID,
/// precision and recall with their sample counts, against the training split (the emoji test
/// split is too small to be the reference), and the real floor far better than two steps of
/// training.
#[test]
fn an_emoji_run_gets_kid_precision_recall_and_category_scores() {
    let run = temp("dcgan-emoji");
    ok(&[
        "train",
        "--data",
        "emoji",
        "--image-size",
        "32",
        "--ngf",
        "8",
        "--ndf",
        "8",
        "--steps",
        "2",
        "--batch-size",
        "8",
        "--quiet",
        "--out",
        s(&run),
    ]);
    let v = eval(&["--run", s(&run), "--n", "200"], &run.join("eval.json"));
    assert_eq!(v["data"].as_str(), Some("emoji"));
    assert_eq!(v["class_hist"].as_array().unwrap().len(), 9);
    assert_eq!(v["reference"]["split"].as_str(), Some("train"));
    assert_eq!(v["reference"]["n"], 3407);
    assert_eq!(v["resized_from"], serde_json::json!([32, 32]));
    assert_eq!(
        (v["n"].as_u64(), v["pr_n"].as_u64()),
        (Some(200), Some(200))
    );
    assert_eq!(
        (v["pr_k"].as_u64(), v["kid_subset_size"].as_u64()),
        (Some(3), Some(200))
    );
    let real = &v["real"];
    assert_eq!(real["n"], 200, "the floor: as many test images");
    assert!(num(real, "kid") < 0.2 * num(&v, "kid"), "{v}");
    assert!(
        num(real, "precision") > 0.5 && num(real, "recall") > 0.5,
        "{real}"
    );
    assert!(num(&v, "recall") < num(real, "recall"), "{v}");
    assert!(num(&v["classifier"], "test_accuracy") >= 0.8);
}

#[test]
fn bad_input_is_one_clear_line() {
    let missing = temp("missing");
    let err = fails_in_one_line(&["eval", "--run", s(&missing)]);
    assert!(
        err.contains("no such run directory") && err.contains(s(&missing)),
        "{err}"
    );

    // A run whose checkpoint is gone, and one trained on data without metrics.
    let run = temp("nockpt");
    ok(&[
        "train",
        "--model",
        "mlp",
        "--data",
        "ring",
        "--steps",
        "2",
        "--quiet",
        "--out",
        s(&run),
    ]);
    let config = std::fs::read_to_string(run.join("config.json")).unwrap();
    let other = temp("otherdata");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(
        run.join("checkpoint.safetensors"),
        other.join("checkpoint.safetensors"),
    )
    .unwrap();
    std::fs::write(
        other.join("config.json"),
        config.replace("\"ring\"", "\"emoji\""),
    )
    .unwrap();
    let err = fails_in_one_line(&["eval", "--run", s(&other)]);
    assert!(
        err.contains(s(&other)) && err.contains("not images"),
        "{err}"
    );
    std::fs::write(run.join("checkpoint.safetensors"), b"garbage").unwrap();
    let err = fails_in_one_line(&["eval", "--run", s(&run)]);
    assert!(err.contains("checkpoint.safetensors"), "{err}");
    std::fs::remove_file(run.join("checkpoint.safetensors")).unwrap();
    let err = fails_in_one_line(&["eval", "--run", s(&run)]);
    assert!(
        err.contains("no checkpoint") && err.contains("checkpoint.safetensors"),
        "{err}"
    );

    // Classifier files: missing, corrupt, not a classifier.
    let root = temp("bad-images");
    let (dir, _) = write_digits(&root, 3);
    let nofile = dir.join("none.safetensors");
    let err = fails_in_one_line(&[
        "eval",
        "--images",
        s(&dir),
        "--data",
        "mnist",
        "--classifier",
        s(&nofile),
    ]);
    assert!(err.contains("none.safetensors"), "{err}");
    let corrupt = dir.join("corrupt.safetensors");
    std::fs::write(&corrupt, b"\x10\x00\x00\x00\x00\x00\x00\x00{}").unwrap();
    let err = fails_in_one_line(&[
        "eval",
        "--images",
        s(&dir),
        "--data",
        "mnist",
        "--classifier",
        s(&corrupt),
    ]);
    assert!(err.contains("corrupt.safetensors"), "{err}");
    let ckpt = other.join("checkpoint.safetensors");
    let err = fails_in_one_line(&[
        "eval",
        "--images",
        s(&dir),
        "--data",
        "mnist",
        "--classifier",
        s(&ckpt),
    ]);
    assert!(err.contains("not a gantry classifier"), "{err}");
    assert!(mnist_classifier().is_file());

    // Images: missing, the wrong size, corrupt, and data without a classifier.
    let err = fails_in_one_line(&["eval", "--images", s(&dir.join("nope")), "--data", "mnist"]);
    assert!(
        err.contains("nope") && err.contains("no such file"),
        "{err}"
    );
    let big = temp("big");
    std::fs::create_dir_all(&big).unwrap();
    image::GrayImage::new(32, 32)
        .save(big.join("a.png"))
        .unwrap();
    let err = fails_in_one_line(&["eval", "--images", s(&big), "--data", "mnist"]);
    assert!(err.contains("at least 4 images"), "{err}");
    let err = fails_in_one_line(&[
        "eval",
        "--images",
        s(&big),
        "--data",
        "mnist",
        "--truncation",
        "0.5",
    ]);
    assert!(err.contains("--images are given, not drawn"), "{err}");
    std::fs::write(big.join("a.png"), b"not a png").unwrap();
    let err = fails_in_one_line(&["eval", "--images", s(&big), "--data", "mnist"]);
    assert!(err.contains("a.png"), "{err}");
    let err = fails_in_one_line(&["eval", "--images", s(&dir), "--data", "edges2emoji"]);
    assert!(
        err.contains("no classifier for edges2emoji") && err.contains("gantry classifier"),
        "{err}"
    );
    for data in ["ring", "edges2emoji"] {
        let out = dir.join("c.safetensors");
        let err = fails_in_one_line(&["classifier", "--data", data, "--out", s(&out)]);
        assert!(err.contains("labelled images"), "{data}: {err}");
    }
    let err = fails_in_one_line(&["classifier", "--lr-decay", "0", "--out", s(&dir)]);
    assert!(err.contains("--lr-decay 0 must be in (0, 1]"), "{err}");
}
