#!/usr/bin/env python3
"""PyTorch's side of gantry's criterion groups `conv2d` and `conv_transpose2d`
(`tensor/benches/benchmarks/conv.rs`): the layers of the pytorch/examples DCGAN at 64x64
(ngf = ndf = 64) with batch 64, each pass timed alone: `forward`, `grad_input` (the gradient
with respect to the input only) and `grad_weight` (with respect to the weight only), through
`torch.ops.aten.convolution_backward` with one output asked for, as autograd calls it. Bench
names are criterion's, so the two outputs line up.

    python bench/conv.py --threads 2
    python bench/conv.py --threads 2 --filter grad_weight/D1

Prints one line per bench: `GROUP/PASS/LAYER  median  min  max  GFLOP/s`, the FLOPs those of
the convolution (for a transposed convolution, of the convolution it transposes), as the Rust
file counts them. No figure is recorded here: run both on an idle machine.
"""

import bench_args
import torch
import torch.nn.functional as F

BATCH = 64

# (name, in channels, out channels, input side, kernel, stride, padding), as in conv.rs.
GENERATOR = [
    ("G1_ct100to512_1to4", 100, 512, 1, 4, 1, 0),
    ("G2_ct512to256_4to8", 512, 256, 4, 4, 2, 1),
    ("G3_ct256to128_8to16", 256, 128, 8, 4, 2, 1),
    ("G4_ct128to64_16to32", 128, 64, 16, 4, 2, 1),
    ("G5_ct64to3_32to64", 64, 3, 32, 4, 2, 1),
    ("dcgan28_G1_ct256to128_7to7_k5", 256, 128, 7, 5, 1, 2),
]
DISCRIMINATOR = [
    ("D1_conv3to64_64to32", 3, 64, 64, 4, 2, 1),
    ("D2_conv64to128_32to16", 64, 128, 32, 4, 2, 1),
    ("D3_conv128to256_16to8", 128, 256, 16, 4, 2, 1),
    ("D4_conv256to512_8to4", 256, 512, 8, 4, 2, 1),
    ("D5_conv512to1_4to1", 512, 1, 4, 4, 1, 0),
    ("dcgan28_D2_conv64to128_14to7_k5", 64, 128, 14, 5, 2, 2),
]


def passes(transposed, layer):
    """(pass name, function, FLOPs) of one layer."""
    name, cin, cout, side, k, s, p = layer
    x = torch.randn(BATCH, cin, side, side)
    if transposed:
        w = torch.randn(cin, cout, k, k)
        y = F.conv_transpose2d(x, w, None, s, p)
        flops = 2 * BATCH * cin * cout * k * k * side * side
    else:
        w = torch.randn(cout, cin, k, k)
        y = F.conv2d(x, w, None, s, p)
        flops = 2 * BATCH * cin * cout * k * k * y.shape[2] * y.shape[3]
    gy = torch.randn_like(y)

    def backward(mask):
        return lambda: torch.ops.aten.convolution_backward(
            gy, x, w, None, [s, s], [p, p], [1, 1], transposed, [0, 0], 1, mask
        )

    if transposed:
        forward = lambda: F.conv_transpose2d(x, w, None, s, p)  # noqa: E731
    else:
        forward = lambda: F.conv2d(x, w, None, s, p)  # noqa: E731
    return [
        ("forward", forward, flops),
        ("grad_input", backward([True, False, False]), flops),
        ("grad_weight", backward([False, True, False]), flops),
    ]


def main():
    args = bench_args.parse(__doc__, iters=10, warmup=2, batch=BATCH)
    torch.manual_seed(0)
    with torch.no_grad():
        for group, transposed, layers in [
            ("conv_transpose2d", True, GENERATOR),
            ("conv2d", False, DISCRIMINATOR),
        ]:
            for layer in layers:
                for pass_name, f, flops in passes(transposed, layer):
                    name = f"{group}/{pass_name}/{layer[0]}"
                    if args.filter not in name:
                        continue
                    bench_args.report(name, bench_args.timed(f, args.iters, args.warmup), flops)


if __name__ == "__main__":
    main()
