//! The run directory: `config.json`, `metrics.jsonl`, `samples/`, `checkpoint.safetensors`.

use anyhow::{Context, Result};
use gantry_gan::StepMetrics;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// The checkpoint's file name inside a run directory.
pub const CHECKPOINT: &str = "checkpoint.safetensors";

/// Paths of one training run.
pub struct RunDir {
    /// The folder.
    pub root: PathBuf,
}

impl RunDir {
    /// Opens (creating if needed) a run directory and its `samples/` folder, removing
    /// temporary files of interrupted checkpoint writes.
    pub fn create(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root.join("samples"))
            .with_context(|| format!("cannot create run directory {}", root.display()))?;
        // A process killed while writing its checkpoint leaves the temporary file behind.
        let stale = format!("{CHECKPOINT}.tmp-");
        for entry in std::fs::read_dir(root)?.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&stale) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(RunDir {
            root: root.to_path_buf(),
        })
    }

    /// The first free `runs/{stem}-{n}` folder.
    pub fn fresh(stem: &str) -> PathBuf {
        (1..)
            .map(|n| Path::new("runs").join(format!("{stem}-{n}")))
            .find(|p| !p.exists())
            .expect("an unused name exists")
    }

    /// `checkpoint.safetensors`.
    pub fn checkpoint(&self) -> PathBuf {
        self.root.join(CHECKPOINT)
    }

    /// `samples/{name}`.
    pub fn sample(&self, name: &str) -> PathBuf {
        self.root.join("samples").join(name)
    }

    /// Writes `config.json`.
    pub fn write_config(&self, config: &serde_json::Value) -> Result<()> {
        let path = self.root.join("config.json");
        let text = serde_json::to_string_pretty(config)?;
        std::fs::write(&path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// Reads `config.json`.
    pub fn read_config(&self) -> Result<serde_json::Value> {
        let path = self.root.join("config.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
    }

    /// Opens `metrics.jsonl` for appending, first dropping lines logged after `keep_until`
    /// (a resumed run repeats the steps after its checkpoint).
    pub fn metrics_log(&self, keep_until: u64) -> Result<MetricsLog> {
        let path = self.root.join("metrics.jsonl");
        if path.exists() {
            let kept: Vec<String> = BufReader::new(File::open(&path)?)
                .lines()
                .map_while(std::result::Result::ok)
                .filter(|line| {
                    serde_json::from_str::<serde_json::Value>(line)
                        .ok()
                        .and_then(|v| v["step"].as_u64())
                        .is_some_and(|s| s <= keep_until)
                })
                .collect();
            let mut text = kept.join("\n");
            if !text.is_empty() {
                text.push('\n');
            }
            std::fs::write(&path, text)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(MetricsLog { file })
    }
}

/// `metrics.jsonl`: one JSON object per logged step.
pub struct MetricsLog {
    file: File,
}

impl MetricsLog {
    /// Appends one step's metrics (with the wall time since the start of the run).
    pub fn write(&mut self, m: &StepMetrics, seconds: f64) -> Result<()> {
        let mut v = serde_json::to_value(m)?;
        v["seconds"] = serde_json::json!((seconds * 1000.0).round() / 1000.0);
        writeln!(self.file, "{v}")?;
        Ok(())
    }
}
