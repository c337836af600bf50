#!/usr/bin/env bash
# What the device tool runs: bench/device_check.sh under an overall time cap, then its whole output folder
# packed into $OUT/device_check.tgz (the tool brings back at most 8 files), the summary printed last.
#   bench/device_run.sh [LIMIT_S=420] [BUILD_DIR=build-gpu]
LIMIT=${1:-420}
BUILD=${2:-build-gpu}
OUT=${OUT:-device_out}
cd "$(dirname "$0")/.."
rm -rf /tmp/dc && mkdir -p "$OUT" /tmp/dc
# A build packed by bench/prepare_device.sh comes as one archive: the tool carries at most 64 MiB.
[ -f .devpack/gpu.tar.xz ] && [ ! -d "$BUILD/bin" ] && tar -xJf .devpack/gpu.tar.xz
# The test binaries find their data through the source path compiled into them (FN_SOURCE_DIR).
src=$(cat .devpack/source_dir 2>/dev/null || true)
[ -n "$src" ] && [ ! -e "$src" ] && mkdir -p "$(dirname "$src")" && ln -s "$PWD" "$src"
timeout -k 10 "$LIMIT" bench/device_check.sh "$BUILD" /tmp/dc > /tmp/dc/console.log 2>&1
rc=$?
echo "device_check exit $rc" >> /tmp/dc/console.log
tar -czf "$OUT/device_check.tgz" -C /tmp dc
cp /tmp/dc/console.log "$OUT/console.log"
tail -40 /tmp/dc/console.log
exit $rc
