"""PyTorch peer for eng/Ml.Cnn.Bench `networks`: torchvision networks, forward+backward (SGD step excluded) at a batch
size and image size, in training mode, and forward alone in evaluation mode.

Prints one JSON object: for each network, seconds per forward+backward and per forward.
Run with Debian's python3-torch: /usr/bin/python3 eng/peers/torch_networks.py THREADS BATCH SIZE NAME...
With ML_CNN_PEER_DEVICE=cuda the networks run on the GPU (each timed step ends in torch.cuda.synchronize()), and the
peak GPU memory PyTorch allocated is reported.
"""
import json
import os
import sys
import time

import torch
import torchvision

threads, batch, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
names = sys.argv[4:]
torch.set_num_threads(threads)
torch.manual_seed(0)
device = torch.device(os.environ.get("ML_CNN_PEER_DEVICE", "cpu"))


def synchronize():
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(step, rounds):
    step()
    synchronize()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        step()
        synchronize()
        best = min(best, time.perf_counter() - start)
    return best


results, parameters = {}, {}
for name in names:
    model = {"mobilenet-v2": lambda: torchvision.models.mobilenet_v2(num_classes=10),
             "resnet18": lambda: torchvision.models.resnet18(num_classes=10),
             "vit-b16": lambda: torchvision.models.vit_b_16(num_classes=10, image_size=size)}[name]().to(device)
    parameters[name] = sum(p.numel() for p in model.parameters())
    x = torch.randn(batch, 3, size, size, device=device)
    target = torch.randint(0, 10, (batch,), device=device)
    loss = torch.nn.CrossEntropyLoss()

    def train_step():
        model.zero_grad(set_to_none=True)
        loss(model(x), target).backward()

    def infer_step():
        with torch.no_grad():
            model(x)

    rounds = 3 if size >= 128 else 5
    model.train()
    train = timed(train_step, rounds)
    model.eval()
    infer = timed(infer_step, rounds)
    results[name] = {"train": train, "infer": infer}
summary = {"torch": torch.__version__, "device": str(device), "seconds": results, "parameters": parameters}
if device.type == "cuda":
    summary["gpu"] = torch.cuda.get_device_name(device)
    summary["peak_gpu_memory_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
print(json.dumps(summary))
