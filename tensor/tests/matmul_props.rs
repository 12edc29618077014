//! Property tests of `matmul` / `matmul_t` (plain, transposed and batched, with a shared 2-D
//! operand on either side) against a naive `f64` triple loop.
//!
//! The tolerance is the worst-case rounding bound of an `f32` dot product of length `k`,
//! `gamma(k) * sum |a_ip b_pj|`, so any wrong or missing term fails the test.

use gantry_tensor::Tensor;
mod prop_config;

use prop_config::config;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// `gamma(k) = k u / (1 - k u)`, `u = 2^-24`: the relative error bound of an `f32` dot product.
fn gamma(k: usize) -> f64 {
    let ku = k as f64 * f64::from(f32::EPSILON) / 2.0;
    ku / (1.0 - ku)
}

/// One random product: sizes, batch layout and which operands are stored transposed.
#[derive(Clone, Debug)]
struct MatmulCase {
    m: usize,
    k: usize,
    n: usize,
    /// Leading batch axes of the left operand (empty: a shared 2-D matrix).
    batch_a: Vec<usize>,
    /// Leading batch axes of the right operand.
    batch_b: Vec<usize>,
    trans_a: bool,
    trans_b: bool,
    seed: u64,
}

/// Random batch layouts: none, batched on both sides (1 or 2 axes), or batched on one side only.
fn batch_layout() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    (0usize..5, 1usize..=4, 1usize..=3).prop_map(|(kind, b1, b2)| match kind {
        0 => (vec![], vec![]),
        1 => (vec![b1], vec![b1]),
        2 => (vec![b1, b2], vec![b1, b2]),
        3 => (vec![b1], vec![]),
        _ => (vec![], vec![b1, b2]),
    })
}

fn matmul_case(max: usize) -> impl Strategy<Value = MatmulCase> {
    (
        1..=max,
        1..=max,
        1..=max,
        batch_layout(),
        any::<bool>(),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(m, k, n, (batch_a, batch_b), trans_a, trans_b, seed)| MatmulCase {
                m,
                k,
                n,
                batch_a,
                batch_b,
                trans_a,
                trans_b,
                seed,
            },
        )
}

/// The stored shape of an operand: batch axes, then `[rows, cols]`, swapped when transposed.
fn stored_shape(batch: &[usize], rows: usize, cols: usize, transposed: bool) -> Vec<usize> {
    let mut s = batch.to_vec();
    s.extend(if transposed {
        [cols, rows]
    } else {
        [rows, cols]
    });
    s
}

/// Runs one case: `matmul_t` against the naive triple loop over every batch entry.
fn check_case(c: &MatmulCase) -> Result<(), TestCaseError> {
    let mut rng = ChaCha8Rng::seed_from_u64(c.seed);
    let a = Tensor::rand_uniform(
        &stored_shape(&c.batch_a, c.m, c.k, c.trans_a),
        -1.0,
        1.0,
        &mut rng,
    );
    let b = Tensor::rand_uniform(
        &stored_shape(&c.batch_b, c.k, c.n, c.trans_b),
        -1.0,
        1.0,
        &mut rng,
    );
    // Untransposed cases call `matmul` half the time: it must be `matmul_t(.., false, false)`.
    let got = if !c.trans_a && !c.trans_b && c.seed.is_multiple_of(2) {
        a.matmul(&b)
    } else {
        a.matmul_t(&b, c.trans_a, c.trans_b)
    };
    let batch_shape = if c.batch_a.is_empty() {
        &c.batch_b
    } else {
        &c.batch_a
    };
    let mut want_shape = batch_shape.clone();
    want_shape.extend([c.m, c.n]);
    prop_assert_eq!(got.shape(), &want_shape[..]);

    let (av, bv, gv) = (a.to_vec(), b.to_vec(), got.to_vec());
    let batch: usize = batch_shape.iter().product();
    let a_step = if c.batch_a.is_empty() { 0 } else { c.m * c.k };
    let b_step = if c.batch_b.is_empty() { 0 } else { c.k * c.n };
    // Element (i, p) of the logical left matrix of batch entry `e`, wherever it is stored.
    let a_at = |e: usize, i: usize, p: usize| {
        av[e * a_step + if c.trans_a { p * c.m + i } else { i * c.k + p }]
    };
    let b_at = |e: usize, p: usize, j: usize| {
        bv[e * b_step + if c.trans_b { j * c.k + p } else { p * c.n + j }]
    };
    let tol = 2.0 * gamma(c.k);
    for e in 0..batch {
        for i in 0..c.m {
            for j in 0..c.n {
                let (mut want, mut mag) = (0.0f64, 0.0f64);
                for p in 0..c.k {
                    let t = f64::from(a_at(e, i, p)) * f64::from(b_at(e, p, j));
                    want += t;
                    mag += t.abs();
                }
                let g = f64::from(gv[(e * c.m + i) * c.n + j]);
                prop_assert!(
                    (g - want).abs() <= tol * mag,
                    "{:?}: entry ({}, {}, {}) is {} but the reference gives {}",
                    c,
                    e,
                    i,
                    j,
                    g,
                    want
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(128))]

    /// Small products in every layout: the shape logic, transposes and batch strides.
    #[test]
    fn small_products_match_naive(case in matmul_case(24)) {
        check_case(&case)?;
    }
}

proptest! {
    #![proptest_config(config(16))]

    /// Larger products reach the blocked, packed and multi-threaded GEMM paths.
    #[test]
    fn large_products_match_naive(case in matmul_case(160)) {
        check_case(&case)?;
    }
}

/// A square product big enough that the GEMM runs on several threads, once, deterministically.
#[test]
fn threaded_square_product_matches_naive() {
    check_case(&MatmulCase {
        m: 200,
        k: 300,
        n: 250,
        batch_a: vec![],
        batch_b: vec![],
        trans_a: false,
        trans_b: true,
        seed: 3,
    })
    .unwrap();
}

/// Degenerate sizes (an empty inner or outer dimension) give zeros or an empty result.
#[test]
fn empty_dimensions() {
    let a = Tensor::zeros(&[3, 0]);
    let b = Tensor::zeros(&[0, 2]);
    assert_eq!(a.matmul(&b), Tensor::zeros(&[3, 2]));
    let a = Tensor::zeros(&[4, 0, 5]);
    let b = Tensor::zeros(&[4, 5, 2]);
    assert_eq!(a.matmul(&b).shape(), &[4, 0, 2]);
}
