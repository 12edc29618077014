#!/usr/bin/env python3
"""PyTorch's side of gantry's criterion group `wgan_gp_b64` (`gan/benches/wgan_gp.rs`): the
shipped WGAN-GP model (`gan/src/models/wgan_gp.rs`) written out layer for layer, trained with
its recipe (Wasserstein loss, gradient penalty 10 on random interpolates, Adam 1e-4 with
betas (0, 0.9)), batch 64, at the same shapes, under the same bench names and work counts.

    python bench/wgan_gp.py --threads 1                 # every bench
    python bench/wgan_gp.py --threads 2 --filter 64x64

- `critic_step_*`: one critic step as gantry's trainer takes it: fresh noise, a fake batch from
  G (training mode, under no_grad), D on the real and the fake batch, the gradient penalty at
  interpolates with one alpha per sample (`torch.autograd.grad(..., create_graph=True)`),
  `mean D(fake) - mean D(real) + 10 gp`, backward, Adam step.
- `gradient_penalty_*`: the penalty alone: D on fixed interpolates (a leaf), the input
  gradient with a graph, `10 mean (|g| - 1)^2`, backward to D's weights; no update.

At 64x64 RGB and 32x32 with one channel. Real batches and interpolates are uniform in
[-1, 1) and made before timing. Prints the parameter counts of both networks (they must be
gantry's, which the criterion bench prints too) and one line per bench:
`wgan_gp_b64/NAME  median  min  max  throughput`, times per iteration, throughput in
criterion's unit from the same nominal FLOP count as the Rust file (forward FLOPs F_G, F_D of
one sample, 2 x multiply-adds of the convolutions; a critic step F_G + 12 F_D, the penalty
6 F_D, times the batch). No figure is recorded here: run both on an idle machine.
"""

import statistics

import bench_args
import torch
import torch.nn as nn

BATCH = 64
GROUP = "wgan_gp_b64"
NZ, NGF, NDF = 100, 64, 64
GP_WEIGHT = 10.0


def generator(size, nc):
    """pytorch/examples' DCGAN generator, one stride-2 block per doubling beyond 8."""
    blocks = size.bit_length() - 3
    width = NGF << (blocks - 1)
    layers = [nn.ConvTranspose2d(NZ, width, 4, 1, 0, bias=False), nn.BatchNorm2d(width), nn.ReLU(True)]
    for _ in range(1, blocks):
        layers += [
            nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(width // 2),
            nn.ReLU(True),
        ]
        width //= 2
    layers += [nn.ConvTranspose2d(width, nc, 4, 2, 1, bias=False), nn.Tanh()]
    g = nn.Sequential(*layers)
    # DCGAN's initialisation, as gantry's `init::dcgan`.
    for m in g.modules():
        if isinstance(m, nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return g


def critic(size, nc):
    """pytorch/examples' discriminator with biases, no batch norm, a linear score out."""
    layers = [nn.Conv2d(nc, NDF, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    width, side = NDF, size // 2
    while side > 4:
        layers += [nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        width *= 2
        side //= 2
    layers += [nn.Conv2d(width, 1, 4, 1, 0), nn.Flatten()]
    return nn.Sequential(*layers)


def params(m):
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


def forward_flops(m, x):
    """Forward FLOPs of one sample: 2 x multiply-adds of the convolutions (per output pixel)
    and transposed convolutions (per input pixel), counted by hooks on one forward."""
    total = 0

    def hook(mod, inputs, out):
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1]
        if isinstance(mod, nn.ConvTranspose2d):
            total += 2 * inputs[0][0].numel() * mod.out_channels * k
        else:
            total += 2 * out[0].numel() * mod.in_channels * k

    hooks = [c.register_forward_hook(hook) for c in m.modules() if isinstance(c, (nn.Conv2d, nn.ConvTranspose2d))]
    with torch.no_grad():
        m.eval()(x[:1])
    m.train()
    for h in hooks:
        h.remove()
    return total


def gradient_penalty(d, x_hat):
    """WGAN-GP's penalty as gantry's term: mean_n (|dD/dx|_2 - 1)^2 with a small constant
    under the square root; `x_hat` requires grad."""
    out = d(x_hat)
    (g,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    norm = (g.flatten(1).pow(2).sum(1) + 1e-12).sqrt()
    return (norm - 1).pow(2).mean()


def critic_step(g, d, opt_d, real):
    n = real.shape[0]
    z = torch.randn(n, NZ, 1, 1)
    with torch.no_grad():
        fake = g(z)
    opt_d.zero_grad(set_to_none=True)
    d_real = d(real)
    d_fake = d(fake)
    alpha = torch.rand(n, 1, 1, 1)
    x_hat = (real + alpha * (fake - real)).requires_grad_(True)
    loss = d_fake.mean() - d_real.mean() + GP_WEIGHT * gradient_penalty(d, x_hat)
    loss.backward()
    opt_d.step()
    return loss.item()


def penalty_only(d, interpolates):
    x_hat = interpolates.detach().requires_grad_(True)
    d.zero_grad(set_to_none=True)
    (GP_WEIGHT * gradient_penalty(d, x_hat)).backward()


def report(name, t, work):
    med = statistics.median(t)
    print(
        f"{GROUP}/{name:26} median {med * 1e3:9.1f} ms  min {min(t) * 1e3:9.1f} ms  "
        f"max {max(t) * 1e3:9.1f} ms  thrpt {work / med / 1e9:8.3f} G/s",
        flush=True,
    )


def main():
    args = bench_args.parse(__doc__, iters=10, warmup=2, batch=BATCH)
    for size, nc, suffix in [(64, 3, "64x64"), (32, 1, "32x32c1")]:
        names = [f"critic_step_{suffix}", f"gradient_penalty_{suffix}"]
        if not any(args.filter in n for n in names):
            continue
        torch.manual_seed(0)
        g, d = generator(size, nc).train(), critic(size, nc).train()
        opt_d = torch.optim.Adam(d.parameters(), lr=1e-4, betas=(0.0, 0.9))
        real = torch.rand(BATCH, nc, size, size) * 2 - 1
        interpolates = torch.rand(BATCH, nc, size, size) * 2 - 1
        fg = forward_flops(g, torch.randn(1, NZ, 1, 1))
        fd = forward_flops(d, real)
        print(
            f"# wgan_gp {size}x{size}x{nc}: generator {params(g)} parameters, critic {params(d)}; "
            f"forward FLOPs per sample F_G {fg}, F_D {fd}",
            flush=True,
        )
        if args.filter in names[0]:
            t = bench_args.timed(lambda: critic_step(g, d, opt_d, real), args.iters, args.warmup)
            report(names[0], t, BATCH * (fg + 12 * fd))
        if args.filter in names[1]:
            t = bench_args.timed(lambda: penalty_only(d, interpolates), args.iters, args.warmup)
            report(names[1], t, BATCH * 6 * fd)


if __name__ == "__main__":
    main()
