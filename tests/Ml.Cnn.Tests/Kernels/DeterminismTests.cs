using Ml.Cnn.Backends;
using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Core;
using Ml.Cnn.Layers;
using Ml.Cnn.Tensors;
using Xunit;
using Ml.Cnn.Tests.Support;
using static Ml.Cnn.Tests.Support.Numerics;

namespace Ml.Cnn.Tests.Kernels;

/// <summary>The same seed and thread count give bit-identical results.</summary>
public sealed class DeterminismTests
{
    private static float[] ConvWeightGradient(int threads)
    {
        var backend = new CpuBackend(threads);
        var conv = new Conv2d(16, 5, padding: 2);
        conv.Build(backend, new TensorShape(8, 14, 14), new Rng(11));
        var rng = new Rng(12);
        var x = TensorOf(backend, RandomNormal(rng, 13 * 8 * 14 * 14), 13, 8, 14, 14);
        var y = conv.Forward(x, true);
        conv.Backward(TensorOf(backend, RandomNormal(rng, y.Length), y.Shape.Dims.ToArray()));
        return conv.Weight.Gradient.ToArray();
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void RepeatedRunsWithTheSameThreadsAgreeBitForBit(int threads) =>
        Assert.Equal(ConvWeightGradient(threads), ConvWeightGradient(threads));

    public static TheoryData<ConvGeometry> WinogradGeometries() =>
    [
        // 13 images: the weight gradient's fixed 8-image tasks, one of them short, summed in task order.
        new ConvGeometry(13, 16, 9, 11, 32, 5, 5, 1, 1, 2, 2),
        // Batch-wide: 4×4 maps, one tile per image, chunks of seven spanning images and a GEMM over the tiles.
        new ConvGeometry(13, 24, 4, 4, 40, 3, 3, 1, 1, 1, 1),
    ];

    [Theory]
    [MemberData(nameof(WinogradGeometries))]
    public void WinogradConvolutionDoesNotDependOnThreadCount(ConvGeometry g)
    {
        KernelSelection.AssertSelected("Winograd", WinogradConvolution.Fits(g), WinogradConvolution.Applies(g), DirectConvolution.Bits > 0);
        var rng = new Rng(4);
        var xShape = new TensorShape(g.Batch, g.InChannels, g.InH, g.InW);
        var yShape = new TensorShape(g.Batch, g.OutChannels, g.OutH, g.OutW);
        var wShape = new TensorShape(g.OutChannels, g.InChannels, g.KernelH, g.KernelW);
        float[] x = RandomNormal(rng, xShape.Length), w = RandomNormal(rng, wShape.Length), dy = RandomNormal(rng, yShape.Length);
        float[][] Run(int threads)
        {
            var backend = new CpuBackend(threads);
            var y = backend.Allocate(yShape);
            var dx = backend.Allocate(xShape);
            var dw = backend.Allocate(wShape);
            var db = backend.Allocate(new TensorShape(g.OutChannels));
            var input = TensorOf(backend, x, [.. xShape.Dims]);
            var weights = TensorOf(backend, w, [.. wShape.Dims]);
            var outputGradient = TensorOf(backend, dy, [.. yShape.Dims]);
            backend.ConvForward(g, input, weights, null, y);
            backend.ConvBackwardData(g, outputGradient, weights, dx);
            backend.ConvBackwardWeights(g, input, outputGradient, dw, db);
            return [y.ToArray(), dx.ToArray(), dw.ToArray(), db.ToArray()];
        }
        var single = Run(1);
        var three = Run(3);
        for (int i = 0; i < single.Length; i++) Assert.Equal(single[i], three[i]);
    }

    [Fact]
    public void SeededInitializationIsReproducible()
    {
        float[] Weights(ulong seed)
        {
            var dense = new Dense(30, init: WeightInit.XavierUniform);
            dense.Build(new CpuBackend(1), new TensorShape(20), new Rng(seed));
            return dense.Weight.Value.ToArray();
        }
        Assert.Equal(Weights(5), Weights(5));
        Assert.NotEqual(Weights(5), Weights(6));
        var w = Weights(5);
        double bound = Math.Sqrt(6.0 / 50);
        Assert.All(w, v => Assert.InRange(v, -bound, bound));
    }

    [Fact]
    public void HeInitializationHasTheExpectedSpread()
    {
        var conv = new Conv2d(64, 3, init: WeightInit.HeNormal);
        conv.Build(new CpuBackend(1), new TensorShape(32, 8, 8), new Rng(2));
        var w = conv.Weight.Value.ToArray();
        double variance = w.Select(v => (double)v * v).Average();
        Assert.InRange(variance, 2.0 / 288 * 0.9, 2.0 / 288 * 1.1);
    }

    [Fact]
    public void GemmResultDoesNotDependOnThreadCount()
    {
        var rng = new Rng(3);
        var a = RandomNormal(rng, 200 * 300);
        var b = RandomNormal(rng, 300 * 170);
        float[] Product(IBackend backend)
        {
            var c = backend.Allocate(new TensorShape(200, 170));
            backend.MatMul(TensorOf(backend, a, 200, 300), false, TensorOf(backend, b, 300, 170), false, c);
            return c.ToArray();
        }
        Assert.Equal(Product(new CpuBackend(1)), Product(new CpuBackend(2)));
    }

    [Theory]
    [InlineData(false, 0f)]
    [InlineData(true, 1f)]
    public void DeepGemmSplitOverThreadsSumsAsOneThreadDoes(bool transA, float beta)
    {
        // A small C over a deep reduction (ResNet's 7×7 stem weight gradient: 64 × 147 over a chunk's pixels) splits
        // its k-blocks over the threads and adds them in k order: the same additions as one thread, to the bit.
        const int m = 64, n = 147, k = 4 * 1024 + 300;
        var rng = new Rng(8);
        float[] a = RandomNormal(rng, m * k), b = RandomNormal(rng, n * k), c0 = RandomNormal(rng, m * n);
        float[] Product(int threads)
        {
            var c = (float[])c0.Clone();
            Sgemm.Multiply(transA, true, m, n, k, 0.5f, a, transA ? m : k, b, k, beta, c, n, threads);
            return c;
        }
        Assert.Equal(Product(1), Product(2));
    }
}
