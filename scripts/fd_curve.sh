#!/usr/bin/env bash
# FD against training steps and wall time for one `gantry train` recipe: trains in segments
# (a resumed run continues bit for bit, so the curve is that of one straight run), scores each
# checkpoint with `gantry eval`, and prints one CSV row per segment.
#
#   scripts/fd_curve.sh OUT STEP1,STEP2,... [gantry train flags...]
#   e.g. scripts/fd_curve.sh target/fd-default 500,1000,2000,3000
#        scripts/fd_curve.sh target/fd-ema 500,1000,2000,3000 --ema 0.999
#
# Columns: step, cumulative training seconds (the eval's time excluded), fd, confident,
# class_kl, kid. The release binary is built here; the machine's load changes the seconds, not
# the scores, and so does the thread count: THREADS=1 runs training and eval on one thread
# (same numbers, bit for bit), e.g. to try two recipes side by side.
set -euo pipefail
out=$1
steps=$2
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --locked -q -p gantry-cli --manifest-path "$root/Cargo.toml"
gantry=${GANTRY:-$root/target/release/gantry}
threads=()
if [ -n "${THREADS:-}" ]; then threads=(--threads "$THREADS"); fi
rm -rf "$out"

# json_number KEY FILE: the number called KEY in eval.json, outside its "real" (floor) object.
json_number() {
  tr -d ' \n' < "$2" | sed 's/"real":{[^}]*}//' | grep -o "\"$1\":[-0-9.e]*" | head -1 | cut -d: -f2
}

echo "step,seconds,fd,confident,class_kl,kid"
total=0
for step in ${steps//,/ }; do
  start=$(date +%s.%N)
  if [ -d "$out" ]; then
    "$gantry" train --resume "$out" --steps "$step" --quiet "${threads[@]}"
  else
    "$gantry" train --steps "$step" --out "$out" --quiet "${threads[@]}" "$@"
  fi
  total=$(awk -v t="$total" -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", t + b - a }')
  "$gantry" eval --run "$out" "${threads[@]}" > /dev/null
  row=$step,$total
  for key in fd confident class_kl kid; do row=$row,$(json_number $key "$out/eval.json"); done
  echo "$row"
done
