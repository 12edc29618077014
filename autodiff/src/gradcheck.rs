//! Central finite differences against the tape's gradients: one line checks a new op.

use crate::{CreateGraph, Tape, Var};
use gantry_tensor::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Step and tolerances of [`gradcheck`].
#[derive(Clone, Debug)]
pub struct GradcheckConfig {
    /// The finite-difference step.
    pub eps: f32,
    /// Relative tolerance, against the larger of the two gradients' magnitudes.
    pub rtol: f32,
    /// Absolute tolerance.
    pub atol: f32,
    /// At most this many coordinates of each input are perturbed (chosen at random beyond it).
    pub max_checks_per_input: usize,
    /// Seed of the random projection `r` and of the coordinate choice.
    pub seed: u64,
}

impl Default for GradcheckConfig {
    fn default() -> Self {
        GradcheckConfig {
            eps: 1e-2,
            rtol: 1e-2,
            atol: 1e-3,
            max_checks_per_input: 64,
            seed: 0,
        }
    }
}

/// Which comparison of a check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The tape's gradient against finite differences of the function ([`gradcheck`]).
    Gradient,
    /// The derivative of the recorded gradient against finite differences of the first-order
    /// gradient ([`gradgradcheck`]).
    SecondDerivative,
    /// The recorded gradient's value against the first-order pass's ([`gradgradcheck`]).
    RecordedGradient,
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Check::Gradient => "gradient",
            Check::SecondDerivative => "second derivative",
            Check::RecordedGradient => "recorded gradient vs first-order gradient",
        })
    }
}

/// A coordinate where the tape's gradient and the finite difference disagree.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "gradcheck ({check}): input {input} element {index}: analytic {analytic} vs numeric {numeric}"
)]
pub struct GradcheckError {
    /// Which comparison failed.
    pub check: Check,
    /// Which input.
    pub input: usize,
    /// Which element of it (row-major).
    pub index: usize,
    /// The derivative from the tape.
    pub analytic: f32,
    /// The central finite difference (for [`Check::RecordedGradient`], the first-order pass).
    pub numeric: f32,
}

/// Checks the gradients of `f` at `inputs` against central finite differences.
///
/// The scalar differentiated is `Σ f(x) · r` for a fixed random `r`, so every element of the
/// output contributes. Returns the number of coordinates checked.
///
/// A coordinate fails when `|analytic - numeric| > atol + rtol · max(|analytic|, |numeric|)`.
/// With the default [`GradcheckConfig`], on gradients of order one, a rule off by a relative
/// 1.5% is rejected on every one of 400 seeds, 1.2% on most, 1% on none
/// (`autodiff/tests/gradcheck_controls.rs` tests the 1.5%); on gradients much smaller than
/// `atol / rtol` = 0.1 the absolute tolerance dominates and the detectable error is larger.
///
/// ```
/// use gantry_autodiff::{gradcheck, GradcheckConfig};
/// use gantry_tensor::Tensor;
///
/// let x = Tensor::from_vec(&[2, 3], vec![0.3, -1.2, 0.5, 2.0, -0.7, 1.1]);
/// let checked = gradcheck(|_, v| v[0].tanh().mul(v[0]), &[x], &GradcheckConfig::default()).unwrap();
/// assert_eq!(checked, 6);
/// ```
pub fn gradcheck<F>(f: F, inputs: &[Tensor], cfg: &GradcheckConfig) -> Result<usize, GradcheckError>
where
    F: for<'t> Fn(&'t Tape, &[Var<'t>]) -> Var<'t>,
{
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let eval = |xs: &[Tensor]| -> Tensor {
        let tape = Tape::new();
        let vars: Vec<Var> = xs.iter().map(|x| tape.constant(x.clone())).collect();
        f(&tape, &vars).value()
    };
    let r = Tensor::rand_uniform(eval(inputs).shape(), -1.0, 1.0, &mut rng);

    let tape = Tape::new();
    let vars: Vec<Var> = inputs.iter().map(|x| tape.leaf(x.clone())).collect();
    let grads = f(&tape, &vars).backward_with(r.clone());
    let analytic: Vec<Tensor> = vars.iter().map(|&v| grads.get_or_zeros(v)).collect();

    let projected = |xs: &[Tensor]| dot(&eval(xs), &r);
    compare(Check::Gradient, &analytic, projected, inputs, cfg, &mut rng)
}

/// Checks the second derivatives of `f` at `inputs`: the gradient recorded with
/// [`CreateGraph::Yes`], differentiated again, against central finite differences of the
/// first-order gradient (PyTorch's `gradgradcheck`).
///
/// With `g(x) = ∂/∂x Σ f(x) · r₁` for a fixed random `r₁`, the scalar differentiated is
/// `Σᵢ gᵢ(x) · r₂ᵢ` for fixed random `r₂ᵢ`. The finite differences use the tape's first-order
/// pass (tensors, nothing recorded), so a rule whose recorded form is wrong, or treats as a
/// constant something that is not, is caught; the recorded gradient's value is also compared
/// with the first-order one. Returns the number of coordinates checked.
///
/// ```
/// use gantry_autodiff::{gradgradcheck, GradcheckConfig};
/// use gantry_tensor::Tensor;
///
/// let x = Tensor::from_vec(&[2, 2], vec![0.3, -1.2, 0.5, 1.0]);
/// let checked = gradgradcheck(|_, v| v[0].tanh().mul(v[0]), &[x], &GradcheckConfig::default()).unwrap();
/// assert_eq!(checked, 4);
/// ```
///
/// # Panics
/// If the gradient cannot be recorded: `f` goes through an op without a second derivative
/// (the panic message is the [`GradError`](crate::GradError), naming the op).
pub fn gradgradcheck<F>(
    f: F,
    inputs: &[Tensor],
    cfg: &GradcheckConfig,
) -> Result<usize, GradcheckError>
where
    F: for<'t> Fn(&'t Tape, &[Var<'t>]) -> Var<'t>,
{
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let y_shape = {
        let tape = Tape::new();
        let vars: Vec<Var> = inputs.iter().map(|x| tape.constant(x.clone())).collect();
        f(&tape, &vars).shape()
    };
    let r1 = Tensor::rand_uniform(&y_shape, -1.0, 1.0, &mut rng);
    let r2: Vec<Tensor> = inputs
        .iter()
        .map(|x| Tensor::rand_uniform(x.shape(), -1.0, 1.0, &mut rng))
        .collect();
    // The gradient of Σ f(x) · r₁ with respect to every input, recorded or not.
    let gradient = |tape: &Tape, xs: &[Tensor], create: CreateGraph| -> Vec<Tensor> {
        let vars: Vec<Var> = xs.iter().map(|x| tape.leaf(x.clone())).collect();
        let s = f(tape, &vars).mul(tape.constant(r1.clone())).sum();
        let grads = tape
            .grad(&[s], &vars, create)
            .unwrap_or_else(|e| panic!("gradgradcheck: {e}"));
        if create == CreateGraph::No {
            return grads.iter().map(|g| g.value()).collect();
        }
        let h = grads
            .iter()
            .zip(&r2)
            .map(|(g, r)| g.mul(tape.constant(r.clone())).sum())
            .reduce(|a, b| a.add(b))
            .expect("at least one input");
        let second = h.backward();
        let recorded: Vec<Tensor> = grads.iter().map(|g| g.value()).collect();
        vars.iter()
            .map(|&v| second.get_or_zeros(v))
            .chain(recorded)
            .collect()
    };

    let both = gradient(&Tape::new(), inputs, CreateGraph::Yes);
    let (analytic, recorded) = both.split_at(inputs.len());
    let first_order = gradient(&Tape::new(), inputs, CreateGraph::No);
    for (i, (a, b)) in recorded.iter().zip(&first_order).enumerate() {
        let (a, b) = (a.to_vec(), b.to_vec());
        for (j, (&a, &b)) in a.iter().zip(&b).enumerate() {
            if (a - b).abs() > cfg.atol + cfg.rtol * a.abs().max(b.abs())
                || a.is_nan() != b.is_nan()
            {
                return Err(GradcheckError {
                    check: Check::RecordedGradient,
                    input: i,
                    index: j,
                    analytic: a,
                    numeric: b,
                });
            }
        }
    }
    let projected = |xs: &[Tensor]| -> f64 {
        let g = gradient(&Tape::new(), xs, CreateGraph::No);
        g.iter().zip(&r2).map(|(g, r)| dot(g, r)).sum()
    };
    compare(
        Check::SecondDerivative,
        analytic,
        projected,
        inputs,
        cfg,
        &mut rng,
    )
}

/// `Σ a · b` in f64.
fn dot(a: &Tensor, b: &Tensor) -> f64 {
    a.to_vec()
        .iter()
        .zip(b.to_vec())
        .map(|(&a, b)| f64::from(a) * f64::from(b))
        .sum()
}

/// Compares `analytic[i]` with central differences of `projected` along each checked
/// coordinate of each input.
fn compare(
    check: Check,
    analytic: &[Tensor],
    projected: impl Fn(&[Tensor]) -> f64,
    inputs: &[Tensor],
    cfg: &GradcheckConfig,
    rng: &mut ChaCha8Rng,
) -> Result<usize, GradcheckError> {
    let mut checked = 0;
    for (i, x) in inputs.iter().enumerate() {
        let analytic = analytic[i].to_vec();
        let base = x.to_vec();
        let indices: Vec<usize> = if base.len() <= cfg.max_checks_per_input {
            (0..base.len()).collect()
        } else {
            (0..cfg.max_checks_per_input)
                .map(|_| rng.random_range(0..base.len()))
                .collect()
        };
        for j in indices {
            let shifted = |delta: f32| -> (f32, f64) {
                let mut v = base.clone();
                v[j] += delta;
                let moved = v[j];
                let mut xs = inputs.to_vec();
                xs[i] = Tensor::from_vec(x.shape(), v);
                (moved, projected(&xs))
            };
            let (hi, f_hi) = shifted(cfg.eps);
            let (lo, f_lo) = shifted(-cfg.eps);
            let numeric = ((f_hi - f_lo) / f64::from(hi - lo)) as f32;
            let a = analytic[j];
            let close = (a - numeric).abs() <= cfg.atol + cfg.rtol * a.abs().max(numeric.abs());
            if !close {
                return Err(GradcheckError {
                    check,
                    input: i,
                    index: j,
                    analytic: a,
                    numeric,
                });
            }
            checked += 1;
        }
    }
    Ok(checked)
}
