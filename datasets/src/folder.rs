//! Folders of PNG/JPEG images, with class sub-folders as labels (as torchvision's
//! `ImageFolder`): `root/cat/001.png`, `root/dog/xyz.jpg`, … or just `root/*.png` unlabelled.

use crate::error::{DataError, Result};
use crate::image_set::ImageSet;
use crate::source::Progress;
use image::imageops::FilterType;
use image::{DynamicImage, ImageReader, Limits};
use rayon::prelude::*;
use std::io::Cursor;
use std::path::{Path, PathBuf};

/// Colour channels to decode images to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Channels {
    /// One channel of luminance.
    Gray,
    /// Three channels, red, green, blue (alpha is dropped; composite first if it matters).
    #[default]
    Rgb,
}

impl Channels {
    /// 1 or 3.
    pub fn count(self) -> usize {
        match self {
            Channels::Gray => 1,
            Channels::Rgb => 3,
        }
    }
}

/// What to do with an image whose size differs from the set's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnSizeMismatch {
    /// Fail with [`DataError::SizeMismatch`] naming the file.
    #[default]
    Reject,
    /// Resize it (bilinear, antialiased when shrinking) to the set's size.
    Resize,
}

/// Options of [`load_image_folder`] and [`load_pix2pix`](crate::load_pix2pix).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FolderOptions {
    /// `(width, height)` of the set. `None`: the size of the first image in sorted order.
    pub size: Option<(u32, u32)>,
    /// What to do with an image of another size.
    pub on_mismatch: OnSizeMismatch,
    /// Channels to decode to.
    pub channels: Channels,
    /// Skip files whose extension is not `png`, `jpg` or `jpeg` (any case). When `false` (the
    /// default) every non-hidden file must decode as an image, and one that does not is an error.
    pub skip_other_files: bool,
}

/// One decoded image, interleaved (HWC) bytes.
pub(crate) struct Decoded {
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    pub hwc: Vec<u8>,
}

/// Largest width or height accepted, and the most bytes a decoder may allocate: a crafted
/// header cannot make decoding allocate more.
const MAX_SIDE: u32 = 1 << 14;
const MAX_DECODE_BYTES: u64 = 512 << 20;

/// Decodes PNG or JPEG bytes (the format is detected from the bytes) to `channels`; returns
/// `(width, height, HWC bytes)`. `path` names the bytes in errors.
pub fn decode_image(bytes: &[u8], path: &Path, channels: Channels) -> Result<(u32, u32, Vec<u8>)> {
    Ok(to_channels(decode_dynamic(bytes, path)?, channels))
}

/// Decodes PNG or JPEG bytes within the size limits.
fn decode_dynamic(bytes: &[u8], path: &Path) -> Result<DynamicImage> {
    let err = |source| DataError::Image {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| err(image::ImageError::IoError(e)))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    reader.decode().map_err(err)
}

/// Reads one image file as [`load_image_file`] does, but composites a transparent image
/// onto white first (as the bundled emoji were made), instead of dropping its alpha (which
/// leaves whatever colour the transparent pixels happen to hold).
///
/// # Errors
/// If the file cannot be read or decoded; the error names it.
pub fn load_image_on_white(path: &Path, channels: Channels) -> Result<(u32, u32, Vec<u8>)> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let img = decode_dynamic(&bytes, path)?;
    let img = if img.color().has_alpha() {
        let mut rgba = img.into_rgba8();
        for p in rgba.pixels_mut() {
            let a = u16::from(p[3]);
            for k in 0..3 {
                let v = u16::from(p[k]) * a + 255 * (255 - a);
                p[k] = ((v + 127) / 255) as u8;
            }
            p[3] = 255;
        }
        DynamicImage::ImageRgba8(rgba)
    } else {
        img
    };
    Ok(to_channels(img, channels))
}

fn to_channels(img: DynamicImage, channels: Channels) -> (u32, u32, Vec<u8>) {
    let (w, h) = (img.width(), img.height());
    let bytes = match channels {
        Channels::Gray => img.into_luma8().into_raw(),
        Channels::Rgb => img.into_rgb8().into_raw(),
    };
    (w, h, bytes)
}

/// Reads and decodes one image file.
pub fn load_image_file(path: &Path, channels: Channels) -> Result<(u32, u32, Vec<u8>)> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    decode_image(&bytes, path, channels)
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

/// Sorted non-hidden entries of `dir`: `(files, sub-folders)`.
fn list_dir(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    let (mut files, mut dirs) = (Vec::new(), Vec::new());
    for entry in entries {
        let path = entry.map_err(|e| DataError::io(dir, e))?.path();
        if is_hidden(&path) {
            continue;
        }
        if path.is_dir() {
            dirs.push(path);
        } else {
            files.push(path);
        }
    }
    files.sort();
    dirs.sort();
    Ok((files, dirs))
}

/// The image files directly in `dir`, sorted; an error if there are none.
pub(crate) fn image_files(dir: &Path, skip_other_files: bool) -> Result<Vec<PathBuf>> {
    let (mut files, _) = list_dir(dir)?;
    if skip_other_files {
        files.retain(|p| has_image_extension(p));
    }
    if files.is_empty() {
        return Err(DataError::Empty {
            path: dir.to_path_buf(),
            hint: "expected .png/.jpg/.jpeg files".into(),
        });
    }
    Ok(files)
}

/// Decodes `paths` (in parallel, in chunks, results in order), reporting files done.
pub(crate) fn decode_files(
    paths: &[PathBuf],
    channels: Channels,
    progress: Progress<'_>,
) -> Result<Vec<Decoded>> {
    let total = paths.len() as u64;
    let mut out = Vec::with_capacity(paths.len());
    for chunk in paths.chunks(64) {
        let decoded: Vec<Result<Decoded>> = chunk
            .par_iter()
            .map(|p| {
                let (width, height, hwc) = load_image_file(p, channels)?;
                Ok(Decoded {
                    path: p.clone(),
                    width,
                    height,
                    hwc,
                })
            })
            .collect();
        for d in decoded {
            out.push(d?);
        }
        progress(out.len() as u64, total);
    }
    Ok(out)
}

/// Brings `img` to `(width, height)`: unchanged if it has that size, resized or rejected
/// otherwise, as `policy` says.
pub(crate) fn fit(
    img: Decoded,
    size: (u32, u32),
    policy: OnSizeMismatch,
    channels: Channels,
) -> Result<Decoded> {
    if (img.width, img.height) == size {
        return Ok(img);
    }
    if policy == OnSizeMismatch::Reject {
        return Err(DataError::SizeMismatch {
            path: img.path,
            expected_w: size.0,
            expected_h: size.1,
            found_w: img.width,
            found_h: img.height,
        });
    }
    let hwc = resize_hwc(&img.hwc, img.width, img.height, size, channels);
    Ok(Decoded {
        hwc,
        width: size.0,
        height: size.1,
        ..img
    })
}

/// Resizes interleaved bytes with the `image` crate's triangle (bilinear) filter.
pub(crate) fn resize_hwc(
    hwc: &[u8],
    w: u32,
    h: u32,
    size: (u32, u32),
    channels: Channels,
) -> Vec<u8> {
    match channels {
        Channels::Gray => {
            let buf = image::GrayImage::from_raw(w, h, hwc.to_vec()).expect("decoded size");
            image::imageops::resize(&buf, size.0, size.1, FilterType::Triangle).into_raw()
        }
        Channels::Rgb => {
            let buf = image::RgbImage::from_raw(w, h, hwc.to_vec()).expect("decoded size");
            image::imageops::resize(&buf, size.0, size.1, FilterType::Triangle).into_raw()
        }
    }
}

/// A zero width or height cannot hold an image.
pub(crate) fn check_size(path: &Path, size: (u32, u32)) -> Result<()> {
    if size.0 == 0 || size.1 == 0 {
        return Err(DataError::format(
            path,
            format!("image size {}x{} is empty", size.0, size.1),
        ));
    }
    Ok(())
}

/// Loads a folder of images into one [`ImageSet`].
///
/// If `root` has sub-folders, each is a class (labels 0.. in sorted name order, the names in
/// [`ImageSet::class_names`]) and files directly in `root` are ignored, as torchvision does;
/// otherwise the images in `root` are loaded without labels. Hidden files (`.name`) are
/// skipped. Images are sorted by path, so the order is the same on every machine. `progress`
/// gets `(files decoded, files)`.
pub fn load_image_folder(
    root: &Path,
    options: &FolderOptions,
    progress: Progress<'_>,
) -> Result<ImageSet> {
    let (_, dirs) = list_dir(root)?;
    let mut paths = Vec::new();
    let mut labels = Vec::new();
    let mut class_names = Vec::new();
    if dirs.is_empty() {
        paths = image_files(root, options.skip_other_files)?;
    } else {
        for (class, dir) in dirs.iter().enumerate() {
            let files = image_files(dir, options.skip_other_files)?;
            labels.extend(std::iter::repeat_n(class, files.len()));
            paths.extend(files);
            class_names.push(
                dir.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
        }
    }
    let decoded = decode_files(&paths, options.channels, progress)?;
    let size = options
        .size
        .unwrap_or((decoded[0].width, decoded[0].height));
    check_size(root, size)?;
    let c = options.channels.count();
    let mut hwc = Vec::with_capacity(decoded.len() * c * size.0 as usize * size.1 as usize);
    for img in decoded {
        hwc.extend_from_slice(&fit(img, size, options.on_mismatch, options.channels)?.hwc);
    }
    let set = ImageSet::from_hwc([c, size.1 as usize, size.0 as usize], &hwc);
    if class_names.is_empty() {
        Ok(set)
    } else {
        let classes = class_names.len();
        set.with_labels(labels, classes, class_names, root)
    }
}
