//! `gantry export`: a trained run's generator as an ONNX file.

use crate::run::RunDir;
use crate::sampling::generation_mode;
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use gantry_gan::checkpoint;
use gantry_gan::export::{Signature, TestMode, write_onnx};
use gantry_nn::Mode;
use std::path::PathBuf;

/// The test-time behaviour written into the graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Batch norm with the running statistics, no dropout (PyTorch's eval()).
    Eval,
    /// Batch norm with each batch's own statistics, as the pix2pix paper at test time; dropout
    /// as its expectation (the identity), since ONNX cannot draw dropout masks reproducibly.
    Paper,
}

/// `gantry export`.
#[derive(Args, Debug)]
#[command(
    after_help = "The file runs in any ONNX runtime (opset 17, batch size N free):\n  \
    mlp      z float32 [N, latent]                     -> sample [N, ...]\n  \
    dcgan    z float32 [N, nz, 1, 1] ([N, nz] at 28x28) -> image [N, C, H, W] in [-1, 1]\n  \
    cdcgan   z as dcgan, label int64 [N]               -> image [N, C, H, W] in [-1, 1]\n  \
    pix2pix  image float32 [N, C, H, W] in [-1, 1]     -> translated [N, C, H, W] in [-1, 1]\n\n\
Examples:\n  \
    gantry export --run runs/dcgan-mnist-1 --out dcgan.onnx\n  \
    gantry export --run runs/pix2pix-edges2emoji-1 --out p2p.onnx --mode eval"
)]
pub struct ExportArgs {
    /// Run directory (holding checkpoint.safetensors).
    #[arg(long)]
    pub run: PathBuf,
    /// ONNX file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Test-time behaviour to write [default: the run's own, as `gantry sample` and `gantry
    /// translate` use it: paper for pix2pix, eval for the others].
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
}

fn show(s: &Signature) -> String {
    let dims: Vec<String> = s
        .shape
        .iter()
        .map(|d| d.map_or("N".to_string(), |n| n.to_string()))
        .collect();
    format!("{} {} [{}]", s.name, s.dtype, dims.join(", "))
}

/// Runs `gantry export`.
pub fn run(args: ExportArgs) -> Result<()> {
    let dir = RunDir {
        root: args.run.clone(),
    };
    let (trainer, _) = checkpoint::load(&dir.checkpoint())
        .with_context(|| format!("cannot load the run in {}", args.run.display()))?;
    let gan = trainer.gan.as_ref();
    let mode = match args.mode {
        Some(ModeArg::Eval) => TestMode::Eval,
        Some(ModeArg::Paper) => TestMode::Paper,
        None if generation_mode(gan) == Mode::Train => TestMode::Paper,
        None => TestMode::Eval,
    };
    let onnx = write_onnx(gan, mode, &args.out)?;
    let list = |s: &[Signature]| s.iter().map(show).collect::<Vec<_>>().join(", ");
    println!(
        "wrote {} ({} generator, opset {}): {} -> {}",
        args.out.display(),
        gan.config().kind(),
        gantry_gan::export::OPSET,
        list(&onnx.inputs),
        list(&onnx.outputs)
    );
    println!("test-time behaviour {}", mode.describe());
    Ok(())
}
