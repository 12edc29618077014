//! State dicts in `safetensors` files, with PyTorch's names and layouts.
//!
//! Writing is atomic (a temporary file in the same folder, synced, then renamed), so a crash
//! never leaves a half-written file where a good one was. Loading reports missing, unexpected
//! and mis-shaped keys by name; a strict load refuses any of them and changes nothing.

use crate::error::{NnError, Result};
use crate::module::{Module, named_params};
use gantry_tensor::Tensor;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Every parameter and buffer of `module` by dotted name.
pub fn state_dict(module: &dyn Module) -> Vec<(String, Tensor)> {
    named_params(module)
        .into_iter()
        .map(|(n, p)| (n, p.value()))
        .collect()
}

/// Writes named tensors (f32, little-endian) and string metadata to `path` atomically.
///
/// # Errors
/// If the folder cannot be written, or two tensors share a name.
pub fn write_safetensors(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let io = |source| NnError::Io {
        path: path.to_path_buf(),
        source,
    };
    // `safetensors::serialize` panics on a repeated name; refuse it here instead.
    let mut seen = std::collections::HashSet::new();
    if let Some((name, _)) = tensors.iter().find(|(n, _)| !seen.insert(n.as_str())) {
        return Err(NnError::Format {
            path: path.to_path_buf(),
            message: format!("tensor name {name} appears more than once"),
        });
    }
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(name, t)| {
            let data = t.as_slice().iter().flat_map(|v| v.to_le_bytes()).collect();
            (name.clone(), data, t.shape().to_vec())
        })
        .collect();
    let mut views = Vec::with_capacity(bytes.len());
    for (name, data, shape) in &bytes {
        let view =
            TensorView::new(Dtype::F32, shape.clone(), data).map_err(|e| NnError::Format {
                path: path.to_path_buf(),
                message: format!("tensor {name}: {e}"),
            })?;
        views.push((name.clone(), view));
    }
    let meta: HashMap<String, String> = metadata.clone().into_iter().collect();
    let meta = (!meta.is_empty()).then_some(meta);
    let serialized = safetensors::serialize(views, meta).map_err(|e| NnError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serialized)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// The temporary sibling a file is written to before it is renamed into place.
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

/// The contents of a safetensors file: tensors converted to f32, and its metadata.
#[derive(Debug, Default)]
pub struct TensorFile {
    /// Tensors by name.
    pub tensors: HashMap<String, Tensor>,
    /// String metadata (`__metadata__`).
    pub metadata: BTreeMap<String, String>,
}

/// Reads a safetensors file; F32, F64, F16, BF16 and integer tensors are converted to f32.
///
/// # Errors
/// If the file cannot be read, is truncated or malformed, or holds an unsupported dtype; the
/// message names the file (and the tensor).
pub fn read_safetensors(path: &Path) -> Result<TensorFile> {
    let bytes = std::fs::read(path).map_err(|source| NnError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let format = |message: String| NnError::Format {
        path: path.to_path_buf(),
        message,
    };
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| format(format!("not a valid safetensors file: {e}")))?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| format(e.to_string()))?;
    let metadata = header
        .metadata()
        .as_ref()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        let data = decode(view.dtype(), view.data()).ok_or_else(|| {
            format(format!(
                "tensor {name} has unsupported dtype {:?}",
                view.dtype()
            ))
        })?;
        tensors.insert(name, Tensor::from_vec(view.shape(), data));
    }
    Ok(TensorFile { tensors, metadata })
}

fn decode(dtype: Dtype, b: &[u8]) -> Option<Vec<f32>> {
    fn chunks<const N: usize>(b: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
        b.chunks_exact(N)
            .map(|c| c.try_into().expect("exact chunk"))
    }
    Some(match dtype {
        Dtype::F32 => chunks::<4>(b).map(f32::from_le_bytes).collect(),
        Dtype::F64 => chunks::<8>(b)
            .map(|c| f64::from_le_bytes(c) as f32)
            .collect(),
        Dtype::I64 => chunks::<8>(b)
            .map(|c| i64::from_le_bytes(c) as f32)
            .collect(),
        Dtype::I32 => chunks::<4>(b)
            .map(|c| i32::from_le_bytes(c) as f32)
            .collect(),
        Dtype::BF16 => chunks::<2>(b)
            .map(|c| f32::from_bits(u32::from(u16::from_le_bytes(c)) << 16))
            .collect(),
        Dtype::F16 => chunks::<2>(b)
            .map(|c| f16_to_f32(u16::from_le_bytes(c)))
            .collect(),
        _ => return None,
    })
}

fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f32::from(h & 0x3ff);
    sign * match exp {
        0 => frac * 2f32.powi(-24),
        31 if frac == 0.0 => f32::INFINITY,
        31 => f32::NAN,
        e => (1.0 + frac / 1024.0) * 2f32.powi(e - 15),
    }
}

/// What a load found that did not fit the model.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LoadReport {
    /// Model parameters the file does not hold.
    pub missing: Vec<String>,
    /// File tensors the model does not have.
    pub unexpected: Vec<String>,
    /// Names present in both with different shapes: `(name, model shape, file shape)`.
    pub mismatched: Vec<(String, Vec<usize>, Vec<usize>)>,
    /// Model names that [`LoadOptions::rename`] gave to more than one file key, with those
    /// keys (sorted): neither is loaded, as either choice would be a guess.
    pub ambiguous: Vec<(String, Vec<String>)>,
}

impl LoadReport {
    /// Whether everything matched.
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty()
            && self.unexpected.is_empty()
            && self.mismatched.is_empty()
            && self.ambiguous.is_empty()
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            parts.push(format!("missing keys {:?}", self.missing));
        }
        if !self.unexpected.is_empty() {
            parts.push(format!("unexpected keys {:?}", self.unexpected));
        }
        for (name, want, got) in &self.mismatched {
            parts.push(format!(
                "{name} has shape {got:?} in the file, the model expects {want:?}"
            ));
        }
        for (name, keys) in &self.ambiguous {
            parts.push(format!(
                "{name} is the new name of several file keys {keys:?}"
            ));
        }
        if parts.is_empty() {
            parts.push("all keys match".into());
        }
        write!(f, "{}", parts.join("; "))
    }
}

/// How to load a state dict.
#[derive(Default)]
pub struct LoadOptions<'a> {
    /// Refuse (and change nothing) on any missing, unexpected or mis-shaped key.
    pub strict: bool,
    /// Maps a file key to the model's name for it (`None` drops the key), for models whose
    /// names differ from the file's. Two keys mapped to one name load neither (see
    /// [`LoadReport::ambiguous`]).
    #[allow(clippy::type_complexity)] // a closure type, clearer spelled out than aliased
    pub rename: Option<&'a dyn Fn(&str) -> Option<String>>,
}

/// Loads named tensors into `module`: matching keys are copied, the rest reported.
///
/// # Errors
/// With `strict`, [`NnError::Mismatch`] (naming `source`) if the report is not clean; then no
/// parameter is changed.
pub fn load_tensors(
    module: &dyn Module,
    tensors: &HashMap<String, Tensor>,
    options: &LoadOptions<'_>,
    source: &Path,
) -> Result<LoadReport> {
    let mut renamed: HashMap<String, (&str, &Tensor)> = HashMap::new();
    let mut ambiguous: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, t) in tensors {
        let name = match options.rename {
            Some(f) => match f(key) {
                Some(n) => n,
                None => continue,
            },
            None => key.clone(),
        };
        match renamed.get(&name) {
            Some((first, _)) => ambiguous
                .entry(name)
                .or_insert_with(|| vec![first.to_string()])
                .push(key.clone()),
            None => {
                renamed.insert(name, (key, t));
            }
        }
    }
    let mut report = LoadReport::default();
    let params = named_params(module);
    let mut updates = Vec::new();
    for (name, p) in &params {
        if ambiguous.contains_key(name) {
            continue;
        }
        match renamed.remove(name.as_str()).map(|(_, t)| t) {
            None => report.missing.push(name.clone()),
            Some(t) if t.shape() != p.shape().as_slice() => {
                report
                    .mismatched
                    .push((name.clone(), p.shape(), t.shape().to_vec()));
            }
            Some(t) => updates.push((*p, t.clone())),
        }
    }
    for (name, mut keys) in ambiguous {
        renamed.remove(&name);
        keys.sort();
        report.ambiguous.push((name, keys));
    }
    report.unexpected = renamed
        .into_values()
        .map(|(key, _)| key.to_string())
        .collect();
    report.unexpected.sort();
    if options.strict && !report.is_clean() {
        return Err(NnError::Mismatch {
            path: source.to_path_buf(),
            report,
        });
    }
    for (p, t) in updates {
        p.set(t);
    }
    Ok(report)
}

/// Saves `module`'s state dict to `path` (atomically).
///
/// # Errors
/// If the file cannot be written.
pub fn save(module: &dyn Module, path: &Path) -> Result<()> {
    write_safetensors(path, &state_dict(module), &BTreeMap::new())
}

/// Loads `module`'s state dict from `path`.
///
/// # Errors
/// If the file cannot be read or parsed, or (with `strict`) does not match the model.
pub fn load(module: &dyn Module, path: &Path, options: &LoadOptions<'_>) -> Result<LoadReport> {
    let file = read_safetensors(path)?;
    load_tensors(module, &file.tensors, options, path)
}
