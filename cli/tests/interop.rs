//! `gantry export` and `gantry import` end to end, and an installed binary run from another
//! folder. The ONNX round trip against a runtime that is not gantry is in
//! `gan/tests/onnx_export.rs`, the `.pth` outputs against PyTorch's in
//! `gan/tests/torch_import.rs`; these check the commands around them.

mod common;

use common::{Scratch, fails, fails_in_one_line, ok, run_config, s, temp};
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(rel: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/torch")
        .join(rel);
    assert!(
        p.exists(),
        "fixture {} is missing: run `python fixtures/torch/make_fixtures.py interop` (needs torch)",
        p.display()
    );
    p
}

fn train_tiny_dcgan(name: &str) -> Scratch {
    let run = temp(name);
    ok(&[
        "train",
        "--steps",
        "1",
        "--batch-size",
        "4",
        "--quiet",
        "--out",
        s(&run),
    ]);
    run
}

#[test]
fn export_writes_an_onnx_file_and_says_what_it_wrote() {
    let run = train_tiny_dcgan("export-dcgan");
    let out = run.join("g.onnx");
    let said = ok(&["export", "--run", s(&run), "--out", s(&out)]);
    assert!(said.contains("z float32 [N, 100]"), "{said}");
    assert!(said.contains("image float32 [N, 1, 28, 28]"), "{said}");
    assert!(said.contains("test-time behaviour eval"), "{said}");
    // The dense layer alone holds 100 x 12,544 weights.
    let bytes = std::fs::metadata(&out).unwrap().len();
    assert!(bytes > 4 * 100 * 12_544, "{bytes} bytes");
    let said = ok(&[
        "export",
        "--run",
        s(&run),
        "--out",
        s(&out),
        "--mode",
        "paper",
    ]);
    assert!(said.contains("test-time behaviour paper"), "{said}");
}

#[test]
fn export_refuses_bad_input_in_one_line() {
    let err = fails_in_one_line(&["export", "--run", s(&temp("no-run")), "--out", "g.onnx"]);
    assert!(err.contains("no-run"), "{err}");
    let run = train_tiny_dcgan("export-bad-out");
    let out = run.join("missing-folder/g.onnx");
    let err = fails_in_one_line(&["export", "--run", s(&run), "--out", s(&out)]);
    assert!(err.contains("missing-folder"), "{err}");
    // clap's own message for a bad value lists the choices on a second line.
    let err = fails(&["export", "--run", s(&run), "--out", "g.onnx", "--mode", "x"]);
    assert!(err.contains("--mode"), "{err}");
}

#[test]
fn an_imported_dcgan_samples_exports_reports_and_fine_tunes() {
    let run = temp("import-dcgan");
    let said = ok(&[
        "import",
        "--model",
        "dcgan",
        "--generator",
        s(&fixture("interop/dcgan/netG_epoch_0.pth")),
        "--discriminator",
        s(&fixture("interop/dcgan/netD_epoch_0.pth")),
        "--batch-size",
        "4",
        "--out",
        s(&run),
    ]);
    assert!(said.contains("and discriminator"), "{said}");
    let config = run_config(&run);
    // Fine-tuning keeps the batch size import recorded.
    assert_eq!(config["run"]["batch_size"], 4);
    assert_eq!(config["model"]["nz"], 16);
    assert_eq!(config["model"]["ngf"], 8);
    assert_eq!(config["run"]["data"], "emoji");
    ok(&[
        "sample",
        "--run",
        s(&run),
        "--n",
        "4",
        "--out",
        s(&run.join("s.png")),
    ]);
    let said = ok(&["export", "--run", s(&run), "--out", s(&run.join("g.onnx"))]);
    assert!(said.contains("z float32 [N, 16, 1, 1]"), "{said}");
    ok(&["report", "--run", s(&run)]);
    ok(&["train", "--resume", s(&run), "--steps", "1", "--quiet"]);
    assert!(run.join("samples").is_dir());
}

#[test]
fn an_imported_pix2pix_translates_and_evaluates() {
    let run = temp("import-p2p");
    ok(&[
        "import",
        "--model",
        "pix2pix",
        "--generator",
        s(&fixture("interop/pix2pix/latest_net_G.pth")),
        "--discriminator",
        s(&fixture("interop/pix2pix/latest_net_D.pth")),
        "--out",
        s(&run),
    ]);
    assert_eq!(run_config(&run)["model"]["image_size"], 64);
    let input = run.join("in.png");
    image::RgbImage::from_pixel(64, 64, image::Rgb([200, 10, 10]))
        .save(&input)
        .unwrap();
    let out = run.join("out.png");
    ok(&[
        "translate",
        "--run",
        s(&run),
        "--input",
        s(&input),
        "--out",
        s(&out),
    ]);
    assert!(out.is_file());
    let said = ok(&["eval", "--run", s(&run), "--n", "8"]);
    assert!(said.contains("psnr"), "{said}");
}

#[test]
fn import_refuses_disagreeing_sizes_and_wrong_files_in_one_line() {
    let g = fixture("interop/dcgan/netG_epoch_0.pth");
    let err = fails_in_one_line(&[
        "import",
        "--model",
        "dcgan",
        "--generator",
        s(&g),
        "--ngf",
        "64",
        "--out",
        s(&temp("import-ngf")),
    ]);
    assert!(err.contains("--ngf 64") && err.contains("ngf 8"), "{err}");
    let err = fails_in_one_line(&[
        "import",
        "--model",
        "pix2pix",
        "--generator",
        s(&g),
        "--out",
        s(&temp("import-kind")),
    ]);
    assert!(err.contains("UnetGenerator"), "{err}");
    let not = temp("import-not");
    std::fs::create_dir_all(&not).unwrap();
    std::fs::write(not.join("g.pth"), "not a checkpoint").unwrap();
    let err = fails_in_one_line(&[
        "import",
        "--model",
        "dcgan",
        "--generator",
        s(&not.join("g.pth")),
        "--out",
        s(&not),
    ]);
    assert!(err.contains("g.pth"), "{err}");
}

/// The binary copied out of the build tree, as `cargo install` places it, run from an
/// unrelated folder without `GANTRY_DATA`; the scratch root holds both.
fn installed(name: &str) -> (Scratch, PathBuf, PathBuf) {
    let root = temp(name);
    let bin = root.join("bin");
    let cwd = root.join("elsewhere");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&cwd).unwrap();
    let exe = bin.join("gantry");
    std::fs::copy(env!("CARGO_BIN_EXE_gantry"), &exe).unwrap();
    (root, exe, cwd)
}

fn run_in(exe: &Path, cwd: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(exe)
        .args(args)
        .current_dir(cwd)
        .env_remove("GANTRY_DATA")
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn an_installed_binary_finds_its_data_from_any_folder() {
    let (_root, exe, cwd) = installed("installed");
    let (ok, text) = run_in(
        &exe,
        &cwd,
        &[
            "train",
            "--steps",
            "1",
            "--batch-size",
            "4",
            "--quiet",
            "--out",
            "run",
        ],
    );
    assert!(ok, "{text}");
    assert!(cwd.join("run/checkpoint.safetensors").is_file());
    let (ok, text) = run_in(&exe, &cwd, &["eval", "--run", "run", "--n", "50"]);
    assert!(ok, "the bundled classifier is found: {text}");
}

#[test]
fn without_its_data_the_binary_says_how_to_point_at_it() {
    let (_root, exe, cwd) = installed("installed-nodata");
    let empty = cwd.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let (ok, text) = run_in(
        &exe,
        &cwd,
        &[
            "--data-dir",
            s(&empty),
            "train",
            "--steps",
            "1",
            "--out",
            "run",
        ],
    );
    assert!(!ok, "{text}");
    assert_eq!(text.trim_end().lines().count(), 1, "one line: {text}");
    assert!(
        text.contains("--data-dir") && text.contains("GANTRY_DATA") && text.contains(s(&empty)),
        "{text}"
    );
    // The repository's data/ given explicitly works from anywhere.
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data");
    let (ok, text) = run_in(
        &exe,
        &cwd,
        &[
            "train",
            "--data-dir",
            s(&data),
            "--steps",
            "1",
            "--batch-size",
            "4",
            "--quiet",
            "--out",
            "run2",
        ],
    );
    assert!(ok, "{text}");
}
