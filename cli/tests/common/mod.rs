//! What the binary's integration tests share: running `gantry`, checking that it succeeded
//! or failed cleanly, and scratch directories.

// Each test file uses its own subset.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the binary on two threads (the CI machine's count).
pub fn gantry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gantry"))
        .args(args)
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .expect("the gantry binary runs")
}

/// Standard output of a run that must succeed (both streams shown if it does not).
pub fn ok(args: &[&str]) -> String {
    ok_output(args).0
}

/// Standard output then standard error (where progress and log lines go) of a run that
/// must succeed.
pub fn ok_log(args: &[&str]) -> String {
    let (stdout, stderr) = ok_output(args);
    stdout + &stderr
}

fn ok_output(args: &[&str]) -> (String, String) {
    let out = gantry(args);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "gantry {args:?} failed:\n{stdout}{stderr}"
    );
    (stdout, stderr)
}

/// Standard error of a run that must fail with an error, not a panic.
pub fn fails(args: &[&str]) -> String {
    let out = gantry(args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "gantry {args:?} should fail");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "a panic, not an error:\n{err}"
    );
    err
}

/// [`fails`], and the error is one line.
pub fn fails_in_one_line(args: &[&str]) -> String {
    let err = fails(args);
    assert_eq!(err.trim_end().lines().count(), 1, "one line:\n{err}");
    err
}

/// A fresh scratch directory path (not created) for the test `name` of this process,
/// removed when the returned guard is dropped.
pub fn temp(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("gantry-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    Scratch(dir)
}

/// A scratch directory that is removed when dropped: a test suite of training runs would
/// otherwise leave gigabytes behind in the temporary directory. A failing test keeps its
/// directory and says where, so the run can be looked at.
pub struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept for a look: {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

/// A path as a command-line argument.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// The `config.json` a run directory holds, parsed.
pub fn run_config(run: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(run.join("config.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The rows of a run's `metrics.jsonl`, parsed.
pub fn metrics_rows(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every tensor of a safetensors file by name, sorted.
pub fn tensors(path: &Path) -> Vec<(String, Vec<f32>)> {
    let mut all: Vec<(String, Vec<f32>)> = gantry_nn::state_dict::read_safetensors(path)
        .unwrap()
        .tensors
        .into_iter()
        .map(|(k, t)| (k, t.to_vec()))
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

/// `flags` with what a resume test adds: no intermediate checkpoint, a metrics row every
/// step, two threads.
pub fn resume_flags<'a>(flags: &[&'a str]) -> Vec<&'a str> {
    let mut all = flags.to_vec();
    all.extend([
        "--checkpoint-every",
        "0",
        "--log-every",
        "1",
        "--threads",
        "2",
    ]);
    all
}

/// Trains `name` `total` steps straight and `first` + resume + the rest, and checks that the
/// checkpoints and the logged metrics agree bit for bit. `new_only` are the arguments a
/// resume does not repeat (model and data). Returns the resumed run's directory.
pub fn resume_is_exact(
    name: &str,
    [first, total]: [u64; 2],
    new_only: &[&str],
    common: &[&str],
) -> Scratch {
    let (first, total) = (first.to_string(), total.to_string());
    let straight = temp(&format!("straight-{name}"));
    let mut args = vec!["train", "--steps", &total, "--out", s(&straight)];
    args.extend(new_only);
    args.extend(common);
    ok(&args);

    let split = temp(&format!("split-{name}"));
    let mut args = vec!["train", "--steps", &first, "--out", s(&split)];
    args.extend(new_only);
    args.extend(common);
    ok(&args);
    let mut args = vec!["train", "--steps", &total, "--resume", s(&split)];
    args.extend(common);
    ok(&args);

    let (a, b) = (
        tensors(&straight.join("checkpoint.safetensors")),
        tensors(&split.join("checkpoint.safetensors")),
    );
    assert_eq!(a.len(), b.len());
    for ((ka, va), (kb, vb)) in a.iter().zip(&b) {
        assert_eq!(ka, kb);
        assert!(
            va == vb,
            "{name}: {ka} differs between {total} straight steps and {first} + resume"
        );
    }
    let lines = std::fs::read_to_string(split.join("metrics.jsonl")).unwrap();
    let straight_lines = std::fs::read_to_string(straight.join("metrics.jsonl")).unwrap();
    let strip = |t: &str| -> Vec<String> {
        t.lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("seconds");
                v.to_string()
            })
            .collect()
    };
    let (split_lines, straight_lines) = (strip(&lines), strip(&straight_lines));
    assert!(!straight_lines.is_empty());
    for line in &straight_lines {
        assert!(
            split_lines.contains(line),
            "{name}: {line} was not logged identically after resuming"
        );
    }
    split
}

/// The width and height of an image file.
pub fn png_size(path: &Path) -> (u32, u32) {
    image::image_dimensions(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `gantry train --steps 1 --out RUN` with each case's flags and checks that it fails in
/// one line naming the case's text, and that nothing was written to `run`.
pub fn refused_before_writing(run: &Path, cases: &[(&[&str], &str)]) {
    for (flags, expected) in cases {
        let mut args = vec!["train", "--steps", "1", "--out", s(run)];
        args.extend_from_slice(flags);
        let err = fails_in_one_line(&args);
        assert!(err.contains(expected), "{flags:?}: {err}");
        assert!(!run.exists(), "{flags:?} wrote {}", run.display());
    }
}
