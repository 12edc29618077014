//! `gantry train --model biggan`: the recipe lands in the run, the class-conditional model
//! trains on labelled data (the emoji categories and CIFAR-10), resumes, draws one class
//! with `sample --label` and typical samples with `--truncation`, is scored with label
//! agreement, and the flags and data that do not fit are refused in one line.

mod common;

use common::{fails_in_one_line, metrics_rows, ok, png_size, run_config, s, temp};

/// A tiny BigGAN: base width 8, 16x16 images, batch 6.
const TINY: [&str; 8] = [
    "--ngf",
    "8",
    "--image-size",
    "16",
    "--batch-size",
    "6",
    "--log-every",
    "1",
];

#[test]
fn biggan_trains_on_the_emoji_categories_with_its_recipe_and_samples_one_class() {
    let run = temp("biggan-emoji");
    let mut args = vec!["train", "--model", "biggan", "--steps", "2", "--quiet"];
    args.extend(TINY);
    args.extend(["--attention", "8", "--out", s(&run)]);
    ok(&args);

    let config = run_config(&run);
    assert_eq!(config["run"]["data"], "emoji");
    let model = &config["model"];
    assert_eq!(model["model"], "biggan");
    assert_eq!(
        (model["classes"].as_u64(), model["ch"].as_u64()),
        (Some(9), Some(8))
    );
    assert_eq!(model["attention"], 8);
    let train = &config["train"];
    assert_eq!(train["k"], 2);
    assert_eq!(train["objective"]["loss"], "hinge");
    assert!((train["optim_g"]["lr"].as_f64().unwrap() - 1e-4).abs() < 1e-9);
    assert!((train["optim_d"]["lr"].as_f64().unwrap() - 4e-4).abs() < 1e-9);
    assert_eq!(train["optim_d"]["beta1"], 0.0);
    assert!(
        (train["ema"].as_f64().unwrap() - 0.999).abs() < 1e-6,
        "{train}"
    );
    for row in metrics_rows(&run) {
        for key in ["loss_d", "loss_g"] {
            assert!(row[key].as_f64().unwrap().is_finite(), "{key} in {row}");
        }
    }

    // Resuming continues the run; one class, and truncated noise, are drawn on demand.
    ok(&["train", "--resume", s(&run), "--steps", "3", "--quiet"]);
    assert_eq!(metrics_rows(&run).len(), 3);
    let flags = run.join("flags.png");
    ok(&[
        "sample",
        "--run",
        s(&run),
        "--label",
        "8",
        "--n",
        "4",
        "--out",
        s(&flags),
    ]);
    assert_eq!(png_size(&flags), (2 * 16 + 3 * 2, 2 * 16 + 3 * 2));
    // Deterministic under --seed: the same seed draws the same picture, another seed or
    // another threshold another one.
    let draw = |t: &str, seed: &str, name: &str| {
        let out = run.join(name);
        ok(&[
            "sample",
            "--run",
            s(&run),
            "--truncation",
            t,
            "--label",
            "3",
            "--seed",
            seed,
            "--n",
            "4",
            "--out",
            s(&out),
        ]);
        std::fs::read(out).unwrap()
    };
    let t1 = draw("0.5", "5", "t1.png");
    assert_eq!(
        t1,
        draw("0.5", "5", "t1-again.png"),
        "same seed, other picture"
    );
    assert_ne!(
        t1,
        draw("2", "5", "t2.png"),
        "the threshold changed nothing"
    );
    assert_ne!(
        t1,
        draw("0.5", "6", "t1-seed6.png"),
        "the seed changed nothing"
    );

    let err = fails_in_one_line(&[
        "sample",
        "--run",
        s(&run),
        "--label",
        "9",
        "--out",
        s(&flags),
    ]);
    assert!(
        err.contains("--label 9 is out of range") && err.contains("9 classes"),
        "{err}"
    );
    let err = fails_in_one_line(&[
        "sample",
        "--run",
        s(&run),
        "--truncation",
        "0",
        "--out",
        s(&flags),
    ]);
    assert!(
        err.contains("--truncation 0 must be a positive threshold"),
        "{err}"
    );
    let err = fails_in_one_line(&["export", "--run", s(&run), "--out", s(&run.join("g.onnx"))]);
    assert!(
        err.contains("biggan generators have no ONNX writer"),
        "{err}"
    );
}

/// CIFAR-10 is read from the shared data folder (`../shared/data`, as CI has it).
#[test]
fn biggan_on_cifar10_is_scored_with_label_agreement() {
    let run = temp("biggan-cifar");
    let mut args = vec![
        "train", "--model", "biggan", "--data", "cifar10", "--steps", "2", "--quiet",
    ];
    args.extend(TINY);
    args.extend(["--out", s(&run)]);
    ok(&args);
    assert_eq!(run_config(&run)["model"]["classes"], 10);
    let stdout = ok(&["eval", "--run", s(&run), "--n", "40"]);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["model"], "biggan");
    assert_eq!(v["resized_from"], serde_json::json!([16, 16]));
    let per_class = v["label_agreement"]["per_class"].as_array().unwrap();
    assert_eq!(per_class.len(), 10);
    assert!(v["kid"].as_f64().unwrap().is_finite());

    // The truncation sweep: a row per threshold, the same scores as above for the samples of
    // noise truncated there, and two plots of them in the report.
    let eval40 = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["eval", "--run", s(&run), "--n", "40"];
        args.extend_from_slice(extra);
        serde_json::from_str(&ok(&args)).unwrap()
    };
    let plain = eval40(&[]);
    let v = eval40(&["--truncation", "0.25,1,2"]);
    let rows = v["truncation_sweep"].as_array().unwrap();
    let thresholds: Vec<f64> = rows
        .iter()
        .map(|r| r["truncation"].as_f64().unwrap())
        .collect();
    assert_eq!(thresholds, [0.25, 1.0, 2.0]);
    for row in rows {
        assert_eq!(row["n"], 40, "{row}");
        for key in ["precision", "recall", "label_agreement"] {
            assert!(
                (0.0..=1.0).contains(&row[key].as_f64().unwrap()),
                "{key}: {row}"
            );
        }
        assert!(row["kid"].as_f64().unwrap().is_finite(), "{row}");
    }
    // Truncation changes the samples: the FDs differ, and the untruncated scores are those of
    // the run without a sweep.
    let fd = |r: &serde_json::Value| r["fd"].as_f64().unwrap();
    assert!(fd(&rows[0]) != fd(&rows[2]), "{rows:?}");
    assert_eq!(fd(&v), fd(&plain));
    ok(&["report", "--run", s(&run)]);
    let page = std::fs::read_to_string(run.join("index.html")).unwrap();
    assert!(
        page.contains("FD against truncation")
            && page.contains("Precision and recall against truncation"),
        "the report plots the sweep"
    );
    for (flags, want) in [
        (
            &["--truncation", "0"][..],
            "--truncation 0: each threshold must be positive",
        ),
        (&["--truncation", "1,nan"][..], "--truncation NaN"),
    ] {
        let mut args = vec!["eval", "--run", s(&run)];
        args.extend_from_slice(flags);
        let err = fails_in_one_line(&args);
        assert!(err.contains(want), "{flags:?}: {err}");
    }
}

#[test]
fn what_biggan_cannot_take_is_refused_before_anything_is_written() {
    let flat = temp("biggan-flat");
    std::fs::create_dir_all(&flat).unwrap();
    for i in 0..2 {
        image::RgbImage::new(16, 16)
            .save(flat.join(format!("{i}.png")))
            .unwrap();
    }
    let cases: [(&[&str], &str); 6] = [
        (
            &["--data", s(&flat)],
            "has no class labels; biggan is class-conditional",
        ),
        (&["--pack", "2"], "does not pack"),
        (&["--ndf", "8"], "set it with --ngf"),
        (&["--attention", "64"], "attention at 64x64"),
        (&["--attention", "8", "--ngf", "12"], "multiple of 8"),
        (&["--data", "ring"], "holds 2-D points"),
    ];
    for (extra, want) in cases {
        let out = temp("biggan-refused");
        let mut args = vec!["train", "--model", "biggan", "--steps", "1"];
        args.extend_from_slice(extra);
        args.extend(["--out", s(&out)]);
        let err = fails_in_one_line(&args);
        assert!(err.contains(want), "{extra:?}: {err}");
        assert!(!out.join("config.json").exists(), "{extra:?} wrote a run");
    }
    let err = fails_in_one_line(&[
        "train",
        "--attention",
        "8",
        "--out",
        s(&temp("dcgan-attention")),
    ]);
    assert!(err.contains("--attention is BigGAN's"), "{err}");
}
