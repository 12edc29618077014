//! Resolving `--data` (a built-in name or a path) into a data set, and the batches a model
//! trains on.

use anyhow::{Context, Result, bail};
use gantry_datasets::{
    Augment, BatchConfig, Batches, Dataset, Direction, FolderOptions, Mixture, Split, Transform,
    builtin_with, data_roots, load_idx_images, load_image_folder, load_pix2pix,
};
use gantry_gan::models::Batch;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The folder given with `--data-dir`, if any.
static DATA_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Makes `dir` the only folder the built-in data sets and classifiers are looked for in
/// (`--data-dir`).
pub fn set_data_dir(dir: PathBuf) {
    let _ = DATA_DIR.set(dir);
}

/// The folders the built-in data sets and the classifiers are looked for in, in order: only
/// `--data-dir` if given; otherwise `$GANTRY_DATA`, the source tree's `data/` (found from
/// where the binary was built, so an installed `gantry` finds it while the checkout exists),
/// `../share/gantry/data` and `data/` beside the executable (a packaged install), and `data/`
/// in the current folder.
pub fn roots() -> Vec<PathBuf> {
    if let Some(dir) = DATA_DIR.get() {
        return vec![dir.clone()];
    }
    let mut roots = data_roots();
    if let Some(bin) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        roots.push(bin.join("../share/gantry/data"));
        roots.push(bin.join("data"));
    }
    roots.push(PathBuf::from("data"));
    roots
}

/// How to point gantry at its data, appended to "not found" errors.
pub const DATA_HINT: &str = "point gantry at the folder that holds mnist/ and emoji-noto-64/ (the repository's data/) with --data-dir DIR or GANTRY_DATA=DIR";

/// What kind of samples a data set holds.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// Images `[C, H, W]`.
    Images(Vec<usize>),
    /// Aligned pairs: input and target `[C, H, W]`.
    Pairs(Vec<usize>, Vec<usize>),
    /// 2-D points of a known mixture.
    Points(Option<Mixture>),
}

/// A loaded data set and what it holds.
pub struct Data {
    /// The examples.
    pub set: Box<dyn Dataset>,
    /// Images, pairs or points.
    pub kind: Kind,
}

/// A byte-progress bar for loading, hidden when `quiet`.
fn loading_bar(what: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:30}] {bytes}/{total_bytes}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(format!("loading {what}"));
    bar
}

/// Loads `spec`: a built-in name (`mnist`, `ring`, ...) or a path to an IDX file, a folder of
/// images (class sub-folders allowed) or a pix2pix folder (`train/`, `val/`, `test/`).
pub fn load(spec: &str, split: Split, quiet: bool) -> Result<Data> {
    let bar = loading_bar(spec, quiet);
    let mut progress = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let path = Path::new(spec);
    let set: Box<dyn Dataset> = if gantry_datasets::BUILTIN_NAMES.contains(&spec) {
        builtin_with(spec, split, &roots(), &mut progress)
            .with_context(|| format!("--data {spec}: {DATA_HINT}"))?
    } else if path.is_dir() && path.join("train").is_dir() {
        let sub = match split {
            Split::Train => "train",
            Split::Test if path.join("val").is_dir() => "val",
            Split::Test => "test",
        };
        let options = FolderOptions {
            skip_other_files: true,
            ..Default::default()
        };
        Box::new(load_pix2pix(
            path,
            sub,
            Direction::AtoB,
            &options,
            &mut progress,
        )?)
    } else if path.is_dir() {
        let options = FolderOptions {
            skip_other_files: true,
            ..Default::default()
        };
        Box::new(load_image_folder(path, &options, &mut progress)?)
    } else if path.is_file() {
        Box::new(load_idx_images(path, &mut progress)?)
    } else {
        bail!(
            "--data {spec}: not a built-in data set ({}) nor an existing file or folder",
            gantry_datasets::BUILTIN_NAMES.join(", ")
        );
    };
    bar.finish_and_clear();
    if set.is_empty() {
        bail!("--data {spec}: the data set is empty");
    }
    let shape = set.image_shape();
    let kind = match set.target_shape() {
        Some(target) => Kind::Pairs(shape, target),
        None if shape.len() == 1 => Kind::Points(match spec {
            "ring" => Some(Mixture::ring8()),
            "grid" => Some(Mixture::grid25()),
            _ => None,
        }),
        None => Kind::Images(shape),
    };
    Ok(Data { set, kind })
}

/// The augmentation that brings images to `size x size` (pix2pix adds its random jitter).
pub fn augment_for(kind: &Kind, size: Option<usize>, jitter: bool) -> Option<Augment> {
    let [h, w] = match kind {
        Kind::Images(s) | Kind::Pairs(s, _) => [s[1], s[2]],
        Kind::Points(_) => return None,
    };
    match size {
        Some(s) if jitter => Some(Augment::jitter(s)),
        Some(s) if s != h || s != w => Some(Augment::new(vec![Transform::Resize {
            height: s,
            width: s,
        }])),
        _ => None,
    }
}

/// The augmentation of a run's training batches: the face-ageing one (shifts, flips, colour
/// jitter) for caae, else [`augment_for`] with the run's jitter.
pub fn train_augment(kind: &Kind, settings: &crate::train::RunSettings) -> Option<Augment> {
    match (settings.model, settings.image_size) {
        (crate::train::ModelArg::Caae, Some(size)) if settings.jitter => Some(Augment::faces(size)),
        _ => augment_for(kind, settings.image_size, settings.jitter),
    }
}

/// Seeded batches of `data` that never end, positioned after `skip` batches.
pub fn batches(
    data: &Data,
    batch_size: usize,
    seed: u64,
    augment: Option<Augment>,
    skip: u64,
) -> Result<Batches<&dyn Dataset>> {
    if batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    if batch_size > data.set.len() {
        bail!(
            "--batch-size {batch_size} is larger than the data set ({} examples)",
            data.set.len()
        );
    }
    let mut config = BatchConfig::new(batch_size)
        .seed(seed)
        .drop_last(true)
        .forever();
    if let Some(a) = augment {
        config = config.augment(a);
    }
    let mut it = Batches::new(data.set.as_ref(), config);
    it.skip_batches(skip as usize);
    Ok(it)
}

/// A data batch as a model sees it: pairs give `condition = A`, `real = B`; labels are kept
/// (a label-conditional model uses them, the others ignore them).
pub fn to_gan_batch(b: gantry_datasets::Batch) -> Batch {
    match b.targets {
        Some(targets) => Batch {
            real: targets,
            condition: Some(b.images),
            labels: b.labels,
        },
        None => Batch {
            real: b.images,
            condition: None,
            labels: b.labels,
        },
    }
}

/// Reads the next batch, with context if the iterator ends (it never should: it is endless).
pub fn next(it: &mut Batches<&dyn Dataset>) -> Result<Batch> {
    it.next()
        .map(to_gan_batch)
        .context("the batch iterator ended")
}
