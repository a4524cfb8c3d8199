"""PyTorch peer for `Ml.Cnn.Bench train`: the reference CNN on full Fashion-MNIST, same batch size and optimizer.

Prints one JSON object: seconds per epoch, test accuracy, inference images/s, peak RSS (MiB).
Run with Debian's python3-torch: /usr/bin/python3 eng/peers/torch_train.py DATA_DIR EPOCHS THREADS
"""
import gzip
import json
import resource
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn

folder, epochs, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
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
model = nn.Sequential(
    nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
    nn.Linear(3136, 1024), nn.ReLU(), nn.Dropout(0.4), nn.Linear(1024, 10))
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
loss_fn = nn.CrossEntropyLoss()
epoch_seconds = []
for epoch in range(epochs):
    model.train()
    order = torch.randperm(len(train_x))
    start = time.perf_counter()
    for i in range(0, len(order), 64):
        idx = order[i:i + 64]
        optimizer.zero_grad()
        loss = loss_fn(model(train_x[idx]), train_y[idx])
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
    "torch": torch.__version__, "epoch_seconds": epoch_seconds, "test_accuracy": correct / len(test_x),
    "inference_images_per_second": inference, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
