//! Reading the PyTorch reference fixtures (`fixtures/torch/*.safetensors`, described in the
//! README beside them) in tests: tensors named `CASE/KEY`, each case's settings a JSON string
//! in the metadata under `case:CASE`.

use gantry_tensor::Tensor;
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::Path;

/// The repository's copy of the operator fixtures, so the parity tests run anywhere.
pub const OPS_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../fixtures/torch/ops.safetensors"
);

/// One fixture file held in memory, with its metadata parsed once.
pub struct Fixtures {
    path: String,
    bytes: Vec<u8>,
    metadata: HashMap<String, String>,
}

impl Fixtures {
    /// Reads and checks the file at `path`.
    ///
    /// # Panics
    /// If the file cannot be read or is not a valid safetensors file; the message names it.
    pub fn open(path: &str) -> Fixtures {
        let bytes = std::fs::read(Path::new(path))
            .unwrap_or_else(|e| panic!("fixtures: cannot read {path}: {e}"));
        let (_, header) = SafeTensors::read_metadata(&bytes)
            .unwrap_or_else(|e| panic!("fixtures: {path} is not a safetensors file: {e}"));
        let metadata = header.metadata().clone().unwrap_or_default();
        Fixtures {
            path: path.to_owned(),
            bytes,
            metadata,
        }
    }

    /// The tensor `CASE/KEY` as an `f32` tensor, or `None` if the file does not hold it.
    ///
    /// # Panics
    /// If the tensor is stored with a dtype other than `F32`.
    pub fn tensor(&self, name: &str) -> Option<Tensor> {
        let st = SafeTensors::deserialize(&self.bytes).expect("checked when opened");
        let view = st.tensor(name).ok()?;
        assert_eq!(
            view.dtype(),
            Dtype::F32,
            "fixtures: {name} in {} is {:?}, expected F32",
            self.path,
            view.dtype()
        );
        let data = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Some(Tensor::from_vec(view.shape(), data))
    }

    /// The tensor `CASE/KEY`, which the case must have.
    ///
    /// # Panics
    /// If it is missing.
    #[track_caller]
    pub fn get(&self, case: &str, key: &str) -> Tensor {
        self.tensor(&format!("{case}/{key}"))
            .unwrap_or_else(|| panic!("fixtures: {} has no tensor {case}/{key}", self.path))
    }

    /// The settings of `case` (the JSON under `case:CASE` in the metadata).
    ///
    /// # Panics
    /// If the case has no settings or they are not JSON.
    #[track_caller]
    pub fn settings(&self, case: &str) -> serde_json::Value {
        let raw = self
            .metadata
            .get(&format!("case:{case}"))
            .unwrap_or_else(|| panic!("fixtures: {} has no settings for {case}", self.path));
        serde_json::from_str(raw)
            .unwrap_or_else(|e| panic!("fixtures: settings of {case} are not JSON: {e}"))
    }

    /// The names of the cases whose name starts with `prefix`, sorted.
    pub fn cases(&self, prefix: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .metadata
            .keys()
            .filter_map(|k| k.strip_prefix("case:"))
            .filter(|name| name.starts_with(prefix))
            .map(str::to_owned)
            .collect();
        names.sort();
        names
    }
}

/// The largest absolute difference between `got` and the reference `want`, and the largest
/// magnitude of the reference. NaN anywhere counts as an infinite difference.
///
/// # Panics
/// If the shapes differ.
#[track_caller]
pub fn max_errors(got: &Tensor, want: &Tensor) -> (f32, f32) {
    assert_eq!(got.shape(), want.shape(), "shapes differ");
    let diff = got
        .to_vec()
        .iter()
        .zip(want.to_vec())
        .map(|(&g, w)| {
            let d = (g - w).abs();
            if d.is_nan() { f32::INFINITY } else { d }
        })
        .fold(0.0, f32::max);
    let scale = want.to_vec().iter().fold(0.0f32, |m, v| m.max(v.abs()));
    (diff, scale)
}
