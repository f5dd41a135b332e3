#!/usr/bin/env bash
# Builds sonda and moves 256 MiB each way through one loopback connection at
# once (full duplex), then checks both copies by SHA-256 and prints what -v
# reported. Needs no setup; everything stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/sonda
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

head -c 256M /dev/urandom > "$tmp/up"
head -c 256M /dev/urandom > "$tmp/down"

"$bin" -v listen 127.0.0.1 0 < "$tmp/down" > "$tmp/server.out" 2> "$tmp/server.err" &
server=$!
# Poll (bounded) for the listener's port instead of sleeping a fixed time.
for _ in $(seq 200); do
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/server.err")
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "${port:-}" ] || { echo "listener did not start" >&2; cat "$tmp/server.err" >&2; exit 1; }

"$bin" -v connect 127.0.0.1 "$port" < "$tmp/up" > "$tmp/client.out" 2> "$tmp/client.err"
wait "$server"

cat "$tmp/server.err" "$tmp/client.err"
check() {
  if [ "$(sha256sum < "$1")" = "$(sha256sum < "$2")" ]; then echo "$3: byte-exact"; else echo "$3: DIFFERS" >&2; exit 1; fi
}
check "$tmp/up" "$tmp/server.out" "client to server"
check "$tmp/down" "$tmp/client.out" "server to client"
