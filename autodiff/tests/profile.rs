//! The profiler on the tape: each op's forward computation and backward rule recorded under
//! its name and shapes, leaves and constants not at all, nothing while profiling is off. One
//! test: the profile is global to the process, and tests in one binary run at once.

use gantry_autodiff::Tape;
use gantry_autodiff::tensor::{Tensor, profile};

fn count(rows: &[profile::Row], section: &str, label: &str) -> u64 {
    rows.iter()
        .filter(|r| r.section == section && r.label == label)
        .map(|r| r.calls)
        .sum()
}

#[test]
fn ops_are_recorded_forward_and_backward_by_name_and_shapes() {
    let step = || {
        let tape = Tape::new();
        let x = tape.leaf(Tensor::ones(&[4, 3]));
        let w = tape.leaf(Tensor::ones(&[2, 3]));
        let y = x.linear(w, None).tanh();
        let loss = y.mul(y).sum();
        let _ = loss.backward();
    };
    step();
    assert!(profile::take().is_empty(), "recorded while off");

    profile::set_enabled(true);
    step();
    step();
    profile::set_enabled(false);
    let rows = profile::take();

    for section in [profile::FORWARD, profile::BACKWARD] {
        assert_eq!(
            count(&rows, section, "linear [4, 3] -> [4, 2]"),
            2,
            "{rows:?}"
        );
        assert_eq!(
            count(&rows, section, "tanh [4, 2] -> [4, 2]"),
            2,
            "{rows:?}"
        );
        assert_eq!(count(&rows, section, "mul [4, 2] -> [4, 2]"), 2, "{rows:?}");
    }
    assert!(
        rows.iter()
            .all(|r| !r.label.starts_with("leaf") && !r.label.starts_with("constant")),
        "{rows:?}"
    );
    let forward_calls: u64 = rows
        .iter()
        .filter(|r| r.section == profile::FORWARD)
        .map(|r| r.calls)
        .sum();
    // linear, tanh, mul and sum, twice.
    assert_eq!(forward_calls, 8, "{rows:?}");
}
