//! The objective through the binary: every loss and term trains and logs its parts by name,
//! the knobs (TTUR, EMA, DiffAugment) are stored and resume exactly, nonsense is refused
//! before anything is written, and run directories from before objectives still resume and
//! report.

mod common;

use common::{fails, fails_in_one_line, ok, run_config, s, temp};
use gantry_nn::state_dict::{read_safetensors, write_safetensors};
use gantry_tensor::Tensor;
use std::path::Path;

use common::metrics_rows as rows;

const TINY_MLP: [&str; 10] = [
    "--model",
    "mlp",
    "--data",
    "ring",
    "--steps",
    "3",
    "--log-every",
    "1",
    "--batch-size",
    "16",
];

#[test]
fn every_loss_trains_and_logs_its_parts_by_name() {
    for (name, extra, present, absent) in [
        (
            "non-saturating",
            vec!["--real-label", "0.9"],
            vec![
                "loss_d_real",
                "loss_d_fake",
                "loss_g_gan",
                "d_real",
                "d_fake",
                "d_fake_g",
            ],
            vec!["d_out_real", "w_estimate"],
        ),
        (
            "minimax",
            vec![],
            vec!["loss_d_real", "loss_g_gan", "d_real"],
            vec!["w_estimate"],
        ),
        (
            "hinge",
            vec!["--r1", "0.5", "--r1-every", "2"],
            vec!["loss_d_real", "loss_d_fake", "d_out_real", "d_out_fake_g"],
            vec!["d_real", "w_estimate"],
        ),
        (
            "lsgan",
            vec!["--feature-matching", "1"],
            vec!["loss_d_real", "d_out_fake", "feature_matching"],
            vec!["d_real"],
        ),
        (
            "wasserstein",
            vec![
                "--gp", "10", "--drift", "0.001", "--lr-g", "1e-4", "--lr-d", "4e-4",
            ],
            vec!["loss_d_real", "gp", "drift", "w_estimate", "d_out_real"],
            vec!["d_real", "r1"],
        ),
    ] {
        let run = temp(&format!("loss-{name}"));
        let mut args = vec!["train", "--loss", name, "--quiet", "--out", s(&run)];
        args.extend(TINY_MLP);
        args.extend(&extra);
        ok(&args);
        let rows = rows(&run);
        assert_eq!(rows.len(), 3, "{name}");
        for key in present {
            assert!(rows[2][key].is_number(), "{name}: no {key} in {}", rows[2]);
        }
        for key in absent {
            assert!(rows[2].get(key).is_none(), "{name}: {key} in {}", rows[2]);
        }
        let config = run_config(&run);
        assert_eq!(config["train"]["objective"]["loss"], name);
        if name == "hinge" {
            // Lazy R1 runs on even steps only, weighted by 2.
            assert!(rows[0].get("r1").is_none() && rows[1]["r1"].is_number());
            assert_eq!(config["train"]["objective"]["terms"][0]["every"], 2);
        }
        if name == "wasserstein" {
            assert_eq!(
                config["train"]["optim_g"]["lr"].as_f64().unwrap() as f32,
                1e-4
            );
            assert_eq!(
                config["train"]["optim_d"]["lr"].as_f64().unwrap() as f32,
                4e-4
            );
        }
        // The report plots what was logged, each term in a plot of its own.
        ok(&["report", "--run", s(&run)]);
        let html = std::fs::read_to_string(run.join("index.html")).unwrap();
        assert!(
            html.contains("loss_d_real") && html.contains(name),
            "{name}"
        );
        assert!(!html.contains("no data"), "{name}: an empty plot");
    }
}

#[test]
fn ema_and_diffaug_train_sample_and_resume_exactly() {
    let common = [
        "--quiet",
        "--log-every",
        "1",
        "--checkpoint-every",
        "0",
        "--batch-size",
        "8",
        "--threads",
        "2",
    ];
    let new_only = [
        "--model",
        "mlp",
        "--data",
        "mnist",
        "--image-size",
        "8",
        "--loss",
        "wasserstein",
        "--gp",
        "10",
        "--r1",
        "1",
        "--r1-every",
        "2",
        "--ema",
        "0.99",
        "--diffaug",
        "color,translation,cutout",
        "--lr-g",
        "1e-4",
        "--lr-d",
        "3e-4",
        "--beta1",
        "0",
        "--beta2",
        "0.9",
        "--k",
        "2",
    ];
    let straight = temp("knobs-straight");
    let mut args = vec!["train", "--steps", "6", "--out", s(&straight)];
    args.extend(new_only);
    args.extend(common);
    ok(&args);
    let split = temp("knobs-split");
    let mut args = vec!["train", "--steps", "3", "--out", s(&split)];
    args.extend(new_only);
    args.extend(common);
    ok(&args);
    let mut args = vec!["train", "--steps", "6", "--resume", s(&split)];
    args.extend(common);
    ok(&args);

    let tensors = |run: &Path| common::tensors(&run.join("checkpoint.safetensors"));
    let (a, b) = (tensors(&straight), tensors(&split));
    assert!(
        a.iter().any(|(k, _)| k.starts_with("ema.")),
        "no averaged weights saved"
    );
    assert_eq!(a.len(), b.len());
    for ((ka, va), (kb, vb)) in a.iter().zip(&b) {
        assert_eq!(ka, kb);
        assert!(
            va == vb,
            "{ka} differs between 6 straight steps and 3 + resume + 3"
        );
    }
    let strip = |rows: Vec<serde_json::Value>| -> Vec<serde_json::Value> {
        rows.into_iter()
            .map(|mut r| {
                r.as_object_mut().unwrap().remove("seconds");
                r
            })
            .collect()
    };
    assert_eq!(strip(rows(&straight)), strip(rows(&split)));
    let config = run_config(&straight);
    assert_eq!(config["train"]["ema"].as_f64().unwrap() as f32, 0.99);
    assert_eq!(
        config["train"]["diffaug"],
        serde_json::json!(["color", "translation", "cutout"])
    );
    assert_eq!(
        config["train"]["optim_g"]["beta2"].as_f64().unwrap() as f32,
        0.9
    );
    // Sampling uses the average: `gantry sample` runs from the checkpoint.
    let out = straight.join("grid.png");
    ok(&[
        "sample",
        "--run",
        s(&straight),
        "--n",
        "4",
        "--out",
        s(&out),
    ]);
    assert!(out.exists());
    // The objective is fixed when a run starts.
    let err = fails_in_one_line(&[
        "train",
        "--steps",
        "8",
        "--resume",
        s(&split),
        "--ema",
        "0.9",
    ]);
    assert!(err.contains("--ema is fixed when a run starts"), "{err}");
}

#[test]
fn nonsense_knobs_are_one_line_before_anything_is_written() {
    let run = temp("nonsense");
    for (flags, want) in [
        (vec!["--ema", "1.5"], "--ema 1.5 must be a decay in (0, 1)"),
        (
            vec!["--diffaug", "color,flip"],
            "unknown augmentation \"flip\"",
        ),
        (
            vec!["--lr", "0"],
            "--lr 0 must be a finite learning rate > 0",
        ),
        (
            vec!["--lr-g=-1"],
            "--lr-g -1 must be a finite learning rate > 0",
        ),
        (
            vec!["--lr-d", "NaN"],
            "--lr-d NaN must be a finite learning rate > 0",
        ),
        (
            vec!["--lr-d", "inf"],
            "--lr-d inf must be a finite learning rate > 0",
        ),
        (vec!["--beta2", "1"], "--beta2 1 must be in [0, 1)"),
        (vec!["--gp=-2"], "--gp -2 must be a finite weight >= 0"),
        (vec!["--r1-every", "0", "--r1", "1"], "--r1-every 0"),
        (vec!["--r1-every", "4"], "--r1-every needs --r1"),
        // DCGAN's discriminator has batch norm, which has no second derivative.
        (
            vec![
                "--gp",
                "10",
                "--image-size",
                "16",
                "--ngf",
                "4",
                "--ndf",
                "4",
            ],
            "batch_norm",
        ),
        (
            vec!["--loss", "hinge", "--real-label", "0.9"],
            "hinge loss has no target",
        ),
        (
            vec!["--model", "mlp", "--data", "ring", "--diffaug", "color"],
            "not images",
        ),
        (
            vec![
                "--model",
                "pix2pix",
                "--ngf",
                "4",
                "--ndf",
                "4",
                "--diffaug",
                "cutout",
            ],
            "pix2pix",
        ),
    ] {
        let mut args = vec!["train", "--quiet", "--out", s(&run)];
        args.extend(&flags);
        let err = fails_in_one_line(&args);
        assert!(err.contains(want), "{flags:?}: {err}");
        assert!(!run.exists(), "{flags:?}: the run directory was created");
    }
    let err = fails(&["train", "--loss", "relativistic", "--out", s(&run)]);
    assert!(
        err.contains("relativistic") && err.contains("wasserstein"),
        "{err}"
    );
}

/// Rewrites a run directory as gantry wrote it before objectives: `gen_loss`, `real_label`
/// and `mode_seeking` in `config.json` and in the checkpoint, fixed metric fields.
fn make_old(run: &Path) {
    let old_train = serde_json::json!({
        "k": 1, "gen_loss": "minimax", "real_label": 1.0,
        "optim_g": {"kind": "adam", "lr": 0.0002, "beta1": 0.5, "beta2": 0.999},
        "optim_d": {"kind": "adam", "lr": 0.0002, "beta1": 0.5, "beta2": 0.999},
        "seed": 0, "mode_seeking": 0.0
    });
    let mut config = run_config(run);
    config["train"] = old_train.clone();
    std::fs::write(run.join("config.json"), config.to_string()).unwrap();
    let path = run.join("checkpoint.safetensors");
    let file = read_safetensors(&path).unwrap();
    let mut meta = file.metadata.clone();
    meta.insert("train".into(), old_train.to_string());
    let tensors: Vec<(String, Tensor)> = file.tensors.into_iter().collect();
    write_safetensors(&path, &tensors, &meta).unwrap();
    std::fs::write(
        run.join("metrics.jsonl"),
        "{\"step\":1,\"loss_d\":1.4,\"loss_g\":-0.7,\"d_real\":0.5,\"d_fake\":0.49,\"d_fake_g\":0.5,\"seconds\":0.1}\n\
         {\"step\":2,\"loss_d\":1.3,\"loss_g\":-0.6,\"d_real\":0.55,\"d_fake\":0.45,\"d_fake_g\":0.46,\"seconds\":0.2}\n",
    )
    .unwrap();
}

#[test]
fn runs_from_before_objectives_resume_and_report() {
    let run = temp("old-run");
    let mut args = vec!["train", "--quiet", "--out", s(&run)];
    args.extend(TINY_MLP.iter().map(|a| if *a == "3" { "2" } else { a }));
    ok(&args);
    make_old(&run);
    ok(&["report", "--run", s(&run)]);
    let html = std::fs::read_to_string(run.join("index.html")).unwrap();
    assert!(
        html.contains("minimax") && html.contains("D(x), real"),
        "old summary and plots"
    );
    ok(&[
        "train",
        "--quiet",
        "--steps",
        "4",
        "--log-every",
        "1",
        "--resume",
        s(&run),
    ]);
    let rows = rows(&run);
    assert_eq!(rows.len(), 4);
    // The resumed steps log the minimax loss under the new names.
    assert!(rows[3]["loss_g_gan"].as_f64().unwrap() < 0.0, "{}", rows[3]);
    ok(&["report", "--run", s(&run)]);
}

/// The default run (the 28x28 DCGAN on MNIST) trains with its own recipe: batch 32, both
/// learning rates 4e-4, an EMA of G; `--ema 0` turns the average off, and a DCGAN of other
/// images keeps the paper's recipe.
#[test]
fn the_default_digits_run_has_its_recipe_and_ema_0_turns_the_average_off() {
    let (plain, off, colour) = (
        temp("recipe-28"),
        temp("recipe-28-noema"),
        temp("recipe-64"),
    );
    ok(&["train", "--steps", "1", "--quiet", "--out", s(&plain)]);
    let config = run_config(&plain);
    let train = &config["train"];
    assert_eq!(config["run"]["batch_size"], 32, "{config}");
    assert_eq!(train["optim_g"]["lr"].as_f64().unwrap() as f32, 4e-4);
    assert_eq!(train["optim_d"]["lr"].as_f64().unwrap() as f32, 4e-4);
    assert_eq!(train["ema"].as_f64().unwrap() as f32, 0.999);
    ok(&[
        "train",
        "--steps",
        "1",
        "--ema",
        "0",
        "--quiet",
        "--out",
        s(&off),
    ]);
    assert!(run_config(&off)["train"]["ema"].is_null());
    let common = [
        "train",
        "--data",
        "emoji",
        "--image-size",
        "16",
        "--ngf",
        "4",
        "--ndf",
        "4",
    ];
    ok(&[
        &common[..],
        &[
            "--steps",
            "1",
            "--batch-size",
            "4",
            "--quiet",
            "--out",
            s(&colour),
        ],
    ]
    .concat());
    let train = &run_config(&colour)["train"];
    assert_eq!(train["optim_g"]["lr"].as_f64().unwrap() as f32, 2e-4);
    assert!(train["ema"].is_null());
}
