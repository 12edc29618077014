//! Sizes and settings from untrusted places (flags, a checkpoint's metadata, an edited
//! `config.json`) are one-line errors before anything large is built or trained, never an
//! abort, a panic or a hang; settings a resumed run cannot take are refused, never ignored.

mod common;

use common::{Scratch, fails_in_one_line, ok, run_config, s, temp};
use gantry_nn::state_dict::{read_safetensors, write_safetensors};
use gantry_tensor::Tensor;
use std::path::Path;
use std::process::{Command, Stdio};

/// A 2-step MLP run on the ring.
fn ring_run(name: &str) -> Scratch {
    let run = temp(name);
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
    run
}

/// A 2-step DCGAN run on MNIST at 16x16, narrow.
fn dcgan_run(name: &str) -> Scratch {
    let run = temp(name);
    ok(&[
        "train",
        "--model",
        "dcgan",
        "--data",
        "mnist",
        "--image-size",
        "16",
        "--ngf",
        "4",
        "--ndf",
        "4",
        "--batch-size",
        "8",
        "--steps",
        "2",
        "--quiet",
        "--out",
        s(&run),
    ]);
    run
}

/// A copy of `run` whose checkpoint went through `edit` (tensors by name, metadata).
fn edited_checkpoint(
    run: &Path,
    name: &str,
    edit: impl FnOnce(&mut Vec<(String, Tensor)>, &mut std::collections::BTreeMap<String, String>),
) -> Scratch {
    let copy = temp(name);
    std::fs::create_dir_all(&copy).unwrap();
    for f in ["config.json", "metrics.jsonl"] {
        std::fs::copy(run.join(f), copy.join(f)).unwrap();
    }
    let file = read_safetensors(&run.join("checkpoint.safetensors")).unwrap();
    let mut tensors: Vec<(String, Tensor)> = file.tensors.into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let mut meta = file.metadata;
    edit(&mut tensors, &mut meta);
    write_safetensors(&copy.join("checkpoint.safetensors"), &tensors, &meta).unwrap();
    copy
}

/// A copy of `run` with `config.json` changed by `edit`.
fn edited_config(run: &Path, name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Scratch {
    let copy = temp(name);
    std::fs::create_dir_all(&copy).unwrap();
    for f in ["checkpoint.safetensors", "metrics.jsonl"] {
        std::fs::copy(run.join(f), copy.join(f)).unwrap();
    }
    let mut config = run_config(run);
    edit(&mut config);
    std::fs::write(copy.join("config.json"), config.to_string()).unwrap();
    copy
}

/// `text` with the JSON in metadata entry `key` changed by `edit`.
fn edit_json(
    meta: &mut std::collections::BTreeMap<String, String>,
    key: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) {
    let mut v: serde_json::Value = serde_json::from_str(&meta[key]).unwrap();
    edit(&mut v);
    meta.insert(key.to_string(), v.to_string());
}

#[test]
fn absurd_sizes_from_flags_are_refused_before_anything_is_built() {
    let out = temp("flags");
    let cases: [(&[&str], &str); 9] = [
        (
            &[
                "--model",
                "mlp",
                "--data",
                "mnist",
                "--image-size",
                "100000",
            ],
            "--image-size 100000 is larger than the limit",
        ),
        (
            &["--data", "emoji", "--image-size", "64", "--ngf", "1000000"],
            "ngf 1000000 is larger than the limit 1024",
        ),
        (
            &[
                "--data",
                "emoji",
                "--image-size",
                "64",
                "--ndf",
                "4611686018427387904",
            ],
            "ndf 4611686018427387904 is larger than the limit",
        ),
        (&["--model", "mlp", "--k", "0"], "--k 0 must be in 1..=100"),
        (&["--model", "mlp", "--k", "1000000000"], "--k 1000000000"),
        (
            &["--model", "mlp", "--lr=-1"],
            "--lr -1 must be a finite learning rate > 0",
        ),
        (&["--model", "mlp", "--lr", "0"], "--lr 0 must be"),
        (&["--model", "mlp", "--lr", "NaN"], "--lr NaN must be"),
        (
            &["--model", "mlp", "--batch-size", "100000000"],
            "--batch-size 100000000 must be in",
        ),
    ];
    for (flags, want) in cases {
        let mut args = vec!["train", "--quiet", "--out", s(&out)];
        args.extend(flags);
        let err = fails_in_one_line(&args);
        assert!(err.contains(want), "{flags:?}: {err}");
        assert!(!out.exists(), "{flags:?} created {}", out.display());
    }
    let err = fails_in_one_line(&["train", "--threads", "100000", "--out", s(&out)]);
    assert!(err.contains("--threads 100000 must be in"), "{err}");
    let run = ring_run("sample-n");
    let png = run.join("x.png");
    let err = fails_in_one_line(&[
        "sample",
        "--run",
        s(&run),
        "--n",
        "4000000000",
        "--out",
        s(&png),
    ]);
    assert!(err.contains("--n 4000000000 must be in"), "{err}");
    let err = fails_in_one_line(&["eval", "--run", s(&run), "--threads", "100000"]);
    assert!(err.contains("--threads 100000"), "{err}");
}

#[test]
fn a_checkpoint_claiming_absurd_sizes_or_state_is_refused_in_one_line() {
    let ring = ring_run("ckpt-ring");
    let dcgan = dcgan_run("ckpt-dcgan");
    let resume = |run: &Path| -> String {
        fails_in_one_line(&["train", "--resume", s(run), "--steps", "4", "--quiet"])
    };
    let sample = |run: &Path| -> String {
        fails_in_one_line(&["sample", "--run", s(run), "--out", s(&run.join("x.png"))])
    };

    let run = edited_checkpoint(&ring, "ckpt-hidden", |_, meta| {
        edit_json(meta, "model", |m| {
            m["g_hidden"] = serde_json::json!([1_000_000_000])
        });
    });
    for err in [resume(&run), sample(&run)] {
        assert!(
            err.contains("hidden width 1000000000 is larger than the limit"),
            "{err}"
        );
    }
    let run = edited_checkpoint(&dcgan, "ckpt-ngf", |_, meta| {
        edit_json(meta, "model", |m| {
            m["ngf"] = serde_json::json!(1_000_000_000)
        });
    });
    assert!(resume(&run).contains("ngf 1000000000 is larger than the limit"));
    let run = edited_checkpoint(&ring, "ckpt-k", |_, meta| {
        edit_json(meta, "train", |t| t["k"] = serde_json::json!(1_000_000_000));
    });
    assert!(resume(&run).contains("k 1000000000 is not in 1..=100"));
    let run = edited_checkpoint(&ring, "ckpt-consumed", |_, meta| {
        edit_json(meta, "extra", |e| {
            e["batches_consumed"] = serde_json::json!(1u64 << 62);
        });
    });
    let err = resume(&run);
    assert!(
        err.contains("batches_consumed 4611686018427387904"),
        "{err}"
    );
    let run = edited_checkpoint(&ring, "ckpt-adam-step", |tensors, _| {
        for (name, t) in tensors.iter_mut() {
            if name == "opt_g.step" {
                *t = Tensor::scalar(f32::NAN);
            }
        }
    });
    let err = resume(&run);
    assert!(err.contains("opt_g.step holds a non-finite value"), "{err}");
    let run = edited_checkpoint(&ring, "ckpt-noise", |tensors, _| {
        for (name, t) in tensors.iter_mut() {
            if name == "fixed.sample_noise" {
                *t = Tensor::zeros(&[4, 3]);
            }
        }
    });
    let err = resume(&run);
    assert!(err.contains("fixed sample inputs"), "{err}");
}

#[test]
fn an_inconsistent_config_json_is_one_line_on_resume_and_eval() {
    let ring = ring_run("cfg-ring");
    let dcgan = dcgan_run("cfg-dcgan");
    let resume = |run: &Path| -> String {
        fails_in_one_line(&["train", "--resume", s(run), "--steps", "4", "--quiet"])
    };
    for size in [0, 3] {
        let run = edited_config(&dcgan, &format!("cfg-size{size}"), |c| {
            c["run"]["image_size"] = serde_json::json!(size);
        });
        let err = resume(&run);
        assert!(
            err.contains(&format!("run.image_size Some({size})")),
            "{err}"
        );
    }
    let run = edited_config(&ring, "cfg-data", |c| c["run"]["data"] = "mnist".into());
    let err = resume(&run);
    assert!(err.contains("run.data mnist"), "{err}");
    let run = edited_config(&dcgan, "cfg-model", |c| c["run"]["model"] = "mlp".into());
    let err = resume(&run);
    assert!(err.contains("run.model is Mlp"), "{err}");

    let run = edited_config(&dcgan, "cfg-eval", |c| c["run"]["data"] = "ring".into());
    let err = fails_in_one_line(&["eval", "--run", s(&run), "--n", "10"]);
    assert!(err.contains("does not draw 2-D points"), "{err}");
}

#[test]
fn resume_applies_or_refuses_every_flag() {
    let run = temp("resume-flags");
    ok(&[
        "train",
        "--model",
        "mlp",
        "--data",
        "ring",
        "--steps",
        "4",
        "--sample-every",
        "2",
        "--checkpoint-every",
        "2",
        "--batch-size",
        "16",
        "--seed",
        "3",
        "--quiet",
        "--out",
        s(&run),
    ]);
    let refused: [(&[&str], &str); 5] = [
        (&["--batch-size", "32"], "--batch-size 32 does not match"),
        (&["--data", "grid"], "--data \"grid\" does not match"),
        (&["--seed", "4"], "--seed 4 does not match"),
        (&["--k", "2"], "--k 2 does not match"),
        (&["--k", "0"], "--k 0 must be in 1..=100"),
    ];
    for (flags, want) in refused {
        let mut args = vec!["train", "--resume", s(&run), "--steps", "6", "--quiet"];
        args.extend(flags);
        let err = fails_in_one_line(&args);
        assert!(err.contains(want), "{flags:?}: {err}");
    }
    // The same values are no change; the intervals are the run's own unless given.
    ok(&[
        "train",
        "--resume",
        s(&run),
        "--steps",
        "6",
        "--batch-size",
        "16",
        "--seed",
        "3",
        "--data",
        "ring",
        "--k",
        "1",
        "--quiet",
    ]);
    assert!(
        run.join("samples/step_000006.png").is_file(),
        "--sample-every 2 was forgotten"
    );
    ok(&[
        "train",
        "--resume",
        s(&run),
        "--steps",
        "9",
        "--sample-every",
        "3",
        "--quiet",
    ]);
    assert!(run.join("samples/step_000009.png").is_file());
    assert_eq!(
        run_config(&run)["run"]["sample_every"],
        3,
        "recorded for the next resume"
    );
}

#[test]
fn eval_into_a_closed_pipe_still_writes_eval_json() {
    let run = ring_run("eval-pipe");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(["eval", "--run", s(&run), "--n", "100"])
        .env("RAYON_NUM_THREADS", "2")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before anything is printed, as `| head -1` does after a line.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let eval: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval.json")).unwrap()).unwrap();
    assert!(eval["modes"].is_number(), "{eval}");
}

#[test]
fn weights_or_optimizer_state_that_overflow_stop_the_run_and_keep_the_checkpoint() {
    let run = ring_run("overflow");
    // A learning rate of 1e3 drives the weights to infinity; the losses may stay finite
    // (a saturated sigmoid), so only the state shows it.
    let err = fails_in_one_line(&[
        "train",
        "--resume",
        s(&run),
        "--lr",
        "1e3",
        "--steps",
        "300",
        "--checkpoint-every",
        "1",
        "--quiet",
    ]);
    assert!(
        err.contains("not finite") || err.contains("non-finite value"),
        "{err}"
    );
    let (trainer, _) = gantry_gan::checkpoint::load(&run.join("checkpoint.safetensors")).unwrap();
    gantry_gan::checkpoint::check_finite(&trainer).expect("the saved state is finite");
}
