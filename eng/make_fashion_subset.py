#!/usr/bin/env python3
"""Extracts the embedded Fashion-MNIST subset from the official IDX files.

Deterministic and class-balanced: the first 600 training images of each class (6,000 in all) and the first 100
test images of each class (1,000 in all), in their original file order. Output: gzip IDX files in
samples/data/fashion-mnist-subset/, the same format as the originals, so the same loader reads both.

Usage: python3 eng/make_fashion_subset.py [/usr/share/datasets/fashion-mnist]
(the directory comes from Debian's dataset-fashion-mnist package)
"""
import gzip
import os
import struct
import sys

source = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
target = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "samples", "data", "fashion-mnist-subset")
os.makedirs(target, exist_ok=True)


def read(prefix):
    with gzip.open(os.path.join(source, f"{prefix}-images-idx3-ubyte.gz")) as f:
        magic, count, rows, cols = struct.unpack(">IIII", f.read(16))
        assert magic == 2051
        images = f.read(count * rows * cols)
    with gzip.open(os.path.join(source, f"{prefix}-labels-idx1-ubyte.gz")) as f:
        magic, label_count = struct.unpack(">II", f.read(8))
        assert magic == 2049 and label_count == count
        labels = f.read(count)
    return images, labels, rows, cols


def write(prefix, images, labels, per_class):
    images_all, labels_all, rows, cols = images
    size = rows * cols
    taken = {c: 0 for c in range(10)}
    chosen = []
    for i, label in enumerate(labels_all):
        if taken[label] < per_class:
            taken[label] += 1
            chosen.append(i)
    # gzip with mtime 0 so reruns produce identical bytes.
    with gzip.GzipFile(os.path.join(target, f"{prefix}-images-idx3-ubyte.gz"), "wb", mtime=0) as f:
        f.write(struct.pack(">IIII", 2051, len(chosen), rows, cols))
        for i in chosen:
            f.write(images_all[i * size:(i + 1) * size])
    with gzip.GzipFile(os.path.join(target, f"{prefix}-labels-idx1-ubyte.gz"), "wb", mtime=0) as f:
        f.write(struct.pack(">II", 2049, len(chosen)))
        f.write(bytes(labels_all[i] for i in chosen))
    print(f"{prefix}: {len(chosen)} images")


train = read("train")
test = read("t10k")
write("train", train, train[1], 600)
write("t10k", test, test[1], 100)
