#!/usr/bin/env python3
"""Plots FD against wall time for `scripts/fd_curve.sh` runs, as one SVG (no dependencies).

    scripts/plot_fd.py OUT.svg LABEL=CSV[=SECONDS_PER_STEP] [...] [--target FD] [--budget SECONDS]

Each series is a CSV written by `scripts/fd_curve.sh` (columns step, seconds, fd, ...). Its wall
time is the CSV's own seconds column, right when the curve was taken on an idle machine; or,
with SECONDS_PER_STEP, step x SECONDS_PER_STEP, the time of one training step on an idle
machine as `gantry bench` measures it, for a curve whose scores were taken on a loaded one.
--target draws a horizontal line (an FD to reach), --budget a vertical one (a time limit).
"""

import csv
import sys

W, H, LEFT, RIGHT, TOP, BOTTOM = 640, 400, 70, 20, 20, 55
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]


def read(path, per_step):
    """(seconds, fd, step) per row; seconds from the CSV when per_step is None."""
    with open(path) as f:
        rows = [r for r in csv.DictReader(f) if r.get("fd")]
    return [(int(r["step"]) * per_step if per_step is not None else float(r["seconds"]),
             float(r["fd"]), int(r["step"])) for r in rows]


def nice_step(raw):
    """The smallest of 1, 2, 5 times a power of ten that is at least `raw`."""
    power = 10 ** len(str(int(max(raw, 1)))) / 10
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def main(argv):
    out, args = argv[0], argv[1:]
    target = budget = None
    series = []
    i = 0
    while i < len(args):
        if args[i] == "--target":
            target, i = float(args[i + 1]), i + 2
        elif args[i] == "--budget":
            budget, i = float(args[i + 1]), i + 2
        else:
            label, path, *per_step = args[i].split("=")
            series.append((label, read(path, float(per_step[0]) if per_step else None)))
            i += 1
    xs = [p[0] for _, s in series for p in s] + ([budget] if budget else [])
    ys = [p[1] for _, s in series for p in s] + ([target] if target else [])
    x_max = max(xs) * 1.05
    y_max = max(ys) * 1.1

    def x(v):
        return LEFT + v / x_max * (W - LEFT - RIGHT)

    def y(v):
        return H - BOTTOM - v / y_max * (H - TOP - BOTTOM)

    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<line x1="{LEFT}" y1="{y(0)}" x2="{W - RIGHT}" y2="{y(0)}" stroke="black"/>',
           f'<line x1="{LEFT}" y1="{y(0)}" x2="{LEFT}" y2="{TOP}" stroke="black"/>']
    minutes, fds = nice_step(x_max / 60 / 5), nice_step(y_max / 5)
    for k in range(int(x_max / 60 / minutes) + 1):
        svg.append(f'<text x="{x(k * minutes * 60)}" y="{y(0) + 16}" '
                   f'text-anchor="middle">{k * minutes:g}</text>')
    for k in range(int(y_max / fds) + 1):
        svg.append(f'<text x="{LEFT - 6}" y="{y(k * fds) + 4}" text-anchor="end">{k * fds:g}</text>')
    svg.append(f'<text x="{(LEFT + W - RIGHT) / 2}" y="{H - 12}" text-anchor="middle">'
               'wall time of training, minutes (idle machine)</text>')
    svg.append(f'<text x="16" y="{(TOP + H - BOTTOM) / 2}" text-anchor="middle" '
               f'transform="rotate(-90 16 {(TOP + H - BOTTOM) / 2})">FD (10,000 samples)</text>')
    if target:
        svg.append(f'<line x1="{LEFT}" y1="{y(target)}" x2="{W - RIGHT}" y2="{y(target)}" '
                   'stroke="gray" stroke-dasharray="4 4"/>')
        svg.append(f'<text x="{W - RIGHT - 4}" y="{y(target) - 4}" text-anchor="end" '
                   f'fill="gray">FD {target:g}</text>')
    if budget:
        svg.append(f'<line x1="{x(budget)}" y1="{y(0)}" x2="{x(budget)}" y2="{TOP}" '
                   'stroke="gray" stroke-dasharray="4 4"/>')
        svg.append(f'<text x="{x(budget) + 4}" y="{TOP + 12}" fill="gray">'
                   f'{budget / 60:g} min</text>')
    for n, (label, points) in enumerate(series):
        colour = COLOURS[n % len(COLOURS)]
        path = " ".join(f"{x(px):.1f},{y(py):.1f}" for px, py, _ in points)
        svg.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for px, py, step in points:
            svg.append(f'<circle cx="{x(px):.1f}" cy="{y(py):.1f}" r="3.5" fill="{colour}"/>')
            svg.append(f'<text x="{x(px) + 5:.1f}" y="{y(py) - 6:.1f}" fill="{colour}" '
                       f'font-size="10">{step}</text>')
        svg.append(f'<text x="{W - RIGHT - 190}" y="{TOP + 40 + 16 * n}" fill="{colour}">'
                   f'{label}</text>')
    svg.append("</svg>")
    with open(out, "w") as f:
        f.write("\n".join(svg) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1:])
