//! The profiler on the optimizers: each step recorded under the optimizer's name and the
//! values it updated, a failed step not at all. One test: the profile is global to the
//! process, and tests in one binary run at once.

use gantry_autodiff::Tape;
use gantry_nn::optim::{AdamConfig, Optimizer, SgdConfig};
use gantry_nn::{LinearConfig, Mode, Module, Sequential, Tanh};
use gantry_tensor::{Tensor, profile};
use rand::SeedableRng;
use rand::rngs::StdRng;

#[test]
fn optimizer_steps_are_recorded_by_name_and_size() {
    let mut r = StdRng::seed_from_u64(1);
    let net = Sequential::new()
        .add(LinearConfig::new(3, 4).build(&mut r).unwrap())
        .add(Tanh)
        .add(LinearConfig::new(4, 2).build(&mut r).unwrap());
    let tape = Tape::new();
    let y = net.forward(tape.constant(Tensor::ones(&[5, 3])), Mode::Train);
    let grads = y.mul(y).sum().backward();
    // Only the first layer takes part: the step fails on the second's missing gradient.
    let first = net.children()[0].forward(tape.constant(Tensor::ones(&[5, 3])), Mode::Train);
    let partial = first.sum().backward();

    let mut adam = AdamConfig::default().build();
    let mut sgd = SgdConfig::new(0.1).momentum(0.9).build();
    profile::set_enabled(true);
    adam.step(&net, &grads).unwrap();
    adam.step(&net, &grads).unwrap();
    sgd.step(&net, &grads).unwrap();
    assert!(adam.step(&net, &partial).is_err());
    profile::set_enabled(false);
    adam.step(&net, &grads).unwrap();

    let mut rows: Vec<_> = profile::take()
        .into_iter()
        .filter(|r| r.section == profile::OPTIMIZER)
        .map(|r| (r.label, r.calls))
        .collect();
    rows.sort();
    // 3 x 4 + 4 + 4 x 2 + 2 values.
    assert_eq!(
        rows,
        [
            ("adam, 26 values in 4 tensors".to_string(), 2),
            ("sgd, 26 values in 4 tensors".to_string(), 1)
        ],
    );
}
