//! Checkpoints: everything needed to resume training exactly, in one safetensors file.
//!
//! Tensors: the generator (`G.*`) and discriminator (`D.*`) state dicts, both optimizers'
//! state (`opt_g.*`, `opt_d.*`), the generator's averaged weights where training keeps an
//! average (`ema.*`) and any fixed tensors the caller keeps (the sample noise).
//! Metadata: the model and training configurations as JSON, the step counter, the noise
//! stream's position, and a free-form JSON object for the caller (where the data iterator
//! stands). The file is written to a temporary sibling and renamed, so a crash while saving
//! leaves the previous checkpoint intact.

use crate::error::{GanError, Result};
use crate::models::ModelConfig;
use crate::objective::TermSpec;
use crate::train::{TrainConfig, Trainer};
use gantry_nn::state_dict::{
    LoadOptions, load_tensors, read_safetensors, state_dict, write_safetensors,
};
use gantry_tensor::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

const FORMAT: &str = "gantry-checkpoint-1";

/// The widest convolutional layer (`ngf`, `ndf`) gantry builds: a 64x64 DCGAN at this width
/// holds about 0.7e9 parameters (2.9 GB), far past what trains on a CPU.
pub const MAX_CONV_WIDTH: usize = 1024;
/// The widest latent code or embedding (`nz`, `latent`, `embed_dim`).
pub const MAX_LATENT: usize = 4096;
/// The widest hidden layer of an MLP.
pub const MAX_HIDDEN: usize = 16384;
/// The most hidden layers of an MLP player.
pub const MAX_LAYERS: usize = 16;
/// The most linear pieces of a maxout unit in an MLP discriminator.
pub const MAX_MAXOUT: usize = 64;
/// The most parameters of one MLP player (2^28, 1 GiB of `f32`).
pub const MAX_MLP_PARAMS: u128 = 1 << 28;
/// The largest image side of any model, and of the data pipeline.
pub const MAX_IMAGE_SIZE: usize = 1024;
/// The most channels of an image.
pub const MAX_CHANNELS: usize = 16;
/// The most classes of a label-conditional model (its discriminator sees one plane each).
pub const MAX_CLASSES: usize = 1000;
/// The most samples one discriminator input packs (PacGAN).
pub const MAX_PACK: usize = 64;
/// The most discriminator steps per generator step (Algorithm 1's `k`).
pub const MAX_K: usize = 100;

/// Refuses a model configuration with a size beyond the limits above, before anything is
/// built: a size comes from a flag or a checkpoint's metadata, and an absurd one would
/// otherwise abort the process with an allocation of terabytes. The model's own validation
/// (positive widths, supported image sizes) still runs when it is built.
///
/// # Errors
/// [`GanError::Config`] naming the field, its value and the limit.
pub fn check_sizes(config: &ModelConfig) -> Result<()> {
    let model = config.kind();
    let at_most = |field: &str, value: usize, limit: usize| {
        if value > limit {
            Err(crate::error::config_error(
                model,
                format!("{field} {value} is larger than the limit {limit}"),
            ))
        } else {
            Ok(())
        }
    };
    at_most("pack", config.pack(), MAX_PACK)?;
    match config {
        ModelConfig::Mlp(c) => {
            at_most("latent", c.latent, MAX_LATENT)?;
            at_most("sample_shape length", c.sample_shape.len(), 3)?;
            for &side in &c.sample_shape {
                at_most("sample_shape entry", side, MAX_IMAGE_SIZE)?;
            }
            for hidden in [&c.g_hidden, &c.d_hidden] {
                at_most("number of hidden layers", hidden.len(), MAX_LAYERS)?;
                for &h in hidden {
                    at_most("hidden width", h, MAX_HIDDEN)?;
                }
            }
            at_most("d_maxout", c.d_maxout, MAX_MAXOUT)?;
            let data: u128 = c.sample_shape.iter().map(|&d| d as u128).product();
            // `pieces` linear maps per hidden unit (1 for plain layers).
            let weights = |input: u128, hidden: &[usize], output: u128, pieces: u128| {
                let mut widths = vec![input];
                widths.extend(hidden.iter().map(|&h| h as u128));
                let last = widths.len() - 1;
                widths.push(output);
                widths
                    .windows(2)
                    .enumerate()
                    .map(|(i, w)| (w[0] + 1) * w[1] * if i < last { pieces } else { 1 })
                    .sum::<u128>()
            };
            let g = weights(c.latent as u128, &c.g_hidden, data, 1);
            let d = weights(
                data * c.pack as u128,
                &c.d_hidden,
                1,
                c.d_maxout.max(1) as u128,
            );
            at_most(
                "parameter count of a player",
                g.max(d).min(usize::MAX as u128) as usize,
                MAX_MLP_PARAMS as usize,
            )?;
        }
        ModelConfig::Dcgan(c) => dcgan_sizes(c, &at_most)?,
        ModelConfig::WganGp(c) => dcgan_sizes(&c.dcgan, &at_most)?,
        ModelConfig::BigGan(c) => {
            at_most("image_size", c.image_size, MAX_IMAGE_SIZE)?;
            at_most("channels", c.channels, MAX_CHANNELS)?;
            at_most("classes", c.classes, MAX_CLASSES)?;
            at_most("z_chunk", c.z_chunk, MAX_LATENT)?;
            at_most("shared_dim", c.shared_dim, MAX_LATENT)?;
            // G's first blocks are 2^B ch wide.
            let widest = c.ch.saturating_mul(c.image_size / 4);
            at_most("ch x image_size / 4", widest, MAX_CONV_WIDTH)?;
        }
        ModelConfig::ProGan(c) => {
            at_most("image_size", c.image_size, MAX_IMAGE_SIZE)?;
            at_most("channels", c.channels, MAX_CHANNELS)?;
            at_most("z_dim", c.z_dim, MAX_LATENT)?;
            at_most("fmap_max", c.fmap_max, MAX_CONV_WIDTH)?;
        }
        ModelConfig::Cdcgan(c) => {
            dcgan_sizes(&c.dcgan, &at_most)?;
            at_most("num_classes", c.num_classes, MAX_CLASSES)?;
            at_most("embed_dim", c.embed_dim, MAX_LATENT)?;
        }
        ModelConfig::Pix2Pix(c) => {
            at_most("image_size", c.image_size, MAX_IMAGE_SIZE)?;
            at_most("in_channels", c.in_channels, MAX_CHANNELS)?;
            at_most("out_channels", c.out_channels, MAX_CHANNELS)?;
            at_most("ngf", c.ngf, MAX_CONV_WIDTH)?;
            at_most("ndf", c.ndf, MAX_CONV_WIDTH)?;
            // Each PatchGAN layer halves the image; past log2(size) - 2 nothing is left.
            let layers = c.image_size.max(4).ilog2() as usize - 2;
            at_most("d_layers", c.d_layers, layers)?;
        }
        ModelConfig::Pix2PixHd(c) => {
            at_most("image_size", c.image_size, MAX_IMAGE_SIZE)?;
            at_most("in_channels", c.in_channels, MAX_CHANNELS)?;
            at_most("out_channels", c.out_channels, MAX_CHANNELS)?;
            at_most("ndf", c.ndf, MAX_CONV_WIDTH)?;
            at_most("d_layers", c.d_layers, 8)?;
            at_most("n_blocks_global", c.n_blocks_global, 32)?;
            at_most("n_blocks_local", c.n_blocks_local, 32)?;
            // The deepest global layer is ngf * 2^(enhancers + n_downsample_global) wide.
            let shift = c.enhancers.saturating_add(c.n_downsample_global);
            let widest = c
                .ngf
                .checked_shl(shift.min(31) as u32)
                .unwrap_or(usize::MAX);
            at_most(
                "ngf x 2^(enhancers + n_downsample_global)",
                widest,
                MAX_CONV_WIDTH,
            )?;
        }
        ModelConfig::Caae(c) => {
            at_most("image_size", c.image_size, MAX_IMAGE_SIZE)?;
            at_most("channels", c.channels, MAX_CHANNELS)?;
            at_most("ages", c.ages, MAX_CLASSES)?;
            at_most("z_dim", c.z_dim, MAX_LATENT)?;
            // G's 8x8 map is ngf * 2^layers wide, D_img's last convolution 8 ndf.
            let layers = (c.image_size / 8).max(1).ilog2();
            let widest = c.ngf.checked_shl(layers).unwrap_or(usize::MAX);
            at_most("ngf x image_size / 8", widest, MAX_CONV_WIDTH)?;
            at_most("8 ndf", c.ndf.saturating_mul(8), MAX_CONV_WIDTH)?;
        }
    }
    Ok(())
}

fn dcgan_sizes(
    c: &crate::models::DcganConfig,
    at_most: &dyn Fn(&str, usize, usize) -> Result<()>,
) -> Result<()> {
    at_most("image_size", c.image_size, MAX_IMAGE_SIZE)?;
    at_most("channels", c.channels, MAX_CHANNELS)?;
    at_most("nz", c.nz, MAX_LATENT)?;
    at_most("ngf", c.ngf, MAX_CONV_WIDTH)?;
    at_most("ndf", c.ndf, MAX_CONV_WIDTH)
}

/// Refuses a trainer whose weights, buffers or optimizer state hold a NaN or an infinity:
/// a diverged run whose losses still look finite (an overflowing Adam moment, a weight at
/// infinity behind a saturated sigmoid) must not be saved over a good checkpoint.
///
/// # Errors
/// [`GanError::NonFiniteState`] naming the first tensor found.
pub fn check_finite(trainer: &Trainer) -> Result<()> {
    let (g, d) = (trainer.gan.generator(), trainer.gan.discriminator());
    let groups = [
        ("G", state_dict(g)),
        ("D", state_dict(d)),
        ("opt_g", trainer.opt_g.state(g)),
        ("opt_d", trainer.opt_d.state(d)),
    ];
    for (group, tensors) in &groups {
        if let Some((name, _)) = tensors
            .iter()
            .find(|(_, t)| t.as_slice().iter().any(|x| !x.is_finite()))
        {
            return Err(GanError::NonFiniteState {
                step: trainer.step,
                name: format!("{group}.{name}"),
            });
        }
    }
    Ok(())
}

/// The position of a ChaCha stream, serialisable.
#[derive(Serialize, Deserialize)]
struct RngState {
    seed: String,
    stream: u64,
    word_pos: String,
}

impl RngState {
    fn of(rng: &ChaCha8Rng) -> Self {
        RngState {
            seed: rng.get_seed().iter().map(|b| format!("{b:02x}")).collect(),
            stream: rng.get_stream(),
            word_pos: rng.get_word_pos().to_string(),
        }
    }

    fn restore(&self) -> Option<ChaCha8Rng> {
        let mut seed = [0u8; 32];
        if self.seed.len() != 64 {
            return None;
        }
        for (i, b) in seed.iter_mut().enumerate() {
            *b = u8::from_str_radix(self.seed.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        let mut rng = ChaCha8Rng::from_seed(seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(self.word_pos.parse().ok()?);
        Some(rng)
    }
}

/// What a checkpoint holds besides the trainer.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// Fixed tensors by name (e.g. `sample_noise`).
    pub fixed: HashMap<String, Tensor>,
    /// The caller's JSON (e.g. the data iterator's position).
    pub extra: serde_json::Value,
}

fn prefixed(
    prefix: &str,
    tensors: Vec<(String, Tensor)>,
) -> impl Iterator<Item = (String, Tensor)> + '_ {
    tensors
        .into_iter()
        .map(move |(k, t)| (format!("{prefix}.{k}"), t))
}

/// Saves `trainer`, the `fixed` tensors and `extra` to `path`, atomically.
///
/// # Errors
/// If the file cannot be written.
pub fn save(
    path: &Path,
    trainer: &Trainer,
    fixed: &[(String, Tensor)],
    extra: &serde_json::Value,
) -> Result<()> {
    let (g, d) = (trainer.gan.generator(), trainer.gan.discriminator());
    let mut tensors: Vec<(String, Tensor)> = Vec::new();
    tensors.extend(prefixed("G", state_dict(g)));
    tensors.extend(prefixed("D", state_dict(d)));
    tensors.extend(prefixed("opt_g", trainer.opt_g.state(g)));
    tensors.extend(prefixed("opt_d", trainer.opt_d.state(d)));
    if let Some(ema) = &trainer.ema {
        tensors.extend(prefixed("ema", ema.tensors().to_vec()));
    }
    tensors.extend(prefixed("fixed", fixed.to_vec()));
    let mut meta = BTreeMap::new();
    meta.insert("format".to_string(), FORMAT.to_string());
    meta.insert("model".to_string(), json(&trainer.gan.config()));
    meta.insert("train".to_string(), json(&trainer.config));
    meta.insert("step".to_string(), trainer.step.to_string());
    meta.insert("rng".to_string(), json(&RngState::of(&trainer.rng)));
    meta.insert("extra".to_string(), extra.to_string());
    write_safetensors(path, &tensors, &meta)?;
    Ok(())
}

/// Configurations and counters always serialise.
fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("configurations serialise")
}

/// The model configuration stored in a checkpoint, without loading the weights.
///
/// # Errors
/// If the file is not a gantry checkpoint.
pub fn read_model_config(path: &Path) -> Result<ModelConfig> {
    let file = read_safetensors(path)?;
    parse_meta(path, &file.metadata, "model")
}

fn parse_meta<T: for<'de> Deserialize<'de>>(
    path: &Path,
    meta: &BTreeMap<String, String>,
    key: &str,
) -> Result<T> {
    let bad = |message: String| GanError::Checkpoint {
        path: path.to_path_buf(),
        message,
    };
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(bad(
            "not a gantry checkpoint (no format tag in its metadata)".into(),
        ));
    }
    let raw = meta
        .get(key)
        .ok_or_else(|| bad(format!("metadata has no `{key}` entry")))?;
    serde_json::from_str(raw).map_err(|e| bad(format!("metadata `{key}` is invalid: {e}")))
}

/// The training configuration in `meta`. Checkpoints written before objectives existed
/// store `gen_loss`, `real_label` and `mode_seeking` instead, and pix2pix's L1 weight in the
/// model: they become the equivalent objective.
fn train_config(
    path: &Path,
    meta: &BTreeMap<String, String>,
    model: &ModelConfig,
) -> Result<TrainConfig> {
    let mut raw: serde_json::Value = parse_meta(path, meta, "train")?;
    let bad = |message: String| GanError::Checkpoint {
        path: path.to_path_buf(),
        message,
    };
    if let Some(old) = raw.as_object_mut().filter(|o| !o.contains_key("objective")) {
        let loss = old
            .remove("gen_loss")
            .unwrap_or_else(|| "non-saturating".into());
        let real_label = old.remove("real_label").unwrap_or(1.0.into());
        let mut terms = crate::objective::model_terms(model);
        let ms = old.remove("mode_seeking").and_then(|v| v.as_f64());
        if let Some(w) = ms.filter(|w| *w > 0.0) {
            terms.push(TermSpec::new("loss_g_ms", w as f32));
        }
        let objective = serde_json::json!({
            "loss": loss,
            "real_label": real_label,
            "terms": terms,
        });
        old.insert("objective".into(), objective);
    }
    serde_json::from_value(raw).map_err(|e| bad(format!("metadata `train` is invalid: {e}")))
}

/// Loads a checkpoint for sampling: as [`load`], with the generator holding its averaged
/// weights where training kept an average.
///
/// # Errors
/// As [`load`].
pub fn load_for_sampling(path: &Path) -> Result<(Trainer, Extras)> {
    let (mut trainer, extras) = load(path)?;
    trainer.use_sampling_weights();
    Ok((trainer, extras))
}

/// Loads a checkpoint: rebuilds the model from its stored configuration, restores weights,
/// buffers, both optimizers, the step counter and the noise stream.
///
/// # Errors
/// If the file is missing, truncated, not a gantry checkpoint, or its tensors do not fit the
/// stored configuration; the message names the file.
pub fn load(path: &Path) -> Result<(Trainer, Extras)> {
    let file = read_safetensors(path)?;
    let meta = &file.metadata;
    let model: ModelConfig = parse_meta(path, meta, "model")?;
    let train = train_config(path, meta, &model)?;
    let step: u64 = parse_meta(path, meta, "step")?;
    let rng_state: RngState = parse_meta(path, meta, "rng")?;
    let extra: serde_json::Value = parse_meta(path, meta, "extra")?;
    let bad = |message: &str| GanError::Checkpoint {
        path: path.to_path_buf(),
        message: message.to_string(),
    };
    let rng = rng_state
        .restore()
        .ok_or_else(|| bad("metadata `rng` is invalid"))?;
    check_sizes(&model).map_err(|e| bad(&format!("metadata `model`: {e}")))?;
    if !(1..=MAX_K).contains(&train.k) {
        return Err(bad(&format!(
            "metadata `train`: k {} is not in 1..={MAX_K}",
            train.k
        )));
    }

    let mut groups: HashMap<&str, HashMap<String, Tensor>> = HashMap::new();
    for (key, t) in &file.tensors {
        let (group, name) = key
            .split_once('.')
            .ok_or_else(|| bad("tensor names lack a group prefix"))?;
        groups
            .entry(group)
            .or_default()
            .insert(name.to_string(), t.clone());
    }
    for (group, tensors) in &groups {
        if !group.starts_with("opt_") {
            continue;
        }
        for (name, t) in tensors {
            let v = t.as_slice();
            if v.iter().any(|x| !x.is_finite()) {
                return Err(bad(&format!("{group}.{name} holds a non-finite value")));
            }
            // A step counter that is not a count would be read as 0 (a fresh optimizer).
            if name == "step" && v.iter().any(|&x| x < 0.0 || x.fract() != 0.0) {
                return Err(bad(&format!("{group}.step {v:?} is not a count of steps")));
            }
        }
    }
    let mut take = |g: &str| groups.remove(g).unwrap_or_default();
    // The stored weights replace these, so the initial draw does not matter.
    let gan = model.build(&mut ChaCha8Rng::seed_from_u64(0))?;
    let strict = LoadOptions {
        strict: true,
        rename: None,
    };
    load_tensors(gan.generator(), &take("G"), &strict, path)?;
    load_tensors(gan.discriminator(), &take("D"), &strict, path)?;
    let mut trainer = Trainer::new(gan, train)?;
    trainer
        .opt_g
        .load_state(trainer.gan.generator(), &take("opt_g"))?;
    trainer
        .opt_d
        .load_state(trainer.gan.discriminator(), &take("opt_d"))?;
    if let Some(ema) = &mut trainer.ema {
        // A run that turned the average on at resume has none saved: it starts from G.
        let saved = take("ema");
        if !saved.is_empty() {
            ema.load(&saved).map_err(|e| bad(&e.to_string()))?;
        }
    }
    trainer.step = step;
    trainer.gan.set_progress(step);
    trainer.rng = rng;
    Ok((
        trainer,
        Extras {
            fixed: take("fixed"),
            extra,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{CdcganConfig, DcganConfig, MlpConfig, Pix2PixConfig};

    #[test]
    fn the_shipped_configurations_are_within_the_limits() {
        for config in [
            ModelConfig::Mlp(MlpConfig::points()),
            ModelConfig::Mlp(MlpConfig::digits()),
            ModelConfig::Dcgan(DcganConfig::dcgan28()),
            ModelConfig::Cdcgan(CdcganConfig::new(DcganConfig::dcgan28(), 10)),
            ModelConfig::Pix2Pix(Pix2PixConfig::new(256)),
        ] {
            check_sizes(&config).unwrap_or_else(|e| panic!("{config:?}: {e}"));
        }
    }

    #[test]
    fn absurd_sizes_are_refused_naming_the_field() {
        let refused = |config: ModelConfig, field: &str| {
            let err = check_sizes(&config).unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        };
        let mlp = MlpConfig::points();
        refused(
            ModelConfig::Mlp(MlpConfig {
                g_hidden: vec![1_000_000_000],
                ..mlp.clone()
            }),
            "hidden width 1000000000",
        );
        // Each width allowed, their product not.
        refused(
            ModelConfig::Mlp(MlpConfig {
                g_hidden: vec![MAX_HIDDEN; 4],
                ..mlp.clone()
            }),
            "parameter count",
        );
        refused(
            ModelConfig::Mlp(MlpConfig {
                d_maxout: 1000,
                ..mlp.clone()
            }),
            "d_maxout 1000",
        );
        // Widths allowed, but each maxout piece is a layer's worth of weights.
        let wide = MlpConfig {
            d_hidden: vec![4096; 4],
            ..mlp.clone()
        };
        check_sizes(&ModelConfig::Mlp(wide.clone())).unwrap();
        refused(
            ModelConfig::Mlp(MlpConfig {
                d_maxout: 64,
                ..wide
            }),
            "parameter count",
        );
        refused(
            ModelConfig::Mlp(MlpConfig {
                sample_shape: vec![1, 100_000, 100_000],
                ..mlp
            }),
            "sample_shape entry 100000",
        );
        let dcgan = DcganConfig::dcgan28();
        refused(
            ModelConfig::Dcgan(DcganConfig {
                ngf: 1 << 62,
                ..dcgan.clone()
            }),
            "ngf 4611686018427387904",
        );
        refused(
            ModelConfig::Cdcgan(CdcganConfig::new(dcgan, 1_000_000)),
            "num_classes 1000000",
        );
        refused(
            ModelConfig::Pix2Pix(Pix2PixConfig {
                d_layers: 9,
                ..Pix2PixConfig::new(64)
            }),
            "d_layers 9",
        );
    }
}
