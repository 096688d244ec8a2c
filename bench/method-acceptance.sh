#!/usr/bin/env bash
# A method on the CIFAR-10 BadNets WRN-16-1 (fixtures/cifar) with 5% of the training set: nad-onnx `clean`
# and the PyTorch reference (bench/reference/methods_reference.py, on the .pt state dict with real BatchNorm
# layers) with the same seeds and the same random stream (STREAM=shared: batch order and augmentation from
# nad-onnx's mulberry32 stream). Issue 19 asks this for ft-sam: agreement within 3 points.
#   METHOD=ft-sam SEEDS="0" bench/method-acceptance.sh      (MODEL=wrn16_1_badnets_onecycle for the other model)
# Needs ../shared/datasets/cifar10-jpg.tar.gz and Debian's python3-torch. Results go to bench/out/ and the
# summary lines to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${CIFAR_DIR:-/tmp/nad-onnx-cifar10}
MODEL=${MODEL:-wrn16_1_badnets}
METHOD=${METHOD:-ft-sam}
STREAM=${STREAM:-shared}
SEEDS=${SEEDS:-"0"}
if [ ! -d "$CACHE/train" ]; then mkdir -p "$CACHE" && tar xzf ../shared/datasets/cifar10-jpg.tar.gz -C "$CACHE"; fi
mkdir -p bench/out
for s in $SEEDS; do
  /usr/bin/python3 bench/reference/methods_reference.py --method "$METHOD" --arch wrn16_1 --in-ch 3 --state-dict "fixtures/cifar/$MODEL.pt" \
    --stream "$STREAM" --data "$CACHE/train" --ratio 0.05 --test "$CACHE/test" --trigger grid --target 0 --seed "$s" --threads 1 \
    --json "bench/out/$MODEL-$METHOD-reference-$STREAM-seed$s.json" > /dev/null
  node dist/cli/main.js clean "fixtures/cifar/$MODEL.onnx" --data "$CACHE/train" --ratio 0.05 --test "$CACHE/test" --trigger grid --target 0 \
    --method "$METHOD" --no-baseline --seed "$s" --out "bench/out/$MODEL-$METHOD-seed$s.clean.onnx" --report "bench/out/$MODEL-$METHOD-nad-onnx-seed$s.json" --quiet > /dev/null
  node -e "
    const fs = require('fs');
    const ref = JSON.parse(fs.readFileSync('bench/out/$MODEL-$METHOD-reference-$STREAM-seed$s.json', 'utf8'));
    const me = JSON.parse(fs.readFileSync('bench/out/$MODEL-$METHOD-nad-onnx-seed$s.json', 'utf8'));
    const f = (m) => m.acc_all.toFixed(2) + ' / ' + m.asr.toFixed(2);
    console.log('$METHOD seed $s: nad-onnx ' + f(me.after) + ', PyTorch ' + f(ref.after) + ' (acc_all / asr), differences ' +
      (me.after.acc_all - ref.after.acc_all).toFixed(2) + ' / ' + (me.after.asr - ref.after.asr).toFixed(2));
  "
done
