#!/usr/bin/env python3
"""Does PyTorch's CPU convolution (oneDNN) compute the taps that fall on zero padding?

Each case is a pair of convolutions with the same weight, batch and output size, so the same
nominal FLOPs (2 x batch x output pixels x Cout x Cin x kh x kw): one padded ("same", as the
GANs use them), one unpadded on an input that much larger ("valid": every tap reads the input).
A product through a column matrix (gantry's) multiplies the padding's zeros and takes about
as long for both; a direct convolution that skips them takes the padded one's share of taps
on its input (`on input`, the fraction `gantry_gan::workloads::Layer::flops_on_input` counts).

    python bench/conv_padding.py --threads 2

Prints, per case and pass (forward, grad_input, grad_weight): the median of both, padded /
valid, and the share of the padded convolution's taps that read its input. No figure is
recorded here: run it on an idle machine.
"""

import statistics

import bench_args
import torch
import torch.nn.functional as F

# (name, batch, in channels, out channels, padded input side, kernel, stride, padding):
# dcgan28's first transposed convolution as the convolution it is the adjoint of, its second
# layer, and the 64x64 DCGAN's fourth.
CASES = [
    ("dcgan28_G1_256to128_k5s1_7to7", 64, 256, 128, 7, 5, 1, 2),
    ("dcgan28_D2_64to128_k5s2_14to7", 64, 64, 128, 14, 5, 2, 2),
    ("dcgan64_D4_256to512_k4s2_8to4", 64, 256, 512, 8, 4, 2, 1),
]


def on_input(out, side, k, s, p):
    """Share of (output pixel, tap) pairs whose input pixel is inside a `side` x `side` input."""
    axis = sum(1 for o in range(out) for t in range(k) if 0 <= o * s + t - p < side)
    return (axis / (out * k)) ** 2


def passes(x, w, s, p):
    y = F.conv2d(x, w, None, s, p)
    gy = torch.randn_like(y)

    def backward(mask):
        return lambda: torch.ops.aten.convolution_backward(
            gy, x, w, None, [s, s], [p, p], [1, 1], False, [0, 0], 1, mask
        )

    return [
        ("forward", lambda: F.conv2d(x, w, None, s, p)),
        ("grad_input", backward([True, False, False])),
        ("grad_weight", backward([False, True, False])),
    ]


def main():
    args = bench_args.parse(__doc__, iters=10, warmup=2, batch="per case")
    torch.manual_seed(0)
    with torch.no_grad():
        for name, batch, cin, cout, padded_side, k, s, p in CASES:
            out = (padded_side + 2 * p - k) // s + 1
            valid_side = (out - 1) * s + k
            w = torch.randn(cout, cin, k, k)
            padded = passes(torch.randn(batch, cin, padded_side, padded_side), w, s, p)
            valid = passes(torch.randn(batch, cin, valid_side, valid_side), w, s, 0)
            share = on_input(out, padded_side, k, s, p)
            for (pass_name, f_pad), (_, f_valid) in zip(padded, valid):
                full = f"{name}/{pass_name}"
                if args.filter not in full:
                    continue
                t_pad = statistics.median(bench_args.timed(f_pad, args.iters, args.warmup))
                t_valid = statistics.median(bench_args.timed(f_valid, args.iters, args.warmup))
                print(
                    f"{full:44} padded {t_pad * 1e3:8.2f} ms  valid {t_valid * 1e3:8.2f} ms  "
                    f"padded / valid {t_pad / t_valid:5.2f}  on input {share:5.3f}"
                )


if __name__ == "__main__":
    main()
