//! `gantry`: train, sample from and translate with GANs.
//!
//! A thin layer over the gantry crates: argument parsing (clap), progress bars (indicatif),
//! run directories. Errors print as one line and exit with status 1; a training run stopped
//! by SIGINT or SIGTERM saves, says where, and exits with 130 or 143.
//!
//! ```text
//! cargo install --path cli                      # a `gantry` that works from any folder
//! gantry train --steps 2000                     # DCGAN on the bundled MNIST -> runs/dcgan-mnist-1
//! gantry sample --run runs/dcgan-mnist-1 --out digits.png
//! gantry eval --run runs/dcgan-mnist-1          # classifier scores, written to eval.json
//! gantry age --run runs/caae-emoji-faces-1 --input face.png --out ages.png
//! gantry export --run runs/dcgan-mnist-1 --out dcgan.onnx
//! gantry import --model dcgan --generator netG_epoch_24.pth --out runs/from-torch
//! ```
//!
//! The built-in data sets and classifiers are looked for in `--data-dir`, else `$GANTRY_DATA`,
//! the source tree's `data/`, and `data/` beside the executable or in the current folder.

mod age;
mod allocator;
mod bench;
mod classifier;
mod data;
mod eval;
mod export;
mod flags;
mod import;
mod interrupt;
mod lock;
mod progress;
mod report;
mod resume;
mod run;
mod sample;
mod sampling;
mod train;
mod translate;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Generative adversarial networks, from first principles.
#[derive(Parser, Debug)]
#[command(name = "gantry", version, about, long_about = None)]
struct Cli {
    /// Folder holding the built-in data sets and classifiers (the repository's data/); the
    /// only one searched when given [default: $GANTRY_DATA, the source tree's data/, then
    /// data/ beside the executable or in the current folder].
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

// Parsed once per process: the size of `train`'s many flags costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Train a GAN (with no arguments: DCGAN on the bundled MNIST).
    Train(train::TrainArgs),
    /// Draw samples from a trained run into a PNG grid.
    Sample(sample::SampleArgs),
    /// Translate images with a trained pix2pix run.
    Translate(translate::TranslateArgs),
    /// Show a face at every age group with a trained caae run.
    Age(age::AgeArgs),
    /// Write index.html into a run directory: settings, training curves, samples, evaluation.
    Report(report::ReportArgs),
    // Its help lives on `BenchArgs`.
    Bench(bench::BenchArgs),
    /// Score a trained run (or images) with the metrics of its data; writes DIR/eval.json.
    Eval(eval::EvalArgs),
    /// Train the digit classifier that `gantry eval` scores samples with.
    Classifier(classifier::ClassifierArgs),
    /// Write a run's generator as an ONNX file that any ONNX runtime runs.
    Export(export::ExportArgs),
    /// Turn PyTorch checkpoints (pytorch/examples' DCGAN, junyanz's pix2pix) into a run directory.
    Import(import::ImportArgs),
}

fn main() -> ExitCode {
    allocator::keep_freed_memory();
    let cli = Cli::parse();
    if let Some(dir) = cli.data_dir {
        data::set_data_dir(dir);
    }
    let result = match cli.command {
        Some(Command::Train(args)) => on_threads(args.threads, || train::run(args)),
        Some(Command::Sample(args)) => on_threads(None, || sample::run(args)),
        Some(Command::Translate(args)) => on_threads(None, || translate::run(args)),
        Some(Command::Age(args)) => on_threads(None, || age::run(args)),
        Some(Command::Report(args)) => report::run(args),
        // Each measured configuration picks its own pool (see `bench::run`).
        Some(Command::Bench(args)) => bench::run(args),
        Some(Command::Eval(args)) => on_threads(args.threads, || eval::run(args)),
        Some(Command::Classifier(args)) => on_threads(args.threads, || classifier::run(args)),
        Some(Command::Export(args)) => export::run(args),
        Some(Command::Import(args)) => on_threads(None, || import::run(args)),
        None => {
            use clap::CommandFactory;
            let _ = Cli::command().print_help();
            return ExitCode::SUCCESS;
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<interrupt::Interrupted>().is_some() => {
            let stop = e.downcast_ref::<interrupt::Interrupted>().expect("checked");
            eprintln!("{}", stop.message);
            ExitCode::from(interrupt::exit_code(stop.signal) as u8)
        }
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// Runs `work` on a worker of a pool of `threads` threads (default: one per core), the pool
/// that every parallel loop and GEMM inside it uses.
///
/// Running the whole command inside the pool, rather than calling into it from the main
/// thread, matters for small steps: a parallel loop started from a worker splits its work
/// with `join` at once, while one started from outside queues a job, wakes a sleeping worker
/// and blocks on a lock, tens of microseconds per loop (measured: the MLP step at 2 threads).
fn on_threads<T: Send>(
    threads: Option<usize>,
    work: impl FnOnce() -> anyhow::Result<T> + Send,
) -> anyhow::Result<T> {
    // Far more threads than cores only slow the work down, and each costs a stack: a typo
    // such as 100000 would spend a minute starting them before failing.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if let Some(n) = threads.filter(|n| !(1..=4 * cores).contains(n)) {
        anyhow::bail!(
            "--threads {n} must be in 1..={} (4 x the {cores} cores here)",
            4 * cores
        );
    }
    let n = threads.unwrap_or(0);
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start {n} threads: {e}"))?
        .install(work)
}

/// The error and its causes on one line, each cause once: a library error that names its
/// source in its own message (`{path}: {source}`) would otherwise repeat the OS error.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Named(std::io::Error);

    impl std::fmt::Display for Named {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "data/x.gz: {}", self.0)
        }
    }

    impl std::error::Error for Named {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn an_os_error_named_by_its_wrapper_is_printed_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file (os error 2)");
        let e = anyhow::Error::new(Named(io)).context("cannot load mnist");
        assert_eq!(
            one_line(&e),
            "cannot load mnist: data/x.gz: no such file (os error 2)"
        );
    }
}
