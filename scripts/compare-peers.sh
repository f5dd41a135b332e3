#!/usr/bin/env bash
# sonda against its peers, in one run, on this machine. Installs nothing:
# it needs ss (iproute2), python3, GNU time (/usr/bin/time), iperf3, sockperf
# and taskset present (Debian: iproute2 python3 time iperf3 sockperf
# util-linux). Figures are medians; sonda and the peer run alternately.
#
#   scripts/compare-peers.sh [probe] [bench] [relay] [scan] [unix] [bench-unix] [tls] [forward]
#   (default: all)
#
# probe: 24,000 TIME-WAIT sockets on loopback over four ports (at least
#   20,000 remain when measured), then
#   `sonda probe PORT` versus `ss -tanpo '( sport = :PORT )'` on one of them.
# bench: `sonda bench` versus iperf3 (TCP and UDP throughput) and sockperf
#   ping-pong (TCP and UDP latency, same CPU placement), BENCH_ROUNDS rounds
#   of BENCH_SECONDS each.
# relay: 4 GiB from `dd if=/dev/zero bs=1M` through a connecting relay into a
#   listening relay writing to /dev/null over 127.0.0.1: sonda (splice on and
#   --no-splice) versus nc.openbsd -N, ncat --send-only and socat -u (default
#   and -b 1048576), RELAY_ROUNDS alternating rounds; medians and peak RSS;
#   then sonda into a pipe reader (the splice path) against --no-splice.
# unix: the relay job over a Unix stream socket: 4 GiB from dd through
#   `connect -U` into `listen -U > /dev/null`, sonda (splice on and
#   --no-splice) versus socat -u UNIX-LISTEN/UNIX-CONNECT (default and
#   -b 1048576), ncat -U and nc.openbsd -U, RELAY_ROUNDS alternating rounds;
#   medians and peak RSS.
# bench-unix: `sonda bench -U` (a Unix stream socket) beside `sonda bench`
#   over TCP loopback: one stream's throughput, and rr p50/p99 with client
#   and server on CPUs 0 and 1, BENCH_ROUNDS alternating rounds of
#   BENCH_SECONDS each.
# tls: TLS_MIB (2 GiB) from dd through `connect --tls` into `listen --tls
#   > /dev/null` on 127.0.0.1 versus the ncat --ssl and socat OPENSSL pairs
#   (default and -b 1048576), a test PKI made with the openssl CLI, each
#   pair's TLS 1.3 default suite (AES-256-GCM-SHA384 for all of them),
#   RELAY_ROUNDS alternating rounds, medians and peak RSS; then the time of a
#   verified handshake, `connect --tls -z` versus `openssl s_client`, against
#   one openssl s_server, medians of TLS_HANDSHAKES.
# forward: FORWARD_CLIENTS (32) concurrent `sonda connect` clients each
#   sending FORWARD_MIB (64 MiB) of a file through a forwarder on 127.0.0.1
#   to one upstream, `sonda listen -k --sink -v`: sonda `listen -k --to`
#   (splice on and --no-splice) versus socat `TCP-LISTEN,fork TCP:` (default
#   and -b 1048576), RELAY_ROUNDS alternating rounds. Aggregate MiB/s from
#   the first connect to the last byte at the upstream, the peak total RSS
#   of the forwarder's processes (socat forks one per client), the CPU
#   seconds of the forwarder and of the sink (one host: all share the cores),
#   and a check
#   that the upstream received every client's bytes, counted per client.
# scan: `sonda connect -z 127.0.0.1 1-65535` versus `nc.openbsd -z` and
#   `nmap -n -p- -T5`, two listeners open, ROUNDS alternating rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-11}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_SECONDS=${BENCH_SECONDS:-5}
RELAY_ROUNDS=${RELAY_ROUNDS:-3}
RELAY_MIB=${RELAY_MIB:-4096}
TLS_MIB=${TLS_MIB:-2048}
TLS_HANDSHAKES=${TLS_HANDSHAKES:-20}
FORWARD_CLIENTS=${FORWARD_CLIENTS:-32}
FORWARD_MIB=${FORWARD_MIB:-64}
sections=${*:-probe bench relay scan unix bench-unix tls forward}

for tool in ss python3 /usr/bin/time iperf3 sockperf taskset nc.openbsd ncat socat nmap openssl; do
  command -v "$tool" >/dev/null || { echo "missing prerequisite: $tool" >&2; exit 1; }
done
cargo build --release --quiet
# SONDA=/path/to/sonda measures another build (a before/after in one run).
sonda=${SONDA:-$PWD/target/release/sonda}
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

# --- relay machinery shared by the relay (TCP) and unix sections ---
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_listen() { for _ in $(seq 200); do ss -ltn "( sport = :$1 )" | grep -q LISTEN && return 0; sleep 0.02; done; return 1; }
# Polls /proc/net/unix until a listening socket (flags 00010000) is bound
# to the path: a test connect would use up a one-shot listener.
wait_unix() {
  for _ in $(seq 400); do
    awk -v p="$1" '$4 == "00010000" && $8 == p {found=1} END {exit !found}' /proc/net/unix && return 0
    sleep 0.01
  done
  echo "nothing listens on $1" >&2; return 1
}
# one transfer of RELAY_MIB from dd through TOOL's connecting side into its
# listening side writing to /dev/null, over TRANSPORT (tcp: 127.0.0.1 and a
# free port; unix: a socket path); prints "MiB/s peak_rss_kib"
relay_once() {
  local name=$1 transport=$2 t0 t1 lpid addr
  local -a l_sonda c_sonda l_nc c_nc l_ncat c_ncat
  local l_socat c_socat
  if [ "$transport" = unix ]; then
    addr="$tmp/relay.sock"; rm -f "$addr"
    l_sonda=(-U "$addr"); c_sonda=(-U "$addr")
    l_nc=(-lU "$addr"); c_nc=(-N -U "$addr")
    l_ncat=(-l --recv-only -U "$addr"); c_ncat=(--send-only -U "$addr")
    l_socat="UNIX-LISTEN:$addr"; c_socat="UNIX-CONNECT:$addr"
  else
    addr=$(free_port)
    l_sonda=(127.0.0.1 "$addr"); c_sonda=(127.0.0.1 "$addr")
    l_nc=(-l 127.0.0.1 "$addr"); c_nc=(-N 127.0.0.1 "$addr")
    l_ncat=(-l --recv-only 127.0.0.1 "$addr"); c_ncat=(--send-only 127.0.0.1 "$addr")
    l_socat="TCP-LISTEN:$addr,bind=127.0.0.1,reuseaddr"; c_socat="TCP:127.0.0.1:$addr"
  fi
  ready() { if [ "$transport" = unix ]; then wait_unix "$addr"; else wait_listen "$addr"; fi; }
  local -a listener client
  case $name in
    sonda|sonda-plain)
      local -a flag=(); [ "$name" = sonda-plain ] && flag=(--no-splice)
      listener=("$sonda" listen "${flag[@]}" "${l_sonda[@]}"); client=("$sonda" connect "${flag[@]}" "${c_sonda[@]}") ;;
    nc) listener=(nc.openbsd "${l_nc[@]}"); client=(nc.openbsd "${c_nc[@]}") ;;
    ncat) listener=(ncat "${l_ncat[@]}"); client=(ncat "${c_ncat[@]}") ;;
    socat|socat-1M)
      local -a b=(); [ "$name" = socat-1M ] && b=(-b 1048576)
      listener=(socat -u "${b[@]}" "$l_socat" STDOUT); client=(socat -u "${b[@]}" STDIN "$c_socat") ;;
  esac
  /usr/bin/time -f %M -o "$tmp/lrss" "${listener[@]}" > /dev/null 2>/dev/null & lpid=$!
  ready
  t0=$(date +%s%N)
  dd if=/dev/zero bs=1M count="$RELAY_MIB" status=none | /usr/bin/time -f %M -o "$tmp/crss" "${client[@]}"
  wait "$lpid" || true
  t1=$(date +%s%N)
  local rss
  rss=$(cat "$tmp/lrss" "$tmp/crss" | sort -n | tail -1)
  awk -v mib="$RELAY_MIB" -v ns=$((t1 - t0)) -v rss="$rss" 'BEGIN {printf "%.0f %d\n", mib * 1e9 / ns, rss}'
}
# RELAY_ROUNDS alternating rounds of every tool over TRANSPORT; a table of
# medians and the ratio of sonda to the best peer
relay_table() {
  local transport=$1 tools="sonda sonda-plain nc ncat socat socat-1M" best=0 t r m rate rss
  for t in $tools; do : > "$tmp/r-$t"; : > "$tmp/m-$t"; : > "$tmp/c-$t"; : > "$tmp/k-$t"; done
  for _ in $(seq "$RELAY_ROUNDS"); do
    for t in $tools; do
      read -r rate rss < <(relay_once "$t" "$transport")
      echo "$rate" >> "$tmp/r-$t"; echo "$rss" >> "$tmp/m-$t"
    done
  done
  printf '%-14s %12s %14s\n' "$transport relay" "MiB/s (med)" "peak RSS KiB"
  for t in $tools; do
    r=$(median < "$tmp/r-$t"); m=$(median < "$tmp/m-$t")
    printf '%-14s %12.0f %14.0f\n' "$t" "$r" "$m"
    case $t in nc|ncat|socat|socat-1M) best=$(awk -v a="$best" -v b="$r" 'BEGIN {print (b > a) ? b : a}') ;; esac
  done
  s=$(median < "$tmp/r-sonda"); sp=$(median < "$tmp/r-sonda-plain")
  awk -v s="$s" -v sp="$sp" -v b="$best" 'BEGIN {printf "ratio to the best peer: default %.2f, --no-splice %.2f\n", s/b, sp/b}'
}

if [[ " $sections " == *" probe "* ]]; then
  echo "== probe: 24,000 TIME-WAIT sockets on 127.0.0.1 over four ports"
  python3 - "$tmp/ports" <<'PY'
import socket, sys
# Four listeners; 6,000 connections each, closed server side first so the
# server's end of each one stays in TIME-WAIT (60 s).
ports = []
for _ in range(4):
    l = socket.socket()
    l.bind(("127.0.0.1", 0))
    l.listen(512)
    port = l.getsockname()[1]
    ports.append(port)
    for _ in range(6000):
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

if [[ " $sections " == *" bench "* ]]; then
  echo "== bench: sonda bench versus iperf3 and sockperf, $BENCH_ROUNDS rounds of ${BENCH_SECONDS}s, alternating"
  nproc_n=$(nproc)
  echo "machine: $(uname -r), $nproc_n CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'))"
  iperf_port=$((20000 + RANDOM % 10000)); sp_port=$((iperf_port + 1))
  iperf3 -s -p "$iperf_port" > /dev/null 2>&1 & iperf_pid=$!
  trap 'kill $iperf_pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
  for _ in $(seq 100); do ss -ltn "( sport = :$iperf_port )" | grep -q LISTEN && break; sleep 0.05; done

  # json field extraction with python3; each prints one number
  sonda_bps() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["results"][0]["bits_per_second"])'; }
  sonda_lat() { python3 -c 'import json,sys; d=json.load(sys.stdin); l=d["latency"]; print(l["p50_us"], l["p99_us"])'; }
  iperf_tcp_bps() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["end"]["sum_received"]["bits_per_second"])'; }
  # UDP: the rate the receiver got (iperf3's sum is the sender's rate)
  iperf_udp_bps() { python3 -c 'import json,sys; d=json.load(sys.stdin); s=d["end"]["sum"]; print(s["bits_per_second"]*(1-s["lost_percent"]/100.0))'; }

  declare -A results
  run_pair() { # name, sonda args..., --, peer command...
    local name=$1; shift
    local sonda_args=() peer=()
    while [ "$1" != "--" ]; do sonda_args+=("$1"); shift; done; shift
    peer=("$@")
    : > "$tmp/s"; : > "$tmp/p"
    for _ in $(seq "$BENCH_ROUNDS"); do
      "$sonda" bench --json --duration "${BENCH_SECONDS}s" "${sonda_args[@]}" | sonda_bps >> "$tmp/s"
      "${peer[@]}" >> "$tmp/p"
    done
    local s p
    s=$(median < "$tmp/s"); p=$(median < "$tmp/p")
    awk -v n="$name" -v s="$s" -v p="$p" 'BEGIN {printf "%-34s %10.2f %10.2f %8.2f\n", n, s/1e9, p/1e9, s/p}'
  }
  printf '%-34s %10s %10s %8s\n' "throughput (Gbit/s, medians)" "sonda" "peer" "ratio"
  run_pair "TCP 1 stream vs iperf3 default" -- \
    sh -c "iperf3 -c 127.0.0.1 -p $iperf_port -t $BENCH_SECONDS -J | $(declare -f iperf_tcp_bps | tail -n +3 | head -n -1)"
  run_pair "TCP 1 stream vs iperf3 -l 1M" -- \
    sh -c "iperf3 -c 127.0.0.1 -p $iperf_port -t $BENCH_SECONDS -l 1M -J | $(declare -f iperf_tcp_bps | tail -n +3 | head -n -1)"
  run_pair "TCP 2 streams vs iperf3 -P 2 -l 1M" --streams 2 -- \
    sh -c "iperf3 -c 127.0.0.1 -p $iperf_port -t $BENCH_SECONDS -P 2 -l 1M -J | $(declare -f iperf_tcp_bps | tail -n +3 | head -n -1)"
  run_pair "UDP 1472 B, no GSO vs iperf3" --proto udp --size 1472 --no-gso -- \
    sh -c "iperf3 -c 127.0.0.1 -p $iperf_port -t $BENCH_SECONDS -u -b 0 -l 1472 -J | $(declare -f iperf_udp_bps | tail -n +3 | head -n -1)"
  run_pair "UDP 1472 B, GSO/GRO vs iperf3" --proto udp --size 1472 -- \
    sh -c "iperf3 -c 127.0.0.1 -p $iperf_port -t $BENCH_SECONDS -u -b 0 -l 1472 -J | $(declare -f iperf_udp_bps | tail -n +3 | head -n -1)"
  run_pair "UDP 64000 B vs iperf3" --proto udp --size 64000 -- \
    sh -c "iperf3 -c 127.0.0.1 -p $iperf_port -t $BENCH_SECONDS -u -b 0 -l 64000 -J | $(declare -f iperf_udp_bps | tail -n +3 | head -n -1)"

  # Latency: full round trips, 64-byte messages, client on CPU 0 and server
  # on CPU 1 (or both on CPU 0 on a one-CPU machine), for both tools.
  cs=1; [ "$nproc_n" -lt 2 ] && cs=0
  sockperf_lat() { # proto flag ("" or --tcp)
    taskset -c "$cs" sockperf sr $1 -i 127.0.0.1 -p "$sp_port" > /dev/null 2>&1 & local srv=$!
    for _ in $(seq 100); do ss -lntu "( sport = :$sp_port )" | grep -q "$sp_port" && break; sleep 0.05; done
    taskset -c 0 sockperf pp $1 -i 127.0.0.1 -p "$sp_port" -t "$BENCH_SECONDS" -m 64 --full-rtt 2>/dev/null \
      | awk '/percentile 50.000/ {p50=$NF} /percentile 99.000/ {p99=$NF} END {print p50, p99}'
    kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null || true
  }
  printf '%-34s %10s %10s %8s\n' "rr latency (us, p50 / p99)" "sonda" "sockperf" "ratio"
  for proto in tcp udp; do
    flag=""; [ "$proto" = tcp ] && flag="--tcp"
    : > "$tmp/s50"; : > "$tmp/s99"; : > "$tmp/p50"; : > "$tmp/p99"
    for _ in $(seq "$BENCH_ROUNDS"); do
      read -r a b < <("$sonda" bench --json --mode rr --proto "$proto" --size 64 --pin "0,$cs" --duration "${BENCH_SECONDS}s" | sonda_lat)
      echo "$a" >> "$tmp/s50"; echo "$b" >> "$tmp/s99"
      read -r a b < <(sockperf_lat "$flag")
      echo "$a" >> "$tmp/p50"; echo "$b" >> "$tmp/p99"
    done
    for q in 50 99; do
      s=$(median < "$tmp/s$q"); p=$(median < "$tmp/p$q")
      awk -v n="$proto rr p$q (CPU 0 -> $cs)" -v s="$s" -v p="$p" 'BEGIN {printf "%-34s %10.1f %10.1f %8.2f\n", n, s, p, s/p}'
    done
  done
fi

if [[ " $sections " == *" relay "* ]]; then
  echo "== relay: $RELAY_MIB MiB from dd through connect -> listen > /dev/null on 127.0.0.1, $RELAY_ROUNDS rounds"
  relay_table tcp
  # Into a pipe reader, where the listener splices socket -> pipe.
  : > "$tmp/pipe-splice"; : > "$tmp/pipe-plain"
  for _ in $(seq "$RELAY_ROUNDS"); do
    for flag in "" --no-splice; do
      port=$(free_port)
      ("$sonda" listen $flag 127.0.0.1 "$port" | dd of=/dev/null bs=1M status=none) & lpid=$!
      wait_listen "$port"
      t0=$(date +%s%N)
      dd if=/dev/zero bs=1M count="$RELAY_MIB" status=none | "$sonda" connect 127.0.0.1 "$port"
      wait "$lpid" || true
      t1=$(date +%s%N)
      f=pipe-splice; [ -n "$flag" ] && f=pipe-plain
      awk -v mib="$RELAY_MIB" -v ns=$((t1 - t0)) 'BEGIN {printf "%.0f\n", mib * 1e9 / ns}' >> "$tmp/$f"
    done
  done
  printf '%-30s %8.0f MiB/s\n' "listen | dd, splice (default)" "$(median < "$tmp/pipe-splice")"
  printf '%-30s %8.0f MiB/s\n' "listen --no-splice | dd" "$(median < "$tmp/pipe-plain")"
fi

if [[ " $sections " == *" scan "* ]]; then
  echo "== scan: TCP ports 1-65535 on 127.0.0.1, two listeners open, $ROUNDS rounds"
  python3 -c 'import socket,sys,time
ls=[socket.socket() for _ in range(2)]
for l in ls: l.bind(("127.0.0.1",0)); l.listen(64)
print(" ".join(str(l.getsockname()[1]) for l in ls), flush=True)
sys.stdin.read()' > "$tmp/scanports" < <(sleep 600) & scan_pid=$!
  for _ in $(seq 100); do [ -s "$tmp/scanports" ] && break; sleep 0.05; done
  echo "listeners on $(cat "$tmp/scanports")"
  read -r s_ms s_kib < <(measure "$sonda" connect -z 127.0.0.1 1-65535)
  read -r n_ms n_kib < <(measure nc.openbsd -z 127.0.0.1 1-65535)
  read -r m_ms m_kib < <(measure nmap -n -p- -T5 127.0.0.1)
  s_fine=$(measure_ns "$sonda" connect -z 127.0.0.1 1-65535)
  n_fine=$(measure_ns nc.openbsd -z 127.0.0.1 1-65535)
  m_fine=$(measure_ns nmap -n -p- -T5 127.0.0.1)
  printf '%-36s %10s %12s\n' "command" "median ms" "peak RSS KiB"
  printf '%-36s %10s %12s\n' "sonda connect -z 127.0.0.1 1-65535" "$s_fine" "$s_kib"
  printf '%-36s %10s %12s\n' "nc.openbsd -z 127.0.0.1 1-65535" "$n_fine" "$n_kib"
  printf '%-36s %10s %12s\n' "nmap -n -p- -T5 127.0.0.1" "$m_fine" "$m_kib"
  awk -v s="$s_fine" -v n="$n_fine" -v m="$m_fine" 'BEGIN {printf "time ratio sonda/nc %.2f, sonda/nmap %.2f\n", s/n, s/m}'
  kill "$scan_pid" 2>/dev/null || true
fi

if [[ " $sections " == *" unix "* ]]; then
  echo "== unix: $RELAY_MIB MiB through connect -U into listen -U > /dev/null, $RELAY_ROUNDS rounds, alternating"
  relay_table unix
fi

if [[ " $sections " == *" bench-unix "* ]]; then
  echo "== bench-unix: sonda bench -U beside TCP loopback, $BENCH_ROUNDS rounds of ${BENCH_SECONDS}s, alternating"
  cs=1; [ "$(nproc)" -lt 2 ] && cs=0
  # one number (throughput) or two (p50 p99) from a bench document
  ub_bps() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["results"][0]["bits_per_second"])'; }
  ub_lat() { python3 -c 'import json,sys; d=json.load(sys.stdin); l=d["latency"]; print(l["p50_us"], l["p99_us"])'; }
  for f in ut tt u50 u99 t50 t99; do : > "$tmp/b-$f"; done
  for _ in $(seq "$BENCH_ROUNDS"); do
    "$sonda" bench --json -U "$tmp/bench.sock" --duration "${BENCH_SECONDS}s" | ub_bps >> "$tmp/b-ut"
    "$sonda" bench --json --duration "${BENCH_SECONDS}s" | ub_bps >> "$tmp/b-tt"
    read -r a b < <("$sonda" bench --json -U "$tmp/bench.sock" --mode rr --pin "0,$cs" --duration "${BENCH_SECONDS}s" | ub_lat)
    echo "$a" >> "$tmp/b-u50"; echo "$b" >> "$tmp/b-u99"
    read -r a b < <("$sonda" bench --json --mode rr --pin "0,$cs" --duration "${BENCH_SECONDS}s" | ub_lat)
    echo "$a" >> "$tmp/b-t50"; echo "$b" >> "$tmp/b-t99"
  done
  printf '%-34s %10s %10s %8s
' "medians" "unix" "tcp" "ratio"
  awk -v u="$(median < "$tmp/b-ut")" -v t="$(median < "$tmp/b-tt")" \
    'BEGIN {printf "%-34s %10.2f %10.2f %8.2f\n", "stream, 1 stream (Gbit/s)", u/1e9, t/1e9, u/t}'
  for q in 50 99; do
    awk -v n="rr p$q (us, CPU 0 -> $cs)" -v u="$(median < "$tmp/b-u$q")" -v t="$(median < "$tmp/b-t$q")" \
      'BEGIN {printf "%-34s %10.1f %10.1f %8.2f\n", n, u, t, u/t}'
  done
fi

if [[ " $sections " == *" tls "* ]]; then
  echo "== tls: $TLS_MIB MiB through connect --tls into listen --tls > /dev/null on 127.0.0.1, $RELAY_ROUNDS rounds, alternating"
  pki=$tmp/pki; mkdir -p "$pki"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/root.key" -out "$pki/root.pem" \
    -days 30 -subj "/CN=compare-peers root" -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/leaf.key" -out "$pki/leaf.csr" -subj /CN=localhost 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > "$pki/leaf.ext"
  openssl x509 -req -in "$pki/leaf.csr" -CA "$pki/root.pem" -CAkey "$pki/root.key" -CAcreateserial -days 30 \
    -extfile "$pki/leaf.ext" -out "$pki/leaf.pem" 2>/dev/null
  cert=$pki/leaf.pem key=$pki/leaf.key ca=$pki/root.pem
  tls_once() {
    local name=$1 port lpid t0 t1 rss
    local -a listener client
    port=$(free_port)
    case $name in
      sonda) listener=("$sonda" listen --tls --cert "$cert" --key "$key" 127.0.0.1 "$port")
             client=("$sonda" connect --tls --ca "$ca" localhost "$port") ;;
      ncat) listener=(ncat --ssl --ssl-cert "$cert" --ssl-key "$key" -l --recv-only 127.0.0.1 "$port")
            client=(ncat --ssl --ssl-verify --ssl-trustfile "$ca" --send-only localhost "$port") ;;
      socat|socat-1M)
        local -a b=(); [ "$name" = socat-1M ] && b=(-b 1048576)
        listener=(socat -u "${b[@]}" "OPENSSL-LISTEN:$port,bind=127.0.0.1,reuseaddr,cert=$cert,key=$key,verify=0" STDOUT)
        client=(socat -u "${b[@]}" STDIN "OPENSSL:127.0.0.1:$port,cafile=$ca,commonname=localhost") ;;
    esac
    /usr/bin/time -f %M -o "$tmp/lrss" "${listener[@]}" > /dev/null 2>/dev/null & lpid=$!
    wait_listen "$port"
    t0=$(date +%s%N)
    dd if=/dev/zero bs=1M count="$TLS_MIB" status=none | /usr/bin/time -f %M -o "$tmp/crss" "${client[@]}" 2>/dev/null || true
    wait "$lpid" || true
    t1=$(date +%s%N)
    rss=$(cat "$tmp/lrss" "$tmp/crss" | sort -n | tail -1)
    awk -v mib="$TLS_MIB" -v ns=$((t1 - t0)) -v rss="$rss" 'BEGIN {printf "%.0f %d\n", mib * 1e9 / ns, rss}'
  }
  tools="sonda ncat socat socat-1M" best=0
  for t in $tools; do : > "$tmp/r-$t"; : > "$tmp/m-$t"; : > "$tmp/c-$t"; : > "$tmp/k-$t"; done
  for _ in $(seq "$RELAY_ROUNDS"); do
    for t in $tools; do
      read -r rate rss < <(tls_once "$t")
      echo "$rate" >> "$tmp/r-$t"; echo "$rss" >> "$tmp/m-$t"
    done
  done
  printf '%-14s %12s %14s\n' "tls relay" "MiB/s (med)" "peak RSS KiB"
  for t in $tools; do
    r=$(median < "$tmp/r-$t"); m=$(median < "$tmp/m-$t")
    printf '%-14s %12.0f %14.0f\n' "$t" "$r" "$m"
    [ "$t" != sonda ] && best=$(awk -v a="$best" -v b="$r" 'BEGIN {print (b > a) ? b : a}')
  done
  awk -v s="$(median < "$tmp/r-sonda")" -v b="$best" 'BEGIN {printf "ratio to the best peer: %.2f\n", s/b}'
  # The suite each pair negotiated, from sonda's side against an openssl
  # server (the peers' OpenSSL default) and between two sondas.
  port=$(free_port)
  openssl s_server -quiet -naccept $((TLS_HANDSHAKES * 2 + 2)) -accept "127.0.0.1:$port" -cert "$cert" -key "$key" \
    < <(sleep 600) > /dev/null 2>&1 & spid=$!
  wait_listen "$port"
  echo "suite against openssl s_server: $("$sonda" connect --tls -z --json --ca "$ca" localhost "$port" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["cipher_suite"])')"
  ROUNDS=$TLS_HANDSHAKES
  s_hs=$(measure_ns "$sonda" connect --tls -z --ca "$ca" localhost "$port")
  o_hs=$(measure_ns sh -c "openssl s_client -connect 127.0.0.1:$port -servername localhost -CAfile $ca -verify_return_error < /dev/null")
  kill "$spid" 2>/dev/null || true
  printf '%-44s %10s\n' "verified handshake, median of $TLS_HANDSHAKES" "ms"
  printf '%-44s %10s\n' "sonda connect --tls -z" "$s_hs"
  printf '%-44s %10s\n' "openssl s_client < /dev/null" "$o_hs"
  awk -v s="$s_hs" -v o="$o_hs" 'BEGIN {printf "time ratio sonda/openssl %.2f\n", s/o}'
fi

if [[ " $sections " == *" forward "* ]]; then
  echo "== forward: $FORWARD_CLIENTS clients x $FORWARD_MIB MiB through a forwarder on 127.0.0.1 into one sink, $RELAY_ROUNDS rounds, alternating"
  head -c $((FORWARD_MIB << 20)) /dev/urandom > "$tmp/fwd-data"
  want=$((FORWARD_MIB << 20))
  # one round: prints "MiB/s peak_total_rss_kib clients_complete cpu_s sink_cpu_s"
  forward_once() {
    local name=$1 up fport upid fpid t0 t1 peak=0 cur i
    up=$(free_port)
    "$sonda" -v listen -k --sink --max-conns 1000 127.0.0.1 "$up" > /dev/null 2> "$tmp/sink.log" & upid=$!
    wait_listen "$up"
    fport=$(free_port)
    case $name in
      sonda) "$sonda" listen -k --max-conns 1000 --to "127.0.0.1:$up" 127.0.0.1 "$fport" 2>/dev/null & fpid=$! ;;
      sonda-plain) "$sonda" listen -k --max-conns 1000 --no-splice --to "127.0.0.1:$up" 127.0.0.1 "$fport" 2>/dev/null & fpid=$! ;;
      socat) socat "TCP-LISTEN:$fport,bind=127.0.0.1,reuseaddr,fork,backlog=128" "TCP:127.0.0.1:$up" 2>/dev/null & fpid=$! ;;
      socat-1M) socat -b 1048576 "TCP-LISTEN:$fport,bind=127.0.0.1,reuseaddr,fork,backlog=128" "TCP:127.0.0.1:$up" 2>/dev/null & fpid=$! ;;
    esac
    wait_listen "$fport"
    t0=$(date +%s%N)
    local -a pids=()
    for i in $(seq "$FORWARD_CLIENTS"); do
      "$sonda" connect 127.0.0.1 "$fport" < "$tmp/fwd-data" > /dev/null 2>&1 & pids+=($!)
    done
    # The forwarder's memory, its forked children included, sampled while
    # the clients run.
    while kill -0 "${pids[@]}" 2>/dev/null; do
      cur=$( { ps -o rss= -p "$fpid"; ps -o rss= --ppid "$fpid" || true; } 2>/dev/null | awk '{s+=$1} END {print s+0}')
      [ "$cur" -gt "$peak" ] && peak=$cur
      sleep 0.05
    done
    wait "${pids[@]}" 2>/dev/null || true
    # The last byte is in when the sink has closed every session.
    for _ in $(seq 500); do
      [ "$(grep -c ' closed: received ' "$tmp/sink.log" || true)" -ge "$FORWARD_CLIENTS" ] && break
      sleep 0.01
    done
    t1=$(date +%s%N)
    # CPU seconds of the forwarder, its reaped children (socat's forks)
    # included: utime stime cutime cstime of /proc/PID/stat.
    local cpu
    cpu=$(awk -v hz="$(getconf CLK_TCK)" '{sub(/.*\) /, ""); print ($12 + $13 + $14 + $15) / hz}' "/proc/$fpid/stat")
    local sink_cpu
    sink_cpu=$(awk -v hz="$(getconf CLK_TCK)" '{sub(/.*\) /, ""); print ($12 + $13) / hz}' "/proc/$upid/stat")
    kill "$fpid" "$upid" 2>/dev/null || true
    wait "$fpid" "$upid" 2>/dev/null || true
    local ok
    ok=$(grep -c " closed: received $want bytes" "$tmp/sink.log" || true)
    awk -v mib=$((FORWARD_MIB * FORWARD_CLIENTS)) -v ns=$((t1 - t0)) -v rss="$peak" -v ok="$ok" -v cpu="$cpu" -v sc="$sink_cpu" \
      'BEGIN {printf "%.0f %d %d %.2f %.2f\n", mib * 1e9 / ns, rss, ok, cpu, sc}'
  }
  tools=${FORWARD_TOOLS:-sonda sonda-plain socat socat-1M} bad=0
  for t in $tools; do : > "$tmp/r-$t"; : > "$tmp/m-$t"; : > "$tmp/c-$t"; : > "$tmp/k-$t"; done
  for _ in $(seq "$RELAY_ROUNDS"); do
    for t in $tools; do
      read -r rate rss ok cpu sink_cpu < <(forward_once "$t")
      echo "$rate" >> "$tmp/r-$t"; echo "$rss" >> "$tmp/m-$t"; echo "$cpu" >> "$tmp/c-$t"; echo "$sink_cpu" >> "$tmp/k-$t"
      if [ "$ok" -ne "$FORWARD_CLIENTS" ]; then
        echo "$t: only $ok of $FORWARD_CLIENTS clients arrived whole" >&2; bad=1
      fi
    done
  done
  printf '%-14s %12s %20s %12s %12s\n' "forward" "MiB/s (med)" "peak total RSS KiB" "CPU s" "sink CPU s"
  for t in $tools; do
    r=$(median < "$tmp/r-$t"); m=$(median < "$tmp/m-$t"); c=$(median < "$tmp/c-$t"); k=$(median < "$tmp/k-$t")
    printf '%-14s %12.0f %20.0f %12.2f %12.2f\n' "$t" "$r" "$m" "$c" "$k"
  done
  # Throughput ratios to socat as `fork` runs it and to its best buffer;
  # on one host the clients and the sink share the cores, so the
  # forwarder's own CPU time is quoted beside them.
  if [[ " $tools " == *" sonda "* && " $tools " == *" socat "* && " $tools " == *" socat-1M "* ]]; then
    awk -v s="$(median < "$tmp/r-sonda")" -v o="$(median < "$tmp/r-socat")" -v o1="$(median < "$tmp/r-socat-1M")" \
      -v sc="$(median < "$tmp/c-sonda")" -v oc="$(median < "$tmp/c-socat")" -v oc1="$(median < "$tmp/c-socat-1M")" \
      'BEGIN {printf "throughput sonda/socat %.2f, sonda/socat-1M %.2f; forwarder CPU socat/sonda %.1f, socat-1M/sonda %.1f\n", s/o, s/o1, oc/sc, oc1/sc}'
  fi
  [ "$bad" -eq 0 ] && echo "every client's $want bytes arrived (counted per client at the upstream)"
  [ "$bad" -eq 0 ] || exit 1
fi
