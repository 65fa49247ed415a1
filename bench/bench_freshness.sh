#!/usr/bin/env bash
# Freshness of the ranker, end to end: the time from a purchase being
# delivered to Kafka (`streamrec produce` returns after delivery) to the
# user's /v1/recommend answer changing (source "popular" -> "personal"),
# through a real `streamrec broker`, `streamrec train` and `streamrec serve`.
# N samples (default 30), one new user each; prints every sample and the
# p50 / p90 / max.  Usage: [EXTRA=key=value] bench/bench_freshness.sh [N]
# (EXTRA: one more property for train and serve, e.g.
# kafka.fetch.wait.max.ms=5)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-30}
make >/dev/null
B=${B:-build}  # the build directory whose streamrec runs everything
pids=()
cleanup() { # reverse start order, by PID
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill "${pids[i]}" 2>/dev/null || true; wait "${pids[i]}" 2>/dev/null || true; done; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ms() { echo $(( $(date +%s%N) / 1000000 )); }

fifo=$(mktemp -u); mkfifo "$fifo"
$B/streamrec broker --partitions 2 >"$fifo" 2>/dev/null &
pids+=($!)
read -r BOOT <"$fifo"; rm -f "$fifo"
RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --loglevel warning >/dev/null &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
X=(${EXTRA:+-X "$EXTRA"} -X "kafka.bootstrap.servers=$BOOT" -X "redis.url=redis://127.0.0.1:$RPORT" -X metrics.enable=false -X log.level=warn)
$B/streamrec train "${X[@]}" >/dev/null 2>&1 &
pids+=($!)
HPORT=$(free_port)
$B/streamrec serve "${X[@]}" -X "http.listen=127.0.0.1:$HPORT" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$HPORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
# a small catalogue first
for u in $(seq 0 99); do for e in 0 1 2 3; do
  echo "{\"user\":\"s$u\",\"item\":\"i$(( (u * 7 + e * 3) % 50 ))\",\"event\":\"purchase\"}"
done; done | $B/streamrec produce "${X[@]}" --quiet >/dev/null 2>&1
sleep 2
samples=()
for i in $(seq 1 "$N"); do
  echo "{\"user\":\"fresh$i\",\"item\":\"i$(( i % 50 ))\",\"event\":\"purchase\"}" \
    | $B/streamrec produce "${X[@]}" --quiet >/dev/null 2>&1
  t0=$(ms)
  until curl -s "http://127.0.0.1:$HPORT/v1/recommend?user=fresh$i&k=5" | grep -q '"personal"'; do
    (( $(ms) - t0 > 10000 )) && break
  done
  d=$(( $(ms) - t0 ))
  samples+=("$d")
  echo "sample $i: ${d} ms"
done
printf '%s\n' "${samples[@]}" | sort -n | awk '{a[NR]=$1} END {
  printf "freshness (delivered -> answer changed): n=%d p50=%d ms p90=%d ms max=%d ms\n",
    NR, a[int((NR+1)/2)], a[int(NR*0.9+0.5)], a[NR] }'
