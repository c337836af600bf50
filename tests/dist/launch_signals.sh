#!/bin/bash
# What `fashionnet launch` does with the terminal's Ctrl-C, against a stand-in for mpirun (fake_mpirun.sh),
# so that it runs without MPI:
#   - mpirun is started with the options before --, then this executable's absolute path and the command;
#   - mpirun runs in a process group of its own, so a Ctrl-C at the terminal reaches the launcher only;
#   - for train, the first Ctrl-C (or SIGTERM) becomes SIGUSR1 to mpirun (stop after the step, save), the
#     second SIGINT (Open MPI's abort); the launcher exits with mpirun's status;
#   - for another command the first Ctrl-C is SIGINT;
#   - no command, or no mpirun, is a clear error.
# The same with the real mpirun and a training job: train_ranks.sh, check 7.
#
# usage: launch_signals.sh FASHIONNET WORKDIR     (ctest: launch_signals)
set -u
[ $# -eq 2 ] || { echo "usage: $0 FASHIONNET WORKDIR" >&2; exit 2; }
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
work=$2
here=$(cd "$(dirname "$0")" && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }
rm -rf "$work" && mkdir -p "$work" && cd "$work" || fail "cannot make $work"
export FN_MPIRUN=$here/fake_mpirun.sh
export FAKE_MPIRUN_LOG=$PWD/mpirun.log

wait_for() {  # wait_for PATTERN: up to 10 s for a line of mpirun.log
  for _ in $(seq 1 100); do
    grep -q "^$1" mpirun.log 2>/dev/null && return 0
    sleep 0.1
  done
  cat mpirun.log launch.log >&2
  fail "mpirun never logged '$1'"
}
# Starts the launcher as a terminal would, in a process group of its own (its pid), which $job holds.
start() {  # start COMMAND...
  rm -f mpirun.log
  setsid "$bin" launch -n 3 --oversubscribe -- "$@" >launch.log 2>&1 &
  job=$!
  wait_for started
}
ctrl_c() { kill -INT -- "-$job"; }  # what the terminal does: SIGINT to its foreground process group
wait_end() {
  for _ in $(seq 1 100); do
    kill -0 $job 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 $job 2>/dev/null; then
    ps -o pid,ppid,stat,wchan:24,args --pid $job --ppid $job >&2  # a zombie mpirun: its end was missed
    kill -9 -- "-$job"
    fail "the launcher still runs"
  fi
  wait $job
  rc=$?
}

# 1. The words, the process group, and Ctrl-C twice on a training job.
start train --data d --out r
grep -qx "args -n 3 --oversubscribe $bin train --data d --out r" mpirun.log ||
  fail "mpirun was started with: $(grep '^args' mpirun.log)"
[ "$(sed -n 's/^pgid //p' mpirun.log)" != "$job" ] || fail "mpirun runs in the launcher's process group"
ctrl_c
wait_for USR1
sleep 0.3
kill -0 $job 2>/dev/null || fail "the launcher ended at the first Ctrl-C"
grep -q 'stopping: every rank ends its step' launch.log || fail "the first Ctrl-C is not announced"
ctrl_c
wait_end
grep -q '^INT' mpirun.log || fail "the second Ctrl-C did not reach mpirun as SIGINT"
[ "$rc" = 7 ] || fail "the launcher exited $rc, mpirun 7"
[ "$(grep -c '^USR1' mpirun.log)" = 1 ] || fail "mpirun got SIGUSR1 $(grep -c '^USR1' mpirun.log) times"
echo "ok: train: Ctrl-C -> SIGUSR1 to mpirun, Ctrl-C again -> SIGINT; exit $rc, mpirun's"

# 2. SIGTERM to the launcher (a scheduler ending the job) stops a training job with a save too.
start train --data d --out r
kill -TERM $job
wait_for USR1
ctrl_c
wait_end
echo "ok: train: SIGTERM -> SIGUSR1 to mpirun"

# 3. Another command: nothing to save, the first Ctrl-C is Open MPI's abort.
start eval --checkpoint c
ctrl_c
wait_end
grep -q '^USR1' mpirun.log && fail "eval: mpirun got SIGUSR1"
grep -q '^INT' mpirun.log || fail "eval: Ctrl-C did not reach mpirun as SIGINT"
echo "ok: eval: Ctrl-C -> SIGINT to mpirun (exit $rc)"

# 4. Errors.
"$bin" launch -n 2 >err.log 2>&1
rc=$?
[ $rc = 2 ] && grep -q 'no command after --' err.log || fail "no command: exit $rc, $(cat err.log)"
FN_MPIRUN=/nonexistent/mpirun "$bin" launch -n 2 -- train >err.log 2>&1
rc=$?
[ $rc = 127 ] && grep -q 'cannot start /nonexistent/mpirun' err.log || fail "no mpirun: exit $rc, $(cat err.log)"
echo "ok: no command (exit 2), no mpirun (exit 127) say so"
echo "all launch_signals checks passed"
