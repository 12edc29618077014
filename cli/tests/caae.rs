//! `gantry train --model caae` and `gantry age`: a tiny face-ageing run logs every part of
//! its objective, keeps age rows of the held-out faces, resumes bit for bit, and ages a face
//! given on the command line; what does not fit is refused in one line before anything is
//! written.

mod common;

use common::{
    Scratch, fails_in_one_line, metrics_rows, ok, png_size, refused_before_writing, resume_flags,
    resume_is_exact, run_config, s, temp,
};
use gantry_gan::models::CaaeConfig;
use std::path::Path;

/// emoji-faces at 16x16, widths 4 (E, G) and 2 (D_img), batch 4.
const TINY: [&str; 9] = [
    "--image-size",
    "16",
    "--ngf",
    "4",
    "--ndf",
    "2",
    "--batch-size",
    "4",
    "--quiet",
];

/// A tile of `side` pixels in a grid of `n` columns: 2 pixels of padding around each.
fn grid_width(n: u32, side: u32) -> u32 {
    n * (side + 2) + 2
}

/// A trained tiny run, shared by the tests that need one.
fn tiny_run(name: &str) -> Scratch {
    let run = temp(name);
    let mut args = vec!["train", "--model", "caae", "--steps", "2", "--out", s(&run)];
    args.extend(TINY);
    args.extend(["--sample-every", "1", "--log-every", "1"]);
    ok(&args);
    run
}

/// A fresh scratch folder for the files of test `name`.
fn files(name: &str) -> Scratch {
    let dir = temp(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A `width x height` RGBA face-like PNG: a disc on a transparent background.
fn write_face(path: &Path, width: u32, height: u32) {
    image::RgbaImage::from_fn(width, height, |x, y| {
        let (dx, dy) = (
            x as f32 - width as f32 / 2.0,
            y as f32 - height as f32 / 2.0,
        );
        if dx * dx + dy * dy < (width.min(height) as f32 / 3.0).powi(2) {
            image::Rgba([240, 190, 80, 255])
        } else {
            image::Rgba([0, 0, 0, 0])
        }
    })
    .save(path)
    .unwrap();
}

#[test]
fn caae_trains_with_its_recipe_and_ages_a_face() {
    let run = tiny_run("caae-train");
    let config = run_config(&run);
    assert_eq!(config["run"]["data"], "emoji-faces");
    assert_eq!(config["run"]["model"], "caae");
    let model: CaaeConfig = serde_json::from_value(config["model"].clone()).unwrap();
    assert_eq!(
        (model.image_size, model.ages, model.ngf, model.ndf),
        (16, 4, 4, 2)
    );
    let objective = &config["train"]["objective"];
    assert_eq!(objective["loss"], "non-saturating");
    let terms: Vec<(String, f64)> = objective["terms"]
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
    let want = [
        ("loss_g_l1", 100.0),
        ("loss_g_tv", 1.0),
        ("loss_d_z", 1.0),
        ("loss_g_z", 1.0),
    ];
    assert_eq!(
        terms,
        want.map(|(n, w)| (n.to_string(), w)).to_vec(),
        "{objective}"
    );
    assert_eq!(config["train"]["optim_g"]["lr"], 2e-4_f32 as f64);
    let rows = metrics_rows(&run);
    assert_eq!(rows.len(), 2);
    for row in &rows {
        for key in [
            "loss_d_real",
            "loss_d_fake",
            "loss_d_z",
            "loss_g_gan",
            "loss_g_l1",
            "loss_g_tv",
            "loss_g_z",
        ] {
            assert!(row[key].as_f64().unwrap().is_finite(), "{key}: {row}");
        }
    }
    // Each held-out face (8 of the 10) then its 4 ages: 5 columns, 8 rows.
    let grid = png_size(&run.join("samples/step_000002.png"));
    assert_eq!(grid, (grid_width(5, 16), grid_width(8, 16)));

    // A face at every age; a 48x48 transparent face is composited and resized to 16.
    let dir = files("caae-age");
    let input = dir.join("face.png");
    write_face(&input, 48, 48);
    let out = dir.join("ages.png");
    let said = ok(&[
        "age",
        "--run",
        s(&run),
        "--input",
        s(&input),
        "--out",
        s(&out),
    ]);
    assert!(said.contains("baby, child, adult, older"), "{said}");
    assert_eq!(png_size(&out), (grid_width(5, 16), grid_width(1, 16)));
    // (That each age differs is checked on the floats, in `sampling::tests`: two steps of a
    // tiny model move its outputs by less than one grey level.)

    let err = fails_in_one_line(&["sample", "--run", s(&run), "--out", s(&out)]);
    assert!(
        err.contains("caae run") && err.contains("gantry age"),
        "{err}"
    );
}

#[test]
fn caae_resumes_bit_for_bit() {
    let common = resume_flags(&TINY);
    resume_is_exact(
        "caae",
        [1, 3],
        &["--model", "caae", "--data", "emoji-faces"],
        &common,
    );
}

#[test]
fn age_refuses_what_it_cannot_read_in_one_line() {
    let run = tiny_run("caae-refuse");
    let dir = files("caae-refused");
    let out = dir.join("refused.png");
    // Not square.
    let wide = dir.join("wide.png");
    write_face(&wide, 40, 20);
    let err = fails_in_one_line(&[
        "age",
        "--run",
        s(&run),
        "--input",
        s(&wide),
        "--out",
        s(&out),
    ]);
    assert!(err.contains("40x20") && err.contains("not square"), "{err}");
    // Not an image.
    let text = dir.join("text.png");
    std::fs::write(&text, "not a png").unwrap();
    let err = fails_in_one_line(&[
        "age",
        "--run",
        s(&run),
        "--input",
        s(&text),
        "--out",
        s(&out),
    ]);
    assert!(err.contains("text.png"), "{err}");
    // Missing input, an output that is not PNG.
    let face = dir.join("face.png");
    write_face(&face, 16, 16);
    for (args, expected) in [
        (
            vec!["--input", "/nonexistent/face.png", "--out", s(&out)],
            "--input",
        ),
        (vec!["--input", s(&face), "--out", "ages.jpg"], "--out"),
    ] {
        let mut all = vec!["age", "--run", s(&run)];
        all.extend(args);
        let err = fails_in_one_line(&all);
        assert!(err.contains(expected), "{err}");
    }
    assert!(!out.exists(), "a refused call wrote {}", out.display());

    // A run of another model names the model age takes.
    let mlp = temp("caae-mlp");
    ok(&[
        "train",
        "--model",
        "mlp",
        "--data",
        "ring",
        "--steps",
        "1",
        "--quiet",
        "--out",
        s(&mlp),
    ]);
    let err = fails_in_one_line(&[
        "age",
        "--run",
        s(&mlp),
        "--input",
        s(&face),
        "--out",
        s(&out),
    ]);
    assert!(
        err.contains("mlp run") && err.contains("takes caae runs"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn flags_that_do_not_fit_are_refused_before_anything_is_written() {
    let run = temp("caae-flags");
    let cases: [(&[&str], &str); 5] = [
        (&["--model", "caae", "--data", "ring"], "needs images"),
        (&["--model", "caae", "--data", "edges2emoji"], "paired data"),
        (&["--model", "caae", "--image-size", "48"], "power of two"),
        (&["--model", "caae", "--mode-seeking", "1"], "no noise"),
        (
            &["--model", "caae", "--batch-size", "51"],
            "larger than the data set",
        ),
    ];
    refused_before_writing(&run, &cases);
}

/// `gantry eval` of a caae run ages every emoji face to each other age group and scores it
/// against the true emoji of that person at that age, beside the baselines. The baselines'
/// scores are facts of the data and the shipped age classifier, whatever the model: the
/// truth scores perfectly, the unchanged input keeps its skin tone and is never judged to be
/// of the target age.
#[test]
fn eval_measures_ageing_against_the_true_faces() {
    let run = temp("caae-eval");
    // The tiny run at the data's own size, so that the classifier sees the real faces
    // unresized.
    let mut args = vec!["train", "--model", "caae", "--steps", "1", "--out", s(&run)];
    args.extend(TINY.map(|a| if a == "16" { "64" } else { a }));
    ok(&args);
    ok(&["eval", "--run", s(&run)]);
    let text = std::fs::read_to_string(run.join("eval.json")).unwrap();
    let eval: serde_json::Value = serde_json::from_str(&text).unwrap();
    let ageing = &eval["ageing"];
    assert_eq!(ageing["faces"], 60, "{ageing}");
    assert_eq!(ageing["age_classifier"]["test_accuracy"], 1.0, "{ageing}");
    for (split, pairs) in [("held_out", 30), ("train", 150)] {
        for method in ["caae", "identity", "mean_face", "truth"] {
            let m = &ageing[split][method];
            assert_eq!(m["pairs"], pairs, "{split} {method}: {m}");
            for key in ["l1", "ssim", "tone_error", "tone_accuracy", "age_accuracy"] {
                assert!(
                    m[key].as_f64().unwrap().is_finite(),
                    "{split} {method} {key}"
                );
            }
        }
        let truth = &ageing[split]["truth"];
        for (key, want) in [
            ("l1", 0.0),
            ("ssim", 1.0),
            ("tone_error", 0.0),
            ("tone_accuracy", 1.0),
            ("age_accuracy", 1.0),
        ] {
            let got = truth[key].as_f64().unwrap();
            assert!((got - want).abs() < 1e-9, "{split} truth {key}: {got}");
        }
        let identity = &ageing[split]["identity"];
        assert_eq!(identity["age_accuracy"], 0.0, "{split}: {identity}");
        assert_eq!(identity["tone_accuracy"], 1.0, "{split}: {identity}");
        assert!(
            identity["l1"].as_f64().unwrap() > 0.1,
            "{split}: {identity}"
        );
    }
}

/// A caae run on a folder of faces by age has no person types and skin tones to pair faces
/// with: its eval says so in one line.
#[test]
fn eval_of_a_run_on_other_faces_says_what_it_needs() {
    let dir = files("caae-folder");
    for age in ["a-baby", "b-child", "c-adult", "d-older"] {
        std::fs::create_dir_all(dir.join(age)).unwrap();
        for i in 0..2 {
            write_face(&dir.join(age).join(format!("{i}.png")), 16, 16);
        }
    }
    let run = temp("caae-folder-run");
    let mut args = vec![
        "train",
        "--model",
        "caae",
        "--steps",
        "1",
        "--data",
        s(&dir),
    ];
    args.extend(TINY);
    args.extend(["--out", s(&run)]);
    ok(&args);
    let err = fails_in_one_line(&["eval", "--run", s(&run)]);
    assert!(
        err.contains("emoji-faces") && err.contains("person types"),
        "{err}"
    );
}
