"""PyTorch reference of nad-onnx's `--method sau` (Shared Adversarial Unlearning, Wei et al. 2023, as
BackdoorBench's defense/sau.py and its CIFAR-10 config run it), on a state dict with real BatchNorm layers.

Per batch (no augmentation, shuffled, both models in eval mode):
  - shared PGD: d = +eps everywhere; `steps` times: forward both models at x + d (pixel space, then the
    normalisation), images each model still labels as on the clean image give -CE/2N to loss_adv, images not
    yet fooled alike to the same label give JS(softmax f, softmax g)/N to loss_share; d -= 0.2 * sign(grad of
    0.01 * loss_adv + loss_share), clipped to [-eps, eps]; stop once every image is shared;
  - one Adam step (lr 1e-4, betas 0.9 / 0.999) on CE(clean) + the shared unlearning loss on the perturbed
    images that fooled the frozen original (off the true label and off its clean prediction).

  /usr/bin/python3 bench/reference/sau_reference.py --arch wrn16_1 --in-ch 3 --state-dict fixtures/cifar/wrn16_1_badnets.pt \
      --data <cifar>/train --ratio 0.05 --test <cifar>/test --target 0 [--epochs 10] [--seed 0] --json out.json

Prints before / after metrics (grid trigger) and the curve per epoch. --stream torch (default): torch's random
stream orders the batches, so a comparison with nad-onnx is of the outcome only. --stream shared: the batch
order comes from nad-onnx's mulberry32 stream as `clean --method sau` draws it (Rng(seed + 2): per epoch a
permutation, then per image the two draws of a zero-pad shift), so both see the same batches in the same
order; the shared PGD starts at +eps and draws nothing.

The functions shared_pgd / sau_losses are what fixtures/make_sau_reference.py records for the tests.
"""
import argparse, json, os, sys, time
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nad_reference import Rng, load  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'fixtures'))
from models import WRN, PreActResNet18, backdoor_metrics  # noqa: E402

BETA1, BETA2, STEP = 0.01, 1.0, 0.2


def normalizer(mean, std, c):
    m = torch.tensor(mean if mean else [0.0] * c).view(1, -1, 1, 1)
    s = torch.tensor(std if std else [1.0] * c).view(1, -1, 1, 1)
    return lambda x: (x - m) / s


def shared_pgd(model, ref, x, y, norm, eps=0.2, steps=5, history=None):
    """x in [0, 1] pixel space. Returns the perturbation d (pixel units)."""
    with torch.no_grad():
        clean_f = model(norm(x)).argmax(1)
        clean_g = ref(norm(x)).argmax(1)
    d = torch.full_like(x, eps).clamp(-eps, eps).requires_grad_(True)
    n = x.shape[0]
    for _ in range(steps):
        lf, lg = model(norm(x + d)), ref(norm(x + d))
        pf, pg = lf.argmax(1), lg.argmax(1)
        fooled_f, fooled_g = pf != clean_f, pg != clean_g
        shared = fooled_f & fooled_g & (pf == pg)
        adv = torch.zeros(())
        if (~fooled_f).any():
            adv = adv + F.cross_entropy(lf, y, reduction='none')[~fooled_f].sum()
        if (~fooled_g).any():
            adv = adv + F.cross_entropy(lg, y, reduction='none')[~fooled_g].sum()
        adv = -adv / 2 / n
        p, q = F.softmax(lf, 1).clamp(min=1e-8), F.softmax(lg, 1).clamp(min=1e-8)
        mix = 0.5 * (p + q)
        js = 0.5 * (p * p.log() + q * q.log()) - 0.5 * (p * mix.log() + q * mix.log())
        share = js[~shared].sum(1).sum() / n
        loss = BETA1 * adv + BETA2 * share
        grad, = torch.autograd.grad(loss, d)
        with torch.no_grad():
            d -= STEP * grad.sign()
            d.clamp_(-eps, eps)
        if history is not None:
            history.append({'adv': float(adv), 'share': float(share), 'shared': int(shared.sum())})
        if bool(shared.all()):
            break
    return d.detach()


def sau_losses(model, ref, x, y, d, norm, classes):
    """CE(clean) and the shared unlearning loss, as tensors with a graph to the model's weights."""
    logits = model(norm(torch.cat([x, x + d])))
    lc, lp = logits[:x.shape[0]], logits[x.shape[0]:]
    with torch.no_grad():
        g_clean = ref(norm(x)).argmax(1)
        g_pert = ref(norm(x + d)).argmax(1)
    ce = F.cross_entropy(lc, y)
    poison = (g_pert != y) & (g_pert != g_clean)
    if poison.sum() == 0:
        return ce, torch.zeros(())
    h = F.one_hot(g_pert, classes)
    prob = F.softmax(lp, 1)
    neg = (prob * (1 - h)).sum(1)[poison]
    pos = (prob * h).sum(1)[poison]
    shared = (-torch.sum(torch.log(1e-6 + neg.clamp(max=0.999))) - torch.sum(torch.log(1 + 1e-6 - pos.clamp(min=0.001)))) / 2 / x.shape[0]
    return ce, shared


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--arch', default='wrn16_1'); ap.add_argument('--in-ch', type=int, default=3)
    ap.add_argument('--state-dict', required=True); ap.add_argument('--data', required=True); ap.add_argument('--test', required=True)
    ap.add_argument('--ratio', type=float, default=1.0); ap.add_argument('--target', type=int, default=0); ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--mean', type=lambda s: [float(v) for v in s.split(',')]); ap.add_argument('--std', type=lambda s: [float(v) for v in s.split(',')])
    ap.add_argument('--epochs', type=int, default=10); ap.add_argument('--batch', type=int, default=256); ap.add_argument('--lr', type=float, default=1e-4)
    ap.add_argument('--eps', type=float, default=0.2); ap.add_argument('--steps', type=int, default=5)
    ap.add_argument('--threads', type=int, default=2); ap.add_argument('--json', default='')
    ap.add_argument('--stream', choices=['torch', 'shared'], default='torch')
    a = ap.parse_args()
    rng = Rng(a.seed + 2) if a.stream == 'shared' else None
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    ctor = (lambda: WRN(16, 1, 10, a.in_ch)) if a.arch == 'wrn16_1' else (lambda: PreActResNet18(10, a.in_ch, 64))
    sd = {k: v.float() if v.is_floating_point() else v for k, v in torch.load(a.state_dict).items()}
    x, y = load(a.data, a.in_ch, a.ratio, a.seed)
    xt, yt = load(a.test, a.in_ch)
    norm = normalizer(a.mean, a.std, a.in_ch)
    model = ctor(); model.load_state_dict(sd); model.eval()
    ref = ctor(); ref.load_state_dict(sd); ref.eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    normed = lambda m: torch.nn.Sequential(Lambda(norm), m)
    before = backdoor_metrics(normed(model), xt, yt, a.target)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, betas=(0.9, 0.999))
    t0, curve = time.time(), []
    for epoch in range(a.epochs):
        order = torch.tensor(rng.permutation(len(y))) if rng else torch.randperm(len(y))
        for s in range(0, len(y), a.batch):
            idx = order[s:s + a.batch]
            if len(idx) < 2:
                continue  # nad-onnx skips a batch of one
            if rng:
                for _ in range(2 * len(idx)):  # src/data/augment.ts draws a (zero) shift per image
                    rng.next()
            xb, yb = x[idx], y[idx]
            d = shared_pgd(model, ref, xb, yb, norm, a.eps, a.steps)
            ce, shared = sau_losses(model, ref, xb, yb, d, norm, 10)
            opt.zero_grad()
            (ce + shared).backward()
            opt.step()
        model.eval()
        curve.append({'epoch': epoch + 1, **backdoor_metrics(normed(model), xt, yt, a.target), 'seconds': time.time() - t0})
        print(json.dumps(curve[-1]), file=sys.stderr, flush=True)
    res = {'method': 'sau (PyTorch reference)', 'seed': a.seed, 'stream': a.stream, 'epochs': a.epochs, 'before': before, 'after': curve[-1], 'curve': curve,
           'seconds': time.time() - t0, 'threads': a.threads}
    print(json.dumps(res))
    if a.json:
        json.dump(res, open(a.json, 'w'), indent=1)


class Lambda(torch.nn.Module):
    def __init__(self, f):
        super().__init__()
        self.f = f

    def forward(self, x):
        return self.f(x)


if __name__ == '__main__':
    main()
