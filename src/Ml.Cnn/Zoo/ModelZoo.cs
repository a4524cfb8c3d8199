using Ml.Cnn.Backends;
using Ml.Cnn.Core;
using Ml.Cnn.Layers;
using Ml.Cnn.Networks;

namespace Ml.Cnn.Zoo;

/// <summary>
/// Network definitions of the classic architectures. Each adapts to the input shape given to
/// <see cref="Network.Create"/> and ends in <c>classes</c> scores (logits). At 3×224×224 with 1000 classes the
/// parameter counts equal torchvision's.
/// </summary>
public static class ModelZoo
{
    /// <summary>The names <see cref="Get"/> accepts.</summary>
    public static IReadOnlyList<string> Names { get; } =
    [
        "linear", "mlp", "lenet5", "reference-cnn", "alexnet",
        "vgg11", "vgg13", "vgg16", "vgg19", "vgg11-bn", "vgg13-bn", "vgg16-bn", "vgg19-bn",
        "googlenet", "resnet18", "resnet34", "resnet50", "resnet20", "resnet56", "densenet121", "mobilenet-v2", "vit-b16",
    ];

    /// <summary>A definition by name (see <see cref="Names"/>); "mlp" uses two hidden layers of 256.</summary>
    public static NetworkBuilder Get(string name, int classes) => name.ToLowerInvariant() switch
    {
        "linear" => LinearClassifier(classes),
        "mlp" => Mlp(classes, 256, 256),
        "lenet5" => LeNet5(classes),
        "reference-cnn" => ReferenceCnn(classes),
        "alexnet" => AlexNet(classes),
        "vgg11" => Vgg(11, false, classes),
        "vgg13" => Vgg(13, false, classes),
        "vgg16" => Vgg(16, false, classes),
        "vgg19" => Vgg(19, false, classes),
        "vgg11-bn" => Vgg(11, true, classes),
        "vgg13-bn" => Vgg(13, true, classes),
        "vgg16-bn" => Vgg(16, true, classes),
        "vgg19-bn" => Vgg(19, true, classes),
        "googlenet" => GoogLeNet(classes),
        "resnet18" => ResNet(18, classes),
        "resnet34" => ResNet(34, classes),
        "resnet50" => ResNet(50, classes),
        "resnet20" => CifarResNet(20, classes),
        "resnet56" => CifarResNet(56, classes),
        "densenet121" => DenseNet(32, [6, 12, 24, 16], 64, classes),
        "mobilenet-v2" => MobileNetV2(classes),
        "vit-b16" => VisionTransformer(16, 12, 12, 768, 3072, classes),
        _ => throw new ArgumentException($"Unknown architecture '{name}'. Known: {string.Join(", ", Names)}.", nameof(name)),
    };

    /// <summary>scores = W·x + b: the softmax classifier or linear SVM of the lectures, depending on the loss.</summary>
    public static NetworkBuilder LinearClassifier(int classes) =>
        NetworkBuilder.Sequential(new Flatten(), new Dense(classes, init: WeightInit.XavierUniform));

    /// <summary>A multilayer perceptron with ReLU hidden layers of the given sizes.</summary>
    public static NetworkBuilder Mlp(int classes, params int[] hiddenSizes)
    {
        var layers = new List<Layer> { new Flatten() };
        foreach (int size in hiddenSizes) layers.AddRange([new Dense(size), new Relu()]);
        layers.Add(new Dense(classes));
        return NetworkBuilder.Sequential([.. layers]);
    }

    /// <summary>LeNet-5 in its modern form (ReLU, max pooling), with padding 2 so 28×28 inputs behave like 32×32.</summary>
    public static NetworkBuilder LeNet5(int classes) => NetworkBuilder.Sequential(
        new Conv2d(6, 5, padding: 2), new Relu(), new MaxPool2d(2),
        new Conv2d(16, 5), new Relu(), new MaxPool2d(2), new Flatten(),
        new Dense(120), new Relu(), new Dense(84), new Relu(), new Dense(classes));

    /// <summary>
    /// The reference CNN of the benchmarks: conv 5×5×32 pad 2, ReLU, pool, conv 5×5×64 pad 2, ReLU, pool,
    /// dense 1024, ReLU, dropout 0.4, dense.
    /// </summary>
    public static NetworkBuilder ReferenceCnn(int classes) => NetworkBuilder.Sequential(
        new Conv2d(32, 5, padding: 2), new Relu(), new MaxPool2d(2),
        new Conv2d(64, 5, padding: 2), new Relu(), new MaxPool2d(2), new Flatten(),
        new Dense(1024), new Relu(), new Dropout(0.4f), new Dense(classes));

    /// <summary>AlexNet as torchvision builds it, with the original paper's local response normalization after the first two convolutions.</summary>
    public static NetworkBuilder AlexNet(int classes) => NetworkBuilder.Sequential(
        new Conv2d(64, 11, stride: 4, padding: 2), new Relu(), new LocalResponseNorm(5, 1e-4f, 0.75f, 2f), new MaxPool2d(3, 2),
        new Conv2d(192, 5, padding: 2), new Relu(), new LocalResponseNorm(5, 1e-4f, 0.75f, 2f), new MaxPool2d(3, 2),
        new Conv2d(384, 3, padding: 1), new Relu(),
        new Conv2d(256, 3, padding: 1), new Relu(),
        new Conv2d(256, 3, padding: 1), new Relu(), new MaxPool2d(3, 2), new Flatten(),
        new Dropout(0.5f), new Dense(4096), new Relu(),
        new Dropout(0.5f), new Dense(4096), new Relu(),
        new Dense(classes));

    /// <summary>VGG-11/13/16/19 (configurations A, B, D, E), optionally with batch normalization after each convolution.</summary>
    public static NetworkBuilder Vgg(int depth, bool batchNorm, int classes)
    {
        int[] config = depth switch
        {
            11 => [64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0],
            13 => [64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0],
            16 => [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0],
            19 => [64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0],
            _ => throw new ArgumentException($"VGG depth must be 11, 13, 16 or 19, got {depth}.", nameof(depth)),
        };
        var layers = new List<Layer>();
        foreach (int channels in config)
        {
            if (channels == 0) { layers.Add(new MaxPool2d(2)); continue; }
            layers.Add(new Conv2d(channels, 3, padding: 1));
            if (batchNorm) layers.Add(new BatchNorm());
            layers.Add(new Relu());
        }
        layers.AddRange([new Flatten(), new Dense(4096), new Relu(), new Dropout(0.5f), new Dense(4096), new Relu(), new Dropout(0.5f), new Dense(classes)]);
        return NetworkBuilder.Sequential([.. layers]);
    }

    /// <summary>GoogLeNet (Inception v1) in torchvision's form: batch norm after every convolution, no auxiliary heads.</summary>
    public static NetworkBuilder GoogLeNet(int classes)
    {
        var b = new NetworkBuilder();
        var x = ConvBn(b, b.Input, 64, 7, stride: 2, padding: 3, epsilon: 1e-3f);
        x = b.Add(new MaxPool2d(3, 2, ceilMode: true), x);
        x = ConvBn(b, x, 64, 1, epsilon: 1e-3f);
        x = ConvBn(b, x, 192, 3, padding: 1, epsilon: 1e-3f);
        x = b.Add(new MaxPool2d(3, 2, ceilMode: true), x);
        x = Inception(b, x, 64, 96, 128, 16, 32, 32);
        x = Inception(b, x, 128, 128, 192, 32, 96, 64);
        x = b.Add(new MaxPool2d(3, 2, ceilMode: true), x);
        x = Inception(b, x, 192, 96, 208, 16, 48, 64);
        x = Inception(b, x, 160, 112, 224, 24, 64, 64);
        x = Inception(b, x, 128, 128, 256, 24, 64, 64);
        x = Inception(b, x, 112, 144, 288, 32, 64, 64);
        x = Inception(b, x, 256, 160, 320, 32, 128, 128);
        x = b.Add(new MaxPool2d(2, 2, ceilMode: true), x);
        x = Inception(b, x, 256, 160, 320, 32, 128, 128);
        x = Inception(b, x, 384, 192, 384, 48, 128, 128);
        b.Chain(x, new GlobalAvgPool(), new Dropout(0.2f), new Dense(classes));
        return b;
    }

    /// <summary>
    /// An Inception block: 1×1; 1×1 → 3×3; 1×1 → 3×3 (torchvision's stand-in for 5×5); 3×3 max pool → 1×1; concatenated.
    /// </summary>
    public static Node Inception(NetworkBuilder b, Node input, int ch1x1, int ch3x3Reduce, int ch3x3, int ch5x5Reduce, int ch5x5, int poolProjection)
    {
        var branch1 = ConvBn(b, input, ch1x1, 1, epsilon: 1e-3f);
        var branch2 = ConvBn(b, ConvBn(b, input, ch3x3Reduce, 1, epsilon: 1e-3f), ch3x3, 3, padding: 1, epsilon: 1e-3f);
        var branch3 = ConvBn(b, ConvBn(b, input, ch5x5Reduce, 1, epsilon: 1e-3f), ch5x5, 3, padding: 1, epsilon: 1e-3f);
        var branch4 = ConvBn(b, b.Add(new MaxPool2d(3, 1, padding: 1, ceilMode: true), input), poolProjection, 1, epsilon: 1e-3f);
        return b.Merge(new Concat(), branch1, branch2, branch3, branch4);
    }

    /// <summary>ResNet-18/34 (basic blocks) or ResNet-50 (bottlenecks, stride on the 3×3) in the ImageNet form.</summary>
    public static NetworkBuilder ResNet(int depth, int classes)
    {
        var (blocks, bottleneck) = depth switch
        {
            18 => (new[] { 2, 2, 2, 2 }, false),
            34 => (new[] { 3, 4, 6, 3 }, false),
            50 => (new[] { 3, 4, 6, 3 }, true),
            _ => throw new ArgumentException($"ResNet depth must be 18, 34 or 50, got {depth}.", nameof(depth)),
        };
        var b = new NetworkBuilder();
        var x = b.Add(new Relu(), ConvBn(b, b.Input, 64, 7, stride: 2, padding: 3, relu: false));
        x = b.Add(new MaxPool2d(3, 2, padding: 1), x);
        int channels = 64, width = 64;
        for (int stage = 0; stage < 4; stage++, width *= 2)
            for (int block = 0; block < blocks[stage]; block++)
            {
                int stride = stage > 0 && block == 0 ? 2 : 1;
                x = bottleneck ? Bottleneck(b, x, channels, width, stride) : BasicBlock(b, x, channels, width, stride);
                channels = bottleneck ? width * 4 : width;
            }
        b.Chain(x, new GlobalAvgPool(), new Dense(classes));
        return b;
    }

    /// <summary>
    /// ResNet-20/56 for 32×32 images (He et al. §4.2): 16, 32, 64 channels, (depth − 2)/6 basic blocks per stage.
    /// Downsampling shortcuts use 1×1 convolutions with batch norm (the paper's option B).
    /// </summary>
    public static NetworkBuilder CifarResNet(int depth, int classes)
    {
        if (depth < 8 || (depth - 2) % 6 != 0) throw new ArgumentException($"CIFAR ResNet depth must be 6n + 2, got {depth}.", nameof(depth));
        int perStage = (depth - 2) / 6;
        var b = new NetworkBuilder();
        var x = ConvBn(b, b.Input, 16, 3, padding: 1);
        int channels = 16;
        foreach (int width in new[] { 16, 32, 64 })
            for (int block = 0; block < perStage; block++)
            {
                x = BasicBlock(b, x, channels, width, width != 16 && block == 0 ? 2 : 1);
                channels = width;
            }
        b.Chain(x, new GlobalAvgPool(), new Dense(classes));
        return b;
    }

    /// <summary>
    /// DenseNet (Huang et al., 2017) in torchvision's form: every layer (batch norm, ReLU, 1×1 convolution to 4 × growth
    /// channels, batch norm, ReLU, 3×3 convolution to growth channels) reads the concatenation of all earlier features
    /// in its block; transitions halve the channels and the plane. DenseNet-121 is growth 32, blocks [6, 12, 24, 16].
    /// </summary>
    public static NetworkBuilder DenseNet(int growth, int[] blocks, int initialFeatures, int classes)
    {
        var b = new NetworkBuilder();
        var x = ConvBn(b, b.Input, initialFeatures, 7, stride: 2, padding: 3);
        x = b.Add(new MaxPool2d(3, 2, padding: 1), x);
        int channels = initialFeatures;
        for (int block = 0; block < blocks.Length; block++)
        {
            var features = new List<Node> { x };
            for (int layer = 0; layer < blocks[block]; layer++)
            {
                var input = features.Count == 1 ? features[0] : b.Merge(new Concat(), [.. features]);
                var y = b.Chain(input, new BatchNorm(), new Relu(), new Conv2d(4 * growth, 1, bias: false),
                    new BatchNorm(), new Relu(), new Conv2d(growth, 3, padding: 1, bias: false));
                features.Add(y);
                channels += growth;
            }
            x = b.Merge(new Concat(), [.. features]);
            if (block == blocks.Length - 1) break;
            channels /= 2;
            x = b.Chain(x, new BatchNorm(), new Relu(), new Conv2d(channels, 1, bias: false), new AvgPool2d(2, 2));
        }
        b.Chain(x, new BatchNorm(), new Relu(), new GlobalAvgPool(), new Dense(classes));
        return b;
    }

    /// <summary>
    /// MobileNetV2 (Sandler et al., 2018) in torchvision's form at width 1: a 3×3 stem of 32, inverted residual blocks
    /// (1×1 expansion, 3×3 depthwise, 1×1 linear projection; ReLU6; a residual where the shape allows), a 1×1 to 1280,
    /// global pooling, dropout 0.2 and the classifier.
    /// </summary>
    public static NetworkBuilder MobileNetV2(int classes)
    {
        var b = new NetworkBuilder();
        var x = b.Chain(b.Input, new Conv2d(32, 3, 2, 1, bias: false), new BatchNorm(), new Clip());
        int channels = 32;
        // Expansion t, output channels c, repeats n, first stride s.
        foreach (var (t, c, n, s) in new[] { (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1) })
            for (int i = 0; i < n; i++)
            {
                int stride = i == 0 ? s : 1, hidden = channels * t;
                var y = t == 1 ? x : b.Chain(x, new Conv2d(hidden, 1, bias: false), new BatchNorm(), new Clip());
                y = b.Chain(y, new Conv2d(hidden, 3, stride, 1, groups: hidden, bias: false), new BatchNorm(), new Clip(),
                    new Conv2d(c, 1, bias: false), new BatchNorm());
                x = stride == 1 && channels == c ? b.Merge(new Add(), x, y) : y;
                channels = c;
            }
        b.Chain(x, new Conv2d(1280, 1, bias: false), new BatchNorm(), new Clip(), new GlobalAvgPool(), new Dropout(0.2f), new Dense(classes));
        return b;
    }

    /// <summary>
    /// The vision transformer ViT (Dosovitskiy et al., 2021) in torchvision's form ("vit-b16": patches of 16, 12 blocks
    /// of 12 heads, 768 wide, MLPs of 3072): a patch × patch convolution of stride patch makes the tokens, a class token
    /// goes before them and a learned position embedding is added; each block is pre-norm multi-head self-attention and
    /// a GELU MLP, both residual; the class token's features, normalized, go to the classifier. Tokens are kept as a
    /// [C, 1, T] image, so the projections are 1×1 convolutions. The position embedding fixes the input size.
    /// </summary>
    public static NetworkBuilder VisionTransformer(int patch, int layers, int heads, int hidden, int mlp, int classes)
    {
        var b = new NetworkBuilder();
        var x = b.Chain(b.Input, new Conv2d(hidden, patch, patch), new ClassToken(), new PositionEmbedding());
        for (int i = 0; i < layers; i++)
        {
            var attended = b.Chain(x, new LayerNorm(1e-6f), new Conv2d(3 * hidden, 1, init: WeightInit.XavierUniform),
                new SelfAttention(heads), new Conv2d(hidden, 1, init: WeightInit.XavierUniform));
            x = b.Merge(new Add(), x, attended);
            var transformed = b.Chain(x, new LayerNorm(1e-6f), new Conv2d(mlp, 1, init: WeightInit.XavierUniform), new Gelu(),
                new Conv2d(hidden, 1, init: WeightInit.XavierUniform));
            x = b.Merge(new Add(), x, transformed);
        }
        b.Chain(x, new LayerNorm(1e-6f), new TokenAt(0), new Dense(classes));
        return b;
    }

    /// <summary>
    /// The fully convolutional segmentation networks <see cref="GetSegmentation"/> accepts: they output
    /// [classes, H, W] scores for any input whose sides the network's total stride divides (32 for "fcn8s", 16 for
    /// "unet", 8 for "unet-small"). "unet" has the paper's four poolings (1.9 M parameters at 11 classes); "unet-small"
    /// three (0.48 M), for small images and quick fits.
    /// </summary>
    public static IReadOnlyList<string> SegmentationNames { get; } = ["fcn8s", "unet", "unet-small"];

    /// <summary>A segmentation definition by name (see <see cref="SegmentationNames"/>); classes include background.</summary>
    public static NetworkBuilder GetSegmentation(string name, int classes) => name.ToLowerInvariant() switch
    {
        "fcn8s" => Fcn8s(classes),
        "unet" => UNet(classes, 16, 4),
        "unet-small" => UNet(classes, 16, 3),
        _ => throw new ArgumentException($"Unknown segmentation architecture '{name}'. Known: {string.Join(", ", SegmentationNames)}.", nameof(name)),
    };

    /// <summary>
    /// FCN-8s (Long, Shelhamer and Darrell, 2015) over a small VGG-like backbone (16-32-64-128-128 channels, five
    /// pools): the classifier is a 3×3 and a 1×1 convolution at 1/32 scale; its class scores are upsampled 2× by a
    /// learned transposed convolution and summed with scores from pool4, again with pool3, then bilinearly
    /// upsampled 8× to the input size.
    /// </summary>
    public static NetworkBuilder Fcn8s(int classes)
    {
        var b = new NetworkBuilder();
        Node Stage(Node x, int channels, int convolutions)
        {
            for (int i = 0; i < convolutions; i++) x = ConvBn(b, x, channels, 3, padding: 1);
            return b.Add(new MaxPool2d(2), x);
        }
        var pool3 = Stage(Stage(Stage(b.Input, 16, 1), 32, 1), 64, 2);
        var pool4 = Stage(pool3, 128, 2);
        var pool5 = Stage(pool4, 128, 2);
        var scores = b.Chain(ConvBn(b, ConvBn(b, pool5, 256, 3, padding: 1), 256, 1), new Conv2d(classes, 1));
        var up16 = b.Merge(new Add(), b.Add(new ConvTranspose2d(classes, 4, 2, 1), scores), b.Add(new Conv2d(classes, 1), pool4));
        var up8 = b.Merge(new Add(), b.Add(new ConvTranspose2d(classes, 4, 2, 1), up16), b.Add(new Conv2d(classes, 1), pool3));
        b.Add(new Upsample(8, UpsampleMode.Bilinear), up8);
        return b;
    }

    /// <summary>
    /// U-Net (Ronneberger, Fischer and Brox, 2015), small and padded so outputs keep the input size: at each of
    /// <paramref name="depth"/> levels two 3×3 convolutions (batch norm, ReLU) then a 2×2 pool, channels doubling from
    /// <paramref name="width"/>; the decoder upsamples by 2×2 transposed convolutions, concatenates the encoder's
    /// features of the same scale and applies two 3×3 convolutions; a 1×1 convolution gives the class scores.
    /// </summary>
    public static NetworkBuilder UNet(int classes, int width, int depth)
    {
        var b = new NetworkBuilder();
        Node Twice(Node x, int channels) => ConvBn(b, ConvBn(b, x, channels, 3, padding: 1), channels, 3, padding: 1);
        var skips = new List<Node>();
        var x = b.Input;
        for (int level = 0; level < depth; level++)
        {
            x = Twice(x, width << level);
            skips.Add(x);
            x = b.Add(new MaxPool2d(2), x);
        }
        x = Twice(x, width << depth);
        for (int level = depth - 1; level >= 0; level--)
        {
            var up = b.Add(new ConvTranspose2d(width << level, 2, stride: 2), x);
            x = Twice(b.Merge(new Concat(), skips[level], up), width << level);
        }
        b.Add(new Conv2d(classes, 1), x);
        return b;
    }

    /// <summary>The object detectors <see cref="GetDetection"/> accepts (input sides divisible by 8).</summary>
    public static IReadOnlyList<string> DetectionNames { get; } = ["centernet"];

    /// <summary>A detector by name (see <see cref="DetectionNames"/>) for <paramref name="classes"/> object classes.</summary>
    public static NetworkBuilder GetDetection(string name, int classes) => name.ToLowerInvariant() switch
    {
        "centernet" => CenterNetDetector(classes, 16),
        _ => throw new ArgumentException($"Unknown detection architecture '{name}'. Known: {string.Join(", ", DetectionNames)}.", nameof(name)),
    };

    /// <summary>The output stride of <see cref="CenterNetDetector"/>: input pixels per output cell.</summary>
    public const int CenterNetStride = 4;

    /// <summary>
    /// A small CenterNet (Zhou et al., 2019): an encoder of four levels at full, 1/2, 1/4 and 1/8 scale (two 3×3
    /// convolutions each, batch norm, ReLU, channels doubling from <paramref name="width"/>), one U-Net decoder step back to
    /// 1/4 scale joined with the encoder's features there, then two heads — a class heatmap (its bias starting at the
    /// prior 0.01) and the four box values — concatenated into [classes + 4, H/4, W/4] (<see cref="Data.CenterNet"/>).
    /// </summary>
    public static NetworkBuilder CenterNetDetector(int classes, int width)
    {
        var b = new NetworkBuilder();
        Node Twice(Node x, int channels) => ConvBn(b, ConvBn(b, x, channels, 3, padding: 1), channels, 3, padding: 1);
        var half = Twice(b.Add(new MaxPool2d(2), Twice(b.Input, width)), width * 2);
        var quarter = Twice(b.Add(new MaxPool2d(2), half), width * 4);
        var x = Twice(b.Add(new MaxPool2d(2), quarter), width * 8);
        var up = b.Add(new ConvTranspose2d(width * 4, 2, stride: 2), x);
        var features = Twice(b.Merge(new Concat(), quarter, up), width * 4);
        float prior = -MathF.Log((1 - 0.01f) / 0.01f);
        var heat = b.Chain(features, new Conv2d(width * 4, 3, padding: 1), new Relu(), new Conv2d(classes, 1) { InitialBias = prior });
        var box = b.Chain(features, new Conv2d(width * 4, 3, padding: 1), new Relu(), new Conv2d(4, 1));
        b.Merge(new Concat(), heat, box);
        return b;
    }

    /// <summary>Two 3×3 convolutions with a residual connection (projected when the shape changes).</summary>
    public static Node BasicBlock(NetworkBuilder b, Node input, int inChannels, int width, int stride)
    {
        var main = ConvBn(b, input, width, 3, stride, padding: 1);
        main = ConvBn(b, main, width, 3, padding: 1, relu: false);
        var shortcut = stride != 1 || inChannels != width ? ConvBn(b, input, width, 1, stride, relu: false) : input;
        return b.Add(new Relu(), b.Merge(new Add(), main, shortcut));
    }

    /// <summary>1×1 reduce, 3×3 (strided), 1×1 expand ×4, with a residual connection.</summary>
    public static Node Bottleneck(NetworkBuilder b, Node input, int inChannels, int width, int stride)
    {
        var main = ConvBn(b, input, width, 1);
        main = ConvBn(b, main, width, 3, stride, padding: 1);
        main = ConvBn(b, main, width * 4, 1, relu: false);
        var shortcut = stride != 1 || inChannels != width * 4 ? ConvBn(b, input, width * 4, 1, stride, relu: false) : input;
        return b.Add(new Relu(), b.Merge(new Add(), main, shortcut));
    }

    /// <summary>Convolution without bias, batch norm, and (by default) ReLU.</summary>
    public static Node ConvBn(NetworkBuilder b, Node input, int channels, int kernel, int stride = 1, int padding = 0,
        bool relu = true, float epsilon = 1e-5f)
    {
        var x = b.Chain(input, new Conv2d(channels, kernel, stride, padding, bias: false), new BatchNorm(epsilon: epsilon));
        return relu ? b.Add(new Relu(), x) : x;
    }
}
