//! `gantry`: train, sample from and translate with GANs.
//!
//! A thin layer over the gantry crates: argument parsing (clap), progress bars (indicatif),
//! run directories. Errors print as one line and exit with status 1.

mod bench;
mod classifier;
mod data;
mod eval;
mod progress;
mod report;
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
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a GAN (with no arguments: DCGAN on the bundled MNIST).
    Train(train::TrainArgs),
    /// Draw samples from a trained run into a PNG grid.
    Sample(sample::SampleArgs),
    /// Translate images with a trained pix2pix run.
    Translate(translate::TranslateArgs),
    /// Write index.html into a run directory: settings, training curves, samples, evaluation.
    Report(report::ReportArgs),
    // Its help lives on `BenchArgs`.
    Bench(bench::BenchArgs),
    /// Score a trained run (or images) with the metrics of its data; writes DIR/eval.json.
    Eval(eval::EvalArgs),
    /// Train the digit classifier that `gantry eval` scores samples with.
    Classifier(classifier::ClassifierArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Train(args)) => set_threads(args.threads).and_then(|()| train::run(args)),
        Some(Command::Sample(args)) => sample::run(args),
        Some(Command::Translate(args)) => translate::run(args),
        Some(Command::Report(args)) => report::run(args),
        Some(Command::Bench(args)) => bench::run(args),
        Some(Command::Eval(args)) => set_threads(args.threads).and_then(|()| eval::run(args)),
        Some(Command::Classifier(args)) => {
            set_threads(args.threads).and_then(|()| classifier::run(args))
        }
        None => {
            use clap::CommandFactory;
            let _ = Cli::command().print_help();
            return ExitCode::SUCCESS;
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Sizes the global thread pool that every parallel loop and GEMM uses.
fn set_threads(threads: Option<usize>) -> anyhow::Result<()> {
    if let Some(n) = threads {
        if n == 0 {
            anyhow::bail!("--threads must be at least 1");
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| anyhow::anyhow!("cannot start {n} threads: {e}"))?;
    }
    Ok(())
}
