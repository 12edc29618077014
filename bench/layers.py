#!/usr/bin/env python3
"""PyTorch's side of gantry's criterion group `gan_layer_fwd_bwd_b16`
(`nn/benches/benchmarks/gan_layers.rs`): the same layers, shapes, batch (16), mode
(training) and work counts, timed as one forward plus one backward from a seed of ones with
the input as a leaf. Bench names are criterion's, so the two outputs line up.

    python bench/layers.py --threads 1            # every bench
    python bench/layers.py --threads 2 --filter conv_

Prints one line per bench: `gan_layer_fwd_bwd_b16/NAME  median  min  max  throughput`,
times per iteration, throughput in criterion's unit (elements or FLOPs per second, from the
same counts as the Rust file). No figure is recorded here: run both on an idle machine.
"""

import statistics
import time

import bench_args
import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 16
GROUP = "gan_layer_fwd_bwd_b16"


def gemm_flops(m, n, k):
    """Forward 2·M·N·K multiply-adds, times three for the two gradients."""
    return 3 * 2 * m * n * k


class PixelNorm(nn.Module):
    def forward(self, x):
        return x / torch.sqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class MinibatchStdDev(nn.Module):
    """ProGAN's layer as gantry's: sample n in position n mod (N/G) of group n div (N/G)."""

    def __init__(self, group_size):
        super().__init__()
        self.group_size = group_size

    def forward(self, x):
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        y = x.reshape(g, n // g, c, h, w)
        std = (y - y.mean(dim=0, keepdim=True)).pow(2).mean(dim=0).add(1e-8).sqrt()
        s = std.mean(dim=(1, 2, 3)).reshape(1, n // g, 1, 1, 1)
        s = s.expand(g, n // g, 1, h, w).reshape(n, 1, h, w)
        return torch.cat([x, s], dim=1)


class EqualizedConv2d(nn.Module):
    """A convolution whose N(0, 1) weight is scaled by He's constant at every call."""

    def __init__(self, cin, cout, k, padding):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.scale = (2.0 / (cin * k * k)) ** 0.5
        self.padding = padding

    def forward(self, x):
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class SelfAttention(nn.Module):
    """BigGAN-PyTorch's Attention, as gantry's SelfAttention."""

    def __init__(self, c):
        super().__init__()
        self.theta = nn.Conv2d(c, c // 8, 1, bias=False)
        self.phi = nn.Conv2d(c, c // 8, 1, bias=False)
        self.g = nn.Conv2d(c, c // 2, 1, bias=False)
        self.o = nn.Conv2d(c // 2, c, 1, bias=False)
        self.gamma = nn.Parameter(torch.tensor(0.5))

    def forward(self, x):
        n, c, h, w = x.shape
        theta = self.theta(x).view(n, c // 8, h * w)
        phi = F.max_pool2d(self.phi(x), 2).view(n, c // 8, h * w // 4)
        g = F.max_pool2d(self.g(x), 2).view(n, c // 2, h * w // 4)
        beta = F.softmax(torch.bmm(theta.transpose(1, 2), phi), dim=-1)
        o = self.o(torch.bmm(g, beta.transpose(1, 2)).view(n, c // 2, h, w))
        return x + self.gamma * o


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm without its own affine, gain 1 + linear(cond) and bias linear(cond)."""

    def __init__(self, c, d):
        super().__init__()
        self.gain = nn.Linear(d, c)
        self.bias = nn.Linear(d, c)
        self.bn = nn.BatchNorm2d(c, affine=False)

    def forward(self, x, cond):
        gain = (1 + self.gain(cond)).view(x.shape[0], -1, 1, 1)
        return self.bn(x) * gain + self.bias(cond).view(x.shape[0], -1, 1, 1)


class ResBlockUp(nn.Module):
    def __init__(self, cin, cout, d):
        super().__init__()
        self.bn1 = ConditionalBatchNorm2d(cin, d)
        self.bn2 = ConditionalBatchNorm2d(cout, d)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_sc = nn.Conv2d(cin, cout, 1)

    def forward(self, x, cond):
        up = lambda t: F.interpolate(t, scale_factor=2, mode="nearest")  # noqa: E731
        h = self.conv1(up(F.relu(self.bn1(x, cond))))
        h = self.conv2(F.relu(self.bn2(h, cond)))
        return h + self.conv_sc(up(x))


class ResBlockDown(nn.Module):
    """BigGAN's DBlock with pre-activation and 2x2 average pooling, as gantry's."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_sc = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        h = F.avg_pool2d(self.conv2(F.relu(self.conv1(F.relu(x)))), 2)
        return h + F.avg_pool2d(self.conv_sc(x), 2)


def time_fwd_bwd(f, x, iters, warmup):
    """Seconds per forward + backward of f at x (a fresh leaf each time, as a fresh tape)."""
    times = []
    for i in range(warmup + iters):
        start = time.perf_counter()
        v = x.detach().requires_grad_(True)
        y = f(v)
        y.backward(torch.ones_like(y))
        elapsed = time.perf_counter() - start
        if i >= warmup:
            times.append(elapsed)
    return times


def benches():
    """(name, function of the input, input, work) in the Rust file's order."""
    torch.manual_seed(0)
    x64 = torch.randn(BATCH, 64, 32, 32)
    x128 = torch.randn(BATCH, 128, 16, 16)
    cond = torch.randn(BATCH, 148)
    conv_flops = gemm_flops(BATCH * 16 * 16, 128, 128 * 9)
    hw = 16 * 16
    attn_flops = BATCH * (hw * 128 * (16 + 16 + 64) + hw * 64 * 128 + hw * (hw // 4) * (16 + 64))
    sn = nn.utils.spectral_norm(nn.Conv2d(128, 128, 3, padding=1))
    up = ResBlockUp(128, 64, 148)
    cbn = ConditionalBatchNorm2d(128, 148)
    return [
        ("upsample_nearest2_64x32x32", nn.Upsample(scale_factor=2, mode="nearest"), x64, x64.numel()),
        (
            "upsample_bilinear2_64x32x32",
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            x64,
            x64.numel(),
        ),
        (
            "avg_pool_k3s2p1_64x32x32",
            nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
            x64,
            x64.numel(),
        ),
        ("instance_norm_64x32x32", nn.InstanceNorm2d(64, affine=True), x64, x64.numel()),
        ("reflection_pad3_64x32x32", nn.ReflectionPad2d(3), x64, x64.numel()),
        ("pixel_norm_64x32x32", PixelNorm(), x64, x64.numel()),
        ("minibatch_std_g4_128x16x16", MinibatchStdDev(4), x128, x128.numel()),
        ("conv_plain_128_k3_16x16", nn.Conv2d(128, 128, 3, padding=1), x128, conv_flops),
        ("conv_spectral_norm_128_k3_16x16", sn, x128, conv_flops),
        ("conv_equalized_lr_128_k3_16x16", EqualizedConv2d(128, 128, 3, 1), x128, conv_flops),
        ("self_attention_128x16x16", SelfAttention(128), x128, 3 * 2 * attn_flops),
        (
            "res_block_up_128_64_16x16",
            lambda v: up(v, cond),
            x128,
            gemm_flops(BATCH * 32 * 32, 64, 128 * 9 + 64 * 9 + 128),
        ),
        ("conditional_batch_norm_128x16x16", lambda v: cbn(v, cond), x128, x128.numel()),
        (
            "res_block_down_64_128_32x32",
            ResBlockDown(64, 128),
            x64,
            gemm_flops(BATCH * 32 * 32, 128, 64 * 9 + 128 * 9 + 64),
        ),
    ]


def main():
    args = bench_args.parse(__doc__, iters=20, warmup=3, batch=BATCH)
    for name, f, x, work in benches():
        if args.filter not in name:
            continue
        if isinstance(f, nn.Module):
            f.train()
        t = time_fwd_bwd(f, x, args.iters, args.warmup)
        med = statistics.median(t)
        print(
            f"{GROUP}/{name:36} median {med * 1e3:9.3f} ms  min {min(t) * 1e3:9.3f} ms  "
            f"max {max(t) * 1e3:9.3f} ms  thrpt {work / med / 1e9:8.3f} G/s"
        )


if __name__ == "__main__":
    main()
