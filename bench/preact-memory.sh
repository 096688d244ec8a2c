#!/usr/bin/env bash
# Peak RSS of `clean` on a full-width PreAct-ResNet-18 (11 M parameters, CIFAR-10 input, batch 64,
# 1 + 1 epochs on a small CIFAR subset). The model is exported here from a randomly initialised network
# (memory does not depend on the weights) and not committed (45 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${CIFAR_DIR:-/tmp/nad-onnx-cifar10}
if [ ! -d "$CACHE/train" ]; then mkdir -p "$CACHE" && tar xzf ../shared/datasets/cifar10-jpg.tar.gz -C "$CACHE"; fi
mkdir -p bench/out
/usr/bin/python3 - <<'PY'
import sys, torch
sys.path.insert(0, 'fixtures')
from models import PreActResNet18
torch.manual_seed(0)
m = PreActResNet18(10, 3, 64).eval()
torch.onnx.export(m, torch.zeros(1, 3, 32, 32), 'bench/out/preact18.onnx', opset_version=13, input_names=['input'],
                  output_names=['logits'], dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}})
PY
/usr/bin/time -f 'peak RSS %M KB, %e s' node dist/cli/main.js clean bench/out/preact18.onnx --method nad --data "$CACHE/train" --ratio ${RATIO:-0.00256} \
  --teacher-epochs 1 --epochs 1 --lr ${LR:-0.1} --out bench/out/preact18.clean.onnx --quiet --report bench/out/preact18-report.json
