#!/usr/bin/env bash
# Data-parallel scaling on one CPU host (issue 20, item 7): `fashionnet train` with the cpu-small preset, the
# same global batch and steps, as 1 process with T threads and as N ranks with T/N threads each, back to back,
# alternating, R rounds. Prints each run's images/s and the ratio ranks / one process per round.
#   bench/dist_scaling.sh [BUILD=build] [N=2] [T=2] [R=2] [STEPS=20]
# The data: a synthetic In-shop set (200 items x 4 views of 256 px) made once under /tmp/fn_dist_scaling.
set -euo pipefail
build=${1:-build}
n=${2:-2}
t=${3:-2}
rounds=${4:-2}
steps=${5:-20}
bin=$(cd "$build/bin" && pwd)/fashionnet
work=/tmp/fn_dist_scaling
mkdir -p "$work"
[ -f "$work/data/Eval/list_eval_partition.txt" ] ||
  "$bin" synth --out "$work/data" --benchmark inshop --items 200 --views 4 --seed 5 > /dev/null
per=$((t / n))
[ "$per" -ge 1 ] || per=1
launch=(mpirun --oversubscribe --bind-to none -np "$n")
[ "$(id -u)" = 0 ] && launch+=(--allow-run-as-root)
common=(train --data "$work/data" --preset cpu-small --steps "$steps,$steps" --validate-every 0 --threads 1)
batch=32  # cpu-small's global batch; each rank takes batch / n
rate() { sed -n 's/^trained .* (\([0-9.]*\) img\/s).*/\1/p' "$1" | tail -1; }
echo "cpu-small, global batch $batch, $steps + $steps steps; 1 process x $t threads against $n ranks x $per threads"
for r in $(seq 1 "$rounds"); do
  rm -rf "$work/one" "$work/ranks"
  OPENBLAS_NUM_THREADS=$t "$bin" "${common[@]}" --batch $batch --parts "$n" --out "$work/one" > "$work/one.log" 2>&1
  OPENBLAS_NUM_THREADS=$per "${launch[@]}" -x OPENBLAS_NUM_THREADS "$bin" "${common[@]}" --batch $((batch / n)) \
    --out "$work/ranks" > "$work/ranks.log" 2>&1
  a=$(rate "$work/one.log") b=$(rate "$work/ranks.log")
  echo "round $r: 1 process ${a} img/s, $n ranks ${b} img/s, ratio $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", b / a }')"
done
