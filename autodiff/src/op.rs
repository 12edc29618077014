//! Every recorded operation and its backward rule, in one exhaustive `match`: an op added to
//! [`Op`] without its gradient does not compile.
//!
//! Each arm receives the output gradient `gy` (same shape as the output `y`) and returns the
//! gradient of each input that needs one. The forward passes are the `Var` methods in `ops/`.
//! Every rule is written once over [`Calc`]: on tensors it is the first-order pass; on `Var`s
//! it records itself, so the gradient it makes can be differentiated again. An op whose rule
//! is not expressible in other ops (a convolution's input and weight gradients) is an op of its
//! own here, with its own rule.

use crate::calc::Calc;
use crate::custom::{self, Recorded};
use crate::error::GradError;
use gantry_tensor::{Conv2dParams, ConvTranspose2dParams, Pads2d, Tensor};

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
    Softplus(usize),
    SumTo(usize),
    BroadcastTo(usize),
    Unpad {
        x: usize,
        pads: Vec<(usize, usize)>,
    },
    /// Nearest-neighbour upsampling of `[N, C, H, W]` by `f`; its adjoint is [`Op::SumPool`].
    UpsampleNearest {
        x: usize,
        f: usize,
    },
    /// Sums over non-overlapping `f x f` blocks; its adjoint is [`Op::UpsampleNearest`].
    SumPool {
        x: usize,
        f: usize,
    },
    /// Reflection padding of `[N, C, H, W]`; its adjoint is [`Op::ReflectionPadFold`].
    ReflectionPad {
        x: usize,
        pads: Pads2d,
    },
    /// A padded gradient folded back onto the plane; its adjoint is [`Op::ReflectionPad`].
    ReflectionPadFold {
        x: usize,
        pads: Pads2d,
    },
    /// `op(a) · op(b)`, `op` transposing the last two axes where the flag is set.
    Matmul {
        a: usize,
        b: usize,
        ta: bool,
        tb: bool,
    },
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
    /// Instance normalisation of each `[H, W]` plane; `rstd` is `1 / sqrt(var + eps)` per
    /// plane, `[N, C]`.
    InstanceNorm {
        x: usize,
        rstd: Tensor,
        eps: f32,
    },
    /// Pixel norm over axis 1; `scale` is `1 / sqrt(mean over C of x² + eps)`, `[N, 1, ...]`.
    PixelNorm {
        x: usize,
        scale: Tensor,
        eps: f32,
    },
    /// The input gradient of a convolution, `conv2d_grad_input(gy, w)`: bilinear, so its own
    /// rule is a convolution and a weight gradient.
    Conv2dGradInput {
        gy: usize,
        w: usize,
        p: Conv2dParams,
    },
    /// The weight gradient of a convolution, `conv2d_grad_weight(x, gy)`.
    Conv2dGradWeight {
        x: usize,
        gy: usize,
        p: Conv2dParams,
    },
    Dropout {
        x: usize,
        mask: Tensor,
    },
    Custom {
        op: Recorded,
        inputs: Vec<usize>,
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
fn sign(v: f32) -> f32 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// The shape a reduction over `axes` leaves when its reduced axes are kept with length 1.
fn kept_shape(x_shape: &[usize], axes: &[usize]) -> Vec<usize> {
    (0..x_shape.len())
        .map(|i| if axes.contains(&i) { 1 } else { x_shape[i] })
        .collect()
}

/// `gy` of a reduction over `axes`, given back the reduced axes as length-1 axes.
fn unreduce<C: Calc>(gy: &C, x_shape: &[usize], axes: &[usize], keepdim: bool) -> C {
    if keepdim {
        gy.clone()
    } else {
        gy.reshape(&kept_shape(x_shape, axes))
    }
}

/// The gradients of `y = conv2d_grad_input(a, w)` (a transposed convolution, or a
/// convolution's input gradient recorded as an op): `conv2d(gy, w)` for `a` and
/// `conv2d_grad_weight(gy, a)` for `w`. Both read the column matrix of `gy`; when both are
/// wanted it is made once.
fn conv_of_gy_and_grad_weight<C: Calc>(
    gy: &C,
    a: usize,
    w: usize,
    p: Conv2dParams,
    val: &dyn Fn(usize) -> C,
    want: &dyn Fn(usize) -> bool,
    out: &mut Vec<(usize, C)>,
) {
    match (want(a), want(w)) {
        (true, true) => {
            let (ga, gw) = gy.conv2d_and_grad_weight(&val(w), &val(a), p);
            out.push((a, ga));
            out.push((w, gw));
        }
        (true, false) => out.push((a, gy.conv2d(&val(w), p))),
        (false, true) => {
            let ws = val(w).shape();
            out.push((w, gy.conv2d_grad_weight(&val(a), [ws[2], ws[3]], p)));
        }
        (false, false) => {}
    }
}

impl Op {
    /// The op's name in a profile: the method that records it, or a custom op's own name.
    pub fn name(&self) -> &str {
        use Op::*;
        match self {
            Leaf => "leaf",
            Constant => "constant",
            Add(..) => "add",
            Sub(..) => "sub",
            Mul(..) => "mul",
            Div(..) => "div",
            Neg(_) => "neg",
            AddScalar(_) => "add_scalar",
            MulScalar(..) => "mul_scalar",
            Exp(_) => "exp",
            Ln(_) => "ln",
            Sqrt(_) => "sqrt",
            Powf(..) => "powf",
            Abs(_) => "abs",
            Clamp(..) => "clamp",
            Relu(_) => "relu",
            LeakyRelu(..) => "leaky_relu",
            Sigmoid(_) => "sigmoid",
            Tanh(_) => "tanh",
            LogSoftmax { .. } => "log_softmax",
            SumAxes { .. } => "sum_axes",
            MaxAxes { .. } => "max_axes",
            Reshape(_) => "reshape",
            Permute(..) => "permute",
            SliceAxis { .. } => "slice_axis",
            Concat { .. } => "concat",
            Pad { .. } => "pad",
            Softplus(_) => "softplus",
            SumTo(_) => "sum_to",
            BroadcastTo(_) => "broadcast_to",
            Unpad { .. } => "unpad",
            UpsampleNearest { .. } => "upsample_nearest",
            SumPool { .. } => "sum_pool",
            ReflectionPad { .. } => "reflection_pad",
            ReflectionPadFold { .. } => "reflection_pad_fold",
            Matmul { .. } => "matmul",
            Linear { .. } => "linear",
            Conv2d { .. } => "conv2d",
            ConvTranspose2d { .. } => "conv_transpose2d",
            BatchNorm { .. } => "batch_norm",
            InstanceNorm { .. } => "instance_norm",
            PixelNorm { .. } => "pixel_norm",
            Conv2dGradInput { .. } => "conv2d_grad_input",
            Conv2dGradWeight { .. } => "conv2d_grad_weight",
            Dropout { .. } => "dropout",
            Custom { op, .. } => op.0.name(),
            BceWithLogits { .. } => "bce_with_logits",
            Bce { .. } => "bce",
            L1 { .. } => "l1",
            Mse { .. } => "mse",
        }
    }

    /// The node indices this op reads.
    pub fn inputs(&self) -> Vec<usize> {
        use Op::*;
        match self {
            Leaf | Constant => vec![],
            Add(a, b) | Sub(a, b) | Mul(a, b) | Div(a, b) | Matmul { a, b, .. } => vec![*a, *b],
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
            | Softplus(x)
            | SumTo(x)
            | BroadcastTo(x)
            | Reshape(x)
            | Permute(x, _) => vec![*x],
            SumAxes { x, .. }
            | MaxAxes { x, .. }
            | LogSoftmax { x, .. }
            | SliceAxis { x, .. }
            | Pad { x, .. }
            | Unpad { x, .. }
            | UpsampleNearest { x, .. }
            | SumPool { x, .. }
            | ReflectionPad { x, .. }
            | ReflectionPadFold { x, .. }
            | InstanceNorm { x, .. }
            | PixelNorm { x, .. }
            | Dropout { x, .. } => vec![*x],
            Concat { parts, .. } => parts.clone(),
            Custom { inputs, .. } => inputs.clone(),
            Linear { x, w, b } | Conv2d { x, w, b, .. } | ConvTranspose2d { x, w, b, .. } => {
                [Some(*x), Some(*w), *b].into_iter().flatten().collect()
            }
            Conv2dGradInput { gy, w, .. } => vec![*gy, *w],
            Conv2dGradWeight { x, gy, .. } => vec![*x, *gy],
            BatchNorm { x, gamma, beta, .. } => vec![*x, *gamma, *beta],
            BceWithLogits { logits: x, .. }
            | Bce { probs: x, .. }
            | L1 { pred: x, .. }
            | Mse { pred: x, .. } => {
                vec![*x]
            }
        }
    }

    /// The gradients of the inputs that need one, given the output `y`, its gradient `gy`,
    /// each input's value (`val`) and whether it wants a gradient (`want`).
    ///
    /// # Errors
    /// On `Var`s, [`GradError::NoSecondDerivative`] for an op whose rule is first-order only.
    pub(crate) fn backward<C: Calc>(
        &self,
        gy: &C,
        y: &C,
        val: &dyn Fn(usize) -> C,
        want: &dyn Fn(usize) -> bool,
    ) -> Result<Vec<(usize, C)>, GradError> {
        use Op::*;
        let shape = |i: usize| val(i).shape();
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
                put!(*a, gy.sum_to(&shape(*a)));
                put!(*b, gy.sum_to(&shape(*b)));
            }
            Sub(a, b) => {
                put!(*a, gy.sum_to(&shape(*a)));
                put!(*b, gy.neg().sum_to(&shape(*b)));
            }
            Mul(a, b) => {
                put!(*a, gy.mul(&val(*b)).sum_to(&shape(*a)));
                put!(*b, gy.mul(&val(*a)).sum_to(&shape(*b)));
            }
            Div(a, b) => {
                // d(a/b)/da = 1/b, d(a/b)/db = -a/b² = -y/b
                put!(*a, gy.div(&val(*b)).sum_to(&shape(*a)));
                put!(*b, gy.mul(y).div(&val(*b)).neg().sum_to(&shape(*b)));
            }
            Neg(x) => put!(*x, gy.neg()),
            AddScalar(x) => put!(*x, gy.clone()),
            MulScalar(x, c) => put!(*x, gy.mul_scalar(*c)),
            Exp(x) => put!(*x, gy.mul(y)),
            Ln(x) => put!(*x, gy.div(&val(*x))),
            // d√x = 1 / (2√x) = 0.5 / y
            Sqrt(x) => put!(*x, gy.div(y).mul_scalar(0.5)),
            Powf(x, p) => put!(*x, gy.mul(&val(*x).powf(p - 1.0)).mul_scalar(*p)),
            Abs(x) => put!(*x, gy.mul_step(&val(*x), "abs_backward", sign)),
            Clamp(x, lo, hi) => put!(*x, {
                let (lo, hi) = (*lo, *hi);
                let inside = move |v: f32| if v >= lo && v <= hi { 1.0 } else { 0.0 };
                gy.mul_step(&val(*x), "clamp_backward", inside)
            }),
            Relu(x) => put!(*x, {
                gy.mul_step(
                    &val(*x),
                    "relu_backward",
                    |v| if v > 0.0 { 1.0 } else { 0.0 },
                )
            }),
            LeakyRelu(x, s) => put!(*x, {
                let s = *s;
                gy.mul_step(&val(*x), "leaky_relu_backward", move |v| {
                    if v > 0.0 { 1.0 } else { s }
                })
            }),
            // σ' = σ (1 - σ)
            Sigmoid(x) => put!(*x, gy.mul(&y.mul(&y.neg().add_scalar(1.0)))),
            // tanh' = 1 - tanh²
            Tanh(x) => put!(*x, C::tanh_backward(gy, y)),
            // softplus' = σ
            Softplus(x) => put!(*x, gy.mul(&val(*x).sigmoid())),
            LogSoftmax { x, axis } => put!(*x, {
                // y = x - logsumexp(x): dx = gy - softmax(x) * sum(gy), softmax(x) = e^y
                let total = gy.sum_axes(&[*axis], true);
                gy.sub(&y.exp().mul(&total))
            }),
            SumAxes { x, axes, keepdim } => put!(*x, {
                let shape = shape(*x);
                unreduce(gy, &shape, axes, *keepdim).broadcast_to(&shape)
            }),
            MaxAxes { x, axes, keepdim } => put!(*x, {
                // Ties share the gradient equally, as torch.amax; which element is the
                // maximum is a constant.
                let xv = val(*x);
                let shape = xv.shape();
                let y_keep = unreduce(&y.value(), &shape, axes, *keepdim);
                let mask = xv.value().eq_mask(&y_keep);
                let share = mask.div(&mask.sum_axes(axes, true));
                unreduce(gy, &shape, axes, *keepdim).mul(&gy.lift(share))
            }),
            SumTo(x) => put!(*x, gy.broadcast_to(&shape(*x))),
            BroadcastTo(x) => put!(*x, gy.sum_to(&shape(*x))),
            Reshape(x) => put!(*x, gy.reshape(&shape(*x))),
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
                let mut pads = vec![(0, 0); gy.shape().len()];
                pads[*axis] = (*start, shape(*x)[*axis] - end);
                gy.pad(&pads)
            }),
            Concat { parts, axis } => {
                let mut start = 0;
                for &p in parts {
                    let len = shape(p)[*axis];
                    put!(p, gy.slice_axis(*axis, start, start + len));
                    start += len;
                }
            }
            Pad { x, pads } => put!(*x, gy.unpad(pads)),
            Unpad { x, pads } => put!(*x, gy.pad(pads)),
            // Each is linear and the other's adjoint.
            UpsampleNearest { x, f } => put!(*x, gy.sum_pool2d(*f)),
            SumPool { x, f } => put!(*x, gy.upsample_nearest2d(*f)),
            ReflectionPad { x, pads } => put!(*x, gy.reflection_pad2d_fold(*pads)),
            ReflectionPadFold { x, pads } => put!(*x, gy.reflection_pad2d(*pads)),
            // dx = rstd (gy - mean(gy) - y mean(gy y)) over each plane.
            InstanceNorm { x, rstd, eps } => {
                put!(*x, C::instance_norm_backward(&val(*x), y, gy, rstd, *eps))
            }
            // dx = r (gy - y mean_C(gy y)) at each position.
            PixelNorm { x, scale, eps } => {
                put!(*x, C::pixel_norm_backward(&val(*x), y, gy, scale, *eps))
            }
            Matmul { a, b, ta, tb } => {
                let (va, vb) = (val(*a), val(*b));
                // C = op(A) op(B): dA = G op(B)ᵀ (transposed back if A was), likewise dB.
                put!(*a, {
                    let g = if *ta {
                        vb.matmul_t(gy, *tb, true)
                    } else {
                        gy.matmul_t(&vb, false, !*tb)
                    };
                    g.sum_to(&va.shape())
                });
                put!(*b, {
                    let g = if *tb {
                        gy.matmul_t(&va, true, *ta)
                    } else {
                        va.matmul_t(gy, !*ta, false)
                    };
                    g.sum_to(&vb.shape())
                });
            }
            Linear { x, w, b } => {
                put!(*x, gy.matmul_t(&val(*w), false, false));
                put!(*w, gy.matmul_t(&val(*x), true, false));
                if let Some(b) = b {
                    put!(*b, gy.sum_axes(&[0], false));
                }
            }
            Conv2d { x, w, b, p } => {
                let (xs, ws) = (shape(*x), shape(*w));
                put!(*x, gy.conv2d_grad_input(&val(*w), [xs[2], xs[3]], *p));
                put!(*w, val(*x).conv2d_grad_weight(gy, [ws[2], ws[3]], *p));
                if let Some(b) = b {
                    put!(*b, gy.sum_axes(&[0, 2, 3], false));
                }
            }
            ConvTranspose2d { x, w, b, p } => {
                // y = conv2d_grad_input(x, w): the adjoint of a convolution.
                conv_of_gy_and_grad_weight(gy, *x, *w, p.as_conv(), val, want, &mut out);
                if let Some(b) = b {
                    put!(*b, gy.sum_axes(&[0, 2, 3], false));
                }
            }
            Conv2dGradInput { gy: a, w, p } => {
                // <G, gi(a, w)> = <conv(G, w), a>: linear in each of a and w.
                conv_of_gy_and_grad_weight(gy, *a, *w, *p, val, want, &mut out);
            }
            Conv2dGradWeight { x, gy: a, p } => {
                // <G, gw(x, a)> = <conv(x, G), a>.
                let xs = shape(*x);
                put!(*x, val(*a).conv2d_grad_input(gy, [xs[2], xs[3]], *p));
                put!(*a, val(*x).conv2d(gy, *p));
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
                let (dx, dgamma, dbeta) = C::batch_norm_backward(
                    &val(*x),
                    gy,
                    &val(*gamma),
                    mean,
                    var,
                    *eps,
                    *batch_stats,
                )?;
                put!(*x, dx);
                put!(*gamma, dgamma);
                put!(*beta, dbeta);
            }
            Dropout { x, mask } => put!(*x, gy.mul(&gy.lift(mask.clone()))),
            Custom { op, inputs } => {
                let values: Vec<C> = inputs.iter().map(|&i| val(i)).collect();
                let shapes: Vec<Vec<usize>> = values.iter().map(Calc::shape).collect();
                let grads = C::custom_backward(op.0.as_ref(), &values, y, gy)?;
                out = custom::collect(op.0.name(), inputs, &shapes, grads, want);
            }
            BceWithLogits {
                logits,
                target,
                reduction,
            } => put!(*logits, {
                // d/dx [max(x,0) - x t + ln(1 + e^-|x|)] = sigmoid(x) - t
                let x = val(*logits);
                let k = reduction.scale(target.len());
                x.sigmoid().sub(&x.lift(target.clone())).scale_by(gy, k)
            }),
            Bce {
                probs,
                target,
                reduction,
            } => put!(*probs, {
                // PyTorch's rule: (p - t) / max(p (1 - p), 1e-12), finite at p = 0 and 1.
                let p = val(*probs);
                let k = reduction.scale(target.len());
                let var = p.mul(&p.neg().add_scalar(1.0)).clamp(1e-12, f32::INFINITY);
                p.sub(&p.lift(target.clone())).div(&var).scale_by(gy, k)
            }),
            L1 {
                pred,
                target,
                reduction,
            } => put!(*pred, {
                let p = val(*pred);
                let k = reduction.scale(target.len());
                p.lift(p.value().sub(target).map(sign)).scale_by(gy, k)
            }),
            Mse {
                pred,
                target,
                reduction,
            } => put!(*pred, {
                let p = val(*pred);
                let k = 2.0 * reduction.scale(target.len());
                p.sub(&p.lift(target.clone())).scale_by(gy, k)
            }),
        }
        Ok(out)
    }
}
