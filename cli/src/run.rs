//! The run directory: `config.json`, `metrics.jsonl`, `samples/`, `checkpoint.safetensors`.

use crate::lock::{self, LOCK, RunLock};
use anyhow::{Context, Result, bail};
use gantry_gan::StepMetrics;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// The checkpoint's file name inside a run directory.
pub const CHECKPOINT: &str = "checkpoint.safetensors";

/// The metrics log's file name inside a run directory.
pub const METRICS: &str = "metrics.jsonl";

/// Paths of one training run.
pub struct RunDir {
    /// The folder.
    pub root: PathBuf,
}

impl RunDir {
    /// Opens a run directory for training, creating it for a `fresh` run: takes its lock
    /// before anything else is written, then creates `samples/` and removes temporary files
    /// of interrupted writes (safe only under the lock: a running process's temporary file
    /// looks the same). A fresh run's folder must be new or empty ([`RunDir::check_new`]),
    /// checked before the lock (not to leave a lock file in a user's folder) and again under
    /// it (another process may have started a run there meanwhile).
    ///
    /// # Errors
    /// If the folder cannot be created, is not fit for a fresh run, or another process
    /// trains in it.
    pub fn open(root: &Path, fresh: bool) -> Result<(Self, RunLock)> {
        if fresh {
            Self::check_new(root)?;
        }
        std::fs::create_dir_all(root)
            .with_context(|| format!("cannot create run directory {}", root.display()))?;
        let lock = lock::acquire(root)?;
        if fresh {
            Self::check_new(root)?;
        }
        std::fs::create_dir_all(root.join("samples"))
            .with_context(|| format!("cannot create {}", root.join("samples").display()))?;
        // A process killed while writing its checkpoint leaves the temporary file behind.
        let stale = [
            "config.json.tmp-".to_string(),
            format!("{CHECKPOINT}.tmp-"),
            format!("{METRICS}.tmp-"),
        ];
        for entry in std::fs::read_dir(root)?.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if stale.iter().any(|s| name.starts_with(s)) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok((
            RunDir {
                root: root.to_path_buf(),
            },
            lock,
        ))
    }

    /// Refuses `root` as the folder of a new run if it holds anything (but a lock file left
    /// by an earlier process): a user's folder would lose files, and another run its
    /// `config.json` and `metrics.jsonl`.
    ///
    /// # Errors
    /// If `root` is a file, cannot be listed, or is not empty.
    pub fn check_new(root: &Path) -> Result<()> {
        if root.join(CHECKPOINT).exists() {
            bail!(
                "{} already holds a run; pass --resume {} to continue it, or another --out",
                root.display(),
                root.display()
            );
        }
        if !root.exists() {
            return Ok(());
        }
        if !root.is_dir() {
            bail!("--out {} is a file, not a folder", root.display());
        }
        let listing = std::fs::read_dir(root)
            .with_context(|| format!("cannot list --out {}", root.display()))?;
        let mut names: Vec<String> = listing
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n != LOCK)
            .collect();
        if !names.is_empty() {
            names.sort();
            let more = if names.len() > 3 { ", ..." } else { "" };
            names.truncate(3);
            bail!(
                "--out {} is not empty (it holds {}{more}): a new run needs a new or empty folder",
                root.display(),
                names.join(", ")
            );
        }
        Ok(())
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

    /// Writes `config.json` through a temporary file and a rename (a resume rewrites it).
    pub fn write_config(&self, config: &serde_json::Value) -> Result<()> {
        let path = self.root.join("config.json");
        let tmp = self
            .root
            .join(format!("config.json.tmp-{}", std::process::id()));
        let text = serde_json::to_string_pretty(config)?;
        std::fs::write(&tmp, text + "\n")
            .and_then(|()| std::fs::rename(&tmp, &path))
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
    /// (a resumed run repeats the steps after its checkpoint). The kept lines go to a
    /// temporary file that replaces the log by a rename, so a process killed meanwhile leaves
    /// the old log or the new one, never a truncated one.
    pub fn metrics_log(&self, keep_until: u64) -> Result<MetricsLog> {
        let path = self.root.join(METRICS);
        if path.exists() {
            let kept: Vec<String> = BufReader::new(
                File::open(&path).with_context(|| format!("cannot read {}", path.display()))?,
            )
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
            let tmp = self
                .root
                .join(format!("{METRICS}.tmp-{}", std::process::id()));
            std::fs::write(&tmp, text)
                .and_then(|()| std::fs::rename(&tmp, &path))
                .with_context(|| format!("cannot rewrite {}", path.display()))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(MetricsLog { file, path })
    }
}

/// `metrics.jsonl`: one JSON object per logged step.
pub struct MetricsLog {
    file: File,
    path: PathBuf,
}

impl MetricsLog {
    /// Appends one step's metrics (with the wall time since the start of the run), as one
    /// `write` of the whole line, so that a line is never split by another writer or a kill.
    pub fn write(&mut self, m: &StepMetrics, seconds: f64) -> Result<()> {
        let mut v = serde_json::to_value(m)?;
        v["seconds"] = serde_json::json!((seconds * 1000.0).round() / 1000.0);
        let line = format!("{v}\n");
        self.file
            .write_all(line.as_bytes())
            .with_context(|| format!("cannot append to {}", self.path.display()))
    }
}
