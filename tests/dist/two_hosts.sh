#!/usr/bin/env bash
# Two hosts on one machine (tests/dist/netns_hosts.sh: network namespaces joined by a veth pair, mpirun's
# daemon started on the second through an rsh agent, MPI over TCP between them). Checks:
#   - one rank per host, each local rank 0 of 1;
#   - test_allreduce (buckets, odd sizes, tensors spanning buckets, non-blocking collectives) across the hosts;
#   - `fashionnet train` on the two hosts x batch 8 ends bitwise equal to one process with batch 16 in 2 parts;
#   - an error on the second host names its rank and host and ends the job;
#   - a rank killed on the second host ends the job non-zero within 60 s.
# The file system is shared, as on a cluster with NFS. Needs root (ip netns, unshare): without it, says why
# and exits 77 (ctest: skipped).
#
# usage: FN_TEST_ALLREDUCE=TEST_ALLREDUCE two_hosts.sh FASHIONNET WORKDIR MPIRUN      (ctest: mpi_two_hosts)
here=$(cd "$(dirname "$0")" && pwd)
source "$here/script_common.sh"  # bin, work (entered), launch, fail, run
work=$PWD mpirun=${launch[0]}
allreduce=${FN_TEST_ALLREDUCE:-}
[ -x "$allreduce" ] || fail "FN_TEST_ALLREDUCE must name the test_allreduce executable (got '$allreduce')"
export OPENBLAS_NUM_THREADS=1  # bitwise equality needs the same BLAS thread count everywhere (train_ranks.sh)

source "$here/netns_hosts.sh"

# 1. One rank per host.
run where.log on_A "${mpi[@]}" sh -c 'echo "$(hostname) $OMPI_COMM_WORLD_LOCAL_RANK $OMPI_COMM_WORLD_LOCAL_SIZE"'
# The ranks' lines only: under load mpirun's rsh agent may add a warning of its own to the log (setpgid on a
# daemon that has already started, "Permission denied"), which is harmless.
[ "$(grep -E '^[^ ]+ [0-9]+ [0-9]+$' where.log | sort | tr '\n' ' ')" = "$A 0 1 $B 0 1 " ] ||
  { cat where.log >&2; fail "the ranks are not one per host"; }
echo "ok: one rank on each host ($A, $B), each local rank 0 of 1"

# 2. The collectives across the hosts.
run allreduce.log on_A "${mpi[@]}" "$allreduce"
echo "ok: test_allreduce across the hosts: $(sed 's/\x1b\[[0-9;]*m//g' allreduce.log | grep -o 'All tests passed.*' | head -1)"

# 3. Training across the hosts, bitwise equal to one process.
run synth.log "$bin" synth --out data --benchmark inshop --items 24 --views 4 --seed 3 --size 64
train=("$bin" train --data "$PWD/data" --preset tiny --threads 1 --device cpu)
run one.log "${train[@]}" --steps 6,6 --batch 16 --parts 2 --out "$work/one"
run two.log on_A "${mpi[@]}" "${train[@]}" --steps 6,6 --batch 8 --out "$work/two" --check-identical-every 1
a=$("$bin" inspect one/final.safetensors --checksum | sed -n 's/^checksum: //p')
b=$("$bin" inspect two/final.safetensors --checksum | sed -n 's/^checksum: //p')
[ -n "$a" ] && [ "$a" = "$b" ] || fail "2 hosts x batch 8 ($b) and 1 process x batch 16 in 2 parts ($a) differ"
echo "ok: 2 hosts x batch 8 against 1 process x batch 16 in 2 parts, 12 steps: bitwise equal ($a)"

# 4. An error on the second host: the rank and the host named, the job ended.
cp -r data bad
for f in $(find bad/img -name '*.jpg' | sort | awk 'NR % 2 == 0'); do echo broken >"$f"; done
start=$SECONDS
if on_A "${mpi[@]}" "$bin" train --data "$PWD/bad" --preset tiny --threads 1 --device cpu --steps 6,6 --batch 8 \
     --out "$work/badrun" >bad.log 2>&1; then
  fail "training on unreadable images succeeded"
fi
grep -q "error on rank [01] of 2 (local 0 of 1) on \($A\|$B\)," bad.log ||
  { cat bad.log >&2; fail "the error does not name the rank and its host"; }
echo "ok: an error ends the job in $((SECONDS - start)) s: $(grep -o 'error on rank [01] of 2[^:]*' bad.log | head -1)"

# 5. A rank killed on the second host.
on_A "${mpi[@]}" "${train[@]}" --steps 100000,1 --batch 8 --out "$work/killed" >killed.log 2>&1 &
job=$!
for _ in $(seq 1 150); do
  grep -q 'stage1\]' killed.log 2>/dev/null && break
  sleep 0.2
done
victim=""
for p in $(pgrep -f -- "^$bin train .*--out $work/killed"); do
  [ "$(readlink /proc/$p/ns/net)" = "$(ip netns exec $B readlink /proc/self/ns/net)" ] && victim=$p
done
[ -n "$victim" ] || { kill $job; cat killed.log >&2; fail "no rank on $B to kill"; }
start=$SECONDS
kill -9 "$victim"
for _ in $(seq 1 300); do
  kill -0 $job 2>/dev/null || break
  sleep 0.2
done
kill -0 $job 2>/dev/null && fail "the job still runs 60 s after the rank on $B was killed"
wait $job
rc=$?
[ $rc -ne 0 ] || fail "the job exited 0 after a rank was killed"
echo "ok: a rank killed on $B ends the job non-zero (exit $rc) in $((SECONDS - start)) s"
echo "all two_hosts checks passed"
