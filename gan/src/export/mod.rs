//! ONNX export of generators, so that a model trained with gantry runs in any ONNX runtime.
//!
//! [`to_onnx`] writes the generator of any [`Gan`] as an ONNX model (opset 17, IR version 8)
//! whose inputs and outputs are those of the PyTorch networks the models follow, with the
//! batch size `N` left free:
//!
//! | model   | inputs                                                           | output                          |
//! |---------|------------------------------------------------------------------|---------------------------------|
//! | mlp     | `z` f32 `[N, latent]`                                            | `sample` `[N, sample_shape...]` |
//! | dcgan   | `z` f32 `[N, nz, 1, 1]` (pytorch/examples) or `[N, nz]` (28x28)   | `image` `[N, C, H, W]`          |
//! | cdcgan  | `z` as dcgan, `label` int64 `[N]` (class indices)                | `image` `[N, C, H, W]`          |
//! | pix2pix | `image` f32 `[N, C_in, H, W]` in `[-1, 1]`                       | `translated` `[N, C_out, H, W]` |
//!
//! Images come out in `[-1, 1]` (the generators end in `tanh`).
//!
//! # Test-time behaviour
//! Batch normalisation is written in one of two ways, chosen by [`TestMode`]:
//! [`TestMode::Eval`] normalises with the running statistics (PyTorch's `eval()`), and
//! [`TestMode::Paper`] normalises each batch with its own statistics, as pix2pix does at test
//! time (Isola et al. keep dropout and batch statistics on). ONNX has no way to draw dropout
//! masks reproducibly, so `Paper` writes dropout as its expectation, the identity (gantry's
//! dropout rescales what it keeps by `1 / (1 - p)`): every dropout layer passes its mean, where
//! PyTorch in `train()` would draw one random mask.
//!
//! ```
//! use gantry_gan::export::{TestMode, to_onnx};
//! use gantry_gan::models::{DcganConfig, ModelConfig};
//! use rand::SeedableRng;
//!
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let config = DcganConfig { ngf: 8, ndf: 8, ..DcganConfig::dcgan64(3) };
//! let gan = ModelConfig::Dcgan(config).build(&mut rng).unwrap();
//! let onnx = to_onnx(gan.as_ref(), TestMode::Eval).unwrap();
//! assert_eq!(onnx.inputs[0].name, "z");
//! assert_eq!(onnx.outputs[0].shape, vec![None, Some(3), Some(64), Some(64)]);
//! assert!(onnx.bytes.len() > 4 * 100 * 64); // the weights are inside
//! ```

mod generators;
mod graph;
mod proto;

use crate::models::{Gan, ModelConfig};
use gantry_nn::state_dict::state_dict;
use graph::{Graph, NormStats};
use prost::Message;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The ONNX operator set version the files use.
pub const OPSET: i64 = 17;

/// The ONNX IR version that goes with [`OPSET`].
pub const IR_VERSION: i64 = 8;

/// Which test-time behaviour the exported graph has (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestMode {
    /// Batch norm with running statistics, no dropout (PyTorch's `eval()`).
    Eval,
    /// Batch norm with each batch's own statistics, as the pix2pix paper at test time;
    /// dropout as its expectation (the identity).
    Paper,
}

impl TestMode {
    /// One sentence saying what the graph does at test time, for the user.
    pub fn describe(self) -> &'static str {
        match self {
            TestMode::Eval => {
                "eval: batch norm uses the running statistics, no dropout (PyTorch's eval())"
            }
            TestMode::Paper => {
                "paper: batch norm uses each batch's own statistics, as the pix2pix paper at test time; dropout is written as its expectation (the identity), since ONNX cannot draw dropout masks reproducibly"
            }
        }
    }
}

/// What went wrong exporting.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The exporter and the model disagree about the network (a bug, or a checkpoint of a
    /// model version this exporter does not know).
    #[error("cannot export the generator: {0}")]
    Architecture(String),
    /// The model has no ONNX writer yet.
    #[error(
        "cannot export the generator: {0} generators have no ONNX writer yet (mlp, dcgan, cdcgan, pix2pix and wgan-gp do)"
    )]
    Unsupported(&'static str),
    /// The file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// A graph input or output: name, element type and shape (`None`: the free batch size).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// The name runtimes feed or fetch it by.
    pub name: String,
    /// `"float32"` or `"int64"`.
    pub dtype: &'static str,
    /// The dimensions; `None` is the batch size `N`.
    pub shape: Vec<Option<usize>>,
}

/// An exported generator: the encoded ONNX model and its signature.
#[derive(Clone, Debug)]
pub struct OnnxModel {
    /// The `.onnx` file's bytes.
    pub bytes: Vec<u8>,
    /// The graph's inputs.
    pub inputs: Vec<Signature>,
    /// The graph's outputs.
    pub outputs: Vec<Signature>,
    /// The test-time behaviour written.
    pub mode: TestMode,
}

fn signatures(infos: &[proto::ValueInfoProto]) -> Vec<Signature> {
    infos
        .iter()
        .map(|v| {
            let t = v
                .r#type
                .as_ref()
                .and_then(|t| t.tensor_type.as_ref())
                .expect("the builder types every input and output");
            let shape = t
                .shape
                .as_ref()
                .map(|s| {
                    s.dim
                        .iter()
                        .map(|d| match d.value {
                            Some(proto::DimensionValue::DimValue(n)) => Some(n as usize),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            Signature {
                name: v.name.clone(),
                dtype: if t.elem_type == proto::data_type::INT64 {
                    "int64"
                } else {
                    "float32"
                },
                shape,
            }
        })
        .collect()
}

/// Writes `gan`'s generator as an ONNX model with the test-time behaviour `mode`.
///
/// # Errors
/// [`ExportError::Architecture`] if the generator's parameters do not match its
/// configuration's network.
pub fn to_onnx(gan: &dyn Gan, mode: TestMode) -> Result<OnnxModel, ExportError> {
    let weights: HashMap<String, _> = state_dict(gan.generator()).into_iter().collect();
    let stats = match mode {
        TestMode::Eval => NormStats::Running,
        TestMode::Paper => NormStats::Batch,
    };
    let mut g = Graph::new(&weights);
    let config = gan.config();
    match &config {
        ModelConfig::Mlp(c) => generators::mlp(&mut g, c)?,
        ModelConfig::Dcgan(c) => generators::dcgan(&mut g, c, stats)?,
        // The same generator as DCGAN's.
        ModelConfig::WganGp(c) => generators::dcgan(&mut g, &c.dcgan, stats)?,
        ModelConfig::Cdcgan(c) => generators::cdcgan(&mut g, c, stats)?,
        ModelConfig::Pix2Pix(c) => generators::pix2pix(&mut g, c, stats)?,
        ModelConfig::BigGan(_) => return Err(ExportError::Unsupported("biggan")),
        ModelConfig::Pix2PixHd(_) => return Err(ExportError::Unsupported("pix2pixhd")),
        ModelConfig::Caae(_) => return Err(ExportError::Unsupported("caae")),
        ModelConfig::ProGan(_) => {
            return Err(ExportError::Architecture(
                "progan generators have no ONNX writer yet: the graph changes as the network grows (its resolution and fade-in depend on the training step)".into(),
            ));
        }
    }
    let doc = format!(
        "gantry {} generator; test-time behaviour {}",
        config.kind(),
        mode.describe()
    );
    let graph = g.finish(&format!("gantry_{}_generator", config.kind()), &doc)?;
    let (inputs, outputs) = (signatures(&graph.input), signatures(&graph.output));
    let model = proto::ModelProto {
        ir_version: IR_VERSION,
        producer_name: "gantry".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: doc,
        graph: Some(graph),
        opset_import: vec![proto::OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
    };
    Ok(OnnxModel {
        bytes: model.encode_to_vec(),
        inputs,
        outputs,
        mode,
    })
}

/// [`to_onnx`], written to `path`.
///
/// # Errors
/// As [`to_onnx`], and [`ExportError::Io`] if the file cannot be written.
pub fn write_onnx(gan: &dyn Gan, mode: TestMode, path: &Path) -> Result<OnnxModel, ExportError> {
    let model = to_onnx(gan, mode)?;
    std::fs::write(path, &model.bytes).map_err(|source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(model)
}
