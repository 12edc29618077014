//! The crate's error type.

use std::path::PathBuf;

/// What can go wrong building, training, checkpointing or sampling a GAN.
#[derive(Debug, thiserror::Error)]
pub enum GanError {
    /// A model configuration is invalid (an unsupported image size, a zero width, ...).
    #[error("invalid {model} configuration: {message}")]
    Config {
        /// The model kind.
        model: &'static str,
        /// What is wrong and what would work.
        message: String,
    },
    /// A loss became NaN or infinite; training stopped before applying the step.
    #[error(
        "step {step}: {what} is {value} (not finite); training stopped, the last checkpoint is intact"
    )]
    NonFinite {
        /// The step at which it happened (1-based).
        step: u64,
        /// Which quantity.
        what: &'static str,
        /// Its value.
        value: f32,
    },
    /// A weight, buffer or optimizer state became NaN or infinite (the losses may still be
    /// finite); training stopped before saving it.
    #[error(
        "step {step}: {name} holds a non-finite value; training stopped, the last checkpoint is intact"
    )]
    NonFiniteState {
        /// The step after which it was found.
        step: u64,
        /// The tensor, as the checkpoint names it (`opt_d.net.0.weight.exp_avg_sq`).
        name: String,
    },
    /// A batch does not fit the model: its size is not a multiple of the discriminator's
    /// packing, or a label-conditional model got no labels or one out of range.
    #[error("step {step}: {message}")]
    Batch {
        /// The step that received it (1-based).
        step: u64,
        /// What is wrong.
        message: String,
    },
    /// An objective names an unknown loss or term, has a nonsensical setting, or does not fit
    /// the model.
    #[error("objective: {message}")]
    Objective {
        /// What is wrong and what would work.
        message: String,
    },
    /// A layer, optimizer or state-dict error.
    #[error(transparent)]
    Nn(#[from] gantry_nn::NnError),
    /// A checkpoint file is missing a piece, or belongs to another model.
    #[error("{path}: {message}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Writing an image failed.
    #[error("{path}: {message}")]
    Image {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// `Result` with [`GanError`].
pub type Result<T> = std::result::Result<T, GanError>;

pub(crate) fn config_error(model: &'static str, message: impl Into<String>) -> GanError {
    GanError::Config {
        model,
        message: message.into(),
    }
}
