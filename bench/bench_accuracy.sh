#!/usr/bin/env bash
# Accuracy of the streamrec model and the four baselines on simulated shop
# logs (R: the harder RetailRocket-like preset, docs/SIMULATOR.md), both
# protocols, printed as the Markdown table of docs/BENCHMARKS.md
# ("## Accuracy").  Usage: bench/bench_accuracy.sh [BUILD_DIR]
# Extra eval options (e.g. -X model.dim=64) can be given in EVAL_OPTS.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build}/streamrec
EVAL_OPTS=${EVAL_OPTS:-}
[ -x "$BIN" ] || { echo "bench_accuracy: build first (make)"; exit 1; }
tmp=$(mktemp -d /tmp/bench_acc.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

logs=(
  "A|--users 20000 --items 50000 --events 100000 --seed 1"
  "B|--users 5000 --items 20000 --events 200000 --seed 2"
  "C|--users 50000 --items 10000 --events 300000 --seed 3 --zipf 0.8"
  "R|--preset retail --users 200000 --items 100000 --events 300000 --seed 4"
)
echo "| log | protocol | evaluated | model | HR@10 | NDCG@10 | MRR | coverage | novelty | streamrec HR / best baseline HR |"
echo "|---|---|---:|---|---:|---:|---:|---:|---:|---:|"
for entry in "${logs[@]}"; do
  name=${entry%%|*}
  opts=${entry#*|}
  # shellcheck disable=SC2086
  "$BIN" simulate $opts --out "$tmp/$name.csv"
  for proto in discovery all; do
    # shellcheck disable=SC2086
    "$BIN" eval --data "$tmp/$name.csv" --protocol $proto --every 10 --k 10 --json $EVAL_OPTS > "$tmp/r.json"
    python3 - "$tmp/r.json" "$name" "$proto" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
ms = r["models"]
best = max(v["hr"] for k, v in ms.items() if k != "streamrec")
ratio = ms["streamrec"]["hr"] / best if best > 0 else float("inf")
for k, v in ms.items():
    last = f"**{ratio:.2f}x**" if k == "streamrec" else ""
    print(f"| {sys.argv[2]} | {sys.argv[3]} | {r['evaluated']} | {k} | {v['hr']:.4f} | {v['ndcg']:.4f} | "
          f"{v['mrr']:.4f} | {v['coverage']:.4f} | {v['novelty']:.2f} | {last} |")
PY
  done
done
