//! # gantry-datasets
//!
//! The data side of gantry: loaders for the formats GAN papers train on, synthetic 2-D
//! mixtures, paired data for image-to-image translation, and a seeded batch iterator with
//! augmentation. It depends only on `gantry-tensor`.
//!
//! - **Formats**, each returning [`Result`] with a [`DataError`] that names the file and the
//!   problem: IDX ([`read_idx`], [`load_mnist`], raw or gzip, rank 1 to 4), CIFAR-10 binary
//!   records ([`read_cifar10`], [`load_cifar10`]), folders of PNG/JPEG images with optional
//!   class sub-folders ([`load_image_folder`]), and side-by-side A|B pairs in the pix2pix layout
//!   ([`load_pix2pix`]). Sizes in a header are checked against the bytes present before
//!   anything is allocated.
//! - **Data sets** implement [`Dataset`] (`len`, `get`), handing out CHW tensors in [-1, 1]:
//!   [`ImageSet`] (images decoded once into one byte buffer), [`PairSet`] (aligned pairs),
//!   [`PointSet`] (points of a [`Mixture`]: PacGAN's ring of 8 and grid of 25 Gaussians).
//! - **Derived pairs** for pix2pix without the pix2pix downloads: [`edges2emoji`] and
//!   [`edges2digits`] (a Canny line drawing → the image).
//! - **Batching**: [`Batches`] yields NCHW [`Batch`]es, shuffled by seed, by epoch or forever,
//!   with [`Augment`] (resize, crops, pix2pix jitter, flips) applied alike to both sides of a
//!   pair.
//! - **Bundled data** (MNIST, emoji) lives in the workspace's `data/`; [`data_dir`] finds it and
//!   the `GANTRY_DATA` variable overrides it; [`builtin`] loads a data set by name.
//! - **Your own data**: implement [`Dataset`] and the batches, shuffling and augmentation work
//!   on it; `datasets/examples/custom_dataset.rs` does it in a page
//!   (`cargo run -p gantry-datasets --example custom_dataset`).
//!
//! ```
//! use gantry_datasets::{load_mnist, Augment, BatchConfig, Batches, Dataset, Split, data_dir};
//!
//! let test = load_mnist(&data_dir().join("mnist"), Split::Test)?;
//! assert_eq!(test.len(), 10_000);
//! assert_eq!(test.label(0), Some(7));
//!
//! let config = BatchConfig::new(64).seed(42).drop_last(true).augment(Augment::jitter(28));
//! let batch = Batches::new(&test, config).next().unwrap();
//! assert_eq!(batch.images.shape(), &[64, 1, 28, 28]);
//! assert_eq!(batch.labels.as_ref().map(|l| l.len()), Some(64));
//! assert!(batch.images.to_vec().iter().all(|v| (-1.0..=1.0).contains(v)));
//! # Ok::<(), gantry_datasets::DataError>(())
//! ```
#![warn(missing_docs)]

mod batch;
mod builtin;
mod cifar;
mod dataset;
mod edges;
mod emoji;
mod error;
mod folder;
mod idx;
mod image_set;
mod mixture;
mod pairs;
mod source;
pub mod transform;

pub use batch::{Batch, BatchConfig, Batches};
pub use builtin::{
    BUILTIN_NAMES, DATA_ENV, FACES_HELD_OUT_TONE, MIXTURE_POINTS, Split, builtin, builtin_with,
    bundled_data_dir, data_dir, data_roots, face_split, load_face_table,
};
pub use cifar::{CIFAR10_CLASSES, RECORD_BYTES, load_cifar10, parse_cifar10, read_cifar10};
pub use dataset::{Dataset, Example};
pub use edges::{
    EdgeOptions, edge_map, edges_of, edges2digits, edges2emoji, emoji_split, luminance,
};
pub use emoji::{
    AGE_GROUPS, EMOJI_CATEGORIES, EmojiInfo, parse_emoji_labels, read_emoji_labels, same_person_at,
};
pub use error::{DataError, Result};
pub use folder::{
    Channels, FolderOptions, OnSizeMismatch, decode_image, load_image_file, load_image_folder,
    load_image_on_white,
};
pub use idx::{
    IdxArray, idx_images, load_idx_images, load_idx_labelled, load_mnist, load_mnist_with_progress,
    parse_idx, read_idx, read_idx_with_progress,
};
pub use image_set::{ImageSet, bytes_to_unit, unit_to_bytes};
pub use mixture::{Mixture, PointSet};
pub use pairs::{Direction, PairSet, load_pix2pix};
pub use source::Progress;
pub use transform::{Augment, Transform};
