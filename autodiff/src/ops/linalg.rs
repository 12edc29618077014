//! Matrix products and convolutions.

use crate::Var;
use crate::op::Op;
use gantry_tensor::{Conv2dParams, ConvTranspose2dParams};

impl<'t> Var<'t> {
    /// Matrix product, batched over leading axes (see `Tensor::matmul`).
    /// Backward: `gy · bᵀ` and `aᵀ · gy`.
    #[track_caller]
    pub fn matmul(self, rhs: Var<'t>) -> Var<'t> {
        let value = {
            let nodes = self.tape.nodes();
            nodes[self.id].value.matmul(&nodes[rhs.id].value)
        };
        self.tape.record(value, Op::Matmul(self.id, rhs.id))
    }

    /// A fully connected layer: `self · weightᵀ + bias`, input `[N, in]`, weight `[out, in]`
    /// (read transposed in place, no copy), bias `[out]`.
    /// Backward: `gy · w` for the input, `gyᵀ · x` for the weight, `gy` summed over `N` for the
    /// bias.
    #[track_caller]
    pub fn linear(self, weight: Var<'t>, bias: Option<Var<'t>>) -> Var<'t> {
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
}
