//! The residual block of the ResNet generators of CycleGAN and pix2pixHD (Johnson et al.'s
//! image-transformation network): `x + IN(conv(pad(ReLU(IN(conv(pad(x)))))))`.

use crate::error::Result;
use crate::layers::{Conv2d, Conv2dConfig, InstanceNorm2d, InstanceNorm2dConfig, ReflectionPad2d};
use crate::module::{Mode, Module, join};
use crate::param::Param;
use gantry_autodiff::Var;
use rand::RngCore;

/// `x + block(x)`, where the block is reflection padding 1, a 3x3 convolution, instance norm
/// (no affine transform), ReLU, reflection padding 1, a 3x3 convolution and instance norm:
/// pix2pixHD's `ResnetBlock` with its defaults (`padding_type='reflect'`, instance norm, no
/// dropout). Its parameters are named as there, by the index in `conv_block`:
/// `conv_block.1.weight`, `conv_block.1.bias`, `conv_block.5.weight`, `conv_block.5.bias`.
///
/// # Shapes
/// input and output `[N, dim, H, W]` with `H, W >= 2` (reflection needs a neighbour).
pub struct ResnetBlock {
    dim: usize,
    conv1: Conv2d,
    norm1: InstanceNorm2d,
    conv2: Conv2d,
    norm2: InstanceNorm2d,
}

impl ResnetBlock {
    /// A block on `dim` channels, its convolutions initialised as PyTorch's `Conv2d` (with
    /// biases, as pix2pixHD's).
    ///
    /// # Errors
    /// If `dim` is zero.
    pub fn new(dim: usize, rng: &mut dyn RngCore) -> Result<Self> {
        let conv = |rng: &mut dyn RngCore| Conv2dConfig::new(dim, dim, 3).build(rng);
        Ok(ResnetBlock {
            dim,
            conv1: conv(rng)?,
            norm1: InstanceNorm2dConfig::new(dim).build()?,
            conv2: conv(rng)?,
            norm2: InstanceNorm2dConfig::new(dim).build()?,
        })
    }
}

impl Module for ResnetBlock {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        self.conv1.visit(&join(prefix, "conv_block.1"), f);
        self.norm1.visit(&join(prefix, "conv_block.2"), f);
        self.conv2.visit(&join(prefix, "conv_block.5"), f);
        self.norm2.visit(&join(prefix, "conv_block.6"), f);
    }

    fn forward<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        let pad = ReflectionPad2d::new(1);
        let h = self.conv1.forward(pad.forward(x, mode), mode);
        let h = self.norm1.forward(h, mode).relu();
        let h = self.conv2.forward(pad.forward(h, mode), mode);
        x.add(self.norm2.forward(h, mode))
    }

    fn describe(&self) -> String {
        format!("ResnetBlock({})", self.dim)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::module::named_params;
    use gantry_autodiff::Tape;
    use gantry_tensor::Tensor;
    use rand::SeedableRng;

    /// pix2pixHD's parameter names, and the block composed by hand from its layers.
    #[test]
    fn names_and_a_manual_forward() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let b = ResnetBlock::new(4, &mut rng).unwrap();
        let names: Vec<String> = named_params(&b).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "conv_block.1.weight",
                "conv_block.1.bias",
                "conv_block.5.weight",
                "conv_block.5.bias"
            ]
        );
        let x = Tensor::randn(&[2, 4, 5, 6], 0.0, 1.0, &mut rng);
        let tape = Tape::new();
        let xv = tape.constant(x);
        let y = b.forward(xv, Mode::Train).value();
        fn pad(v: Var<'_>) -> Var<'_> {
            v.reflection_pad2d([1, 1, 1, 1])
        }
        let h = b.conv1.forward(pad(xv), Mode::Train);
        let h = h.instance_norm(1e-5).relu();
        let h = b.conv2.forward(pad(h), Mode::Train).instance_norm(1e-5);
        let manual = xv.add(h).value();
        assert_eq!(y.shape(), &[2, 4, 5, 6]);
        assert_eq!(y.to_vec(), manual.to_vec());
        // With the second convolution zeroed the block is the identity.
        b.conv2.weight.set(Tensor::zeros(&[4, 4, 3, 3]));
        b.conv2.bias.as_ref().unwrap().set(Tensor::zeros(&[4]));
        // (A fresh tape: a tape keeps the values parameters had when it first read them.)
        let tape = Tape::new();
        let xv = tape.constant(xv.value());
        let id = b.forward(xv, Mode::Train).value();
        assert_eq!(id.to_vec(), xv.value().to_vec());
    }
}
