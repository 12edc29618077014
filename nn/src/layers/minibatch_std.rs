//! Minibatch standard deviation (Karras et al., "Progressive Growing of GANs", 2018, 3).

use crate::module::{Mode, Module};
use crate::param::Param;
use gantry_autodiff::Var;
use gantry_tensor::Tensor;

/// Minibatch standard deviation: `[N, C, ...] -> [N, C + 1, ...]`.
///
/// A discriminator that judges one sample at a time cannot tell a collapsed generator from a
/// healthy one when each sample on its own looks real; this layer gives it a statistic of the
/// batch. The batch is split into groups of `group_size` samples (sample `n` in position
/// `n mod (N / G)` of group `n div (N / G)`, as the paper's code); for each position, the
/// standard deviation of every feature over the groups' members is averaged into one number,
/// `s = mean over (C, ...) of √(var over the group + eps)` (biased variance), which is
/// appended to each sample of that position as an extra channel. `group_size = None` uses the
/// whole batch as one group. No parameters; the same in training and evaluation.
///
/// # Shapes
/// input `[N, C, ...]` with `N` a multiple of the group size, output `[N, C + 1, ...]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MinibatchStdDev {
    /// Samples per group (ProGAN: 4); `None` for the whole batch.
    pub group_size: Option<usize>,
    /// Added to the variance before the square root, so the gradient stays finite when every
    /// sample is equal.
    pub eps: f32,
}

impl Default for MinibatchStdDev {
    fn default() -> Self {
        MinibatchStdDev {
            group_size: None,
            eps: 1e-8,
        }
    }
}

impl Module for MinibatchStdDev {
    fn visit<'a>(&'a self, _prefix: &str, _f: &mut dyn FnMut(&str, &'a Param)) {}

    /// # Panics
    /// If the input has fewer than two axes or its batch is not a multiple of the group size.
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t>, _mode: Mode) -> Var<'t> {
        let shape = x.shape();
        assert!(
            shape.len() >= 2,
            "MinibatchStdDev: input {shape:?} needs [N, C, ...]"
        );
        let n = shape[0];
        let g = self.group_size.unwrap_or(n).min(n);
        assert!(
            g > 0 && n.is_multiple_of(g),
            "MinibatchStdDev: batch {n} is not a multiple of the group size {g}"
        );
        let m = n / g;
        // [G, M, C, ...]: axis 0 runs over a group's members.
        let mut grouped = vec![g, m];
        grouped.extend_from_slice(&shape[1..]);
        let y = x.reshape(&grouped);
        let centred = y.sub(y.mean_axes(&[0], true));
        let std = centred
            .mul(centred)
            .mean_axes(&[0], true)
            .add_scalar(self.eps)
            .sqrt();
        // One number per position in the group: [1, M, 1, 1, ...].
        let feature_axes: Vec<usize> = (2..grouped.len()).collect();
        let s = std.mean_axes(&feature_axes, true);
        let mut tiled = grouped.clone();
        tiled[2] = 1;
        let ones = x.tape().constant(Tensor::ones(&tiled));
        let mut feature_shape = shape;
        feature_shape[1] = 1;
        Var::concat(&[x, ones.mul(s).reshape(&feature_shape)], 1)
    }

    fn describe(&self) -> String {
        match self.group_size {
            Some(g) => format!("MinibatchStdDev(group={g}, eps={:e})", self.eps),
            None => format!("MinibatchStdDev(eps={:e})", self.eps),
        }
    }
}
