#!/usr/bin/env bash
# Models against each other at the same wall-clock budget: every run given as an argument
# trains at once, one thread each, until SECONDS_EACH have passed; SIGINT then makes each
# finish its step, save and exit. Each run is scored by `gantry eval` and a Markdown table of
# steps, FD, KID, precision and recall (and the real floor) is printed and written to
# OUT/table.md.
#
#   scripts/side_by_side.sh "NAME:gantry train flags" "NAME:flags" ...
#   SECONDS_EACH=1200 OUT=target/mnistcmp scripts/side_by_side.sh \
#       "dcgan:" "wgan-gp:--model wgan-gp --data mnist --sample-every 100"
#
# Environment (defaults in brackets): SECONDS_EACH [1200], OUT [target/side-by-side], N [10000]
# samples per eval. The runs share the machine: with more runs than cores each gets less than
# a core, the same share for each; say so next to the numbers.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/target/side-by-side}
budget=${SECONDS_EACH:-1200}
n=${N:-10000}
if [ $# -lt 1 ]; then
  sed -n '2,14p' "$0" >&2
  exit 2
fi
cargo build --release --locked -q -p gantry-cli --manifest-path "$root/Cargo.toml"
gantry=${GANTRY:-$root/target/release/gantry}
mkdir -p "$out"

pids=()
names=()
for spec in "$@"; do
  name=${spec%%:*}
  flags=${spec#*:}
  if [ -e "$out/$name" ]; then
    echo "$out/$name exists: choose another OUT or remove it" >&2
    exit 1
  fi
  # shellcheck disable=SC2086 # the flags are words
  "$gantry" train $flags --steps 100000000 --threads 1 --quiet --out "$out/$name" \
    > "$out/$name.log" 2>&1 &
  pids+=($!)
  names+=("$name")
done
sleep "$budget"
kill -INT "${pids[@]}"
for pid in "${pids[@]}"; do wait "$pid" || [ $? -eq 130 ]; done

# json_number KEY FILE [OBJECT]: the number called KEY in eval.json, in OBJECT ("real") or
# outside it.
json_number() {
  local text
  text=$(tr -d ' \n' < "$2")
  if [ "${3:-}" = real ]; then
    text=$(echo "$text" | grep -o '"real":{[^}]*}')
  else
    text=$(echo "$text" | sed 's/"real":{[^}]*}//')
  fi
  echo "$text" | grep -o "\"$1\":[-0-9.e]*" | head -1 | cut -d: -f2
}

{
  echo "| run | steps in ${budget} s | FD | KID | precision | recall |"
  echo "| --- | --- | --- | --- | --- | --- |"
  for name in "${names[@]}"; do
    "$gantry" eval --run "$out/$name" --n "$n" > /dev/null
    e=$out/$name/eval.json
    printf '| %s | %s | %.1f | %.1f | %.2f | %.2f |\n' "$name" "$(json_number step "$e")" \
      "$(json_number fd "$e")" "$(json_number kid "$e")" "$(json_number precision "$e")" \
      "$(json_number recall "$e")"
  done
  e=$out/${names[0]}/eval.json
  printf '| real images (the floor) | | %.1f | %.1f | %.2f | %.2f |\n' \
    "$(json_number fd "$e" real)" "$(json_number kid "$e" real)" \
    "$(json_number precision "$e" real)" "$(json_number recall "$e" real)"
} | tee "$out/table.md"
