"""PyTorch peer for eng/Ml.Cnn.Bench: the reference CNN's layers, forward+backward at batch 64.

Prints one JSON object: seconds per forward+backward for each layer, and for the whole stack.
Run with Debian's python3-torch: /usr/bin/python3 eng/peers/torch_layers.py THREADS
"""
import json
import sys
import time

import torch


def blas_library():
    """The BLAS library this process loaded (PyTorch's dense layers call it): OpenBLAS, or Debian's slow reference one."""
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "libblas.so" in line.split()[-1]}
    return ", ".join(sorted(paths)) or "none"

import torch.nn as nn

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
batch = int(sys.argv[2]) if len(sys.argv) > 2 else 64
torch.set_num_threads(threads)
torch.manual_seed(0)

layers = [
    ("conv1 5x5 1->32 pad2", nn.Conv2d(1, 32, 5, padding=2), (1, 28, 28), False),
    ("relu1", nn.ReLU(), (32, 28, 28), True),
    ("pool1 2x2", nn.MaxPool2d(2), (32, 28, 28), True),
    ("conv2 5x5 32->64 pad2", nn.Conv2d(32, 64, 5, padding=2), (32, 14, 14), True),
    ("relu2", nn.ReLU(), (64, 14, 14), True),
    ("pool2 2x2", nn.MaxPool2d(2), (64, 14, 14), True),
    ("fc1 3136->1024", nn.Linear(3136, 1024), (3136,), True),
    ("relu3", nn.ReLU(), (1024,), True),
    ("fc2 1024->10", nn.Linear(1024, 10), (1024,), True),
]


def best_time(step, min_seconds=0.3, rounds=5):
    step()
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < 0.05:
        step()
        reps += 1
    per_round = max(1, int(reps * min_seconds / (time.perf_counter() - start)))
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(per_round):
            step()
        best = min(best, (time.perf_counter() - start) / per_round)
    return best


results = {}
for name, layer, shape, needs_input_grad in layers:
    x = torch.randn(batch, *shape, requires_grad=needs_input_grad)
    with torch.no_grad():
        dy = torch.randn_like(layer(x))

    def step():
        layer.zero_grad(set_to_none=True)
        if x.grad is not None:
            x.grad = None
        y = layer(x)
        y.backward(dy)

    results[name] = best_time(step)

stack = nn.Sequential(*[layer for _, layer, _, _ in layers[:6]], nn.Flatten(), *[layer for _, layer, _, _ in layers[6:]])
x = torch.randn(batch, 1, 28, 28)
with torch.no_grad():
    dy = torch.randn(batch, 10)


def stack_step():
    stack.zero_grad(set_to_none=True)
    stack(x).backward(dy)


results["whole stack"] = best_time(stack_step)
with torch.no_grad():
    stack.eval()
    results["inference (forward only)"] = best_time(lambda: stack(x))
print(json.dumps({"torch": torch.__version__, "blas": blas_library(), "threads": torch.get_num_threads(), "seconds": results}))
