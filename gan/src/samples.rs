//! Pictures of samples: PNG grids of images, scatter plots of 2-D points.

use crate::error::{GanError, Result};
use gantry_tensor::Tensor;
use image::{ImageFormat, Rgb, RgbImage};
use std::io::Cursor;
use std::path::Path;

/// Pixels between tiles of a grid (as torchvision's `make_grid`).
const PAD: u32 = 2;

fn image_error(path: &Path, message: impl Into<String>) -> GanError {
    GanError::Image {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Encodes `img` as PNG and writes it atomically (temporary sibling, then rename).
fn write_png(img: &RgbImage, path: &Path) -> Result<()> {
    let mut bytes = Vec::new();
    img.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
        .map_err(|e| image_error(path, e.to_string()))?;
    let tmp = path.with_extension("png.tmp");
    std::fs::write(&tmp, &bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| image_error(path, e.to_string()))
}

/// Lays out `images` (`[N, C, H, W]`, values in `[-1, 1]`, C = 1 or 3) in a grid of `nrow`
/// tiles per row.
///
/// # Panics
/// If the tensor is not 4-D with 1 or 3 channels.
#[track_caller]
pub fn grid_image(images: &Tensor, nrow: usize) -> RgbImage {
    let s = images.shape();
    assert!(
        s.len() == 4 && (s[1] == 1 || s[1] == 3),
        "grid_image: images {s:?} must be [N, 1 or 3, H, W]"
    );
    let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
    let nrow = nrow.clamp(1, n.max(1));
    let rows = n.div_ceil(nrow);
    let (tw, th) = (w as u32 + PAD, h as u32 + PAD);
    let mut img = RgbImage::new(nrow as u32 * tw + PAD, rows as u32 * th + PAD);
    let v = images.as_slice();
    let to_u8 = |x: f32| ((x.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8;
    for i in 0..n {
        let (ox, oy) = ((i % nrow) as u32 * tw + PAD, (i / nrow) as u32 * th + PAD);
        for y in 0..h {
            for x in 0..w {
                let px = |ch: usize| to_u8(v[((i * c + ch) * h + y) * w + x]);
                let rgb = if c == 1 {
                    [px(0); 3]
                } else {
                    [px(0), px(1), px(2)]
                };
                img.put_pixel(ox + x as u32, oy + y as u32, Rgb(rgb));
            }
        }
    }
    img
}

/// Writes `images` as a PNG grid with `nrow` tiles per row.
///
/// # Errors
/// If the file cannot be written.
///
/// # Panics
/// As [`grid_image`].
pub fn save_grid(images: &Tensor, nrow: usize, path: &Path) -> Result<()> {
    write_png(&grid_image(images, nrow), path)
}

/// Writes one image (`[C, H, W]` or `[1, C, H, W]`, values in `[-1, 1]`) as a PNG without a
/// border.
///
/// # Errors
/// If the file cannot be written.
///
/// # Panics
/// As [`grid_image`].
pub fn save_image(image: &Tensor, path: &Path) -> Result<()> {
    let s = image.shape();
    let img = if s.len() == 3 {
        image.reshape(&[1, s[0], s[1], s[2]])
    } else {
        image.clone()
    };
    let grid = grid_image(&img, 1);
    let (w, h) = (grid.width() - 2 * PAD, grid.height() - 2 * PAD);
    let inner = image::imageops::crop_imm(&grid, PAD, PAD, w, h).to_image();
    write_png(&inner, path)
}

/// Writes a scatter plot of 2-D `points` (`[N, 2]`) over `[-extent, extent]²`: samples in
/// blue, the true modes as red crosses.
///
/// # Errors
/// If the file cannot be written.
///
/// # Panics
/// If `points` is not `[N, 2]`.
#[track_caller]
pub fn save_scatter(points: &Tensor, modes: &[[f32; 2]], extent: f32, path: &Path) -> Result<()> {
    assert!(
        points.ndim() == 2 && points.shape()[1] == 2,
        "save_scatter: points {:?} must be [N, 2]",
        points.shape()
    );
    let size = 400u32;
    let mut img = RgbImage::from_pixel(size, size, Rgb([255, 255, 255]));
    let to_px = |v: f32| ((v / extent + 1.0) * 0.5 * (size - 1) as f32).round() as i64;
    let mut dot = |x: i64, y: i64, color: [u8; 3]| {
        if (0..size as i64).contains(&x) && (0..size as i64).contains(&y) {
            img.put_pixel(x as u32, (size as i64 - 1 - y) as u32, Rgb(color));
        }
    };
    for p in points.as_slice().chunks(2) {
        let (x, y) = (to_px(p[0]), to_px(p[1]));
        for (dx, dy) in [(0, 0), (1, 0), (0, 1), (-1, 0), (0, -1)] {
            dot(x + dx, y + dy, [40, 90, 200]);
        }
    }
    for m in modes {
        let (x, y) = (to_px(m[0]), to_px(m[1]));
        for d in -5..=5 {
            dot(x + d, y + d, [220, 30, 30]);
            dot(x + d, y - d, [220, 30, 30]);
        }
    }
    write_png(&img, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_has_padded_tiles_and_maps_range() {
        let images = Tensor::from_vec(
            &[3, 1, 2, 2],
            vec![
                -1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -1.0,
            ],
        );
        let img = grid_image(&images, 2);
        assert_eq!(img.dimensions(), (2 * 4 + 2, 2 * 4 + 2));
        assert_eq!(img.get_pixel(2, 2).0, [0, 0, 0]);
        assert_eq!(img.get_pixel(3, 2).0, [255, 255, 255]);
        assert_eq!(img.get_pixel(2, 3).0, [128, 128, 128]);
        assert_eq!(img.get_pixel(6, 2).0, [255, 255, 255]);
    }
}
