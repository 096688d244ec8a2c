#!/usr/bin/env bash
# Issue-3 acceptance on CIFAR-10: nad-onnx `clean` with the default settings on the backdoored WRN-16-1
# (fixtures/cifar, trained by fixtures/make_cifar_wrn.py) with 5% of the training set, and the PyTorch
# reference (bench/reference/nad_reference.py, on the .pt state dict) on the same model, split and seeds.
# SEEDS (default "0 1 2"): seeds of both. STREAM=shared (default) makes the reference draw its batch order and
# augmentation from nad-onnx's mulberry32 stream, so a same-seed pair sees the same batches; STREAM=torch
# uses torch's generator. MODEL=wrn16_1_badnets_onecycle runs the one-cycle model; MODEL=<model>_unfused runs
# nad-onnx on that model's export with BatchNorm nodes kept, made here into bench/out from the committed .pt
# by fixtures/export_unfused.py (not committed: it is derived); the reference is the same.
# Needs ../shared/datasets/cifar10-jpg.tar.gz and Debian's python3-torch. Results go to bench/out/.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${CIFAR_DIR:-/tmp/nad-onnx-cifar10}
MODEL=${MODEL:-wrn16_1_badnets}
PT=fixtures/cifar/${MODEL%_unfused}.pt
STREAM=${STREAM:-shared}
SEEDS=${SEEDS:-"0 1 2"}
if [ ! -d "$CACHE/train" ]; then mkdir -p "$CACHE" && tar xzf ../shared/datasets/cifar10-jpg.tar.gz -C "$CACHE"; fi
mkdir -p bench/out
ONNX=fixtures/cifar/$MODEL.onnx
if [ "$MODEL" != "${MODEL%_unfused}" ]; then
  ONNX=bench/out/$MODEL.onnx
  (cd fixtures && /usr/bin/python3 export_unfused.py "../$PT" "../$ONNX" 2> /dev/null)
fi
( for s in $SEEDS; do
    /usr/bin/python3 bench/reference/nad_reference.py --arch wrn16_1 --in-ch 3 --state-dict "$PT" --stream "$STREAM" \
      --data "$CACHE/train" --ratio 0.05 --test "$CACHE/test" --target 0 --seed "$s" --threads 1 \
      --json "bench/out/${MODEL%_unfused}-reference-$STREAM-seed$s.json" > /dev/null
  done ) &
REF=$!
for s in $SEEDS; do
  node dist/cli/main.js clean "$ONNX" --method nad --data "$CACHE/train" --ratio 0.05 --test "$CACHE/test" \
    --trigger grid --target 0 --seed "$s" --out "bench/out/$MODEL-seed$s.clean.onnx" --report "bench/out/$MODEL-nad-onnx-seed$s.json" --quiet
done
wait $REF
