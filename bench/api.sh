#!/usr/bin/env bash
# Whole-stack API benchmark: builds berth, starts `berth server` on a free
# loopback port with a temporary data dir, and runs bench/apiload against it
# for each operation. Bounded: ${DURATION:-10s} per operation.
# Pin the server and the load generator to separate cores where possible so
# the figures are comparable run to run: SERVER_CPUS=0 LOAD_CPUS=1.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local PATH=$PATH:/usr/local/go/bin
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
go build -o "$tmp/berth" ./cmd/berth
go build -o "$tmp/apiload" ./bench/apiload
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
taskset_server=() taskset_load=()
if command -v taskset >/dev/null && [ -n "${SERVER_CPUS:-}" ]; then
	taskset_server=(taskset -c "$SERVER_CPUS"); taskset_load=(taskset -c "${LOAD_CPUS:-$SERVER_CPUS}")
fi
"${taskset_server[@]}" "$tmp/berth" server --data-dir "$tmp/data" --listen "127.0.0.1:$port" --log-level error &
pid=$!
for _ in $(seq 1 200); do
	curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
	sleep 0.1
done
for op in DescribeClusters DescribeTaskDefinition; do
	"${taskset_load[@]}" "$tmp/apiload" -endpoint "http://127.0.0.1:$port" -data-dir "$tmp/data" \
		-op "$op" -c "${WORKERS:-32}" -d "${DURATION:-10s}"
done
