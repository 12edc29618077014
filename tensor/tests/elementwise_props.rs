//! Property tests of the broadcasting binary operations and the unary maps.
//!
//! The binary operations are compared, bit for bit, with a reference that computes every output
//! element from explicit indices: output index `i` reads operand index `i` aligned at the last
//! axis, with 0 on the operand's length-1 axes. The references do not reuse the kernels' `f32`
//! arithmetic: sums, differences, products and quotients are taken in `f64` and rounded once
//! (exactly the correctly rounded `f32` result, since `f64` carries more than twice `f32`'s
//! precision), comparisons and branches are written out, and the transcendental maps are the
//! `f64` functions, within 2 ulp.

use gantry_tensor::Tensor;
mod prop_config;

use prop_config::config;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A binary operation under test: its name, the tensor method and the scalar definition.
type BinaryOp = (
    &'static str,
    fn(&Tensor, &Tensor) -> Tensor,
    fn(f32, f32) -> f32,
);

/// Every broadcasting binary operation of the crate, with the scalar function it must apply.
fn binary_ops() -> Vec<BinaryOp> {
    fn mask(b: bool) -> f32 {
        if b { 1.0 } else { 0.0 }
    }
    fn wide(f: fn(f64, f64) -> f64, a: f32, b: f32) -> f32 {
        f(f64::from(a), f64::from(b)) as f32
    }
    vec![
        ("add", Tensor::add, |a, b| wide(|a, b| a + b, a, b)),
        ("sub", Tensor::sub, |a, b| wide(|a, b| a - b, a, b)),
        ("mul", Tensor::mul, |a, b| wide(|a, b| a * b, a, b)),
        ("div", Tensor::div, |a, b| wide(|a, b| a / b, a, b)),
        // The operands are never NaN here.
        (
            "maximum",
            Tensor::maximum,
            |a, b| if a >= b { a } else { b },
        ),
        (
            "minimum",
            Tensor::minimum,
            |a, b| if a <= b { a } else { b },
        ),
        ("gt", Tensor::gt, |a, b| mask(a > b)),
        ("ge", Tensor::ge, |a, b| mask(a >= b)),
        ("lt", Tensor::lt, |a, b| mask(a < b)),
        ("le", Tensor::le, |a, b| mask(a <= b)),
        ("eq_mask", Tensor::eq_mask, |a, b| mask(a == b)),
    ]
}

/// Row-major strides of `shape`.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// The flat offset in an operand of `shape` (aligned at the last axis) read by the output
/// multi-index `idx`: length-1 axes always read index 0.
fn source_offset(idx: &[usize], shape: &[usize]) -> usize {
    let lead = idx.len() - shape.len();
    let st = strides(shape);
    shape
        .iter()
        .enumerate()
        .map(|(i, &d)| if d == 1 { 0 } else { idx[lead + i] * st[i] })
        .sum()
}

/// The multi-index of flat offset `flat` in a row-major `shape`.
fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for i in (0..shape.len()).rev() {
        idx[i] = flat % shape[i];
        flat /= shape[i];
    }
    idx
}

/// Whether two results are the same value: equal bits, or both NaN.
fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// The shape two broadcasting operands produce.
fn joint_shape(sa: &[usize], sb: &[usize]) -> Vec<usize> {
    let rank = sa.len().max(sb.len());
    let dim = |s: &[usize], i: usize| {
        if i + s.len() >= rank {
            s[i + s.len() - rank]
        } else {
            1
        }
    };
    (0..rank).map(|i| dim(sa, i).max(dim(sb, i))).collect()
}

/// Checks every binary operation on `a` and `b` against the explicit-index reference.
fn check_all_ops(a: &Tensor, b: &Tensor) -> Result<(), TestCaseError> {
    let (sa, sb) = (a.shape(), b.shape());
    let out_shape = joint_shape(sa, sb);
    let (av, bv) = (a.to_vec(), b.to_vec());
    for (name, op, f) in binary_ops() {
        let got = op(a, b);
        prop_assert_eq!(
            got.shape(),
            &out_shape[..],
            "{}: shape of {:?} with {:?}",
            name,
            sa,
            sb
        );
        for (flat, &g) in got.to_vec().iter().enumerate() {
            let idx = unravel(flat, &out_shape);
            let (x, y) = (av[source_offset(&idx, sa)], bv[source_offset(&idx, sb)]);
            let want = f(x, y);
            prop_assert!(
                same(g, want),
                "{}({:?}, {:?}) at {:?}: got {} for ({}, {}), expected {}",
                name,
                sa,
                sb,
                idx,
                g,
                x,
                y,
                want
            );
        }
    }
    Ok(())
}

/// Random values on a coarse grid (multiples of 0.5 in [-2, 2]) so that ties and equalities
/// happen and `eq_mask`, `maximum` and the comparisons meet them; `div` meets zeros too.
fn grid_tensor(shape: &[usize], rng: &mut ChaCha8Rng) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(
        shape,
        (0..n)
            .map(|_| rng.random_range(-4i32..=4) as f32 * 0.5)
            .collect(),
    )
}

/// Two shapes that broadcast: each is the output shape with some leading axes dropped and some
/// axes set to 1, independently, so either side (or both) may stretch.
fn broadcast_pair() -> impl Strategy<Value = (Vec<usize>, Vec<usize>, u64)> {
    (
        prop::collection::vec(1usize..=4, 0..=4),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(|(out, mask_bits, seed)| {
            let mut rng = ChaCha8Rng::seed_from_u64(mask_bits);
            let mut operand = || {
                let keep = rng.random_range(0..=out.len());
                out[out.len() - keep..]
                    .iter()
                    .map(|&d| if rng.random_bool(0.3) { 1 } else { d })
                    .collect::<Vec<_>>()
            };
            let a = operand();
            let b = operand();
            (a, b, seed)
        })
}

proptest! {
    #![proptest_config(config(128))]

    /// Every broadcasting binary operation equals its explicit-index definition bit for bit.
    #[test]
    fn binary_ops_match_explicit_indexing((sa, sb, seed) in broadcast_pair()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let a = grid_tensor(&sa, &mut rng);
        let b = grid_tensor(&sb, &mut rng);
        check_all_ops(&a, &b)?;
    }
}

/// `broadcast_to` reads output index `i` from the source as the binary operations do.
fn check_broadcast_to(x: &Tensor, shape: &[usize]) -> Result<(), TestCaseError> {
    let got = x.broadcast_to(shape);
    prop_assert_eq!(got.shape(), shape);
    let xv = x.to_vec();
    for (flat, &g) in got.to_vec().iter().enumerate() {
        let idx = unravel(flat, shape);
        let want = xv[source_offset(&idx, x.shape())];
        prop_assert!(
            same(g, want),
            "broadcast_to {:?} -> {:?} at {:?}: got {}, expected {}",
            x.shape(),
            shape,
            idx,
            g,
            want
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(128))]

    /// `broadcast_to` copies the element each output index reads, for every pattern of
    /// repeated, kept and new leading axes.
    #[test]
    fn broadcast_to_matches_explicit_indexing((sa, sb, seed) in broadcast_pair()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let out = joint_shape(&sa, &sb);
        check_broadcast_to(&grid_tensor(&sa, &mut rng), &out)?;
        check_broadcast_to(&grid_tensor(&sb, &mut rng), &out)?;
    }
}

/// A shape of rank 1-4 (lengths 0-4, so empty tensors come up), an axis of it and a seed.
fn shape_and_axis() -> impl Strategy<Value = (Vec<usize>, usize, u64)> {
    prop::collection::vec(0usize..=4, 1..=4)
        .prop_flat_map(|shape| (Just(shape.clone()), 0..shape.len(), any::<u64>()))
}

proptest! {
    #![proptest_config(config(128))]

    /// `slice_axis` keeps index `i` of the result at index `i + start` of the source along
    /// the axis, and `concat` of the pieces `split` makes is the source again.
    #[test]
    fn slice_concat_and_split_match_explicit_indexing((shape, axis, seed) in shape_and_axis()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let x = grid_tensor(&shape, &mut rng);
        let len = shape[axis];
        let start = rng.random_range(0..=len);
        let end = rng.random_range(start..=len);
        let got = x.slice_axis(axis, start, end);
        let mut want_shape = shape.clone();
        want_shape[axis] = end - start;
        prop_assert_eq!(got.shape(), &want_shape[..]);
        let xv = x.to_vec();
        let st = strides(&shape);
        for (flat, &g) in got.to_vec().iter().enumerate() {
            let mut idx = unravel(flat, &want_shape);
            idx[axis] += start;
            let want = xv[idx.iter().zip(&st).map(|(i, s)| i * s).sum::<usize>()];
            prop_assert!(same(g, want), "slice_axis {:?} axis {} {}..{} at {:?}", shape, axis, start, end, idx);
        }
        let sizes = [start, end - start, len - end];
        let pieces = x.split(axis, &sizes);
        let refs: Vec<&Tensor> = pieces.iter().collect();
        prop_assert_eq!(Tensor::concat(axis, &refs), x);
    }
}

/// Shapes that do not broadcast are refused, naming both.
#[test]
#[should_panic(expected = "broadcast_to: [2, 3] does not broadcast to [3, 3]")]
fn broadcast_to_a_mismatched_axis_panics() {
    Tensor::zeros(&[2, 3]).broadcast_to(&[3, 3]);
}

/// Large operands take the parallel paths (equal shapes in chunks, per-channel and per-row
/// broadcasts whose runs straddle the chunk boundaries, a general parallel zip); the values
/// must not change.
#[test]
fn large_broadcasts_match_explicit_indexing() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let cases: [(&[usize], &[usize]); 8] = [
        (&[8, 32, 16, 16], &[8, 32, 16, 16]),
        // A 2x2 window's axes (a max pool through reshape and max_axes), and a new leading axis.
        (&[16, 64, 8, 2, 8, 2], &[16, 64, 8, 1, 8, 1]),
        (&[3, 1, 64, 1, 16], &[5, 1, 1, 64, 7, 1]),
        (&[8, 32, 16, 16], &[32, 1, 1]),
        (&[3, 7, 50, 50], &[1, 7, 1, 1]),
        (&[37, 1000], &[1000]),
        (&[8, 1, 16, 16], &[1, 32, 16, 1]),
        (&[40_000], &[1]),
    ];
    for (sa, sb) in cases {
        let a = Tensor::rand_uniform(sa, -2.0, 2.0, &mut rng);
        let b = Tensor::rand_uniform(sb, -2.0, 2.0, &mut rng);
        check_all_ops(&a, &b).unwrap();
        check_all_ops(&b, &a).unwrap();
        let out = joint_shape(sa, sb);
        check_broadcast_to(&a, &out).unwrap();
        check_broadcast_to(&b, &out).unwrap();
    }
}

/// A unary operation under test: its name, the tensor method, an independent reference for one
/// element and the tolerance in units of `f32::EPSILON` relative to the value (0: bit for bit).
type UnaryOp = (&'static str, fn(&Tensor) -> Tensor, fn(f32) -> f32, f32);

/// `f` evaluated in `f64` and rounded once.
fn wide(f: fn(f64) -> f64, x: f32) -> f32 {
    f(f64::from(x)) as f32
}

/// The unary maps agree with references written out independently of the kernels (sign bits,
/// branches, `f64` arithmetic and functions), NaN, infinities and signed zeros included, on
/// both sides of the parallel threshold.
#[test]
fn unary_maps_match_independent_references() {
    const SIGN: u32 = 0x8000_0000;
    let ops: Vec<UnaryOp> = vec![
        (
            "neg",
            Tensor::neg,
            |x| f32::from_bits(x.to_bits() ^ SIGN),
            0.0,
        ),
        ("exp", Tensor::exp, |x| wide(f64::exp, x), 2.0),
        ("ln", Tensor::ln, |x| wide(f64::ln, x), 2.0),
        ("sqrt", Tensor::sqrt, |x| wide(f64::sqrt, x), 0.0),
        (
            "abs",
            Tensor::abs,
            |x| f32::from_bits(x.to_bits() & !SIGN),
            0.0,
        ),
        // As PyTorch: negatives become 0, NaN stays NaN.
        ("relu", Tensor::relu, |x| if x < 0.0 { 0.0 } else { x }, 0.0),
        (
            "leaky_relu",
            |t| t.leaky_relu(0.2),
            |x| if x > 0.0 { x } else { wide(|x| x * 0.2, x) },
            // 0.2 is not exact in f32: the kernel multiplies by the rounded 0.2f32.
            1.0,
        ),
        ("tanh", Tensor::tanh, |x| wide(f64::tanh, x), 2.0),
        (
            "clamp",
            |t| t.clamp(-0.5, 0.25),
            // Written out on purpose: the reference must not be the kernel's `f32::clamp`.
            #[allow(clippy::manual_clamp)]
            |x| {
                if x < -0.5 {
                    -0.5
                } else if x > 0.25 {
                    0.25
                } else {
                    x
                }
            },
            0.0,
        ),
        (
            "powf",
            |t| t.abs().powf(1.5),
            |x| wide(|x| x.abs() * x.abs().sqrt(), x),
            2.0,
        ),
        (
            "add_scalar",
            |t| t.add_scalar(0.75),
            |x| wide(|x| x + 0.75, x),
            0.0,
        ),
        (
            "mul_scalar",
            |t| t.mul_scalar(-3.0),
            |x| wide(|x| x * -3.0, x),
            0.0,
        ),
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for n in [7, 70_001] {
        // Random values, then the special ones every map must carry through its definition.
        let mut v = Tensor::rand_uniform(&[n], -3.0, 3.0, &mut rng).to_vec();
        v.extend([f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0]);
        let x = Tensor::from_vec(&[v.len()], v);
        for (name, op, reference, ulps) in &ops {
            let y = op(&x);
            assert_eq!(y.shape(), x.shape(), "{name}");
            for (i, (&g, &v)) in y.to_vec().iter().zip(x.to_vec().iter()).enumerate() {
                let want = reference(v);
                let close = (g - want).abs() <= ulps * f32::EPSILON * want.abs();
                assert!(
                    same(g, want) || close,
                    "{name}({v}) at {i}: got {g}, expected {want}"
                );
            }
        }
    }
}

/// The sigmoid is accurate against the `f64` logistic function over the whole range (relative
/// to the value, down to the subnormals, where only absolute accuracy is possible) and never
/// overflows.
#[test]
fn sigmoid_is_accurate_and_stable() {
    let xs: Vec<f32> = (-2000..=2000)
        .map(|i| i as f32 * 0.05)
        .chain([-1e30, 1e30])
        .collect();
    let y = Tensor::from_vec(&[xs.len()], xs.clone()).sigmoid();
    for (&x, &s) in xs.iter().zip(y.to_vec().iter()) {
        let want = 1.0 / (1.0 + (-f64::from(x)).exp());
        assert!(
            s.is_finite() && (0.0..=1.0).contains(&s),
            "sigmoid({x}) = {s}"
        );
        let tol = 4.0 * f64::from(f32::EPSILON) * want + f64::from(f32::MIN_POSITIVE);
        assert!(
            (f64::from(s) - want).abs() <= tol,
            "sigmoid({x}) = {s}, want {want}"
        );
    }
}
