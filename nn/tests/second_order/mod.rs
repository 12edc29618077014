//! A second-order check whose inputs include a module's own parameters.
//!
//! [`gradgradcheck`](gantry_autodiff::gradgradcheck) differentiates with respect to the leaves it
//! creates itself, but a layer reads its parameters through [`Param::var`], a leaf keyed by the
//! parameter's id that no public call can bind to another variable. So this check runs the
//! same algorithm as `gradgradcheck` (same projections `r₁`, `r₂`, same two comparisons, same
//! tolerances), with the parameters lifted the way the layer lifts them and perturbed with
//! [`Param::set`]: the layer's own code path, reparameterisation included, is what is checked.

use gantry_autodiff::{CreateGraph, GradcheckConfig, Tape, Var};
use gantry_nn::{Module, Param, ParamKind, named_params};
use gantry_tensor::Tensor;
use proptest::test_runner::TestCaseError;
use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;

/// The trainable parameters of `module`, in visiting order (a reparameterisation's buffers,
/// such as spectral norm's `u` and `v`, are left out: they are constants of the forward pass).
pub fn trainable(module: &dyn Module) -> Vec<&Param> {
    named_params(module)
        .into_iter()
        .filter(|(_, p)| p.kind() == ParamKind::Trainable)
        .map(|(_, p)| p)
        .collect()
}

/// Gives a closure the higher-ranked signature the check takes (a closure's lifetimes are
/// otherwise inferred as one particular lifetime).
pub fn on_any_tape<F: for<'t> Fn(Var<'t>) -> Var<'t>>(f: F) -> F {
    f
}

/// `Σ a·b` in f64.
fn dot(a: &Tensor, b: &Tensor) -> f64 {
    a.as_slice()
        .iter()
        .zip(b.as_slice().iter())
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum()
}

/// What the gradient pass returns: the second derivatives (recorded pass only) and the
/// gradients' values.
struct Pass {
    second: Vec<Tensor>,
    first: Vec<Tensor>,
}

/// Checks the second derivatives of `f` (a layer applied to its input, possibly composed with
/// more operations) with respect to its input `x` and to `params`, as `gradgradcheck` does with
/// respect to its inputs. Returns the number of coordinates checked.
///
/// Unlike `gradgradcheck`, a coordinate whose central difference straddles a kink (the
/// first-order gradient jumps there, so the difference changes when the step is halved) is
/// skipped rather than compared, so that layers with
/// (leaky) ReLUs can be checked in a whole critic; more than a quarter of the coordinates
/// skipped is an error. The parameters' values are restored before returning.
///
/// # Errors
/// A message naming `name`, the input (0 is `x`, `1 + i` is `params[i]`), the element, and the
/// two values that disagree; or the [`GradError`](gantry_autodiff::GradError) of the recorded pass.
pub fn gradgradcheck_with_params(
    name: &str,
    f: &dyn for<'t> Fn(Var<'t>) -> Var<'t>,
    x: &Tensor,
    params: &[&Param],
    cfg: &GradcheckConfig,
) -> Result<usize, TestCaseError> {
    let base: Vec<Tensor> = std::iter::once(x.clone())
        .chain(params.iter().map(|p| p.value()))
        .collect();
    let result = check(name, f, &base, params, cfg);
    for (p, v) in params.iter().zip(&base[1..]) {
        p.set(v.clone());
    }
    result
}

fn check(
    name: &str,
    f: &dyn for<'t> Fn(Var<'t>) -> Var<'t>,
    base: &[Tensor],
    params: &[&Param],
    cfg: &GradcheckConfig,
) -> Result<usize, TestCaseError> {
    for (i, p) in params.iter().enumerate() {
        if !p.is_trained() {
            return Err(TestCaseError::fail(format!(
                "{name}: parameter {i} is frozen or a buffer, so it has no gradient to check"
            )));
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let y_shape = f(Tape::new().constant(base[0].clone())).shape();
    let r1 = Tensor::rand_uniform(&y_shape, -1.0, 1.0, &mut rng);
    let r2: Vec<Tensor> = base
        .iter()
        .map(|t| Tensor::rand_uniform(t.shape(), -1.0, 1.0, &mut rng))
        .collect();

    // The gradient of Σ f(x) · r₁ with respect to x and every parameter at `values`, and, if
    // recorded, the gradient of Σᵢ gᵢ · r₂ᵢ with respect to the same.
    let pass = |values: &[Tensor], create: CreateGraph| -> Result<Pass, TestCaseError> {
        for (p, v) in params.iter().zip(&values[1..]) {
            p.set(v.clone());
        }
        let tape = Tape::new();
        let mut vars = vec![tape.leaf(values[0].clone())];
        // The same keyed leaves the layer's forward pass reads.
        vars.extend(params.iter().map(|p| p.var(&tape)));
        let s = f(vars[0]).mul(tape.constant(r1.clone())).sum();
        let grads = tape
            .grad(&[s], &vars, create)
            .map_err(|e| TestCaseError::fail(format!("{name}: {e}")))?;
        let first: Vec<Tensor> = grads.iter().map(|g| g.value()).collect();
        if create == CreateGraph::No {
            return Ok(Pass {
                second: Vec::new(),
                first,
            });
        }
        let h = grads
            .iter()
            .zip(&r2)
            .map(|(g, r)| g.mul(tape.constant(r.clone())).sum())
            .reduce(|a, b| a.add(b))
            .expect("the input is always there");
        let second = h.backward();
        Ok(Pass {
            second: vars.iter().map(|&v| second.get_or_zeros(v)).collect(),
            first,
        })
    };
    let close = |a: f32, b: f32| {
        (a - b).abs() <= cfg.atol + cfg.rtol * a.abs().max(b.abs()) && a.is_nan() == b.is_nan()
    };

    let recorded = pass(base, CreateGraph::Yes)?;
    let first_order = pass(base, CreateGraph::No)?;
    for (i, (a, b)) in recorded.first.iter().zip(&first_order.first).enumerate() {
        for (j, (&a, &b)) in a.as_slice().iter().zip(b.as_slice().iter()).enumerate() {
            if !close(a, b) {
                return Err(TestCaseError::fail(format!(
                    "{name}: recorded gradient vs first-order gradient: input {i} element {j}: \
                     {a} vs {b}"
                )));
            }
        }
    }

    let projected = |values: &[Tensor]| -> Result<f64, TestCaseError> {
        let g = pass(values, CreateGraph::No)?.first;
        Ok(g.iter().zip(&r2).map(|(g, r)| dot(g, r)).sum())
    };
    let (mut checked, mut kinks) = (0, 0);
    for (i, t) in base.iter().enumerate() {
        let n = t.len();
        let picks: Vec<usize> = if n <= cfg.max_checks_per_input {
            (0..n).collect()
        } else {
            sample(&mut rng, n, cfg.max_checks_per_input).into_vec()
        };
        for j in picks {
            let at = |delta: f32| -> Vec<Tensor> {
                let mut values = base.to_vec();
                let mut data = values[i].to_vec();
                data[j] += delta;
                values[i] = Tensor::from_vec(t.shape(), data);
                values
            };
            let central = |eps: f32| -> Result<f32, TestCaseError> {
                let (plus, minus) = (projected(&at(eps))?, projected(&at(-eps))?);
                Ok(((plus - minus) / (2.0 * f64::from(eps))) as f32)
            };
            let mut numeric = central(cfg.eps)?;
            let analytic = recorded.second[i].as_slice()[j];
            if !close(analytic, numeric) {
                // Across a kink the first-order gradient jumps, and halving the step changes
                // the difference by as much as its error; a smooth function's barely moves.
                let half = central(cfg.eps / 2.0)?;
                if !close(numeric, half) {
                    kinks += 1;
                    continue;
                }
                numeric = half;
            }
            if !close(analytic, numeric) {
                return Err(TestCaseError::fail(format!(
                    "{name}: second derivative: input {i} element {j}: analytic {analytic} vs \
                     numeric {numeric}"
                )));
            }
            checked += 1;
        }
    }
    if kinks * 4 > checked + kinks {
        return Err(TestCaseError::fail(format!(
            "{name}: {kinks} of {} coordinates straddle a kink: draw the inputs away from them \
             or use a smaller step",
            checked + kinks
        )));
    }
    Ok(checked)
}
