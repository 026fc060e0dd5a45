#!/usr/bin/env bash
# End-to-end service scheduler benchmark (issue 5, docs/benchmarks.md
# "Services"): builds berth and bench/services, which, for each phase and
# run, starts `berth server` (embedded etcd, temporary data dir, a free
# loopback port), `berth token create` and `berth agent --simulated N`,
# waits until the N instances are connected, and then:
#   rollout: creates a service of TASKS tasks, waits until it is stable,
#            updates it to a new task definition revision and measures the
#            time until the new deployment is COMPLETED (the only one, every
#            task running) and the server's CPU time meanwhile;
#   steady:  measures the server's CPU with no service (BASELINE), creates
#            SERVICES services of PER_SERVICE tasks, waits until all are
#            stable, and measures the server's and the simulation's CPU over
#            WINDOW with nothing happening and no client calls.
# Both processes are torn down after each phase.
#
# No root, containerd or network setup needed. Bounded: every wait gives
# up after ${TIMEOUT:-5m} with a "DEADLINE PASSED" error; one run of both
# phases with the defaults takes about 3 minutes on 2 cores.
#
# Settings (environment): RUNS=1 PHASES=rollout,steady INSTANCES=200
# TASKS=1000 MIN=100 MAX=200 SERVICES=500 PER_SERVICE=2 WINDOW=60s
# BASELINE=30s SETTLE=10s POLL=1s POLL_MANY=2s HEALTH=true (a container health check,
# reported HEALTHY by the simulation at once; false: tasks count healthy
# 40 s after RUNNING, ECS's rule) TASK_CPU=64 TASK_MEMORY=128
# INSTANCE_CPU=2048 INSTANCE_MEMORY=4096
# PROFILE= (a directory: the server then runs inside bench/services, same
# server.Start, and writes a CPU profile of each measured window, heap
# profiles and etcd's transaction counters there)
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
go build -o "$tmp/services" ./bench/services
args=(-berth "$tmp/berth" -runs "${RUNS:-1}" -phases "${PHASES:-rollout,steady}"
	-instances "${INSTANCES:-200}" -instance-cpu "${INSTANCE_CPU:-2048}" -instance-memory "${INSTANCE_MEMORY:-4096}"
	-task-cpu "${TASK_CPU:-64}" -task-memory "${TASK_MEMORY:-128}" -health="${HEALTH:-true}"
	-tasks "${TASKS:-1000}" -min "${MIN:-100}" -max "${MAX:-200}"
	-services "${SERVICES:-500}" -per-service "${PER_SERVICE:-2}"
	-window "${WINDOW:-60s}" -baseline "${BASELINE:-30s}" -settle "${SETTLE:-10s}" -poll "${POLL:-1s}" -poll-many "${POLL_MANY:-2s}"
	-timeout "${TIMEOUT:-5m}" -v)
if [ -n "${PROFILE:-}" ]; then
	mkdir -p "$PROFILE"
	cp "$tmp/services" "$PROFILE/services" # the binary the profiles need
	args+=(-profile "$(cd "$PROFILE" && pwd)")
fi
"$tmp/services" "${args[@]}"
