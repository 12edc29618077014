//! Shape layers.

use crate::module::{Mode, Module};
use crate::param::Param;
use gantry_autodiff::Var;

/// `[N, ...] -> [N, rest]`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Flatten;

impl Module for Flatten {
    fn visit<'a>(&'a self, _prefix: &str, _f: &mut dyn FnMut(&str, &'a Param)) {}

    fn forward<'t>(&self, x: Var<'t>, _mode: Mode) -> Var<'t> {
        x.flatten()
    }
}

/// `[N, ...] -> [N, shape...]`: the batch axis is kept, the rest takes `shape`.
#[derive(Clone, Debug)]
pub struct Reshape {
    /// The shape of one example.
    pub shape: Vec<usize>,
}

impl Reshape {
    /// Reshapes each example to `shape`.
    pub fn new(shape: &[usize]) -> Self {
        Reshape {
            shape: shape.to_vec(),
        }
    }
}

impl Module for Reshape {
    fn visit<'a>(&'a self, _prefix: &str, _f: &mut dyn FnMut(&str, &'a Param)) {}

    fn forward<'t>(&self, x: Var<'t>, _mode: Mode) -> Var<'t> {
        let mut shape = vec![x.shape()[0]];
        shape.extend(&self.shape);
        x.reshape(&shape)
    }

    fn describe(&self) -> String {
        format!("Reshape({:?})", self.shape)
    }
}
