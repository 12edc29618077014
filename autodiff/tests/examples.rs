//! The crate's examples, run as tests.

#[path = "../examples/custom_op.rs"]
mod custom_op;

#[test]
fn the_custom_op_example_checks_its_derivatives_and_trains_under_a_gradient_penalty() {
    let (first, last) = custom_op::run();
    assert!(
        last < first / 4.0,
        "the loss fell from {first} only to {last}"
    );
}
