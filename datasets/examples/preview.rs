//! Writes a PNG grid of samples of each data set, to look at.
//!
//! ```sh
//! cargo run -p gantry-datasets --example preview [-- OUT_DIR]   # default target/preview
//! ```
//!
//! Image sets: a grid of the first examples. Pairs: each row holds input|target pairs, plain in
//! the top half and after pix2pix jitter (the same crop and flip on both sides) in the bottom
//! half. Mixtures: a scatter plot of 2,000 points with the mode centres in red.

use gantry_datasets::{
    Augment, BatchConfig, Batches, Dataset, Split, builtin, data_roots, unit_to_bytes,
};
use gantry_tensor::Tensor;
use image::{Rgb, RgbImage};
use std::path::{Path, PathBuf};

/// Tiles CHW tensors in [-1, 1] into a grid, each scaled up `scale` times, 2-pixel gutters.
fn grid(images: &[Tensor], cols: usize, scale: u32) -> RgbImage {
    let [c, h, w] = [
        images[0].shape()[0],
        images[0].shape()[1],
        images[0].shape()[2],
    ];
    let rows = images.len().div_ceil(cols);
    let (cw, ch) = (w as u32 * scale + 2, h as u32 * scale + 2);
    let mut out = RgbImage::from_pixel(
        cols as u32 * cw + 2,
        rows as u32 * ch + 2,
        Rgb([40, 40, 40]),
    );
    for (k, img) in images.iter().enumerate() {
        let bytes = unit_to_bytes(&img.to_vec());
        let (ox, oy) = ((k % cols) as u32 * cw + 2, (k / cols) as u32 * ch + 2);
        for y in 0..h as u32 * scale {
            for x in 0..w as u32 * scale {
                let p = (y / scale) as usize * w + (x / scale) as usize;
                let v = |ch: usize| bytes[ch.min(c - 1) * h * w + p];
                out.put_pixel(ox + x, oy + y, Rgb([v(0), v(1), v(2)]));
            }
        }
    }
    out
}

fn save(img: &RgbImage, dir: &Path, name: &str) {
    let path = dir.join(format!("{name}.png"));
    match img.save(&path) {
        Ok(()) => println!(
            "wrote {} ({}x{})",
            path.display(),
            img.width(),
            img.height()
        ),
        Err(e) => eprintln!("could not write {}: {e}", path.display()),
    }
}

fn image_grid(ds: &dyn Dataset, n: usize, cols: usize, scale: u32) -> RgbImage {
    let step = (ds.len() / n).max(1);
    let imgs: Vec<Tensor> = (0..n.min(ds.len()))
        .map(|i| ds.get(i * step).image)
        .collect();
    grid(&imgs, cols, scale)
}

fn pair_grid(ds: &dyn Dataset, pairs: usize, scale: u32) -> RgbImage {
    let mut tiles = Vec::new();
    for i in 0..pairs {
        let ex = ds.get(i * 7);
        tiles.push(ex.image);
        tiles.push(ex.target.expect("a pair"));
    }
    let side = ds.image_shape()[1];
    let config = BatchConfig::new(pairs)
        .seed(1)
        .augment(Augment::jitter(side));
    let batch = Batches::new(ds, config).next().expect("a batch");
    let targets = batch.targets.expect("pairs");
    for i in 0..pairs {
        let one = |t: &Tensor| t.slice_axis(0, i, i + 1).reshape(&t.shape()[1..]);
        tiles.push(one(&batch.images));
        tiles.push(one(&targets));
    }
    // Grey inputs next to RGB targets: show both as RGB.
    let tiles: Vec<Tensor> = tiles
        .into_iter()
        .map(|t| {
            if t.shape()[0] == 1 {
                Tensor::concat(0, &[&t, &t, &t])
            } else {
                t
            }
        })
        .collect();
    grid(&tiles, 8, scale)
}

fn scatter(ds: &dyn Dataset, extent: f32) -> RgbImage {
    let size = 320u32;
    let mut img = RgbImage::from_pixel(size, size, Rgb([255, 255, 255]));
    let to_px = |v: f32| ((v / extent + 1.0) * 0.5 * (size - 1) as f32).round() as i64;
    let mut plot = |x: f32, y: f32, colour: Rgb<u8>, r: i64| {
        let (px, py) = (to_px(x), to_px(-y));
        for dy in -r..=r {
            for dx in -r..=r {
                let (u, v) = (px + dx, py + dy);
                if (0..size as i64).contains(&u) && (0..size as i64).contains(&v) {
                    img.put_pixel(u as u32, v as u32, colour);
                }
            }
        }
    };
    for i in 0..2000.min(ds.len()) {
        let p = ds.get(i).image.to_vec();
        plot(p[0], p[1], Rgb([20, 60, 200]), 0);
    }
    // Centres: the mean of each label's points among the first 2,000.
    let k = ds.num_classes().unwrap_or(0);
    for c in 0..k {
        let pts: Vec<Vec<f32>> = (0..2000)
            .map(|i| ds.get(i))
            .filter(|e| e.label == Some(c))
            .map(|e| e.image.to_vec())
            .collect();
        let n = pts.len().max(1) as f32;
        let (mx, my) = pts
            .iter()
            .fold((0.0, 0.0), |(a, b), p| (a + p[0] / n, b + p[1] / n));
        plot(mx, my, Rgb([220, 30, 30]), 2);
    }
    img
}

fn main() {
    let out = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/preview"));
    std::fs::create_dir_all(&out).expect("create the output folder");
    println!("data folders searched: {:?}", data_roots());
    for name in ["mnist", "fashion-mnist", "emoji", "cifar10"] {
        match builtin(name, Split::Train) {
            Ok(ds) => {
                let scale = if ds.image_shape()[1] < 40 { 2 } else { 1 };
                save(&image_grid(ds.as_ref(), 64, 8, scale), &out, name)
            }
            Err(e) => eprintln!("skipping {name}: {e}"),
        }
    }
    for (name, extent) in [("ring", 1.5), ("grid", 5.0)] {
        match builtin(name, Split::Train) {
            Ok(ds) => save(&scatter(ds.as_ref(), extent), &out, name),
            Err(e) => eprintln!("skipping {name}: {e}"),
        }
    }
    for (name, scale) in [("edges2emoji", 2), ("edges2digits", 3)] {
        match builtin(name, Split::Test) {
            Ok(ds) => save(&pair_grid(ds.as_ref(), 8, scale), &out, name),
            Err(e) => eprintln!("skipping {name}: {e}"),
        }
    }
}
