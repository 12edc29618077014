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

    /// Applies the module and records intermediate activations in `features` (feature
    /// matching, multi-scale discriminators). The default records nothing and is
    /// [`Module::forward`]; [`Sequential`](crate::Sequential) records every child's output. A
    /// module with its own taps writes its forward pass once, here, and lets `forward` call
    /// it with a [`Features::discard`] collector.
    fn forward_features<'t>(&self, x: Var<'t>, mode: Mode, features: &mut Features<'t>) -> Var<'t> {
        let _ = features;
        self.forward(x, mode)
    }

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

/// Visits each module of `list` under `prefix.name.i`: a `Vec` of blocks named as PyTorch's
/// `nn.ModuleList` (`blocks.0.conv.weight`).
pub fn visit_list<'a, M: Module>(
    prefix: &str,
    name: &str,
    list: &'a [M],
    f: &mut dyn FnMut(&str, &'a Param),
) {
    let base = join(prefix, name);
    for (i, m) in list.iter().enumerate() {
        m.visit(&join(&base, &i.to_string()), f);
    }
}

/// Every parameter of `module` with its dotted name, in visiting order.
///
/// A parameter with a [`Reparam`](crate::reparam::Reparam) comes out as `NAME_orig`, followed
/// by the reparameterisation's buffers (`NAME_u`, `NAME_v`), PyTorch's names for hook-based
/// reparameterisations; state dicts and optimizers see these names.
pub fn named_params(module: &dyn Module) -> Vec<(String, &Param)> {
    let mut out = Vec::new();
    module.visit("", &mut |name, p| match p.reparam() {
        None => out.push((name.to_string(), p)),
        Some(r) => {
            out.push((format!("{name}_orig"), p));
            for (suffix, b) in r.buffers() {
                out.push((format!("{name}{suffix}"), b));
            }
        }
    });
    out
}

/// Intermediate activations recorded by [`Module::forward_features`], each under a name.
pub struct Features<'t> {
    on: bool,
    items: Vec<(String, Var<'t>)>,
}

impl Default for Features<'_> {
    fn default() -> Self {
        Features::new()
    }
}

impl<'t> Features<'t> {
    /// An empty collector that records.
    pub fn new() -> Self {
        Features {
            on: true,
            items: Vec::new(),
        }
    }

    /// A collector that ignores what it is given: `forward` of a module whose forward pass
    /// lives in `forward_features`.
    pub fn discard() -> Self {
        Features {
            on: false,
            items: Vec::new(),
        }
    }

    /// Records `x` under `name` (nothing if discarding).
    pub fn push(&mut self, name: impl Into<String>, x: Var<'t>) {
        if self.on {
            self.items.push((name.into(), x));
        }
    }

    /// Whether recording is on: a module may skip work that only feeds its features.
    pub fn is_recording(&self) -> bool {
        self.on
    }

    /// Records each of `other`'s features as `prefix.NAME` (a sub-network's taps, such as one
    /// scale of a multi-scale discriminator).
    pub fn extend_prefixed(&mut self, prefix: &str, other: Features<'t>) {
        for (name, x) in other.items {
            self.push(join(prefix, &name), x);
        }
    }

    /// The recorded activation named `name`.
    pub fn get(&self, name: &str) -> Option<Var<'t>> {
        self.items.iter().find(|(n, _)| n == name).map(|(_, x)| *x)
    }

    /// The names, in recording order.
    pub fn names(&self) -> Vec<&str> {
        self.items.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The activations, in recording order.
    pub fn vars(&self) -> Vec<Var<'t>> {
        self.items.iter().map(|(_, x)| *x).collect()
    }

    /// The number recorded.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether none was recorded.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The `(name, activation)` pairs, in recording order.
    pub fn into_vec(self) -> Vec<(String, Var<'t>)> {
        self.items
    }
}

/// Applies `module` and returns its output with the activations it records (see
/// [`Module::forward_features`]).
pub fn forward_with_features<'t>(
    module: &dyn Module,
    x: Var<'t>,
    mode: Mode,
) -> (Var<'t>, Features<'t>) {
    let mut features = Features::new();
    let y = module.forward_features(x, mode, &mut features);
    (y, features)
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
