//! Embedding table for label-conditional models.

use crate::module::{Mode, Module, join};
use crate::param::{Param, ParamRole};
use gantry_autodiff::Var;
use gantry_tensor::Tensor;
use rand::Rng;

/// A table of `num` vectors of size `dim`, initialised `N(0, 1)` as PyTorch.
///
/// Its input is a one-hot matrix `[N, num]` (see [`Embedding::one_hot`]), so the lookup is a
/// matrix product and its gradient needs no special op.
#[derive(Debug)]
pub struct Embedding {
    /// `[num, dim]`.
    pub weight: Param,
}

impl Embedding {
    /// A `num x dim` table.
    pub fn new<R: Rng + ?Sized>(num: usize, dim: usize, rng: &mut R) -> Self {
        Embedding {
            weight: Param::trainable(
                Tensor::randn(&[num, dim], 0.0, 1.0, rng),
                ParamRole::Embedding,
            ),
        }
    }

    /// The one-hot rows `[labels.len(), num]` for `labels`.
    ///
    /// # Panics
    /// If a label is `>= num`.
    #[track_caller]
    pub fn one_hot(labels: &[usize], num: usize) -> Tensor {
        let mut v = vec![0.0; labels.len() * num];
        for (i, &l) in labels.iter().enumerate() {
            assert!(
                l < num,
                "Embedding::one_hot: label {l} out of range for {num} classes"
            );
            v[i * num + l] = 1.0;
        }
        Tensor::from_vec(&[labels.len(), num], v)
    }
}

impl Module for Embedding {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        f(&join(prefix, "weight"), &self.weight);
    }

    /// `x` is one-hot `[N, num]`; the result is `[N, dim]`.
    fn forward<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        x.matmul(self.weight.read(x.tape(), mode))
    }

    fn describe(&self) -> String {
        let s = self.weight.shape();
        format!("Embedding({}, {})", s[0], s[1])
    }
}
