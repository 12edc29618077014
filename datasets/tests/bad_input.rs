//! Bad input of every kind gives a clear error that names the file, never a panic; and a
//! property test feeds arbitrary and mutated bytes to every parser.

use flate2::Compression;
use flate2::write::GzEncoder;
use gantry_datasets::{
    DataError, Direction, FolderOptions, decode_image, load_cifar10, load_image_folder, load_mnist,
    load_pix2pix, parse_cifar10, parse_idx, read_cifar10, read_idx,
};
use gantry_datasets::{RECORD_BYTES, Split};
use proptest::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};

fn idx(magic: u32, dims: &[u32], body: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    dims.iter()
        .for_each(|d| v.extend_from_slice(&d.to_be_bytes()));
    v.extend_from_slice(body);
    v
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// The error, after checking that its message names the file.
fn err_naming<T: std::fmt::Debug>(r: Result<T, DataError>, file: &Path) -> DataError {
    let e = r.unwrap_err();
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        e.to_string().contains(&name),
        "error does not name {name}: {e}"
    );
    e
}

#[test]
fn idx_header_and_body_problems() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let body: Vec<u8> = (0..10 * 4 * 4).map(|i| i as u8).collect();
    let good = idx(0x0803, &[10, 4, 4], &body);
    for (name, bytes) in [("ok", good.clone()), ("ok.gz", gz(&good))] {
        let a = read_idx(&write(d, name, &bytes)).unwrap();
        assert_eq!((a.dims, a.data), (vec![10, 4, 4], body.clone()));
    }
    // The header declares 100 images, the file holds 10: raw and gzip.
    let lying = idx(0x0803, &[100, 4, 4], &body);
    for (name, bytes) in [("lie", lying.clone()), ("lie.gz", gz(&lying))] {
        let p = write(d, name, &bytes);
        let e = err_naming(read_idx(&p), &p);
        assert!(
            matches!(
                e,
                DataError::Truncated {
                    expected: 1616,
                    found: 176,
                    ..
                }
            ),
            "{e}"
        );
    }
    // A header claiming 4 GiB over a few bytes fails fast, without a 4 GiB buffer.
    let huge = gz(&idx(0x0803, &[u32::MAX, 1, 1], &body));
    let p = write(d, "huge.gz", &huge);
    assert!(matches!(
        err_naming(read_idx(&p), &p),
        DataError::Truncated { .. }
    ));
    // Fewer images declared than present.
    let long = idx(0x0803, &[5, 4, 4], &body);
    for (name, bytes) in [("long", long.clone()), ("long.gz", gz(&long))] {
        let p = write(d, name, &bytes);
        assert!(matches!(
            err_naming(read_idx(&p), &p),
            DataError::TrailingData { .. }
        ));
    }
    // Wrong magic (a PNG signature), truncated header, empty file.
    for (name, bytes) in [
        ("png", b"\x89PNG\r\n\x1a\n0000".to_vec()),
        ("short", vec![0, 0, 8, 3, 0, 0]),
        ("empty", vec![]),
    ] {
        let p = write(d, name, &bytes);
        let e = err_naming(read_idx(&p), &p);
        assert!(
            matches!(e, DataError::BadMagic { .. } | DataError::Truncated { .. }),
            "{e}"
        );
    }
    // A gzip stream cut in the middle, and one with a corrupt byte.
    let big = gz(&idx(
        0x0803,
        &[200, 28, 28],
        &(0..200 * 784)
            .map(|i| (i * 7 % 251) as u8)
            .collect::<Vec<_>>(),
    ));
    let p = write(d, "cut.gz", &big[..big.len() / 2]);
    let e = err_naming(read_idx(&p), &p);
    assert!(matches!(e, DataError::Gzip { .. }), "{e}");
    let p = write(d, "nocrc.gz", &big[..big.len() - 4]);
    assert!(matches!(
        err_naming(read_idx(&p), &p),
        DataError::Gzip { .. }
    ));
    let mut flipped = big.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x55;
    let p = write(d, "flipped.gz", &flipped);
    err_naming(read_idx(&p), &p);
    // A missing file.
    let p = d.join("absent.gz");
    assert!(matches!(err_naming(read_idx(&p), &p), DataError::Io { .. }));
}

#[test]
fn mnist_label_problems() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "t10k-images-idx3-ubyte",
        &idx(0x0803, &[3, 2, 2], &[0; 12]),
    );
    let labels = write(
        d,
        "t10k-labels-idx1-ubyte.gz",
        &gz(&idx(0x0801, &[3], &[1, 10, 2])),
    );
    let e = err_naming(load_mnist(d, Split::Test), &labels);
    assert!(
        matches!(
            e,
            DataError::LabelOutOfRange {
                index: 1,
                label: 10,
                classes: 10,
                ..
            }
        ),
        "{e}"
    );
    write(
        d,
        "t10k-labels-idx1-ubyte.gz",
        &gz(&idx(0x0801, &[2], &[1, 2])),
    );
    let e = err_naming(load_mnist(d, Split::Test), &labels);
    assert!(e.to_string().contains("2 labels but"), "{e}");
    write(
        d,
        "t10k-labels-idx1-ubyte.gz",
        &gz(&idx(0x0801, &[3], &[1, 2, 3])),
    );
    assert_eq!(
        load_mnist(d, Split::Test).unwrap().labels(),
        Some(&[1, 2, 3][..])
    );
    let e = load_mnist(d, Split::Train).unwrap_err();
    assert!(e.to_string().contains("train-images-idx3-ubyte"), "{e}");
}

#[test]
fn cifar_problems() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut records = vec![7u8; 3 * RECORD_BYTES];
    (0..3).for_each(|i| records[i * RECORD_BYTES] = i as u8);
    let ok = write(d, "ok.bin.gz", &gz(&records));
    assert_eq!(read_cifar10(&ok).unwrap().len(), 3);
    let p = write(d, "short.bin", &records[..2 * RECORD_BYTES + 100]);
    let e = err_naming(read_cifar10(&p), &p);
    assert!(
        matches!(e, DataError::Truncated { .. }) && e.to_string().contains("record 2"),
        "{e}"
    );
    let g = gz(&records);
    let p = write(d, "cut.bin.gz", &g[..g.len() / 2]);
    err_naming(read_cifar10(&p), &p);
    records[RECORD_BYTES] = 42;
    let p = write(d, "label.bin", &records);
    let e = err_naming(load_cifar10(&[ok, p.clone()], &mut |_, _| {}), &p);
    assert!(
        matches!(
            e,
            DataError::LabelOutOfRange {
                index: 1,
                label: 42,
                ..
            }
        ),
        "{e}"
    );
    let p = write(d, "empty.bin", &[]);
    assert!(matches!(
        err_naming(read_cifar10(&p), &p),
        DataError::Empty { .. }
    ));
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8 * 20, y as u8 * 20, 128]))
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_fn(w, h, |x, _| image::Rgb([x as u8 * 20, 90, 30]))
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .unwrap();
    out.into_inner()
}

#[test]
fn folder_problems() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let opts = FolderOptions::default();
    // An empty folder, an empty class folder.
    let e = err_naming(load_image_folder(d, &opts, &mut |_, _| {}), d);
    assert!(matches!(e, DataError::Empty { .. }));
    std::fs::create_dir(d.join("a")).unwrap();
    write(&d.join("a"), "1.png", &png(4, 4));
    std::fs::create_dir(d.join("b")).unwrap();
    let e = err_naming(load_image_folder(d, &opts, &mut |_, _| {}), &d.join("b"));
    assert!(matches!(e, DataError::Empty { .. }));
    // A non-image file among images; a truncated PNG; a text file named .png.
    write(&d.join("b"), "2.png", &png(4, 4));
    for (name, bytes) in [
        ("notes.txt", b"not an image".to_vec()),
        ("cut.png", png(4, 4)[..30].to_vec()),
        ("fake.png", b"plain text".to_vec()),
    ] {
        let p = write(&d.join("b"), name, &bytes);
        let e = err_naming(load_image_folder(d, &opts, &mut |_, _| {}), &p);
        assert!(matches!(e, DataError::Image { .. }), "{e}");
        std::fs::remove_file(&p).unwrap();
    }
    write(&d.join("b"), "notes.txt", b"skipped on request");
    let skip = FolderOptions {
        skip_other_files: true,
        ..Default::default()
    };
    assert_eq!(
        load_image_folder(d, &skip, &mut |_, _| {}).unwrap().len(),
        2
    );
    // Sizes that differ are rejected by default.
    let p = write(&d.join("b"), "3.jpg", &jpeg(5, 4));
    let e = err_naming(load_image_folder(d, &skip, &mut |_, _| {}), &p);
    assert!(
        matches!(
            e,
            DataError::SizeMismatch {
                found_w: 5,
                expected_w: 4,
                ..
            }
        ),
        "{e}"
    );
    // A zero target size is an error, not a panic.
    let zero = FolderOptions {
        size: Some((0, 4)),
        ..skip
    };
    assert!(load_image_folder(d, &zero, &mut |_, _| {}).is_err());
}

#[test]
fn pair_problems() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let opts = FolderOptions::default();
    let e = load_pix2pix(d, "train", Direction::AtoB, &opts, &mut |_, _| {}).unwrap_err();
    assert!(e.to_string().contains("train"), "{e}");
    std::fs::create_dir(d.join("val")).unwrap();
    write(&d.join("val"), "1.png", &png(8, 4));
    let p = write(&d.join("val"), "2.png", &png(7, 4));
    let e = err_naming(
        load_pix2pix(d, "val", Direction::AtoB, &opts, &mut |_, _| {}),
        &p,
    );
    assert!(matches!(e, DataError::OddWidth { width: 7, .. }), "{e}");
}

/// A valid small input of each format, for mutation.
fn seeds() -> Vec<Vec<u8>> {
    let body: Vec<u8> = (0..2 * 3 * 3).map(|i| i as u8 * 13).collect();
    let mut cifar = vec![3u8; 2 * RECORD_BYTES];
    cifar[RECORD_BYTES] = 9;
    vec![
        idx(0x0803, &[2, 3, 3], &body),
        gz(&idx(0x0803, &[2, 3, 3], &body)),
        idx(0x0801, &[4], &[1, 2, 3, 4]),
        gz(&idx(0x0804, &[1, 2, 2, 3], &[9; 12])),
        cifar.clone(),
        gz(&cifar),
        png(5, 3),
        jpeg(8, 8),
    ]
}

fn all_parsers(bytes: &[u8]) {
    let name = Path::new("fuzz");
    let _ = parse_idx(bytes, name);
    let _ = parse_cifar10(bytes, name);
    let _ = decode_image(bytes, name, gantry_datasets::Channels::Rgb);
    let _ = decode_image(bytes, name, gantry_datasets::Channels::Gray);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        all_parsers(&bytes);
    }

    #[test]
    fn mutated_files_never_panic(
        which in 0usize..8,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = seeds().swap_remove(which);
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        all_parsers(&bytes);
    }
}
