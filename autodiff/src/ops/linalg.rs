//! Matrix products and convolutions.

use crate::Var;
use crate::op::Op;
use crate::tape::same_tape;
use gantry_tensor::{Conv2dParams, ConvTranspose2dParams};

impl<'t> Var<'t> {
    /// Matrix product, batched over leading axes (see `Tensor::matmul`).
    /// Backward: `gy · bᵀ` and `aᵀ · gy`.
    ///
    /// # Panics
    /// If the shapes do not multiply or the variables come from different tapes.
    #[track_caller]
    pub fn matmul(self, rhs: Var<'t>) -> Var<'t> {
        self.matmul_t(rhs, false, false)
    }

    /// Matrix product with either operand's last two axes read transposed, without a copy:
    /// `a.matmul_t(b, true, false)` is `aᵀ · b` (see `Tensor::matmul_t`).
    /// Backward: for `C = op(A) op(B)`, `dA = G op(B)ᵀ` and `dB = op(A)ᵀ G`, each transposed
    /// back where its operand was read transposed.
    ///
    /// # Panics
    /// If the shapes do not multiply or the variables come from different tapes.
    #[track_caller]
    pub fn matmul_t(self, rhs: Var<'t>, trans_a: bool, trans_b: bool) -> Var<'t> {
        same_tape("matmul", &[self, rhs]);
        let value = {
            let nodes = self.tape.nodes();
            nodes[self.id]
                .value
                .matmul_t(&nodes[rhs.id].value, trans_a, trans_b)
        };
        let op = Op::Matmul {
            a: self.id,
            b: rhs.id,
            ta: trans_a,
            tb: trans_b,
        };
        self.tape.record(value, op)
    }

    /// A fully connected layer: `self · weightᵀ + bias`, input `[N, in]`, weight `[out, in]`
    /// (read transposed in place, no copy), bias `[out]`.
    /// Backward: `gy · w` for the input, `gyᵀ · x` for the weight, `gy` summed over `N` for the
    /// bias.
    #[track_caller]
    pub fn linear(self, weight: Var<'t>, bias: Option<Var<'t>>) -> Var<'t> {
        same_tape("linear", &[Some(self), Some(weight), bias].concat_some());
        let value = {
            let nodes = self.tape.nodes();
            let b = bias.map(|b| &nodes[b.id].value);
            nodes[self.id].value.linear(&nodes[weight.id].value, b)
        };
        let op = Op::Linear {
            x: self.id,
            w: weight.id,
            b: bias.map(|b| b.id),
        };
        self.tape.record(value, op)
    }

    /// 2-D convolution: input `[N, C, H, W]`, weight `[O, C, kh, kw]`, bias `[O]`.
    /// Backward: the transposed convolution of `gy` for the input, the im2col product for the
    /// weight, `gy` summed over `N, H, W` for the bias.
    #[track_caller]
    pub fn conv2d(self, weight: Var<'t>, bias: Option<Var<'t>>, p: Conv2dParams) -> Var<'t> {
        same_tape("conv2d", &[Some(self), Some(weight), bias].concat_some());
        let value = {
            let nodes = self.tape.nodes();
            let b = bias.map(|b| &nodes[b.id].value);
            nodes[self.id].value.conv2d(&nodes[weight.id].value, b, p)
        };
        let op = Op::Conv2d {
            x: self.id,
            w: weight.id,
            b: bias.map(|b| b.id),
            p,
        };
        self.tape.record(value, op)
    }

    /// 2-D transposed convolution: input `[N, Cin, H, W]`, weight `[Cin, Cout, kh, kw]`,
    /// bias `[Cout]`. Backward: the convolution of `gy` for the input.
    #[track_caller]
    pub fn conv_transpose2d(
        self,
        weight: Var<'t>,
        bias: Option<Var<'t>>,
        p: ConvTranspose2dParams,
    ) -> Var<'t> {
        same_tape(
            "conv_transpose2d",
            &[Some(self), Some(weight), bias].concat_some(),
        );
        let value = {
            let nodes = self.tape.nodes();
            let b = bias.map(|b| &nodes[b.id].value);
            nodes[self.id]
                .value
                .conv_transpose2d(&nodes[weight.id].value, b, p)
        };
        let op = Op::ConvTranspose2d {
            x: self.id,
            w: weight.id,
            b: bias.map(|b| b.id),
            p,
        };
        self.tape.record(value, op)
    }

    /// The input gradient of a convolution as an op of its own: `self` is the output
    /// gradient `[N, O, oh, ow]`, `weight` `[O, C, kh, kw]`, the result `[N, C, h, w]` for an
    /// input of spatial size `input_hw` (see `Tensor::conv2d_grad_input`). It is bilinear, so
    /// its backward is a convolution (for `self`) and a weight gradient (for `weight`): what
    /// makes a convolution's gradient differentiable again.
    ///
    /// # Panics
    /// As `Tensor::conv2d_grad_input`, or if the variables come from different tapes.
    #[track_caller]
    pub fn conv2d_grad_input(
        self,
        weight: Var<'t>,
        input_hw: [usize; 2],
        p: Conv2dParams,
    ) -> Var<'t> {
        same_tape("conv2d_grad_input", &[self, weight]);
        let value = {
            let nodes = self.tape.nodes();
            nodes[self.id]
                .value
                .conv2d_grad_input(&nodes[weight.id].value, input_hw, p)
        };
        let op = Op::Conv2dGradInput {
            gy: self.id,
            w: weight.id,
            p,
        };
        self.tape.record(value, op)
    }

    /// The weight gradient of a convolution as an op of its own: `self` is the input
    /// `[N, C, h, w]`, `grad_out` the output gradient `[N, O, oh, ow]`, the result
    /// `[O, C, kh, kw]` for a `kernel` (see `Tensor::conv2d_grad_weight`). Bilinear: its
    /// backward is an input gradient (for `self`) and a convolution (for `grad_out`).
    ///
    /// # Panics
    /// As `Tensor::conv2d_grad_weight`, or if the variables come from different tapes.
    #[track_caller]
    pub fn conv2d_grad_weight(
        self,
        grad_out: Var<'t>,
        kernel: [usize; 2],
        p: Conv2dParams,
    ) -> Var<'t> {
        same_tape("conv2d_grad_weight", &[self, grad_out]);
        let value = {
            let nodes = self.tape.nodes();
            nodes[self.id]
                .value
                .conv2d_grad_weight(&nodes[grad_out.id].value, kernel, p)
        };
        let op = Op::Conv2dGradWeight {
            x: self.id,
            gy: grad_out.id,
            p,
        };
        self.tape.record(value, op)
    }
}

/// The present variables of an optional list (a layer's optional bias).
trait ConcatSome<'t> {
    fn concat_some(&self) -> Vec<Var<'t>>;
}

impl<'t> ConcatSome<'t> for [Option<Var<'t>>] {
    fn concat_some(&self) -> Vec<Var<'t>> {
        self.iter().flatten().copied().collect()
    }
}
