//! `gantry translate`: run a trained translation generator (pix2pix, pix2pixHD) on images.

use crate::report::escape_html;
use crate::run::RunDir;
use crate::sampling::{generate_in, generation_mode, interleave};
use anyhow::{Context, Result, bail};
use clap::Args;
use gantry_datasets::{Channels, load_image_file, transform};
use gantry_gan::{checkpoint, samples};
use gantry_nn::Mode;
use gantry_tensor::Tensor;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// `gantry translate`.
#[derive(Args, Debug)]
#[command(
    after_help = "Input images are A, or A|B pairs side by side (then B is shown as the target).\n\
Several --run give one column per run, to compare models on the same inputs.\n\
Examples:\n  gantry translate --run runs/pix2pix-edges2emoji-1 --input drawing.png --out emoji.png\n  \
gantry translate --run runs/pix2pix-edges2emoji-1 --input val/ --out translated/\n  \
gantry translate --run runs/p2p --run runs/hd --data edges2emoji128 --n 8 --out compare.png"
)]
pub struct TranslateArgs {
    /// Run directory of a pix2pix or pix2pixhd run; repeat it to compare runs side by side
    /// (input | run 1 | run 2 | ... | target). The runs must take inputs of one shape.
    #[arg(long, required = true)]
    pub run: Vec<PathBuf>,
    /// An image file, or a folder of them.
    #[arg(long, conflicts_with = "data", required_unless_present = "data")]
    pub input: Option<PathBuf>,
    /// Instead of --input: the first --n pairs of the validation split of a paired data set
    /// (edges2emoji, edges2emoji128, edges2digits, or a pix2pix folder), written as one grid
    /// to --out.
    #[arg(long)]
    pub data: Option<String>,
    /// Pairs of --data to translate.
    #[arg(long, default_value_t = 8, requires = "data")]
    pub n: usize,
    /// Output PNG for a file or --data; output folder (strips input | output | target and
    /// index.html) for a folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of the dropout masks (pix2pix keeps dropout on at test time).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Translate with running batch statistics and without dropout, instead of the paper's
    /// test-time behaviour (batch statistics and dropout on).
    #[arg(long)]
    pub eval_mode: bool,
}

/// An input image as the model takes it, and the target half of a pair if there is one.
fn read_input(path: &Path, channels: usize, size: usize) -> Result<(Tensor, Option<Tensor>)> {
    let mode = if channels == 1 {
        Channels::Gray
    } else {
        Channels::Rgb
    };
    let (w, h, hwc) = load_image_file(path, mode)?;
    let (w, h) = (w as usize, h as usize);
    let chw = |x0: usize, width: usize| {
        let mut v = vec![0.0f32; channels * h * width];
        for y in 0..h {
            for x in 0..width {
                for c in 0..channels {
                    v[(c * h + y) * width + x] =
                        f32::from(hwc[(y * w + x0 + x) * channels + c]) / 127.5 - 1.0;
                }
            }
        }
        transform::resize(&Tensor::from_vec(&[channels, h, width], v), size, size)
            .reshape(&[1, channels, size, size])
    };
    if w == 2 * h {
        Ok((chw(0, h), Some(chw(h, h))))
    } else {
        Ok((chw(0, w), None))
    }
}

/// A loaded translation run.
struct Translator {
    trainer: gantry_gan::Trainer,
    mode: Mode,
}

impl Translator {
    /// The run in `dir`, refused unless it translates inputs.
    fn load(dir: &Path, eval_mode: bool) -> Result<(Self, Vec<usize>)> {
        let run = RunDir {
            root: dir.to_path_buf(),
        };
        let (trainer, _) = checkpoint::load_for_sampling(&run.checkpoint())
            .with_context(|| format!("cannot load the run in {}", dir.display()))?;
        let Some(input_shape) = trainer.gan.config().condition_shape() else {
            let config = trainer.gan.config();
            let other = match config {
                gantry_gan::models::ModelConfig::Caae(_) => "gantry age",
                _ => "gantry sample",
            };
            bail!(
                "{} is a {} run, not a translation run (pix2pix, pix2pixhd): use `{other}`",
                dir.display(),
                config.kind()
            );
        };
        let mode = if eval_mode {
            Mode::Eval
        } else {
            generation_mode(trainer.gan.as_ref())
        };
        Ok((Translator { trainer, mode }, input_shape))
    }

    fn translate(&self, input: &Tensor, seed: u64) -> Tensor {
        generate_in(self.trainer.gan.as_ref(), input, seed, self.mode)
    }
}

/// Runs `gantry translate`.
pub fn run(args: TranslateArgs) -> Result<()> {
    let mut runs = Vec::with_capacity(args.run.len());
    let mut shape: Option<(PathBuf, Vec<usize>)> = None;
    for dir in &args.run {
        let (t, s) = Translator::load(dir, args.eval_mode)?;
        if let Some((first, want)) = &shape
            && *want != s
        {
            bail!(
                "{} takes inputs of shape {s:?} but {} takes {want:?}: compare runs of one input shape",
                dir.display(),
                first.display()
            );
        }
        shape.get_or_insert((dir.clone(), s));
        runs.push(t);
    }
    let (_, input_shape) = shape.context("--run is required")?;
    let (in_channels, image_size) = (input_shape[0], input_shape[1]);
    let Some(input) = &args.input else {
        let data = args
            .data
            .as_deref()
            .context("--input or --data is required")?;
        return translate_split(&runs, data, args.n, image_size, &args.out, args.seed);
    };
    if same_place(input, &args.out) {
        bail!(
            "--out {} is --input itself: the translations would replace the originals",
            args.out.display()
        );
    }
    if input.is_file() {
        let (a, _) = read_input(input, in_channels, image_size)?;
        if runs.len() == 1 {
            samples::save_image(&runs[0].translate(&a, args.seed), &args.out)?;
        } else {
            let (grid, cols) = strip(&runs, &a, None, args.seed);
            samples::save_grid(&grid, cols, &args.out)?;
        }
        println!("wrote {}", args.out.display());
        return Ok(());
    }
    if !input.is_dir() {
        bail!("--input {}: no such file or folder", input.display());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(input)
        .with_context(|| format!("cannot list {}", input.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| ["png", "jpg", "jpeg"].contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        bail!(
            "--input {}: no PNG or JPEG images in the folder",
            input.display()
        );
    }
    let names = output_names(&files)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut html = String::from(
        "<!doctype html><meta charset=utf-8><title>gantry translate</title>\n\
         <style>body{font-family:sans-serif}img{image-rendering:pixelated;width:420px}</style>\n\
         <h1>input | output | target</h1>\n",
    );
    for (i, (file, name)) in files.iter().zip(&names).enumerate() {
        let (a, b) = read_input(file, in_channels, image_size)?;
        let (grid, cols) = strip(&runs, &a, b.as_ref(), args.seed.wrapping_add(i as u64));
        samples::save_grid(&grid, cols, &args.out.join(name))?;
        let (src, text) = (url_path(name), escape_html(name));
        let _ = writeln!(
            html,
            "<figure><img src=\"{src}\" alt=\"{text}\"><figcaption>{text}</figcaption></figure>"
        );
    }
    std::fs::write(args.out.join("index.html"), html)?;
    println!(
        "translated {} images into {}",
        files.len(),
        args.out.display()
    );
    Ok(())
}

/// Input `a`, each run's translation of it, and the target `b` where there is one, as rows
/// of a grid; returns them with the number of columns.
fn strip(runs: &[Translator], a: &Tensor, b: Option<&Tensor>, seed: u64) -> (Tensor, usize) {
    let outs: Vec<Tensor> = runs.iter().map(|t| t.translate(a, seed)).collect();
    let mut parts: Vec<&Tensor> = vec![a];
    parts.extend(outs.iter());
    parts.extend(b);
    (interleave(&parts), parts.len())
}

/// The first `n` pairs of `data`'s validation split, one row each (input | outputs |
/// target), as one grid in `out`.
fn translate_split(
    runs: &[Translator],
    data: &str,
    n: usize,
    size: usize,
    out: &Path,
    seed: u64,
) -> Result<()> {
    let val = crate::data::load(data, gantry_datasets::Split::Test, true)?;
    if !matches!(val.kind, crate::data::Kind::Pairs(..)) {
        bail!(
            "--data {data} is not paired data (edges2emoji, edges2emoji128, edges2digits, or a pix2pix folder)"
        );
    }
    if n == 0 {
        bail!("--n 0: nothing to translate");
    }
    let n = n.min(val.set.len());
    let mut config = gantry_datasets::BatchConfig::new(1).shuffle(false);
    if let Some(a) = crate::data::augment_for(&val.kind, Some(size), false) {
        config = config.augment(a);
    }
    let (mut rows, mut cols) = (Vec::with_capacity(n), 0);
    let pairs = gantry_datasets::Batches::new(val.set.as_ref(), config).take(n);
    for (i, batch) in pairs.enumerate() {
        let batch = crate::data::to_gan_batch(batch);
        let a = batch.condition.context("pairs have inputs")?;
        // One pair at a time, as `gantry eval` scores them.
        let (row, c) = strip(runs, &a, Some(&batch.real), seed.wrapping_add(i as u64));
        rows.push(row);
        cols = c;
    }
    let grid = Tensor::concat(0, &rows.iter().collect::<Vec<_>>());
    samples::save_grid(&grid, cols, out)?;
    println!("wrote {} ({n} validation pairs of {data})", out.display());
    Ok(())
}

/// Whether `a` and `b` name the same file or folder (`b` may not exist yet).
fn same_place(a: &Path, b: &Path) -> bool {
    let resolve = |p: &Path| {
        p.canonicalize().ok().or_else(|| {
            let parent = match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            Some(parent.canonicalize().ok()?.join(p.file_name()?))
        })
    };
    matches!((resolve(a), resolve(b)), (Some(x), Some(y)) if x == y)
}

/// The output file name of each input: `stem.png`, or `name.ext.png` for inputs whose stems
/// coincide (`x.png` and `x.jpg`), so that no translation overwrites another.
///
/// # Errors
/// If two inputs still map to one name.
fn output_names(files: &[PathBuf]) -> Result<Vec<String>> {
    let stem = |f: &PathBuf| {
        f.file_stem()
            .map_or_else(|| "image".into(), |s| s.to_string_lossy().to_string())
    };
    let mut count = std::collections::HashMap::new();
    for f in files {
        *count.entry(stem(f)).or_insert(0) += 1;
    }
    let names: Vec<String> = files
        .iter()
        .map(|f| match count[&stem(f)] {
            1 => format!("{}.png", stem(f)),
            _ => format!(
                "{}.png",
                f.file_name().unwrap_or_default().to_string_lossy()
            ),
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    for (f, n) in files.iter().zip(&names) {
        if !seen.insert(n) {
            bail!(
                "--input: {} and another image would both be written as {n}; rename one",
                f.display()
            );
        }
    }
    Ok(names)
}

/// A file name as a relative URL: every byte outside the unreserved set percent-encoded, so
/// that `#`, `?` or `%` in a name stay part of the path.
fn url_path(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_for_html_and_urls() {
        let name = "<img src=x onerror=alert(1)>&'\".png";
        let text = escape_html(name);
        assert!(!text.contains('<') && !text.contains('"') && !text.contains('\''));
        assert_eq!(escape_html("a&b"), "a&amp;b");
        assert_eq!(url_path("a b#1.png"), "a%20b%231.png");
    }

    #[test]
    fn inputs_with_one_stem_get_distinct_names() {
        let files: Vec<PathBuf> = ["x.jpg", "x.png", "y.png"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(
            output_names(&files).unwrap(),
            ["x.jpg.png", "x.png.png", "y.png"]
        );
        let clash: Vec<PathBuf> = ["x.png.png", "x.png", "x.jpg"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert!(output_names(&clash).is_err());
    }
}
