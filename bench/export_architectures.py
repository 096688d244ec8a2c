"""Full-size exports for bench/architectures.mjs (issue "Architectures a model hub holds"), into bench/out/arch:

  /usr/bin/python3 bench/export_architectures.py [cifar-extract-dir]

torchvision's classifiers with random weights (torch.manual_seed(0)) and 10 classes, exported with the
README's call at 32x32 (SqueezeNet at 64x64), plus a Conv-BN-ELU VGG with max pooling and dropout as
published backdoored CIFAR-10 models are. Before export, each BatchNorm's running statistics are set to the
statistics of 500 CIFAR-10 training images (PyTorch's cumulative average in train mode), as in a trained
model: with the initial mean 0 / variance 1 the folded network's eval function has activations at the wrong
scale (tiny), and a restored BatchNorm trained from there gets gradients thousands of times PyTorch's. Also writes the data the bench cleans with: 100 CIFAR-10 training
and 500 test images as .npz (x uint8 NHWC, y), at 32x32 and upsampled to 64x64 (nothing here is committed).
"""
import os, sys
import numpy as np
import torch
import torch.nn as nn
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, 'out', 'arch')
sys.path.insert(0, os.path.join(HERE, '..', 'fixtures'))
torch.set_num_threads(2)


class Vgg(nn.Module):
    def __init__(self, widths=(64, 128, 256)):
        super().__init__()
        layers, c = [], 3
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, padding=1), nn.BatchNorm2d(w), nn.ELU(inplace=True),
                       nn.Conv2d(w, w, 3, padding=1), nn.BatchNorm2d(w), nn.ELU(inplace=True), nn.MaxPool2d(2), nn.Dropout(0.25)]
            c = w
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(c * 16, 256), nn.ELU(inplace=True), nn.Dropout(0.5), nn.Linear(256, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


tv = torchvision.models
ARCHS = {name: (lambda name=name: getattr(tv, name)(num_classes=10), 64 if name.startswith('squeezenet') else 32)
         for name in ['resnet18', 'resnet50', 'regnet_x_400mf', 'mobilenet_v2', 'efficientnet_b0', 'densenet121', 'squeezenet1_1',
                      'mobilenet_v3_small', 'shufflenet_v2_x0_5', 'convnext_tiny']}
ARCHS['vgg_elu'] = (Vgg, 32)

os.makedirs(OUT, exist_ok=True)
if len(sys.argv) < 2:
    sys.exit('usage: export_architectures.py <cifar-extract-dir>')
from cifar_data import load_split
xtr, ytr = load_split(sys.argv[1], 'train')
rng = np.random.default_rng(0)
calib_idx = rng.choice(len(ytr), 500, replace=False)


def calibrate(model, size):
    x = torch.from_numpy(xtr[calib_idx]).permute(0, 3, 1, 2).float() / 255
    if size != 32:
        x = x.repeat_interleave(size // 32, 2).repeat_interleave(size // 32, 3)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        for i in range(0, len(x), 100):
            model(x[i:i + 100])
    return model.eval()


for name, (ctor, size) in ARCHS.items():
    path = os.path.join(OUT, name + '.onnx')
    if os.path.exists(path):
        continue
    torch.manual_seed(0)
    model = calibrate(ctor(), size)
    torch.onnx.export(model, torch.zeros(1, 3, size, size), path, opset_version=13, input_names=['input'], output_names=['logits'],
                      dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}})
    print(name, sum(p.numel() for p in model.parameters()), flush=True)

# The data the bench cleans with (another draw than the calibration images).
rng = np.random.default_rng(1)
for split, n in (('train', 100), ('test', 500)):
    x, y = load_split(sys.argv[1], split)
    keep = np.sort(rng.choice(len(y), n, replace=False))
    np.savez(os.path.join(OUT, f'{split}32.npz'), x=x[keep], y=y[keep])
    np.savez(os.path.join(OUT, f'{split}64.npz'), x=x[keep].repeat(2, axis=1).repeat(2, axis=2), y=y[keep])
