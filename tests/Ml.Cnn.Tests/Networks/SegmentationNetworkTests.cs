using Ml.Cnn.Backends;
using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Backends.Reference;
using Ml.Cnn.Core;
using Ml.Cnn.Layers;
using Ml.Cnn.Networks;
using Ml.Cnn.Tensors;
using Ml.Cnn.Zoo;
using Xunit;
using static Ml.Cnn.Tests.Support.Numerics;

namespace Ml.Cnn.Tests.Networks;

/// <summary>The zoo's segmentation networks: shapes on several sizes, and the fast kernels against the reference.</summary>
public sealed class SegmentationNetworkTests
{
    [Theory]
    [InlineData(2, 2, 64, 16, 8, 8)]   // U-Net's decoder: 2×2, stride 2, many channels
    [InlineData(4, 4, 16, 11, 8, 12)]  // FCN's 4×4, stride 2, padding 1, on class scores
    public void TransposedConvolutionOnTheFastKernelsEqualsTheReference(int kernel, int stride, int inChannels, int outChannels, int h, int w)
    {
        int padding = kernel == 4 ? 1 : 0;
        var reference = new ReferenceBackend();
        var cpu = new CpuBackend(2);
        var (a, b) = (new ConvTranspose2d(outChannels, kernel, stride, padding), new ConvTranspose2d(outChannels, kernel, stride, padding));
        var shape = new TensorShape(inChannels, h, w);
        a.Build(reference, shape, new Rng(1));
        b.Build(cpu, shape, new Rng(1));
        var x = RandomNormal(new Rng(2), 3 * shape.Length);
        var ya = a.Forward(TensorOf(reference, x, 3, inChannels, h, w), true);
        var yb = b.Forward(TensorOf(cpu, x, 3, inChannels, h, w), true);
        AssertClose(ya.ToArray(), yb.ToArray(), "forward", 1e-4, 1e-4);
        var dy = RandomNormal(new Rng(3), ya.Length);
        var dxa = a.Backward(TensorOf(reference, dy, ya.Shape.Dims.ToArray()))!;
        var dxb = b.Backward(TensorOf(cpu, dy, ya.Shape.Dims.ToArray()))!;
        AssertClose(dxa.ToArray(), dxb.ToArray(), "input gradient", 1e-4, 1e-4);
        AssertClose(a.Weight.Gradient.ToArray(), b.Weight.Gradient.ToArray(), "weight gradient", 1e-4, 1e-3);
        AssertClose(a.Bias!.Gradient.ToArray(), b.Bias!.Gradient.ToArray(), "bias gradient", 1e-4, 1e-3);
    }

    [Theory]
    [InlineData("unet", 64, 64)]
    [InlineData("unet", 96, 64)]
    [InlineData("unet", 48, 80)]
    [InlineData("unet-small", 40, 56)]
    [InlineData("fcn8s", 64, 64)]
    [InlineData("fcn8s", 96, 64)]
    [InlineData("fcn8s", 128, 96)]
    public void ZooSegmentationNetworksOutputScoresForEveryPixel(string name, int h, int w)
    {
        var network = Network.Create(ModelZoo.GetSegmentation(name, 11), new CpuBackend(2), new TensorShape(1, h, w), allocate: false);
        Assert.Equal(new TensorShape(11, h, w), network.OutputShape);
    }
}
