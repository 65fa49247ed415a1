#!/usr/bin/env bash
# Wall time of `streamrec eval` (issue 2 target: 100,000 events over 50,000
# items with --every 10 in under 10 s on one core), median of repeated runs
# with hyperfine, both protocols, on two logs:
#   shop    `simulate --users 20000 --items 50000 --events 100000 --seed 1`
#           (realistic: ~17k of the 50k items occur in 100k events)
#   full    the same 100,000 events after a 50,000-line prefix of
#           impressions that puts every one of the 50,000 items into the
#           catalogue first: the worst case, every ranking scans 50k items
# Usage: bench/bench_eval.sh [BUILD_DIR] (default build).  Keep it short:
# the machine is shared.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
BIN=$BUILD/streamrec
RUNS=${RUNS:-5}
[ -x "$BIN" ] || { echo "bench_eval: build first (make)"; exit 1; }
command -v hyperfine >/dev/null || { echo "bench_eval: needs hyperfine"; exit 1; }
tmp=$(mktemp -d /tmp/bench_eval.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

"$BIN" simulate --users 20000 --items 50000 --events 100000 --seed 1 --out "$tmp/shop.csv"
{
  echo "ts_ms,user,item,event"
  # 2025-12-31T23:00Z, an hour before the simulated traffic starts.
  awk 'BEGIN { for (i = 0; i < 50000; i++) printf "1767222000000,catalogue,i%d,impression\n", i }'
  tail -n +2 "$tmp/shop.csv"
} > "$tmp/full.csv"

echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(date -u +%Y-%m-%d)"
for log in shop full; do
  for proto in discovery all; do
    "$BIN" eval --data "$tmp/$log.csv" --protocol $proto --every 10 --k 10 --json > "$tmp/out.json"
    hyperfine --style none --warmup 1 --runs "$RUNS" --export-json "$tmp/h.json" \
      "taskset -c 0 $BIN eval --data $tmp/$log.csv --protocol $proto --every 10 --k 10 --json" >/dev/null
    python3 - "$tmp/h.json" "$tmp/out.json" "$log" "$proto" <<'PY'
import json, sys
h = json.load(open(sys.argv[1]))["results"][0]
r = json.load(open(sys.argv[2]))
print(f"{sys.argv[3]:5s} {sys.argv[4]:9s} events {r['events']:7d} items {r['items']:6d} "
      f"evaluated {r['evaluated']:6d}  median {h['median']:.3f} s  "
      f"(min {h['min']:.3f}, max {h['max']:.3f}, {len(h['times'])} runs)")
PY
  done
done
