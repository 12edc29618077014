//! The CIFAR-10 binary format: records of one label byte and 3x32x32 bytes (the red plane, then
//! green, then blue, each row-major), raw or gzip, one file after another.

use crate::error::{DataError, Result};
use crate::image_set::ImageSet;
use crate::source::{Progress, Source};
use std::path::{Path, PathBuf};

/// Bytes of one CIFAR-10 record: a label and a 3x32x32 image.
pub const RECORD_BYTES: usize = 1 + 3 * 32 * 32;

/// CIFAR-10's class names, in label order.
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Reads one CIFAR-10 binary file (raw or gzip).
pub fn read_cifar10(path: &Path) -> Result<ImageSet> {
    parse_records(Source::open(path, None)?)
}

/// Parses CIFAR-10 records held in memory; `name` identifies them in errors.
pub fn parse_cifar10(bytes: &[u8], name: &Path) -> Result<ImageSet> {
    parse_records(Source::from_bytes(bytes, name)?)
}

/// Reads several CIFAR-10 binary files into one set (in the order given), reporting
/// `(bytes read, total bytes)` over all files to `progress`.
pub fn load_cifar10(paths: &[PathBuf], progress: Progress<'_>) -> Result<ImageSet> {
    let mut total = 0;
    for p in paths {
        total += std::fs::metadata(p).map_err(|e| DataError::io(p, e))?.len();
    }
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    let mut offset = 0;
    for p in paths {
        let mut report = |d: u64, _: u64| progress(offset + d, total);
        let set = parse_records(Source::open(p, Some(&mut report))?)?;
        offset += std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        pixels.extend_from_slice(set.as_bytes());
        labels.extend(set.labels().into_iter().flatten());
    }
    let first = paths.first().cloned().unwrap_or_default();
    if labels.is_empty() {
        return Err(DataError::Empty {
            path: first,
            hint: "no CIFAR-10 records".into(),
        });
    }
    ImageSet::from_chw([3, 32, 32], pixels).with_labels(labels, 10, class_names(), &first)
}

fn class_names() -> Vec<String> {
    CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect()
}

fn parse_records(mut src: Source<'_>) -> Result<ImageSet> {
    let path = src.path().to_path_buf();
    // No header: the size is whatever the stream holds, so nothing is sized by a claim.
    let body = src.read_rest()?;
    if body.is_empty() {
        return Err(DataError::Empty {
            path,
            hint: "the file holds no CIFAR-10 records".into(),
        });
    }
    let whole = body.len() / RECORD_BYTES;
    if !body.len().is_multiple_of(RECORD_BYTES) {
        return Err(DataError::truncated(
            &path,
            format!("CIFAR-10 record {whole}"),
            ((whole + 1) * RECORD_BYTES) as u64,
            body.len() as u64,
        ));
    }
    let mut pixels = Vec::with_capacity(whole * (RECORD_BYTES - 1));
    let mut labels = Vec::with_capacity(whole);
    for record in body.chunks_exact(RECORD_BYTES) {
        labels.push(record[0] as usize);
        pixels.extend_from_slice(&record[1..]);
    }
    ImageSet::from_chw([3, 32, 32], pixels).with_labels(labels, 10, class_names(), &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_records_and_checks_labels() {
        let mut bytes = vec![0u8; 2 * RECORD_BYTES];
        bytes[0] = 3;
        bytes[1] = 200; // red, first pixel of image 0
        bytes[RECORD_BYTES] = 9;
        bytes[RECORD_BYTES + 1 + 2048] = 7; // blue, first pixel of image 1
        let set = parse_cifar10(&bytes, Path::new("c")).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(set.labels(), Some(&[3, 9][..]));
        assert_eq!(set.pixels(0)[0], 200);
        assert_eq!(set.pixels(1)[2048], 7);
        assert_eq!(set.class_names()[9], "truck");

        bytes[RECORD_BYTES] = 10;
        let err = parse_cifar10(&bytes, Path::new("c")).unwrap_err();
        assert!(matches!(
            err,
            DataError::LabelOutOfRange {
                index: 1,
                label: 10,
                ..
            }
        ));
        let err = parse_cifar10(&bytes[..RECORD_BYTES + 5], Path::new("c")).unwrap_err();
        assert!(matches!(err, DataError::Truncated { .. }), "{err}");
    }
}
