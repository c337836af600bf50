#!/usr/bin/env bash
# bench/pytorch/visibility_probe.py on the checkpoint and data of the short Lite0 demo test (ctest
# demo_lite0_imagenet): it runs, and its figures agree with `fashionnet eval`'s as the demo printed them:
#   - the garment-type rule, which reads only the annotations: equal to the hundredth;
#   - the head with the running statistics: within 3 points (the twin resizes with PIL, we with our own
#     resampler, so an image near the threshold may fall the other way).
# usage: visibility_probe.sh SOURCE_DIR DEMO_LOG DEMO_DIR   (CMakeLists.txt, visibility_probe_twin)
set -u
src=$1 log=$2 demo=$3
fail() { echo "FAIL: $*" >&2; exit 1; }
if ! /usr/bin/python3 -c 'import torch, PIL, numpy' >/dev/null 2>&1; then
  echo "SKIPPED: /usr/bin/python3 lacks torch, PIL or numpy (./build.sh installs them)"
  exit 77
fi
out=$(/usr/bin/python3 "$src/bench/pytorch/visibility_probe.py" "$demo/run/final.safetensors" "$demo/data" 2>&1) ||
  { echo "$out" >&2; fail "visibility_probe.py exited non-zero"; }
echo "$out"
figure() { echo "$out" | grep "^$1" | sed -n 's/.*all \([0-9.]*\)%$/\1/p'; }
rule=$(figure "the garment type's slots alone")
head=$(figure "the head, running statistics")
probe=$(figure "a linear probe on fc7_pose")
[ -n "$rule" ] && [ -n "$head" ] && [ -n "$probe" ] || fail "a figure is missing from the script's output"
ours_rule=$(sed -n "s/.*the garment type's slots alone: \([0-9.]*\)%.*/\1/p" "$log")
ours_head=$(sed -n 's/.*visibility accuracy \([0-9.]*\)%$/\1/p' "$log")
[ -n "$ours_rule" ] && [ -n "$ours_head" ] || fail "$log has no visibility figures"
[ "$rule" = "$ours_rule" ] || fail "the rule: $rule% in the twin, $ours_rule% in fashionnet eval"
awk -v a="$head" -v b="$ours_head" 'BEGIN { d = a - b; exit !(d <= 3 && d >= -3) }' ||
  fail "the head: $head% in the twin, $ours_head% in fashionnet eval (more than 3 points apart)"
echo "visibility_probe: the rule $rule% in both; the head $head% (twin) against $ours_head% (ours)"
