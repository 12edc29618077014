//! Where gradients flow and where they stop: detached values and constants get none, a value used
//! more than once gets the sum of its uses, and the stable BCE stays finite at extreme logits.

use gantry_autodiff::tensor::Tensor;
use gantry_autodiff::{Reduction, Tape};

/// Asserts two slices agree to `tol`, element by element.
#[track_caller]
fn assert_all_close(got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol,
            "element {i}: {g} vs {w} ({got:?} vs {want:?})"
        );
    }
}

#[test]
fn bce_with_extreme_logits_is_finite() {
    // A naive ln(sigmoid(x)) overflows or gives -inf here; the stable form does not.
    let logits = vec![80.0, -80.0, 80.0, -80.0, 1e4, -1e4, f32::MAX, -f32::MAX];
    let target = vec![0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0];
    let n = logits.len();
    for reduction in [Reduction::Mean, Reduction::Sum] {
        let tape = Tape::new();
        let x = tape.leaf(Tensor::from_vec(&[n], logits.clone()));
        let loss = x.bce_with_logits(&Tensor::from_vec(&[n], target.clone()), reduction);
        let value = loss.value().item();
        // Wrong by 80, 80 and 1e4 twice; right (with a loss of ~e^-80, i.e. 0) otherwise.
        let total = 80.0 + 80.0 + 1e4 + 1e4;
        let expected = match reduction {
            Reduction::Mean => total / n as f32,
            Reduction::Sum => total,
        };
        assert!(value.is_finite(), "{reduction:?}: loss {value}");
        assert!(
            (value - expected).abs() <= 1e-3 * expected,
            "{value} vs {expected}"
        );

        let g = loss.backward().get(x).expect("logits gradient").to_vec();
        let scale = reduction.scale(n);
        // sigmoid(x) - t: +-1 where wrong, 0 where right.
        let want: Vec<f32> = [1., -1., 0., 0., 1., -1., 0., 0.]
            .iter()
            .map(|v| v * scale)
            .collect();
        assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
        assert_all_close(&g, &want, 1e-7);
    }
}

#[test]
fn detach_stops_gradient_flow() {
    let tape = Tape::new();
    let x = tape.leaf(Tensor::from_vec(&[3], vec![1.0, -2.0, 3.0]));
    let frozen = x.detach();
    assert!(x.needs_grad() && !frozen.needs_grad());
    assert_eq!(frozen.value().to_vec(), x.value().to_vec());

    // Only the live use of x contributes: d/dx (stop(x) * x) = x, not 2x.
    let grads = frozen.mul(x).sum().backward();
    assert_eq!(grads.get(x).unwrap().to_vec(), vec![1.0, -2.0, 3.0]);
    assert!(grads.get(frozen).is_none());

    // A root that depends on x only through a detached copy gives x no gradient at all.
    let grads = frozen.exp().mul_scalar(2.0).sum().backward();
    assert!(grads.get(x).is_none());
    assert_eq!(grads.get_or_zeros(x).to_vec(), vec![0.0; 3]);
}

#[test]
fn constants_get_no_gradient() {
    let tape = Tape::new();
    let c = tape.constant(Tensor::from_vec(&[2], vec![3.0, 4.0]));
    let w = tape.leaf(Tensor::from_vec(&[2], vec![0.5, -1.0]));
    // Ops on constants alone are constants too.
    let c2 = c.mul(c).add_scalar(1.0);
    assert!(!c.needs_grad() && !c2.needs_grad());

    let grads = c2.mul(w).sum().backward();
    assert!(grads.get(c).is_none() && grads.get(c2).is_none());
    assert_eq!(grads.get_or_zeros(c).to_vec(), vec![0.0, 0.0]);
    assert_eq!(grads.get(w).unwrap().to_vec(), vec![10.0, 17.0]);

    // A leaf the root does not depend on gets none either.
    let unused = tape.leaf(Tensor::ones(&[2]));
    let grads = w.sum().backward();
    assert!(grads.get(unused).is_none());
}

#[test]
fn a_value_used_twice_accumulates() {
    let tape = Tape::new();
    let xs = vec![0.5, -1.5, 2.0];
    let x = tape.leaf(Tensor::from_vec(&[3], xs.clone()));

    // x + x and x * x: the two uses of x add up.
    let grads = x.add(x).sum().backward();
    assert_eq!(grads.get(x).unwrap().to_vec(), vec![2.0; 3]);
    let grads = x.mul(x).sum().backward();
    assert_eq!(grads.get(x).unwrap().to_vec(), vec![1.0, -3.0, 4.0]);

    // An intermediate used on two branches: y = a + a², a = e^x, dy/dx = (1 + 2a) a.
    let a = x.exp();
    let grads = a.add(a.mul(a)).sum().backward();
    let want: Vec<f32> = xs
        .iter()
        .map(|&v: &f32| (1.0 + 2.0 * v.exp()) * v.exp())
        .collect();
    assert_all_close(&grads.get(x).unwrap().to_vec(), &want, 1e-4);

    // A parameter lifted twice under one key is one leaf with both uses' gradient.
    let p1 = tape.keyed(7, true, || Tensor::from_vec(&[3], vec![1.0, 2.0, 3.0]));
    let p2 = tape.keyed(7, true, || unreachable!("lifted once"));
    let grads = p1.mul_scalar(2.0).add(p2.mul_scalar(3.0)).sum().backward();
    assert_eq!(grads.get_key(7).unwrap().to_vec(), vec![5.0; 3]);
    assert_eq!(grads.get(p1).unwrap().to_vec(), vec![5.0; 3]);
}

#[test]
#[should_panic(expected = "backward: the root must be a scalar")]
fn backward_needs_a_scalar_root() {
    let tape = Tape::new();
    let x = tape.leaf(Tensor::ones(&[2]));
    let _ = x.exp().backward();
}
