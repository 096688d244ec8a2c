"""PyTorch reference of the procedure nad-onnx implements (NAD, Li et al. 2021), written from the paper and
../shared/NOTES.md, run with Debian's torch on the PyTorch state dict (real BatchNorm layers, not the ONNX
file). Same subset selection as nad-onnx (mulberry32 permutation, seed ^ 0x5eed), same defaults. With
--stream shared the batch order and every crop, flip and cutout also come from nad-onnx's mulberry32 stream
(checked by --self-test against dist/), so a same-seed comparison differs only by numerics and parametrisation.

  /usr/bin/python3 bench/reference/nad_reference.py --arch wrn16_1 --in-ch 3 --state-dict fixtures/cifar/wrn16_1_badnets.pt [--stream shared] \
      --data <cifar>/train --ratio 0.05 --test <cifar>/test --trigger grid --target 0 --seed 0 --json out.json

Prints a JSON object: before / teacher / after metrics (acc, acc_all, asr, ra), per-epoch losses and the
throughput of each phase (images/s), for bench/README.md and the issue-4 benchmark.
"""
import argparse, copy, json, os, resource, sys, time
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'fixtures'))
from models import WRN, PreActResNet18, TvResNet, backdoor_metrics as metrics  # noqa: E402


class Rng:
    """mulberry32, bit-identical to src/data/random.ts."""

    def __init__(self, seed):
        self.s = seed & 0xffffffff

    def next(self):
        self.s = (self.s + 0x6d2b79f5) & 0xffffffff
        t = self.s
        t = ((t ^ (t >> 15)) * (t | 1)) & 0xffffffff
        t ^= (t + (((t ^ (t >> 7)) * (t | 61)) & 0xffffffff)) & 0xffffffff
        return ((t ^ (t >> 14)) & 0xffffffff) / 4294967296

    def int(self, n):
        return int(self.next() * n)

    def permutation(self, n):
        p = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self.int(i + 1)
            p[i], p[j] = p[j], p[i]
        return p


def subset_indices(n, ratio, seed):
    k = max(1, round(ratio * n))
    return sorted(Rng((seed ^ 0x5eed) & 0xffffffff).permutation(n)[:min(k, n)])


def load(path, in_ch, ratio=None, seed=0):
    if os.path.isdir(path):
        from PIL import Image
        classes = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)))
        files, labels = [], []
        for ci, c in enumerate(classes):
            for f in sorted(os.listdir(os.path.join(path, c))):
                files.append(os.path.join(path, c, f)); labels.append(ci)
        idx = subset_indices(len(files), ratio, seed) if ratio and ratio < 1 else range(len(files))
        xs = []
        for i in idx:
            with Image.open(files[i]) as im:
                xs.append(np.asarray(im.convert('RGB' if in_ch == 3 else 'L')))
        x = np.stack(xs)
        if x.ndim == 3:
            x = x[..., None]
        y = np.array([labels[i] for i in idx])
    else:
        d = np.load(path)
        x, y = d['x'], d['y']
        if ratio and ratio < 1:
            idx = subset_indices(len(y), ratio, seed)
            x, y = x[idx], y[idx]
    return torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255, torch.from_numpy(np.asarray(y)).long()


def augment(x, gen):
    """RandomCrop(pad 4) + RandomHorizontalFlip + Cutout(1, 3) (2x2 hole: the code clips y +- length//2),
    vectorised over the batch (a per-sample Python loop made the peer several times slower)."""
    n, c, h, w = x.shape
    xp = F.pad(x, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (n,), generator=gen); dx = torch.randint(0, 9, (n,), generator=gen)
    fl = torch.rand(n, generator=gen) < 0.5
    cy = torch.randint(0, h, (n,), generator=gen); cx = torch.randint(0, w, (n,), generator=gen)
    iy = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None]
    ix = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :]
    out = xp[torch.arange(n)[:, None, None, None], torch.arange(c)[None, :, None, None], iy, ix]
    out = torch.where(fl[:, None, None, None], out.flip(3), out)
    yy = torch.arange(h)[None, :, None]; xx = torch.arange(w)[None, None, :]
    hole = (yy >= (cy - 1).clamp(min=0)[:, None, None]) & (yy < (cy + 1).clamp(max=h)[:, None, None]) & \
           (xx >= (cx - 1).clamp(min=0)[:, None, None]) & (xx < (cx + 1).clamp(max=w)[:, None, None])
    return out.masked_fill(hole[:, None, :, :], 0)


def augment_loop(x, gen):
    """The per-sample version, kept to check the vectorised one (python3 nad_reference.py --self-test)."""
    n, c, h, w = x.shape
    dy = torch.randint(0, 9, (n,), generator=gen); dx = torch.randint(0, 9, (n,), generator=gen)
    fl = torch.rand(n, generator=gen) < 0.5
    cy = torch.randint(0, h, (n,), generator=gen); cx = torch.randint(0, w, (n,), generator=gen)
    return apply_draws(x, [(int(dy[i]), int(dx[i]), bool(fl[i]), int(cy[i]), int(cx[i])) for i in range(n)])


def augment_shared(x, rng):
    """The same crops, flips and cutouts as src/data/augment.ts, drawn from the same mulberry32 stream in the
    same order (per image: dy, dx, flip, cutout y, cutout x), so a same-seed run sees the same batches."""
    n, c, h, w = x.shape
    draws = []
    for _ in range(n):
        dy = rng.int(9); dx = rng.int(9)  # nad-onnx's shift + 4: an offset into the 4-padded image
        fl = rng.next() < 0.5
        draws.append((dy, dx, fl, rng.int(h), rng.int(w)))
    return apply_draws(x, draws)


def apply_draws(x, draws):
    """Per image (dy, dx, flip, cy, cx): crop at offset (dy, dx) of the zero-padded image, flip, 2x2 cutout
    (the NAD code's Cutout(1, 3) clips y +- length // 2)."""
    n, c, h, w = x.shape
    xp = F.pad(x, (4, 4, 4, 4))
    out = torch.empty_like(x)
    for i, (dy, dx, fl, cy, cx) in enumerate(draws):
        o = xp[i, :, dy:dy + h, dx:dx + w]
        o = o.flip(2) if fl else o.clone()
        o[:, max(0, cy - 1):min(h, cy + 1), max(0, cx - 1):min(w, cx + 1)] = 0
        out[i] = o
    return out


def shared_stream_matches_nad_onnx():
    """Runs nad-onnx's own Rng and augmentBatch (dist/, after `npx tsc`) on a fixed batch and compares."""
    import subprocess
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')
    js = ("import { Rng } from './dist/data/random.js'; import { augmentBatch, NAD_AUGMENT } from './dist/data/augment.js';"
          "const r = new Rng(1), p = r.permutation(2500), x = Float32Array.from({ length: 64 * 32 * 32 * 3 }, (_, i) => (i % 251) / 251);"
          "const a = augmentBatch(x, 64, 32, 32, 3, NAD_AUGMENT, r), b = augmentBatch(x, 64, 32, 32, 3, NAD_AUGMENT, r);"
          "process.stdout.write(JSON.stringify({ p: Array.from(p), a: Array.from(a), b: Array.from(b), s: r.state }));")
    d = json.loads(subprocess.run(['node', '--input-type=module', '-e', js], cwd=root, capture_output=True, check=True, text=True).stdout)
    rng = Rng(1)
    ok = rng.permutation(2500) == d['p']
    x = torch.tensor((np.arange(64 * 32 * 32 * 3) % 251) / 251, dtype=torch.float32).reshape(64, 32, 32, 3).permute(0, 3, 1, 2)
    for k in 'ab':
        ok = ok and np.array_equal(augment_shared(x, rng).permute(0, 2, 3, 1).reshape(-1).numpy(), np.array(d[k], dtype=np.float32))
    return ok and rng.s == d['s']


def at(fm, p):
    am = torch.pow(torch.abs(fm), p).mean(dim=1)
    return am / (torch.norm(am, dim=(1, 2), keepdim=True) + 1e-6)


def train(model, x, y, epochs, args, gen, teacher=None, betas=None, rng=None):
    """gen: torch's generator (--stream torch); rng: a mulberry32 stream (--stream shared) that replaces it
    for the batch order and the augmentation, as nad-onnx draws them."""
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4, nesterov=True)
    hist, images, secs = [], 0, 0.0
    if teacher is not None:
        teacher.eval()
    for ep in range(epochs):
        lr = args.lr if ep < args.lr_drop_epoch else args.lr * 0.1
        for g in opt.param_groups:
            g['lr'] = lr
        model.train()
        perm = torch.tensor(rng.permutation(len(y))) if rng else torch.randperm(len(y), generator=gen)
        tot, n_seen = 0.0, 0
        t0 = time.time()
        for i in range(0, len(y), args.batch):
            b = perm[i:i + args.batch]
            if len(b) < 2:
                continue
            xb = augment_shared(x[b], rng) if rng else augment(x[b], gen)
            if teacher is None:
                loss = F.cross_entropy(model(xb), y[b])
            else:
                out, s_taps = model(xb, with_taps=True)
                with torch.no_grad():
                    t_taps = teacher(xb, with_taps=True)[1]
                loss = F.cross_entropy(out, y[b])
                for beta, fs, ft in zip(betas, s_taps, t_taps):
                    loss = loss + beta * (at(fs, args.p) - at(ft, args.p)).pow(2).mean()
            opt.zero_grad(); loss.backward(); opt.step()
            tot += float(loss) * len(b); n_seen += len(b)
        secs += time.time() - t0; images += n_seen
        hist.append({'epoch': ep, 'lr': lr, 'loss': tot / max(n_seen, 1)})
    return hist, images / max(secs, 1e-9)


def main():
    if '--self-test' in sys.argv:
        x = torch.rand(64, 3, 32, 32)
        a = augment(x, torch.Generator().manual_seed(1)); b = augment_loop(x, torch.Generator().manual_seed(1))
        print('vectorised augmentation equals the loop:', bool(torch.equal(a, b)))
        print('--stream shared draws what nad-onnx draws:', shared_stream_matches_nad_onnx())
        return
    ap = argparse.ArgumentParser()
    ap.add_argument('--arch', default='wrn16_1'); ap.add_argument('--in-ch', type=int, default=3); ap.add_argument('--width', type=int, default=0)
    ap.add_argument('--state-dict', required=True); ap.add_argument('--data', required=True); ap.add_argument('--test', required=True)
    ap.add_argument('--ratio', type=float, default=1.0); ap.add_argument('--target', type=int, default=0); ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--teacher-epochs', type=int, default=10); ap.add_argument('--epochs', type=int, default=20)
    ap.add_argument('--lr', type=float, default=0.1); ap.add_argument('--lr-drop-epoch', type=int, default=2)
    ap.add_argument('--batch', type=int, default=64); ap.add_argument('--p', type=float, default=2.0); ap.add_argument('--betas', default='')
    ap.add_argument('--threads', type=int, default=2); ap.add_argument('--json', default='')
    ap.add_argument('--stream', choices=['torch', 'shared'], default='torch',
                    help="batch order and augmentation from torch's generator, or from nad-onnx's mulberry32 stream "
                         "(teacher seed+1, distillation seed+2, as src/clean.ts seeds them)")
    args = ap.parse_args()
    t_start = time.time()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    if args.arch == 'wrn16_1':
        ctor = lambda: WRN(16, 1, 10, args.in_ch)
    elif args.arch == 'preact18':
        ctor = lambda: PreActResNet18(10, args.in_ch, args.width or 64)
    else:
        ctor = lambda: TvResNet(10, args.in_ch, args.width or 16)
    model = ctor(); model.load_state_dict(torch.load(args.state_dict))
    t0 = time.time()
    x, y = load(args.data, args.in_ch, args.ratio, args.seed)
    xt, yt = load(args.test, args.in_ch)
    load_s = time.time() - t0
    t0 = time.time(); before = metrics(model, xt, yt, args.target); eval_s = time.time() - t0
    teacher = copy.deepcopy(model)
    shared = args.stream == 'shared'
    th, t_ips = train(teacher, x, y, args.teacher_epochs, args, gen, rng=Rng(args.seed + 1) if shared else None)
    tm = metrics(teacher, xt, yt, args.target)
    n_taps = len(model(x[:2], with_taps=True)[1])
    betas = [float(b) for b in args.betas.split(',')] if args.betas else [500.0] + [1000.0] * (n_taps - 1)
    nh, n_ips = train(model, x, y, args.epochs, args, gen, teacher=teacher, betas=betas, rng=Rng(args.seed + 2) if shared else None)
    after = metrics(model, xt, yt, args.target)
    res = {'seed': args.seed, 'stream': args.stream, 'train_images': len(y), 'test_images': len(yt), 'before': before, 'teacher': tm, 'after': after,
           'losses': {'teacher': th, 'nad': nh}, 'images_per_s': {'teacher': t_ips, 'nad': n_ips, 'eval': (len(yt) + int((yt != args.target).sum())) / eval_s},
           'load_s': load_s, 'total_s': time.time() - t_start, 'threads': args.threads, 'torch': torch.__version__,
           'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    print(json.dumps(res))
    if args.json:
        json.dump(res, open(args.json, 'w'), indent=1)


if __name__ == '__main__':
    main()
