#!/usr/bin/env bash
# The 2-D mixture experiments of VEEGAN and PacGAN with gantry's MLP GAN: trains
# `gantry train --model mlp` on the ring and grid mixtures with each loss, unpacked and packed,
# for several seeds, scores each run with `gantry eval`, and prints a Markdown table of the
# means and standard deviations over the seeds.
#
#   scripts/mixtures.sh [gantry train flags...]      # e.g. --steps 8000 --ngf 256 --ndf 256
#
# Environment (defaults in brackets): DATA [ring grid], LOSSES [non-saturating hinge lsgan
# wgan-gp], PACKS [1 2], SEEDS [5], STEPS [4000], OUT [target/mixtures], JOBS [1] (runs at
# once; the scores do not depend on it, the seconds do), and for a second phase at a lower
# learning rate, resumed from the first: DECAY_STEPS [none] more steps at DECAY_LR [2e-5]. wgan-gp means the Wasserstein loss
# with a gradient penalty of 0.1 (the weight of WGAN-GP's own toy experiments), 5 critic steps
# per generator step and Adam 1e-4 with betas (0.5, 0.9); every loss trains the same number of
# generator steps. Every run directory stays in OUT.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/target/mixtures}
steps=${STEPS:-4000}
seeds=${SEEDS:-5}
jobs=${JOBS:-1}
cargo build --release --locked -q -p gantry-cli --manifest-path "$root/Cargo.toml"
gantry=${GANTRY:-$root/target/release/gantry}
mkdir -p "$out"

loss_flags() {
  case $1 in
    wgan-gp) echo "--loss wasserstein --gp 0.1 --k 5 --lr 1e-4 --beta1 0.5 --beta2 0.9" ;;
    *) echo "--loss $1" ;;
  esac
}

# json_number KEY FILE: the number called KEY in eval.json, outside its "real" (floor) object.
json_number() {
  tr -d ' \n' < "$2" | sed 's/"real":{[^}]*}//' | grep -o "\"$1\":[-0-9.e]*" | head -1 | cut -d: -f2
}

# run DIR DATA LOSS PACK SEED FLAGS...: one training run and its eval, and a line
# "modes total high_quality reverse_kl seconds" in DIR/row.
run() {
  local dir=$1 data=$2 loss=$3 pack=$4 seed=$5
  shift 5
  rm -rf "$dir"
  local start
  start=$(date +%s.%N)
  # shellcheck disable=SC2046
  "$gantry" train --model mlp --data "$data" --pack "$pack" --seed "$seed" --steps "$steps" \
    $(loss_flags "$loss") --threads 1 --quiet --out "$dir" "$@"
  if [ -n "${DECAY_STEPS:-}" ]; then
    "$gantry" train --resume "$dir" --steps $((steps + DECAY_STEPS)) --lr "${DECAY_LR:-2e-5}" \
      --threads 1 --quiet
  fi
  local secs
  secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  # The eval's own sample stream is fixed (seed 0) so runs differ only by training.
  "$gantry" eval --run "$dir" --threads 1 > /dev/null
  local kl
  kl=$(json_number reverse_kl "$dir/eval.json")
  echo "$(json_number modes "$dir/eval.json") $(json_number modes_total "$dir/eval.json") \
$(json_number high_quality "$dir/eval.json") ${kl:-nan} $secs" > "$dir/row"
}

echo "| data | loss | pack | modes (of total) | high quality | reverse KL | seconds per run |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for data in ${DATA:-ring grid}; do
  for loss in ${LOSSES:-non-saturating hinge lsgan wgan-gp}; do
    for pack in ${PACKS:-1 2}; do
      for seed in $(seq 0 $((seeds - 1))); do
        while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
        run "$out/$data-$loss-pack$pack-seed$seed" "$data" "$loss" "$pack" "$seed" "$@" &
      done
      wait
      for seed in $(seq 0 $((seeds - 1))); do
        cat "$out/$data-$loss-pack$pack-seed$seed/row"
      done | awk -v data="$data" -v loss="$loss" -v pack="$pack" '
        { n++; m += $1; m2 += $1 * $1; total = $2; h += $3; h2 += $3 * $3; t += $5
          if ($4 != "nan") { k += $4; k2 += $4 * $4; kn++ } }
        function sd(s, s2, c) { v = s2 / c - (s / c) ^ 2; return v > 0 ? sqrt(v) : 0 }
        END {
          printf "| %s | %s | %d | %.1f ± %.1f (of %d) | %.1f%% ± %.1f | %s | %.0f |\n", data,
            loss, pack, m / n, sd(m, m2, n), total, 100 * h / n, 100 * sd(h, h2, n),
            kn ? sprintf("%.2f ± %.2f", k / kn, sd(k, k2, kn)) : "-", t / n
        }'
    done
  done
done
