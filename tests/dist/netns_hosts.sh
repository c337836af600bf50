# Sourced by tests/dist/two_hosts.sh and bench/dist_two_hosts.sh: makes two hosts on this machine, network
# namespaces joined by a veth pair (10.77.0.1 and .2), each with a hostname of its own (a UTS namespace) and
# the pair's names in its /etc/hosts (/etc/netns/NS/hosts), and removes them when the script exits. mpirun
# runs on the first (on_A) and starts its daemon on the second through an rsh agent that enters that
# namespace where a cluster would use ssh; MPI's traffic goes over TCP on the veth pair (btl tcp,self, with
# btl_tcp_if_include and oob_tcp_if_include, as docs/distributed.md tells a user to set them).
# Needs: root, ip (iproute2), unshare; the caller's cwd (a scratch folder, $work), $mpirun and fail.
# Sets A and B (the host names), mpi (mpirun and its options for one rank per host: append the program) and
# on_A (runs a command on the first host). Exits 77 (skipped) where namespaces cannot be made.
[ "$(id -u)" = 0 ] || { echo "SKIPPED: two hosts need root for network namespaces (ip netns, unshare)"; exit 77; }
command -v ip >/dev/null && command -v unshare >/dev/null ||
  { echo "SKIPPED: two hosts need ip (iproute2) and unshare (util-linux)"; exit 77; }

# The two hosts, named for this run so that parallel runs do not meet.
tag=$$
A=fnA$tag B=fnB$tag
cleanup() {
  pkill -9 -f -- "--out $work/" 2>/dev/null
  ip netns del $A 2>/dev/null
  ip netns del $B 2>/dev/null
  rm -rf /etc/netns/$A /etc/netns/$B
}
trap cleanup EXIT
for h in $A $B; do
  ip netns add $h || { echo "SKIPPED: cannot make network namespaces here (ip netns add failed)"; exit 77; }
  ip -n $h link set lo up
  mkdir -p /etc/netns/$h
  printf '127.0.0.1 localhost\n10.77.0.1 %s\n10.77.0.2 %s\n' $A $B >/etc/netns/$h/hosts
done
ip link add va$tag netns $A type veth peer name vb$tag netns $B || fail "cannot make the veth pair"
ip -n $A addr add 10.77.0.1/24 dev va$tag && ip -n $B addr add 10.77.0.2/24 dev vb$tag || fail "cannot address the hosts"
ip -n $A link set va$tag up && ip -n $B link set vb$tag up || fail "cannot bring the link up"

# The rsh agent mpirun calls as `agent HOST COMMAND...`: like ssh, the command is one shell line.
cat >agent.sh <<AGENT
#!/bin/sh
host=\$1
shift
exec ip netns exec \$host unshare --uts sh -c "hostname \$host; \$*"
AGENT
chmod +x agent.sh
printf '%s slots=1\n%s slots=1\n' $A $B >hosts
mpi=("$mpirun" --allow-run-as-root --hostfile hosts -np 2 --mca plm_rsh_agent "$PWD/agent.sh"
     --mca plm_rsh_no_tree_spawn 1 --mca oob_tcp_if_include 10.77.0.0/24 --mca btl tcp,self
     --mca btl_tcp_if_include 10.77.0.0/24 -x OPENBLAS_NUM_THREADS
     --bind-to none)  # both hosts are this machine: each would bind its rank to core 0 (found: half the speed,
                      # 12 ms for a 4 KiB all-reduce instead of 18 us)
on_A() { ip netns exec $A unshare --uts bash -c 'hostname "$0"; exec "$@"' $A "$@"; }  # mpirun runs on host A
