using Ml.Cnn.Backends;
using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Backends.Reference;
using Ml.Cnn.Core;
using Ml.Cnn.Tensors;
using Xunit;
using static Ml.Cnn.Tests.Support.Numerics;

namespace Ml.Cnn.Tests.Kernels;

/// <summary>
/// The width-generic direct and Winograd convolutions at each vector width: 512-bit (AVX-512), 256-bit (AVX2, what most x86
/// machines run) and 128-bit (what Arm64 runs). On an AVX-512 machine all three run here; a width the processor lacks
/// is checked by the selection rule instead (the kernels never pick it), so no width passes by being skipped.
/// </summary>
public sealed class VectorWidthTests
{
    public static TheoryData<int, ConvGeometry> Cases()
    {
        var cases = new TheoryData<int, ConvGeometry>();
        var geometries = new[]
        {
            new ConvGeometry(2, 16, 14, 14, 32, 3, 3, 1, 1, 1, 1),        // channel lanes, whole blocks
            new ConvGeometry(3, 5, 11, 13, 20, 5, 5, 1, 1, 2, 2),         // a partial block of channels and of pixels
            new ConvGeometry(2, 1, 12, 28, 36, 5, 5, 1, 1, 2, 2),         // a first layer: pixels in the lanes
            new ConvGeometry(1, 3, 9, 19, 18, 3, 3, 1, 1, 0, 0),          // pixel lanes, no padding, odd sizes
            new ConvGeometry(2, 8, 10, 10, 32, 3, 3, 1, 1, 1, 1, Groups: 2),
        };
        foreach (int bits in new[] { 512, 256, 128 })
            foreach (var g in geometries) cases.Add(bits, g);
        return cases;
    }

    private static bool Runs(int bits) => bits switch { 512 => W512.IsSupported, 256 => W256.IsSupported, _ => W128.IsSupported };

    [Theory]
    [MemberData(nameof(Cases))]
    public void DirectForwardMatchesTheReference(int bits, ConvGeometry g)
    {
        Assert.True(DirectConvolution.Fits(g), $"{g} is not a direct-convolution geometry: the test no longer covers the kernel");
        if (!Runs(bits))
        {
            Assert.True(DirectConvolution.Bits < bits, $"{bits}-bit kernels selected on {CpuIsa.Describe()}");
            return;
        }
        var (x, w, b) = Operands(g, seed: bits + g.InW);
        var reference = new ReferenceBackend();
        var expected = reference.Allocate(new TensorShape(g.Batch, g.OutChannels, g.OutH, g.OutW));
        reference.ConvForward(g, TensorOf(reference, x, g.Batch, g.InChannels, g.InH, g.InW),
            TensorOf(reference, w, g.OutChannels, g.GroupInChannels, g.KernelH, g.KernelW), TensorOf(reference, b, g.OutChannels), expected);
        var actual = new float[expected.Length];
        DirectConvolution.Forward(g, x, w, b, actual, threads: 2, bits);
        AssertClose(expected.ToArray(), actual, $"{bits}-bit direct forward {g}", rel: 1e-4, abs: 1e-4);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void DirectWeightGradientMatchesTheReference(int bits, ConvGeometry g)
    {
        Assert.True(DirectConvolution.FitsWeightGradient(g), $"{g} is not a direct weight-gradient geometry");
        if (!Runs(bits))
        {
            Assert.True(DirectConvolution.Bits < bits, $"{bits}-bit kernels selected on {CpuIsa.Describe()}");
            return;
        }
        var rng = new Rng((ulong)(bits + g.OutW));
        float[] x = RandomNormal(rng, g.Batch * g.InChannels * g.InH * g.InW), dy = RandomNormal(rng, g.Batch * g.OutChannels * g.OutH * g.OutW);
        var reference = new ReferenceBackend();
        var expectedW = reference.Allocate(new TensorShape(g.OutChannels, g.GroupInChannels, g.KernelH, g.KernelW));
        var expectedB = reference.Allocate(new TensorShape(g.OutChannels));
        reference.ConvBackwardWeights(g, TensorOf(reference, x, g.Batch, g.InChannels, g.InH, g.InW),
            TensorOf(reference, dy, g.Batch, g.OutChannels, g.OutH, g.OutW), expectedW, expectedB);
        float[] dw = new float[expectedW.Length], db = new float[g.OutChannels];
        DirectConvolution.WeightGradient(g, x, dy, dw, db, threads: 2, bits);
        AssertClose(expectedW.ToArray(), dw, $"{bits}-bit direct weight gradient {g}", rel: 1e-4, abs: 1e-3);
        AssertClose(expectedB.ToArray(), db, $"{bits}-bit direct bias gradient {g}", rel: 1e-4, abs: 1e-3);
    }

    public static TheoryData<int, ConvGeometry> WinogradCases()
    {
        var cases = new TheoryData<int, ConvGeometry>();
        var geometries = new[]
        {
            new ConvGeometry(2, 16, 14, 14, 32, 5, 5, 1, 1, 2, 2),        // F(2×2, 5×5), whole tiles
            new ConvGeometry(2, 20, 9, 11, 18, 3, 3, 1, 1, 1, 1),         // F(4×4, 3×3), partial tiles and channel blocks
            new ConvGeometry(1, 32, 8, 13, 32, 3, 3, 1, 1, 0, 0, Groups: 2),
            // Batch-wide: one 3×3 tile per image, chunks across images, partial channel blocks, a short last chunk.
            new ConvGeometry(9, 20, 4, 4, 18, 3, 3, 1, 1, 1, 1),
            new ConvGeometry(3, 16, 4, 4, 16, 5, 5, 1, 1, 2, 2),         // four 5×5 tiles per image
            new ConvGeometry(2, 32, 4, 4, 32, 3, 3, 1, 1, 1, 1, Groups: 2),
        };
        foreach (int bits in new[] { 512, 256, 128 })
            foreach (var g in geometries) cases.Add(bits, g);
        return cases;
    }

    [Theory]
    [MemberData(nameof(WinogradCases))]
    public void WinogradMatchesTheReference(int bits, ConvGeometry g)
    {
        Assert.True(WinogradConvolution.Fits(g), $"{g} is not a Winograd geometry: the test no longer covers the kernel");
        if (!Runs(bits))
        {
            Assert.True(DirectConvolution.Bits < bits, $"{bits}-bit kernels selected on {CpuIsa.Describe()}");
            return;
        }
        var (x, w, b) = Operands(g, seed: bits + g.InW);
        var rng = new Rng((ulong)bits);
        var dy = RandomNormal(rng, g.Batch * g.OutChannels * g.OutH * g.OutW);
        var reference = new ReferenceBackend();
        var expected = reference.Allocate(new TensorShape(g.Batch, g.OutChannels, g.OutH, g.OutW));
        var rx = TensorOf(reference, x, g.Batch, g.InChannels, g.InH, g.InW);
        reference.ConvForward(g, rx, TensorOf(reference, w, g.OutChannels, g.GroupInChannels, g.KernelH, g.KernelW),
            TensorOf(reference, b, g.OutChannels), expected);
        var actual = new float[expected.Length];
        WinogradConvolution.Forward(g, x, w, b, actual, threads: 2, bits);
        AssertClose(expected.ToArray(), actual, $"{bits}-bit Winograd forward {g}", rel: 1e-3, abs: 1e-3);

        var expectedW = reference.Allocate(new TensorShape(g.OutChannels, g.GroupInChannels, g.KernelH, g.KernelW));
        var expectedB = reference.Allocate(new TensorShape(g.OutChannels));
        reference.ConvBackwardWeights(g, rx, TensorOf(reference, dy, g.Batch, g.OutChannels, g.OutH, g.OutW), expectedW, expectedB);
        float[] dw = new float[expectedW.Length], db = new float[g.OutChannels];
        WinogradConvolution.WeightGradient(g, x, dy, dw, db, threads: 2, bits);
        AssertClose(expectedW.ToArray(), dw, $"{bits}-bit Winograd weight gradient {g}", rel: 1e-3, abs: 2e-3);
        AssertClose(expectedB.ToArray(), db, $"{bits}-bit Winograd bias gradient {g}", rel: 1e-4, abs: 1e-3);
    }

    [Fact]
    public void EveryWidthSumsInTheSameOrder()
    {
        // Each output is summed over channels, rows and columns in one order at every width, so where all widths
        // fuse multiply-adds they agree to the bit: a model does not change with the machine's vector width.
        var g = new ConvGeometry(2, 6, 9, 15, 20, 3, 3, 1, 1, 1, 1);
        var (x, w, b) = Operands(g, seed: 3);
        var widths = new[] { 512, 256, 128 }.Where(Runs).ToList();
        Assert.Contains(DirectConvolution.Bits, widths);
        if (!CpuIsa.HasFma) return; // one width only (128-bit, unfused) runs on such a machine
        var outputs = widths.Select(bits =>
        {
            var y = new float[g.Batch * g.OutChannels * g.OutH * g.OutW];
            DirectConvolution.Forward(g, x, w, b, y, threads: 1, bits);
            return y;
        }).ToList();
        foreach (var y in outputs.Skip(1)) Assert.Equal(outputs[0], y);
    }

    private static (float[] X, float[] W, float[] B) Operands(in ConvGeometry g, int seed)
    {
        var rng = new Rng((ulong)seed);
        return (RandomNormal(rng, g.Batch * g.InChannels * g.InH * g.InW), RandomNormal(rng, g.WeightLength), RandomNormal(rng, g.OutChannels));
    }
}
