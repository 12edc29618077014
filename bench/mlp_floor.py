#!/usr/bin/env python3
"""The least time an MLP GAN step can take at PyTorch's own speed for its parts: the matrix
products gantry's step performs and Adam's updates, each timed alone in PyTorch, beside
PyTorch's whole step (the reference's, `../shared/bench/gan_bench.py`, as `compare.sh` runs
it). It tells how far a step can go below PyTorch's without kernels faster than PyTorch's.

    python bench/mlp_floor.py --threads 2

The products are those of one gantry iteration (`gan/src/train.rs`, k = 1, batch 64): the
generator's forward pass once and its backward pass (no input gradient for the noise); the
discriminator's forward pass three times (real, fake, fake again for the generator's step),
its weight gradients twice (the generator's step freezes it) and its input gradients wherever
a gradient flows (not into the data). Only layers of at least 128K weights are counted, where
Python's dispatch is a small part of a product's time: the smaller ones, biases,
activations, the loss and everything else count as free, so the floor is a lower bound.
Adam is PyTorch's fused update (the reference's) of both networks' weights, once each.

Prints each part's median time and count, their sum (the floor), PyTorch's step and the
ratio the floor allows. No figure is recorded here: run it on an idle machine.
"""

import os
import statistics
import sys

import bench_args
import torch
import torch.nn.functional as F

BATCH = 64

# (out, in) of each layer.
GENERATOR = [(256, 100), (512, 256), (1024, 512), (784, 1024)]
DISCRIMINATOR = [(512, 784), (256, 512), (1, 256)]
SMALLEST_COUNTED = 128 * 1024


def products():
    """(out, in, pass, count) of one gantry iteration: the generator's forward and backward
    once (its first layer's input, the noise, takes no gradient); the discriminator's forward
    three times, its weight gradients twice, its input gradients three times but into its
    first layer once (only the generator's step needs the gradient of the fake images)."""
    for layers, forward, weight_grad, first_input_grad, input_grad in [
        (GENERATOR, 1, 1, 0, 1),
        (DISCRIMINATOR, 3, 2, 1, 3),
    ]:
        for i, (out, inp) in enumerate(layers):
            yield out, inp, "forward", forward
            yield out, inp, "weight_grad", weight_grad
            yield out, inp, "input_grad", input_grad if i > 0 else first_input_grad


def shared_bench():
    """The reference benchmark's module, from `GANTRY_SHARED_BENCH` or `../shared/bench`."""
    here = os.path.dirname(os.path.abspath(__file__))
    folder = os.environ.get("GANTRY_SHARED_BENCH", os.path.join(here, "..", "..", "shared", "bench"))
    if not os.path.isfile(os.path.join(folder, "gan_bench.py")):
        sys.exit(f"mlp_floor.py: no gan_bench.py in {folder} (set GANTRY_SHARED_BENCH)")
    sys.path.insert(0, folder)
    import gan_bench

    return gan_bench


def main():
    args = bench_args.parse(__doc__, iters=200, warmup=20, batch=BATCH)
    if args.filter:
        sys.exit("mlp_floor.py: --filter does not apply here: the floor sums every product")
    gan_bench = shared_bench()
    torch.manual_seed(0)

    total = 0.0
    with torch.no_grad():
        for out, inp, pass_name, count in products():
            if count == 0 or out * inp < SMALLEST_COUNTED:
                continue
            x, w, b = torch.randn(BATCH, inp), torch.randn(out, inp), torch.randn(out)
            gy = torch.randn(BATCH, out)
            f = {
                "forward": lambda: F.linear(x, w, b),
                "input_grad": lambda: gy @ w,
                "weight_grad": lambda: gy.t() @ x,
            }[pass_name]
            med = statistics.median(bench_args.timed(f, args.iters, args.warmup))
            total += count * med
            print(f"linear/{pass_name}/{BATCH}x{out}x{inp:<6} x{count}  median {med * 1e6:8.1f} us")

    cfg = gan_bench.build("mlp")
    nets = [cfg["G"], cfg["D"]]
    for net in nets:
        for p in net.parameters():
            p.grad = torch.randn_like(p)
    opts = [torch.optim.Adam(n.parameters(), lr=cfg["lr"], betas=cfg["betas"], fused=True) for n in nets]
    weights = sum(p.numel() for n in nets for p in n.parameters())

    def adam():
        for opt in opts:
            opt.step()

    adam_med = statistics.median(bench_args.timed(adam, args.iters, args.warmup))
    print(f"adam (fused), {weights} weights        median {adam_med * 1e6:8.1f} us")
    floor = total + adam_med

    step = gan_bench.make_step(gan_bench.build("mlp"), BATCH, "seq")
    step_med = statistics.median(bench_args.timed(step, max(args.iters // 4, 10), args.warmup))
    print(f"products {total * 1e3:.3f} ms + adam {adam_med * 1e3:.3f} ms = floor {floor * 1e3:.3f} ms")
    print(f"PyTorch's step {step_med * 1e3:.3f} ms: the floor is {floor / step_med:.2f} of it")


if __name__ == "__main__":
    main()
