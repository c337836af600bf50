#!/usr/bin/env bash
# Query photos with their boxes are the images evaluation sees (docs/search.md, "Boxes"), from the command
# line, on the checkpoint and data of the short Lite0 demo test (ctest demo_lite0_imagenet):
#   - a box file made from the dataset's list_bbox_inshop.txt with docs/search.md's awk line;
#   - `embed --images QUERIES --boxes FILE` writes the same .npy as `embed --data --split query`, byte for byte;
#   - `search --boxes FILE --k 1` finds a first hit for as many queries as the demo's eval counted (top-1);
#   - `search --data DATA` without a box file or ids does the same, from the dataset's own boxes and items;
#   - a bad --box is refused naming it;
#   - metrics refuses photos without item ids; `embed --images FOLDER` embeds the photos below it, and
#     --skip-bad names the unreadable one it leaves out.
# usage: search_boxes.sh FASHIONNET DEMO_DIR   (CMakeLists.txt, search_boxes_cli)
set -u
fn=$1 demo=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
DATA=$(cd "$demo/data" && pwd)
ck=$demo/run/final.safetensors
work=$demo/search_boxes
rm -rf "$work" && mkdir -p "$work" || fail "cannot make $work"

tail -n +3 "$DATA/Anno/list_bbox_inshop.txt" | awk -v d="$DATA" '{print d "/" $1, $4, $5, $6, $7}' > "$work/boxes.txt"
awk -v d="$DATA" 'NR > 2 && $3 == "query" {print d "/" $1, $2}' "$DATA/Eval/list_eval_partition.txt" > "$work/q.ids.txt"
cut -d' ' -f1 "$work/q.ids.txt" > "$work/q.txt"
queries=$(wc -l < "$work/q.txt")
[ "$queries" -gt 0 ] || fail "no query image in $DATA/Eval/list_eval_partition.txt"

"$fn" embed --checkpoint "$ck" --images "$work/q.txt" --boxes "$work/boxes.txt" --out "$work/q_boxed" ||
  fail "embed --images --boxes"
"$fn" embed --checkpoint "$ck" --data "$DATA" --split query --out "$work/q_data" || fail "embed --data --split query"
cmp "$work/q_boxed.npy" "$work/q_data.npy" || fail "the boxed photos' embeddings differ from the dataset's queries'"

"$fn" embed --checkpoint "$ck" --data "$DATA" --split gallery --out "$work/gal" || fail "embed --split gallery"
"$fn" search --checkpoint "$ck" --gallery "$work/gal" --image "$work/q.txt" --query-ids "$work/q.ids.txt" \
  --boxes "$work/boxes.txt" --k 1 --html "$work/page.html" > "$work/search.txt" || fail "search --boxes"
hits=$(grep -c '(hit)$' "$work/search.txt")
boxed=$(grep -c '^query .*  box [0-9]*,[0-9]*,[0-9]*,[0-9]*$' "$work/search.txt")
[ "$boxed" -eq "$queries" ] || fail "search printed a box for $boxed of $queries queries"
grep -q 'class="crop"' "$work/page.html" || fail "the page draws no crop frame"
top1=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["retrieval"]["top_k_accuracy"]["1"])' \
  "$demo/run/eval.json") || fail "no retrieval top-1 in $demo/run/eval.json"
awk -v h="$hits" -v q="$queries" -v t="$top1" 'BEGIN { d = h / q - t; exit !(d < 1e-9 && d > -1e-9) }' ||
  fail "search found a first hit for $hits of $queries boxed queries; eval's top-1 is $top1"

"$fn" search --checkpoint "$ck" --gallery "$work/gal" --image "$work/q.txt" --data "$DATA" --k 1 \
  --html "$work/page_data.html" > "$work/search_data.txt" || fail "search --data"
data_hits=$(grep -c '(hit)$' "$work/search_data.txt")
[ "$data_hits" -eq "$hits" ] || fail "search --data found $data_hits first hits, --boxes with --query-ids $hits"
grep -v '^wrote' "$work/search.txt" > "$work/a.txt"
grep -v '^wrote' "$work/search_data.txt" > "$work/b.txt"
cmp "$work/a.txt" "$work/b.txt" || fail "search --data and search --boxes --query-ids printed other results"

first=$(head -1 "$work/q.txt")
err=$("$fn" search --checkpoint "$ck" --gallery "$work/gal" --image "$first" --box 10,20,5,40 --html "$work/bad.html" 2>&1) &&
  fail "an empty --box was accepted"
echo "$err" | grep -q -- '--box "10,20,5,40"' || fail "the refusal does not quote the box: $err"
# Photos without item ids ("-") are searched, not scored: metrics refuses them, naming the ids file.
err=$("$fn" metrics --query "$work/q_boxed" --gallery "$work/gal" 2>&1) && fail "metrics scored item-less photos"
echo "$err" | grep -q "q_boxed.ids.txt: no row has an item id" || fail "metrics' refusal: $err"

# --images FOLDER: every photo below it, in path order; --skip-bad names what it leaves out.
mkdir -p "$work/folder/sub"
sed -n 1,2p "$work/q.txt" | while read -r p; do cp "$p" "$work/folder/sub/$(basename "$(dirname "$p")")_$(basename "$p")"; done
echo "not a photo" > "$work/folder/broken.jpg"
echo "notes" > "$work/folder/readme.txt"
err=$("$fn" embed --checkpoint "$ck" --images "$work/folder" --out "$work/folder_emb" 2>&1) &&
  fail "embed read a broken photo"
echo "$err" | grep -q "folder/broken.jpg: not a JPEG or PNG file" || fail "the refusal does not name the photo: $err"
"$fn" embed --checkpoint "$ck" --images "$work/folder" --skip-bad --out "$work/folder_emb" 2> "$work/skip.txt" ||
  fail "embed --images FOLDER --skip-bad"
grep -q "skipped (--skip-bad): $work/folder/broken.jpg: not a JPEG or PNG file" "$work/skip.txt" ||
  fail "--skip-bad does not name the broken photo: $(cat "$work/skip.txt")"
[ "$(wc -l < "$work/folder_emb.ids.txt")" -eq 2 ] || fail "embed of the folder: not the 2 photos below it"
cut -d" " -f1 "$work/folder_emb.ids.txt" | LC_ALL=C sort -c || fail "the folder's photos are not in path order"
echo "search_boxes: $queries boxed queries embed as the dataset's; $hits first hits, eval's top-1 $top1"
