//! `gantry report`: one self-contained HTML page about a run directory.
//!
//! The page, `index.html` in the run directory, renders with no network: the CSS is inline, the
//! training curves are inline SVG drawn by plotters, and the sample grids are `<img>` elements
//! with relative paths (`samples/step_000250.png`). Relative paths rather than data URIs keep the
//! page a few tens of kilobytes however many grids a run has, and the PNGs already sit beside it:
//! the run directory is the unit that gets copied or archived, and the page goes with it.

mod html;

pub use html::esc as escape_html;
mod load;
mod plot;

use anyhow::{Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};

pub use load::Run;

/// `gantry report`.
#[derive(Args, Debug)]
#[command(
    after_help = "Example:\n  gantry report --run runs/dcgan-mnist-1   # writes runs/dcgan-mnist-1/index.html"
)]
pub struct ReportArgs {
    /// Run directory (holding config.json and metrics.jsonl).
    #[arg(long)]
    pub run: PathBuf,
}

/// Runs `gantry report`: reads the run, writes `index.html` into it and prints its path.
pub fn run(args: ReportArgs) -> Result<()> {
    let run = Run::load(&args.run)?;
    let page = html::page(&run)?;
    let path = args.run.join("index.html");
    write_atomically(&path, &page)?;
    println!("{}", path.display());
    Ok(())
}

/// Writes `text` to a temporary file beside `path` and renames it over `path`, so a browser
/// refreshing the page (or a crash) never sees half a file.
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("index.html");
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let written = std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("cannot write {}", path.display()));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}
