//! The kernels give bit-identical results at any thread count: the seeded workload of
//! `examples/determinism.rs` runs inside rayon pools of 1, 2 and 3 threads (1 takes the serial
//! paths; 2 and 3 split batches and GEMMs differently) and every output must match bit for bit.
//!
//! The comparison with the `parallel` feature off is done by running the example both ways and
//! comparing the printed hashes (see the example's docs).
#![cfg(feature = "parallel")]

#[allow(dead_code)]
#[path = "../examples/determinism.rs"]
mod determinism;

use gantry_tensor::Tensor;

/// Runs the workload on a fresh pool of `threads` threads.
fn run_with_threads(threads: usize) -> Vec<(String, Tensor)> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    pool.install(|| {
        assert_eq!(gantry_tensor::num_threads(), threads);
        determinism::workload()
    })
}

/// The first element at which two tensors differ in bits, if any.
fn first_difference(a: &Tensor, b: &Tensor) -> Option<(usize, f32, f32)> {
    a.to_vec()
        .into_iter()
        .zip(b.to_vec())
        .enumerate()
        .find(|(_, (x, y))| x.to_bits() != y.to_bits())
        .map(|(i, (x, y))| (i, x, y))
}

#[test]
fn outputs_are_bitwise_equal_across_thread_counts() {
    let reference = run_with_threads(1);
    assert!(reference.iter().all(|(_, t)| t.all_finite()));
    for threads in [2, 3] {
        let other = run_with_threads(threads);
        assert_eq!(other.len(), reference.len());
        let mut diverged = Vec::new();
        for ((name, a), (name_b, b)) in reference.iter().zip(&other) {
            assert_eq!(name, name_b);
            assert_eq!(a.shape(), b.shape(), "{name}: shape with {threads} threads");
            if let Some((i, x, y)) = first_difference(a, b) {
                diverged.push(format!(
                    "{name}: element {i} is {x:e} on 1 thread, {y:e} on {threads}"
                ));
            }
        }
        assert!(diverged.is_empty(), "{}", diverged.join("\n"));
        assert_eq!(
            determinism::hash_outputs(&reference),
            determinism::hash_outputs(&other)
        );
    }
}

/// The hash sees every bit: flipping the lowest bit of one element changes it.
#[test]
fn hash_detects_a_one_ulp_change() {
    let t = Tensor::from_vec(&[3], vec![1.0, 2.0, 3.0]);
    let u = Tensor::from_vec(&[3], vec![1.0, f32::from_bits(2.0f32.to_bits() + 1), 3.0]);
    let a = determinism::hash_outputs(&[("t".to_owned(), t.clone())]);
    let b = determinism::hash_outputs(&[("t".to_owned(), u)]);
    let c = determinism::hash_outputs(&[("t".to_owned(), t.reshape(&[1, 3]))]);
    assert_ne!(a, b);
    assert_ne!(a, c, "the shape is part of the hash");
}
