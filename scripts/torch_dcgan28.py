#!/usr/bin/env python3
"""The 28x28 DCGAN in PyTorch, trained on MNIST as `gantry train` trains it, for a side-by-side
comparison scored by the same `gantry eval`.

The networks are those `gan/tests/torch_shipped.rs` checks gantry's against, step for step
(`DCGAN28Gen` and `dcgan28_disc` of fixtures/torch/gen_shipped.py, here at full width with the
tutorial's dropout 0.3), with PyTorch's default initialisation. The iteration is
pytorch/examples': D on a real batch and on `G(z).detach()`, Adam step; D (updated) on the same
fake batch, G's non-saturating loss, Adam step. Batches come from shuffled epochs, the last
partial batch dropped, as gantry draws them (`--sampling epochs`), or each image drawn with
replacement (`--sampling replacement`). Afterwards G draws 10,000 samples in evaluation mode
(running statistics) into an IDX file for `gantry eval --images`:

    .venv/bin/python scripts/torch_dcgan28.py --seed 0 --steps 3000 --out target/torch-s0
    target/release/gantry eval --images target/torch-s0/samples-idx3-ubyte --data mnist
"""

import argparse
import gzip
import pathlib
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures" / "torch"))
from gen_shipped import DCGAN28Gen, dcgan28_disc  # noqa: E402


def read_images(path):
    with gzip.open(path, "rb") as f:
        magic, n, h, w = struct.unpack(">IIII", f.read(16))
        if magic != 2051:
            sys.exit(f"{path}: not an IDX image file (magic {magic})")
        data = np.frombuffer(f.read(n * h * w), dtype=np.uint8)
    # As gantry: (x - 127.5) / 127.5, so 0 is -1 and 255 is 1.
    x = (torch.from_numpy(data.astype(np.float32)) - 127.5) / 127.5
    return x.view(n, 1, h, w)


def batches(n, batch, sampling, gen):
    """Index batches, forever."""
    while True:
        if sampling == "replacement":
            yield torch.randint(0, n, (batch,), generator=gen)
        else:
            order = torch.randperm(n, generator=gen)
            for i in range(0, n - batch + 1, batch):
                yield order[i:i + batch]


def write_idx(path, x):
    u8 = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    n, _, h, w = u8.shape
    with open(path, "wb") as f:
        f.write(struct.pack(">IIII", 2051, n, h, w))
        f.write(u8.tobytes())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--beta1", type=float, default=0.5)
    p.add_argument("--sampling", choices=["epochs", "replacement"], default="epochs")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--samples", type=int, default=10000)
    p.add_argument("--data", default=str(ROOT / "data" / "mnist" / "train-images-idx3-ubyte.gz"))
    p.add_argument("--out", required=True)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    real = read_images(a.data)
    net_g, net_d = DCGAN28Gen(100, 64, 1), dcgan28_disc(1, 64, p=0.3)
    opt_g = torch.optim.Adam(net_g.parameters(), lr=a.lr, betas=(a.beta1, 0.999))
    opt_d = torch.optim.Adam(net_d.parameters(), lr=a.lr, betas=(a.beta1, 0.999))
    bce = nn.BCEWithLogitsLoss()
    draw = batches(len(real), a.batch_size, a.sampling, torch.Generator().manual_seed(a.seed))
    start = time.time()
    with open(out / "metrics.csv", "w") as log:
        log.write("step,loss_d,loss_g\n")
        for step in range(1, a.steps + 1):
            x = real[next(draw)]
            fake = net_g(torch.randn(a.batch_size, 100))
            net_d.zero_grad()
            d_real, d_fake = net_d(x), net_d(fake.detach())
            loss_d = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
            loss_d.backward()
            opt_d.step()
            net_g.zero_grad()
            d_fake_g = net_d(fake)
            loss_g = bce(d_fake_g, torch.ones_like(d_fake_g))
            loss_g.backward()
            opt_g.step()
            if step % 100 == 0 or step == a.steps:
                log.write(f"{step},{loss_d.item():.5f},{loss_g.item():.5f}\n")
    seconds = time.time() - start
    net_g.eval()
    with torch.no_grad():
        z = torch.randn(a.samples, 100, generator=torch.Generator().manual_seed(a.seed + 1))
        x = torch.cat([net_g(c) for c in z.split(500)])
    write_idx(out / "samples-idx3-ubyte", x)
    print(f"{a.steps} steps in {seconds:.0f} s; samples in {out / 'samples-idx3-ubyte'}")


if __name__ == "__main__":
    main()
