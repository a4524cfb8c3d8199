using System.Text.Json;
using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Networks;
using Ml.Cnn.Tensors;
using Ml.Cnn.Zoo;
using Xunit;

namespace Ml.Cnn.Tests.Networks;

public sealed class ZooTests
{
    private static long TorchvisionCount(string model)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "zoo", "torchvision_zoo.json")));
        return doc.RootElement.GetProperty("models").GetProperty(model).GetProperty("parameters").GetInt64();
    }

    private static long Count(string architecture, int classes, params int[] input) =>
        Network.Create(ModelZoo.Get(architecture, classes), new CpuBackend(1), new TensorShape(input), allocate: false).ParameterCount;

    [Theory]
    [InlineData("alexnet", "alexnet", 1000)]
    [InlineData("vgg11", "vgg11", 1000)]
    [InlineData("vgg13", "vgg13", 1000)]
    [InlineData("vgg16", "vgg16", 1000)]
    [InlineData("vgg19", "vgg19", 1000)]
    [InlineData("vgg16-bn", "vgg16_bn", 1000)]
    [InlineData("resnet18", "resnet18", 1000)]
    [InlineData("resnet34", "resnet34", 1000)]
    [InlineData("resnet50", "resnet50", 1000)]
    [InlineData("googlenet", "googlenet", 1000)]
    [InlineData("densenet121", "densenet121", 1000)]
    [InlineData("alexnet", "alexnet_10class", 10)]
    [InlineData("resnet18", "resnet18_10class", 10)]
    public void ParameterCountsEqualTorchvisionAt224(string architecture, string torchvisionName, int classes) =>
        Assert.Equal(TorchvisionCount(torchvisionName), Count(architecture, classes, 3, 224, 224));

    [Fact]
    public void MobileNetV2HasTorchvisionsParameterCount()
    {
        // torchvision 0.14's mobilenet_v2() at 1000 classes, as eng/make_torchvision_fixtures.py records it.
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "torchvision", "index.json")));
        long expected = doc.RootElement.GetProperty("zoo_parameters").GetProperty("mobilenet_v2").GetInt64();
        Assert.Equal(expected, Count("mobilenet-v2", 1000, 3, 224, 224));
    }

    [Fact]
    public void VisionTransformerB16HasTorchvisionsParameterCount()
    {
        // torchvision 0.14's vit_b_16() at 1000 classes and 3×224×224 (197 tokens), as eng/make_torchvision_fixtures.py
        // records it.
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "torchvision", "index.json")));
        long expected = doc.RootElement.GetProperty("zoo_parameters").GetProperty("vit_b_16").GetInt64();
        Assert.Equal(expected, Count("vit-b16", 1000, 3, 224, 224));
    }

    [Fact]
    public void SmallerModelsHaveTheirTextbookSizes()
    {
        Assert.Equal(61_706, Count("lenet5", 10, 1, 28, 28));
        Assert.Equal(7_850, Count("linear", 10, 1, 28, 28));
        Assert.Equal(784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10, Count("mlp", 10, 1, 28, 28));
        Assert.Equal(3_274_634, Count("reference-cnn", 10, 1, 28, 28));
    }

    [Theory]
    [InlineData("resnet20", 3, 32)]
    [InlineData("resnet56", 3, 32)]
    [InlineData("vgg11-bn", 3, 32)]
    [InlineData("googlenet", 3, 64)]
    [InlineData("alexnet", 3, 96)]
    [InlineData("densenet121", 3, 64)]
    [InlineData("mobilenet-v2", 3, 64)]
    [InlineData("vit-b16", 3, 64)]
    public void ArchitecturesAdaptToOtherInputSizes(string architecture, int channels, int size)
    {
        var network = Network.Create(ModelZoo.Get(architecture, 7), new CpuBackend(1), new TensorShape(channels, size, size), allocate: false);
        Assert.Equal(new TensorShape(7), network.OutputShape);
    }

    [Fact]
    public void UnknownArchitectureListsTheKnownOnes()
    {
        var error = Assert.Throws<ArgumentException>(() => ModelZoo.Get("resnet99", 10));
        Assert.Contains("resnet20", error.Message);
    }

    [Fact]
    public void SummaryShowsShapesReceptiveFieldsAndCounts()
    {
        var network = Network.Create(ModelZoo.LeNet5(10), new CpuBackend(1), new TensorShape(1, 28, 28), allocate: false);
        string summary = network.Summary();
        Assert.Contains("conv2d1 (Conv2d)", summary);
        Assert.Contains("[6, 28, 28]", summary);
        // conv 5 → 5; pool 2 → 6 (jump 2); conv 5 → 6 + 4·2 = 14; pool 2 → 16.
        Assert.Matches(@"conv2d2 \(Conv2d\)\s+\[16, 10, 10\]\s+14x14\s+2,416", summary);
        Assert.Matches(@"maxpool2d2 \(MaxPool2d\)\s+\[16, 5, 5\]\s+16x16", summary);
        Assert.Contains("global", summary);
        Assert.Contains("Total parameters: 61,706", summary);
    }
}
