//! Every op with more than one input refuses variables of two tapes, naming itself, rather than
//! reading the wrong node of one of them.

use gantry_autodiff::tensor::{Conv2dParams, ConvTranspose2dParams, Tensor};
use gantry_autodiff::{CreateGraph, Tape, Var};

fn p() -> Conv2dParams {
    Conv2dParams {
        stride: [1, 1],
        padding: [0, 0],
        dilation: [1, 1],
    }
}

/// Runs `f` with its first variable on one tape and the rest on another.
fn mixed(f: impl for<'a> Fn(Var<'a>, Var<'a>)) {
    let (one, two) = (Tape::new(), Tape::new());
    // Pad the first tape so that the node indices of the two tapes differ.
    for _ in 0..3 {
        one.constant(Tensor::zeros(&[1]));
    }
    let a = one.leaf(Tensor::ones(&[1, 1, 2, 2]));
    let b = two.leaf(Tensor::ones(&[1, 1, 1, 1]));
    f(a, b);
}

#[test]
#[should_panic(expected = "matmul: variables come from different tapes")]
fn matmul() {
    mixed(|a, b| {
        a.reshape(&[2, 2]).matmul(b.reshape(&[1, 1]));
    });
}

#[test]
#[should_panic(expected = "linear: variables come from different tapes")]
fn linear() {
    mixed(|a, b| {
        a.reshape(&[1, 4]).linear(b.reshape(&[1, 1]), None);
    });
}

#[test]
#[should_panic(expected = "conv2d: variables come from different tapes")]
fn conv2d() {
    mixed(|a, b| {
        a.conv2d(b, None, p());
    });
}

#[test]
#[should_panic(expected = "conv_transpose2d: variables come from different tapes")]
fn conv_transpose2d() {
    mixed(|a, b| {
        let q = ConvTranspose2dParams {
            stride: [1, 1],
            padding: [0, 0],
            output_padding: [0, 0],
            dilation: [1, 1],
        };
        a.conv_transpose2d(b, None, q);
    });
}

#[test]
#[should_panic(expected = "batch_norm: variables come from different tapes")]
fn batch_norm() {
    mixed(|a, b| {
        let g = b.reshape(&[1]);
        a.batch_norm_train(g, g, 1e-5);
    });
}

#[test]
#[should_panic(expected = "conv2d_grad_weight: variables come from different tapes")]
fn conv2d_grad_weight() {
    mixed(|a, b| {
        a.conv2d_grad_weight(b, [1, 1], p());
    });
}

#[test]
#[should_panic(expected = "binary op: variables come from different tapes")]
fn add() {
    mixed(|a, b| {
        a.add(b);
    });
}

#[test]
#[should_panic(expected = "grad: a variable comes from another tape")]
fn grad() {
    mixed(|a, b| {
        let _ = a.tape().grad(&[a.sum()], &[b], CreateGraph::Yes);
    });
}
