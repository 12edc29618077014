//! PacGAN's packed discriminator (Lin et al. 2018): the discriminator judges `m` samples at
//! once, all real or all fake, which lets it see the lack of diversity of a collapsed
//! generator.
//!
//! Packing is done inside the discriminator ([`Packed`] wraps its first layer's input), not
//! by the trainer: a packed discriminator *is* a function of `m` samples, so the trainer,
//! the checkpoints and every other caller stay unaware of it, and the parameter names are
//! those of the unpacked network (only the first layer's input width grows `m` times).

use gantry_autodiff::Var;
use gantry_nn::{Features, Mode, Module, Param};
use gantry_tensor::Tensor;

/// The packed shape of `shape`: `[N, D, ...] -> [N / m, m * D, ...]`.
#[track_caller]
fn packed_shape(shape: &[usize], m: usize) -> Vec<usize> {
    assert!(
        shape.len() >= 2 && m > 0 && shape[0].is_multiple_of(m),
        "pack: {shape:?} cannot be packed by {m} (the batch must be a multiple of it)"
    );
    let mut out = shape.to_vec();
    out[0] /= m;
    out[1] *= m;
    out
}

/// Packs `m` consecutive samples into one: `[N, C, H, W] -> [N/m, m*C, H, W]` (images) or
/// `[N, D] -> [N/m, m*D]` (flat samples). Sample `i` of group `g` (sample `g*m + i` of the
/// batch) becomes channels (or features) `i*C .. (i+1)*C` of row `g`. For a contiguous
/// tensor this is only a reshape, and so is its gradient.
///
/// # Panics
/// If `x` has fewer than two axes or its batch is not a multiple of `m`.
#[track_caller]
pub fn pack(x: Var<'_>, m: usize) -> Var<'_> {
    if m == 1 {
        return x;
    }
    x.reshape(&packed_shape(&x.shape(), m))
}

/// [`pack`] on a tensor.
///
/// # Panics
/// As [`pack`].
#[track_caller]
pub fn pack_tensor(x: &Tensor, m: usize) -> Tensor {
    x.reshape(&packed_shape(x.shape(), m))
}

/// A discriminator that packs `m` samples before its first layer.
///
/// # Shapes
/// Input `[N, ...]` with `N` a multiple of `m`; output: the inner module's output for
/// `N / m` packed samples.
pub struct Packed<M> {
    inner: M,
    m: usize,
}

impl<M: Module> Packed<M> {
    /// Wraps `inner`, which must take `m` times the per-sample channels (or features).
    pub fn new(inner: M, m: usize) -> Self {
        Packed { inner, m }
    }

    /// The packing degree.
    pub fn degree(&self) -> usize {
        self.m
    }
}

impl<M: Module> Module for Packed<M> {
    /// The inner module's parameters under the same names: packing adds none.
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        self.inner.visit(prefix, f);
    }

    fn forward<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        self.inner.forward(pack(x, self.m), mode)
    }

    /// The inner module's features for the packed batch, under its own names: a feature
    /// matching loss on a packed discriminator compares packed activations, as the
    /// discriminator sees them.
    fn forward_features<'t>(&self, x: Var<'t>, mode: Mode, features: &mut Features<'t>) -> Var<'t> {
        self.inner.forward_features(pack(x, self.m), mode, features)
    }

    fn describe(&self) -> String {
        if self.m == 1 {
            self.inner.describe()
        } else {
            format!("Packed(m={}, {})", self.m, self.inner.describe())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_autodiff::Tape;

    /// Sample `s`, channel `c`, pixel `p` holds `1000 s + 100 c + p`, so every value says
    /// where it came from.
    fn labelled(n: usize, c: usize, hw: usize) -> Tensor {
        let v = (0..n * c * hw)
            .map(|k| {
                let (s, rest) = (k / (c * hw), k % (c * hw));
                (1000 * s + 100 * (rest / hw) + rest % hw) as f32
            })
            .collect();
        Tensor::from_vec(&[n, c, 2, hw / 2], v)
    }

    #[test]
    fn sample_i_of_group_g_lands_in_channels_i() {
        let (n, c, hw, m) = (6, 2, 4, 3);
        let x = labelled(n, c, hw);
        let p = pack_tensor(&x, m);
        assert_eq!(p.shape(), &[2, 6, 2, 2]);
        let v = p.as_slice();
        for g in 0..n / m {
            for i in 0..m {
                for ch in 0..c {
                    for px in 0..hw {
                        let at = ((g * m * c) + i * c + ch) * hw + px;
                        let want = 1000 * (g * m + i) + 100 * ch + px;
                        assert_eq!(v[at], want as f32, "group {g} sample {i} channel {ch}");
                    }
                }
            }
        }
    }

    #[test]
    fn flat_samples_concatenate_features() {
        let x = Tensor::from_vec(&[4, 2], vec![0., 1., 10., 11., 20., 21., 30., 31.]);
        let p = pack_tensor(&x, 2);
        assert_eq!(p.shape(), &[2, 4]);
        assert_eq!(p.to_vec(), vec![0., 1., 10., 11., 20., 21., 30., 31.]);
    }

    #[test]
    fn gradient_flows_back_to_each_sample() {
        let tape = Tape::new();
        let x = tape.leaf(labelled(4, 1, 4));
        let y = pack(x, 2).slice_axis(1, 1, 2).sum();
        let g = y.backward();
        let gx = g.get(x).unwrap().to_vec();
        // Channel 1 of each group is the second sample of the group: samples 1 and 3.
        for (s, chunk) in gx.chunks(4).enumerate() {
            let want = if s % 2 == 1 { 1.0 } else { 0.0 };
            assert!(chunk.iter().all(|&v| v == want), "sample {s}: {chunk:?}");
        }
    }

    /// Without this pass-through the default `forward_features` would record nothing, and a
    /// feature-matching loss on a packed discriminator would silently be zero.
    #[test]
    fn packed_dcgan_features_equal_a_manual_forward_of_the_packed_batch() {
        use crate::models::dcgan::{DcganConfig, players};
        use gantry_nn::forward_with_features;
        use rand::SeedableRng;

        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let m = 2;
        let config = DcganConfig {
            image_size: 16,
            ndf: 4,
            ngf: 4,
            pack: m,
            ..DcganConfig::dcgan64(3)
        };
        let (_, inner) = players(&config, 3 * m, &mut rng).unwrap();
        let layers = inner.len();
        let d = Packed::new(inner, m);
        let x = Tensor::randn(&[4, 3, 16, 16], 0.0, 1.0, &mut rng);
        let tape = Tape::new();
        let (y, features) = forward_with_features(&d, tape.constant(x.clone()), Mode::Eval);
        assert_eq!(
            features.len(),
            layers,
            "one feature per layer of the inner network"
        );
        assert_eq!(y.shape()[0], 2, "two packed samples");
        let mut h = tape.constant(pack_tensor(&x, m));
        for (i, layer) in d.inner.children().iter().enumerate() {
            h = layer.forward(h, Mode::Eval);
            let f = features.get(&i.to_string()).expect("one feature per layer");
            assert_eq!(f.shape(), h.shape(), "feature {i}");
            assert_eq!(f.value().to_vec(), h.value().to_vec(), "feature {i}");
        }
        assert_eq!(y.value().to_vec(), h.value().to_vec());
        assert_eq!(
            d.forward(tape.constant(x), Mode::Eval).value().to_vec(),
            h.value().to_vec()
        );
    }

    #[test]
    #[should_panic(expected = "cannot be packed by 2")]
    fn an_odd_batch_is_refused() {
        pack_tensor(&Tensor::zeros(&[3, 2]), 2);
    }
}
