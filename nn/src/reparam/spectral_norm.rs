//! Spectral normalisation (Miyato et al., "Spectral Normalization for Generative Adversarial
//! Networks", 2018), as `torch.nn.utils.spectral_norm`.

use super::Reparam;
use crate::Result;
use crate::error::config_error;
use crate::module::Mode;
use crate::param::Param;
use gantry_autodiff::Var;
use gantry_tensor::Tensor;
use rand::Rng;

/// Settings of spectral normalisation, with PyTorch's defaults (one power iteration per
/// training forward, `eps = 1e-12`, the output axis of the weight as the matrix rows).
#[derive(Clone, Debug, PartialEq)]
pub struct SpectralNorm {
    /// Power iterations per forward in [`Mode::Train`].
    pub iterations: usize,
    /// Floor of a vector's norm when it is normalised.
    pub eps: f32,
    /// The axis that becomes the rows of the weight matrix; `None` takes the parameter's
    /// [`Param::out_axis`] (0, or 1 for transposed convolutions, as PyTorch).
    pub dim: Option<usize>,
}

impl Default for SpectralNorm {
    fn default() -> Self {
        SpectralNorm {
            iterations: 1,
            eps: 1e-12,
            dim: None,
        }
    }
}

impl SpectralNorm {
    /// The reparameterisation of `param`, with `u` and `v` drawn `N(0, I)` and normalised,
    /// as PyTorch.
    ///
    /// # Errors
    /// If the parameter has fewer than one axis or `dim` is out of range.
    pub fn attach<R: Rng + ?Sized>(&self, param: &Param, rng: &mut R) -> Result<Box<dyn Reparam>> {
        let shape = param.shape();
        let dim = self.dim.unwrap_or(param.out_axis());
        if dim >= shape.len() || param.is_empty() {
            return Err(config_error(
                "SpectralNorm",
                format!("axis {dim} does not index a weight of shape {shape:?}"),
            ));
        }
        let h = shape[dim];
        let w = param.len() / h;
        let u = normalize(Tensor::randn(&[h], 0.0, 1.0, rng).to_vec(), self.eps);
        let v = normalize(Tensor::randn(&[w], 0.0, 1.0, rng).to_vec(), self.eps);
        Ok(Box::new(SpectralNormWeight {
            config: SpectralNorm {
                dim: Some(dim),
                ..self.clone()
            },
            dim,
            u: Param::buffer(Tensor::from_vec(&[h], u)),
            v: Param::buffer(Tensor::from_vec(&[w], v)),
        }))
    }
}

/// A spectrally normalised weight: `W / σ` with `σ = uᵀ W_mat v`, where `W_mat` is the weight
/// with axis `dim` moved first and the rest flattened, and `u`, `v` are estimates of its first
/// singular vectors. In [`Mode::Train`] each read first runs the power iteration
/// `v ← normalize(W_matᵀ u)`, `u ← normalize(W_mat v)` and stores `u`, `v`; in
/// [`Mode::Eval`] the stored vectors are used as they are. `u` and `v` are constants for the
/// gradient, as in PyTorch, so the gradient reaches `W` through both `W` and `σ`.
///
/// # Shapes
/// weight of any shape with `h = shape[dim]` rows and `w = len / h` columns; buffers `u`
/// `[h]` and `v` `[w]`, saved as `NAME_u` and `NAME_v`.
#[derive(Debug)]
pub struct SpectralNormWeight {
    config: SpectralNorm,
    dim: usize,
    /// Left singular vector estimate, `[h]`.
    pub u: Param,
    /// Right singular vector estimate, `[w]`.
    pub v: Param,
}

impl SpectralNormWeight {
    fn permutation(&self, rank: usize) -> Vec<usize> {
        let mut axes = vec![self.dim];
        axes.extend((0..rank).filter(|&a| a != self.dim));
        axes
    }
}

impl Reparam for SpectralNormWeight {
    fn apply<'t>(&self, raw: Var<'t>, mode: Mode) -> Var<'t> {
        let shape = raw.shape();
        let axes = self.permutation(shape.len());
        let (h, w) = (self.u.len(), self.v.len());
        if mode == Mode::Train && self.config.iterations > 0 {
            let m = raw.value().permute(&axes).reshape(&[h, w]).to_vec();
            let (mut u, mut v) = (self.u.value().to_vec(), self.v.value().to_vec());
            for _ in 0..self.config.iterations {
                v = normalize(mat_t_vec(&m, h, w, &u), self.config.eps);
                u = normalize(mat_vec(&m, h, w, &v), self.config.eps);
            }
            self.u.set(Tensor::from_vec(&[h], u));
            self.v.set(Tensor::from_vec(&[w], v));
        }
        let tape = raw.tape();
        let u = tape.constant(self.u.value().reshape(&[1, h]));
        let v = tape.constant(self.v.value().reshape(&[w, 1]));
        let sigma = u.matmul(raw.permute(&axes).reshape(&[h, w])).matmul(v);
        raw.div(sigma.reshape(&vec![1; shape.len()]))
    }

    fn buffers(&self) -> Vec<(&'static str, &Param)> {
        vec![("_u", &self.u), ("_v", &self.v)]
    }

    fn describe(&self) -> String {
        format!(
            "SpectralNorm(dim={}, iterations={})",
            self.dim, self.config.iterations
        )
    }
}

/// `x / max(‖x‖, eps)`, as `torch.nn.functional.normalize`.
fn normalize(mut x: Vec<f32>, eps: f32) -> Vec<f32> {
    let norm = x.iter().map(|a| f64::from(*a).powi(2)).sum::<f64>().sqrt() as f32;
    let d = norm.max(eps);
    x.iter_mut().for_each(|a| *a /= d);
    x
}

/// `M v` for row-major `M` `[h, w]`.
fn mat_vec(m: &[f32], h: usize, w: usize, v: &[f32]) -> Vec<f32> {
    (0..h)
        .map(|i| {
            m[i * w..(i + 1) * w]
                .iter()
                .zip(v)
                .map(|(a, b)| a * b)
                .sum()
        })
        .collect()
}

/// `Mᵀ u` for row-major `M` `[h, w]`.
fn mat_t_vec(m: &[f32], h: usize, w: usize, u: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0; w];
    for i in 0..h {
        for (o, a) in out.iter_mut().zip(&m[i * w..(i + 1) * w]) {
            *o += a * u[i];
        }
    }
    out
}

/// The largest singular value of `weight` seen as a matrix with axis `dim` as rows, by power
/// iteration in `f64` from a fixed start until it settles (at most `max_iterations`): the
/// reference that spectral normalisation's one-step estimate is tested against.
pub fn largest_singular_value(weight: &Tensor, dim: usize, max_iterations: usize) -> f64 {
    let shape = weight.shape();
    let h = shape[dim];
    let w = weight.len() / h;
    let mut axes = vec![dim];
    axes.extend((0..shape.len()).filter(|&a| a != dim));
    let m: Vec<f64> = weight
        .permute(&axes)
        .to_vec()
        .into_iter()
        .map(f64::from)
        .collect();
    let mut v: Vec<f64> = (0..w).map(|i| 1.0 + (i as f64 * 0.37).sin()).collect();
    let mut sigma = 0.0;
    for _ in 0..max_iterations {
        let u: Vec<f64> = (0..h)
            .map(|i| (0..w).map(|j| m[i * w + j] * v[j]).sum())
            .collect();
        let mut next = vec![0.0; w];
        for i in 0..h {
            for j in 0..w {
                next[j] += m[i * w + j] * u[i];
            }
        }
        let norm = next.iter().map(|a| a * a).sum::<f64>().sqrt();
        let new_sigma = norm.sqrt();
        next.iter_mut().for_each(|a| *a /= norm.max(1e-300));
        v = next;
        if (new_sigma - sigma).abs() <= 1e-12 * new_sigma {
            return new_sigma;
        }
        sigma = new_sigma;
    }
    sigma
}
