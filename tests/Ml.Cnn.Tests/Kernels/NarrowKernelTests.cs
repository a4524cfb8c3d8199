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
/// The narrower GEMM kernels — 6×16 at 256 bits (AVX2), 6×8 at 128 bits (what Arm64 runs) — checked on a wider machine
/// by switching the kernel width down; a width the processor lacks is checked by the selection rule instead. (The CI
/// legs with DOTNET_EnableAVX512=0 and DOTNET_EnableAVX2=0 run the whole suite on them.)
/// </summary>
[Collection(nameof(GemmKernelSwitch))]
public sealed class NarrowKernelTests
{
    public static TheoryData<int, int, int, int, bool, bool> Cases()
    {
        var cases = new TheoryData<int, int, int, int, bool, bool>();
        foreach (int bits in new[] { 256, 128 })
        {
            cases.Add(bits, 1, 1, 1, false, false);
            cases.Add(bits, 7, 13, 5, false, false);
            cases.Add(bits, 145, 33, 257, true, false);
            cases.Add(bits, 31, 47, 300, false, true);
            cases.Add(bits, 150, 17, 1100, true, true);
            cases.Add(bits, 9, 3100, 19, false, false);
            cases.Add(bits, 64, 10, 1024, false, true);   // a classifier's scores: row dots
            cases.Add(bits, 64, 1024, 10, false, false);  // its input gradient: shallow
        }
        return cases;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesTheReference(int bits, int m, int n, int k, bool transA, bool transB)
    {
        bool runs = bits == 256 ? W256.IsSupported : W128.IsSupported;
        if (!runs)
        {
            Assert.True(Sgemm.KernelBits < bits, $"{bits}-bit GEMM selected on {CpuIsa.Describe()}");
            return;
        }
        var rng = new Rng(17);
        var reference = new ReferenceBackend();
        var cpu = new CpuBackend(2);
        var a = RandomNormal(rng, m * k);
        var b = RandomNormal(rng, k * n);
        var c = RandomNormal(rng, m * n);
        var expected = TensorOf(reference, c, m, n);
        reference.MatMul(TensorOf(reference, a, transA ? [k, m] : [m, k]), transA, TensorOf(reference, b, transB ? [n, k] : [k, n]), transB, expected, 0.5f, 2f);
        int widest = Sgemm.KernelBits;
        try
        {
            Sgemm.KernelBits = Math.Min(bits, widest);
            var actual = TensorOf(cpu, c, m, n);
            cpu.MatMul(TensorOf(cpu, a, transA ? [k, m] : [m, k]), transA, TensorOf(cpu, b, transB ? [n, k] : [k, n]), transB, actual, 0.5f, 2f);
            AssertClose(expected, actual, $"{bits}-bit gemm {m}x{n}x{k}", rel: 1e-4, abs: 1e-4);
        }
        finally
        {
            Sgemm.KernelBits = widest;
        }
    }
}
