//! Central finite differences against the tape's gradients: one line checks a new op.

use crate::{Tape, Var};
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

/// A coordinate where the tape's gradient and the finite difference disagree.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("gradcheck: input {input} element {index}: analytic {analytic} vs numeric {numeric}")]
pub struct GradcheckError {
    /// Which input.
    pub input: usize,
    /// Which element of it (row-major).
    pub index: usize,
    /// The gradient from the tape.
    pub analytic: f32,
    /// The central finite difference.
    pub numeric: f32,
}

/// Checks the gradients of `f` at `inputs` against central finite differences.
///
/// The scalar differentiated is `Σ f(x) · r` for a fixed random `r`, so every element of the
/// output contributes. Returns the number of coordinates checked.
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
    let y0 = eval(inputs);
    let r = Tensor::rand_uniform(y0.shape(), -1.0, 1.0, &mut rng);
    let project = |y: &Tensor| -> f64 {
        y.to_vec()
            .iter()
            .zip(r.to_vec())
            .map(|(&a, b)| f64::from(a) * f64::from(b))
            .sum()
    };

    let tape = Tape::new();
    let vars: Vec<Var> = inputs.iter().map(|x| tape.leaf(x.clone())).collect();
    let grads = f(&tape, &vars).backward_with(r.clone());

    let mut checked = 0;
    for (i, x) in inputs.iter().enumerate() {
        let analytic = grads.get_or_zeros(vars[i]).to_vec();
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
                (moved, project(&eval(&xs)))
            };
            let (hi, f_hi) = shifted(cfg.eps);
            let (lo, f_lo) = shifted(-cfg.eps);
            let numeric = ((f_hi - f_lo) / f64::from(hi - lo)) as f32;
            let a = analytic[j];
            if (a - numeric).abs() > cfg.atol + cfg.rtol * a.abs().max(numeric.abs()) {
                return Err(GradcheckError {
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
