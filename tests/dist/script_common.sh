# Sourced by the scripts of tests/dist (eval_ranks.sh, train_ranks.sh, two_hosts.sh), called as
#   SCRIPT FASHIONNET WORKDIR LAUNCHER...
# Sets bin (the fashionnet executable, absolute), work (WORKDIR, made empty and entered) and launch (the
# launcher's words, e.g. mpiexec --oversubscribe -n 2), and defines fail and run; an unknown command fails.
set -u
[ $# -ge 3 ] || { echo "usage: $0 FASHIONNET WORKDIR LAUNCHER..." >&2; exit 2; }
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
work=$2
shift 2
launch=("$@")
fail() { echo "FAIL: $*" >&2; exit 1; }
# A command that does not exist (a helper lost in an edit) fails the test instead of being skipped with a
# message: bash runs this handler in a subshell, so it ends the script by its pid.
command_not_found_handle() {
  echo "FAIL: no command '$1' (the test script is broken)" >&2
  kill -TERM $$
  exit 127
}
run() {  # run LOG CMD...: the command's output into LOG; a non-zero exit fails the test, showing it
  local log=$1
  shift
  "$@" >"$log" 2>&1 || { local rc=$?; cat "$log" >&2; fail "exit $rc from: $*"; }
}
rm -rf "$work" && mkdir -p "$work" && cd "$work" || fail "cannot make $work"
