#!/usr/bin/env bash
# Full-size torchvision classifiers and a VGG: inspect, logit parity with onnxruntime, and a 1 + 1-epoch clean
# on 100 CIFAR-10 images each, with step time and peak RSS (bench/architectures.mjs; table in bench/README.md).
#   bench/architectures.sh [name ...]
# Needs Debian's python3-torch/python3-torchvision (exports) and ../shared/datasets/cifar10-jpg.tar.gz.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${CIFAR_DIR:-/tmp/nad-onnx-cifar10}
if [ ! -d "$CACHE/train" ]; then mkdir -p "$CACHE" && tar xzf ../shared/datasets/cifar10-jpg.tar.gz -C "$CACHE"; fi
[ -d dist ] || npm run build
/usr/bin/python3 bench/export_architectures.py "$CACHE"
node bench/architectures.mjs "$@"
