#!/usr/bin/env bash
# Two ranks on one host (Open MPI's shared memory) against two ranks on two hosts (TCP over a veth pair
# between network namespaces, tests/dist/netns_hosts.sh), back to back, R rounds:
#   - bench_allreduce from 4 KiB to 64 MiB (the slowest rank's median time and bus bandwidth);
#   - `fashionnet train` cpu-small, global batch 32 (2 x 16), 20 + 20 steps, 1 BLAS thread per rank.
# Both hosts share this machine's 2 cores and memory: the figures measure the transport (TCP through the
# kernel against shared memory), not a network. Needs root. Run it at normal priority: the second host's
# daemon starts a session of its own, so a raised priority (autogroup) would favour the first host's rank.
#   bench/dist_two_hosts.sh [BUILD=build] [R=2] [STEPS=20]
set -u
build=${1:-build}
rounds=${2:-2}
steps=${3:-20}
bindir=$(cd "$build/bin" && pwd)
mpirun=$(command -v mpirun) || { echo "mpirun not found" >&2; exit 1; }
fail() { echo "FAIL: $*" >&2; exit 1; }
here=$(cd "$(dirname "$0")/../tests/dist" && pwd)
work=/tmp/fn_dist_two_hosts
mkdir -p "$work" && cd "$work" || fail "cannot make $work"
export OPENBLAS_NUM_THREADS=1
source "$here/netns_hosts.sh"
one=("$mpirun" --allow-run-as-root --oversubscribe --bind-to none -np 2 -x OPENBLAS_NUM_THREADS)
[ -f data/Eval/list_eval_partition.txt ] ||
  "$bindir/fashionnet" synth --out "$work/data" --benchmark inshop --items 200 --views 4 --seed 5 >/dev/null
train=("$bindir/fashionnet" train --data "$work/data" --preset cpu-small --steps "$steps,$steps" --validate-every 0
       --threads 1 --batch 16)
rate() { sed -n 's/^trained .* (\([0-9.]*\) img\/s).*/\1/p' "$1" | tail -1; }
echo "== $(date -u +%F), $(nproc) cores, $("$mpirun" --version | head -1)"
for r in $(seq 1 "$rounds"); do
  echo "== round $r: bench_allreduce, one host (shared memory)"
  "${one[@]}" "$bindir/bench_allreduce" --max-bytes $((64 << 20)) 2>&1 | grep -v '^$'
  echo "== round $r: bench_allreduce, two hosts (TCP)"
  on_A "${mpi[@]}" "$bindir/bench_allreduce" --max-bytes $((64 << 20)) 2>&1 | grep -v '^$'
  rm -rf "$work/one" "$work/two"
  "${one[@]}" "${train[@]}" --out "$work/one" >one.log 2>&1 || { cat one.log; fail "training on one host"; }
  on_A "${mpi[@]}" "${train[@]}" --out "$work/two" >two.log 2>&1 || { cat two.log; fail "training on two hosts"; }
  a=$(rate one.log) b=$(rate two.log)
  echo "== round $r: cpu-small, global batch 32: one host ${a} img/s, two hosts ${b} img/s, ratio $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", b / a }')"
done
