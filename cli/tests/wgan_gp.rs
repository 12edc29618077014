//! `gantry train --model wgan-gp`: the recipe lands in the run, the critic trains with the
//! penalty and logs the Wasserstein estimate, the run resumes, and the flags that do not fit
//! are refused before anything is written.

mod common;

use common::{fails_in_one_line, metrics_rows as rows, ok, run_config, temp};

#[test]
fn wgan_gp_trains_with_the_papers_recipe_and_logs_the_estimate() {
    let dir = temp("wgan-gp-smoke");
    let run = dir.join("run");
    let run_s = run.to_str().unwrap();
    let common = [
        "--ngf",
        "4",
        "--ndf",
        "4",
        "--batch-size",
        "8",
        "--log-every",
        "1",
        "--quiet",
    ];
    let mut args = vec![
        "train", "--model", "wgan-gp", "--steps", "2", "--out", run_s,
    ];
    args.extend(common);
    ok(&args);

    let config = run_config(&run);
    assert_eq!(config["model"]["model"], "wgan-gp");
    assert_eq!(config["run"]["data"], "emoji");
    assert_eq!(config["model"]["dcgan"]["image_size"], 64);
    let train = &config["train"];
    assert_eq!(train["k"], 5);
    assert_eq!(train["objective"]["loss"], "wasserstein");
    assert_eq!(train["objective"]["terms"][0]["name"], "gp");
    assert_eq!(train["objective"]["terms"][0]["weight"], 10.0);
    for player in ["optim_g", "optim_d"] {
        let o = &train[player];
        assert_eq!(o["beta1"], 0.0, "{player}");
        assert!(
            (o["beta2"].as_f64().unwrap() - 0.9).abs() < 1e-6,
            "{player}"
        );
        assert!((o["lr"].as_f64().unwrap() - 1e-4).abs() < 1e-9, "{player}");
    }

    let logged = rows(&run);
    assert_eq!(logged.len(), 2);
    for row in &logged {
        for key in ["w_estimate", "gp", "loss_d", "loss_g"] {
            let v = row[key].as_f64().unwrap_or(f64::NAN);
            assert!(v.is_finite(), "{key} in {row}");
        }
        assert!(row["gp"].as_f64().unwrap() > 0.0, "{row}");
    }
    assert!(run.join("checkpoint.safetensors").exists());
    assert!(run.join("samples").read_dir().unwrap().count() >= 1);

    // It resumes, and a flag it cannot change is refused in one line.
    let err = fails_in_one_line(&["train", "--resume", run_s, "--steps", "3", "--beta1", "0.5"]);
    assert!(err.contains("--beta1"), "{err}");
    ok(&["train", "--resume", run_s, "--steps", "3", "--quiet"]);
    assert_eq!(rows(&run).len(), 3);
}

#[test]
fn digits_are_resized_to_32_and_the_critic_may_use_instance_norm() {
    let dir = temp("wgan-gp-mnist");
    let run = dir.join("run");
    ok(&[
        "train",
        "--model",
        "wgan-gp",
        "--data",
        "mnist",
        "--critic-norm",
        "instance",
        "--k",
        "1",
        "--steps",
        "1",
        "--ngf",
        "4",
        "--ndf",
        "4",
        "--batch-size",
        "4",
        "--out",
        run.to_str().unwrap(),
        "--quiet",
    ]);
    let config = run_config(&run);
    assert_eq!(config["model"]["dcgan"]["image_size"], 32);
    assert_eq!(config["model"]["dcgan"]["channels"], 1);
    assert_eq!(config["model"]["critic_norm"], "instance");
    assert_eq!(config["train"]["k"], 1, "--k overrides the recipe's 5");
}

#[test]
fn flags_that_do_not_fit_are_refused_before_anything_is_written() {
    let dir = temp("wgan-gp-refused");
    let run = dir.join("run");
    let run_s = run.to_str().unwrap();
    let cases: [(&[&str], &str); 3] = [
        (
            &["--model", "dcgan", "--critic-norm", "instance"],
            "--critic-norm",
        ),
        (&["--model", "wgan-gp", "--data", "ring"], "2-D points"),
        (
            &["--model", "wgan-gp", "--image-size", "48"],
            "power of two",
        ),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["train", "--steps", "1", "--out", run_s];
        args.extend_from_slice(flags);
        let err = fails_in_one_line(&args);
        assert!(err.contains(expected), "{flags:?}: {err}");
        assert!(!run.exists(), "{flags:?} wrote {}", run.display());
    }
}
