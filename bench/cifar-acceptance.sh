#!/usr/bin/env bash
# Issue-3 acceptance on CIFAR-10: nad-onnx `clean` with the default settings on the backdoored WRN-16-1
# (fixtures/cifar, trained by fixtures/make_cifar_wrn.py) with 5% of the training set, and the PyTorch
# reference (bench/reference/nad_reference.py) on the same model, split and seed, plus two more seeds.
# MODEL=wrn16_1_badnets_onecycle runs the same on the one-cycle-trained model (bench/README.md).
# Needs ../shared/datasets/cifar10-jpg.tar.gz and Debian's python3-torch. Results go to bench/out/.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${CIFAR_DIR:-/tmp/nad-onnx-cifar10}
MODEL=${MODEL:-wrn16_1_badnets}
if [ ! -d "$CACHE/train" ]; then mkdir -p "$CACHE" && tar xzf ../shared/datasets/cifar10-jpg.tar.gz -C "$CACHE"; fi
mkdir -p bench/out
SEEDS=${SEEDS:-"0 1 2"}
( for s in $SEEDS; do
    /usr/bin/python3 bench/reference/nad_reference.py --arch wrn16_1 --in-ch 3 --state-dict "fixtures/cifar/$MODEL.pt" \
      --data "$CACHE/train" --ratio 0.05 --test "$CACHE/test" --target 0 --seed "$s" --threads 1 \
      --json "bench/out/$MODEL-reference-seed$s.json" > /dev/null
  done ) &
REF=$!
node dist/cli/main.js clean "fixtures/cifar/$MODEL.onnx" --data "$CACHE/train" --ratio 0.05 --test "$CACHE/test" \
  --trigger grid --target 0 --seed 0 --out "bench/out/$MODEL.clean.onnx" --report "bench/out/$MODEL-nad-onnx-seed0.json" --quiet
wait $REF
