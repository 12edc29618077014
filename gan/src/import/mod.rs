//! Importing PyTorch checkpoints of the networks gantry's models follow: pytorch/examples'
//! DCGAN (`netG_epoch_N.pth`, `netD_epoch_N.pth`) and junyanz's pix2pix
//! (`latest_net_G.pth`, `latest_net_D.pth`), as `.pth` files or as safetensors files with
//! PyTorch's names.
//!
//! [`read_state_dict`] reads either format; [`infer_config`] reads the model's sizes off the
//! weights' shapes; [`import`] builds the gantry model and loads the weights strictly, so a
//! missing, unexpected or mis-shaped tensor is an error that names it.
//!
//! ```no_run
//! use gantry_gan::import::{TorchModel, import, infer_config, read_state_dict};
//! use std::path::Path;
//!
//! let g = read_state_dict(Path::new("netG_epoch_24.pth")).unwrap();
//! let config = infer_config(TorchModel::Dcgan, &g, None).unwrap();
//! let gan = import(&config, &g, None).unwrap();
//! # let _ = gan;
//! ```

pub mod names;
mod pickle;
mod pth;

pub use pth::read_pth;

use crate::error::GanError;
use crate::models::{DcganConfig, DcganVariant, Gan, ModelConfig, Pix2PixConfig};
use gantry_nn::state_dict::{LoadOptions, load_tensors, read_safetensors};
use gantry_tensor::Tensor;
use rand::SeedableRng;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What went wrong importing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file is not a `.pth` or safetensors file of the expected kind.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The weights do not fit the network (a size flag or the model kind is wrong).
    #[error("{0}")]
    Mismatch(String),
    /// Building or loading the model failed.
    #[error(transparent)]
    Gan(#[from] GanError),
}

/// The PyTorch projects whose checkpoints come in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TorchModel {
    /// pytorch/examples `dcgan/main.py`: `Generator` and `Discriminator`, `self.main`.
    Dcgan,
    /// junyanz/pytorch-CycleGAN-and-pix2pix: `UnetGenerator` and `NLayerDiscriminator`.
    Pix2Pix,
}

/// A state dict with one file's tensors, by name.
pub type StateDict = HashMap<String, Tensor>;

/// Reads the tensors of a `.pth` (zip written by `torch.save`) or `.safetensors` file, told
/// apart by their first bytes.
///
/// # Errors
/// If the file cannot be read or is neither format.
pub fn read_state_dict(path: &Path) -> Result<StateDict, ImportError> {
    let mut head = [0u8; 4];
    let read = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .map_err(|source| ImportError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if read == 4 && &head == b"PK\x03\x04" {
        return read_pth(path);
    }
    if read >= 3 && head[..3] == [0x80, 0x02, 0x8a] {
        return Err(ImportError::Format {
            path: path.to_path_buf(),
            message: "a legacy (pre-1.6) torch.save file; re-save it with a newer torch: torch.save(torch.load(f), f)".into(),
        });
    }
    read_safetensors(path)
        .map(|f| f.tensors)
        .map_err(|e| ImportError::Format {
            path: path.to_path_buf(),
            message: format!("neither a torch.save zip (.pth) nor a safetensors file ({e})"),
        })
}

/// `state` with gantry's names (PyTorch names mapped; counters dropped).
fn renamed(state: &StateDict, rename: impl Fn(&str) -> Option<String>) -> StateDict {
    state
        .iter()
        .filter_map(|(k, t)| rename(k).map(|n| (n, t.clone())))
        .collect()
}

fn shape<'a>(state: &'a StateDict, name: &str, file: &str) -> Result<&'a [usize], ImportError> {
    state.get(name).map(|t| t.shape()).ok_or_else(|| {
        ImportError::Mismatch(format!(
            "the {file} has no {name}: is it a checkpoint of the model given by --model?"
        ))
    })
}

/// Numbered 4-D weights `{i}.weight` of a Sequential, in order.
fn conv_indices(state: &StateDict) -> Vec<usize> {
    let mut v: Vec<usize> = state
        .iter()
        .filter(|(k, t)| t.shape().len() == 4 && k.ends_with(".weight"))
        .filter_map(|(k, _)| k.trim_end_matches(".weight").parse().ok())
        .collect();
    v.sort_unstable();
    v
}

/// Reads the network's sizes off the weights: for DCGAN the latent size, widths, channels
/// and image size (one stride-2 block per doubling from 4x4); for pix2pix the channels,
/// widths, the U-Net's depth (its image size is `2^depth`) and the PatchGAN's layers. Without
/// a discriminator its width is taken equal to the generator's.
///
/// # Errors
/// If a weight the networks must have is missing.
pub fn infer_config(
    model: TorchModel,
    generator: &StateDict,
    discriminator: Option<&StateDict>,
) -> Result<ModelConfig, ImportError> {
    match model {
        TorchModel::Dcgan => {
            let g = renamed(generator, names::dcgan);
            let convs = conv_indices(&g);
            let (Some(&first), Some(&last)) = (convs.first(), convs.last()) else {
                return Err(ImportError::Mismatch(
                    "the generator has no main.N.weight convolutions: not a pytorch/examples DCGAN"
                        .into(),
                ));
            };
            let s0 = shape(&g, &format!("{first}.weight"), "generator")?;
            let blocks = convs.len() - 1;
            let channels = shape(&g, &format!("{last}.weight"), "generator")?[1];
            let ngf = s0[1] >> blocks.saturating_sub(1);
            let ndf = match discriminator {
                Some(d) => shape(&renamed(d, names::dcgan), "0.weight", "discriminator")?[0],
                None => ngf,
            };
            Ok(ModelConfig::Dcgan(DcganConfig {
                variant: DcganVariant::Dcgan64,
                image_size: 4 << blocks,
                channels,
                nz: s0[0],
                ngf,
                ndf,
                pack: 1,
                d_dropout: None,
            }))
        }
        TorchModel::Pix2Pix => {
            // The depth is the level whose innermost upconv the names reach.
            let n = (1..=12)
                .rev()
                .find(|&n| {
                    let innermost = format!("up.{}.weight", n - 1);
                    generator.keys().any(|k| {
                        names::pix2pix_generator(k, n).as_deref() == Some(innermost.as_str())
                    })
                })
                .ok_or_else(|| {
                    ImportError::Mismatch(
                        "the generator has no model.model... weights: not a junyanz UnetGenerator"
                            .into(),
                    )
                })?;
            let g = renamed(generator, |k| names::pix2pix_generator(k, n));
            let down0 = shape(&g, "down.0.weight", "generator")?;
            let up0 = shape(&g, "up.0.weight", "generator")?;
            let mut c = Pix2PixConfig::new(1 << n);
            c.in_channels = down0[1];
            c.ngf = down0[0];
            c.out_channels = up0[1];
            c.ndf = c.ngf;
            if let Some(d) = discriminator {
                let d = renamed(d, names::pix2pix_discriminator);
                c.ndf = shape(&d, "0.weight", "discriminator")?[0];
                c.d_layers = conv_indices(&d).len().saturating_sub(2);
            }
            // Dropout layers hold no weights; junyanz trains pix2pix with them (the default).
            c.dropout = true;
            Ok(ModelConfig::Pix2Pix(c))
        }
    }
}

/// A map from PyTorch's parameter names to gantry's (see `names.rs`).
type Rename = dyn Fn(&str) -> Option<String>;

/// Builds `config`'s model and loads the PyTorch weights into it: the generator's, and the
/// discriminator's if given (else it keeps its fresh initialisation). Both loads are strict.
///
/// # Errors
/// [`ImportError::Mismatch`] naming the missing, unexpected or mis-shaped tensors.
pub fn import(
    config: &ModelConfig,
    generator: &StateDict,
    discriminator: Option<&StateDict>,
) -> Result<Box<dyn Gan>, ImportError> {
    let gan = config.build(&mut rand_chacha::ChaCha8Rng::seed_from_u64(0))?;
    let (g_names, d_names): (Box<Rename>, Box<Rename>) = match config {
        ModelConfig::Dcgan(c) if c.variant == DcganVariant::Dcgan64 => {
            (Box::new(names::dcgan), Box::new(names::dcgan))
        }
        ModelConfig::Pix2Pix(c) => {
            let n = c.num_downs();
            (
                Box::new(move |k| names::pix2pix_generator(k, n)),
                Box::new(names::pix2pix_discriminator),
            )
        }
        other => {
            return Err(ImportError::Mismatch(format!(
                "PyTorch checkpoints import into dcgan (pytorch/examples' network) and pix2pix, not {}",
                other.kind()
            )));
        }
    };
    let load = |module: &dyn gantry_nn::Module, state: &StateDict, rename: &Rename, which: &str| {
        let options = LoadOptions {
            strict: true,
            rename: Some(rename),
        };
        load_tensors(module, state, &options, Path::new(which)).map_err(|e| {
            ImportError::Mismatch(format!(
                "{e} (is it the network --model names, at these sizes?)"
            ))
        })
    };
    load(gan.generator(), generator, g_names.as_ref(), "generator")?;
    if let Some(d) = discriminator {
        load(gan.discriminator(), d, d_names.as_ref(), "discriminator")?;
    }
    Ok(gan)
}
