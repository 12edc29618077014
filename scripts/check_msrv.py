#!/usr/bin/env python3
"""Fails when the workspace's declared rust-version is lower than a locked dependency's.

The declared minimum (`[workspace.package] rust-version` in Cargo.toml) is a promise to
users; a dependency upgrade in Cargo.lock can silently raise the real one. `cargo metadata
--locked` lists every package of the lock file with the `rust-version` it declares; the
workspace must declare at least the largest of them.

Usage: python3 scripts/check_msrv.py  (from anywhere inside the repository)
"""

import json
import subprocess
import sys
from pathlib import Path


def version(text):
    """`1.89` or `1.89.0` as a comparable tuple (missing parts are 0)."""
    parts = [int(p) for p in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def main():
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    meta = json.loads(out)
    members = set(meta["workspace_members"])
    declared = {
        p["rust_version"] for p in meta["packages"] if p["id"] in members and p.get("rust_version")
    }
    if len(declared) != 1:
        sys.exit(f"check_msrv: the workspace members declare {sorted(declared)}, expected one rust-version")
    declared = declared.pop()
    needed = [
        (version(p["rust_version"]), p["name"], p["version"], p["rust_version"])
        for p in meta["packages"]
        if p["id"] not in members and p.get("rust_version")
    ]
    too_new = sorted(n for n in needed if n[0] > version(declared))
    if too_new:
        for _, name, ver, rv in too_new:
            print(f"check_msrv: {name} {ver} needs Rust {rv}", file=sys.stderr)
        sys.exit(
            f"check_msrv: Cargo.toml declares rust-version {declared}, lower than "
            f"{too_new[-1][3]} that the locked dependencies need; raise it (and the README's)"
        )
    top = max(needed)
    print(f"check_msrv: rust-version {declared} covers every locked dependency (highest: {top[1]} {top[3]})")


if __name__ == "__main__":
    main()
