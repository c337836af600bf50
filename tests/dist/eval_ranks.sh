#!/usr/bin/env bash
# `fashionnet embed` and `eval` over MPI ranks give what one process gives (issue 20, item 4;
# docs/distributed.md, "Evaluation and embedding over ranks"): on a tiny synthetic In-shop set and a
# checkpoint trained for 4 steps, each command runs once alone and once under the launcher, and
#   - the ids files are identical, and the .npy embeddings equal (bitwise, or else within 1e-5);
#   - eval --json is identical but for its timings;
#   - rank 0 alone prints and writes (one "wrote" line, one report);
#   - embed --images --skip-bad keeps the same rows over ranks as alone, naming each unreadable photo once;
#   - with --skip-bad and a broken image in the last rank's shard, the rows kept are the same, and the image
#     is named in a warning, once;
#   - without --skip-bad, the job stops at once (no watchdog wait), naming the image.
#
# usage: eval_ranks.sh FASHIONNET WORKDIR LAUNCHER...
#   e.g. eval_ranks.sh build/bin/fashionnet /tmp/er mpiexec --oversubscribe --allow-run-as-root -n 2
# Used by ctest (CMakeLists.txt, mpi_eval_ranks_np*).
source "$(dirname "$0")/script_common.sh"
run synth.log "$bin" synth --out data --benchmark inshop --items 12 --seed 3 --size 96
run train.log "$bin" train --data data --benchmark inshop --preset tiny --out run --steps 2,2 --validate-every 0 \
  --device cpu
ckpt=run/final.safetensors
common=(--checkpoint "$ckpt" --device cpu --batch 5)  # batches of 5: the shards split batches differently

# npy_diff A B: "bitwise", "close" (same shape, every value within 1e-5) or "different".
npy_offset() {  # format 1.0: 10 bytes, then the header of the length at bytes 8-9 (little-endian)
  set -- $(od -A n -t u1 -j 8 -N 2 "$1")
  echo $((10 + $1 + 256 * $2))
}
npy_diff() {
  if cmp -s "$1" "$2"; then echo bitwise; return; fi
  local oa ob
  oa=$(npy_offset "$1") ob=$(npy_offset "$2")
  if [ "$oa" != "$ob" ] || ! cmp -s <(head -c "$oa" "$1") <(head -c "$ob" "$2"); then echo different; return; fi
  if paste <(od -A n -v -t f4 -j "$oa" "$1" | tr -s ' ' '\n' | sed '/^$/d') \
           <(od -A n -v -t f4 -j "$ob" "$2" | tr -s ' ' '\n' | sed '/^$/d') |
     awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > 1e-5 || NF != 2) bad = 1 } END { exit bad }'; then
    echo close
  else
    echo different
  fi
}
same_embeddings() {  # same_embeddings WHAT PREFIX_ONE PREFIX_MANY
  cmp -s "$2.ids.txt" "$3.ids.txt" || { diff "$2.ids.txt" "$3.ids.txt" | head >&2; fail "$1: the ids files differ"; }
  cmp -s "$2.root.txt" "$3.root.txt" || fail "$1: the root files differ"
  local d
  d=$(npy_diff "$2.npy" "$3.npy")
  [ "$d" != different ] || fail "$1: the embeddings differ by more than 1e-5"
  echo "ok: $1: $(wc -l <"$2.ids.txt") rows, ids identical, embeddings $([ "$d" = bitwise ] && echo "bitwise equal" \
    || echo "within 1e-5 (not bitwise)")"
}
one_writer() {  # one_writer WHAT LOG PATTERN: the line appears exactly once (rank 0's)
  [ "$(grep -c "$3" "$2")" = 1 ] || { cat "$2" >&2; fail "$1: expected one '$3' line (rank 0's)"; }
}

# embed: each split of the dataset, and plain photos (7 of them: uneven shards).
for split in query gallery all; do
  run one_$split.log "$bin" embed "${common[@]}" --data data --split $split --out one/$split
  run many_$split.log "${launch[@]}" "$bin" embed "${common[@]}" --data data --split $split --out many/$split
  one_writer "embed --split $split" many_$split.log '^wrote '
  same_embeddings "embed --split $split" one/$split many/$split
done
sed -n '1,7p' one/all.ids.txt | awk '{ print "data/" $1 }' >photos.txt
run one_photos.log "$bin" embed "${common[@]}" --images photos.txt --out one/photos
run many_photos.log "${launch[@]}" "$bin" embed "${common[@]}" --images photos.txt --out many/photos
one_writer "embed --images" many_photos.log '^wrote '
same_embeddings "embed --images (7 photos)" one/photos many/photos
# --images with --skip-bad: an unreadable photo in each rank's share; the kept rows as one process keeps them,
# the rows' paths gathered with them, each skipped photo named once.
echo "not a JPEG" >broken_photo.jpg
{ echo broken_photo.jpg; sed -n '1,3p' photos.txt; echo missing_photo.png; sed -n '4,7p' photos.txt; } >photos_bad.txt
run one_photos_bad.log "$bin" embed "${common[@]}" --images photos_bad.txt --skip-bad --out one/photos_bad
run many_photos_bad.log "${launch[@]}" "$bin" embed "${common[@]}" --images photos_bad.txt --skip-bad \
  --out many/photos_bad
cmp -s one/photos.ids.txt one/photos_bad.ids.txt || fail "embed --images --skip-bad: not the 7 good photos' rows"
same_embeddings "embed --images --skip-bad (7 photos, 2 unreadable)" one/photos_bad many/photos_bad
for f in broken_photo.jpg missing_photo.png; do
  [ "$(grep -c "skipped (--skip-bad): $f" many_photos_bad.log)" = 1 ] ||
    { cat many_photos_bad.log >&2; fail "embed --images --skip-bad: $f not named once"; }
done

# eval: retrieval (predicted and ground-truth landmarks) and the heads' metrics.
run one_eval.log "$bin" eval "${common[@]}" --data data --json one/eval.json --html one/html
run many_eval.log "${launch[@]}" "$bin" eval "${common[@]}" --data data --json many/eval.json --html many/html
one_writer eval many_eval.log '^report: '
diff <(grep -v '_seconds"' one/eval.json) <(grep -v '_seconds"' many/eval.json) >&2 ||
  fail "eval --json: the metrics differ"
[ -f many/html/report.html ] || fail "eval --html: no report.html"
echo "ok: eval: --json identical but for the timings ($(grep -c . one/eval.json) lines)"

# A broken image in the last shard (the last gallery image): --skip-bad drops its row on that rank alone.
cp -r data bad
broken=$(tail -n 1 one/gallery.ids.txt | cut -d ' ' -f 1)
echo "not a JPEG" >"bad/$broken"
run one_bad.log "$bin" embed "${common[@]}" --data bad --split gallery --skip-bad --out one/bad
run many_bad.log "${launch[@]}" "$bin" embed "${common[@]}" --data bad --split gallery --skip-bad --out many/bad
grep -q "$broken" one/bad.ids.txt && fail "--skip-bad: the broken image still has a row"
for log in one_bad.log many_bad.log; do  # named once, by the rank that met it
  [ "$(grep -c "skipped (--skip-bad): .*$broken: not a JPEG or PNG file" $log)" = 1 ] ||
    { cat $log >&2; fail "--skip-bad: $log does not name the skipped image once"; }
done
same_embeddings "embed --skip-bad (one broken image)" one/bad many/bad

# Without --skip-bad the rank with the broken image fails, and every rank stops at once, naming it.
start=$(date +%s)
"${launch[@]}" "$bin" embed "${common[@]}" --data bad --split gallery --out many/stop >stop.log 2>&1
rc=$?
elapsed=$(($(date +%s) - start))
[ $rc -ne 0 ] || fail "a broken image without --skip-bad: the job exited 0"
[ $elapsed -lt 60 ] || fail "a broken image: the job took ${elapsed} s to stop (a watchdog wait?)"
grep -q "$(basename "$broken")" stop.log || { cat stop.log >&2; fail "the error does not name $broken"; }
grep -q "inference stopped: rank [0-9]* of [0-9]* failed" stop.log ||
  { cat stop.log >&2; fail "the other ranks do not name the rank that failed"; }
[ ! -e many/stop.npy ] || fail "a failed job wrote many/stop.npy"
echo "ok: a broken image without --skip-bad stops every rank in ${elapsed} s (exit $rc), naming it"
echo "PASS"
