#!/usr/bin/python3
"""PyTorch reference tensors for the dense-prediction operators, made with Debian's python3-torch (1.13), in float64
and the format of ../shared/fixtures/torch (see its README), into tests/Ml.Cnn.Tests/Fixtures/torch:

convtranspose_<n>.*  nn.ConvTranspose2d forward and backward (x, weight, bias, y, dy, dx, dweight, dbias)
upsample_<mode>_<n>.*  F.interpolate(scale_factor, mode, align_corners=False) forward and backward (x, y, dy, dx)
pixelce_<n>.*  F.cross_entropy over [N, C, H, W] scores with ignore_index and class weights (x, labels, loss, dx)
focal_<n>.*  torchvision.ops.sigmoid_focal_loss(alpha, gamma, reduction='sum') (x, targets, loss, dx)
weightedl1_<n>.*  (w * |p - t|).sum() (p, t, w, loss, dp)
tests/Ml.Cnn.Tests/Fixtures/torchvision/dense_<name>.onnx  torch.onnx.export (opset 13, eval mode, input "input", output
  "output", dynamic batch, height and width) of a small U-Net (transposed convolutions, skip concatenation) and of a
  small decoder with bilinear and nearest interpolation; beside each <name>.x.f32 (2×1×32×48) and <name>.y.f32

Run from the repository root: /usr/bin/python3 eng/make_dense_fixtures.py
"""
import json

import torch
import torch.nn.functional as F

TORCH = "tests/Ml.Cnn.Tests/Fixtures/torch"


def save(case, op, params, tensors):
    for name, value in tensors.items():
        value.detach().to(torch.float32).contiguous().numpy().tofile(f"{TORCH}/{case}.{name}.f32")
    with open(f"{TORCH}/{case}.json", "w") as out:
        json.dump({"case": case, "op": op, "params": params, "note": "float64", "tensors": [
            {"name": t, "shape": list(v.shape), "file": f"{case}.{t}.f32"} for t, v in tensors.items()]}, out, indent=1)
    print(case)


def conv_transpose():
    # (n, in, h, w, out, kernel, stride, padding, output_padding, dilation, groups)
    cases = [
        (2, 3, 4, 5, 4, 3, 1, 0, 0, 1, 1),
        (2, 4, 3, 4, 6, 4, 2, 1, 0, 1, 1),   # the 2x learned upsampling of FCN and U-Net decoders
        (1, 3, 5, 4, 2, 3, 2, 1, 1, 1, 1),   # output padding reaches the even size
        (2, 4, 3, 3, 6, 3, 3, 0, 2, 2, 2),   # stride 3, dilation 2, two groups
        (1, 2, 4, 4, 3, 2, 2, 0, 0, 1, 1),   # FCN's kernel = stride
    ]
    for i, (n, c, h, w, o, k, s, p, op, d, g) in enumerate(cases):
        torch.manual_seed(10 + i)
        layer = torch.nn.ConvTranspose2d(c, o, k, s, p, op, g, True, d).double()
        x = torch.randn(n, c, h, w, dtype=torch.float64, requires_grad=True)
        y = layer(x)
        dy = torch.randn_like(y)
        y.backward(dy)
        save(f"convtranspose_{i}", "conv_transpose2d",
             {"out_channels": o, "kernel": k, "stride": s, "padding": p, "output_padding": op, "dilation": d, "groups": g},
             {"x": x, "weight": layer.weight, "bias": layer.bias, "y": y, "dy": dy, "dx": x.grad,
              "dweight": layer.weight.grad, "dbias": layer.bias.grad})


def upsample():
    cases = [(2, 3, 4, 5, 2), (1, 2, 3, 3, 3), (1, 2, 1, 4, 4)]
    for mode in ("nearest", "bilinear"):
        for i, (n, c, h, w, scale) in enumerate(cases):
            torch.manual_seed(20 + i)
            x = torch.randn(n, c, h, w, dtype=torch.float64, requires_grad=True)
            y = F.interpolate(x, scale_factor=scale, mode=mode, **({} if mode == "nearest" else {"align_corners": False}))
            dy = torch.randn_like(y)
            y.backward(dy)
            save(f"upsample_{mode}_{i}", "interpolate", {"scale": scale, "mode": mode},
                 {"x": x, "y": y, "dy": dy, "dx": x.grad})


def pixel_cross_entropy():
    # (n, classes, h, w, ignore_index, weighted)
    cases = [(2, 4, 3, 5, -100, False), (2, 3, 4, 4, 255, True), (1, 5, 2, 3, -1, True)]
    for i, (n, c, h, w, ignore, weighted) in enumerate(cases):
        torch.manual_seed(30 + i)
        x = (torch.randn(n, c, h, w, dtype=torch.float64) * 2).requires_grad_(True)
        labels = torch.randint(0, c, (n, h, w))
        labels[torch.rand(n, h, w) < 0.25] = ignore
        weight = (torch.rand(c, dtype=torch.float64) + 0.5) if weighted else None
        loss = F.cross_entropy(x, labels, weight=weight, ignore_index=ignore)
        loss.backward()
        tensors = {"x": x, "labels": labels.double().reshape(n, h * w), "loss": loss.reshape(1), "dx": x.grad}
        if weighted:
            tensors["weight"] = weight
        save(f"pixelce_{i}", "cross_entropy", {"ignore_index": ignore}, tensors)


def focal():
    from torchvision.ops import sigmoid_focal_loss
    # (shape, alpha, gamma): a heatmap with few positives, no alpha weighting, and gamma 0 (plain cross-entropy).
    cases = [((2, 3, 4, 5), 0.25, 2.0), ((1, 2, 3, 3), -1.0, 1.5), ((2, 2, 2, 3), 0.5, 0.0)]
    for i, (shape, alpha, gamma) in enumerate(cases):
        torch.manual_seed(40 + i)
        x = (torch.randn(*shape, dtype=torch.float64) * 3).requires_grad_(True)
        targets = (torch.rand(*shape, dtype=torch.float64) < 0.2).double()
        loss = sigmoid_focal_loss(x, targets, alpha=alpha, gamma=gamma, reduction="sum")
        loss.backward()
        save(f"focal_{i}", "sigmoid_focal_loss", {"alpha": alpha, "gamma": gamma},
             {"x": x, "targets": targets, "loss": loss.reshape(1), "dx": x.grad})


def weighted_l1():
    torch.manual_seed(50)
    p = torch.randn(2, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    t = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    w = (torch.rand(2, 4, 3, 3, dtype=torch.float64) < 0.3).double() * torch.tensor([1, 1, 0.1, 0.1], dtype=torch.float64).reshape(1, 4, 1, 1)
    loss = (w * (p - t).abs()).sum()
    loss.backward()
    save("weightedl1_0", "weighted_l1", {}, {"p": p, "t": t, "w": w, "loss": loss.reshape(1), "dp": p.grad})


class TinyUNet(torch.nn.Module):
    def __init__(self, classes=3, width=4):
        super().__init__()

        def twice(cin, cout):
            return torch.nn.Sequential(torch.nn.Conv2d(cin, cout, 3, padding=1, bias=False), torch.nn.BatchNorm2d(cout), torch.nn.ReLU(),
                                       torch.nn.Conv2d(cout, cout, 3, padding=1, bias=False), torch.nn.BatchNorm2d(cout), torch.nn.ReLU())

        self.down1, self.down2, self.bottom = twice(1, width), twice(width, 2 * width), twice(2 * width, 4 * width)
        self.up2, self.merge2 = torch.nn.ConvTranspose2d(4 * width, 2 * width, 2, stride=2), twice(4 * width, 2 * width)
        self.up1, self.merge1 = torch.nn.ConvTranspose2d(2 * width, width, 2, stride=2), twice(2 * width, width)
        self.head = torch.nn.Conv2d(width, classes, 1)

    def forward(self, x):
        a = self.down1(x)
        b = self.down2(F.max_pool2d(a, 2))
        x = self.bottom(F.max_pool2d(b, 2))
        x = self.merge2(torch.cat([b, self.up2(x)], 1))
        return self.head(self.merge1(torch.cat([a, self.up1(x)], 1)))


class TinyDecoder(torch.nn.Module):
    def __init__(self, classes=3):
        super().__init__()
        self.encode = torch.nn.Sequential(torch.nn.Conv2d(1, 6, 3, stride=2, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(6, 8, 3, stride=2, padding=1))
        self.deconv = torch.nn.ConvTranspose2d(8, classes, 4, stride=2, padding=1)

    def forward(self, x):
        x = self.deconv(self.encode(x))
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False) + F.interpolate(x, scale_factor=2, mode="nearest")


def dense_networks():
    out = "tests/Ml.Cnn.Tests/Fixtures/torchvision"
    for name, model in (("dense_unet", TinyUNet()), ("dense_decoder", TinyDecoder())):
        torch.manual_seed(60)
        for p in model.parameters():
            torch.nn.init.normal_(p, 0, 0.3)
        model.train()
        with torch.no_grad():
            for _ in range(3):
                model(torch.randn(8, 1, 32, 48))
        model.eval()
        x = torch.randn(2, 1, 32, 48)
        with torch.no_grad():
            y = model(x)
        torch.onnx.export(model, x, f"{out}/{name}.onnx", opset_version=13, input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "N", 2: "H", 3: "W"}, "output": {0: "N", 2: "H", 3: "W"}})
        x.numpy().tofile(f"{out}/{name}.x.f32")
        y.numpy().tofile(f"{out}/{name}.y.f32")
        print(name, list(y.shape))


if __name__ == "__main__":
    dense_networks()
    conv_transpose()
    upsample()
    pixel_cross_entropy()
    focal()
    weighted_l1()
