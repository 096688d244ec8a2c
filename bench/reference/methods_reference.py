"""PyTorch reference of nad-onnx's `clean --method ft | ft-sam | fst | nad`, on the PyTorch state dict (real
BatchNorm layers). The data, subset, metrics, NAD loss and training loop come from nad_reference.py; this file
adds the ft-sam and fst steps and runs every method with nad-onnx's defaults. With --stream shared the batch
order and the augmentation draws come from nad-onnx's mulberry32 streams: the plain fine-tuning phase (ft, NAD's
teacher) Rng(seed+1), the main phase of nad / ft-sam / fst Rng(seed+2), FST's re-initialisation Rng(seed+3).

  /usr/bin/python3 bench/reference/methods_reference.py --method ft-sam --arch wrn16_1 --in-ch 1 \
      --state-dict fixtures/models/wrn16_1_nad.pt --data fixtures/data/fmnist-clean --test fixtures/data/fmnist-test.npz \
      --trigger grid --target 0 --seed 0 --stream shared --epochs 4 --lr 0.05 --batch 64 [--json out.json]

Prints a JSON object: before / after (and NAD's teacher) metrics (acc, acc_all, asr, ra) and per-epoch losses.
No baseline is trained (nad-onnx's --no-baseline).
"""
import argparse, copy, json, math, os, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from nad_reference import Rng, load, apply_draws, train as nad_train  # noqa: E402
from models import WRN, PreActResNet18, TvResNet, backdoor_metrics as metrics, augment as crop_flip_torch  # noqa: E402

DEFAULTS = {
    'ft': dict(epochs=10, lr=0.1, batch=64, lr_drop_epoch=2),
    'ft-sam': dict(epochs=20, lr=0.01, batch=256, rho=2.0, label_smoothing=0.1),
    'fst': dict(epochs=10, lr=0.01, batch=128, alpha=0.2),
    'nad': dict(teacher_epochs=10, epochs=20, lr=0.1, batch=64, lr_drop_epoch=2),
}
# Which flags each method takes (nad-onnx refuses the others).
APPLIES = {'ft': {'lr_drop_epoch'}, 'ft-sam': {'rho', 'label_smoothing'}, 'fst': {'alpha'}, 'nad': {'teacher_epochs', 'lr_drop_epoch'}}


# ---- the pieces the step references (fixtures/make_method_references.py) use as well ----

def cosine_lr(lr, epoch, epochs):
    return lr * (1 + math.cos(math.pi * epoch / epochs)) / 2


def smooth_ce(logits, y, s):
    """BackdoorBench's smooth_crossentropy: 1 - s on the label, s / (C - 1) on every other class."""
    c = logits.shape[1]
    t = torch.full_like(logits, s / (c - 1)).scatter_(1, y[:, None], 1 - s)
    return -(t * F.log_softmax(logits, 1)).sum(1).mean()


def batchnorms(model):
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def sam_step(model, opt, loss_fn, rho, adaptive=True):
    """One (adaptive) SAM step as BackdoorBench's SAM optimiser: gradient at w (running stats updated),
    e = rho * w^2 g / (||(|w| g)|| + 1e-12) over every parameter with a gradient, gradient again at w + e with
    BN momentum 0, w restored exactly, optimiser step with the second gradient. Returns the first loss."""
    loss = loss_fn(model)
    opt.zero_grad()
    loss.backward()
    params = [p for p in model.parameters() if p.grad is not None]
    with torch.no_grad():
        norm = torch.norm(torch.stack([((p.abs() if adaptive else 1.0) * p.grad).norm(p=2) for p in params]), p=2)
        scale = rho / (norm + 1e-12)
        saved = [p.detach().clone() for p in params]
        for p in params:
            p.add_((p * p if adaptive else 1.0) * p.grad * scale)
    bns = batchnorms(model)
    moms = [m.momentum for m in bns]
    for m in bns:
        m.momentum = 0.0  # batch statistics in the forward pass, running statistics untouched
    opt.zero_grad()
    loss_fn(model).backward()
    for m, mo in zip(bns, moms):
        m.momentum = mo
    with torch.no_grad():
        for p, s in zip(params, saved):
            p.copy_(s)  # exact w, as nad-onnx's store never changes during the step
    opt.step()
    return loss


def final_linear(model):
    return [m for m in model.modules() if isinstance(m, nn.Linear)][-1]


def fst_reinit(lin, rng=None, gen=None):
    """PyTorch's Linear init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), weight then bias; from nad-onnx's stream
    (row-major, (2u - 1) * bound per value) or from torch's generator."""
    bound = 1 / math.sqrt(lin.weight.shape[1])
    with torch.no_grad():
        for p in [lin.weight] + ([lin.bias] if lin.bias is not None else []):
            if rng is not None:
                p.copy_(torch.tensor([(2 * rng.next() - 1) * bound for _ in range(p.numel())], dtype=torch.float32).reshape(p.shape))
            else:
                p.uniform_(-bound, bound, generator=gen)


def fst_loss(model, xb, yb, lin, w0, alpha):
    """CE + alpha * <W, W0>; returns (total, ce)."""
    ce = F.cross_entropy(model(xb), yb)
    return ce + alpha * (lin.weight * w0).sum(), ce


def fst_rescale(lin, norm0):
    with torch.no_grad():
        lin.weight.mul_(norm0 / lin.weight.norm())


def crop_flip_shared(x, rng):
    """nad-onnx's CROP_FLIP draws (per image dy, dx, flip; no cutout draws). The cutout centre is put off the
    image (h + 1) so apply_draws' 2x2 hole is empty."""
    n, c, h, w = x.shape
    draws = []
    for _ in range(n):
        dy = rng.int(9); dx = rng.int(9)
        draws.append((dy, dx, rng.next() < 0.5, h + 1, w + 1))
    return apply_draws(x, draws)


# ---- the epoch loop for ft-sam and fst (ft and nad run in nad_reference.train) ----

def run_epochs(model, x, y, epochs, batch, lr_at, opt, step, aug):
    """Per epoch: a permutation, then per batch of >= 2 images the augmentation and one step (as
    src/training/epoch-loop.ts). aug.order() gives the permutation, aug(xb) the augmented batch;
    step(xb, yb) returns {'loss': ..., other terms}."""
    hist = []
    for ep in range(epochs):
        lr = lr_at(ep)
        for g in opt.param_groups:
            g['lr'] = lr
        model.train()
        perm = aug.order(len(y))
        sums, seen = {}, 0
        for i in range(0, len(y), batch):
            b = perm[i:i + batch]
            if len(b) < 2:
                continue
            terms = step(aug(x[b]), y[b])
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v) * len(b)
            seen += len(b)
        hist.append({'epoch': ep, 'lr': lr, **{k: v / max(seen, 1) for k, v in sums.items()}})
    return hist


class Augment:
    """Batch order and crop + flip from nad-onnx's stream (rng) or torch's generator (gen)."""

    def __init__(self, rng=None, gen=None):
        self.rng, self.gen = rng, gen

    def order(self, n):
        return torch.tensor(self.rng.permutation(n)) if self.rng else torch.randperm(n, generator=self.gen)

    def __call__(self, xb):
        return crop_flip_shared(xb, self.rng) if self.rng else crop_flip_torch(xb, self.gen)


def train_ft_sam(model, x, y, a, aug):
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, nesterov=False, weight_decay=5e-4)

    def step(xb, yb):
        return {'loss': sam_step(model, opt, lambda m: smooth_ce(m(xb), yb, a.label_smoothing), a.rho, adaptive=True)}
    return run_epochs(model, x, y, a.epochs, a.batch, lambda e: cosine_lr(a.lr, e, a.epochs), opt, step, aug)


def train_fst(model, x, y, a, aug, init_rng=None, gen=None):
    lin = final_linear(model)
    w0 = lin.weight.detach().clone()  # the backdoored weight, before the re-initialisation
    norm0 = w0.norm()
    fst_reinit(lin, rng=init_rng, gen=gen)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, nesterov=False, weight_decay=0)

    def step(xb, yb):
        total, ce = fst_loss(model, xb, yb, lin, w0, a.alpha)
        opt.zero_grad(); total.backward(); opt.step()
        fst_rescale(lin, norm0)
        return {'loss': total, 'ce': ce}
    return run_epochs(model, x, y, a.epochs, a.batch, lambda e: cosine_lr(a.lr, e, a.epochs), opt, step, aug)


# ---- CLI ----

def parse(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument('--method', choices=list(DEFAULTS), default='nad')
    ap.add_argument('--arch', default='wrn16_1'); ap.add_argument('--in-ch', type=int, default=3); ap.add_argument('--width', type=int, default=0)
    ap.add_argument('--state-dict', required=True); ap.add_argument('--data', required=True); ap.add_argument('--test', required=True)
    ap.add_argument('--ratio', type=float, default=1.0); ap.add_argument('--trigger', choices=['grid'], default='grid')
    ap.add_argument('--target', type=int, default=0); ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--stream', choices=['torch', 'shared'], default='torch')
    ap.add_argument('--threads', type=int, default=1); ap.add_argument('--json', default='')
    # Method flags; None = the method's default (DEFAULTS).
    for f, t in [('--epochs', int), ('--teacher-epochs', int), ('--lr', float), ('--batch', int), ('--lr-drop-epoch', int),
                 ('--rho', float), ('--alpha', float), ('--label-smoothing', float)]:
        ap.add_argument(f, type=t, default=None)
    ap.add_argument('--p', type=float, default=2.0); ap.add_argument('--betas', default='')
    a = ap.parse_args(argv)
    a.argv = list(argv) if argv is not None else sys.argv[1:]
    given = {k for k in ('teacher_epochs', 'lr_drop_epoch', 'rho', 'alpha', 'label_smoothing') if getattr(a, k) is not None}
    if given - APPLIES[a.method]:
        ap.error(f"{', '.join(sorted(given - APPLIES[a.method]))} does not apply to --method {a.method}")
    for k, v in DEFAULTS[a.method].items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    return a


def build(a):
    if a.arch == 'wrn16_1':
        m = WRN(16, 1, 10, a.in_ch)
    elif a.arch == 'preact18':
        m = PreActResNet18(10, a.in_ch, a.width or 64)
    else:
        m = TvResNet(10, a.in_ch, a.width or 16)
    m.load_state_dict(torch.load(a.state_dict))
    return m


def run(a, data=None):
    """data: (x, y, xt, yt) already loaded (several runs on the same files)."""
    t_start = time.time()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    shared = a.stream == 'shared'
    model = build(a)
    x, y, xt, yt = data or (*load(a.data, a.in_ch, a.ratio, a.seed), *load(a.test, a.in_ch))
    before = metrics(model, xt, yt, a.target)
    res = {'method': a.method, 'flags': a.argv, 'seed': a.seed, 'stream': a.stream, 'train_images': len(y), 'test_images': len(yt), 'before': before}
    params = {k: getattr(a, k) for k in DEFAULTS[a.method]}
    if a.method == 'ft':
        hist, _ = nad_train(model, x, y, a.epochs, a, gen, rng=Rng(a.seed + 1) if shared else None)
        losses = {'teacher': hist}
    elif a.method == 'nad':
        teacher = copy.deepcopy(model)
        th, _ = nad_train(teacher, x, y, a.teacher_epochs, a, gen, rng=Rng(a.seed + 1) if shared else None)
        res['teacher'] = metrics(teacher, xt, yt, a.target)
        n_taps = len(model(x[:2], with_taps=True)[1])
        betas = [float(b) for b in a.betas.split(',')] if a.betas else [500.0] + [1000.0] * (n_taps - 1)
        nh, _ = nad_train(model, x, y, a.epochs, a, gen, teacher=teacher, betas=betas, rng=Rng(a.seed + 2) if shared else None)
        losses = {'teacher': th, 'nad': nh}
        params.update(betas=betas, p=a.p)
    elif a.method == 'ft-sam':
        losses = {'ft-sam': train_ft_sam(model, x, y, a, Augment(Rng(a.seed + 2)) if shared else Augment(gen=gen))}
    else:
        losses = {'fst': train_fst(model, x, y, a, Augment(Rng(a.seed + 2)) if shared else Augment(gen=gen),
                                   init_rng=Rng(a.seed + 3) if shared else None, gen=gen)}
    res.update(after=metrics(model, xt, yt, a.target), losses=losses, parameters=params, total_s=time.time() - t_start,
               threads=a.threads, torch=torch.__version__)
    return res


def crop_flip_matches_nad_onnx():
    """nad-onnx's Rng and augmentBatch with crop + flip only (dist/, after `npx tsc`) against crop_flip_shared."""
    import subprocess
    import numpy as np
    js = ("import { Rng } from './dist/data/random.js'; import { augmentBatch } from './dist/data/augment.js';"
          "const r = new Rng(3), p = r.permutation(500), x = Float32Array.from({ length: 64 * 32 * 32 }, (_, i) => (i % 251) / 251);"
          "const cfg = { pad: 4, flip: true, cutout: 0 }, a = augmentBatch(x, 64, 32, 32, 1, cfg, r), b = augmentBatch(x, 64, 32, 32, 1, cfg, r);"
          "process.stdout.write(JSON.stringify({ p: Array.from(p), a: Array.from(a), b: Array.from(b), s: r.state }));")
    d = json.loads(subprocess.run(['node', '--input-type=module', '-e', js], cwd=os.path.join(HERE, '..', '..'), capture_output=True, check=True, text=True).stdout)
    rng = Rng(3)
    ok = rng.permutation(500) == d['p']
    x = torch.tensor((np.arange(64 * 32 * 32) % 251) / 251, dtype=torch.float32).reshape(64, 1, 32, 32)
    for k in 'ab':
        ok = ok and np.array_equal(crop_flip_shared(x, rng).reshape(-1).numpy(), np.array(d[k], dtype=np.float32))
    return ok and rng.s == d['s']


def main():
    if '--self-test' in sys.argv:
        print('--stream shared crop + flip draws what nad-onnx draws:', crop_flip_matches_nad_onnx())
        return
    a = parse()
    res = run(a)
    print(json.dumps(res))
    if a.json:
        json.dump(res, open(a.json, 'w'), indent=1)


if __name__ == '__main__':
    main()
