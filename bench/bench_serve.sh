#!/usr/bin/env bash
# The ranker's latency benchmark (issue 4 targets): 100,000 items at k=32
# (model.dim=32) and 10,000 users with 20 recent items each, written through
# store/ as a trainer would; one `streamrec serve` process, keep-alive.
#
#  1. /v1/recommend?k=32 at a fixed 1,000 req/s (open loop, bench_serve load:
#     latency from each request's due time, no coordinated omission), 3 runs;
#  2. a rate sweep: the highest fixed rate whose median p99 (3 runs) <= 10 ms;
#  3. /v1/rank with 200 candidates at a fixed 500 req/s, 3 runs;
#  4. /v1/similar?k=32 at a fixed 1,000 req/s, 3 runs;
#  5. wrk (closed loop, fixed connections) for reference, with
#     bench/wrk_report.lua for the percentiles.
#
# Usage: bench/bench_serve.sh [SECONDS_PER_RUN]   (default 10)
# Environment: THREADS (ranker.threads, default 4 as in the config), CONNS (load connections,
# default 8), EXTRA (more `key=value` properties for the ranker, space-separated, e.g.
# EXTRA=ranker.score.prune=false for the full float pass), SERVE (the streamrec binary to serve with,
# default build/streamrec: e.g. another build's, measured with this load generator).  Everything it
# starts is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
THREADS=${THREADS:-4}
CONNS=${CONNS:-8}
make >/dev/null
B=build
pids=()
cleanup() { # reverse start order, by PID
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill "${pids[i]}" 2>/dev/null || true; wait "${pids[i]}" 2>/dev/null || true; done; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --loglevel warning &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
$B/bench_serve seed --redis-port "$RPORT" --items 100000 --users 10000 --dim 32 --recent 20

HPORT=$(free_port)
extra=()
for kv in ${EXTRA:-}; do extra+=(-X "$kv"); done
${SERVE:-$B/streamrec} serve -X "redis.url=redis://127.0.0.1:$RPORT" -X "http.listen=127.0.0.1:$HPORT" \
  -X model.dim=32 -X "ranker.threads=$THREADS" -X metrics.enable=false -X log.level=warn \
  "${extra[@]}" >/dev/null &
pids+=($!)
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$HPORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$HPORT/healthz"; echo

load() { $B/bench_serve load --port "$HPORT" --conns "$CONNS" --seconds "$SECS" "$@"; }
p99_of() { sed -n 's/.* p99=\([0-9.]*\) .*/\1/p'; }

echo "== warm-up"
load --rate 500 --seconds 2 >/dev/null

echo "== /v1/recommend k=32 at 1000 req/s (3 runs)"
for i in 1 2 3; do load --rate 1000; done

echo "== rate sweep, /v1/recommend k=32: highest rate whose median p99 of 3 runs <= 10 ms"
median() { sort -n | sed -n 2p; }
best=0
for rate in 1000 1500 2000 2500 3000 3500 4000; do
  p99s=()
  for i in 1 2 3; do
    line=$(load --rate "$rate" --seconds $(( (SECS + 1) / 2 )))
    echo "$line"
    p99s+=("$(echo "$line" | p99_of)")
  done
  p99=$(printf '%s\n' "${p99s[@]}" | median)
  echo "rate $rate: median p99 $p99 ms"
  if awk -v p="$p99" 'BEGIN { exit !(p <= 10) }'; then best=$rate; else break; fi
done
echo "highest sustained rate with median p99 <= 10 ms: $best req/s"

echo "== /v1/rank with 200 candidates at 500 req/s (3 runs)"
for i in 1 2 3; do load --kind rank --cands 200 --rate 500; done

echo "== /v1/similar k=32 at 1000 req/s (3 runs)"
for i in 1 2 3; do load --kind similar --rate 1000; done

echo "== wrk, closed loop, $CONNS connections, 2 threads"
wrk -t2 -c"$CONNS" -d"${SECS}s" -s bench/wrk_report.lua \
  "http://127.0.0.1:$HPORT/v1/recommend?user=user42&k=32" | grep '^wrk:'
body=$(mktemp)
python3 -c 'import json,random; random.seed(1); print(json.dumps({"user":"user42","items":["item%d"%random.randrange(100000) for _ in range(200)]}))' >"$body"
RANK_BODY_FILE=$body wrk -t2 -c"$CONNS" -d"${SECS}s" -s bench/wrk_report.lua \
  "http://127.0.0.1:$HPORT/v1/rank" | grep '^wrk:'
rm -f "$body"
