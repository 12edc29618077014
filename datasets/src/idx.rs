//! The IDX format of MNIST and Fashion-MNIST (and the 4-D colour variant of the emoji set), and
//! loaders that turn IDX files into an [`ImageSet`].
//!
//! An IDX file is a big-endian `u32` magic `0x0000TTNN` (`TT` the element type, `0x08` for
//! unsigned bytes, the only type read here; `NN` the rank), one big-endian `u32` per dimension,
//! then the elements in row-major order. Files may be gzip-compressed.

use crate::builtin::Split;
use crate::error::{DataError, Result};
use crate::image_set::ImageSet;
use crate::source::{Progress, Source};
use std::path::{Path, PathBuf};

/// The element type byte of unsigned-byte IDX files.
const TYPE_U8: u8 = 0x08;

/// A decoded IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions from the header, outermost first.
    pub dims: Vec<usize>,
    /// The elements, row-major; `data.len()` is the product of `dims`.
    pub data: Vec<u8>,
}

/// Reads an IDX file (raw or gzip) of rank 1 to 4 with unsigned-byte elements.
///
/// The declared size is checked against the file before the body is allocated (for gzip,
/// the body is read through a limit and the buffer grows only with real data).
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    read_from(Source::open(path, None)?)
}

/// [`read_idx`], reporting `(bytes of the file read, file size)` to `progress`.
pub fn read_idx_with_progress(path: &Path, progress: Progress<'_>) -> Result<IdxArray> {
    read_from(Source::open(path, Some(progress))?)
}

/// Parses IDX bytes (raw or gzip) held in memory; `name` identifies them in errors.
pub fn parse_idx(bytes: &[u8], name: &Path) -> Result<IdxArray> {
    read_from(Source::from_bytes(bytes, name)?)
}

fn read_from(mut src: Source<'_>) -> Result<IdxArray> {
    let mut magic = [0u8; 4];
    src.read_exact(&mut magic, "IDX header")?;
    let found = u32::from_be_bytes(magic);
    if magic[0] != 0 || magic[1] != 0 || !matches!(magic[2], 0x08 | 0x09 | 0x0B..=0x0E) {
        return Err(DataError::BadMagic {
            path: src.path().to_path_buf(),
            found,
            expected: "an IDX file starts 0x0000TTNN (TT = 0x08 for bytes, NN = rank), \
                       e.g. 0x00000803 for images, 0x00000801 for labels"
                .into(),
        });
    }
    if magic[2] != TYPE_U8 {
        return Err(DataError::format(
            src.path(),
            format!(
                "IDX element type {:#04x} is not supported (only 0x08, unsigned bytes)",
                magic[2]
            ),
        ));
    }
    let rank = magic[3] as usize;
    if !(1..=4).contains(&rank) {
        return Err(DataError::format(
            src.path(),
            format!("IDX rank {rank} is not supported (1 to 4)"),
        ));
    }
    let mut raw_dims = [0u8; 16];
    src.read_exact(&mut raw_dims[..4 * rank], "IDX header")?;
    let dims: Vec<usize> = raw_dims[..4 * rank]
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let declared = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .filter(|&n| n <= isize::MAX as u64)
        .ok_or_else(|| {
            DataError::format(src.path(), format!("IDX dimensions {dims:?} overflow"))
        })?;
    let header_len = 4 + 4 * rank as u64;
    src.check_raw_len(header_len, declared, "IDX data")?;
    let data = src.read_body(declared, "IDX data")?;
    Ok(IdxArray { dims, data })
}

/// Turns an IDX array of images into an [`ImageSet`]: rank 3 `(N, H, W)` is grey, rank 4
/// `(N, H, W, C)` is interleaved colour with 1 to 4 channels.
pub fn idx_images(array: IdxArray, path: &Path) -> Result<ImageSet> {
    let shape = match array.dims[..] {
        [_, h, w] => [1, h, w],
        [_, h, w, c] if (1..=4).contains(&c) => [c, h, w],
        _ => {
            return Err(DataError::format(
                path,
                format!(
                    "IDX dimensions {:?} are not images (N, H, W) or (N, H, W, C) with C <= 4",
                    array.dims
                ),
            ));
        }
    };
    if shape.contains(&0) {
        return Err(DataError::format(
            path,
            format!("IDX images have a zero size: {:?}", array.dims),
        ));
    }
    Ok(if shape[0] == 1 {
        ImageSet::from_chw(shape, array.data)
    } else {
        ImageSet::from_hwc(shape, &array.data)
    })
}

/// Loads an IDX image file and its IDX label file (rank 1), checking that the counts agree
/// and every label is below `classes`. `progress` gets bytes read of both files together.
pub fn load_idx_labelled(
    images: &Path,
    labels: &Path,
    classes: usize,
    progress: Progress<'_>,
) -> Result<ImageSet> {
    let size = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.len())
            .map_err(|e| DataError::io(p, e))
    };
    let (image_bytes, label_bytes) = (size(images)?, size(labels)?);
    let total = image_bytes + label_bytes;
    let label_array = read_idx_with_progress(labels, &mut |d, _| progress(d, total))?;
    let image_array = read_idx_with_progress(images, &mut |d, _| progress(label_bytes + d, total))?;
    if label_array.dims.len() != 1 {
        return Err(DataError::format(
            labels,
            format!(
                "labels must be IDX rank 1, found dimensions {:?}",
                label_array.dims
            ),
        ));
    }
    let n_images = image_array.dims[0];
    let set = idx_images(image_array, images)?;
    if label_array.data.len() != n_images {
        return Err(DataError::format(
            labels,
            format!(
                "{} labels but {} holds {n_images} images",
                label_array.data.len(),
                images.display()
            ),
        ));
    }
    let labels_usize = label_array.data.iter().map(|&l| l as usize).collect();
    set.with_labels(labels_usize, classes, Vec::new(), labels)
}

/// Finds `stem` in `dir` as `stem.gz` or `stem`, also accepting the `images.idx3` spelling
/// some mirrors use (`train-images.idx3-ubyte`).
fn find_file(dir: &Path, stem: &str) -> Result<PathBuf> {
    let dotted = stem.replacen("-idx", ".idx", 1);
    let candidates = [
        format!("{stem}.gz"),
        stem.to_string(),
        format!("{dotted}.gz"),
        dotted,
    ];
    candidates
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| DataError::NotFound {
            name: stem.to_string(),
            hint: format!("no {stem}(.gz) in {}", dir.display()),
        })
}

/// Loads MNIST or Fashion-MNIST (the same file names) from `dir`: the split's images
/// (`train-images-idx3-ubyte[.gz]` or `t10k-…`) as `[1, 28, 28]` with labels 0..9.
pub fn load_mnist(dir: &Path, split: Split) -> Result<ImageSet> {
    load_mnist_with_progress(dir, split, &mut |_, _| {})
}

/// [`load_mnist`], reporting bytes read of the two files to `progress`.
pub fn load_mnist_with_progress(
    dir: &Path,
    split: Split,
    progress: Progress<'_>,
) -> Result<ImageSet> {
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let images = find_file(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let labels = find_file(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    load_idx_labelled(&images, &labels, 10, progress)
}

/// Loads the bundled emoji file (`emoji64-rgb-idx4-ubyte.gz`, rank 4 `(3786, 64, 64, 3)`) or
/// any rank-3/4 IDX image file, without labels.
pub fn load_idx_images(path: &Path, progress: Progress<'_>) -> Result<ImageSet> {
    idx_images(read_idx_with_progress(path, progress)?, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(magic: u32, dims: &[u32], body: &[u8]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn parses_a_small_file() {
        let bytes = idx(0x0803, &[2, 1, 3], &[1, 2, 3, 4, 5, 6]);
        let a = parse_idx(&bytes, Path::new("t")).unwrap();
        assert_eq!(a.dims, vec![2, 1, 3]);
        let set = idx_images(a, Path::new("t")).unwrap();
        assert_eq!(set.shape(), [1, 1, 3]);
        assert_eq!(set.pixels(1), &[4, 5, 6]);
    }

    #[test]
    fn rejects_lies_before_allocating() {
        let p = Path::new("t");
        let huge = idx(0x0803, &[u32::MAX, u32::MAX, u32::MAX], &[0; 8]);
        assert!(matches!(parse_idx(&huge, p), Err(DataError::Format { .. })));
        let big = idx(0x0803, &[60000, 28, 28], &[0; 8]);
        assert!(matches!(
            parse_idx(&big, p),
            Err(DataError::Truncated { .. })
        ));
        let long = idx(0x0801, &[2], &[0; 3]);
        assert!(matches!(
            parse_idx(&long, p),
            Err(DataError::TrailingData { .. })
        ));
        let magic = idx(0x0100_0803, &[1], &[0]);
        assert!(matches!(
            parse_idx(&idx(0x0903, &[1], &[0]), p),
            Err(DataError::Format { .. })
        ));
        assert!(matches!(
            parse_idx(&magic, p),
            Err(DataError::BadMagic { .. })
        ));
        let float = idx(0x0D01, &[1], &[0; 4]);
        assert!(matches!(
            parse_idx(&float, p),
            Err(DataError::Format { .. })
        ));
        assert!(matches!(
            parse_idx(&[0, 0], p),
            Err(DataError::Truncated { .. })
        ));
    }
}
