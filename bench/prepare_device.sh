#!/usr/bin/env bash
# Prepares a GPU run on the CPU build machine: builds for sm_90 into build-gpu/ and copies the shared
# libraries the binaries need that the device machine lacks (OpenBLAS, gfortran, stb: our Debian packages)
# into .deps/lib, and packs both into .devpack/gpu.tar.xz. Then carry .devpack to the device and run
# bench/device_run.sh there (it unpacks, runs bench/device_check.sh and packs the results into $OUT).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-gpu}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFN_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90
cmake --build "$BUILD" -j"$(nproc)"
mkdir -p .deps/lib
for bin in "$BUILD"/bin/*; do
  ldd "$bin" 2>/dev/null | awk '/=> \//{print $3}'
done | sort -u | while read -r lib; do
  case "$lib" in
    /usr/local/cuda*|*/libc.so*|*/libm.so*|*/libstdc++*|*/libgcc_s*|*/libdl.so*|*/libpthread*|*/librt.so*) ;;
    *) cp -L "$lib" .deps/lib/ ;;
  esac
done
ls -la .deps/lib
du -sh "$BUILD" .deps
# One archive to carry (the device tool takes 64 MiB at most): the binaries, the libraries, and this checkout's
# path, which the test binaries hold as FN_SOURCE_DIR (bench/device_run.sh links it to the copy there).
mkdir -p .devpack
pwd > .devpack/source_dir
tar -cJf .devpack/gpu.tar.xz "$BUILD/bin" .deps/lib
ls -la .devpack
