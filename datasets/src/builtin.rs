//! Named data sets for the command line, and where their files are looked for.
//!
//! | name | what | where (under a data folder) |
//! |---|---|---|
//! | `mnist` | MNIST digits, `[1, 28, 28]`, labels 0..9 | `mnist/` (bundled) |
//! | `fashion-mnist` | Fashion-MNIST, `[1, 28, 28]`, labels 0..9 | `fashion-mnist/` (not bundled) |
//! | `emoji` | Noto emoji, `[3, 64, 64]`, 3,786 images, labels 0..8 (category) | `emoji-noto-64/` (bundled) |
//! | `emoji128` | Noto emoji, `[3, 128, 128]`, 1,949 images, labels 0..8 (category) | `emoji-noto-128/` (bundled) |
//! | `emoji-faces` | the ageing set: the 60 person faces of `emoji` with an age group, `[3, 64, 64]`, labels 0..3 (age group) | from `emoji` |
//! | `emoji-faces128` | the same 60 faces at `[3, 128, 128]` | from `emoji128` |
//! | `cifar10` | CIFAR-10 binary batches, `[3, 32, 32]`, labels 0..9 | `cifar10-subset/`, `cifar10/` or `cifar-10-batches-bin/` (not bundled) |
//! | `ring` | 8 Gaussians on the unit circle, points `[2]` | synthetic, 100,000 points |
//! | `grid` | 25 Gaussians on {-4..4}², points `[2]` | synthetic, 100,000 points |
//! | `edges2emoji` | edge map → emoji pairs, `[3, 64, 64]` each | from `emoji` |
//! | `edges2emoji128` | edge map → emoji pairs, `[3, 128, 128]` each, the same edge pipeline | from `emoji128` |
//! | `edges2digits` | edge map → digit pairs, `[1, 28, 28]` each | from `mnist` |
//!
//! The emoji classes are the nine Unicode categories of [`EMOJI_CATEGORIES`], read from the
//! folder's label table (see [`read_emoji_labels`]). The emoji sets split by index: every 10th image is the test (validation) split. The
//! face sets are labelled by [`AGE_GROUPS`] (baby, child, adult, older) and hold out one
//! skin tone of each of the ten person types ([`FACES_HELD_OUT_TONE`], `medium`): 10 faces
//! for validation, the other 50 for training (see [`face_split`]). The
//! synthetic sets draw their points with seed 0 for [`Split::Train`] and seed 1 for
//! [`Split::Test`].

use crate::cifar::load_cifar10;
use crate::dataset::Dataset;
use crate::edges::{edges2digits, edges2emoji, emoji_split};
use crate::emoji::{AGE_GROUPS, EMOJI_CATEGORIES, EmojiInfo, read_emoji_labels};
use crate::error::{DataError, Result};
use crate::idx::{load_idx_images, load_mnist_with_progress};
use crate::image_set::ImageSet;
use crate::mixture::Mixture;
use crate::source::Progress;
use std::path::{Path, PathBuf};

/// Which part of a data set to load.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training part.
    #[default]
    Train,
    /// The test part (the validation split where a data set has no test split).
    Test,
}

/// The environment variable that names the data folder, overriding the bundled `data/`.
pub const DATA_ENV: &str = "GANTRY_DATA";

/// The names [`builtin`] knows.
pub const BUILTIN_NAMES: [&str; 12] = [
    "mnist",
    "fashion-mnist",
    "emoji",
    "emoji128",
    "emoji-faces",
    "emoji-faces128",
    "cifar10",
    "ring",
    "grid",
    "edges2emoji",
    "edges2emoji128",
    "edges2digits",
];

/// Points in each synthetic mixture data set.
pub const MIXTURE_POINTS: usize = 100_000;

/// The data folder: `$GANTRY_DATA` if set, otherwise the workspace's bundled `data/` (found
/// from this crate's source location at compile time).
pub fn data_dir() -> PathBuf {
    match std::env::var_os(DATA_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => bundled_data_dir(),
    }
}

/// The workspace's bundled `data/` folder.
pub fn bundled_data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("data")
}

/// The folders [`builtin`] searches, in order: `$GANTRY_DATA` (if set), the bundled `data/`,
/// and `shared/data` beside the workspace (where the non-bundled data sets are kept), the last
/// only if it exists.
pub fn data_roots() -> Vec<PathBuf> {
    let mut roots = Vec::new();
    if let Some(dir) = std::env::var_os(DATA_ENV).filter(|d| !d.is_empty()) {
        roots.push(PathBuf::from(dir));
    }
    roots.push(bundled_data_dir());
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
    if shared.is_dir() {
        roots.push(shared);
    }
    roots
}

/// Loads the data set called `name` (one of [`BUILTIN_NAMES`]) from the folders of
/// [`data_roots`].
///
/// ```
/// use gantry_datasets::{builtin, Split};
/// let ring = builtin("ring", Split::Train).unwrap();
/// assert_eq!(ring.image_shape(), vec![2]);
/// assert!(builtin("imagenet", Split::Train).is_err());
/// ```
pub fn builtin(name: &str, split: Split) -> Result<Box<dyn Dataset>> {
    builtin_with(name, split, &data_roots(), &mut |_, _| {})
}

/// Loads the data set called `name`, looking for its folder under each of `roots` in turn
/// (e.g. `&[user_path]`), and reporting `(bytes read, bytes)` while files are read.
pub fn builtin_with(
    name: &str,
    split: Split,
    roots: &[PathBuf],
    progress: Progress<'_>,
) -> Result<Box<dyn Dataset>> {
    Ok(match name {
        "mnist" | "fashion-mnist" => Box::new(load_mnist_with_progress(
            &locate(name, roots, &[name])?,
            split,
            progress,
        )?),
        "emoji" | "emoji128" => {
            let all = load_emoji(name, roots, progress)?;
            Box::new(all.subset(&emoji_split(all.len(), split)))
        }
        "emoji-faces" | "emoji-faces128" => Box::new(load_faces(name, roots, split, progress)?),
        "edges2emoji" => Box::new(edges2emoji(&load_emoji("emoji", roots, progress)?, split)),
        "edges2emoji128" => Box::new(edges2emoji(
            &load_emoji("emoji128", roots, progress)?,
            split,
        )),
        "edges2digits" => {
            let digits =
                load_mnist_with_progress(&locate("mnist", roots, &["mnist"])?, split, progress)?;
            Box::new(edges2digits(&digits))
        }
        "cifar10" => {
            let dir = locate(
                name,
                roots,
                &["cifar10-subset", "cifar10", "cifar-10-batches-bin"],
            )?;
            Box::new(load_cifar10(&cifar_files(&dir, split)?, progress)?)
        }
        "ring" | "grid" => {
            let mixture = if name == "ring" {
                Mixture::ring8()
            } else {
                Mixture::grid25()
            };
            Box::new(mixture.dataset(MIXTURE_POINTS, (split == Split::Test) as u64))
        }
        _ => {
            return Err(DataError::UnknownDataset {
                name: name.to_string(),
                known: BUILTIN_NAMES.join(", "),
            });
        }
    })
}

/// The first `root/sub` that is a folder.
fn locate(name: &str, roots: &[PathBuf], subs: &[&str]) -> Result<PathBuf> {
    roots
        .iter()
        .flat_map(|r| subs.iter().map(move |s| r.join(s)))
        .find(|p| p.is_dir())
        .ok_or_else(|| DataError::NotFound {
            name: name.to_string(),
            hint: format!(
                "no {} folder in {}; set {DATA_ENV} to a folder that holds it, or pass a data path",
                subs.join(" or "),
                roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
}

/// The skin tone the face sets hold out: one of each of the ten person types (baby, child,
/// adult, older adult, boy, man, older man, girl, woman, older woman) at this tone is the
/// validation split, so that measurements can report faces the model never saw.
pub const FACES_HELD_OUT_TONE: &str = "medium";

/// The indices (into `rows`, the label table) of the ageing faces of `split`: the rows with
/// an age group, those of skin tone [`FACES_HELD_OUT_TONE`] for [`Split::Test`], the others
/// for [`Split::Train`].
pub fn face_split(rows: &[EmojiInfo], split: Split) -> Vec<usize> {
    rows.iter()
        .enumerate()
        .filter(|(_, r)| r.age_group.is_some())
        .filter(|(_, r)| (r.skin_tone == FACES_HELD_OUT_TONE) == (split == Split::Test))
        .map(|(i, _)| i)
        .collect()
}

/// The ageing faces of `split` (`emoji-faces`: from the 64x64 set; `emoji-faces128`: from
/// the 128x128 one), labelled with their age group.
fn load_faces(
    name: &str,
    roots: &[PathBuf],
    split: Split,
    progress: Progress<'_>,
) -> Result<ImageSet> {
    let (faces, rows, labels_path) = face_table(name, roots, progress)?;
    let picked = face_split(&rows, split);
    if picked.is_empty() {
        return Err(DataError::Empty {
            path: labels_path,
            hint: format!("no faces of the {split:?} split in the label table"),
        });
    }
    let ages = picked
        .iter()
        .map(|&i| rows[i].age_group.expect("a face table holds faces"))
        .collect();
    let names = AGE_GROUPS.iter().map(|a| a.to_string()).collect();
    faces
        .subset(&picked)
        .with_labels(ages, AGE_GROUPS.len(), names, &labels_path)
}

/// All the ageing faces of `name` (`emoji-faces` or `emoji-faces128`), both splits, in the
/// order of the label table, with their rows: what the ageing measurement pairs a face with
/// the same person at another age by (see [`crate::same_person_at`]). The rows are the face
/// table's own, so `face_split(&rows, split)` picks a split out of it.
///
/// # Errors
/// If `name` is not a face set, or its files are missing or malformed, or the table has no
/// faces.
pub fn load_face_table(
    name: &str,
    roots: &[PathBuf],
    progress: Progress<'_>,
) -> Result<(ImageSet, Vec<EmojiInfo>)> {
    face_table(name, roots, progress).map(|(faces, rows, _)| (faces, rows))
}

/// [`load_face_table`], with the label table's path.
fn face_table(
    name: &str,
    roots: &[PathBuf],
    progress: Progress<'_>,
) -> Result<(ImageSet, Vec<EmojiInfo>, PathBuf)> {
    let base = match name {
        "emoji-faces" => "emoji",
        "emoji-faces128" => "emoji128",
        _ => {
            return Err(DataError::UnknownDataset {
                name: name.to_string(),
                known: "emoji-faces, emoji-faces128".into(),
            });
        }
    };
    let (all, rows, labels_path) = load_emoji_files(base, roots, progress)?;
    if rows.len() != all.len() {
        return Err(DataError::format(
            &labels_path,
            format!("{} rows for {} images", rows.len(), all.len()),
        ));
    }
    let faces: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i].age_group.is_some())
        .collect();
    if faces.is_empty() {
        return Err(DataError::Empty {
            path: labels_path,
            hint: "no faces with an age_group in the label table".into(),
        });
    }
    let face_rows = faces.iter().map(|&i| rows[i].clone()).collect();
    Ok((all.subset(&faces), face_rows, labels_path))
}

/// A whole emoji set (`emoji`: all 3,786 images at 64x64; `emoji128`: 1,949 at 128x128) from
/// the first root that has it, labelled with its category.
fn load_emoji(name: &str, roots: &[PathBuf], progress: Progress<'_>) -> Result<ImageSet> {
    let (images, rows, labels_path) = load_emoji_files(name, roots, progress)?;
    let names = EMOJI_CATEGORIES.iter().map(|c| c.to_string()).collect();
    images.with_labels(
        rows.iter().map(|row| row.category).collect(),
        EMOJI_CATEGORIES.len(),
        names,
        &labels_path,
    )
}

/// An emoji set's images (unlabelled), its label table and the table's path.
fn load_emoji_files(
    name: &str,
    roots: &[PathBuf],
    progress: Progress<'_>,
) -> Result<(ImageSet, Vec<EmojiInfo>, PathBuf)> {
    let (folder, stem) = match name {
        "emoji" => ("emoji-noto-64", "emoji64"),
        _ => ("emoji-noto-128", "emoji128"),
    };
    let dir = locate(name, roots, &[folder])?;
    let file = [".gz", ""]
        .iter()
        .map(|ext| dir.join(format!("{stem}-rgb-idx4-ubyte{ext}")))
        .find(|p| p.is_file())
        .ok_or_else(|| DataError::NotFound {
            name: name.into(),
            hint: format!("no {stem}-rgb-idx4-ubyte(.gz) in {}", dir.display()),
        })?;
    let labels_path = dir.join(format!("{stem}-labels.tsv"));
    if !labels_path.is_file() {
        return Err(DataError::NotFound {
            name: name.into(),
            hint: format!(
                "no {} (the class of each image; it ships in the repository's data/{folder}/)",
                labels_path.display()
            ),
        });
    }
    let rows = read_emoji_labels(&labels_path)?;
    Ok((load_idx_images(&file, progress)?, rows, labels_path))
}

/// The CIFAR-10 binary files of `split` in `dir`, sorted: names starting `train` or
/// `data_batch` for training, `test` for testing, ending `.bin` or `.bin.gz`.
fn cifar_files(dir: &Path, split: Split) -> Result<Vec<PathBuf>> {
    let prefixes: &[&str] = match split {
        Split::Train => &["train", "data_batch"],
        Split::Test => &["test"],
    };
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| DataError::io(dir, e))?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if prefixes.iter().any(|p| name.starts_with(p))
            && (name.ends_with(".bin") || name.ends_with(".bin.gz"))
        {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(DataError::Empty {
            path: dir.to_path_buf(),
            hint: format!("no {}*.bin(.gz) CIFAR-10 files", prefixes.join("*/")),
        });
    }
    Ok(files)
}
