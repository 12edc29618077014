#!/usr/bin/env python3
"""PyTorch's side of gantry's criterion group `linear` (`tensor/benches/benchmarks/matmul.rs`):
the MLP GAN's fully connected layers at batch 64, each pass timed alone: `forward`
(`F.linear`, the weight read transposed), `input_grad` (`gy @ w`) and `weight_grad`
(`gy.t() @ x`), as autograd computes them. Bench names are criterion's, so the two outputs
line up (`linear/forward/64x784x1024`: batch 64, out 784, in 1024).

    python bench/linear.py --threads 2
    python bench/linear.py --threads 2 --filter input_grad

Prints one line per bench: `GROUP/PASS/LAYER  median  min  max  GFLOP/s`, `2 batch out in`
FLOPs. No figure is recorded here: run both on an idle machine.
"""

import bench_args
import torch
import torch.nn.functional as F

BATCH = 64

# (out, in), as in matmul.rs.
LAYERS = [(784, 1024), (1024, 512), (512, 784)]


def main():
    args = bench_args.parse(__doc__, iters=200, warmup=20, batch=BATCH)
    torch.manual_seed(0)
    with torch.no_grad():
        for out, inp in LAYERS:
            x = torch.randn(BATCH, inp)
            w = torch.randn(out, inp)
            gy = torch.randn(BATCH, out)
            flops = 2 * BATCH * out * inp
            for pass_name, f in [
                ("forward", lambda: F.linear(x, w)),
                ("input_grad", lambda: gy @ w),
                ("weight_grad", lambda: gy.t() @ x),
            ]:
                name = f"linear/{pass_name}/{BATCH}x{out}x{inp}"
                if args.filter not in name:
                    continue
                times = bench_args.timed(f, args.iters, args.warmup)
                bench_args.report(name, times, flops, micro=True)


if __name__ == "__main__":
    main()
