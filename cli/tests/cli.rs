//! The `gantry` binary end to end: every model trains, samples and translates at tiny sizes;
//! resuming is exact; a killed run keeps a loadable checkpoint; bad input is one clear line.

mod common;

use common::{fails, ok, ok_log, png_size, resume_is_exact, run_config, s, temp, tensors};
use gantry_gan::checkpoint;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn mlp_on_the_ring_trains_logs_samples_and_checkpoints() {
    let run = temp("mlp");
    let text = ok_log(&[
        "train",
        "--model",
        "mlp",
        "--data",
        "ring",
        "--steps",
        "20",
        "--sample-every",
        "10",
        "--out",
        s(&run),
    ]);
    assert!(text.contains("trained mlp to step 20"), "{text}");
    for f in [
        "config.json",
        "metrics.jsonl",
        "checkpoint.safetensors",
        "samples/real.png",
        "samples/step_000010.png",
        "samples/step_000020.png",
    ] {
        assert!(run.join(f).exists(), "{f} missing");
    }
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = metrics
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for key in ["step", "loss_d", "loss_g", "d_real", "d_fake"] {
        assert!(
            lines[1][key].is_number(),
            "metrics lack {key}: {}",
            lines[1]
        );
    }
    let out = run.join("points.png");
    ok(&["sample", "--run", s(&run), "--n", "500", "--out", s(&out)]);
    assert_eq!(png_size(&out), (400, 400));
}

#[test]
fn dcgan_on_mnist_and_emoji_samples_grids() {
    let run = temp("dcgan28");
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
    let config = run_config(&run);
    assert_eq!(config["model"]["variant"], "dcgan28");
    let out = run.join("grid.png");
    ok(&[
        "sample",
        "--run",
        s(&run),
        "--n",
        "16",
        "--seed",
        "3",
        "--out",
        s(&out),
    ]);
    assert_eq!(png_size(&out), (4 * 30 + 2, 4 * 30 + 2));

    // --ngf/--ndf set the 28x28 network's widths: a dense layer to 4 ngf x 7 x 7, D's convs
    // of ndf and 2 ndf channels into a dense layer of 2 ndf x 7 x 7 inputs.
    let narrow = temp("dcgan28-narrow");
    ok(&[
        "train",
        "--steps",
        "1",
        "--batch-size",
        "4",
        "--ngf",
        "8",
        "--ndf",
        "4",
        "--quiet",
        "--out",
        s(&narrow),
    ]);
    let config = run_config(&narrow);
    assert_eq!(
        (
            config["model"]["ngf"].as_u64(),
            config["model"]["ndf"].as_u64()
        ),
        (Some(8), Some(4))
    );
    let sizes: Vec<(String, usize)> = tensors(&narrow.join("checkpoint.safetensors"))
        .into_iter()
        .map(|(k, v)| (k, v.len()))
        .collect();
    let size = |suffix: &str| {
        sizes
            .iter()
            .find(|(k, _)| k.ends_with(suffix))
            .unwrap_or_else(|| panic!("no tensor *{suffix} in {sizes:?}"))
            .1
    };
    assert_eq!(size("fc.weight"), 100 * 4 * 8 * 49);
    assert_eq!(size("conv.0.weight"), 4 * 8 * 2 * 8 * 25);
    assert_eq!(size("7.weight"), 2 * 4 * 49);

    let run = temp("dcgan-emoji");
    ok(&[
        "train",
        "--data",
        "emoji",
        "--image-size",
        "16",
        "--ngf",
        "4",
        "--ndf",
        "4",
        "--steps",
        "2",
        "--batch-size",
        "8",
        "--quiet",
        "--out",
        s(&run),
    ]);
    let out = run.join("grid.png");
    ok(&["sample", "--run", s(&run), "--n", "9", "--out", s(&out)]);
    assert_eq!(png_size(&out), (3 * 18 + 2, 3 * 18 + 2));
}

#[test]
fn pix2pix_trains_and_translates_files_and_folders() {
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
    let step = image::open(run.join("samples/step_000002.png")).unwrap();
    assert_eq!(
        step.width(),
        3 * 34 + 2,
        "strips of input | output | target"
    );

    let inputs = temp("p2p-in");
    std::fs::create_dir_all(&inputs).unwrap();
    let pair = image::RgbImage::from_fn(56, 28, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 8) as u8, 100])
    });
    pair.save(inputs.join("a.png")).unwrap();
    image::RgbImage::from_pixel(28, 28, image::Rgb([255, 255, 255]))
        .save(inputs.join("b.png"))
        .unwrap();
    std::fs::write(inputs.join("notes.txt"), "not an image").unwrap();

    let eval = run.join("eval.png");
    ok(&[
        "translate",
        "--run",
        s(&run),
        "--input",
        s(&inputs.join("a.png")),
        "--out",
        s(&eval),
        "--eval-mode",
    ]);
    assert_eq!(png_size(&eval), (32, 32));
    let single = run.join("one.png");
    ok(&[
        "translate",
        "--run",
        s(&run),
        "--input",
        s(&inputs.join("a.png")),
        "--out",
        s(&single),
    ]);
    assert_eq!(png_size(&single), (32, 32));

    let out = temp("p2p-out");
    ok(&[
        "translate",
        "--run",
        s(&run),
        "--input",
        s(&inputs),
        "--out",
        s(&out),
    ]);
    assert_eq!(
        png_size(&out.join("a.png")).0,
        3 * 34 + 2,
        "a pair gives input | output | target"
    );
    assert_eq!(
        png_size(&out.join("b.png")).0,
        2 * 34 + 2,
        "a lone input gives input | output"
    );
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("a.png") && html.contains("b.png"));

    let err = fails(&["sample", "--run", s(&run), "--out", s(&run.join("x.png"))]);
    assert!(err.contains("gantry translate"), "{err}");
}

#[test]
fn resuming_gives_the_same_weights_as_training_straight() {
    let common = [
        "--image-size",
        "16",
        "--ngf",
        "4",
        "--ndf",
        "4",
        "--batch-size",
        "8",
        "--quiet",
        "--threads",
        "2",
        "--checkpoint-every",
        "0",
        "--log-every",
        "1",
    ];
    resume_is_exact(
        "dcgan",
        [3, 6],
        &["--model", "dcgan", "--data", "mnist"],
        &common,
    );
    // The label-conditional DCGAN with a packed discriminator: labels, label maps and packing
    // all take part, and `--pack` is kept by the run.
    resume_is_exact(
        "cdcgan-pack2",
        [3, 6],
        &["--model", "cdcgan", "--data", "mnist", "--pack", "2"],
        &common,
    );
}

/// The names of checkpoint temporary files in `run`.
fn temporary_checkpoints(run: &Path) -> Vec<String> {
    std::fs::read_dir(run)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.starts_with("checkpoint.safetensors.tmp-"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_run_killed_while_checkpointing_keeps_a_loadable_checkpoint() {
    let run = temp("kill");
    // Kills at fixed times (anywhere in a step), then kills the moment a checkpoint's
    // temporary file appears, until one kill has left a write unfinished: fixed times alone
    // may never land inside a write.
    let fixed = [900u64, 1370, 2090];
    let (mut caught_writing, mut kills) = (0, 0);
    while kills < fixed.len() || (caught_writing == 0 && kills < fixed.len() + 20) {
        let mut args = vec![
            "train",
            "--steps",
            "1000000",
            "--checkpoint-every",
            "1",
            "--sample-every",
            "0",
            "--quiet",
        ];
        if kills == 0 {
            args.extend(["--model", "mlp", "--data", "ring", "--out", s(&run)]);
        } else {
            args.extend(["--resume", s(&run)]);
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_gantry"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        match fixed.get(kills) {
            Some(&delay) => std::thread::sleep(Duration::from_millis(delay)),
            None => {
                let start = std::time::Instant::now();
                while temporary_checkpoints(&run).is_empty() {
                    assert!(
                        start.elapsed() < Duration::from_secs(120),
                        "no checkpoint write seen"
                    );
                }
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        if kills >= fixed.len() && !temporary_checkpoints(&run).is_empty() {
            caught_writing += 1;
        }
        let path = run.join("checkpoint.safetensors");
        let (trainer, _) =
            checkpoint::load(&path).unwrap_or_else(|e| panic!("after kill {kills}: {e}"));
        assert!(trainer.step > 0);
        kills += 1;
    }
    assert!(
        caught_writing > 0,
        "no kill landed inside a checkpoint write in {kills} tries"
    );
    // Opening the run again clears what a kill during a write left behind (the run is past
    // the target, so it stops right after).
    let err = fails(&["train", "--resume", s(&run), "--steps", "1"]);
    assert!(err.contains("already at step"), "{err}");
    assert!(
        temporary_checkpoints(&run).is_empty(),
        "temporary files left: {:?}",
        temporary_checkpoints(&run)
    );
}

#[test]
fn a_diverging_run_stops_with_the_step_and_keeps_the_last_good_checkpoint() {
    let run = temp("nan");
    ok(&[
        "train",
        "--model",
        "mlp",
        "--data",
        "ring",
        "--steps",
        "3",
        "--quiet",
        "--out",
        s(&run),
    ]);
    // An absurd learning rate from step 4 on: the losses overflow.
    let err = fails(&[
        "train",
        "--resume",
        s(&run),
        "--lr",
        "1e30",
        "--steps",
        "500",
        "--checkpoint-every",
        "1",
        "--quiet",
    ]);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("step 4: loss_g is NaN (not finite)"), "{err}");
    assert!(err.contains("holds the last good state (step 3)"), "{err}");
    let (trainer, _) = checkpoint::load(&run.join("checkpoint.safetensors")).unwrap();
    assert_eq!(trainer.step, 3);
}

#[test]
fn bad_input_is_one_clear_line() {
    let err = fails(&["train", "--model", "gan"]);
    assert!(err.contains("invalid value 'gan'"), "{err}");
    let err = fails(&[
        "train",
        "--image-size",
        "48",
        "--data",
        "emoji",
        "--out",
        s(&temp("e48")),
    ]);
    assert!(err.contains("image size 48 is not a power of two"), "{err}");
    let err = fails(&[
        "train",
        "--data",
        "/no/such/data",
        "--out",
        s(&temp("nodata")),
    ]);
    assert!(err.contains("/no/such/data"), "{err}");
    let err = fails(&[
        "train",
        "--model",
        "dcgan",
        "--data",
        "ring",
        "--out",
        s(&temp("ringd")),
    ]);
    assert!(err.contains("2-D points"), "{err}");
    let err = fails(&[
        "train",
        "--model",
        "pix2pix",
        "--mode-seeking",
        "1",
        "--out",
        s(&temp("p2pms")),
    ]);
    assert!(
        err.contains("--mode-seeking: pix2pix draws no noise"),
        "{err}"
    );
    let err = fails(&["train", "--mode-seeking=-1", "--out", s(&temp("negms"))]);
    assert!(err.contains("--mode-seeking -1 must be"), "{err}");
    let err = fails(&["sample", "--run", "/no/such/run", "--out", "x.png"]);
    assert!(err.contains("/no/such/run"), "{err}");

    let run = temp("other");
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
    let err = fails(&[
        "translate",
        "--run",
        s(&run),
        "--input",
        s(&run),
        "--out",
        s(&run.join("t")),
    ]);
    assert!(err.contains("not a translation run"), "{err}");
    let err = fails(&[
        "train",
        "--resume",
        s(&run),
        "--model",
        "pix2pix",
        "--steps",
        "4",
    ]);
    assert!(err.contains("does not match"), "{err}");
    let err = fails(&[
        "train",
        "--model",
        "mlp",
        "--data",
        "ring",
        "--steps",
        "2",
        "--out",
        s(&run),
    ]);
    assert!(err.contains("already holds a run"), "{err}");
}

#[test]
fn cdcgan_draws_a_row_per_class_and_samples_one_label() {
    let run = temp("cdcgan");
    ok(&[
        "train",
        "--model",
        "cdcgan",
        "--steps",
        "2",
        "--batch-size",
        "8",
        "--quiet",
        "--out",
        s(&run),
    ]);
    let config = run_config(&run);
    assert_eq!(config["model"]["model"], "cdcgan");
    // Mode seeking is on by default for the conditional model only.
    assert_eq!(
        config["train"]["objective"]["terms"],
        serde_json::json!([{"name": "loss_g_ms", "weight": 1.0, "every": 1}])
    );
    assert_eq!(config["model"]["num_classes"], 10);
    assert_eq!(config["model"]["dcgan"]["variant"], "dcgan28");
    // Ten rows (one per digit) of ten 28x28 tiles.
    assert_eq!(
        png_size(&run.join("samples/step_000002.png")),
        (10 * 30 + 2, 10 * 30 + 2)
    );
    let sevens = run.join("sevens.png");
    let text = ok_log(&[
        "sample",
        "--run",
        s(&run),
        "--label",
        "7",
        "--n",
        "9",
        "--out",
        s(&sevens),
    ]);
    assert!(text.contains("wrote 9 samples"), "{text}");
    assert_eq!(png_size(&sevens), (3 * 30 + 2, 3 * 30 + 2));
    // Another label gives other images from the same noise.
    let threes = run.join("threes.png");
    ok(&[
        "sample",
        "--run",
        s(&run),
        "--label",
        "3",
        "--n",
        "9",
        "--out",
        s(&threes),
    ]);
    assert_ne!(
        image::open(&sevens).unwrap().to_rgb8().into_raw(),
        image::open(&threes).unwrap().to_rgb8().into_raw()
    );

    let err = fails(&[
        "sample",
        "--run",
        s(&run),
        "--label",
        "10",
        "--out",
        s(&run.join("x.png")),
    ]);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--label 10 is out of range") && err.contains("10 classes"),
        "{err}"
    );
    // A flat folder of images has no classes.
    let flat = temp("flat-images");
    std::fs::create_dir_all(&flat).unwrap();
    for i in 0..2 {
        image::GrayImage::new(28, 28)
            .save(flat.join(format!("{i}.png")))
            .unwrap();
    }
    let err = fails(&[
        "train",
        "--model",
        "cdcgan",
        "--data",
        s(&flat),
        "--out",
        s(&temp("cdcgan-flat")),
    ]);
    assert!(err.contains("no class labels"), "{err}");

    let plain = temp("plain-ring");
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
        s(&plain),
    ]);
    let config = run_config(&plain);
    assert_eq!(config["train"]["objective"]["terms"], serde_json::json!([]));
    let err = fails(&[
        "sample",
        "--run",
        s(&plain),
        "--label",
        "1",
        "--out",
        s(&plain.join("x.png")),
    ]);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not label-conditional"), "{err}");
}

#[test]
fn pack_is_stored_checked_and_kept_on_resume() {
    let run = temp("pack");
    ok(&[
        "train",
        "--model",
        "mlp",
        "--data",
        "grid",
        "--pack",
        "2",
        "--steps",
        "10",
        "--quiet",
        "--out",
        s(&run),
    ]);
    let config = run_config(&run);
    assert_eq!(config["model"]["pack"], 2);
    let (trainer, _) = checkpoint::load(&run.join("checkpoint.safetensors")).unwrap();
    assert_eq!(trainer.gan.pack(), 2);
    // --ngf/--ndf set the point MLP's hidden widths, are kept on resume, and are refused
    // for the MLP of images.
    let wide = temp("mlp-widths");
    let mlp = ["train", "--model", "mlp", "--steps", "2", "--quiet"];
    ok(&[&mlp[..], &["--ngf", "16", "--ndf", "24", "--out", s(&wide)]].concat());
    let model = &run_config(&wide)["model"];
    assert_eq!(
        (model["g_hidden"].clone(), model["d_hidden"].clone()),
        (
            serde_json::json!([16, 16, 16]),
            serde_json::json!([24, 24, 24])
        )
    );
    ok(&[
        "train",
        "--resume",
        s(&wide),
        "--steps",
        "3",
        "--ngf",
        "16",
        "--quiet",
    ]);
    let err = fails(&["train", "--resume", s(&wide), "--steps", "4", "--ndf", "32"]);
    assert!(err.contains("--ndf 32 does not match"), "{err}");
    let err = fails(
        &[
            &mlp[..],
            &[
                "--data",
                "mnist",
                "--ngf",
                "8",
                "--out",
                s(&temp("mlp-img")),
            ],
        ]
        .concat(),
    );
    assert!(err.contains("fixed widths"), "{err}");
    // --g-batch-norm puts PacGAN's batch norm into the point generator, is recorded, and is
    // refused on resume and for other models.
    let normed = temp("mlp-bn");
    ok(&[&mlp[..], &["--g-batch-norm", "--out", s(&normed)]].concat());
    assert_eq!(run_config(&normed)["model"]["g_batch_norm"], true);
    let (trainer, _) = checkpoint::load(&normed.join("checkpoint.safetensors")).unwrap();
    let mut names = Vec::new();
    trainer
        .gan
        .generator()
        .visit("", &mut |name, _| names.push(name.to_string()));
    assert!(names.contains(&"1.running_mean".to_string()), "{names:?}");
    assert!(!names.contains(&"0.bias".to_string()), "{names:?}");
    let err = fails(&[
        "train",
        "--resume",
        s(&normed),
        "--steps",
        "4",
        "--g-batch-norm",
    ]);
    assert!(err.contains("--g-batch-norm: a resumed run"), "{err}");
    let err = fails(&["train", "--g-batch-norm", "--out", s(&temp("dcgan-bn"))]);
    assert!(err.contains("--g-batch-norm is the point MLP's"), "{err}");
    // --g-layers, --d-layers and --d-maxout build PacGAN's toy networks: recorded, checked,
    // kept on resume, and the point MLP's only.
    let paper = temp("mlp-maxout");
    ok(&[
        &mlp[..],
        &[
            "--ngf",
            "8",
            "--ndf",
            "6",
            "--g-layers",
            "4",
            "--d-layers",
            "2",
            "--d-maxout",
            "5",
            "--out",
            s(&paper),
        ],
    ]
    .concat());
    let model = &run_config(&paper)["model"];
    assert_eq!(model["g_hidden"], serde_json::json!([8, 8, 8, 8]));
    assert_eq!(model["d_hidden"], serde_json::json!([6, 6]));
    assert_eq!(model["d_maxout"], 5);
    let (trainer, _) = checkpoint::load(&paper.join("checkpoint.safetensors")).unwrap();
    let mut shapes = Vec::new();
    trainer.gan.discriminator().visit("", &mut |name, p| {
        shapes.push((name.to_string(), p.shape()))
    });
    assert_eq!(shapes.len(), 6, "{shapes:?}");
    assert_eq!(shapes[2].1, vec![30, 6], "{shapes:?}");
    ok(&["train", "--resume", s(&paper), "--steps", "3", "--quiet"]);
    for (flag, value) in [
        ("--d-maxout", "5"),
        ("--g-layers", "4"),
        ("--d-layers", "2"),
    ] {
        let err = fails(&["train", "--resume", s(&paper), "--steps", "4", flag, value]);
        assert!(err.contains(&format!("{flag}: a resumed run")), "{err}");
    }
    for (flag, value, want) in [
        ("--d-maxout", "1", "--d-maxout 1 must be in 2..=64"),
        ("--g-layers", "0", "--g-layers 0 must be in 1..=16"),
        ("--d-layers", "17", "--d-layers 17 must be in 1..=16"),
    ] {
        let err = fails(&[&mlp[..], &[flag, value, "--out", s(&temp("mlp-bad"))]].concat());
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(want), "{err}");
        let err = fails(&["train", flag, "3", "--out", s(&temp("dcgan-maxout"))]);
        assert!(err.contains(&format!("{flag} is the point MLP's")), "{err}");
    }
    // Resuming keeps the packing without being told, and refuses another one.
    ok(&["train", "--resume", s(&run), "--steps", "12", "--quiet"]);
    let err = fails(&["train", "--resume", s(&run), "--steps", "14", "--pack", "4"]);
    assert!(err.contains("--pack 4 does not match"), "{err}");
    let out = run.join("points.png");
    ok(&["sample", "--run", s(&run), "--n", "100", "--out", s(&out)]);

    let err = fails(&[
        "train",
        "--model",
        "mlp",
        "--data",
        "ring",
        "--batch-size",
        "63",
        "--pack",
        "2",
        "--out",
        s(&temp("pack-odd")),
    ]);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--batch-size 63 is not a multiple of --pack 2"),
        "{err}"
    );
    let err = fails(&[
        "train",
        "--model",
        "mlp",
        "--data",
        "ring",
        "--pack",
        "0",
        "--out",
        s(&temp("pack-zero")),
    ]);
    assert!(err.contains("pack must be at least 1"), "{err}");
    for model in [
        &[
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
        ][..],
        &["--model", "dcgan", "--data", "mnist"][..],
    ] {
        let run = temp(&format!("pack-{}", model[1]));
        let mut args = vec![
            "train",
            "--pack",
            "2",
            "--steps",
            "2",
            "--batch-size",
            "4",
            "--quiet",
            "--out",
            s(&run),
        ];
        args.extend(model);
        ok(&args);
    }
}

#[test]
fn the_seed_changes_the_weights_and_the_samples() {
    let train = |name: &str, seed: &str| {
        let run = temp(name);
        ok(&[
            "train",
            "--model",
            "mlp",
            "--data",
            "ring",
            "--pack",
            "2",
            "--steps",
            "5",
            "--seed",
            seed,
            "--quiet",
            "--out",
            s(&run),
        ]);
        (
            tensors(&run.join("checkpoint.safetensors")),
            std::fs::read(run.join("samples/step_000005.png")).unwrap(),
        )
    };
    let (a, a_png) = train("seed0a", "0");
    let (b, b_png) = train("seed0b", "0");
    let (c, c_png) = train("seed1", "1");
    assert!(a == b && a_png == b_png, "the same seed gave other numbers");
    for (ka, va) in &a {
        let vc = &c.iter().find(|(k, _)| k == ka).unwrap().1;
        if ka.starts_with("G.") || ka.starts_with("D.") {
            assert!(va != vc, "{ka} is the same under seeds 0 and 1");
        }
    }
    assert_ne!(a_png, c_png);
}

#[test]
fn mode_seeking_can_be_changed_on_resume() {
    let run = temp("cdcgan-ms-resume");
    let dir = s(&run);
    ok(&[
        "train",
        "--model",
        "cdcgan",
        "--steps",
        "1",
        "--batch-size",
        "8",
        "--quiet",
        "--out",
        dir,
    ]);
    let resume = ["train", "--resume", dir, "--quiet", "--steps", "2"];
    let err = fails(&[&resume[..], &["--mode-seeking=-2"]].concat());
    assert!(err.contains("--mode-seeking -2 must be"), "{err}");
    ok(&[&resume[..], &["--mode-seeking", "0"]].concat());
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let has_term: Vec<bool> = metrics
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["loss_g_ms"].is_number())
        .collect();
    assert_eq!(
        has_term,
        [true, false],
        "step 1 with the term, step 2 without"
    );
}
