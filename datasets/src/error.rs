//! The error type of every loader: each variant names the file (or folder) and the problem.

use std::io;
use std::path::{Path, PathBuf};

/// `Result` with [`DataError`].
pub type Result<T> = std::result::Result<T, DataError>;

/// What went wrong while reading a data set from the outside world.
///
/// Every variant carries the path of the file or folder concerned, so a message such as
/// `data/mnist/train-images-idx3-ubyte.gz: truncated: header declares 47040000 data bytes, the
/// file holds 1000` can be shown to a user as it is.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The operating system refused a read, or a file or folder does not exist.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },

    /// A gzip stream is corrupt or ends before its end marker.
    #[error("{}: gzip stream is corrupt or cut short: {source}", path.display())]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        source: io::Error,
    },

    /// The first bytes are not the magic number the format requires.
    #[error("{}: bad magic number {found:#010x}: {expected}", path.display())]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The four bytes found, big-endian.
        found: u32,
        /// What was expected, in words.
        expected: String,
    },

    /// The body holds fewer bytes than the header (or record layout) requires.
    #[error("{}: truncated: {what} needs {expected} bytes, the file holds {found}", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// What was being read (`"header"`, `"data"`, `"record 12"`).
        what: String,
        /// Bytes required.
        expected: u64,
        /// Bytes present.
        found: u64,
    },

    /// The body holds more bytes than the header declares.
    #[error("{}: header declares {declared} data bytes but the file holds more", path.display())]
    TrailingData {
        /// The file.
        path: PathBuf,
        /// Data bytes the header declares.
        declared: u64,
    },

    /// A header or layout is well formed but not what this loader can use (a wrong rank, a
    /// size that overflows, image and label counts that disagree).
    #[error("{}: {problem}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// The problem, in words.
        problem: String,
    },

    /// A label is not below the number of classes.
    #[error("{}: label {label} of example {index} is out of range (classes: {classes})", path.display())]
    LabelOutOfRange {
        /// The file.
        path: PathBuf,
        /// The example's index.
        index: usize,
        /// The label found.
        label: usize,
        /// The number of classes.
        classes: usize,
    },

    /// A file that should be an image could not be decoded.
    #[error("{}: not a decodable image: {source}", path.display())]
    Image {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        source: image::ImageError,
    },

    /// An image's size differs from the others' and the options say to reject it.
    #[error(
        "{}: image is {found_w}x{found_h} but the set is {expected_w}x{expected_h} \
         (load with resizing enabled to accept it)",
        path.display()
    )]
    SizeMismatch {
        /// The file.
        path: PathBuf,
        /// Width and height of the set.
        expected_w: u32,
        /// Height of the set.
        expected_h: u32,
        /// Width of this image.
        found_w: u32,
        /// Height of this image.
        found_h: u32,
    },

    /// An aligned-pair image cannot be split into two equal halves.
    #[error("{}: pair image is {width} pixels wide; an A|B pair needs an even width", path.display())]
    OddWidth {
        /// The file.
        path: PathBuf,
        /// The image's width.
        width: u32,
    },

    /// A folder holds nothing to load.
    #[error("{}: no images found ({hint})", path.display())]
    Empty {
        /// The folder.
        path: PathBuf,
        /// What was looked for.
        hint: String,
    },

    /// A named data set was not found under any data folder searched.
    #[error("data set {name:?} not found: {hint}")]
    NotFound {
        /// The data set's name.
        name: String,
        /// Where it was looked for and how to provide it.
        hint: String,
    },

    /// A name given to [`builtin`](crate::builtin()) is not one of the known data sets.
    #[error("unknown data set {name:?}; known: {known}")]
    UnknownDataset {
        /// The name given.
        name: String,
        /// The known names, comma separated.
        known: String,
    },
}

impl DataError {
    /// An [`DataError::Io`] for `path`.
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A [`DataError::Format`] for `path`.
    pub(crate) fn format(path: &Path, problem: impl Into<String>) -> Self {
        DataError::Format {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }

    /// A [`DataError::Truncated`] for `path`.
    pub(crate) fn truncated(
        path: &Path,
        what: impl Into<String>,
        expected: u64,
        found: u64,
    ) -> Self {
        DataError::Truncated {
            path: path.to_path_buf(),
            what: what.into(),
            expected,
            found,
        }
    }

    /// The path this error is about, when it has one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            DataError::Io { path, .. }
            | DataError::Gzip { path, .. }
            | DataError::BadMagic { path, .. }
            | DataError::Truncated { path, .. }
            | DataError::TrailingData { path, .. }
            | DataError::Format { path, .. }
            | DataError::LabelOutOfRange { path, .. }
            | DataError::Image { path, .. }
            | DataError::SizeMismatch { path, .. }
            | DataError::OddWidth { path, .. }
            | DataError::Empty { path, .. } => Some(path),
            DataError::NotFound { .. } | DataError::UnknownDataset { .. } => None,
        }
    }
}
