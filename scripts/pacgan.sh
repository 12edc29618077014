#!/usr/bin/env bash
# PacGAN's mode-collapse experiment with gantry's MLP GAN: trains `gantry train --model mlp`
# on the ring and grid mixtures for several seeds, unpacked (M = 1) and packed (M = 2), scores
# each run with `gantry eval`, and prints a Markdown table of the means and standard deviations.
#
#   scripts/pacgan.sh [SEEDS] [STEPS] [OUT]     # defaults: 5 seeds, 4000 steps, target/pacgan
#
# Needs only the release binary (built here) and awk. Every run directory stays in OUT.
set -euo pipefail
seeds=${1:-5}
steps=${2:-4000}
root=$(cd "$(dirname "$0")/.." && pwd)
out=${3:-$root/target/pacgan}
cargo build --release --locked -q -p gantry-cli --manifest-path "$root/Cargo.toml"
gantry=$root/target/release/gantry
mkdir -p "$out"

# json_number KEY FILE: the number called KEY in eval.json, outside its "real" (floor) object.
json_number() {
  tr -d ' \n' < "$2" | sed 's/"real":{[^}]*}//' | grep -o "\"$1\":[-0-9.e]*" | head -1 | cut -d: -f2
}

echo "| data | pack | modes (of total) | high quality | reverse KL | seconds per run |"
echo "| --- | --- | --- | --- | --- | --- |"
for data in ring grid; do
  for pack in 1 2; do
    rows=""
    for seed in $(seq 0 $((seeds - 1))); do
      dir=$out/$data-pack$pack-seed$seed
      rm -rf "$dir"
      start=$(date +%s.%N)
      "$gantry" train --model mlp --data "$data" --pack "$pack" --seed "$seed" \
        --steps "$steps" --quiet --out "$dir"
      secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
      # The eval's own sample stream is fixed (seed 0) so runs differ only by training.
      "$gantry" eval --run "$dir" > /dev/null
      modes=$(json_number modes "$dir/eval.json")
      total=$(json_number modes_total "$dir/eval.json")
      hq=$(json_number high_quality "$dir/eval.json")
      kl=$(json_number reverse_kl "$dir/eval.json")
      rows+="$modes $total $hq ${kl:-nan} $secs"$'\n'
    done
    printf '%s' "$rows" | awk -v data="$data" -v pack="$pack" '
      { n++; m += $1; m2 += $1 * $1; total = $2; h += $3; h2 += $3 * $3; t += $5
        if ($4 != "nan") { k += $4; k2 += $4 * $4; kn++ } }
      function sd(s, s2, c) { v = s2 / c - (s / c) ^ 2; return v > 0 ? sqrt(v) : 0 }
      END {
        printf "| %s | %d | %.1f ± %.1f (of %d) | %.1f%% ± %.1f | %s | %.0f |\n", data, pack,
          m / n, sd(m, m2, n), total, 100 * h / n, 100 * sd(h, h2, n),
          kn ? sprintf("%.2f ± %.2f", k / kn, sd(k, k2, kn)) : "-", t / n
      }'
  done
done
