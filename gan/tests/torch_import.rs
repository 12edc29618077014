//! PyTorch checkpoints in: the `.pth` files that `fixtures/torch/gen_interop.py` wrote with
//! `torch.save` from pytorch/examples' DCGAN and junyanz's pix2pix definitions are imported,
//! and gantry's outputs on the stored inputs are compared with PyTorch's.
//!
//! Tolerance: largest absolute difference below 1e-4 (outputs in [-1, 1] and probabilities).

use gantry_autodiff::Tape;
use gantry_gan::import::{StateDict, TorchModel, import, infer_config, read_state_dict};
use gantry_gan::models::{DcganVariant, Gan, ModelConfig};
use gantry_nn::state_dict::read_safetensors;
use gantry_nn::{Mode, Module};
use gantry_tensor::Tensor;
use std::collections::HashMap;
use std::path::PathBuf;

const TOL: f32 = 1e-4;

fn fixture(rel: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/torch")
        .join(rel);
    assert!(
        p.exists(),
        "fixture {} is missing: run `python fixtures/torch/make_fixtures.py interop` (needs torch)",
        p.display()
    );
    p
}

fn expected() -> HashMap<String, Tensor> {
    read_safetensors(&fixture("interop.safetensors"))
        .unwrap_or_else(|e| panic!("fixtures: {e}"))
        .tensors
}

fn state(rel: &str) -> StateDict {
    read_state_dict(&fixture(rel)).unwrap_or_else(|e| panic!("{e}"))
}

fn forward(m: &dyn Module, x: &Tensor, mode: Mode) -> Tensor {
    let tape = Tape::new();
    m.forward(tape.constant(x.clone()), mode).value()
}

#[track_caller]
fn assert_close(ours: &Tensor, theirs: &Tensor, what: &str) {
    assert_eq!(ours.len(), theirs.len(), "{what}: sizes differ");
    let worst = ours
        .to_vec()
        .iter()
        .zip(theirs.to_vec())
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(
        worst < TOL,
        "{what}: gantry and PyTorch differ by {worst} (tolerance {TOL})"
    );
}

fn sigmoid(t: &Tensor) -> Tensor {
    t.map(|v| 1.0 / (1.0 + (-v).exp()))
}

fn dcgan(g_file: &str) -> Box<dyn Gan> {
    let g = state(g_file);
    let d = state("interop/dcgan/netD_epoch_0.pth");
    let config = infer_config(TorchModel::Dcgan, &g, Some(&d)).unwrap();
    let ModelConfig::Dcgan(c) = &config else {
        panic!("not a dcgan config: {config:?}")
    };
    assert_eq!(
        (c.variant, c.image_size, c.channels, c.nz, c.ngf, c.ndf),
        (DcganVariant::Dcgan64, 64, 3, 16, 8, 8),
        "sizes read off the weights"
    );
    import(&config, &g, Some(&d)).unwrap()
}

#[test]
fn pytorch_examples_dcgan_pth_gives_pytorchs_outputs() {
    let e = expected();
    let gan = dcgan("interop/dcgan/netG_epoch_0.pth");
    let image = forward(gan.generator(), &e["dcgan/eval/z"], Mode::Eval);
    assert_close(&image, &e["dcgan/eval/image"], "netG(z)");
    // gantry's discriminator outputs logits; pytorch/examples' ends in a Sigmoid.
    let logits = forward(gan.discriminator(), &e["dcgan/eval/x"], Mode::Eval);
    assert_close(&sigmoid(&logits), &e["dcgan/eval/prob"], "netD(x)");
}

#[test]
fn a_safetensors_file_with_pytorch_names_imports_the_same() {
    let e = expected();
    let gan = dcgan("interop/dcgan/netG_epoch_0.safetensors");
    let image = forward(gan.generator(), &e["dcgan/eval/z"], Mode::Eval);
    assert_close(&image, &e["dcgan/eval/image"], "netG(z) from safetensors");
}

fn pix2pix(dropout: bool) -> Box<dyn Gan> {
    let g = state("interop/pix2pix/latest_net_G.pth");
    let d = state("interop/pix2pix/latest_net_D.pth");
    let mut config = infer_config(TorchModel::Pix2Pix, &g, Some(&d)).unwrap();
    let ModelConfig::Pix2Pix(c) = &mut config else {
        panic!("not a pix2pix config: {config:?}")
    };
    assert_eq!(
        (
            c.image_size,
            c.in_channels,
            c.out_channels,
            c.ngf,
            c.ndf,
            c.d_layers
        ),
        (64, 3, 3, 2, 2, 3),
        "sizes read off the weights"
    );
    c.dropout = dropout;
    import(&config, &g, Some(&d)).unwrap()
}

#[test]
fn junyanz_pix2pix_pth_gives_pytorchs_outputs() {
    let e = expected();
    let gan = pix2pix(true);
    let b = forward(gan.generator(), &e["pix2pix/eval/a"], Mode::Eval);
    assert_close(&b, &e["pix2pix/eval/b"], "netG(a) in eval()");
    let ab = Tensor::concat(1, &[&e["pix2pix/eval/a"], &e["pix2pix/eval/b"]]);
    let d = forward(gan.discriminator(), &ab, Mode::Eval);
    assert_close(&d, &e["pix2pix/eval/d"], "netD(a, b) in eval()");
}

#[test]
fn junyanz_pix2pix_with_batch_statistics_matches_train_mode() {
    // PyTorch's train() with its Dropout modules off against gantry's Train mode without
    // dropout layers: the batch-statistics path of every norm.
    let e = expected();
    let gan = pix2pix(false);
    let b = forward(
        gan.generator(),
        &e["pix2pix/train_no_dropout/a"],
        Mode::Train,
    );
    assert_close(&b, &e["pix2pix/train_no_dropout/b"], "netG(a) in train()");
}

#[test]
fn a_wrong_model_kind_or_size_is_an_error_naming_the_tensor() {
    let g = state("interop/dcgan/netG_epoch_0.pth");
    let err = infer_config(TorchModel::Pix2Pix, &g, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("UnetGenerator"), "{err}");
    let mut config = infer_config(TorchModel::Dcgan, &g, None).unwrap();
    if let ModelConfig::Dcgan(c) = &mut config {
        c.nz = 100;
    }
    let err = import(&config, &g, None)
        .err()
        .expect("nz 100 does not fit")
        .to_string();
    assert!(
        err.contains("0.weight") && err.contains("[16, 64, 4, 4]"),
        "{err}"
    );
}

#[test]
fn files_that_are_not_checkpoints_are_one_line_errors() {
    let dir = std::env::temp_dir().join(format!("gantry-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases: [(&str, &[u8], &str); 3] = [
        ("text.pth", b"hello", "neither a torch.save zip"),
        (
            "empty.zip",
            b"PK\x03\x04garbage",
            "not a torch.save zip archive",
        ),
        (
            "legacy.pth",
            b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.",
            "legacy",
        ),
    ];
    for (name, bytes, want) in cases {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        let err = read_state_dict(&p).unwrap_err().to_string();
        assert!(err.contains(want) && err.contains(name), "{name}: {err}");
        assert!(!err.contains('\n'), "{name}: {err}");
    }
    let missing = read_state_dict(&dir.join("absent.pth"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("absent.pth"), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}
