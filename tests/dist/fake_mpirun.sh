#!/bin/bash
# A stand-in for mpirun in launch_signals.sh: writes the words it was started with, its process group and the
# signals it gets to $FAKE_MPIRUN_LOG; SIGINT (Open MPI's abort) ends it with exit 7.
log=${FAKE_MPIRUN_LOG:?}
echo "pgid $(cut -d" " -f5 /proc/$$/stat)" >"$log"
echo "args $*" >>"$log"
trap 'echo USR1 >>"$log"' USR1
trap 'echo INT >>"$log"; exit 7' INT
echo started >>"$log"
while :; do sleep 0.05; done
