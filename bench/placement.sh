#!/usr/bin/env bash
# End-to-end placement benchmark (issue 4, docs/benchmarks.md "Placement end
# to end"): builds berth and bench/placement, which, for each concurrency
# level, starts `berth server` (embedded etcd, temporary data dir, a free
# loopback port), `berth token create` and `berth agent --simulated N`,
# waits until the N instances are connected, fires CALLS RunTask(count=10)
# calls at that concurrency and measures the commit time, the latencies and
# the time until every task is RUNNING, then tears both processes down.
#
# No root, containerd or network setup needed. Bounded: CALLS calls per
# level, at most C in flight, and each level gives up after ${TIMEOUT:-10m}.
#
# Settings (environment): INSTANCES=1000 CALLS=3000 C=16,32,64
# TASK_CPU=32 TASK_MEMORY=64 INSTANCE_CPU=2048 INSTANCE_MEMORY=4096
# STRATEGY= (RunTask's default, random; or binpack-memory, spread-instance)
# PROFILE= (a directory: the server then runs inside bench/placement, same
# server.Start, and writes a CPU profile of the RunTask phase, a heap
# profile at its end and etcd's transaction counters there)
# BERTH_BIN= (a berth binary to use instead of building ./cmd/berth).
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local PATH=$PATH:/usr/local/go/bin
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -n "${BERTH_BIN:-}" ]; then
	cp "$BERTH_BIN" "$tmp/berth"
else
	go build -o "$tmp/berth" ./cmd/berth
fi
go build -o "$tmp/placement" ./bench/placement
args=(-berth "$tmp/berth" -instances "${INSTANCES:-1000}" -calls "${CALLS:-3000}" -c "${C:-16,32,64}"
	-task-cpu "${TASK_CPU:-32}" -task-memory "${TASK_MEMORY:-64}"
	-instance-cpu "${INSTANCE_CPU:-2048}" -instance-memory "${INSTANCE_MEMORY:-4096}"
	-strategy "${STRATEGY:-}" -timeout "${TIMEOUT:-10m}" -v)
if [ -n "${PROFILE:-}" ]; then
	mkdir -p "$PROFILE"
	cp "$tmp/placement" "$PROFILE/placement" # the binary the profiles need
	args+=(-profile "$(cd "$PROFILE" && pwd)")
fi
"$tmp/placement" "${args[@]}"
