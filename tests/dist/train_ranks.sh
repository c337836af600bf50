#!/usr/bin/env bash
# `fashionnet train` over MPI ranks (issue 20, items 2-6; docs/distributed.md): on a tiny synthetic In-shop set,
#   - one process with --dist-alone (the bucketed path with no peers) ends bitwise where a plain run ends;
#   - 2 ranks x batch 8 end with parameters (and momenta) bitwise equal to one process with batch 16 in 2 loss
#     parts (--parts 2), and the ranks' parameters are checked bitwise equal at every step
#     (--check-identical-every 1);
#   - the same with validation every 3 steps (its images split over the ranks): equal figures, equal best;
#   - rank 0 alone prints the run's lines; config.json states the ranks and the global batch;
#   - a 2-rank resume of a 1-rank checkpoint ends bitwise where the 1-rank resume ends;
#   - a leftover temporary checkpoint of a dead process is removed at the next start, which says so;
#   - an error on one rank (unreadable images, no --skip-bad) ends the job non-zero, naming the rank, the last
#     good checkpoint untouched;
#   - a rank killed with SIGKILL ends the job non-zero within a bounded time;
#   - SIGUSR1 to the launcher (which Open MPI forwards to every rank) stops the job after a step, saved once;
#   - Ctrl-C on `fashionnet launch` does the same (exit 130), the checkpoint holding the step it names.
# Every process runs one BLAS thread (OPENBLAS_NUM_THREADS=1): the chunking of the Winograd filter gradient
# follows the thread count, so bitwise equality needs the same count in the one process as in each rank.
#
# usage: train_ranks.sh FASHIONNET WORKDIR LAUNCHER...
#   e.g. train_ranks.sh build/bin/fashionnet /tmp/tr mpiexec --oversubscribe --allow-run-as-root -n 2
# Used by ctest (CMakeLists.txt, mpi_train_ranks). The launcher must start 2 ranks.
source "$(dirname "$0")/script_common.sh"
export OPENBLAS_NUM_THREADS=1
checksum() { "$bin" inspect "$1" --checksum | sed -n 's/^checksum: //p'; }
same_tensors() {  # same_tensors WHAT A B
  local a b
  a=$(checksum "$2") b=$(checksum "$3")
  [ -n "$a" ] && [ "$a" = "$b" ] || fail "$1: $2 ($a) and $3 ($b) differ"
  echo "ok: $1: bitwise equal ($a)"
}
run synth.log "$bin" synth --out data --benchmark inshop --items 24 --views 4 --seed 3 --size 64
train=("$bin" train --data data --preset tiny --threads 1 --device cpu)  # tiny: validate_every 0

# 1. Two ranks against one process with the same global batch and loss parts.
run one.log "${train[@]}" --steps 6,6 --batch 16 --parts 2 --out one
run two.log "${launch[@]}" "${train[@]}" --steps 6,6 --batch 8 --out two --check-identical-every 1
same_tensors "2 ranks x batch 8 against 1 process x batch 16 in 2 parts, 12 steps" one/final.safetensors two/final.safetensors
[ "$(grep -c '^FashionNet tiny' two.log)" = 1 ] || fail "the run's first line is printed $(grep -c '^FashionNet tiny' two.log) times"
grep -q '2 ranks x batch 8 = global batch 16' two.log || fail "the first line does not state the ranks and the global batch"
grep -q '"global_batch": 16' two/config.json && grep -q '"ranks": 2' two/config.json ||
  fail "config.json does not state the ranks and the global batch"
echo "ok: rank 0 alone prints; config.json and the first line state 2 ranks and the global batch of 16"

# 1a. One process on the data-parallel path alone (--dist-alone: a communicator of one, the gradients through
#     the buckets, swapped at the stage switch; what device_check runs with NCCL on a GPU): bitwise a plain run.
run plain.log "${train[@]}" --steps 6,6 --batch 16 --out plain
run alone.log "${train[@]}" --steps 6,6 --batch 16 --out alone --dist-alone
same_tensors "--dist-alone against a plain run, 12 steps" plain/final.safetensors alone/final.safetensors

# 1b. With validation every 3 steps (split over the ranks): the same figures, the same best checkpoint.
run oneval.log "${train[@]}" --steps 6,6 --batch 16 --parts 2 --out oneval --validate-every 3 --holdout 0.3
run twoval.log "${launch[@]}" "${train[@]}" --steps 6,6 --batch 8 --out twoval --validate-every 3 --holdout 0.3
figures() { sed -n 's/.*"step":\([0-9]*\),"validation":{.*"measure":"\([a-z0-9_]*\)".*"value":\([^,}]*\).*/\1 \2 \3/p' "$1"; }
[ -n "$(figures oneval/metrics.jsonl)" ] || fail "no validation line in oneval/metrics.jsonl"
[ "$(figures oneval/metrics.jsonl)" = "$(figures twoval/metrics.jsonl)" ] || fail "the validation figures differ"
echo "ok: validation over 2 ranks: the same $(figures oneval/metrics.jsonl | wc -l) figures as 1 process"
same_tensors "validated: best.safetensors" oneval/best.safetensors twoval/best.safetensors
same_tensors "validated: final.safetensors" oneval/final.safetensors twoval/final.safetensors

# 2. Resume a 1-rank checkpoint (after step 8, in stage 2: a stop in stage 1 would add a checkpoint there, and
#    so a candidate for stage1_best) on 1 rank and on 2 ranks.
run part.log "${train[@]}" --steps 6,6 --batch 16 --parts 2 --out part --stop-after 8
run resume1.log "${train[@]}" --resume part/last.safetensors --out resume1
run resume2.log "${launch[@]}" "${train[@]}" --resume part/last.safetensors --out resume2
grep -q 'resuming a run of 1 rank on 2' resume2.log || fail "the 2-rank resume does not say it changed the ranks"
same_tensors "a 2-rank resume of a 1-rank checkpoint against the 1-rank resume" resume1/final.safetensors resume2/final.safetensors
same_tensors "a resumed run against the run without a stop" one/final.safetensors resume1/final.safetensors

# 3. The temporary file of a process that died while writing a checkpoint: removed at the next start.
sh -c 'exit 0' &
dead=$!
wait $dead
echo partial >"part/last.safetensors.tmp.$dead"
run resume3.log "${train[@]}" --resume part/last.safetensors --out part --steps 6,6
grep -q "removed part/last.safetensors.tmp.$dead" resume3.log || fail "the leftover temporary file is not reported"
[ ! -e "part/last.safetensors.tmp.$dead" ] || fail "the leftover temporary file is still there"
echo "ok: the temporary file of a dead process is removed and reported"

# 4. An error on a rank ends every rank, naming it; the last good checkpoint survives.
cp -r data bad
for f in $(find bad/img -name '*.jpg' | sort | awk 'NR % 2 == 0'); do echo broken >"$f"; done
cp two/last.safetensors keep.safetensors
mkdir -p badrun && cp two/last.safetensors badrun/last.safetensors
start=$SECONDS
if "${launch[@]}" "$bin" train --data bad --preset tiny --threads 1 --device cpu --steps 6,6 --batch 8 --out badrun \
     >bad.log 2>&1; then
  fail "training on unreadable images succeeded"
fi
grep -q 'error on rank [01] of 2' bad.log || { cat bad.log >&2; fail "the error does not name the rank"; }
cmp -s keep.safetensors badrun/last.safetensors || fail "the failed run changed the last checkpoint"
echo "ok: an error on one rank ends the job in $((SECONDS - start)) s: $(grep -o 'error on rank [01] of 2[^:]*' bad.log | head -1)"

# A long run of 2 ranks in the background, once it has made a step: its launcher's pid in $job.
start_long_run() {  # start_long_run OUT
  "${launch[@]}" "${train[@]}" --steps 100000,1 --batch 8 --out "$1" >"$1.log" 2>&1 &
  job=$!
  for _ in $(seq 1 100); do
    grep -q 'stage1\]' "$1.log" 2>/dev/null && break
    sleep 0.2
  done
}
# Waits up to SECONDS for $job to end; fails naming WHAT otherwise. The job's exit status in $rc.
wait_job_end() {  # wait_job_end SECONDS OUT WHAT
  for _ in $(seq 1 $(($1 * 5))); do
    kill -0 $job 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 $job 2>/dev/null; then
    pkill -9 -f -- "--out $2"
    fail "the job still runs $1 s after $3"
  fi
  wait $job
  rc=$?
}

# 5. A rank killed with SIGKILL: the job ends non-zero within the bound.
start_long_run killed
victim=$(pgrep -f -- "^$bin train .*--out killed" | tail -1)  # a rank, not the launcher
[ -n "$victim" ] || { kill $job; fail "no rank to kill"; }
start=$SECONDS
kill -9 "$victim"
wait_job_end 60 killed "a rank was killed"
[ "$rc" -ne 0 ] || fail "the job exited 0 after a rank was killed"
echo "ok: a killed rank ends the job non-zero (exit $rc) in $((SECONDS - start)) s"

# 6. Stop with a save: SIGUSR1 to the launcher.
start_long_run usr1
kill -USR1 $job
wait_job_end 30 usr1 "SIGUSR1"
[ "$(grep -c 'stopped: saved usr1/last.safetensors' usr1.log)" = 1 ] || { tail -c 2000 usr1.log >&2; fail "SIGUSR1 did not save once"; }
echo "ok: SIGUSR1 to the launcher: $(grep -o 'stopped: saved.*' usr1.log) (exit $rc)"
# 7. Ctrl-C on `fashionnet launch` (SIGINT to its process group, as a terminal sends it): saved once, exit 130.
rm -rf ctrlc
FN_MPIRUN=${launch[0]} setsid "$bin" launch "${launch[@]:1}" -- train --data data --preset tiny --threads 1 \
  --device cpu --steps 100000,1 --batch 8 --out ctrlc >ctrlc.log 2>&1 &
job=$!
for _ in $(seq 1 100); do
  grep -q 'stage1\]' ctrlc.log 2>/dev/null && break
  sleep 0.2
done
kill -INT -- "-$job"
wait_job_end 30 ctrlc "Ctrl-C on fashionnet launch"
[ "$rc" = 130 ] || { tail -c 2000 ctrlc.log >&2; fail "Ctrl-C on fashionnet launch: exit $rc, not 130"; }
[ "$(grep -c 'stopped: saved ctrlc/last.safetensors' ctrlc.log)" = 1 ] ||
  { tail -c 2000 ctrlc.log >&2; fail "Ctrl-C on fashionnet launch did not save once"; }
saved=$(sed -n 's/.*stopped: saved ctrlc\/last.safetensors at step \([0-9]*\).*/\1/p' ctrlc.log)
"$bin" inspect ctrlc/last.safetensors | grep -qE "^ +step +$saved\$" || fail "last.safetensors is not the step $saved it says"
echo "ok: Ctrl-C on fashionnet launch: saved once at step $saved (exit $rc)"
echo "all train_ranks checks passed"
