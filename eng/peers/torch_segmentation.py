"""PyTorch peer for eng/Ml.Cnn.Bench `networks segmentation`: the zoo's U-Nets, FCN-8s and CenterNet (ModelZoo.UNet(classes,
16, 4) and (classes, 16, 3), ModelZoo.Fcn8s, ModelZoo.CenterNetDetector(10, 16)) written again in PyTorch, forward+backward (SGD step excluded)
of the per-pixel cross-entropy (11 classes) or of CenterNet's focal and L1 loss (10 classes) in training mode, and
forward alone in evaluation mode, on 1-channel images.

Prints one JSON object: parameter counts, and for each network seconds per forward+backward and per forward.
Run with Debian's python3-torch: /usr/bin/python3 eng/peers/torch_segmentation.py THREADS BATCH SIZE NAME...
"""
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

threads, batch, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
names = sys.argv[4:]
torch.set_num_threads(threads)
torch.manual_seed(0)
CLASSES = 11


def conv_bn(cin, cout, k):
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class UNet(nn.Module):
    def __init__(self, classes, width=16, depth=3):
        super().__init__()
        self.down = nn.ModuleList()
        cin = 1
        for level in range(depth):
            self.down.append(nn.Sequential(conv_bn(cin, width << level, 3), conv_bn(width << level, width << level, 3)))
            cin = width << level
        self.bottom = nn.Sequential(conv_bn(cin, width << depth, 3), conv_bn(width << depth, width << depth, 3))
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for level in reversed(range(depth)):
            self.up.append(nn.ConvTranspose2d(width << (level + 1), width << level, 2, stride=2))
            self.merge.append(nn.Sequential(conv_bn(2 * (width << level), width << level, 3), conv_bn(width << level, width << level, 3)))
        self.head = nn.Conv2d(width, classes, 1)

    def forward(self, x):
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottom(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips)):
            x = merge(torch.cat([skip, up(x)], 1))
        return self.head(x)


class Fcn8s(nn.Module):
    def __init__(self, classes):
        super().__init__()

        def stage(cin, cout, n):
            return nn.Sequential(*[conv_bn(cin if i == 0 else cout, cout, 3) for i in range(n)], nn.MaxPool2d(2))

        self.to_pool3 = nn.Sequential(stage(1, 16, 1), stage(16, 32, 1), stage(32, 64, 2))
        self.to_pool4 = stage(64, 128, 2)
        self.to_pool5 = stage(128, 128, 2)
        self.classifier = nn.Sequential(conv_bn(128, 256, 3), conv_bn(256, 256, 1), nn.Conv2d(256, classes, 1))
        self.up16 = nn.ConvTranspose2d(classes, classes, 4, 2, 1)
        self.score4 = nn.Conv2d(128, classes, 1)
        self.up8 = nn.ConvTranspose2d(classes, classes, 4, 2, 1)
        self.score3 = nn.Conv2d(64, classes, 1)

    def forward(self, x):
        pool3 = self.to_pool3(x)
        pool4 = self.to_pool4(pool3)
        scores = self.classifier(self.to_pool5(pool4))
        x = self.up16(scores) + self.score4(pool4)
        x = self.up8(x) + self.score3(pool3)
        return F.interpolate(x, scale_factor=8, mode="bilinear", align_corners=False)


class CenterNet(nn.Module):
    def __init__(self, classes, width=16):
        super().__init__()

        def twice(cin, cout):
            return nn.Sequential(conv_bn(cin, cout, 3), conv_bn(cout, cout, 3))

        self.full, self.halved = twice(1, width), twice(width, 2 * width)
        self.quarter, self.eighth = twice(2 * width, 4 * width), twice(4 * width, 8 * width)
        self.up = nn.ConvTranspose2d(8 * width, 4 * width, 2, stride=2)
        self.merge = twice(8 * width, 4 * width)
        self.heat = nn.Sequential(nn.Conv2d(4 * width, 4 * width, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(4 * width, classes, 1))
        self.box = nn.Sequential(nn.Conv2d(4 * width, 4 * width, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(4 * width, 4, 1))

    def forward(self, x):
        half = self.halved(F.max_pool2d(self.full(x), 2))
        quarter = self.quarter(F.max_pool2d(half, 2))
        x = self.merge(torch.cat([quarter, self.up(self.eighth(F.max_pool2d(quarter, 2)))], 1))
        return torch.cat([self.heat(x), self.box(x)], 1)


def centernet_loss(output, heat_target, box_target, box_weight):
    from torchvision.ops import sigmoid_focal_loss
    objects = max(1.0, float((box_weight[:, 0] > 0).sum()))
    focal = sigmoid_focal_loss(output[:, :-4], heat_target, alpha=0.25, gamma=2.0, reduction="sum")
    return (focal + (box_weight * (output[:, -4:] - box_target).abs()).sum()) / objects


def timed(step, rounds):
    step()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    return best


results, parameters = {}, {}
for name in names:
    model = {"unet": lambda: UNet(CLASSES, depth=4), "unet-small": lambda: UNet(CLASSES), "fcn8s": lambda: Fcn8s(CLASSES), "centernet": lambda: CenterNet(CLASSES - 1)}[name]()
    parameters[name] = sum(p.numel() for p in model.parameters())
    x = torch.randn(batch, 1, size, size)
    if name == "centernet":
        cells = size // 4
        heat = (torch.rand(batch, CLASSES - 1, cells, cells) < 0.01).float()
        box_target = torch.rand(batch, 4, cells, cells)
        box_weight = (torch.rand(batch, 1, cells, cells) < 0.02).float() * torch.tensor([1, 1, 0.1, 0.1]).reshape(1, 4, 1, 1)
        objective = lambda: centernet_loss(model(x), heat, box_target, box_weight)
    else:
        target = torch.randint(0, CLASSES, (batch, size, size))
        objective = lambda: F.cross_entropy(model(x), target)

    def train_step():
        model.zero_grad(set_to_none=True)
        objective().backward()

    def infer_step():
        with torch.no_grad():
            model(x)

    rounds = 3 if size >= 128 else 5
    model.train()
    train = timed(train_step, rounds)
    model.eval()
    infer = timed(infer_step, rounds)
    results[name] = {"train": train, "infer": infer}
print(json.dumps({"torch": torch.__version__, "parameters": parameters, "seconds": results}))
