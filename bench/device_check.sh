#!/usr/bin/env bash
# The GPU check: every CUDA test, the kernel benchmarks and the side-by-side comparisons, from a given
# build folder, with logs and JSON written into a given output folder and a short table printed last.
#   bench/device_check.sh [BUILD_DIR=build-gpu] [OUT_DIR=$OUT or device_out]
# On a machine without a GPU it runs what it can and fails (exit 3) only for want of a GPU.
set -u
cd "$(dirname "$0")/.."
BUILD=${1:-build-gpu}
OUTDIR=${2:-${OUT:-device_out}}
mkdir -p "$OUTDIR"
[ -d .deps/lib ] && export LD_LIBRARY_PATH="$PWD/.deps/lib:${LD_LIBRARY_PATH:-}"
[ -d "$BUILD/bin" ] || { echo "device_check: no $BUILD/bin (run bench/prepare_device.sh first)"; exit 2; }

gpu=0
nvidia-smi -L >/dev/null 2>&1 && gpu=1
{
  date -u +"%Y-%m-%dT%H:%M:%SZ"
  git rev-parse --short HEAD 2>/dev/null || echo "commit unknown"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>/dev/null || echo "no GPU"
  nvcc --version 2>/dev/null | tail -1
} > "$OUTDIR/machine.txt"

# 1. Tests: each Catch2 executable directly (ctest files hold absolute build paths).
: > "$OUTDIR/tests.tsv"
failed_tests=0
for t in "$BUILD"/bin/test_*; do
  name=$(basename "$t")
  timeout 300 "$t" > "$OUTDIR/$name.log" 2>&1
  rc=$?
  skipped=$(grep -c "SKIPPED:" "$OUTDIR/$name.log")
  printf "%s\t%s\t%s\n" "$name" "$rc" "$skipped" >> "$OUTDIR/tests.tsv"
  [ "$rc" -eq 0 ] || failed_tests=$((failed_tests + 1))
done

# 2. Benchmarks on the GPU (each writes its own JSON; a missing one is skipped).
: > "$OUTDIR/bench.tsv"
for b in bench_gemm bench_conv bench_landmark_pool bench_losses bench_search bench_train_step; do
  [ -x "$BUILD/bin/$b" ] || continue
  timeout 300 "$BUILD/bin/$b" --device cuda --json "$OUTDIR/$b.json" > "$OUTDIR/$b.log" 2>&1
  printf "%s\t%s\n" "$b" "$?" >> "$OUTDIR/bench.tsv"
done

# 3. Side by side with PyTorch (the device machine has torch with CUDA).
if [ -f bench/pytorch/parity.py ] && python3 -c "import torch" 2>/dev/null; then
  timeout 300 python3 bench/pytorch/parity.py --build "$BUILD" --device cuda --out "$OUTDIR" > "$OUTDIR/parity.log" 2>&1
  printf "parity\t%s\n" "$?" >> "$OUTDIR/bench.tsv"
fi

echo
echo "== device check: $(head -3 "$OUTDIR/machine.txt" | tr '\n' ' ')"
printf "%-28s %4s %8s\n" "test" "rc" "skipped"
while IFS=$'\t' read -r n rc s; do printf "%-28s %4s %8s\n" "$n" "$rc" "$s"; done < "$OUTDIR/tests.tsv"
printf "%-28s %4s\n" "benchmark" "rc"
while IFS=$'\t' read -r n rc; do printf "%-28s %4s\n" "$n" "$rc"; done < "$OUTDIR/bench.tsv"
if [ "$gpu" -eq 0 ]; then
  echo "device_check: no GPU on this machine: CUDA tests reported skipped, GPU benchmarks not measured"
  exit 3
fi
[ "$failed_tests" -eq 0 ] || { echo "device_check: $failed_tests test executables failed"; exit 1; }
echo "device_check: all tests passed on the GPU"
