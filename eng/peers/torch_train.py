"""PyTorch peer for `Ml.Cnn.Bench train`: the reference CNN or ResNet-20 on full Fashion-MNIST, with the same
architecture, batch size, optimizer and recipe as the benchmark gives Ml.Cnn.

ResNet-20 as Ml.Cnn's zoo builds it: 16/32/64 channels, three basic blocks per stage, 1×1 convolution + batch-norm
projection shortcuts where the shape changes, global average pooling; batch 128, SGD with Nesterov momentum 0.9,
weight decay 5e-4 (on weights, not biases or batch-norm scales, as Ml.Cnn decays them), rate 0.1 with a one-epoch
linear warm-up then cosine, per-channel input standardization, random horizontal flips and crops with 2 pixels of
zero padding.

Prints one JSON object: seconds per epoch, test accuracy, inference images/s, peak RSS (MiB).
Run with Debian's python3-torch: /usr/bin/python3 eng/peers/torch_train.py DATA_DIR EPOCHS THREADS [ARCH]
"""
import gzip
import json
import math
import resource
import struct
import sys
import time

import numpy as np
import torch


def blas_library():
    """The BLAS library this process loaded (PyTorch's dense layers call it): OpenBLAS, or Debian's slow reference one."""
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "libblas.so" in line.split()[-1]}
    return ", ".join(sorted(paths)) or "none"

import torch.nn as nn

folder, epochs, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
architecture = sys.argv[4] if len(sys.argv) > 4 else "reference-cnn"
torch.set_num_threads(threads)
torch.manual_seed(1)


def load(prefix):
    with gzip.open(f"{folder}/{prefix}-images-idx3-ubyte.gz") as f:
        _, n, rows, cols = struct.unpack(">IIII", f.read(16))
        x = np.frombuffer(f.read(), dtype=np.uint8).reshape(n, 1, rows, cols).astype(np.float32) / 255
    with gzip.open(f"{folder}/{prefix}-labels-idx1-ubyte.gz") as f:
        f.read(8)
        y = np.frombuffer(f.read(), dtype=np.uint8).astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


train_x, train_y = load("train")
test_x, test_y = load("t10k")


def conv_bn(cin, cout, kernel, stride=1, relu=True):
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, nn.ReLU()) if relu else nn.Sequential(*layers)


class BasicBlock(nn.Module):
    def __init__(self, cin, width, stride):
        super().__init__()
        self.main = nn.Sequential(conv_bn(cin, width, 3, stride), conv_bn(width, width, 3, relu=False))
        self.shortcut = conv_bn(cin, width, 1, stride, relu=False) if stride != 1 or cin != width else nn.Identity()

    def forward(self, x):
        return torch.relu(self.main(x) + self.shortcut(x))


def resnet20(classes=10):
    blocks, cin = [conv_bn(1, 16, 3)], 16
    for width in (16, 32, 64):
        for block in range(3):
            blocks.append(BasicBlock(cin, width, 2 if width != 16 and block == 0 else 1))
            cin = width
    return nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes))


if architecture == "resnet20":
    model, batch = resnet20(), 128
    decayed = [p for name, p in model.named_parameters() if p.dim() > 1]
    others = [p for name, p in model.named_parameters() if p.dim() <= 1]
    optimizer = torch.optim.SGD([{"params": decayed, "weight_decay": 5e-4}, {"params": others, "weight_decay": 0}],
                                lr=0.1, momentum=0.9, nesterov=True)
    mean, std = train_x.mean(), train_x.std()
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
else:
    model, batch = nn.Sequential(
        nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(3136, 1024), nn.ReLU(), nn.Dropout(0.4), nn.Linear(1024, 10)), 64
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def augment(x):
    """Random horizontal flips and random crops of the image padded by 2 zero pixels, per image."""
    flip = torch.rand(len(x)) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    padded = nn.functional.pad(x, (2, 2, 2, 2))
    dy, dx = torch.randint(0, 5, (len(x),)), torch.randint(0, 5, (len(x),))
    return torch.stack([padded[i, :, dy[i]:dy[i] + 28, dx[i]:dx[i] + 28] for i in range(len(x))])


loss_fn = nn.CrossEntropyLoss()
steps_per_epoch = (len(train_x) + batch - 1) // batch
epoch_seconds = []
for epoch in range(epochs):
    model.train()
    order = torch.randperm(len(train_x))
    start = time.perf_counter()
    for step, i in enumerate(range(0, len(order), batch)):
        idx = order[i:i + batch]
        x = train_x[idx]
        if architecture == "resnet20":
            position = epoch + step / steps_per_epoch
            rate = 0.1 * 0.5 * (1 + math.cos(math.pi * position / epochs))
            if position < 1:
                rate *= (step + 1) / steps_per_epoch
            for group in optimizer.param_groups:
                group["lr"] = rate
            x = augment(x)
        optimizer.zero_grad()
        loss = loss_fn(model(x), train_y[idx])
        loss.backward()
        optimizer.step()
    epoch_seconds.append(time.perf_counter() - start)

model.eval()
start = time.perf_counter()
correct = 0
with torch.no_grad():
    for i in range(0, len(test_x), 256):
        correct += (model(test_x[i:i + 256]).argmax(1) == test_y[i:i + 256]).sum().item()
inference = len(test_x) / (time.perf_counter() - start)
print(json.dumps({
    "torch": torch.__version__, "blas": blas_library(), "epoch_seconds": epoch_seconds, "test_accuracy": correct / len(test_x),
    "inference_images_per_second": inference, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
