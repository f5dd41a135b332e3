#!/usr/bin/env bash
# sonda against its peers, in one run, on this machine. Installs nothing:
# it needs ss (iproute2), python3 and GNU time (/usr/bin/time) present.
# Figures are medians of ROUNDS runs, with peak RSS (GNU time's %M, KiB).
#
#   scripts/compare-peers.sh [probe]      (default: every section)
#
# probe: 20,000 TIME-WAIT sockets on loopback over four ports, then
#   `sonda probe PORT` versus `ss -tanpo '( sport = :PORT )'` on one of them.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-11}
sections=${1:-probe}

for tool in ss python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing prerequisite: $tool" >&2; exit 1; }
done
cargo build --release --quiet
sonda=$PWD/target/release/sonda
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# median of the numbers on stdin
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# runs "$@" ROUNDS times; prints "median_ms peak_kib"
measure() {
  : > "$tmp/t"; : > "$tmp/m"
  for _ in $(seq "$ROUNDS"); do
    /usr/bin/time -f "%e %M" -o "$tmp/one" "$@" > /dev/null 2>&1 || true
    awk '{print $1*1000}' "$tmp/one" >> "$tmp/t"
    awk '{print $2}' "$tmp/one" >> "$tmp/m"
  done
  echo "$(median < "$tmp/t") $(median < "$tmp/m")"
}

# GNU time reports to 10 ms; time the fast commands with a shell clock too.
measure_ns() {
  : > "$tmp/t"
  for _ in $(seq "$ROUNDS"); do
    local t0 t1
    t0=$(date +%s%N); "$@" > /dev/null 2>&1 || true; t1=$(date +%s%N)
    echo $(( (t1 - t0) / 1000 )) >> "$tmp/t"
  done
  awk '{printf "%.2f\n", $1/1000}' "$tmp/t" | median
}

if [[ " $sections " == *" probe "* ]]; then
  echo "== probe: 20,000 TIME-WAIT sockets on 127.0.0.1 over four ports"
  python3 - "$tmp/ports" <<'PY'
import socket, sys
# Four listeners; 5,000 connections each, closed server side first so the
# server's end of each one stays in TIME-WAIT (60 s).
ports = []
for _ in range(4):
    l = socket.socket()
    l.bind(("127.0.0.1", 0))
    l.listen(512)
    port = l.getsockname()[1]
    ports.append(port)
    for _ in range(5000):
        c = socket.create_connection(("127.0.0.1", port))
        s, _ = l.accept()
        s.close()
        c.recv(1)
        c.close()
    l.close()
open(sys.argv[1], "w").write(" ".join(map(str, ports)))
PY
  read -r -a ports < "$tmp/ports" || true  # no trailing newline
  port=${ports[1]}
  total=$(ss -tan state time-wait | wc -l)
  echo "TIME-WAIT sockets on this host now: $((total - 1)); probing port $port (one of ${ports[*]})"
  echo "sonda lines: $("$sonda" probe "$port" | grep -c TIME-WAIT || true) TIME-WAIT rows; ss lines: $(ss -tanpo "( sport = :$port )" | grep -c TIME-WAIT || true)"
  read -r s_ms s_kib < <(measure "$sonda" probe "$port")
  read -r ss_ms ss_kib < <(measure ss -tanpo "( sport = :$port )")
  s_fine=$(measure_ns "$sonda" probe "$port")
  ss_fine=$(measure_ns ss -tanpo "( sport = :$port )")
  printf '%-44s %10s %12s\n' "command" "median ms" "peak RSS KiB"
  printf '%-44s %10s %12s\n' "sonda probe $port" "$s_fine" "$s_kib"
  printf '%-44s %10s %12s\n' "ss -tanpo '( sport = :$port )'" "$ss_fine" "$ss_kib"
  awk -v a="$s_fine" -v b="$ss_fine" 'BEGIN {printf "time ratio sonda/ss: %.2f (below 1 means sonda is faster)\n", a/b}'
  awk -v a="$s_kib" -v b="$ss_kib" 'BEGIN {printf "memory ratio sonda/ss: %.2f\n", a/b}'
fi
