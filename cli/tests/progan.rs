//! `gantry train --model progan`: the recipe lands in the run, the networks grow from 4x4
//! with a grid kept per resolution (each at the full size), a checkpoint in the middle of a
//! fade-in resumes bit for bit, and the flags that do not fit are refused in one line.

mod common;

use common::{
    fails_in_one_line, metrics_rows, ok, resume_flags, resume_is_exact, run_config, s, temp,
};
use gantry_gan::models::ProGanConfig;
use std::path::Path;

/// 16x16 emoji, widths 8, batch 4; 8 images (two steps) per fade and per stabilisation:
/// the steps after 0 and 1 are at 4x4, 2 and 3 fade into 8x8, 4 and 5 are at 8x8, 6 and 7
/// fade into 16x16.
const TINY: [&str; 11] = [
    "--image-size",
    "16",
    "--ngf",
    "8",
    "--batch-size",
    "4",
    "--fade-images",
    "8",
    "--stable-images",
    "8",
    "--quiet",
];

/// The first 16x16 tile of a sample grid (2-pixel borders) as RGB rows.
fn first_tile(path: &Path) -> Vec<Vec<[u8; 3]>> {
    let img = image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8();
    (0..16)
        .map(|i| (0..16).map(|j| img.get_pixel(2 + j, 2 + i).0).collect())
        .collect()
}

/// Whether every `f x f` block of the tile holds one colour.
fn blocky(tile: &[Vec<[u8; 3]>], f: usize) -> bool {
    (0..16).all(|i| (0..16).all(|j| tile[i][j] == tile[i / f * f][j / f * f]))
}

#[test]
fn progan_grows_with_its_recipe_and_keeps_a_grid_per_resolution() {
    let run = temp("progan-grow");
    let mut args = vec![
        "train",
        "--model",
        "progan",
        "--steps",
        "6",
        "--out",
        s(&run),
    ];
    args.extend(TINY);
    args.extend(["--sample-every", "1", "--log-every", "1"]);
    ok(&args);

    let config = run_config(&run);
    assert_eq!(config["run"]["data"], "emoji");
    let model = &config["model"];
    assert_eq!(model["model"], "progan");
    assert_eq!(
        [&model["image_size"], &model["fmap_max"], &model["z_dim"]].map(|v| v.as_u64()),
        [Some(16), Some(8), Some(8)]
    );
    assert_eq!(model["fade_images"], 8);
    assert_eq!(model["batch_size"], 4);
    let train = &config["train"];
    assert_eq!(train["k"], 1);
    assert_eq!(train["objective"]["loss"], "wasserstein");
    let terms: Vec<(String, f64)> = train["objective"]["terms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["weight"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(terms.len(), 2, "{terms:?}");
    assert!(terms[0].0 == "gp" && terms[0].1 == 10.0, "{terms:?}");
    assert!(
        terms[1].0 == "drift" && (terms[1].1 - 0.001).abs() < 1e-9,
        "{terms:?}"
    );
    for player in ["optim_g", "optim_d"] {
        let o = &train[player];
        assert!((o["lr"].as_f64().unwrap() - 1e-3).abs() < 1e-9, "{player}");
        assert_eq!(o["beta1"], 0.0, "{player}");
        assert!(
            (o["beta2"].as_f64().unwrap() - 0.99).abs() < 1e-6,
            "{player}"
        );
    }
    assert!((train["ema"].as_f64().unwrap() - 0.999).abs() < 1e-6);
    let rows = metrics_rows(&run);
    assert_eq!(rows.len(), 6);
    for row in &rows {
        for key in ["loss_d", "loss_g", "gp", "drift", "w_estimate"] {
            assert!(row[key].as_f64().unwrap().is_finite(), "{key} in {row}");
        }
    }

    // The last grid of each resolution, all at the full size: the 4x4 one in 4x4 blocks,
    // the 8x8 one in 2x2 blocks; the 16x16 one is the first step of its fade (alpha 0).
    let samples = run.join("samples");
    for (name, step) in [("res-004", 1), ("res-008", 5), ("res-016", 6)] {
        let kept = std::fs::read(samples.join(format!("{name}.png"))).unwrap();
        let grid = std::fs::read(samples.join(format!("step_{step:06}.png"))).unwrap();
        assert!(kept == grid, "{name}.png is not the grid of step {step}");
        assert_eq!(
            image::image_dimensions(samples.join(format!("{name}.png"))).unwrap(),
            (8 * 16 + 9 * 2, 8 * 16 + 9 * 2)
        );
    }
    let at4 = first_tile(&samples.join("res-004.png"));
    assert!(blocky(&at4, 4) && !blocky(&at4, 8), "res-004");
    let at8 = first_tile(&samples.join("res-008.png"));
    assert!(blocky(&at8, 2) && !blocky(&at8, 4), "res-008");

    // Its generator has no ONNX writer: said in one line.
    let err = fails_in_one_line(&["export", "--run", s(&run), "--out", s(&run.join("g.onnx"))]);
    assert!(
        err.contains("progan generators have no ONNX writer"),
        "{err}"
    );
    // The schedule is the run's.
    let err = fails_in_one_line(&[
        "train",
        "--resume",
        s(&run),
        "--steps",
        "8",
        "--fade-images",
        "4",
    ]);
    assert!(err.contains("--fade-images"), "{err}");
}

#[test]
fn a_checkpoint_in_the_middle_of_a_fade_in_resumes_bit_for_bit() {
    let common = resume_flags(&TINY);
    let split = resume_is_exact(
        "progan",
        [3, 6],
        &["--model", "progan", "--data", "emoji"],
        &common,
    );
    // The checkpoint after 3 steps fell halfway through the fade into 8x8.
    let config = run_config(&split);
    let model: ProGanConfig = serde_json::from_value(config["model"].clone()).unwrap();
    let stage = model.stage(3);
    assert!(
        stage.fading() && stage.level == 1 && stage.alpha == 0.5,
        "{stage:?}"
    );
}

#[test]
fn flags_that_do_not_fit_are_refused_before_anything_is_written() {
    let run = temp("progan-refused");
    let cases: [(&[&str], &str); 6] = [
        (&["--model", "dcgan", "--fade-images", "8"], "--fade-images"),
        (&["--model", "progan", "--ndf", "8"], "--ndf"),
        (&["--model", "progan", "--pack", "2"], "--pack"),
        (&["--model", "progan", "--image-size", "48"], "power of two"),
        (&["--model", "progan", "--image-size", "4"], "at least 8"),
        (&["--model", "progan", "--data", "ring"], "2-D points"),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["train", "--steps", "1", "--out", s(&run)];
        args.extend_from_slice(flags);
        let err = fails_in_one_line(&args);
        assert!(err.contains(expected), "{flags:?}: {err}");
        assert!(!run.exists(), "{flags:?} wrote {}", run.display());
    }
}
