#!/usr/bin/env bash
# gantry against the PyTorch reference (../shared/bench/gan_bench.py), on this machine, now:
# for every workload, batch and thread count, runs PyTorch then gantry, one after the other,
# and prints a Markdown table of seconds per iteration, their ratio and peak memory. With torch,
# it first measures the machine's practical f32 GEMM peak (gemm_bench.py: torch.matmul on
# 2048 x 2048, the best of 10) at each thread count, and gives each row its floor: the
# iteration's FLOPs at that peak, counting only the taps on each layer's input (a direct
# convolution, as oneDNN's, skips those on the zero padding), and the lowest gantry / PyTorch
# ratio any implementation doing those FLOPs could reach.
#
# On a virtual machine whose speed drifts (a host's other guests), one PyTorch run and one
# gantry run minutes apart can differ by half for reasons of their own: --rounds N runs the pair
# N times, PyTorch first in odd rounds and gantry first in even ones, and reports each side's
# median, the median of the N rounds' ratios and their range.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: bench/compare.sh [--workloads LIST] [--threads LIST] [--iters N] [--warmup N] [--rounds N]
                        [--no-torch]

  --workloads LIST  comma separated (default: mlp,dcgan28,dcgan64c3,dcgan64c1,p2p64,p2p256);
                    batches are the reference's: 64, p2p64 1 and 8, p2p256 1
  --threads LIST    comma separated thread counts (default: 1,2)
  --iters N         timed iterations per run, median reported (default: 10)
  --warmup N        untimed iterations first (default: 3)
  --rounds N        runs of each side per row, alternating which goes first; the ratio column
                    is the median of the rounds' ratios, with their range (default: 1)
  --no-torch        gantry only

environment:
  PYTHON            the Python with torch (default: python3); without torch, gantry only
  GANTRY_SHARED_BENCH  the folder of gan_bench.py (default: ../shared/bench from the repo)
  GAN_BENCH_ARGS    extra arguments for gan_bench.py (e.g. "--retries 0")
USAGE
}

workloads=mlp,dcgan28,dcgan64c3,dcgan64c1,p2p64,p2p256
threads=1,2
iters=10
warmup=3
rounds=1
use_torch=1
while [ $# -gt 0 ]; do
  case "$1" in
    --workloads) workloads=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --iters) iters=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --no-torch) use_torch=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "compare.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
case "$rounds" in
  ''|*[!0-9]*|0) echo "compare.sh: --rounds must be a positive whole number, not '$rounds'" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
shared=${GANTRY_SHARED_BENCH:-$root/../shared/bench}
python=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "building gantry (release)..." >&2
(cd "$root" && cargo build --release --quiet -p gantry-cli)
gantry=${CARGO_TARGET_DIR:-$root/target}/release/gantry

torch_version="not installed"
if [ "$use_torch" = 1 ]; then
  if ! torch_version=$("$python" -c 'import torch; print(torch.__version__)' 2>/dev/null); then
    echo "compare.sh: '$python' cannot import torch: gantry only (set PYTHON to a Python with torch)" >&2
    torch_version="not installed"; use_torch=0
  elif [ ! -f "$shared/gan_bench.py" ]; then
    echo "compare.sh: no $shared/gan_bench.py: gantry only (set GANTRY_SHARED_BENCH)" >&2
    use_torch=0
  fi
fi
timer=
if [ -x /usr/bin/time ]; then timer=/usr/bin/time; fi

# A number from gantry's JSON line: json_field KEY FILE.
json_field() { grep -o "\"$1\":[^,}]*" "$2" | head -n 1 | cut -d: -f2; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
# The median and the largest of column COL of FILE's space-separated lines: median COL FILE.
median() { cut -d' ' -f"$1" "$2" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
max() { cut -d' ' -f"$1" "$2" | sort -g | tail -n 1; }

cpu=$(grep -m 1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), ${cpu:-unknown CPU} ($(nproc) CPUs), $(rustc --version), torch $torch_version, iters $iters, warmup $warmup, rounds $rounds"

# The practical GEMM peak in GFLOP/s per thread count ("-" without torch): peak_THREADS files.
for t in ${threads//,/ }; do
  echo - >"$tmp/peak_$t"
  if [ "$use_torch" = 1 ] && [ -f "$shared/gemm_bench.py" ]; then
    # gemm_torch_2048,2048,THREADS,sec,0,0,gflop,gflops_median,best=GFLOPS,...: the best of the
    # runs, as a floor should be the most favourable (the median moves with the VM's noise).
    if "$python" "$shared/gemm_bench.py" --threads "$t" --sizes 2048 --iters 10 >"$tmp/gemm" 2>&1; then
      grep '^gemm_torch_' "$tmp/gemm" | cut -d, -f9 | sed 's/^best=//' >"$tmp/peak_$t"
    else
      echo "compare.sh: gemm_bench.py failed at $t threads:" >&2
      cat "$tmp/gemm" >&2
    fi
  fi
done
peaks=$(for t in ${threads//,/ }; do echo "$t threads $(cat "$tmp/peak_$t")"; done | paste -sd, - | sed 's/,/, /g')
echo "practical f32 GEMM peak (torch.matmul 2048 x 2048, best of 10, GFLOP/s): $peaks"
echo
echo "| workload | batch | threads | PyTorch s/iter | gantry s/iter | gantry / PyTorch (median of rounds, range) | floor s/iter (taps on the input, at the GEMM peak) | floor / PyTorch | PyTorch peak RSS (MiB) | gantry peak RSS (MiB) | other load (cores) PyTorch / gantry |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"

# One PyTorch run of workload $w, batch $b, $t threads: its seconds per iteration, peak RSS
# and foreign load appended to $tmp/py_runs, or nothing if it failed.
run_torch() {
  [ "$use_torch" = 1 ] || return 0
  # shellcheck disable=SC2086
  if ${timer:+$timer -f %M -o "$tmp/time"} "$python" "$shared/gan_bench.py" --models "$w" \
      --batch "$b" --threads "$t" --iters "$iters" --warmup "$warmup" ${GAN_BENCH_ARGS:-} \
      >"$tmp/py" 2>"$tmp/py.err"; then
    # model,batch,threads,sec_per_iter,params_G,params_D,gflop_per_iter,achieved_gflops,min_s,max_s,foreign_cores
    local row rss=-
    row=$(grep -v '^#' "$tmp/py" | tail -n 1)
    if [ -n "$timer" ]; then rss=$(mib "$(tail -n 1 "$tmp/time")"); fi
    echo "$(echo "$row" | cut -d, -f4) $rss $(echo "$row" | cut -d, -f11)" >>"$tmp/py_runs"
  else
    echo "compare.sh: gan_bench.py failed for $w batch $b threads $t:" >&2
    cat "$tmp/py.err" >&2
  fi
}
# One gantry run, appended to $tmp/g_runs likewise; its JSON line stays in $tmp/gantry.
run_gantry() {
  MATMUL_NUM_THREADS=$t "$gantry" bench --workload "$w" --batch-size "$b" --threads "$t" \
    --iters "$iters" --warmup "$warmup" >"$tmp/gantry"
  echo "$(json_field sec_per_iter_median "$tmp/gantry") $(json_field peak_rss_mb "$tmp/gantry") $(json_field foreign_cores "$tmp/gantry")" >>"$tmp/g_runs"
}

for w in ${workloads//,/ }; do
  case "$w" in
    p2p64) batches="1 8" ;;
    p2p256) batches=1 ;;
    *) batches=64 ;;
  esac
  for b in $batches; do
    for t in ${threads//,/ }; do
      : >"$tmp/py_runs"; : >"$tmp/g_runs"; : >"$tmp/ratios"
      for ((r = 1; r <= rounds; r++)); do
        before=$(wc -l <"$tmp/py_runs")
        if ((r % 2)); then run_torch; run_gantry; else run_gantry; run_torch; fi
        if [ "$(wc -l <"$tmp/py_runs")" -gt "$before" ]; then
          awk -v g="$(tail -n 1 "$tmp/g_runs" | cut -d' ' -f1)" -v p="$(tail -n 1 "$tmp/py_runs" | cut -d' ' -f1)" \
            'BEGIN { print g / p }' >>"$tmp/ratios"
        fi
      done
      py_s=-; py_rss=-; py_load=-
      if [ -s "$tmp/py_runs" ]; then
        py_s=$(median 1 "$tmp/py_runs"); py_rss=$(max 2 "$tmp/py_runs"); py_load=$(max 3 "$tmp/py_runs")
      fi
      g_s=$(median 1 "$tmp/g_runs")
      g_rss=$(awk -v m="$(max 2 "$tmp/g_runs")" 'BEGIN { printf "%.0f", m }')
      g_load=$(max 3 "$tmp/g_runs")
      # The reference's FLOP count (3 F_G + 9 F_D) without the taps on zero padding, at the
      # GEMM peak: no implementation that does those multiply-adds runs faster, whatever else
      # it does (the full count would not bound oneDNN, which skips the padding's taps).
      floor=-; floor_ratio=-
      peak=$(cat "$tmp/peak_$t")
      if [ "$peak" != - ]; then
        floor=$(awk -v f="$(json_field gflop_per_iter_on_input "$tmp/gantry")" -v p="$peak" 'BEGIN { printf "%.4g", f / p }')
        if [ "$py_s" != - ]; then floor_ratio=$(awk -v f="$floor" -v p="$py_s" 'BEGIN { printf "%.2f", f / p }'); fi
      fi
      ratio=-
      if [ -s "$tmp/ratios" ]; then
        ratio=$(median 1 "$tmp/ratios" | awk '{ printf "%.2f", $1 }')
        if [ "$rounds" -gt 1 ]; then
          ratio="$ratio ($(sort -g "$tmp/ratios" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f-%.2f", lo, hi }'))"
        fi
      fi
      g_s=$(awk -v s="$g_s" 'BEGIN { printf "%.4g", s }')
      g_load=$(awk -v s="$g_load" 'BEGIN { printf "%.2f", s }')
      echo "| $w | $b | $t | $py_s | $g_s | $ratio | $floor | $floor_ratio | $py_rss | $g_rss | ${py_load:--} / $g_load |"
    done
  done
done
