#!/usr/bin/env bash
# The scan on the CIFAR-10 fixtures (issue "Unknown trigger"): one run per call, with the defaults (1,000 of the
# 2,500 clean images, 20 epochs per class with the early stop) or a doubled budget.
#   bench/scan.sh <model> [budget]        budget: default | double
# model: a fixture of fixtures/cifar (wrn16_1_badnets, wrn16_1_blended, wrn16_1_sig, wrn16_1_wanet, wrn16_1_clean),
#   or any ONNX file (e.g. bench/out/efficacy-wrn16_1_badnets-nad-0.onnx, BadNets after NAD).
# Writes bench/results/scan/<name>-<budget>.json (skipped when it exists); bench/scan-table.mjs renders the table
# in bench/README.md. Needs ../shared/datasets/cifar10-jpg.tar.gz. Time it with nothing else running.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: bench/scan.sh <model> [default|double]" >&2; exit 2; }
MODEL=$1 BUDGET=${2:-default}
case "$MODEL" in *.onnx) FILE=$MODEL; NAME=$(basename "$MODEL" .onnx) ;; *) FILE=fixtures/cifar/$MODEL.onnx; NAME=$MODEL ;; esac
CACHE=${CIFAR_DIR:-/tmp/nad-onnx-cifar10}
OUT=bench/results/scan/$NAME-$BUDGET.json
if [ -f "$OUT" ]; then echo "done already: $OUT"; exit 0; fi
if [ ! -d "$CACHE/train" ]; then mkdir -p "$CACHE" && tar xzf ../shared/datasets/cifar10-jpg.tar.gz -C "$CACHE"; fi
[ -d dist ] || npm run build
mkdir -p bench/results/scan bench/out
EPOCHS=20; [ "$BUDGET" = double ] && EPOCHS=40
node dist/cli/main.js scan "$FILE" --data "$CACHE/train" --ratio 0.05 --epochs "$EPOCHS" --json --quiet \
  --html "bench/out/scan-$NAME-$BUDGET.html" > "$OUT.tmp"
node -e "const fs=require('fs'),os=require('os');const r=JSON.parse(fs.readFileSync('$OUT.tmp','utf8'));
r.model='$NAME';r.budget='$BUDGET';r.machine={cpu:os.cpus()[0].model,avx512:/\\bavx512f\\b/.test(fs.readFileSync('/proc/cpuinfo','utf8')),cores:os.cpus().length};
fs.writeFileSync('$OUT',JSON.stringify(r,null,1))"
rm "$OUT.tmp"
node -e "const r=require('./$OUT');console.log(r.model,r.budget,'flagged',r.flagged,'max index',r.max_anomaly_index.toFixed(2),'secondary',r.secondary?.flagged,r.seconds.toFixed(0)+' s')"
