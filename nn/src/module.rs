//! The `Module` trait: named parameters by visiting, and a forward pass with an explicit mode.

use crate::param::{Param, ParamKind};
use gantry_autodiff::Var;
use std::fmt::Write;

/// Training or evaluation behaviour of layers such as batch norm and dropout.
///
/// It is passed to every forward call rather than stored: pix2pix keeps dropout and batch
/// statistics on at test time, so the mode belongs to the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Batch statistics (and running averages updated), dropout on.
    Train,
    /// Running statistics, dropout off.
    Eval,
}

/// A layer or a model: parameters reachable by name, and a forward pass.
///
/// Implementors call `f(name, param)` for each of their own parameters and `child.visit`
/// with a dotted prefix for each child, so names come out as `down.3.weight`, PyTorch's
/// `state_dict` names.
pub trait Module {
    /// Visits every parameter under `prefix` (empty for the root).
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param));

    /// Applies the module.
    fn forward<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t>;

    /// A one-line description for [`summary`], such as `Conv2d(3, 64, k=4, s=2, p=1)`.
    fn describe(&self) -> String {
        std::any::type_name::<Self>()
            .rsplit("::")
            .next()
            .unwrap_or("Module")
            .to_string()
    }
}

/// Joins a prefix and a name with a dot.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Visits a layer's `weight` and, if it has one, its `bias`: the names every linear and
/// convolution layer shares with PyTorch.
pub fn visit_weight_bias<'a>(
    prefix: &str,
    weight: &'a Param,
    bias: Option<&'a Param>,
    f: &mut dyn FnMut(&str, &'a Param),
) {
    f(&join(prefix, "weight"), weight);
    if let Some(b) = bias {
        f(&join(prefix, "bias"), b);
    }
}

/// Every parameter of `module` with its dotted name, in visiting order.
pub fn named_params(module: &dyn Module) -> Vec<(String, &Param)> {
    let mut out = Vec::new();
    module.visit("", &mut |name, p| out.push((name.to_string(), p)));
    out
}

/// The number of trainable elements (what PyTorch's `sum(p.numel() for p in parameters())`
/// counts: buffers excluded).
pub fn param_count(module: &dyn Module) -> usize {
    named_params(module)
        .iter()
        .filter(|(_, p)| p.kind() == ParamKind::Trainable)
        .map(|(_, p)| p.len())
        .sum()
}

/// Freezes or unfreezes every trainable parameter (the discriminator during the generator's
/// step, as pix2pix does).
pub fn set_requires_grad(module: &dyn Module, on: bool) {
    module.visit("", &mut |_, p| p.set_requires_grad(on));
}

/// A table of the parameters: name, shape, count, kind; and the trainable total.
pub fn summary(module: &dyn Module) -> String {
    let params = named_params(module);
    let width = params
        .iter()
        .map(|(n, _)| n.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut s = String::new();
    let _ = writeln!(s, "{}", module.describe());
    let _ = writeln!(
        s,
        "{:width$}  {:>18}  {:>10}  kind",
        "name", "shape", "count"
    );
    for (name, p) in &params {
        let kind = match p.kind() {
            ParamKind::Trainable => "trainable",
            ParamKind::Buffer => "buffer",
        };
        let shape = format!("{:?}", p.shape());
        let _ = writeln!(s, "{name:width$}  {shape:>18}  {:>10}  {kind}", p.len());
    }
    let _ = writeln!(s, "trainable parameters: {}", param_count(module));
    s
}
