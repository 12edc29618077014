#!/usr/bin/env bash
# How gantry's time per training iteration scales: with the batch size, with the image size
# (pytorch/examples DCGAN at 16..128), and from 1 to 2 threads. Writes one CSV row per run;
# `cargo run --release -p gantry-cli --example plot_scaling -- docs/scaling.csv docs/scaling.svg` draws it.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: bench/scaling.sh [--out FILE.csv] [--workloads LIST] [--batches LIST]
                        [--size-workload W] [--sizes LIST] [--size-batch N]
                        [--threads LIST] [--iters N] [--warmup N]

  --out FILE          the CSV (default: docs/scaling.csv)
  --workloads LIST    batch sweep workloads (default: mlp,dcgan28,dcgan64c3,p2p64)
  --batches LIST      batch sizes (default: 1,2,4,8,16,32,64,128,256)
  --size-workload W   image-size sweep workload (default: dcgan64c3)
  --sizes LIST        image sides (default: 16,32,64,128)
  --size-batch N      batch of the image-size sweep (default: 64)
  --threads LIST      thread counts of every run (default: 1,2)
  --iters N, --warmup N  per run (default: 5 and 2)
USAGE
}

out=docs/scaling.csv
workloads=mlp,dcgan28,dcgan64c3,p2p64
batches=1,2,4,8,16,32,64,128,256
size_workload=dcgan64c3
sizes=16,32,64,128
size_batch=64
threads=1,2
iters=5
warmup=2
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --workloads) workloads=$2; shift 2 ;;
    --batches) batches=$2; shift 2 ;;
    --size-workload) size_workload=$2; shift 2 ;;
    --sizes) sizes=$2; shift 2 ;;
    --size-batch) size_batch=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --iters) iters=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "scaling.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
echo "building gantry (release)..." >&2
(cd "$root" && cargo build --release --quiet -p gantry-cli)
gantry=${CARGO_TARGET_DIR:-$root/target}/release/gantry

fields="workload image_size batch threads sec_per_iter_median sec_per_iter_min sec_per_iter_max gflop_per_iter gflops peak_rss_mb foreign_cores"
# JSON lines of gantry bench on stdin -> CSV rows tagged with the sweep.
to_csv() {
  while IFS= read -r line; do
    row=$1
    for f in $fields; do
      v=$(echo "$line" | grep -o "\"$f\":[^,}]*" | head -n 1 | cut -d: -f2 | tr -d '"')
      row="$row,$v"
    done
    echo "$row" | tee /dev/stderr
  done
}

echo "sweep,${fields// /,}" >"$out"
for w in ${workloads//,/ }; do
  # --batch-size takes the whole list; each (batch, threads) runs in its own process.
  "$gantry" bench --workload "$w" --batch-size "$batches" --threads "$threads" \
    --iters "$iters" --warmup "$warmup" | to_csv batch >>"$out"
done
for s in ${sizes//,/ }; do
  "$gantry" bench --workload "$size_workload" --image-size "$s" --batch-size "$size_batch" \
    --threads "$threads" --iters "$iters" --warmup "$warmup" | to_csv image_size >>"$out"
done
echo "wrote $out" >&2
