"""PyTorch reference of nad-onnx's `--method anp` (Adversarial Neuron Pruning, Wu & Wang 2021, as the authors'
optimize_mask_cifar.py and prune_neuron_cifar.py run it), on a state dict with real BatchNorm layers:
masks on every BatchNorm channel's weight and multiplicative noise on weight and bias, noise uniform in
+-eps then `steps` sign-ascent steps of eps/steps (unclipped), masks by SGD (lr 0.2, momentum 0.9) on
alpha * CE(clean) + (1 - alpha) * CE(perturbed) and clipped to [0, 1], batches of 128 sampled with
replacement with crop + flip, model.train(); then the channels with mask <= threshold get weight 0 in the
original state dict. Same clean subset as nad-onnx (--ratio, mulberry32 with seed ^ 0x5eed); the random
stream is torch's (batch draws, augmentation and noise differ from nad-onnx's draw for draw, so a
comparison is statistical: same defaults, same data, several seeds).

  /usr/bin/python3 bench/reference/anp_reference.py --arch wrn16_1 --in-ch 3 --state-dict fixtures/cifar/wrn16_1_badnets.pt \
      --data <cifar>/train --ratio 0.05 --test <cifar>/test --target 0 [--iterations 2000] [--threshold 0.2] [--seed 0] --json out.json

Prints before / after metrics (grid trigger) and the number of pruned channels.
"""
import argparse, json, os, sys, time, types
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nad_reference import load  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'fixtures'))
from models import WRN, PreActResNet18, backdoor_metrics, augment  # noqa: E402


def noisy_forward(self, x):
    w = self.weight * (self.anp_mask + (self.anp_noise if self.anp_perturb else 0))
    b = self.bias * (1 + (self.anp_noise_bias if self.anp_perturb else 0))
    return F.batch_norm(x, self.running_mean, self.running_var, w, b, self.training, self.momentum, self.eps)


def make_noisy(model):
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        c = m.num_features
        m.anp_mask = nn.Parameter(torch.ones(c))
        m.anp_noise = nn.Parameter(torch.zeros(c))
        m.anp_noise_bias = nn.Parameter(torch.zeros(c))
        m.anp_perturb = False
        m.forward = types.MethodType(noisy_forward, m)
    return bns


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--arch', default='wrn16_1'); ap.add_argument('--in-ch', type=int, default=3)
    ap.add_argument('--state-dict', required=True); ap.add_argument('--data', required=True); ap.add_argument('--test', required=True)
    ap.add_argument('--ratio', type=float, default=1.0); ap.add_argument('--target', type=int, default=0); ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--iterations', type=int, default=2000); ap.add_argument('--batch', type=int, default=128)
    ap.add_argument('--eps', type=float, default=0.4); ap.add_argument('--steps', type=int, default=1); ap.add_argument('--alpha', type=float, default=0.2)
    ap.add_argument('--mask-lr', type=float, default=0.2); ap.add_argument('--threshold', type=float, default=0.2)
    ap.add_argument('--threads', type=int, default=2); ap.add_argument('--json', default='')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    ctor = (lambda: WRN(16, 1, 10, a.in_ch)) if a.arch == 'wrn16_1' else (lambda: PreActResNet18(10, a.in_ch, 64))
    sd = {k: v.float() if v.is_floating_point() else v for k, v in torch.load(a.state_dict).items()}
    x, y = load(a.data, a.in_ch, a.ratio, a.seed)
    xt, yt = load(a.test, a.in_ch)
    model = ctor(); model.load_state_dict(sd)
    before = backdoor_metrics(model, xt, yt, a.target)
    t0 = time.time()
    bns = make_noisy(model)
    for p in model.parameters():
        p.requires_grad_(False)
    masks = [m.anp_mask for m in bns]
    noises = [t for m in bns for t in (m.anp_noise, m.anp_noise_bias)]
    for t in masks + noises:
        t.requires_grad_(True)
    mask_opt = torch.optim.SGD(masks, lr=a.mask_lr, momentum=0.9)
    noise_opt = torch.optim.SGD(noises, lr=a.eps / a.steps)
    model.train()
    for it in range(a.iterations):
        idx = torch.randint(0, len(y), (a.batch,), generator=gen)
        xb, yb = augment(x[idx], gen), y[idx]
        with torch.no_grad():
            for t in noises:
                t.uniform_(-a.eps, a.eps, generator=gen)
        for m in bns:
            m.anp_perturb = True
        for _ in range(a.steps):
            noise_opt.zero_grad()
            (-F.cross_entropy(model(xb), yb)).backward()
            for t in noises:
                t.grad = torch.sign(t.grad)
            noise_opt.step()
        mask_opt.zero_grad()
        loss_rob = F.cross_entropy(model(xb), yb)
        for m in bns:
            m.anp_perturb = False
        loss_nat = F.cross_entropy(model(xb), yb)
        (a.alpha * loss_nat + (1 - a.alpha) * loss_rob).backward()
        mask_opt.step()
        with torch.no_grad():
            for t in masks:
                t.clamp_(0, 1)
        if (it + 1) % 500 == 0:
            print(f'iteration {it + 1}: loss {float(a.alpha * loss_nat + (1 - a.alpha) * loss_rob):.4f}', file=sys.stderr, flush=True)
    seconds = time.time() - t0
    # Prune the original model: weight 0 where the mask is at or below the threshold.
    pruned_model = ctor(); pruned_model.load_state_dict(sd)
    pruned = 0
    with torch.no_grad():
        for m, orig in zip(bns, [mm for mm in pruned_model.modules() if isinstance(mm, nn.BatchNorm2d)]):
            cut = m.anp_mask <= a.threshold
            orig.weight[cut] = 0
            pruned += int(cut.sum())
    after = backdoor_metrics(pruned_model, xt, yt, a.target)
    res = {'seed': a.seed, 'iterations': a.iterations, 'threshold': a.threshold, 'pruned_channels': pruned,
           'batchnorm_channels': sum(m.num_features for m in bns), 'before': before, 'after': after, 'seconds': seconds, 'threads': a.threads}
    print(json.dumps(res))
    if a.json:
        json.dump(res, open(a.json, 'w'), indent=1)


if __name__ == '__main__':
    main()
