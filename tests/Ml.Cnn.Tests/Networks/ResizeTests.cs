using Ml.Cnn.Backends;
using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Core;
using Ml.Cnn.Layers;
using Ml.Cnn.Networks;
using Ml.Cnn.Tensors;
using Xunit;
using static Ml.Cnn.Tests.Support.Numerics;

namespace Ml.Cnn.Tests.Networks;

/// <summary>Fully convolutional networks run on any input size with the same weights.</summary>
public sealed class ResizeTests
{
    private static readonly IBackend Backend = new CpuBackend(threads: 2);

    // An encoder–decoder with a skip join: convolution, pooling, transposed convolution, upsampling, concatenation.
    private static NetworkBuilder EncoderDecoder()
    {
        var b = new NetworkBuilder();
        var skip = b.Chain(b.Input, new Conv2d(4, 3, padding: 1), new BatchNorm(), new Relu());
        var deep = b.Chain(skip, new MaxPool2d(2), new Conv2d(6, 3, padding: 1), new Relu(), new ConvTranspose2d(4, 2, stride: 2));
        var wide = b.Chain(skip, new MaxPool2d(2), new Upsample(2, UpsampleMode.Bilinear));
        b.Chain(b.Merge(new Concat(), skip, deep, wide), new Conv2d(3, 1));
        return b;
    }

    private static (float[] Output, float[][] Gradients) Run(Network network, float[] x, int[] shape)
    {
        var input = TensorOf(Backend, x, shape);
        var output = network.Forward(input, training: true).ToArray();
        network.Backward(TensorOf(Backend, output.Select(v => v * 0.5f).ToArray(), [shape[0], 3, shape[2], shape[3]]));
        return (output, network.Parameters.Select(p => p.Gradient.ToArray()).ToArray());
    }

    [Theory]
    [InlineData(16, 12)]
    [InlineData(6, 10)]
    public void TheSameWeightsRunOnAnotherSizeAsANetworkBuiltForIt(int h, int w)
    {
        var network = Network.Create(EncoderDecoder(), Backend, new TensorShape(2, 8, 8), seed: 3);
        var built = Network.Create(EncoderDecoder(), Backend, new TensorShape(2, h, w), seed: 4);
        foreach (var (mine, theirs) in network.StateTensors.Zip(built.StateTensors)) theirs.CopyFrom(mine.ToArray());
        var x = RandomNormal(new Rng(5), 2 * 2 * h * w);

        var resized = Run(network, x, [2, 2, h, w]);
        var fresh = Run(built, x, [2, 2, h, w]);

        Assert.Equal(new TensorShape(2, h, w), network.InputShape);
        Assert.Equal(new TensorShape(3, h, w), network.OutputShape);
        Assert.Equal(fresh.Output, resized.Output);
        for (int i = 0; i < fresh.Gradients.Length; i++) Assert.Equal(fresh.Gradients[i], resized.Gradients[i]);
    }

    [Fact]
    public void GoingBackToTheFirstSizeGivesTheFirstResult()
    {
        var network = Network.Create(EncoderDecoder(), Backend, new TensorShape(2, 8, 8), seed: 3);
        var x = TensorOf(Backend, RandomNormal(new Rng(6), 2 * 2 * 8 * 8), 2, 2, 8, 8);
        var first = network.Forward(x, training: false).ToArray();
        network.Forward(TensorOf(Backend, RandomNormal(new Rng(7), 2 * 12 * 16), 1, 2, 12, 16), training: false);
        Assert.Equal(first, network.Forward(x, training: false).ToArray());
    }

    [Fact]
    public void ADenseHeadRefusesAnotherSizeByNameAndKeepsItsOwn()
    {
        var network = Network.Sequential(Backend, new TensorShape(1, 8, 8), 1,
            new Conv2d(2, 3, padding: 1), new Relu(), new Flatten(), new Dense(3) { Name = "head" });
        var ok = TensorOf(Backend, RandomNormal(new Rng(8), 64), 1, 1, 8, 8);
        var before = network.Forward(ok, training: false).ToArray();

        var e = Assert.Throws<ArgumentException>(() => network.Forward(TensorOf(Backend, new float[100], 1, 1, 10, 10), training: false));
        Assert.True(e.Message.Contains("'head"), e.Message);
        Assert.Contains("[3, 128]", e.Message);
        Assert.Contains("[3, 200]", e.Message);
        Assert.Contains("fully convolutional", e.Message);

        Assert.Equal(new TensorShape(1, 8, 8), network.InputShape);
        Assert.Equal(before, network.Forward(ok, training: false).ToArray());
    }

    [Fact]
    public void ACropJoinRunsOnSizesThePoolingDoesNotDivide()
    {
        // The original U-Net's join: encoder features cropped to the decoder's plane (odd sizes lose a row in pooling).
        var b = new NetworkBuilder();
        var skip = b.Chain(b.Input, new Conv2d(4, 3, padding: 1), new Relu());
        var up = b.Chain(skip, new MaxPool2d(2), new Conv2d(4, 3, padding: 1), new ConvTranspose2d(4, 2, stride: 2));
        b.Chain(b.Merge(new Concat(), b.Merge(new Crop(), skip, up), up), new Conv2d(2, 1));
        var network = Network.Create(b, Backend, new TensorShape(1, 8, 8), seed: 2);
        foreach (var (h, w) in new[] { (9, 11), (8, 8), (13, 6) })
        {
            var y = network.Forward(TensorOf(Backend, RandomNormal(new Rng(3), h * w), 1, 1, h, w), training: true);
            Assert.Equal(new TensorShape(1, 2, h / 2 * 2, w / 2 * 2), y.Shape);
            network.Backward(y);
        }
        string folder = Directory.CreateTempSubdirectory("ml-cnn-crop-").FullName;
        try
        {
            Onnx.OnnxExportTests.CheckAgainstOnnxRuntime(network, folder);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void AJoinOfUnequalPlanesRefusesTheSizeThatCausesIt()
    {
        var network = Network.Create(EncoderDecoder(), Backend, new TensorShape(2, 8, 8), seed: 3);
        // 7 rows pool to 3 and come back as 6: the skip join sees 7 and 6.
        var e = Assert.Throws<ArgumentException>(() => network.Resize(new TensorShape(2, 7, 8)));
        Assert.Contains("concat", e.Message);
        Assert.Equal(new TensorShape(3, 8, 8), network.OutputShape);
    }
}
