//! The crate's error type.

use std::path::PathBuf;

/// What can go wrong building layers, loading state or stepping an optimizer.
#[derive(Debug, thiserror::Error)]
pub enum NnError {
    /// A layer configuration is invalid.
    #[error("{layer}: {message}")]
    Config {
        /// The layer kind.
        layer: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file is not a valid safetensors file, or holds something unexpected.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A strict load found missing, unexpected or mis-shaped keys.
    #[error("{path}: state dict does not match the model: {report}")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// What differs.
        report: crate::state_dict::LoadReport,
    },
    /// A trainable parameter received no gradient in a step that should have given it one.
    #[error("parameter {name} received no gradient (is it used in the loss, and not frozen?)")]
    MissingGradient {
        /// The parameter's dotted name.
        name: String,
    },
    /// Optimizer state does not fit the model.
    #[error("optimizer state: {0}")]
    OptimizerState(String),
}

/// `Result` with [`NnError`].
pub type Result<T> = std::result::Result<T, NnError>;

pub(crate) fn config_error(layer: &'static str, message: impl Into<String>) -> NnError {
    NnError::Config {
        layer,
        message: message.into(),
    }
}
