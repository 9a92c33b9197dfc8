#!/usr/bin/env bash
# netem.sh: an emulated two-tier cluster on one host, for comm tests and benchmarks.
#
# Each node is a network namespace; ranks on one node talk over that namespace's loopback (their own
# address routes through lo), nodes talk through veth pairs joined by a bridge that lives in a
# namespace of its own. Each node's uplink (its veth egress) is shaped with tc: netem (rate + delay)
# when the kernel has it, otherwise tbf (rate only; the delay is then reported as not emulated).
# Only addresses inside the namespaces created here are used; the host's network is never touched.
# Everything is removed on exit, failure or Ctrl-C. Names carry a unique prefix so that concurrent
# runs do not collide.
#
# Usage: netem.sh [--nodes N] [--rate 1gbit] [--delay 0.2ms] [--timeout SECONDS] -- COMMAND [ARGS...]
#
# COMMAND runs once per node, inside that node's namespace, with:
#   BATON_NETEM_NODE=<i>  BATON_NODE_RANK=<i>  BATON_NETEM_NODES=<N>
#   BATON_NETEM_ADDR=<this node's address>  BATON_NETEM_RATE=<rate>
#   BATON_NETEM_DELAY_EMULATED=1|0
# The script exits with the first non-zero exit status of the node commands (0 if all succeed).
# Requires root and iproute2 (`ip netns`, `tc`).
set -euo pipefail

nodes=2
rate=1gbit
delay=0.2ms
timeout_s=1800
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) nodes=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --delay) delay=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "netem: unknown option $1" >&2; exit 2 ;;
  esac
done
if [ $# -eq 0 ]; then echo "netem: no command given (use -- COMMAND)" >&2; exit 2; fi
if [ "$(id -u)" -ne 0 ]; then echo "netem: needs root (network namespaces)" >&2; exit 77; fi
if ! ip netns list >/dev/null 2>&1; then echo "netem: 'ip netns' unavailable" >&2; exit 77; fi

# Short unique prefix: interface names are limited to 15 characters, namespace names are not.
prefix="bnem$$r${RANDOM}"
sw="${prefix}-sw"
pids=()

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  # Deleting a namespace deletes the veth ends and the bridge inside it; processes still running
  # inside a node namespace are killed first so that the namespace can go.
  for ((i = 0; i < nodes; i++)); do
    for pid in $(ip netns pids "${prefix}-n$i" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "${prefix}-n$i" 2>/dev/null || true
  done
  ip netns del "$sw" 2>/dev/null || true
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ip netns add "$sw"
ip -n "$sw" link add br0 type bridge
ip -n "$sw" link set br0 up
delay_emulated=1
for ((i = 0; i < nodes; i++)); do
  ns="${prefix}-n$i"
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip -n "$sw" link add "p$i" type veth peer name eth0 netns "$ns"
  ip -n "$sw" link set "p$i" master br0 up
  ip -n "$ns" addr add "10.77.0.$((i + 1))/24" dev eth0
  ip -n "$ns" link set eth0 up
  if ! tc -n "$ns" qdisc add dev eth0 root netem delay "$delay" rate "$rate" limit 100000 2>/dev/null; then
    # No sch_netem in this kernel: shape the rate only. The burst must hold one TSO segment.
    delay_emulated=0
    tc -n "$ns" qdisc add dev eth0 root tbf rate "$rate" burst 256kb latency 100ms
  fi
done
if [ "$delay_emulated" -eq 0 ]; then
  echo "netem: kernel lacks the netem qdisc; inter-node links shaped to $rate without the $delay delay" >&2
fi

for ((i = 0; i < nodes; i++)); do
  ip netns exec "${prefix}-n$i" env BATON_NETEM_NODE="$i" BATON_NODE_RANK="$i" \
    BATON_NETEM_NODES="$nodes" BATON_NETEM_ADDR="10.77.0.$((i + 1))" BATON_NETEM_RATE="$rate" \
    BATON_NETEM_DELAY_EMULATED="$delay_emulated" timeout "$timeout_s" "$@" &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do
  rc=0
  wait "$pid" || rc=$?
  if [ "$status" -eq 0 ]; then status=$rc; fi
done
pids=()
exit "$status"
