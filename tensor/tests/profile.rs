//! The profiler: products that own the pool are recorded by shape and route with their FLOPs,
//! nothing is recorded while it is off, and products run inside a parallel loop (each on one
//! thread, so their times would add up to more than the wall time) are left to their caller.
//! One test: the profile is global to the process, and tests in one binary run at once.

use gantry_tensor::{Tensor, profile, simd};

#[test]
fn products_are_recorded_by_shape_and_route_only_while_on() {
    let a = Tensor::ones(&[300, 200]);
    let b = Tensor::ones(&[200, 100]);

    // Off: nothing.
    let _ = a.matmul(&b);
    assert!(profile::take().is_empty(), "recorded while off");

    profile::set_enabled(true);
    let _ = a.matmul(&b);
    let _ = a.matmul(&b);
    // A narrow product (a batch of 64 rows against 256 x 512 weights, read transposed).
    let x = Tensor::ones(&[64, 512]);
    let w = Tensor::ones(&[256, 512]);
    let _ = x.matmul_t(&w, false, true);
    // A batch of products as large as the pool runs them one per thread: not recorded.
    let batched = Tensor::ones(&[gantry_tensor::num_threads().max(2), 30, 20]);
    let _ = batched.matmul(&Tensor::ones(&[20, 10]));
    profile::set_enabled(false);
    let _ = a.matmul(&b);

    let rows = profile::take();
    assert!(
        rows.iter().all(|r| r.section == profile::PRODUCTS),
        "{rows:?}"
    );
    let square = rows
        .iter()
        .find(|r| r.label.starts_with("300x100x200 a·b "))
        .unwrap_or_else(|| panic!("no row for the 300 x 100 x 200 product: {rows:?}"));
    assert_eq!(square.calls, 2);
    assert_eq!(square.flops, 2.0 * 2.0 * 300.0 * 100.0 * 200.0);
    assert!(square.time > std::time::Duration::ZERO);

    let narrow = rows
        .iter()
        .find(|r| r.label.starts_with("64x256x512 a·bᵀ "))
        .unwrap_or_else(|| panic!("no row for the narrow product: {rows:?}"));
    assert_eq!(narrow.calls, 1);
    // The narrow products run on AVX2 and AVX-512; elsewhere the crate takes them.
    let vectors = cfg!(target_arch = "x86_64") && simd::active() >= simd::Level::Avx2;
    assert_eq!(
        narrow.label.ends_with("narrow few rows"),
        vectors,
        "{}",
        narrow.label
    );

    assert_eq!(
        rows.len(),
        2,
        "the batched products were recorded: {rows:?}"
    );
    assert!(profile::take().is_empty(), "take starts the totals again");

    let table = profile::table(&rows, 2, std::time::Duration::from_secs(1), 1);
    assert!(table.starts_with("products"), "{table}");
    assert!(
        table.contains("1 more") && table.contains("all products"),
        "{table}"
    );
}
