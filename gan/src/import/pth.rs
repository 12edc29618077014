//! PyTorch `.pth` files as `torch.save` writes them since 1.6: a zip archive (entries
//! stored, not compressed) holding `<name>/data.pkl`, the pickled object, and
//! `<name>/data/<key>`, one raw little-endian storage per key. A tensor in the pickle is
//! `torch._utils._rebuild_tensor_v2(persistent_id, offset, size, stride, ...)`, where the
//! persistent id names the storage's key and element type.

use super::ImportError;
use super::pickle::{self, Value};
use gantry_tensor::Tensor;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// Element types of torch storages, by the storage class name the pickle references.
#[derive(Clone, Copy, Debug)]
enum Dtype {
    F32,
    F64,
    F16,
    Bf16,
    I64,
    I32,
    U8,
    Bool,
}

impl Dtype {
    fn of(storage_class: &str) -> Option<Dtype> {
        Some(match storage_class {
            "FloatStorage" => Dtype::F32,
            "DoubleStorage" => Dtype::F64,
            "HalfStorage" => Dtype::F16,
            "BFloat16Storage" => Dtype::Bf16,
            "LongStorage" => Dtype::I64,
            "IntStorage" => Dtype::I32,
            "ByteStorage" => Dtype::U8,
            "BoolStorage" => Dtype::Bool,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            Dtype::F64 | Dtype::I64 => 8,
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F16 | Dtype::Bf16 => 2,
            Dtype::U8 | Dtype::Bool => 1,
        }
    }

    fn decode(self, b: &[u8]) -> f32 {
        match self {
            Dtype::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            Dtype::F64 => f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32,
            Dtype::I64 => i64::from_le_bytes(b.try_into().expect("8 bytes")) as f32,
            Dtype::I32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32,
            Dtype::Bf16 => f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16),
            Dtype::F16 => f16_to_f32(u16::from_le_bytes([b[0], b[1]])),
            Dtype::U8 | Dtype::Bool => f32::from(b[0]),
        }
    }
}

/// IEEE half precision to f32 (normals, subnormals, infinities, NaN).
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

struct Archive {
    zip: zip::ZipArchive<std::io::Cursor<Vec<u8>>>,
    /// The folder every entry sits in (`archive`, or the file's stem in older torch).
    prefix: String,
}

impl Archive {
    fn entry(&mut self, name: &str) -> Result<Vec<u8>, String> {
        let full = format!("{}{name}", self.prefix);
        let mut f = self
            .zip
            .by_name(&full)
            .map_err(|e| format!("entry {full}: {e}"))?;
        let mut out = Vec::with_capacity(f.size() as usize);
        f.read_to_end(&mut out)
            .map_err(|e| format!("entry {full}: {e}"))?;
        Ok(out)
    }
}

/// Reads every tensor of a `.pth` file, converted to f32, by its dotted name (nested dicts
/// are flattened with dots, as `state_dict()` names are).
///
/// # Errors
/// If the file is not a zip-format `torch.save` file, or holds something other than
/// (nested dicts of) tensors and plain values; the message names the file.
pub fn read_pth(path: &Path) -> Result<HashMap<String, Tensor>, ImportError> {
    let bad = |message: String| ImportError::Format {
        path: path.to_path_buf(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| bad(format!("not a torch.save zip archive ({e})")))?;
    let pkl = zip
        .file_names()
        .find(|n| n.ends_with("data.pkl") && n.matches('/').count() == 1)
        .map(str::to_string)
        .ok_or_else(|| bad("no <name>/data.pkl inside: not written by torch.save".into()))?;
    let prefix = pkl.trim_end_matches("data.pkl").to_string();
    let mut archive = Archive { zip, prefix };
    if let Ok(order) = archive.entry("byteorder")
        && order != b"little"
    {
        return Err(bad(format!(
            "storages are {} endian; only little endian is read",
            String::from_utf8_lossy(&order)
        )));
    }
    let root = pickle::parse(&archive.entry("data.pkl").map_err(bad)?)
        .map_err(|e| bad(format!("data.pkl: {}", e.0)))?;
    let mut tensors = HashMap::new();
    let mut storages = HashMap::new();
    collect(&root, "", &mut archive, &mut storages, &mut tensors).map_err(bad)?;
    if tensors.is_empty() {
        return Err(bad("holds no tensors (expected a state_dict)".into()));
    }
    Ok(tensors)
}

/// Walks `v`, turning every tensor into an entry of `out` named by its path.
fn collect(
    v: &Value,
    path: &str,
    archive: &mut Archive,
    storages: &mut HashMap<String, Vec<u8>>,
    out: &mut HashMap<String, Tensor>,
) -> Result<(), String> {
    match v {
        Value::Dict(items) => {
            for (k, v) in items {
                let key = match k {
                    Value::Str(s) => s.clone(),
                    Value::Int(i) => i.to_string(),
                    _ => continue,
                };
                let name = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                collect(v, &name, archive, storages, out)?;
            }
            Ok(())
        }
        Value::Call(f, args) => match f.as_ref() {
            Value::Global(m, n) if m == "torch._utils" && n == "_rebuild_tensor_v2" => {
                let t =
                    rebuild(args, archive, storages).map_err(|e| format!("tensor {path}: {e}"))?;
                out.insert(path.to_string(), t);
                Ok(())
            }
            // A saved nn.Parameter wraps its tensor.
            Value::Global(m, n) if m == "torch._utils" && n == "_rebuild_parameter" => {
                match args.first() {
                    Some(inner) => collect(inner, path, archive, storages, out),
                    None => Err(format!("parameter {path} has no tensor")),
                }
            }
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

fn int(v: Option<&Value>, what: &str) -> Result<i64, String> {
    match v {
        Some(Value::Int(i)) => Ok(*i),
        other => Err(format!("{what} is {other:?}, not an int")),
    }
}

fn ints(v: Option<&Value>, what: &str) -> Result<Vec<i64>, String> {
    match v {
        Some(Value::Tuple(items)) => items.iter().map(|i| int(Some(i), what)).collect(),
        other => Err(format!("{what} is {other:?}, not a tuple of ints")),
    }
}

/// `_rebuild_tensor_v2(storage, storage_offset, size, stride, ...)` -> a contiguous f32
/// tensor.
fn rebuild(
    args: &[Value],
    archive: &mut Archive,
    storages: &mut HashMap<String, Vec<u8>>,
) -> Result<Tensor, String> {
    let Some(Value::Persistent(id)) = args.first() else {
        return Err("its storage is not a persistent id".into());
    };
    let Value::Tuple(id) = id.as_ref() else {
        return Err("its persistent id is not a tuple".into());
    };
    let (class, key) = match (id.get(1), id.get(2)) {
        (Some(Value::Global(_, class)), Some(Value::Str(key))) => (class, key),
        _ => return Err(format!("unexpected persistent id {id:?}")),
    };
    let dtype = Dtype::of(class).ok_or_else(|| format!("unsupported storage type {class}"))?;
    let offset = int(args.get(1), "storage offset")?;
    let size = ints(args.get(2), "size")?;
    let stride = ints(args.get(3), "stride")?;
    if size.len() != stride.len() || offset < 0 || size.iter().chain(&stride).any(|&d| d < 0) {
        return Err(format!(
            "invalid layout: size {size:?}, stride {stride:?}, offset {offset}"
        ));
    }
    if !storages.contains_key(key) {
        let data = archive.entry(&format!("data/{key}"))?;
        storages.insert(key.clone(), data);
    }
    let data = &storages[key];
    let elems = data.len() / dtype.size();
    let shape: Vec<usize> = size.iter().map(|&d| d as usize).collect();
    let numel: usize = shape.iter().product();
    // The last element read must lie inside the storage.
    let last = offset as usize
        + shape
            .iter()
            .zip(&stride)
            .map(|(&d, &s)| d.saturating_sub(1) * s as usize)
            .sum::<usize>();
    if numel > 0 && last >= elems {
        return Err(format!(
            "reads element {last} of a storage of {elems} (file {key} is truncated?)"
        ));
    }
    let mut values = Vec::with_capacity(numel);
    let mut index = vec![0usize; shape.len()];
    for _ in 0..numel {
        let at = offset as usize
            + index
                .iter()
                .zip(&stride)
                .map(|(&i, &s)| i * s as usize)
                .sum::<usize>();
        let b = &data[at * dtype.size()..(at + 1) * dtype.size()];
        values.push(dtype.decode(b));
        // Row-major increment of the index.
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            if index[axis] < shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    Ok(Tensor::from_vec(&shape, values))
}
