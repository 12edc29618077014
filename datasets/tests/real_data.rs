//! The bundled real data: counts, label histograms and pixel checksums of MNIST and the emoji
//! (computed once from the raw files), the derived pair sets, and CIFAR-10 where the shared data
//! folder is present.

use gantry_datasets::{
    DataError, Dataset, ImageSet, Split, builtin, builtin_with, bundled_data_dir, data_roots,
    edges2digits, edges2emoji, load_face_table, load_idx_images, load_mnist,
    load_mnist_with_progress, same_person_at,
};
use std::sync::OnceLock;

fn mnist(split: Split) -> &'static ImageSet {
    static TRAIN: OnceLock<ImageSet> = OnceLock::new();
    static TEST: OnceLock<ImageSet> = OnceLock::new();
    let cell = if split == Split::Train { &TRAIN } else { &TEST };
    cell.get_or_init(|| {
        load_mnist(&bundled_data_dir().join("mnist"), split).expect("bundled MNIST")
    })
}

fn emoji() -> &'static ImageSet {
    static EMOJI: OnceLock<ImageSet> = OnceLock::new();
    EMOJI.get_or_init(|| {
        let path = bundled_data_dir().join("emoji-noto-64/emoji64-rgb-idx4-ubyte.gz");
        load_idx_images(&path, &mut |_, _| {}).expect("bundled emoji")
    })
}

fn pixel_sum(set: &ImageSet, i: usize) -> u64 {
    set.pixels(i).iter().map(|&v| v as u64).sum()
}

#[test]
fn mnist_train_counts_histogram_and_checksums() {
    let train = mnist(Split::Train);
    assert_eq!(train.len(), 60_000);
    assert_eq!(train.shape(), [1, 28, 28]);
    assert_eq!(
        train.class_counts(),
        vec![5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    assert_eq!(&train.labels().unwrap()[..5], &[5, 0, 4, 1, 9]);
    // Sums of the u8 pixels, from the raw IDX file.
    assert_eq!(pixel_sum(train, 0), 27_525);
    assert_eq!(pixel_sum(train, 1), 31_095);
    assert_eq!(pixel_sum(train, 59_999), 20_920);
    let total: u64 = train.as_bytes().iter().map(|&v| v as u64).sum();
    assert_eq!(total, 1_567_298_545);
}

#[test]
fn mnist_test_counts_histogram_and_checksums() {
    let test = mnist(Split::Test);
    assert_eq!(test.len(), 10_000);
    assert_eq!(
        test.class_counts(),
        vec![980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    assert_eq!(&test.labels().unwrap()[..5], &[7, 2, 1, 0, 4]);
    assert_eq!(pixel_sum(test, 0), 18_454);
    assert_eq!(pixel_sum(test, 1), 28_850);
    assert_eq!(pixel_sum(test, 9_999), 41_833);
    let ex = test.get(0);
    assert_eq!(ex.image.shape(), &[1, 28, 28]);
    assert_eq!(ex.label, Some(7));
    let v = ex.image.to_vec();
    assert_eq!(v[0], -1.0); // the corner is background
    assert!(v.contains(&1.0));
}

#[test]
fn progress_reaches_the_total() {
    let mut last = (0, 0);
    let mut calls = 0;
    load_mnist_with_progress(
        &bundled_data_dir().join("mnist"),
        Split::Test,
        &mut |d, t| {
            assert!(d <= t);
            last = (d, t);
            calls += 1;
        },
    )
    .unwrap();
    assert!(calls >= 2);
    assert_eq!(last.0, last.1);
    assert_eq!(last.1, 1_616_508 + 4_517);
}

#[test]
fn emoji_counts_and_checksums() {
    let e = emoji();
    assert_eq!(e.len(), 3786);
    assert_eq!(e.shape(), [3, 64, 64]);
    assert_eq!(pixel_sum(e, 0), 2_131_107);
    assert_eq!(pixel_sum(e, 1), 2_159_504);
    assert_eq!(pixel_sum(e, 3785), 2_271_625);
    // HWC on disk, CHW in memory: the corner pixel is white (composited background).
    assert_eq!(&e.hwc(0)[..3], &[255, 255, 255]);
}

#[test]
fn edges2emoji_is_a_deterministic_line_drawing() {
    let e = emoji();
    let val = edges2emoji(e, Split::Test);
    assert_eq!(val.len(), 379);
    assert_eq!(edges2emoji(e, Split::Train).len(), 3407);
    assert_eq!(val.image_shape(), vec![3, 64, 64]);
    assert_eq!(val.target().pixels(1), e.pixels(10)); // every 10th image
    assert_eq!(val, edges2emoji(e, Split::Test));
    let a = val.input().as_bytes();
    assert!(a.iter().all(|&v| v == 0 || v == 255));
    let ink = a.iter().filter(|&&v| v == 0).count() as f64 / a.len() as f64;
    assert!((0.02..0.35).contains(&ink), "fraction of line pixels {ink}");
    // The three channels of the drawing are the same plane.
    let x = val.input().pixels(0);
    assert_eq!(&x[..4096], &x[4096..8192]);
}

#[test]
fn edges2digits_outlines_every_digit() {
    let pairs = edges2digits(mnist(Split::Test));
    assert_eq!(pairs.len(), 10_000);
    assert_eq!(pairs.image_shape(), vec![1, 28, 28]);
    assert_eq!(pairs.target_shape(), Some(vec![1, 28, 28]));
    for i in [0, 1, 2, 9_999] {
        let a = pairs.input().pixels(i);
        let lines = a.iter().filter(|&&v| v == 0).count();
        assert!((20..400).contains(&lines), "digit {i}: {lines} line pixels");
        // Lines lie on or next to the digit's strokes.
        let b = pairs.target().pixels(i);
        for (p, _) in a.iter().enumerate().filter(|(_, v)| **v == 0) {
            let (x, y) = ((p % 28) as isize, (p / 28) as isize);
            let near = (-2..=2).any(|dy| {
                (-2..=2).any(|dx| {
                    let (nx, ny) = (x + dx, y + dy);
                    (0..28).contains(&nx)
                        && (0..28).contains(&ny)
                        && b[(ny * 28 + nx) as usize] > 64
                })
            });
            assert!(near, "digit {i}: line at ({x}, {y}) far from the stroke");
        }
    }
}

#[test]
fn builtin_names_load() {
    for (name, shape, target) in [
        ("ring", vec![2], None),
        ("grid", vec![2], None),
        ("emoji", vec![3, 64, 64], None),
        ("emoji128", vec![3, 128, 128], None),
        ("emoji-faces", vec![3, 64, 64], None),
        ("emoji-faces128", vec![3, 128, 128], None),
        ("edges2emoji", vec![3, 64, 64], Some(vec![3, 64, 64])),
        ("edges2emoji128", vec![3, 128, 128], Some(vec![3, 128, 128])),
    ] {
        let ds = builtin(name, Split::Test).unwrap();
        assert_eq!(ds.image_shape(), shape, "{name}");
        assert_eq!(ds.target_shape(), target, "{name}");
        assert!(!ds.is_empty());
    }
    let ring = builtin("ring", Split::Train).unwrap();
    assert_eq!(ring.len(), gantry_datasets::MIXTURE_POINTS);
    assert_eq!(ring.num_classes(), Some(8));
    let err = builtin("imagenet", Split::Train).err().unwrap();
    assert!(err.to_string().contains("edges2digits"), "{err}");
}

/// Class counts of the emoji sets by category (Unicode order; the 64-pixel set's 5 `Component`
/// images count as People & Body), and the split.
#[test]
fn emoji_sets_carry_their_categories() {
    let count = |name: &str| {
        let (mut hist, mut n) = (vec![0usize; 9], 0);
        for split in [Split::Train, Split::Test] {
            let set = builtin(name, split).unwrap();
            assert_eq!(set.num_classes(), Some(9), "{name}");
            for i in 0..set.len() {
                hist[set.get(i).label.expect("every emoji has a category")] += 1;
            }
            n += set.len();
        }
        (hist, n)
    };
    assert_eq!(
        count("emoji"),
        (vec![169, 2266, 159, 131, 218, 85, 264, 224, 270], 3786)
    );
    assert_eq!(
        count("emoji128"),
        (vec![168, 435, 158, 130, 218, 85, 262, 223, 270], 1949)
    );
    assert_eq!(builtin("emoji128", Split::Test).unwrap().len(), 195);
    assert_eq!(gantry_datasets::EMOJI_CATEGORIES[8], "Flags");
}

/// The 60 faces of the ageing set, in both label tables: four age groups, each person type in
/// six skin tones.
#[test]
fn emoji_label_tables_hold_the_ageing_faces() {
    for file in [
        "emoji-noto-64/emoji64-labels.tsv",
        "emoji-noto-128/emoji128-labels.tsv",
    ] {
        let rows = gantry_datasets::read_emoji_labels(&bundled_data_dir().join(file)).unwrap();
        let mut ages = [0usize; 4];
        for r in rows.iter().filter(|r| r.age_group.is_some()) {
            ages[r.age_group.unwrap()] += 1;
            assert!(r.gender.is_some(), "{file}: {}", r.short_name);
        }
        assert_eq!(ages, [6, 18, 18, 18], "{file}");
    }
}

/// The face sets: 50 training and 10 held-out faces (the `medium` skin tone of each of the
/// ten person types), labelled by age group, at both sizes; the held-out faces are the same
/// in both.
#[test]
fn the_face_sets_hold_out_one_skin_tone_of_every_person_type() {
    for (name, side, file) in [
        ("emoji-faces", 64, "emoji-noto-64/emoji64-labels.tsv"),
        ("emoji-faces128", 128, "emoji-noto-128/emoji128-labels.tsv"),
    ] {
        let mut seen = [[0usize; 4]; 2];
        for (k, split) in [Split::Train, Split::Test].into_iter().enumerate() {
            let set = builtin(name, split).unwrap();
            assert_eq!(set.image_shape(), vec![3, side, side], "{name}");
            assert_eq!(set.num_classes(), Some(4), "{name}");
            assert_eq!(set.len(), [50, 10][k], "{name} {split:?}");
            for i in 0..set.len() {
                seen[k][set.get(i).label.unwrap()] += 1;
            }
        }
        assert_eq!(seen, [[5, 15, 15, 15], [1, 3, 3, 3]], "{name}");
        let rows = gantry_datasets::read_emoji_labels(&bundled_data_dir().join(file)).unwrap();
        let held: Vec<String> = gantry_datasets::face_split(&rows, Split::Test)
            .into_iter()
            .map(|i| format!("{}/{}", rows[i].short_name, rows[i].skin_tone))
            .collect();
        assert_eq!(held.len(), 10, "{name}");
        assert!(held.iter().all(|h| h.ends_with("/medium")), "{held:?}");
        for person in [
            "baby",
            "child",
            "adult",
            "older_adult",
            "boy",
            "man",
            "older_man",
        ] {
            assert!(
                held.contains(&format!("{person}/medium")),
                "{person}: {held:?}"
            );
        }
    }
}

/// Every face of the ageing set has its true self at each other age group: the person type
/// of its gender line (boy, man, older man; girl, woman, older woman; child, adult, older
/// adult) or the baby, always at its own skin tone, so held-out faces pair with held-out ones.
#[test]
fn every_face_has_its_true_self_at_every_age() {
    for name in ["emoji-faces", "emoji-faces128"] {
        let (faces, rows) = load_face_table(name, &data_roots(), &mut |_, _| {}).unwrap();
        assert_eq!((faces.len(), rows.len()), (60, 60), "{name}");
        let name_at = |i: usize, age: usize| {
            let j = same_person_at(&rows, i, age).unwrap_or_else(|| panic!("{name}: {i} at {age}"));
            assert_eq!(rows[j].skin_tone, rows[i].skin_tone);
            assert_eq!(rows[j].age_group, Some(age));
            rows[j].short_name.as_str()
        };
        for (i, row) in rows.iter().enumerate() {
            let line: Vec<&str> = (0..4).map(|age| name_at(i, age)).collect();
            let want: &[&str] = match row.gender.as_deref() {
                Some("male") => &["baby", "boy", "man", "older_man"],
                Some("female") => &["baby", "girl", "woman", "older_woman"],
                _ => &["baby", "child", "adult", "older_adult"],
            };
            assert_eq!(line, want, "{name}: {}", row.short_name);
            assert_eq!(same_person_at(&rows, i, row.age_group.unwrap()), Some(i));
        }
    }
}

#[test]
fn missing_data_is_a_clear_error() {
    let empty = tempfile::tempdir().unwrap();
    let roots = [empty.path().to_path_buf()];
    for name in ["fashion-mnist", "cifar10", "mnist", "emoji", "emoji128"] {
        let err = builtin_with(name, Split::Train, &roots, &mut |_, _| {})
            .err()
            .unwrap();
        assert!(matches!(err, DataError::NotFound { .. }), "{name}: {err}");
        let msg = err.to_string();
        assert!(
            msg.contains("GANTRY_DATA") && msg.contains(&empty.path().display().to_string()),
            "{msg}"
        );
    }
}

/// CIFAR-10 and Fashion-MNIST are not bundled: they are read from the shared data folder
/// beside the checkout (`../shared/data`, as CI has it) or `$GANTRY_DATA`; without them the
/// test fails and says so.
#[test]
fn shared_cifar10_and_fashion_mnist() {
    let roots = data_roots();
    for folder in ["cifar10-subset", "fashion-mnist"] {
        assert!(
            roots.iter().any(|r| r.join(folder).is_dir()),
            "no {folder}/ in the data folders {roots:?}: put the shared data folder at \
             ../shared/data beside the checkout (its SOURCES.md says where each file comes \
             from) or set GANTRY_DATA to a folder holding {folder}/"
        );
    }
    let cifar = builtin_with("cifar10", Split::Test, &roots, &mut |_, _| {}).unwrap();
    assert_eq!(cifar.len(), 2000);
    assert_eq!(cifar.image_shape(), vec![3, 32, 32]);
    assert_eq!(cifar.num_classes(), Some(10));
    let labels: Vec<usize> = (0..cifar.len())
        .map(|i| cifar.get(i).label.unwrap())
        .collect();
    assert_eq!((labels[0], labels[1], labels[10]), (0, 1, 0));
    for c in 0..10 {
        assert_eq!(labels.iter().filter(|&&l| l == c).count(), 200);
    }
    // Sum of image 0's bytes from the raw file: 441695, i.e. this mean in [-1, 1].
    let mean = cifar.get(0).image.mean_all() as f64;
    assert!(
        (mean - (441_695.0 / 3072.0 - 127.5) / 127.5).abs() < 1e-5,
        "{mean}"
    );

    let fashion = builtin_with("fashion-mnist", Split::Test, &roots, &mut |_, _| {}).unwrap();
    assert_eq!(fashion.len(), 10_000);
    let mut counts = [0; 10];
    (0..fashion.len()).for_each(|i| counts[fashion.get(i).label.unwrap()] += 1);
    assert_eq!(counts, [1000; 10]);
}

/// An emoji folder without its label table (an older copy of the data) is an error that names
/// the missing file; a table that does not match the images is one too.
#[test]
fn emoji_without_their_label_table_say_which_file_is_missing() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("emoji-noto-64");
    std::fs::create_dir_all(&dir).unwrap();
    let mut idx = vec![0u8, 0, 8, 4];
    for d in [2u32, 8, 8, 3] {
        idx.extend_from_slice(&d.to_be_bytes());
    }
    idx.extend(std::iter::repeat_n(200u8, 2 * 8 * 8 * 3));
    std::fs::write(dir.join("emoji64-rgb-idx4-ubyte"), &idx).unwrap();
    let roots = [root.path().to_path_buf()];
    let err = builtin_with("emoji", Split::Train, &roots, &mut |_, _| {})
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("emoji64-labels.tsv"), "{err}");
    std::fs::write(
        dir.join("emoji64-labels.tsv"),
        "index\tshort_name\tcategory\tsubcategory\tskin_tone\tage_group\tgender\n\
         0\ta\tFlags\tf\tnone\t\t\n",
    )
    .unwrap();
    let err = builtin_with("emoji", Split::Train, &roots, &mut |_, _| {})
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("emoji64-labels.tsv") && err.contains("1 labels for 2 images"),
        "{err}"
    );
}

/// `edges2emoji128`: the 128-pixel emoji with the same edge pipeline and split rule as
/// `edges2emoji` (every 10th image is validation); line drawings, not blank or solid pages.
#[test]
fn edges2emoji128_pairs_the_large_emoji_with_their_line_drawings() {
    let (train, val) = (
        builtin("edges2emoji128", Split::Train).unwrap(),
        builtin("edges2emoji128", Split::Test).unwrap(),
    );
    assert_eq!((train.len(), val.len()), (1754, 195));
    let mut dark = 0.0;
    for i in 0..val.len() {
        let a = val.get(i).image.to_vec();
        dark += a.iter().filter(|&&v| v < 0.0).count() as f64 / a.len() as f64;
    }
    let mean = dark / val.len() as f64;
    assert!(
        (0.01..0.3).contains(&mean),
        "dark (line) pixel share {mean}"
    );
}
