# Sourced by scripts/up and scripts/test: installs, from Debian's packages,
# whatever this machine lacks. Idempotent; needs root (or sudo) to install.
set -euo pipefail

_apt_updated=0
_need_pkg() { # _need_pkg PACKAGE [COMMAND-OR-FILE]
	local pkg=$1 probe=${2:-}
	if [ -n "$probe" ]; then
		if [ -e "$probe" ] || command -v "$probe" >/dev/null 2>&1; then return 0; fi
	elif dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
		return 0
	fi
	local sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	if [ $_apt_updated -eq 0 ]; then
		$sudo apt-get update -qq
		_apt_updated=1
	fi
	echo "installing $pkg" >&2
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
}

# Go: the toolchain lives at /usr/local/go on our machines; Debian's golang
# is too old for go 1.26, so it is required rather than installed.
_need_go() {
	export PATH=$PATH:/usr/local/go/bin
	if ! command -v go >/dev/null; then
		echo "berth needs Go 1.26.8 or newer at /usr/local/go (https://go.dev/dl/)" >&2
		exit 1
	fi
	export GOTOOLCHAIN=local
}

# What running berth needs (the agent issue adds its use of these).
need_runtime_deps() {
	_need_go
	_need_pkg containerd /usr/bin/containerd
	_need_pkg runc /usr/sbin/runc
	_need_pkg containernetworking-plugins /usr/lib/cni/bridge
	_need_pkg iproute2 ip
	_need_pkg iptables iptables
	start_containerd
}

# start_containerd starts the host's containerd in the background (logs in
# /var/log/berth-containerd.log) unless it already answers on its socket, and
# waits up to 30 s for it. Machines without systemd (containers, CI) need it.
start_containerd() {
	local sock=/run/containerd/containerd.sock sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	if [ -S "$sock" ] && $sudo timeout 5 ctr --address "$sock" version >/dev/null 2>&1; then return 0; fi
	echo "starting containerd" >&2
	$sudo mkdir -p /run/containerd
	$sudo sh -c 'setsid nohup containerd >>/var/log/berth-containerd.log 2>&1 </dev/null &'
	local deadline=$((SECONDS + 30))
	while [ $SECONDS -lt $deadline ]; do
		if [ -S "$sock" ] && $sudo timeout 2 ctr --address "$sock" version >/dev/null 2>&1; then return 0; fi
		sleep 0.5
	done
	echo "containerd did not answer on $sock within 30s; see /var/log/berth-containerd.log" >&2
	return 1
}

# What the tests need on top: the real AWS CLI v2 from Debian (/usr/bin/aws),
# skopeo for the registry.
need_test_deps() {
	need_runtime_deps
	_need_pkg awscli /usr/bin/aws
	_need_pkg faketime /usr/bin/faketime
	_need_pkg python3 python3
	_need_pkg python3-boto3 /usr/lib/python3/dist-packages/boto3
	_need_pkg skopeo /usr/bin/skopeo
	start_containerd
}
