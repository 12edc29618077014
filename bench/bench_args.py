"""What the PyTorch sides of gantry's criterion benches share (`layers.py`, `wgan_gp.py`,
`conv.py`, `linear.py`, `mlp_floor.py`): the command line (thread count, iterations, warm-up
and a name filter, checked, with torch's thread count set and a header line printed) and the
timing loop."""

import argparse
import statistics
import time

import torch


def parse(doc, iters, warmup, batch):
    """Parses the arguments of a bench script whose docstring is `doc`, sets torch's threads
    and prints the header; returns the arguments."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    parser.add_argument("--iters", type=int, default=iters, help=f"timed iterations (default {iters})")
    parser.add_argument("--warmup", type=int, default=warmup, help=f"untimed iterations first (default {warmup})")
    parser.add_argument("--filter", default="", help="only benches whose name contains this")
    args = parser.parse_args()
    if args.threads < 1 or args.iters < 1 or args.warmup < 0:
        parser.error("--threads and --iters must be positive, --warmup not negative")
    torch.set_num_threads(args.threads)
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} thread(s), batch {batch}, training mode")
    return args


def timed(f, iters, warmup):
    """Seconds of each of `iters` calls of `f`, after `warmup` untimed ones."""
    times = []
    for i in range(warmup + iters):
        start = time.perf_counter()
        f()
        elapsed = time.perf_counter() - start
        if i >= warmup:
            times.append(elapsed)
    return times


def report(name, times, flops, micro=False):
    """Prints one bench's line: its median, min and max time (in ms, or in us when `micro`) and
    the throughput of `flops` at the median."""
    med = statistics.median(times)
    scale, unit, digits = (1e6, "us", 1) if micro else (1e3, "ms", 3)
    print(
        f"{name:48} median {med * scale:9.{digits}f} {unit}  min {min(times) * scale:9.{digits}f} {unit}  "
        f"max {max(times) * scale:9.{digits}f} {unit}  {flops / med / 1e9:7.1f} GFLOP/s"
    )
