using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Backends.Reference;
using Ml.Cnn.Core;
using Ml.Cnn.Tensors;
using Xunit;
using static Ml.Cnn.Tests.Support.Numerics;

namespace Ml.Cnn.Tests.Kernels;

/// <summary>Runs alone: it switches the process-wide GEMM kernel.</summary>
[CollectionDefinition(nameof(GemmKernelSwitch), DisableParallelization = true)]
public sealed class GemmKernelSwitch;

/// <summary>
/// The 6×16 AVX2/portable GEMM kernel, which machines without AVX-512 (and ARM) use, checked on an AVX-512 machine by
/// switching the wide kernel off. (DOTNET_EnableAVX512F=0 runs the whole suite on it.)
/// </summary>
[Collection(nameof(GemmKernelSwitch))]
public sealed class NarrowKernelTests
{
    [Theory]
    [InlineData(1, 1, 1, false, false)]
    [InlineData(7, 13, 5, false, false)]
    [InlineData(145, 33, 257, true, false)]
    [InlineData(31, 47, 300, false, true)]
    [InlineData(150, 17, 1100, true, true)]
    [InlineData(9, 3100, 19, false, false)]
    public void MatchesTheReference(int m, int n, int k, bool transA, bool transB)
    {
        var rng = new Rng(17);
        var reference = new ReferenceBackend();
        var cpu = new CpuBackend(2);
        var a = RandomNormal(rng, m * k);
        var b = RandomNormal(rng, k * n);
        var c = RandomNormal(rng, m * n);
        var expected = TensorOf(reference, c, m, n);
        reference.MatMul(TensorOf(reference, a, transA ? [k, m] : [m, k]), transA, TensorOf(reference, b, transB ? [n, k] : [k, n]), transB, expected, 0.5f, 2f);
        bool wide = Sgemm.UseWideKernel;
        try
        {
            Sgemm.UseWideKernel = false;
            var actual = TensorOf(cpu, c, m, n);
            cpu.MatMul(TensorOf(cpu, a, transA ? [k, m] : [m, k]), transA, TensorOf(cpu, b, transB ? [n, k] : [k, n]), transB, actual, 0.5f, 2f);
            AssertClose(expected, actual, $"narrow gemm {m}x{n}x{k}", rel: 1e-4, abs: 1e-4);
        }
        finally
        {
            Sgemm.UseWideKernel = wide;
        }
    }
}
