//! Numeric checks of the mixtures, the batch iterator, augmentation of pairs, and the folder
//! loaders on small images written to a temporary folder.

use gantry_datasets::{
    Augment, BatchConfig, Batches, Channels, Dataset, Direction, FolderOptions, ImageSet, Mixture,
    OnSizeMismatch, PairSet, Transform, load_image_folder, load_pix2pix,
};
use rand::SeedableRng;
use std::path::Path;

fn check_mixture(m: &Mixture, n: usize) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let k = m.centres().len();
    let mut sum = vec![[0f64; 2]; k];
    let mut sq = vec![[0f64; 2]; k];
    let mut count = vec![0usize; k];
    for _ in 0..n {
        let (p, mode) = m.sample_one(&mut rng);
        assert_eq!(m.nearest(p).0, mode, "modes are well separated");
        count[mode] += 1;
        for a in 0..2 {
            sum[mode][a] += p[a] as f64;
            sq[mode][a] += (p[a] as f64).powi(2);
        }
    }
    let std = m.std() as f64;
    for j in 0..k {
        let c = count[j] as f64;
        let expected = n as f64 / k as f64;
        assert!(
            (c - expected).abs() < 5.0 * expected.sqrt(),
            "mode {j}: {c} points, expected {expected}"
        );
        for a in 0..2 {
            let mean = sum[j][a] / c;
            let var = sq[j][a] / c - mean * mean;
            let centre = m.centres()[j][a] as f64;
            assert!(
                (mean - centre).abs() < 5.0 * std / c.sqrt(),
                "mode {j} axis {a}: mean {mean} vs {centre}"
            );
            assert!(
                (var.sqrt() / std - 1.0).abs() < 0.06,
                "mode {j} axis {a}: std {} vs {std}",
                var.sqrt()
            );
        }
    }
}

#[test]
fn ring_and_grid_have_the_papers_moments() {
    check_mixture(&Mixture::ring8(), 80_000);
    check_mixture(&Mixture::grid25(), 100_000);
    let t = Mixture::ring8().sample(1000, &mut rand_chacha::ChaCha8Rng::seed_from_u64(0));
    assert_eq!(t.shape(), &[1000, 2]);
    let radius: f32 = t.to_vec().chunks(2).map(|p| p[0].hypot(p[1])).sum::<f32>() / 1000.0;
    assert!((radius - 1.0).abs() < 0.01);
}

/// Random RGB images with some structure, so that crops and flips change them.
fn images(n: usize, c: usize, side: usize, seed: u64) -> ImageSet {
    use rand::Rng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let bytes = (0..n * c * side * side)
        .map(|_| rng.random::<u8>())
        .collect();
    ImageSet::from_chw([c, side, side], bytes)
}

#[test]
fn pairs_stay_aligned_through_augmentation() {
    let a = images(20, 3, 64, 1);
    let pairs = PairSet::new(a.clone(), a.clone());
    let config = BatchConfig::new(8)
        .seed(5)
        .epochs(3)
        .augment(Augment::jitter(64));
    let mut changed = 0;
    for batch in Batches::new(&pairs, config) {
        assert_eq!(batch.images.shape()[1..], [3, 64, 64]);
        assert_eq!(Some(&batch.images), batch.targets.as_ref());
        let first = a.image(batch.indices[0]);
        if batch.images.slice_axis(0, 0, 1).reshape(&[3, 64, 64]) != first {
            changed += 1;
        }
    }
    assert!(changed >= 5, "jitter changed only {changed} batches");

    // Different channel counts: a grey input and an RGB target made of three copies of it.
    let grey = images(6, 1, 40, 2);
    let rgb_bytes: Vec<u8> = (0..6).flat_map(|i| grey.pixels(i).repeat(3)).collect();
    let pairs = PairSet::new(grey, ImageSet::from_chw([3, 40, 40], rgb_bytes));
    let aug = Augment::new(vec![
        Transform::Resize {
            height: 45,
            width: 50,
        },
        Transform::RandomCrop {
            height: 32,
            width: 32,
        },
        Transform::HorizontalFlip { p: 0.5 },
    ]);
    for batch in Batches::new(&pairs, BatchConfig::new(3).augment(aug)) {
        let x = batch.images.to_vec();
        let y = batch.targets.unwrap().to_vec();
        for i in 0..3 {
            let plane = &x[i * 1024..(i + 1) * 1024];
            for c in 0..3 {
                assert_eq!(plane, &y[(i * 3 + c) * 1024..(i * 3 + c + 1) * 1024]);
            }
        }
    }
}

#[test]
fn same_seed_same_batches_bit_for_bit() {
    let pairs = PairSet::new(images(30, 3, 32, 3), images(30, 1, 32, 4));
    let run = |seed| -> Vec<_> {
        let config = BatchConfig::new(7)
            .seed(seed)
            .epochs(2)
            .augment(Augment::jitter(32));
        Batches::new(&pairs, config).collect()
    };
    let (a, b, c) = (run(9), run(9), run(10));
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(a.len(), 10);
    assert_ne!(a[0].indices, a[5].indices, "each epoch is reshuffled");
}

#[test]
fn forever_counts_epochs() {
    let set = images(10, 1, 4, 0);
    let mut batches = Batches::new(&set, BatchConfig::new(4).drop_last(true).forever());
    assert_eq!(batches.batches_per_epoch(), 2);
    let epochs: Vec<usize> = batches.by_ref().take(7).map(|b| b.epoch).collect();
    assert_eq!(epochs, vec![0, 0, 1, 1, 2, 2, 3]);
    assert_eq!(batches.epoch(), 3);
}

fn save_rgb(path: &Path, w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) {
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb(f(x, y)))
        .save(path)
        .unwrap();
}

#[test]
fn image_folder_with_classes_and_resizing() {
    let dir = tempfile::tempdir().unwrap();
    for (class, shade) in [("cats", 10u8), ("dogs", 200)] {
        std::fs::create_dir(dir.path().join(class)).unwrap();
        for k in 0..3 {
            let ext = if k == 2 { "jpg" } else { "png" };
            save_rgb(
                &dir.path().join(format!("{class}/{k}.{ext}")),
                8,
                6,
                |_, _| [shade, shade, shade],
            );
        }
    }
    std::fs::write(
        dir.path().join("README.txt"),
        "ignored: root files in class mode",
    )
    .unwrap();
    let set = load_image_folder(dir.path(), &FolderOptions::default(), &mut |_, _| {}).unwrap();
    assert_eq!(set.len(), 6);
    assert_eq!(set.shape(), [3, 6, 8]);
    assert_eq!(set.class_names(), &["cats".to_string(), "dogs".to_string()]);
    assert_eq!(set.labels(), Some(&[0, 0, 0, 1, 1, 1][..]));
    assert_eq!(set.pixels(0)[0], 10);
    assert!(set.pixels(5)[0].abs_diff(200) <= 2, "JPEG is close");

    // A differently sized image: rejected by default, resized on request.
    save_rgb(&dir.path().join("dogs/3.png"), 16, 12, |x, _| {
        [(x * 16) as u8, 0, 0]
    });
    let err = load_image_folder(dir.path(), &FolderOptions::default(), &mut |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("3.png"), "{err}");
    let options = FolderOptions {
        on_mismatch: OnSizeMismatch::Resize,
        channels: Channels::Gray,
        ..Default::default()
    };
    let mut done = 0;
    let set = load_image_folder(dir.path(), &options, &mut |d, _| done = d).unwrap();
    assert_eq!((set.len(), set.shape(), done), (7, [1, 6, 8], 7));
}

#[test]
fn pix2pix_halves_and_direction() {
    let root = tempfile::tempdir().unwrap();
    let train = root.path().join("train");
    std::fs::create_dir(&train).unwrap();
    for k in 0..4u8 {
        // Left half red, right half blue, shade by image.
        save_rgb(&train.join(format!("{k}.png")), 12, 6, |x, _| {
            if x < 6 {
                [50 + k, 0, 0]
            } else {
                [0, 0, 100 + k]
            }
        });
    }
    let opts = FolderOptions::default();
    let ab = load_pix2pix(root.path(), "train", Direction::AtoB, &opts, &mut |_, _| {}).unwrap();
    assert_eq!(ab.len(), 4);
    assert_eq!(ab.image_shape(), vec![3, 6, 6]);
    let ex = ab.get(2);
    let (a, b) = (ex.image.to_vec(), ex.target.unwrap().to_vec());
    assert_eq!(a[0], (52.0 - 127.5) / 127.5); // red plane of A
    assert_eq!(b[2 * 36], (102.0 - 127.5) / 127.5); // blue plane of B
    let ba = load_pix2pix(root.path(), "train", Direction::BtoA, &opts, &mut |_, _| {}).unwrap();
    assert_eq!(ba.get(2).image, ab.get(2).target.unwrap());
}
