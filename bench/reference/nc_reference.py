"""PyTorch reference of nad-onnx's scan (Neural Cleanse, Wang et al. 2019), run on a PyTorch state dict with
real BatchNorm layers in eval mode. Same procedure as src/scan/neural-cleanse.ts: mask H x W and pattern
C x H x W through tanh / (2 + 1e-7) + 0.5 from raw parameters of 1, x' = (1 - m) x + m p in [0, 1], mean
cross-entropy to the target + cost * |m|_1, Adam (lr 0.1, betas 0.5 / 0.9), cost 1e-3 raised x2 / lowered
/2^1.5 after 5 epochs above / below 99 % success, best mask kept per epoch, early stop after 10 stalled
epochs once the cost moved both ways. Same images in the same order as nad-onnx: the --data subset
(mulberry32, seed ^ 0x5eed), capped at --max-images (seed + 7), visited in Rng(seed)'s permutation.

  /usr/bin/python3 bench/reference/nc_reference.py --arch wrn16_1 --in-ch 3 --state-dict fixtures/cifar/wrn16_1_badnets.pt \
      --data <cifar>/train --ratio 0.05 [--max-images 1000] [--epochs 20] [--seed 0] --json out.json

Prints one JSON object shaped like `nad-onnx scan --json` (classes[].mask_l1 / anomaly_index /
trigger_success, flagged, max_anomaly_index, seconds).
"""
import argparse, json, os, sys, time
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nad_reference import Rng, load, subset_indices  # noqa: E402
from models import WRN, PreActResNet18  # noqa: E402

EPS = 1e-7


def squash(raw):
    return torch.tanh(raw) / (2 + EPS) + 0.5


def reverse_trigger(model, x, y, target, epochs=20, batch=32, lr=0.1, init_cost=1e-3, threshold=0.99, patience=5,
                    multiplier=2.0, es_threshold=0.99, es_patience=10, mean=None, std=None, history=None):
    """x: N x C x H x W in [0, 1], in visiting order. Returns (mask, pattern, l1, reached, success on other classes, epochs)."""
    n, c, h, w = x.shape
    mask_raw = torch.ones(h, w, requires_grad=True)
    pattern_raw = torch.ones(c, h, w, requires_grad=True)
    opt = torch.optim.Adam([mask_raw, pattern_raw], lr=lr, betas=(0.5, 0.9), eps=1e-8)
    norm = (lambda t: t) if mean is None else (lambda t: (t - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1))
    cost, best = init_cost, None
    up = down = 0
    up_flag = down_flag = False
    es_count, es_best = 0, float('inf')
    epoch = 0
    while epoch < epochs:
        hits, l1s = 0, []
        for s in range(0, n, batch):
            xb = x[s:s + batch]
            m, p = squash(mask_raw), squash(pattern_raw)
            adv = norm((1 - m) * xb + m * p)
            out = model(adv)
            hits += int((out.argmax(1) == target).sum())
            loss = F.cross_entropy(out, torch.full((len(xb),), target, dtype=torch.long)) + cost * m.sum()
            l1s.append(float(m.sum()))
            opt.zero_grad()
            loss.backward()
            opt.step()
        success, l1 = hits / n, sum(l1s) / len(l1s)
        if history is not None:
            history.append({'epoch': epoch, 'success': success, 'l1': l1, 'cost': cost})
        if success >= threshold and l1 < (best[2] if best else float('inf')):
            with torch.no_grad():
                best = (squash(mask_raw).clone(), squash(pattern_raw).clone(), l1)
        if best:
            es_count = es_count + 1 if best[2] >= es_threshold * es_best else 0
            es_best = min(best[2], es_best)
            if up_flag and down_flag and es_count >= es_patience:
                epoch += 1
                break
        if success >= threshold:
            up, down = up + 1, 0
        else:
            up, down = 0, down + 1
        if up >= patience:
            up, cost, up_flag = 0, cost * multiplier, True
        elif down >= patience:
            down, cost, down_flag = 0, cost / multiplier ** 1.5, True
        epoch += 1
    with torch.no_grad():
        mask, pattern = (best[0], best[1]) if best else (squash(mask_raw), squash(pattern_raw))
        other = y != target
        pred = torch.cat([model(norm((1 - mask) * x[s:s + batch] + mask * pattern)).argmax(1) for s in range(0, n, batch)])
        succ = float((pred[other] == target).float().mean()) if other.any() else 0.0
    return mask, pattern, float(mask.sum()), best is not None, succ, epoch


def build(arch, in_ch):
    if arch == 'wrn16_1':
        return WRN(16, 1, 10, in_ch)
    if arch == 'preact18':
        return PreActResNet18(10, in_ch, 64)
    sys.exit(f'unknown --arch {arch} (wrn16_1, preact18)')


def anomaly(norms):
    med = float(np.median(norms))
    mad = 1.4826 * float(np.median(np.abs(np.array(norms) - med)))
    return [0.0 if (v >= med or mad == 0) else (med - v) / mad for v in norms], med, mad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--arch', default='wrn16_1')
    ap.add_argument('--in-ch', type=int, default=3)
    ap.add_argument('--state-dict', required=True)
    ap.add_argument('--data', required=True)
    ap.add_argument('--ratio', type=float)
    ap.add_argument('--max-images', type=int, default=1000)
    ap.add_argument('--epochs', type=int, default=20)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threshold', type=float, default=2.0)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--json')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = build(a.arch, a.in_ch)
    sd = torch.load(a.state_dict)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()})
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x, y = load(a.data, a.in_ch, a.ratio, a.seed)
    if len(y) > a.max_images:
        idx = subset_indices(len(y), a.max_images / len(y), a.seed + 7)
        x, y = x[idx], y[idx]
    order = Rng(a.seed).permutation(len(y))
    x, y = x[order], y[order]
    classes = int(model(x[:1]).shape[1])
    t0 = time.time()
    rows = []
    for t in range(classes):
        _, _, l1, reached, succ, ep = reverse_trigger(model, x, y, t, epochs=a.epochs)
        rows.append({'label': t, 'mask_l1': l1, 'trigger_success': succ, 'reached': reached, 'epochs': ep})
        print(f'class {t}: mask L1 {l1:.1f}, success {100 * succ:.1f} %, {ep} epochs', file=sys.stderr, flush=True)
    idx, med, mad = anomaly([r['mask_l1'] for r in rows])
    for r, v in zip(rows, idx):
        r['anomaly_index'] = v
    out = {'classes': rows, 'flagged': [r['label'] for r in sorted(rows, key=lambda r: -r['anomaly_index']) if r['anomaly_index'] > a.threshold],
           'max_anomaly_index': max(idx), 'median_mask_l1': med, 'mad': mad, 'images': len(y), 'seconds': time.time() - t0,
           'settings': {'epochs': a.epochs, 'max_images': a.max_images, 'seed': a.seed, 'threads': a.threads}}
    s = json.dumps(out, indent=1)
    if a.json:
        open(a.json, 'w').write(s)
    print(s)


if __name__ == '__main__':
    main()
