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
    trainer.rng = rng;
    Ok((
        trainer,
        Extras {
            fixed: take("fixed"),
            extra,
        },
    ))
}
