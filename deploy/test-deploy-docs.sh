#!/usr/bin/env bash
# Runs the steps of docs/deploy.md as written: the shell blocks whose first
# line is "# step: NAME", in order, on loopback in a temporary directory.
# Three nats-server nodes run on this machine on different ports, started
# as deploy/systemd/nats-server.service would start them. It then checks
# that the cluster formed, that "tocsin setup" made three copies of every
# stream, and that a service user connects with its credentials.
#
# Needs go, openssl, curl and ss. Run from anywhere: deploy/test-deploy-docs.sh
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

echo "building tocsin, nats-server and tocsin-mkpasswd"
mkdir -p "$work/bin"
(cd "$src" && go build -o "$work/bin/tocsin" ./cmd/tocsin &&
	go build -o "$work/bin/tocsin-mkpasswd" ./deploy/nats/mkpasswd &&
	go build -o "$work/bin/nats-server" github.com/nats-io/nats-server/v2)
export PATH="$work/bin:$PATH"

# Split the page into one file per marked block.
mkdir -p "$work/steps"
awk -v dir="$work/steps" '
	/^```sh$/ { inblock = 1; n++; file = ""; next }
	/^```$/   { inblock = 0; next }
	inblock && file == "" && /^# step: / { file = sprintf("%s/%02d-%s", dir, n, substr($0, 9)); gsub(/ /, "-", file) }
	inblock && file != "" { print > file }
' "$src/docs/deploy.md"
ls "$work/steps" | grep -q setup || { echo "docs/deploy.md has no '# step: setup' block" >&2; exit 1; }

# What step 1 of the page asks the reader to set, for this machine. The
# ports lie below the kernel's ephemeral range (32768 and up), where the
# outgoing connections of tests running alongside cannot take them, and all
# nine must be free.
free() {
	local p
	for p in "$@"; do
		if ss -Htln "sport = :$p" | grep -q .; then return 1; fi
	done
}
for _ in $(seq 50); do
	base=$((10000 + RANDOM % 22000))
	if free $(seq $((base + 1)) $((base + 23))); then break; fi
done
export TOCSIN_SRC=$src NATS_DIR=$work/nats BIND=127.0.0.1
export HOST_1=localhost HOST_2=localhost HOST_3=localhost
for i in 1 2 3; do
	export CLIENT_PORT_$i=$((base + i)) ROUTE_PORT_$i=$((base + 10 + i)) MONITOR_PORT_$i=$((base + 20 + i))
done
mkdir -p "$NATS_DIR"

start_nodes() {
	for i in 1 2 3; do
		(set -a; . "$NATS_DIR/nats-$i.env"; set +a; exec nats-server -c "$NATS_DIR/nats.conf") >"$work/nats-$i.log" 2>&1 &
		pids+=($!)
	done
	for i in 1 2 3; do
		eval port=\$MONITOR_PORT_$i
		for _ in $(seq 60); do
			jsz=$(curl -fs "http://127.0.0.1:$port/jsz" 2>/dev/null || true)
			jsz=$(tr -d ' \n' <<<"$jsz")
			if [[ $jsz == *'"cluster_size":3'* && $jsz == *'"leader":"nats-'* ]]; then
				continue 2
			fi
			sleep 0.5
		done
		echo "node $i did not join the other two" >&2
		for j in 1 2 3; do
			echo "-- nats-$j.log" >&2
			cat "$work/nats-$j.log" >&2
		done
		exit 1
	done
	echo "three nodes up, in one JetStream cluster with a leader"
}

cd "$work"
for step in "$work"/steps/*; do
	name=$(basename "$step")
	if [[ $name == *-setup ]]; then start_nodes; fi
	echo "== $name"
	# One shell for the whole page would carry cd and exports from step to
	# step, as the reader's does: source each block in this one.
	# shellcheck disable=SC1090
	. "$step"
done

echo "== checks"
# (no "curl | grep -q": with pipefail, grep leaving early fails the pipe)
jsz=$(curl -fs "http://127.0.0.1:$MONITOR_PORT_2/jsz?accounts=true&streams=true&config=true")
for s in TOCSIN_TASKS TOCSIN_SCHEDULE TOCSIN_RESULTS TOCSIN_EVENTS TOCSIN_DEAD KV_tocsin-incidents KV_tocsin-locations; do
	if ! grep -q "\"name\": \"$s\"" <<<"$jsz"; then
		echo "stream $s is missing on node 2 after tocsin setup" >&2
		exit 1
	fi
done
replicas=$(grep -c '"num_replicas": 3' <<<"$jsz" || true)
if [ "$replicas" -lt 13 ]; then
	echo "want 13 streams and buckets with 3 replicas, node 2 reports $replicas" >&2
	exit 1
fi
# A service's user connects with its credentials and finds every stream in
# place, but may not change one.
prober=(--nats "$NATS_URLS" --nats-user prober-lon1 --nats-password-file "$NATS_DIR/secrets/prober-lon1.password" --nats-ca "$NATS_DIR/certs/ca.pem")
tocsin setup --replicas 3 "${prober[@]}"
if out=$(tocsin setup --replicas 1 "${prober[@]}" 2>&1); then
	echo "the prober user may change streams" >&2
	exit 1
fi
if [[ $out != *"may not create or change streams"* ]]; then
	echo "the prober user could not connect: $out" >&2
	exit 1
fi
echo "docs/deploy.md: every step ran; the cluster formed, tocsin setup made every stream with 3 replicas, users connect"
