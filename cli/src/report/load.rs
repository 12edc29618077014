//! Reading what a report shows from a run directory, with errors that name the file.

use crate::run::RunDir;
use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// One logged step of `metrics.jsonl`: its keys as written (`step`, `loss_d`, ...).
pub type Row = Map<String, Value>;

/// Everything the page shows, read once.
pub struct Run {
    /// The run directory as given.
    pub dir: PathBuf,
    /// The directory's own name (of its canonical path, so that `--run .` has a name too).
    pub name: String,
    /// `config.json`.
    pub config: Value,
    /// `metrics.jsonl`, one row per logged step, in file order.
    pub metrics: Vec<Row>,
    /// The pictures in `samples/`.
    pub samples: Samples,
    /// `eval.json`, where `gantry eval` has written one.
    pub eval: Option<Value>,
}

/// A picture in `samples/`: its file name and pixel size (read from the PNG header).
pub struct Picture {
    /// File name inside `samples/`.
    pub file: String,
    /// Width and height, where the file is a readable PNG.
    pub size: Option<(u32, u32)>,
}

/// The pictures in `samples/`, sorted for display.
#[derive(Default)]
pub struct Samples {
    /// `real.png`: a grid of training data.
    pub real: Option<Picture>,
    /// `step_NNNNNN.png` in step order.
    pub steps: Vec<(u64, Picture)>,
    /// Any other PNG, by name (shown too: the page should not hide a file).
    pub other: Vec<Picture>,
}

impl Run {
    /// Reads `dir`: `config.json` and `metrics.jsonl` must exist and parse; `samples/` and
    /// `eval.json` are optional, but an `eval.json` that exists must parse.
    pub fn load(dir: &Path) -> Result<Run> {
        if !dir.is_dir() {
            bail!("run directory {} does not exist", dir.display());
        }
        let config = RunDir {
            root: dir.to_path_buf(),
        }
        .read_config()?;
        let metrics = read_metrics(&dir.join("metrics.jsonl"))?;
        let eval_path = dir.join("eval.json");
        let eval = if eval_path.exists() {
            let text = std::fs::read_to_string(&eval_path)
                .with_context(|| format!("cannot read {}", eval_path.display()))?;
            let value: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid JSON", eval_path.display()))?;
            Some(value)
        } else {
            None
        };
        let name = dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| dir.display().to_string());
        Ok(Run {
            dir: dir.to_path_buf(),
            name,
            config,
            metrics,
            samples: list_samples(&dir.join("samples"))?,
            eval,
        })
    }

    /// The last logged step, if any step was logged.
    pub fn last_step(&self) -> Option<u64> {
        self.metrics.iter().filter_map(|r| r["step"].as_u64()).max()
    }

    /// The wall time of training and the number of sessions it took, from the `seconds` that
    /// each row carries. A resumed run restarts its clock, so every drop of `seconds` starts a
    /// new session and the total adds each session's last reading.
    pub fn wall_time(&self) -> Option<(f64, usize)> {
        let mut total = 0.0;
        let mut sessions = 0;
        let mut last: Option<f64> = None;
        for s in self
            .metrics
            .iter()
            .filter_map(|r| r.get("seconds")?.as_f64())
        {
            match last {
                Some(prev) if s >= prev => {}
                Some(prev) => {
                    total += prev;
                    sessions += 1;
                }
                None => {}
            }
            last = Some(s);
        }
        let last = last?;
        Some((total + last, sessions + 1))
    }

    /// The points `(step, value)` of one metric, skipping rows without it (or with a null,
    /// which is how JSON writes a non-finite number).
    pub fn series(&self, key: &str) -> Vec<(f64, f64)> {
        self.metrics
            .iter()
            .filter_map(|r| Some((r["step"].as_f64()?, r.get(key)?.as_f64()?)))
            .collect()
    }
}

/// Reads `metrics.jsonl`; a line that is not a JSON object with a numeric `step` is an error
/// naming its line number. Blank lines (a trailing newline) are skipped.
fn read_metrics(path: &Path) -> Result<Vec<Row>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let n = i + 1;
        let value: Value = serde_json::from_str(line)
            .with_context(|| format!("{} line {n} is not valid JSON", path.display()))?;
        let Value::Object(row) = value else {
            bail!("{} line {n} is not a JSON object", path.display());
        };
        if !row.get("step").is_some_and(Value::is_u64) {
            bail!("{} line {n} has no step number", path.display());
        }
        rows.push(row);
    }
    Ok(rows)
}

/// Lists the PNGs of `samples/` (a run without the folder has none).
fn list_samples(folder: &Path) -> Result<Samples> {
    let mut samples = Samples::default();
    if !folder.is_dir() {
        return Ok(samples);
    }
    let entries =
        std::fs::read_dir(folder).with_context(|| format!("cannot read {}", folder.display()))?;
    for entry in entries.flatten() {
        // A name that is not UTF-8 cannot be written into the page faithfully; gantry never
        // makes one.
        let Ok(file) = entry.file_name().into_string() else {
            continue;
        };
        if !file.ends_with(".png") || !entry.path().is_file() {
            continue;
        }
        let size = png_size(&entry.path());
        let picture = Picture { file, size };
        if picture.file == "real.png" {
            samples.real = Some(picture);
        } else if let Some(step) = step_number(&picture.file) {
            samples.steps.push((step, picture));
        } else {
            samples.other.push(picture);
        }
    }
    samples.steps.sort_by_key(|(step, _)| *step);
    samples.other.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(samples)
}

/// The step of `step_NNNNNN.png`.
fn step_number(file: &str) -> Option<u64> {
    let digits = file.strip_prefix("step_")?.strip_suffix(".png")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Width and height from a PNG's IHDR chunk, which the format puts first: the page sizes each
/// grid from it (whole-number zoom keeps pixel grids sharp) without decoding the image.
fn png_size(path: &Path) -> Option<(u32, u32)> {
    use std::io::Read;
    let mut head = [0u8; 24];
    std::fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
    if &head[..8] != b"\x89PNG\r\n\x1a\n" || &head[12..16] != b"IHDR" {
        return None;
    }
    let word = |i: usize| u32::from_be_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    Some((word(16), word(20))).filter(|&(w, h)| w > 0 && h > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_with(lines: &[&str]) -> Run {
        Run {
            dir: PathBuf::new(),
            name: "r".into(),
            config: Value::Null,
            metrics: lines
                .iter()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
            samples: Samples::default(),
            eval: None,
        }
    }

    #[test]
    fn step_numbers_come_only_from_step_files() {
        assert_eq!(step_number("step_000250.png"), Some(250));
        assert_eq!(step_number("step_12.png"), Some(12));
        assert_eq!(step_number("step_.png"), None);
        assert_eq!(step_number("step_1a.png"), None);
        assert_eq!(step_number("real.png"), None);
    }

    #[test]
    fn wall_time_adds_the_sessions_of_a_resumed_run() {
        let run = run_with(&[
            r#"{"step":10,"seconds":1.0}"#,
            r#"{"step":20,"seconds":2.5}"#,
            r#"{"step":30,"seconds":0.5}"#,
            r#"{"step":40,"seconds":1.5}"#,
        ]);
        assert_eq!(run.wall_time(), Some((4.0, 2)));
        assert_eq!(run.last_step(), Some(40));
        assert_eq!(run_with(&[r#"{"step":1}"#]).wall_time(), None);
    }

    #[test]
    fn series_skip_rows_without_the_key() {
        let run = run_with(&[
            r#"{"step":1,"loss_d":0.5}"#,
            r#"{"step":2,"loss_d":null}"#,
            r#"{"step":3,"loss_d":0.25}"#,
        ]);
        assert_eq!(run.series("loss_d"), vec![(1.0, 0.5), (3.0, 0.25)]);
        assert!(run.series("loss_g_l1").is_empty());
    }

    #[test]
    fn a_bad_metrics_line_is_named_by_number() {
        let dir =
            std::env::temp_dir().join(format!("gantry-report-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("metrics.jsonl");
        std::fs::write(&path, "{\"step\":1}\n\n{\"step\":2\n").unwrap();
        let err = format!("{:#}", read_metrics(&path).unwrap_err());
        assert!(
            err.contains("metrics.jsonl line 3 is not valid JSON"),
            "{err}"
        );
        std::fs::write(&path, "{\"step\":1}\n[1]\n").unwrap();
        let err = format!("{:#}", read_metrics(&path).unwrap_err());
        assert!(err.contains("line 2 is not a JSON object"), "{err}");
        std::fs::write(&path, "{\"loss_d\":1}\n").unwrap();
        let err = format!("{:#}", read_metrics(&path).unwrap_err());
        assert!(err.contains("line 1 has no step"), "{err}");
        std::fs::write(&path, "").unwrap();
        assert!(read_metrics(&path).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
