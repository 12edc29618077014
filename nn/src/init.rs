//! Initialisers: PyTorch's defaults for new layers, and whole-model recipes by parameter role.

use crate::module::{Module, named_params};
use crate::param::ParamRole;
use gantry_tensor::Tensor;
use rand::Rng;

/// PyTorch's default for linear and convolution weights and biases,
/// `kaiming_uniform_(a = √5)`: `U(-1/√fan_in, 1/√fan_in)`.
pub fn kaiming_uniform<R: Rng + ?Sized>(shape: &[usize], fan_in: usize, rng: &mut R) -> Tensor {
    let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
    Tensor::rand_uniform(shape, -bound, bound, rng)
}

/// Sets every parameter of `module` with a role that `rule` answers for to `N(mean, std²)`
/// (or a constant when `std` is 0), in visiting order, leaving the others alone.
pub fn normal_by_role<R, F>(module: &dyn Module, rng: &mut R, rule: F)
where
    R: Rng + ?Sized,
    F: Fn(ParamRole) -> Option<(f32, f32)>,
{
    for (_, p) in named_params(module) {
        if let Some((mean, std)) = rule(p.role()) {
            let v = if std == 0.0 {
                Tensor::full(&p.shape(), mean)
            } else {
                Tensor::randn(&p.shape(), mean, std, rng)
            };
            p.set(v);
        }
    }
}

/// The DCGAN recipe (Radford et al.; pytorch/examples `weights_init`): convolution weights
/// `N(0, 0.02)`, batch-norm weights `N(1, 0.02)`, batch-norm biases 0.
pub fn dcgan<R: Rng + ?Sized>(module: &dyn Module, rng: &mut R) {
    normal_by_role(module, rng, |role| match role {
        ParamRole::ConvWeight => Some((0.0, 0.02)),
        ParamRole::NormWeight => Some((1.0, 0.02)),
        ParamRole::NormBias => Some((0.0, 0.0)),
        _ => None,
    });
}

/// The pix2pix recipe (Isola et al., `init_type='normal'`): convolution and linear weights
/// `N(0, 0.02)`, their biases 0, batch-norm weights `N(1, 0.02)`, batch-norm biases 0.
pub fn pix2pix<R: Rng + ?Sized>(module: &dyn Module, rng: &mut R) {
    normal_by_role(module, rng, |role| match role {
        ParamRole::ConvWeight | ParamRole::LinearWeight => Some((0.0, 0.02)),
        ParamRole::Bias | ParamRole::NormBias => Some((0.0, 0.0)),
        ParamRole::NormWeight => Some((1.0, 0.02)),
        _ => None,
    });
}

/// A (semi-)orthogonal matrix of `shape`, as `torch.nn.init.orthogonal_`: the `[rows, cols]`
/// view (`rows = shape[0]`, the rest flattened) has orthonormal rows if `rows <= cols`, or
/// orthonormal columns otherwise, times `gain`. Drawn as PyTorch does: the QR factorisation
/// of a standard normal matrix (transposed when wide), `Q` multiplied by the signs of `R`'s
/// diagonal so that the result is uniformly (Haar) distributed.
///
/// # Panics
/// If `shape` has fewer than two axes or no element (as PyTorch).
#[track_caller]
pub fn orthogonal<R: Rng + ?Sized>(shape: &[usize], gain: f32, rng: &mut R) -> Tensor {
    assert!(
        shape.len() >= 2 && shape.iter().all(|&d| d > 0),
        "init::orthogonal: shape {shape:?} needs at least two non-empty axes"
    );
    let rows = shape[0];
    let cols: usize = shape[1..].iter().product();
    let (m, n) = (rows.max(cols), rows.min(cols));
    // A tall m x n standard normal matrix (the transpose of the wide one when rows < cols).
    let draws = Tensor::randn(&[m, n], 0.0, 1.0, rng).to_vec();
    let a = nalgebra::DMatrix::from_row_slice(m, n, &draws).map(f64::from);
    let qr = a.qr();
    let mut q = qr.q();
    let r = qr.r();
    for j in 0..n {
        if r[(j, j)] < 0.0 {
            q.column_mut(j).neg_mut();
        }
    }
    let mut out = Vec::with_capacity(rows * cols);
    for i in 0..rows {
        for j in 0..cols {
            // Tall case: element (i, j) of Q; wide case: of Qᵀ.
            let v = if rows >= cols { q[(i, j)] } else { q[(j, i)] };
            out.push(v as f32 * gain);
        }
    }
    Tensor::from_vec(shape, out)
}

/// BigGAN's `init='ortho'`: every linear, convolution and embedding weight of `module` set to
/// [`orthogonal`] with `gain` (1 in BigGAN), in visiting order; other parameters are left
/// alone. A reparameterised weight's stored value (`NAME_orig`) is what is set.
pub fn orthogonal_weights<R: Rng + ?Sized>(module: &dyn Module, gain: f32, rng: &mut R) {
    for (_, p) in named_params(module) {
        if matches!(
            p.role(),
            ParamRole::LinearWeight | ParamRole::ConvWeight | ParamRole::Embedding
        ) {
            p.set(orthogonal(&p.shape(), gain, rng));
        }
    }
}
