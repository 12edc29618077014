//! Every recorded operation and its backward rule, in one exhaustive `match`: an op added to
//! [`Op`] without its gradient does not compile.
//!
//! Each arm receives the output gradient `gy` (same shape as the output `y`) and returns the
//! gradient of each input that needs one. The forward passes are the `Var` methods in `ops/`.

use crate::tape::Node;
use gantry_tensor::{Conv2dParams, ConvTranspose2dParams, Tensor};

/// How a loss combines its per-element terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Reduction {
    /// The average over all elements (PyTorch's default).
    #[default]
    Mean,
    /// The sum over all elements.
    Sum,
}

impl Reduction {
    /// The factor applied to each element's term: `1/n` for the mean, 1 for the sum.
    pub fn scale(self, n: usize) -> f32 {
        match self {
            Reduction::Mean => 1.0 / n.max(1) as f32,
            Reduction::Sum => 1.0,
        }
    }
}

/// A recorded operation, naming its inputs by node index.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    Leaf,
    Constant,
    Add(usize, usize),
    Sub(usize, usize),
    Mul(usize, usize),
    Div(usize, usize),
    Neg(usize),
    AddScalar(usize),
    MulScalar(usize, f32),
    Exp(usize),
    Ln(usize),
    Sqrt(usize),
    Powf(usize, f32),
    Abs(usize),
    Clamp(usize, f32, f32),
    Relu(usize),
    LeakyRelu(usize, f32),
    Sigmoid(usize),
    Tanh(usize),
    LogSoftmax {
        x: usize,
        axis: usize,
    },
    SumAxes {
        x: usize,
        axes: Vec<usize>,
        keepdim: bool,
    },
    MaxAxes {
        x: usize,
        axes: Vec<usize>,
        keepdim: bool,
    },
    Reshape(usize),
    Permute(usize, Vec<usize>),
    SliceAxis {
        x: usize,
        axis: usize,
        start: usize,
        end: usize,
    },
    Concat {
        parts: Vec<usize>,
        axis: usize,
    },
    Pad {
        x: usize,
        pads: Vec<(usize, usize)>,
    },
    Matmul(usize, usize),
    Linear {
        x: usize,
        w: usize,
        b: Option<usize>,
    },
    Conv2d {
        x: usize,
        w: usize,
        b: Option<usize>,
        p: Conv2dParams,
    },
    ConvTranspose2d {
        x: usize,
        w: usize,
        b: Option<usize>,
        p: ConvTranspose2dParams,
    },
    BatchNorm {
        x: usize,
        gamma: usize,
        beta: usize,
        mean: Tensor,
        var: Tensor,
        eps: f32,
        batch_stats: bool,
    },
    Dropout {
        x: usize,
        mask: Tensor,
    },
    BceWithLogits {
        logits: usize,
        target: Tensor,
        reduction: Reduction,
    },
    Bce {
        probs: usize,
        target: Tensor,
        reduction: Reduction,
    },
    L1 {
        pred: usize,
        target: Tensor,
        reduction: Reduction,
    },
    Mse {
        pred: usize,
        target: Tensor,
        reduction: Reduction,
    },
}

/// The sign of each element, 0 at 0 (PyTorch's convention for `abs` and L1).
fn sign(t: &Tensor) -> Tensor {
    t.map(|v| {
        if v > 0.0 {
            1.0
        } else if v < 0.0 {
            -1.0
        } else {
            0.0
        }
    })
}

/// `gy` of a reduction over `axes`, given back the reduced axes as length-1 axes.
fn unreduce(gy: &Tensor, x_shape: &[usize], axes: &[usize], keepdim: bool) -> Tensor {
    if keepdim {
        return gy.clone();
    }
    let kept: Vec<usize> = (0..x_shape.len())
        .map(|i| if axes.contains(&i) { 1 } else { x_shape[i] })
        .collect();
    gy.reshape(&kept)
}

impl Op {
    /// The node indices this op reads.
    pub fn inputs(&self) -> Vec<usize> {
        use Op::*;
        match self {
            Leaf | Constant => vec![],
            Add(a, b) | Sub(a, b) | Mul(a, b) | Div(a, b) | Matmul(a, b) => vec![*a, *b],
            Neg(x)
            | AddScalar(x)
            | MulScalar(x, _)
            | Exp(x)
            | Ln(x)
            | Sqrt(x)
            | Powf(x, _)
            | Abs(x)
            | Clamp(x, _, _)
            | Relu(x)
            | LeakyRelu(x, _)
            | Sigmoid(x)
            | Tanh(x)
            | Reshape(x)
            | Permute(x, _) => vec![*x],
            SumAxes { x, .. }
            | MaxAxes { x, .. }
            | LogSoftmax { x, .. }
            | SliceAxis { x, .. }
            | Pad { x, .. }
            | Dropout { x, .. } => vec![*x],
            Concat { parts, .. } => parts.clone(),
            Linear { x, w, b } | Conv2d { x, w, b, .. } | ConvTranspose2d { x, w, b, .. } => {
                [Some(*x), Some(*w), *b].into_iter().flatten().collect()
            }
            BatchNorm { x, gamma, beta, .. } => vec![*x, *gamma, *beta],
            BceWithLogits { logits: x, .. }
            | Bce { probs: x, .. }
            | L1 { pred: x, .. }
            | Mse { pred: x, .. } => {
                vec![*x]
            }
        }
    }

    /// The gradients of the inputs that need one, given the output `y` and its gradient `gy`.
    pub fn backward(&self, gy: &Tensor, y: &Tensor, nodes: &[Node]) -> Vec<(usize, Tensor)> {
        use Op::*;
        let val = |i: usize| &nodes[i].value;
        let want = |i: usize| nodes[i].needs_grad;
        let mut out = Vec::with_capacity(3);
        // Computes a gradient only for an input that needs one (a frozen discriminator's
        // weights, the data): the expensive arms are skipped entirely.
        macro_rules! put {
            ($input:expr, $grad:expr) => {
                if want($input) {
                    out.push(($input, $grad));
                }
            };
        }
        match self {
            Leaf | Constant => {}
            Add(a, b) => {
                put!(*a, gy.sum_to(val(*a).shape()));
                put!(*b, gy.sum_to(val(*b).shape()));
            }
            Sub(a, b) => {
                put!(*a, gy.sum_to(val(*a).shape()));
                put!(*b, gy.neg().sum_to(val(*b).shape()));
            }
            Mul(a, b) => {
                put!(*a, gy.mul(val(*b)).sum_to(val(*a).shape()));
                put!(*b, gy.mul(val(*a)).sum_to(val(*b).shape()));
            }
            Div(a, b) => {
                // d(a/b)/da = 1/b, d(a/b)/db = -a/b² = -y/b
                put!(*a, gy.div(val(*b)).sum_to(val(*a).shape()));
                put!(*b, gy.mul(y).div(val(*b)).neg().sum_to(val(*b).shape()));
            }
            Neg(x) => put!(*x, gy.neg()),
            AddScalar(x) => put!(*x, gy.clone()),
            MulScalar(x, c) => put!(*x, gy.mul_scalar(*c)),
            Exp(x) => put!(*x, gy.mul(y)),
            Ln(x) => put!(*x, gy.div(val(*x))),
            Sqrt(x) => put!(*x, gy.zip_map(y, "sqrt_backward", |g, s| 0.5 * g / s)),
            Powf(x, p) => put!(*x, {
                gy.zip_map(val(*x), "powf_backward", |g, v| g * p * v.powf(p - 1.0))
            }),
            Abs(x) => put!(*x, gy.mul(&sign(val(*x)))),
            Clamp(x, lo, hi) => put!(*x, {
                gy.zip_map(val(*x), "clamp_backward", |g, v| {
                    if v >= *lo && v <= *hi { g } else { 0.0 }
                })
            }),
            Relu(x) => put!(
                *x,
                gy.zip_map(val(*x), "relu_backward", |g, v| if v > 0.0 {
                    g
                } else {
                    0.0
                })
            ),
            LeakyRelu(x, s) => put!(*x, {
                gy.zip_map(val(*x), "leaky_relu_backward", |g, v| {
                    if v > 0.0 { g } else { g * s }
                })
            }),
            Sigmoid(x) => put!(
                *x,
                gy.zip_map(y, "sigmoid_backward", |g, s| g * s * (1.0 - s))
            ),
            Tanh(x) => put!(*x, gy.zip_map(y, "tanh_backward", |g, t| g * (1.0 - t * t))),
            LogSoftmax { x, axis } => put!(*x, {
                // y = x - logsumexp(x): dx = gy - softmax(x) * sum(gy), softmax(x) = e^y
                let total = gy.sum_axes(&[*axis], true);
                gy.sub(&y.exp().mul(&total))
            }),
            SumAxes { x, axes, keepdim } => put!(*x, {
                let shape = val(*x).shape();
                unreduce(gy, shape, axes, *keepdim).broadcast_to(shape)
            }),
            MaxAxes { x, axes, keepdim } => put!(*x, {
                // Ties share the gradient equally, as torch.amax.
                let shape = val(*x).shape();
                let y_keep = unreduce(y, shape, axes, *keepdim);
                let mask = val(*x).eq_mask(&y_keep);
                let ties = mask.sum_axes(axes, true);
                mask.mul(&unreduce(gy, shape, axes, *keepdim).div(&ties))
            }),
            Reshape(x) => put!(*x, gy.reshape(val(*x).shape())),
            Permute(x, axes) => put!(*x, {
                let mut inverse = vec![0; axes.len()];
                for (i, &a) in axes.iter().enumerate() {
                    inverse[a] = i;
                }
                gy.permute(&inverse)
            }),
            SliceAxis {
                x,
                axis,
                start,
                end,
            } => put!(*x, {
                let mut pads = vec![(0, 0); gy.ndim()];
                pads[*axis] = (*start, val(*x).shape()[*axis] - end);
                gy.pad(&pads, 0.0)
            }),
            Concat { parts, axis } => {
                let sizes: Vec<usize> = parts.iter().map(|&p| val(p).shape()[*axis]).collect();
                for (&p, g) in parts.iter().zip(gy.split(*axis, &sizes)) {
                    if want(p) {
                        out.push((p, g));
                    }
                }
            }
            Pad { x, pads } => put!(*x, gy.unpad(pads)),
            Matmul(a, b) => {
                put!(
                    *a,
                    gy.matmul_t(val(*b), false, true).sum_to(val(*a).shape())
                );
                put!(
                    *b,
                    val(*a).matmul_t(gy, true, false).sum_to(val(*b).shape())
                );
            }
            Linear { x, w, b } => {
                put!(*x, gy.matmul(val(*w)));
                put!(*w, gy.matmul_t(val(*x), true, false));
                if let Some(b) = b {
                    put!(*b, gy.sum_axes(&[0], false));
                }
            }
            Conv2d { x, w, b, p } => {
                let (xs, ws) = (val(*x).shape(), val(*w).shape());
                put!(*x, gy.conv2d_grad_input(val(*w), [xs[2], xs[3]], *p));
                put!(*w, val(*x).conv2d_grad_weight(gy, [ws[2], ws[3]], *p));
                if let Some(b) = b {
                    put!(*b, gy.sum_axes(&[0, 2, 3], false));
                }
            }
            ConvTranspose2d { x, w, b, p } => {
                let ws = val(*w).shape();
                put!(*x, gy.conv_transpose2d_grad_input(val(*w), *p));
                put!(
                    *w,
                    val(*x).conv_transpose2d_grad_weight(gy, [ws[2], ws[3]], *p)
                );
                if let Some(b) = b {
                    put!(*b, gy.sum_axes(&[0, 2, 3], false));
                }
            }
            BatchNorm {
                x,
                gamma,
                beta,
                mean,
                var,
                eps,
                batch_stats,
            } => {
                let (dx, dgamma, dbeta) =
                    val(*x).batch_norm_backward(gy, val(*gamma), mean, var, *eps, *batch_stats);
                put!(*x, dx);
                put!(*gamma, dgamma);
                put!(*beta, dbeta);
            }
            Dropout { x, mask } => put!(*x, gy.mul(mask)),
            BceWithLogits {
                logits,
                target,
                reduction,
            } => put!(*logits, {
                // d/dx [max(x,0) - x t + ln(1 + e^-|x|)] = sigmoid(x) - t
                let k = gy.item() * reduction.scale(target.len());
                val(*logits).zip_map(target, "bce_with_logits_backward", |x, t| {
                    k * (gantry_tensor::sigmoid(x) - t)
                })
            }),
            Bce {
                probs,
                target,
                reduction,
            } => put!(*probs, {
                // PyTorch's rule: (p - t) / max(p (1 - p), 1e-12), finite at p = 0 and 1.
                let k = gy.item() * reduction.scale(target.len());
                val(*probs).zip_map(target, "bce_backward", |p, t| {
                    k * (p - t) / (p * (1.0 - p)).max(1e-12)
                })
            }),
            L1 {
                pred,
                target,
                reduction,
            } => put!(*pred, {
                let k = gy.item() * reduction.scale(target.len());
                sign(&val(*pred).sub(target)).mul_scalar(k)
            }),
            Mse {
                pred,
                target,
                reduction,
            } => put!(*pred, {
                let k = 2.0 * gy.item() * reduction.scale(target.len());
                val(*pred).sub(target).mul_scalar(k)
            }),
        }
        out
    }
}
