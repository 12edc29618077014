//! A chain of modules named by index, as `nn.Sequential`.

use crate::module::{Features, Mode, Module, join};
use crate::param::Param;
use gantry_autodiff::Var;

/// Applies its children in order; their parameters are named `0.weight`, `3.bias`, ...
/// (parameter-free children such as activations keep their index, as in PyTorch).
#[derive(Default)]
pub struct Sequential {
    children: Vec<Box<dyn Module>>,
}

impl Sequential {
    /// An empty chain.
    pub fn new() -> Self {
        Sequential::default()
    }

    /// Appends a module.
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, m: impl Module + 'static) -> Self {
        self.children.push(Box::new(m));
        self
    }

    /// Appends a boxed module.
    pub fn push(&mut self, m: Box<dyn Module>) {
        self.children.push(m);
    }

    /// The number of children.
    pub fn len(&self) -> usize {
        self.children.len()
    }

    /// Whether there is no child.
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// The children.
    pub fn children(&self) -> &[Box<dyn Module>] {
        &self.children
    }
}

impl Module for Sequential {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        for (i, c) in self.children.iter().enumerate() {
            c.visit(&join(prefix, &i.to_string()), f);
        }
    }

    fn forward<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        self.children.iter().fold(x, |h, c| c.forward(h, mode))
    }

    /// Records the output of every child under its index (`"0"`, `"1"`, ...), as the
    /// discriminators of pix2pixHD hand each block's output to feature matching.
    fn forward_features<'t>(&self, x: Var<'t>, mode: Mode, features: &mut Features<'t>) -> Var<'t> {
        self.children.iter().enumerate().fold(x, |h, (i, c)| {
            let y = c.forward(h, mode);
            features.push(i.to_string(), y);
            y
        })
    }

    fn describe(&self) -> String {
        let inner: Vec<String> = self
            .children
            .iter()
            .enumerate()
            .map(|(i, c)| format!("  ({i}): {}", c.describe()))
            .collect();
        format!("Sequential(\n{}\n)", inner.join("\n"))
    }
}
