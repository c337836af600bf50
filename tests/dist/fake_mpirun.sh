#!/bin/bash
# A stand-in for mpirun in launch_signals.sh: writes the words it was started with, its process group and the
# signals it gets to $FAKE_MPIRUN_LOG; SIGINT (Open MPI's abort) ends it with exit 7.
log=${FAKE_MPIRUN_LOG:?}
echo "pgid $(cut -d" " -f5 /proc/$$/stat)" >"$log"
echo "args $*" >>"$log"
trap 'echo USR1 >>"$log"' USR1
trap 'echo INT >>"$log"; exit 7' INT
echo started >>"$log"
# `wait` lets a trap run the moment its signal arrives (a foreground sleep would hold it back until the sleep
# ends), so this mpirun ends while the launcher is still busy with the signal it passed on: the moment a
# launcher that misses mpirun's end (SIGCHLD) would be caught.
while :; do
  sleep 0.05 &
  wait $!
done
