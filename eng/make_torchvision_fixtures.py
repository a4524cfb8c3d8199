#!/usr/bin/python3
"""Fixtures for the importer and the new activations, made with Debian's python3-torch and python3-torchvision
(PyTorch 1.13, torchvision 0.14):

tests/Ml.Cnn.Tests/Fixtures/torchvision/<family>.onnx — torch.onnx.export (opset 13, eval mode, input "input", output
  "output", dynamic batch) of torchvision classification families at 3x64x64 (VGG and AlexNet at 3x224x224) with 10 classes, narrowed where the full
  width would not fit the repository; random weights (seed 1), batch-norm statistics measured on random batches
  (PyTorch folds them into the convolutions at export). Beside each: <family>.x.f32 (a batch of 2 inputs) and <family>.y.f32
  (PyTorch's outputs), raw little-endian float32; index.json lists shapes and parameter counts.
tests/Ml.Cnn.Tests/Fixtures/torch/act_<name>.* — forward and backward of relu6, hardtanh(-0.5, 1), hardsigmoid,
  hardswish, silu and gelu in float64, in the format of ../shared/fixtures/torch (see its README);
  layernorm_<case>.* — LayerNorm over the channels of an image (as ConvNeXt applies it, through a channels-last view)
  and over the features of a vector, with its parameter gradients;
  attention_<case>.* — multi-head self-attention on [N, 3C, H, W] queries, keys and values (Ml.Cnn's SelfAttention:
  the H·W positions are the tokens), with its input gradient; tokens_<case>.* — ViT's class token and position
  embedding on a [N, C, H, W] patch grid, then the class token read back, with the parameters' gradients.

Run from the repository root: /usr/bin/python3 eng/make_torchvision_fixtures.py [family ... | ops]
(no argument: every family and the operator fixtures).
"""
import json
import os

import torch
import torchvision
from torchvision.models import convnext, efficientnet, mnasnet, mobilenet_v2, mobilenetv3, squeezenet1_1
from torchvision.models.googlenet import BasicConv2d, Inception, InceptionAux
from torchvision.models.vision_transformer import VisionTransformer

OUT = "tests/Ml.Cnn.Tests/Fixtures/torchvision"
TORCH = "tests/Ml.Cnn.Tests/Fixtures/torch"


def write(path, tensor):
    tensor.detach().to(torch.float32).contiguous().numpy().tofile(path)


class NarrowResNet18(torchvision.models.ResNet):
    """ResNet-18's layout (BasicBlocks [2, 2, 2, 2], 7x7 stem, max pool) at a quarter of its widths: 16-32-64-128."""

    def __init__(self, num_classes):
        super().__init__(torchvision.models.resnet.BasicBlock, [2, 2, 2, 2], num_classes=num_classes)
        self.inplanes = 16
        self.conv1 = torch.nn.Conv2d(3, 16, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(16)
        block = torchvision.models.resnet.BasicBlock
        self.layer1 = self._make_layer(block, 16, 2)
        self.layer2 = self._make_layer(block, 32, 2, stride=2)
        self.layer3 = self._make_layer(block, 64, 2, stride=2)
        self.layer4 = self._make_layer(block, 128, 2, stride=2)
        self.fc = torch.nn.Linear(128, num_classes)


class NarrowResNeXt(torchvision.models.ResNet):
    """ResNeXt's bottlenecks (32x4d's grouping: 4 groups of width 4 per 64 planes) in one block per stage, at a quarter
    of ResNet-50's widths: 64-128-256-512 out."""

    def __init__(self, num_classes):
        block = torchvision.models.resnet.Bottleneck
        super().__init__(block, [1, 1, 1, 1], num_classes=num_classes, groups=4, width_per_group=16)
        self.inplanes = 16
        self.conv1 = torch.nn.Conv2d(3, 16, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(16)
        self.layer1 = self._make_layer(block, 16, 1)
        self.layer2 = self._make_layer(block, 32, 1, stride=2)
        self.layer3 = self._make_layer(block, 64, 1, stride=2)
        self.layer4 = self._make_layer(block, 128, 1, stride=2)
        self.fc = torch.nn.Linear(128 * block.expansion, num_classes)


def narrow_efficientnet_v2(num_classes):
    """EfficientNetV2's design (fused MBConv stages, then MBConv with squeeze-and-excitation) in four small stages."""
    FusedMBConvConfig, MBConvConfig = efficientnet.FusedMBConvConfig, efficientnet.MBConvConfig
    setting = [FusedMBConvConfig(1, 3, 1, 16, 16, 1), FusedMBConvConfig(4, 3, 2, 16, 24, 2),
               MBConvConfig(4, 3, 2, 24, 32, 1), MBConvConfig(6, 3, 2, 32, 48, 2)]
    return efficientnet.EfficientNet(setting, 0.2, last_channel=128, num_classes=num_classes)


def narrow_googlenet(num_classes):
    """GoogLeNet's layout (nine inception blocks, ceil-mode pools) with every convolution a quarter as wide."""
    class QuarterConv(BasicConv2d):
        def __init__(self, in_channels, out_channels, **kwargs):
            super().__init__(in_channels if in_channels == 3 else in_channels // 4, out_channels // 4, **kwargs)

    class QuarterInception(Inception):  # GoogLeNet builds its inception blocks with their default convolution
        def __init__(self, *args, **kwargs):
            super().__init__(*args, conv_block=QuarterConv)

    model = torchvision.models.GoogLeNet(num_classes=num_classes, aux_logits=False, init_weights=True,
                                         blocks=[QuarterConv, QuarterInception, InceptionAux])
    model.fc = torch.nn.Linear(1024 // 4, num_classes)
    return model


def narrow_vgg11_bn(num_classes):
    """VGG-11 with batch norm (configuration A) at an eighth of its widths, 8-16-32-64, and a classifier of 128 units:
    at 3x224x224 its features are 7x7, the size its adaptive average pool keeps."""
    features = torchvision.models.vgg.make_layers([8, "M", 16, "M", 32, 32, "M", 64, 64, "M", 64, 64, "M"], batch_norm=True)
    model = torchvision.models.VGG(features, num_classes=num_classes, init_weights=True)
    model.classifier = torch.nn.Sequential(
        torch.nn.Linear(64 * 7 * 7, 128), torch.nn.ReLU(True), torch.nn.Dropout(),
        torch.nn.Linear(128, 128), torch.nn.ReLU(True), torch.nn.Dropout(), torch.nn.Linear(128, num_classes))
    return model


def narrow_alexnet(num_classes):
    """AlexNet's layout (11x11/4 stem, three max pools, five convolutions) at an eighth of its widths and a classifier
    of 128 units: at 3x224x224 its features are 6x6, the size its adaptive average pool keeps."""
    model = torchvision.models.AlexNet(num_classes=num_classes)
    widths = [8, 24, 48, 32, 32]
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    for i, conv in enumerate(convs):
        model.features[list(model.features).index(conv)] = torch.nn.Conv2d(
            3 if i == 0 else widths[i - 1], widths[i], conv.kernel_size, conv.stride, conv.padding)
    model.classifier = torch.nn.Sequential(
        torch.nn.Dropout(), torch.nn.Linear(32 * 6 * 6, 128), torch.nn.ReLU(True),
        torch.nn.Dropout(), torch.nn.Linear(128, 128), torch.nn.ReLU(True), torch.nn.Linear(128, num_classes))
    return model


def narrow_inception_v3(num_classes):
    """Inception v3's layout (its stem, 3 A, B, 4 C, D and 2 E blocks) with every convolution an eighth as wide."""
    from torchvision.models.inception import BasicConv2d as InceptionConv, Inception3

    class EighthConv(InceptionConv):
        def __init__(self, in_channels, out_channels, **kwargs):
            super().__init__(in_channels if in_channels == 3 else in_channels // 8, out_channels // 8, **kwargs)

    def eighth(block):  # Inception3 builds its blocks with their default convolution
        return type(block.__name__, (block,), {"__init__": lambda self, *a, **k: block.__init__(self, *a, conv_block=EighthConv, **k)})

    inception = torchvision.models.inception
    model = Inception3(num_classes=num_classes, aux_logits=False, transform_input=False, init_weights=True,
                       inception_blocks=[EighthConv] + [eighth(b) for b in (inception.InceptionA, inception.InceptionB,
                                         inception.InceptionC, inception.InceptionD, inception.InceptionE, inception.InceptionAux)])
    model.fc = torch.nn.Linear(2048 // 8, num_classes)
    return model


# Families exported at another size than 3x64x64: VGG's and AlexNet's adaptive pools keep 7x7 and 6x6 maps, which ONNX
# can only express (as a plain average pool) where the input's maps are a multiple of them; Inception v3's stem needs 75.
SIZES = {"vgg11_bn": 224, "alexnet": 224, "inception_v3": 96}  # Inception v3 needs 75 or more


def families():
    mbv3, mbv3_last = mobilenetv3._mobilenet_v3_conf("mobilenet_v3_small", width_mult=0.5)
    eff, eff_last = efficientnet._efficientnet_conf("efficientnet_b0", width_mult=0.25, depth_mult=0.25)
    return {
        "mobilenet_v2": lambda: mobilenet_v2(width_mult=0.35, num_classes=10),
        "mobilenet_v3_small": lambda: mobilenetv3.MobileNetV3(mbv3, mbv3_last, num_classes=10),
        "efficientnet_b0": lambda: efficientnet.EfficientNet(eff, 0.2, last_channel=eff_last, num_classes=10),
        "mnasnet": lambda: mnasnet.MNASNet(0.25, num_classes=10),
        "squeezenet1_1": lambda: squeezenet1_1(num_classes=10),
        "densenet": lambda: torchvision.models.DenseNet(growth_rate=8, block_config=(2, 2, 2), num_init_features=16, num_classes=10),
        "shufflenet_v2_x0_5": lambda: torchvision.models.shufflenet_v2_x0_5(num_classes=10),
        "resnet18": lambda: NarrowResNet18(num_classes=10),
        "googlenet": lambda: narrow_googlenet(num_classes=10),
        # regnet_y_400mf's design (grouped bottlenecks of group width 8, squeeze-and-excitation 0.25), shallower and narrower.
        "regnet_y": lambda: torchvision.models.RegNet(torchvision.models.regnet.BlockParams.from_init_params(
            depth=6, w_0=16, w_a=8.0, w_m=2.0, group_width=8, se_ratio=0.25), num_classes=10, stem_width=16),
        "vgg11_bn": lambda: narrow_vgg11_bn(num_classes=10),
        "alexnet": lambda: narrow_alexnet(num_classes=10),
        "inception_v3": lambda: narrow_inception_v3(num_classes=10),
        "resnext": lambda: NarrowResNeXt(num_classes=10),
        "efficientnet_v2": lambda: narrow_efficientnet_v2(num_classes=10),
        # ConvNeXt's design (patchify stem, depthwise 7x7, channels-last LayerNorm and Linear, GELU, layer scale) in
        # three stages of 16-32-64 channels.
        "convnext": lambda: convnext.ConvNeXt([convnext.CNBlockConfig(16, 32, 1), convnext.CNBlockConfig(32, 64, 1),
                                               convnext.CNBlockConfig(64, None, 2)], stochastic_depth_prob=0.1, num_classes=10),
        # ViT's design (patchify stem, class token, position embedding, pre-norm encoder blocks of multi-head attention
        # and a GELU MLP) at 8x8 patches (65 tokens), 3 heads of 16 channels, two blocks.
        "vit": lambda: VisionTransformer(image_size=64, patch_size=8, num_layers=2, num_heads=3, hidden_dim=48, mlp_dim=96,
                                         num_classes=10),
    }


def export_families(only):
    os.makedirs(OUT, exist_ok=True)
    index = {"generator": f"PyTorch {torch.__version__}, torchvision {torchvision.__version__}, "
                          "torch.onnx.export opset 13, eval mode", "models": {}}
    if only and os.path.exists(f"{OUT}/index.json"):
        with open(f"{OUT}/index.json") as f:
            index["models"] = json.load(f)["models"]
    for name, make in families().items():
        if only and name not in only:
            continue
        torch.manual_seed(1)
        model = make()
        size = SIZES.get(name, 64)
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.3, 0.3)
                    m.momentum = None  # a cumulative average over the batches below
                if isinstance(m, torch.nn.Linear):
                    m.weight.normal_(0, m.in_features ** -0.5)  # torchvision's 0.01 would make every output alike
                if isinstance(m, torch.nn.LayerNorm):
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.3, 0.3)
                if isinstance(m, convnext.CNBlock):
                    m.layer_scale.uniform_(0.5, 1.5)  # ConvNeXt's 1e-6 would hide every block from the test
                if isinstance(m, VisionTransformer):  # its zero class token and σ = 0.02 embedding would hide them
                    m.class_token.normal_(0, 1)
                    m.encoder.pos_embedding.normal_(0, 0.5)
                if isinstance(m, torch.nn.MultiheadAttention):
                    m.in_proj_bias.uniform_(-0.3, 0.3)
                    m.out_proj.bias.uniform_(-0.3, 0.3)
            # Batch-norm statistics from data rather than 0/1, so activations keep their scale through the depth
            # and the outputs depend on the input.
            model.train()
            for _ in range(4):
                model(torch.randn(16, 3, size, size))
        model.eval()
        x = torch.randn(2, 3, size, size)
        with torch.no_grad():
            y = model(x)
        torch.onnx.export(model, x, f"{OUT}/{name}.onnx", opset_version=13, input_names=["input"],
                          output_names=["output"], dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
        write(f"{OUT}/{name}.x.f32", x)
        write(f"{OUT}/{name}.y.f32", y)
        index["models"][name] = {"input_shape": list(x.shape), "output_shape": list(y.shape),
                                 "parameters": sum(p.numel() for p in model.parameters()),
                                 "output_std": float(y.std()), "rows_differ_by": float((y[0] - y[1]).abs().max())}
        print(name, index["models"][name], os.path.getsize(f"{OUT}/{name}.onnx"), "bytes")
    # The zoo's full-size forms, whose parameter counts the zoo tests assert (3x224x224, 1000 classes).
    index["zoo_parameters"] = {name: sum(p.numel() for p in make().parameters()) for name, make in
                               {"mobilenet_v2": torchvision.models.mobilenet_v2,
                                "densenet121": torchvision.models.densenet121,
                                "vit_b_16": torchvision.models.vit_b_16}.items()}
    with open(f"{OUT}/index.json", "w") as f:
        json.dump(index, f, indent=1)


def write_case(case, op, params, tensors):
    for t, v in tensors.items():
        write(f"{TORCH}/{case}.{t}.f32", v)
    with open(f"{TORCH}/{case}.json", "w") as out:
        json.dump({"case": case, "op": op, "params": params, "note": "float64", "tensors": [
            {"name": t, "shape": list(v.shape), "file": f"{case}.{t}.f32"} for t, v in tensors.items()]}, out, indent=1)
    print(case)


def activation_fixtures():
    cases = {
        "relu6": (torch.nn.functional.relu6, {}),
        "hardtanh": (lambda t: torch.nn.functional.hardtanh(t, -0.5, 1.0), {"min": -0.5, "max": 1.0}),
        "hardsigmoid": (torch.nn.functional.hardsigmoid, {}),
        "hardswish": (torch.nn.functional.hardswish, {}),
        "silu": (torch.nn.functional.silu, {}),
        "gelu": (torch.nn.functional.gelu, {}),
    }
    torch.manual_seed(1)
    for name, (f, params) in cases.items():
        case = f"act_{name}"
        # Values spread over [-4, 4] (every kink), kept 0.01 away from the kinks, where slopes are conventions.
        x = (torch.rand(3, 4, 5, 5, dtype=torch.float64) * 8 - 4)
        for kink in (-3.0, -0.5, 0.0, 1.0, 3.0, 6.0):
            x = torch.where((x - kink).abs() < 0.01, x + 0.02, x)
        x.requires_grad_(True)
        y = f(x)
        dy = torch.randn_like(y)
        y.backward(dy)
        write_case(case, name, params, {"x": x, "y": y, "dy": dy, "dx": x.grad})


def layernorm_fixtures():
    torch.manual_seed(2)
    # An image normalized over its channels at each pixel, as ConvNeXt does it: LayerNorm(C) on x.permute(0, 2, 3, 1).
    image = lambda x, g, b, eps: torch.nn.functional.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), g, b, eps).permute(0, 3, 1, 2)
    vector = lambda x, g, b, eps: torch.nn.functional.layer_norm(x, (x.shape[1],), g, b, eps)
    for case, shape, f, eps in (("layernorm_image", (3, 6, 5, 4), image, 1e-6), ("layernorm_vector", (4, 7), vector, 1e-5)):
        x = (torch.randn(*shape, dtype=torch.float64) * 2 + 0.5).requires_grad_(True)
        gamma = (torch.rand(shape[1], dtype=torch.float64) + 0.5).requires_grad_(True)
        beta = (torch.rand(shape[1], dtype=torch.float64) - 0.5).requires_grad_(True)
        y = f(x, gamma, beta, eps)
        dy = torch.randn_like(y)
        y.backward(dy)
        write_case(case, "layer_norm", {"eps": eps}, {"x": x, "gamma": gamma, "beta": beta, "y": y, "dy": dy, "dx": x.grad,
                                                      "dgamma": gamma.grad, "dbeta": beta.grad})


def attention(qkv, heads, scale):
    """Ml.Cnn's SelfAttention in PyTorch's operators: [N, 3C, H, W] -> [N, C, H, W], the H*W positions the tokens."""
    n, c3, h, w = qkv.shape
    c = c3 // 3
    q, k, v = qkv.reshape(n, 3, heads, c // heads, h * w).unbind(1)  # each [N, heads, d, T]
    p = torch.softmax(q.transpose(2, 3) @ k * scale, dim=-1)  # [N, heads, T, T]
    return (v @ p.transpose(2, 3)).reshape(n, c, h, w)


def attention_fixtures():
    torch.manual_seed(3)
    for case, shape, heads in (("attention_tokens", (2, 24, 1, 5), 2), ("attention_image", (2, 18, 2, 3), 3)):
        x = (torch.randn(*shape, dtype=torch.float64) * 1.5).requires_grad_(True)
        scale = (shape[1] // 3 // heads) ** -0.5
        y = attention(x, heads, scale)
        dy = torch.randn_like(y)
        y.backward(dy)
        write_case(case, "self_attention", {"heads": heads}, {"x": x, "y": y, "dy": dy, "dx": x.grad})
    # ViT's token handling on a 2x3 patch grid of 4 channels: flatten the grid, prepend the class token, add the
    # position embedding (the output y); and the class token read back from y (the output cls).
    x = torch.randn(2, 4, 2, 3, dtype=torch.float64).requires_grad_(True)
    token = torch.randn(4, dtype=torch.float64).requires_grad_(True)
    embedding = torch.randn(7, 4, dtype=torch.float64).requires_grad_(True)
    tokens = torch.cat([token.expand(2, 1, 4), x.flatten(2).transpose(1, 2)], dim=1) + embedding  # [N, 7, C]
    y = tokens.transpose(1, 2).unsqueeze(2)  # Ml.Cnn's [N, C, 1, 7]
    dy = torch.randn_like(y)
    y.backward(dy)
    write_case("tokens_0", "class_token_position_embedding", {}, {
        "x": x, "token": token, "embedding": embedding.t().reshape(4, 1, 7), "y": y, "dy": dy, "dx": x.grad,
        "dtoken": token.grad, "dembedding": embedding.grad.t().reshape(4, 1, 7)})


if __name__ == "__main__":
    import sys
    # Family names as arguments remake only those fixtures (and keep the others' entries in index.json); "ops" the
    # operator fixtures.
    families_asked = [a for a in sys.argv[1:] if a != "ops"]
    if families_asked or len(sys.argv) == 1:
        export_families(families_asked)
    if "ops" in sys.argv or len(sys.argv) == 1:
        activation_fixtures()
        layernorm_fixtures()
        attention_fixtures()
