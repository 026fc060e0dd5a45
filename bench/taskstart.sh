#!/usr/bin/env bash
# Whole-system task start benchmark (issue 3, docs/benchmarks.md): builds
# berth, starts `berth up` (server and local agent in one process) on a free
# loopback port with a temporary data dir, and runs bench/taskstart against
# it: raw containerd starts of the probe image side by side with berth's
# RunTask → RUNNING, N sequential and N at concurrency C, then the resident
# memory of berth with RSS_TASKS running tasks. With SPLIT=1 (the default) it
# then runs `berth server` and a separate `berth agent` to report the agent's
# memory alone. Everything it started is torn down on exit: berth is killed,
# the containers and the image in its two containerd namespaces removed, and
# what a killed agent's CNI bridge left behind (scrub_network) cleaned up.
#
# Needs root, containerd, runc and the CNI plugins (scripts/deps.sh). Bounded:
# at most C containers or tasks run at once (RSS_TASKS for the memory
# reading), and the measuring program gives up after ${TIMEOUT:-30m}.
#
# Settings (environment): N=100 C=10 NETWORKS=bridge,host RSS_TASKS=20
# POLL=10ms CTR=0 (1: also time `ctr run -d`) SPLIT=1 BERTH_BIN= (a berth binary
# to use instead of building ./cmd/berth). The agent uses its own
# containerd namespace, bridge, subnet and metadata port, so a berth or an
# e2e run on the same machine is left alone: AGENT_NS=berth-bench-agent
# RAW_NS=berth-bench BRIDGE=berthbench0 SUBNET=10.214.0.0/16
# METADATA_LISTEN=169.254.170.2:51680.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	echo "bench/taskstart.sh needs root (containerd, CNI)" >&2
	exit 1
fi
# shellcheck source=../scripts/deps.sh
. scripts/deps.sh
need_runtime_deps
export GOTOOLCHAIN=local PATH=$PATH:/usr/local/go/bin

N=${N:-100} C=${C:-10} NETWORKS=${NETWORKS:-bridge,host} RSS_TASKS=${RSS_TASKS:-20}
POLL=${POLL:-10ms} CTR=${CTR:-0} SPLIT=${SPLIT:-1} TIMEOUT=${TIMEOUT:-30m}
AGENT_NS=${AGENT_NS:-berth-bench-agent} RAW_NS=${RAW_NS:-berth-bench}
BRIDGE=${BRIDGE:-berthbench0} SUBNET=${SUBNET:-10.214.0.0/16}
METADATA_LISTEN=${METADATA_LISTEN:-169.254.170.2:51680}
IMAGE=berth.bench/taskstart/probe:1

tmp=$(mktemp -d)
pids=()
teardown() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ -x "$tmp/taskstart" ]; then
		"$tmp/taskstart" -cleanup -raw-namespace "$RAW_NS" -agent-namespace "$AGENT_NS" -image "$IMAGE" || true
	fi
	# containerd removes a namespace only once it is empty, and collects the
	# image's content and snapshots in the background.
	local ns try
	for ns in "$RAW_NS" "$AGENT_NS"; do
		for try in $(seq 1 20); do
			ctr namespaces rm "$ns" >/dev/null 2>&1 && break
			ctr namespaces ls -q | grep -qx "$ns" || break
			sleep 0.5
		done
	done
	scrub_network
	rm -rf "$tmp"
}

# scrub_network removes what the agent's CNI bridge left behind when berth
# was killed before cleaning a task up: network namespaces under
# /run/berth/$AGENT_NS, masquerade rules named after $BRIDGE, forward rules
# for $SUBNET addresses, and the bridge. Only this script's names match.
scrub_network() {
	local dir=/run/berth/$AGENT_NS/netns f line chain n=0 name="name: \\\"berth-$BRIDGE-" prefix=${SUBNET%.*.*}.
	if [ -d "$dir" ]; then
		for f in "$dir"/*; do
			[ -e "$f" ] || continue
			umount "$f" 2>/dev/null || true
			rm -f "$f" && n=$((n + 1))
		done
		rmdir "$dir" "/run/berth/$AGENT_NS" 2>/dev/null || true
	fi
	# awk, not grep: no match is no failure under pipefail; ENVIRON, not -v,
	# keeps the backslash of the quoted comment.
	iptables-save -t nat | N=$name awk '$1 == "-A" && $2 == "POSTROUTING" && index($0, ENVIRON["N"])' | while read -r line; do
		eval "iptables -t nat ${line/-A/-D}" || true
	done
	iptables-save -t nat | N=$name awk '$1 == "-A" && $2 ~ /^CNI-/ && index($0, ENVIRON["N"]) {print $2}' | sort -u | while read -r chain; do
		iptables -t nat -F "$chain" && iptables -t nat -X "$chain" || true
	done
	iptables-save -t filter | awk -v p="$prefix" '$1 == "-A" && $2 == "CNI-FORWARD" && ($3 == "-s" || $3 == "-d") && index($4, p) == 1 && $4 ~ /\/32$/' |
		while read -r line; do
			eval "iptables -t filter ${line/-A/-D}" || true
		done
	ip link del "$BRIDGE" 2>/dev/null || true
	if [ $n -gt 0 ]; then echo "removed $n network namespaces berth left behind" >&2; fi
}
trap teardown EXIT

if [ -n "${BERTH_BIN:-}" ]; then
	cp "$BERTH_BIN" "$tmp/berth" # a berth built earlier (a tree that does not build right now)
else
	go build -o "$tmp/berth" ./cmd/berth
fi
go build -o "$tmp/taskstart" ./bench/taskstart
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$tmp/probe" ./internal/testimage/probe

agent_flags=(--containerd-namespace "$AGENT_NS" --bridge "$BRIDGE" --subnet "$SUBNET" --metadata-listen "$METADATA_LISTEN")
# A short cleanup wait: the measuring program waits after each round until the
# agent has removed the stopped tasks' containers and released their network.
agent_env=(ECS_IMAGE_PULL_BEHAVIOR=prefer-cached ECS_CONTAINER_STOP_TIMEOUT=2s ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION=1s
	ECS_LOGLEVEL=warn)

# wait_line LOG PID REGEX: prints the first line of LOG matching REGEX, waiting
# up to 60 s; fails if the process PID exits first.
wait_line() {
	local log=$1 pid=$2 re=$3 deadline=$((SECONDS + 60)) line
	while [ $SECONDS -lt $deadline ]; do
		if line=$(grep -E -m1 "$re" "$log" 2>/dev/null); then
			echo "$line"
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "berth exited before printing /$re/:" >&2
			cat "$log" >&2
			return 1
		fi
		sleep 0.2
	done
	echo "no /$re/ from berth within 60s:" >&2
	cat "$log" >&2
	return 1
}

endpoint_of() { sed -n 's/^berth is up: .* API \(http[^ ,]*\).*/\1/p' <<<"$1"; }

common=(-containerd-address /run/containerd/containerd.sock -raw-namespace "$RAW_NS" -agent-namespace "$AGENT_NS"
	-probe "$tmp/probe" -image "$IMAGE" -n "$N" -c "$C" -network "$NETWORKS" -poll "$POLL" -rss-tasks "$RSS_TASKS"
	-timeout "$TIMEOUT")
[ "$CTR" = 1 ] && common+=(-ctr)

echo "== berth up (server and agent in one process), $(nproc) cores, $(date -u +%Y-%m-%d)"
env "${agent_env[@]}" "$tmp/berth" up --data-dir "$tmp/up" --listen 127.0.0.1:0 --log-level warn "${agent_flags[@]}" \
	>"$tmp/up.log" 2>&1 &
up=$!
pids+=("$up")
endpoint=$(endpoint_of "$(wait_line "$tmp/up.log" "$up" '^berth is up: ')")
"$tmp/taskstart" "${common[@]}" -endpoint "$endpoint" -data-dir "$tmp/up" -rss "berth up=$up"
kill "$up"
wait "$up" || true
pids=()

if [ "$SPLIT" = 1 ]; then
	echo
	echo "== berth server + berth agent (two processes)"
	"$tmp/berth" server --data-dir "$tmp/srv" --listen 127.0.0.1:0 --log-level warn >"$tmp/srv.log" 2>&1 &
	srv=$!
	pids+=("$srv")
	endpoint=$(endpoint_of "$(wait_line "$tmp/srv.log" "$srv" '^berth is up: ')")
	if ! token=$("$tmp/berth" token create --data-dir "$tmp/srv" --endpoint "$endpoint" 2>"$tmp/token.err"); then
		cat "$tmp/token.err" >&2
		exit 1
	fi
	: >"$tmp/ecs.config"
	# The agent runs from its own copy of the binary, as on a machine of its
	# own: pages of a file mapped by two processes (here, the server) count
	# in both and cannot be released by either.
	cp "$tmp/berth" "$tmp/berth-agent"
	env "${agent_env[@]}" ECS_DATADIR="$tmp/agent" "$tmp/berth-agent" agent --token "$token" --config "$tmp/ecs.config" \
		"${agent_flags[@]}" >"$tmp/agent.log" 2>&1 &
	agent=$!
	pids+=("$agent")
	wait_line "$tmp/agent.log" "$agent" '^berth agent is up: ' >/dev/null
	"$tmp/taskstart" "${common[@]}" -phases rss -endpoint "$endpoint" -data-dir "$tmp/srv" \
		-rss "berth server=$srv,berth agent=$agent"
fi
