//! Shared helpers of the integration tests: the PyTorch fixtures (read with the crate's own
//! safetensors reader) and a comparison report that prints every measured error and fails
//! once, listing each quantity over its tolerance.
#![allow(dead_code)] // each test target uses a subset

use gantry_nn::state_dict::{TensorFile, read_safetensors};
use gantry_tensor::Tensor;
use std::path::{Path, PathBuf};

/// The repository's copy of a PyTorch fixture file (`fixtures/torch/NAME`).
pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("fixtures")
        .join("torch")
        .join(name)
}

/// A fixture file: tensors named `CASE/KEY`, settings as JSON under `case:CASE`.
pub struct Fixtures {
    /// Where it was read from, for messages.
    pub path: PathBuf,
    /// Its contents.
    pub file: TensorFile,
}

impl Fixtures {
    /// Reads `fixtures/torch/NAME`.
    ///
    /// # Panics
    /// If it cannot be read.
    #[track_caller]
    pub fn open(name: &str) -> Fixtures {
        let path = fixture_path(name);
        let file = read_safetensors(&path).unwrap_or_else(|e| panic!("fixtures: {e}"));
        Fixtures { path, file }
    }

    /// The tensor `CASE/KEY`.
    ///
    /// # Panics
    /// If the file does not hold it.
    #[track_caller]
    pub fn get(&self, case: &str, key: &str) -> Tensor {
        let name = format!("{case}/{key}");
        self.file
            .tensors
            .get(&name)
            .unwrap_or_else(|| panic!("fixtures: {} has no tensor {name}", self.path.display()))
            .clone()
    }

    /// The settings of `case` (JSON in the metadata under `case:CASE`).
    ///
    /// # Panics
    /// If absent or not JSON.
    #[track_caller]
    pub fn settings(&self, case: &str) -> serde_json::Value {
        self.json(&format!("case:{case}"))
    }

    /// A metadata entry parsed as JSON.
    ///
    /// # Panics
    /// If absent or not JSON.
    #[track_caller]
    pub fn json(&self, key: &str) -> serde_json::Value {
        let raw =
            self.file.metadata.get(key).unwrap_or_else(|| {
                panic!("fixtures: {} has no metadata {key}", self.path.display())
            });
        serde_json::from_str(raw).unwrap_or_else(|e| panic!("fixtures: metadata {key}: {e}"))
    }

    /// The names `CASE/PREFIX...` in the file, with `CASE/PREFIX` stripped, sorted.
    pub fn keys_under(&self, prefix: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .file
            .tensors
            .keys()
            .filter_map(|k| k.strip_prefix(prefix).map(str::to_string))
            .collect();
        keys.sort();
        keys
    }
}

/// A float setting.
#[track_caller]
pub fn setting_f32(s: &serde_json::Value, key: &str) -> f32 {
    s[key]
        .as_f64()
        .unwrap_or_else(|| panic!("setting {key} missing or not a number in {s}")) as f32
}

/// Collects comparisons against reference tensors; prints each measured error and fails once
/// at the end, listing every comparison over its tolerance.
#[derive(Default)]
pub struct Report {
    failures: Vec<String>,
    compared: usize,
    /// The worst relative error per group (the text before the first space of a label).
    pub worst: Vec<(String, f32)>,
}

impl Report {
    /// Compares `got` with `want` (same number of elements; shapes may differ by reshaping,
    /// as `[N, 1, 1, 1]` logits against PyTorch's flattened `[N]`). The error is
    /// `max |got - want| / max(1, max |want|)`; it must be at most `tol`.
    #[track_caller]
    pub fn check(&mut self, label: &str, got: &Tensor, want: &Tensor, tol: f32) -> f32 {
        self.compare(label, got, want, tol, 1.0)
    }

    /// As [`Report::check`] with the error relative to `max |want|` itself, not floored at 1:
    /// for gradients, whose scale is arbitrary and often far below 1.
    #[track_caller]
    pub fn check_rel(&mut self, label: &str, got: &Tensor, want: &Tensor, tol: f32) -> f32 {
        self.compare(label, got, want, tol, f32::MIN_POSITIVE)
    }

    #[track_caller]
    fn compare(&mut self, label: &str, got: &Tensor, want: &Tensor, tol: f32, floor: f32) -> f32 {
        assert_eq!(
            got.len(),
            want.len(),
            "{label}: {:?} against reference {:?}",
            got.shape(),
            want.shape()
        );
        let (g, w) = (got.as_slice(), want.as_slice());
        let diff = g
            .iter()
            .zip(w.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, |m, d| if d.is_nan() { f32::NAN } else { m.max(d) });
        let scale = w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let rel = diff / scale.max(floor);
        println!("{label:44} max|diff| {diff:9.3e}  max|ref| {scale:9.3e}  rel {rel:9.3e}");
        self.compared += 1;
        let group = label.split_whitespace().next().unwrap_or(label).to_string();
        match self.worst.iter_mut().find(|(g, _)| *g == group) {
            Some((_, w)) => *w = w.max(rel),
            None => self.worst.push((group, rel)),
        }
        if rel.is_nan() || rel > tol {
            self.failures
                .push(format!("{label}: relative error {rel:e} > {tol:e}"));
        }
        rel
    }

    /// Compares scalars.
    #[track_caller]
    pub fn check_scalar(&mut self, label: &str, got: f32, want: f32, tol: f32) -> f32 {
        self.check(label, &Tensor::scalar(got), &Tensor::scalar(want), tol)
    }

    /// Prints the worst error per group; fails if any comparison was over tolerance or none
    /// was made.
    #[track_caller]
    pub fn finish(self) {
        for (group, rel) in &self.worst {
            println!("worst {group:38} rel {rel:9.3e}");
        }
        assert!(self.compared > 0, "no comparison was made");
        assert!(self.failures.is_empty(), "{}", self.failures.join("\n"));
    }
}
