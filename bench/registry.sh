#!/usr/bin/env bash
# End-to-end registry benchmark (issue 6, docs/benchmarks.md "Registry"):
# builds berth and bench/registry, which, for each run, starts `berth
# server` (embedded etcd, a temporary data dir, a free loopback port, the
# registry at /v2/ over plain HTTP), creates two repositories and fetches a
# token with the ECR API (aws-sdk-go-v2), and then:
#   throughput: ROUNDS times, pushes an image of LAYERS × LAYER_MIB MiB of
#               fresh incompressible bytes (go-containerregistry remote.Write),
#               pulls it back (remote.Image, config, every layer read to the
#               end), and copies the same bytes file to file beside the data
#               dir (copy_file_range + fsync; read/write + fsync; read/write
#               without fsync; read/write + SHA-256 + fsync): the peers of
#               the same round;
#   latency:    pushes an image of SMALL_MIB MiB (SMALL_LAYERS layers), then
#               LATENCY_ROUNDS rounds (after one unmeasured) of CONCURRENCY
#               pulls started together, each its own client.
# The server is stopped and its data dir removed after each run.
#
# No root needed. Bounded: each run gives up after ${TIMEOUT:-10m}; one
# run with the defaults stores ~1 GiB (removed at its end) and takes ~30 s.
#
# Settings (environment): RUNS=3 ROUNDS=5 LAYERS=4 LAYER_MIB=50 JOBS=4
# CONCURRENCY=20 SMALL_MIB=10 SMALL_LAYERS=2 LATENCY_ROUNDS=10
# PROFILE= (a directory: the server then runs inside bench/registry, same
# server.Start, and writes a CPU profile of every push, every pull and each
# run's latency rounds there; index.txt says which file is which)
# BERTH_BIN= (a berth binary to use instead of building ./cmd/berth).
# TMPDIR decides the filesystem of the data dir and the file copies.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local PATH=$PATH:/usr/local/go/bin
if pgrep -a berth >&2; then
	echo "registry.sh: warning: other berth processes are running (above); figures will be disturbed" >&2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -n "${BERTH_BIN:-}" ]; then
	cp "$BERTH_BIN" "$tmp/berth"
else
	go build -o "$tmp/berth" ./cmd/berth
fi
go build -o "$tmp/registry" ./bench/registry
args=(-berth "$tmp/berth" -runs "${RUNS:-3}" -rounds "${ROUNDS:-5}" -layers "${LAYERS:-4}" -layer-mib "${LAYER_MIB:-50}"
	-jobs "${JOBS:-4}" -concurrency "${CONCURRENCY:-20}" -small-mib "${SMALL_MIB:-10}" -small-layers "${SMALL_LAYERS:-2}"
	-latency-rounds "${LATENCY_ROUNDS:-10}" -timeout "${TIMEOUT:-10m}" -v)
if [ -n "${PROFILE:-}" ]; then
	mkdir -p "$PROFILE"
	cp "$tmp/registry" "$PROFILE/registry" # the binary the profiles need
	args+=(-profile "$(cd "$PROFILE" && pwd)")
fi
"$tmp/registry" "${args[@]}"
