using Ml.Cnn.Core;
using Ml.Cnn.Gpu;
using Ml.Cnn.Tests.Support;
using Xunit;
using static Ml.Cnn.Tests.Support.Numerics;

namespace Ml.Cnn.Tests.Gpu;

/// <summary>
/// The GPU's shared-memory tiled SGEMM, run on ILGPU's CPU accelerator (where the backend otherwise takes the
/// per-element kernel): both add each element's products in k order, so they must agree bit for bit, on tile edges,
/// transposes, β ≠ 0 and shallow products alike.
/// </summary>
[Collection(TestBackends.GpuCollection)]
public sealed class GpuGemmTests
{
    [Theory]
    [InlineData(1, 1, 1, false, false)]
    [InlineData(5, 7, 9, false, false)]
    [InlineData(17, 6, 33, true, false)]
    [InlineData(9, 19, 4, false, true)]
    [InlineData(13, 11, 21, true, true)]
    public void TiledKernelGivesThePerElementKernelsBits(int m, int n, int k, bool transA, bool transB)
    {
        // ILGPU's default groups of 16 threads: 4 × 4 tiles, so the shapes cross tile edges.
        using var gpu = GpuBackend.CpuAccelerator(ILGPU.Runtime.CPU.CPUAcceleratorMode.Auto, null);
        var rng = new Rng(77);
        var a = TensorOf(gpu, RandomNormal(rng, m * k), transA ? [k, m] : [m, k]);
        var b = TensorOf(gpu, RandomNormal(rng, k * n), transB ? [n, k] : [k, n]);
        var start = RandomNormal(rng, m * n);
        var perElement = TensorOf(gpu, start, m, n);
        var tiled = TensorOf(gpu, start, m, n);

        Assert.False(gpu.TiledGemm);
        gpu.MatMul(a, transA, b, transB, perElement, 0.75f, 0.5f);
        gpu.TiledGemm = true;
        gpu.MatMul(a, transA, b, transB, tiled, 0.75f, 0.5f);

        Assert.Equal(perElement.ToArray(), tiled.ToArray());
        Assert.NotEqual(start, tiled.ToArray());
    }
}
