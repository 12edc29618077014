//! `gantry train --model pix2pixhd`: the coarse-to-fine run keeps a grid per phase, logs its
//! feature matching, resumes bit for bit across the switch to the enhancer, evaluates and
//! translates; the flags that do not fit are refused in one line before anything is written.

mod common;

use common::{
    fails_in_one_line, metrics_rows, ok, png_size, resume_flags, resume_is_exact, run_config, s,
    temp,
};
use gantry_gan::models::Pix2PixHdConfig;

/// edges2emoji128 at 32x32, widths 4 (G) and 4 (D), batch 2, the enhancer joining after 2
/// steps.
const TINY: [&str; 11] = [
    "--image-size",
    "32",
    "--ngf",
    "4",
    "--ndf",
    "4",
    "--batch-size",
    "2",
    "--global-steps",
    "2",
    "--quiet",
];

#[test]
fn pix2pixhd_trains_coarse_to_fine_and_translates() {
    let run = temp("hd-train");
    let mut args = vec![
        "train",
        "--model",
        "pix2pixhd",
        "--steps",
        "3",
        "--out",
        s(&run),
    ];
    args.extend(TINY);
    args.extend(["--sample-every", "1", "--log-every", "1"]);
    ok(&args);

    let config = run_config(&run);
    assert_eq!(config["run"]["data"], "edges2emoji128");
    let model: Pix2PixHdConfig = serde_json::from_value(config["model"].clone()).unwrap();
    assert_eq!(
        (model.image_size, model.ngf, model.ndf, model.global_steps),
        (32, 4, 4, 2)
    );
    assert_eq!(config["train"]["objective"]["loss"], "lsgan");
    // A grid per phase, each of input | output | target strips at the full size (the
    // half-size translations of the global phase enlarged).
    for grid in ["global-016.png", "local-032.png", "step_000001.png"] {
        let path = run.join("samples").join(grid);
        assert_eq!(png_size(&path).0, 3 * 34 + 2, "{grid}");
    }
    let rows = metrics_rows(&run);
    assert_eq!(rows.len(), 3);
    for row in &rows {
        for key in ["loss_d_real", "loss_d_fake", "loss_g_gan", "loss_g_feat"] {
            assert!(row[key].as_f64().unwrap().is_finite(), "{key}: {row}");
        }
        assert!(
            row.get("d_real").is_none(),
            "least squares has no probabilities"
        );
    }

    ok(&["eval", "--run", s(&run), "--n", "4"]);
    let eval: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval.json")).unwrap()).unwrap();
    assert_eq!(eval["n"], 4, "{eval}");
    assert!(eval["ssim"].as_f64().is_some(), "{eval}");

    let inputs = temp("hd-in");
    std::fs::create_dir_all(&inputs).unwrap();
    image::RgbImage::from_fn(64, 32, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 8) as u8, 90])
    })
    .save(inputs.join("pair.png"))
    .unwrap();
    let out = temp("hd-out");
    ok(&[
        "translate",
        "--run",
        s(&run),
        "--input",
        s(&inputs),
        "--out",
        s(&out),
    ]);
    assert_eq!(png_size(&out.join("pair.png")).0, 3 * 34 + 2);
    // The validation split, two runs side by side: input | run | run | target, a row a pair.
    let grids = temp("hd-compare");
    std::fs::create_dir_all(&grids).unwrap();
    let grid = grids.join("compare.png");
    ok(&[
        "translate",
        "--run",
        s(&run),
        "--run",
        s(&run),
        "--data",
        "edges2emoji128",
        "--n",
        "2",
        "--out",
        s(&grid),
    ]);
    assert_eq!(png_size(&grid), (4 * 34 + 2, 2 * 34 + 2));
    let other = temp("hd-other-size");
    ok(&[
        "train",
        "--model",
        "pix2pix",
        "--data",
        "edges2emoji",
        "--image-size",
        "64",
        "--ngf",
        "2",
        "--ndf",
        "2",
        "--steps",
        "1",
        "--batch-size",
        "1",
        "--quiet",
        "--out",
        s(&other),
    ]);
    let err = fails_in_one_line(&[
        "translate",
        "--run",
        s(&run),
        "--run",
        s(&other),
        "--data",
        "edges2emoji128",
        "--out",
        s(&grid),
    ]);
    assert!(err.contains("one input shape"), "{err}");
    let err = fails_in_one_line(&["sample", "--run", s(&run), "--out", s(&out.join("x.png"))]);
    assert!(
        err.contains("pix2pixhd run") && err.contains("translate"),
        "{err}"
    );
}

#[test]
fn the_switch_to_the_enhancer_resumes_bit_for_bit() {
    let common = resume_flags(&TINY);
    // The checkpoint after step 1 is in the global phase; the resumed run switches at 2.
    resume_is_exact(
        "pix2pixhd",
        [1, 4],
        &["--model", "pix2pixhd", "--data", "edges2emoji128"],
        &common,
    );
}

#[test]
fn flags_that_do_not_fit_are_refused_before_anything_is_written() {
    let run = temp("hd-refused");
    let cases: [(&[&str], &str); 6] = [
        (
            &["--model", "dcgan", "--global-steps", "8"],
            "--global-steps",
        ),
        (&["--model", "pix2pix", "--num-d", "2"], "--num-d"),
        (&["--model", "pix2pixhd", "--num-d", "4"], "num_d"),
        (
            &["--model", "pix2pixhd", "--image-size", "40"],
            "multiple of 16",
        ),
        (&["--model", "pix2pixhd", "--data", "mnist"], "paired data"),
        (&["--model", "pix2pixhd", "--mode-seeking", "1"], "no noise"),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["train", "--steps", "1", "--out", s(&run)];
        args.extend_from_slice(flags);
        let err = fails_in_one_line(&args);
        assert!(err.contains(expected), "{flags:?}: {err}");
        assert!(!run.exists(), "{flags:?} wrote {}", run.display());
    }
}
