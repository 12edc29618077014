//! A model defined outside `gantry-nn` with only its public API: nested layers, a `Vec` of
//! blocks, a user-written layer and a buffer. Its `visit` (a few lines of `join` and
//! `visit_list`) is all the bookkeeping it writes; from it come dotted PyTorch-style names, the
//! state dict, the optimizer, spectral normalisation of every convolution, and the features
//! that a feature-matching loss compares.
//!
//! ```text
//! cargo run -p gantry-nn --example custom_module
//! cargo test -p gantry-nn --example custom_module
//! ```

use gantry_autodiff::{Reduction, Tape, Var};
use gantry_nn::optim::{AdamConfig, Optimizer};
use gantry_nn::reparam::{self, SpectralNorm};
use gantry_nn::{
    Conv2d, Conv2dConfig, Features, InstanceNorm2d, InstanceNorm2dConfig, LeakyReLU, Linear,
    LinearConfig, Mode, Module, Param, ParamRole, join, loss, summary, visit_list,
};
use gantry_tensor::Tensor;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// A user-written layer: a learnable per-channel gain, read through [`Param::read`] so that a
/// reparameterisation attached to it would apply.
struct ChannelGain {
    gain: Param,
}

impl Module for ChannelGain {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        f(&join(prefix, "gain"), &self.gain);
    }

    fn forward<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        let c = self.gain.len();
        x.mul(self.gain.read(x.tape(), mode).reshape(&[1, c, 1, 1]))
    }
}

/// Convolution, instance norm, leaky ReLU: names `conv.weight`, `conv.bias`.
struct Block {
    conv: Conv2d,
    norm: InstanceNorm2d,
    act: LeakyReLU,
}

impl Module for Block {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        self.conv.visit(&join(prefix, "conv"), f);
        self.norm.visit(&join(prefix, "norm"), f);
    }

    fn forward<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        let h = self.norm.forward(self.conv.forward(x, mode), mode);
        self.act.forward(h, mode)
    }
}

/// A small critic: `stem`, `blocks.0..`, `head`, and a buffer counting forward passes.
struct Critic {
    stem: ChannelGain,
    blocks: Vec<Block>,
    head: Linear,
    /// Saved, never trained (PyTorch's `register_buffer`).
    seen: Param,
}

impl Critic {
    fn new(rng: &mut StdRng) -> Critic {
        let block = |i, o, rng: &mut StdRng| Block {
            conv: Conv2dConfig::new(i, o, 3)
                .stride(2)
                .padding(1)
                .build(rng)
                .unwrap(),
            norm: InstanceNorm2dConfig::new(o).build().unwrap(),
            act: LeakyReLU::new(0.2),
        };
        Critic {
            stem: ChannelGain {
                gain: Param::trainable(Tensor::ones(&[1]), ParamRole::Other),
            },
            blocks: vec![block(1, 4, rng), block(4, 8, rng)],
            head: LinearConfig::new(8 * 2 * 2, 1).build(rng).unwrap(),
            seen: Param::buffer(Tensor::zeros(&[1])),
        }
    }
}

impl Module for Critic {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        self.stem.visit(&join(prefix, "stem"), f);
        visit_list(prefix, "blocks", &self.blocks, f);
        self.head.visit(&join(prefix, "head"), f);
        f(&join(prefix, "seen"), &self.seen);
    }

    fn forward<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        self.forward_features(x, mode, &mut Features::discard())
    }

    /// The forward pass, written once: each block's output is a feature.
    fn forward_features<'t>(&self, x: Var<'t>, mode: Mode, features: &mut Features<'t>) -> Var<'t> {
        if mode == Mode::Train {
            self.seen.update(|v| v[0] += 1.0);
        }
        let mut h = self.stem.forward(x, mode);
        for (i, b) in self.blocks.iter().enumerate() {
            h = b.forward(h, mode);
            features.push(format!("blocks.{i}"), h);
        }
        self.head.forward(h.flatten(), mode)
    }
}

/// 8x8 images: a bright square (real) or noise (fake).
fn batch(n: usize, real: bool, rng: &mut StdRng) -> Tensor {
    let noise = Tensor::randn(&[n, 1, 8, 8], 0.0, 0.3, rng);
    if !real {
        return noise;
    }
    let mut square = vec![0.0; 64];
    for r in 2..6 {
        for c in 2..6 {
            square[r * 8 + c] = 1.0;
        }
    }
    noise.add(&Tensor::from_vec(&[1, 1, 8, 8], square))
}

/// Spectrally normalises every convolution, then trains the critic to tell squares from noise;
/// returns (first loss, last loss).
fn train(critic: &Critic, steps: usize, rng: &mut StdRng) -> (f32, f32) {
    let mut opt = AdamConfig {
        lr: 0.01,
        ..Default::default()
    }
    .build();
    let mut losses = Vec::new();
    for _ in 0..steps {
        let tape = Tape::new();
        let mut total: Option<Var> = None;
        for (real, label) in [(true, 1.0), (false, 0.0)] {
            let logits = critic.forward(tape.constant(batch(8, real, rng)), Mode::Train);
            let target = loss::full_like(&logits, label);
            let l = loss::bce_with_logits(logits, &target, Reduction::Mean);
            total = Some(total.map_or(l, |t| t.add(l)));
        }
        let total = total.expect("two batches");
        losses.push(total.value().item());
        opt.step(critic, &total.backward()).unwrap();
    }
    (losses[0], *losses.last().expect("at least one step"))
}

fn main() {
    let mut rng = StdRng::seed_from_u64(0);
    let critic = Critic::new(&mut rng);
    let sn = SpectralNorm::default();
    let wrapped = reparam::apply(&critic, reparam::conv_weights, |p| sn.attach(p, &mut rng))
        .expect("spectral norm on every convolution");
    println!("spectral norm on {wrapped:?}");
    print!("{}", summary(&critic));
    let (first, last) = train(&critic, 60, &mut rng);
    println!("loss {first:.4} -> {last:.4}");
    let tape = Tape::new();
    let (_, features) = gantry_nn::forward_with_features(
        &critic,
        tape.constant(batch(2, true, &mut rng)),
        Mode::Eval,
    );
    for (name, f) in features.into_vec() {
        println!("feature {name}: {:?}", f.shape());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_nn::named_params;
    use gantry_nn::state_dict::{LoadOptions, load, save};

    fn names(m: &dyn Module) -> Vec<String> {
        named_params(m).into_iter().map(|(n, _)| n).collect()
    }

    #[test]
    fn names_are_dotted_and_spectral_norm_renames_the_convolutions() {
        let mut rng = StdRng::seed_from_u64(1);
        let critic = Critic::new(&mut rng);
        assert_eq!(
            names(&critic),
            [
                "stem.gain",
                "blocks.0.conv.weight",
                "blocks.0.conv.bias",
                "blocks.1.conv.weight",
                "blocks.1.conv.bias",
                "head.weight",
                "head.bias",
                "seen",
            ]
        );
        let sn = SpectralNorm::default();
        reparam::apply(&critic, reparam::conv_weights, |p| sn.attach(p, &mut rng)).unwrap();
        assert_eq!(
            names(&critic)[1..5],
            [
                "blocks.0.conv.weight_orig",
                "blocks.0.conv.weight_u",
                "blocks.0.conv.weight_v",
                "blocks.0.conv.bias",
            ]
        );
    }

    #[test]
    fn trains_saves_and_loads_with_the_buffer() {
        let mut rng = StdRng::seed_from_u64(2);
        let critic = Critic::new(&mut rng);
        let sn = SpectralNorm::default();
        reparam::apply(&critic, reparam::conv_weights, |p| sn.attach(p, &mut rng)).unwrap();
        let (first, last) = train(&critic, 60, &mut rng);
        assert!(last < 0.5 * first, "loss {first} -> {last}");
        assert_eq!(
            critic.seen.value().item(),
            120.0,
            "two training forwards a step"
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("critic.safetensors");
        save(&critic, &path).unwrap();
        let copy = Critic::new(&mut rng);
        reparam::apply(&copy, reparam::conv_weights, |p| sn.attach(p, &mut rng)).unwrap();
        let strict = LoadOptions {
            strict: true,
            ..Default::default()
        };
        load(&copy, &path, &strict).unwrap();
        assert_eq!(copy.seen.value().item(), 120.0);
        let x = batch(4, true, &mut rng);
        let tape = Tape::new();
        let a = critic.forward(tape.constant(x.clone()), Mode::Eval).value();
        let b = copy.forward(tape.constant(x), Mode::Eval).value();
        assert_eq!(a.to_vec(), b.to_vec());
    }

    #[test]
    fn features_are_the_blocks_outputs() {
        let mut rng = StdRng::seed_from_u64(3);
        let critic = Critic::new(&mut rng);
        let x = batch(2, false, &mut rng);
        let tape = Tape::new();
        let (y, features) =
            gantry_nn::forward_with_features(&critic, tape.constant(x.clone()), Mode::Eval);
        assert_eq!(features.names(), ["blocks.0", "blocks.1"]);
        let h0 = critic.blocks[0].forward(
            critic.stem.forward(tape.constant(x), Mode::Eval),
            Mode::Eval,
        );
        let h1 = critic.blocks[1].forward(h0, Mode::Eval);
        assert_eq!(
            features.get("blocks.0").unwrap().value().to_vec(),
            h0.value().to_vec()
        );
        assert_eq!(
            features.get("blocks.1").unwrap().value().to_vec(),
            h1.value().to_vec()
        );
        let direct = critic.head.forward(h1.flatten(), Mode::Eval);
        assert_eq!(y.value().to_vec(), direct.value().to_vec());
    }
}
