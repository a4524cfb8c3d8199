using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ml.Cnn.Bench;

/// <summary>This CPU's single-precision FMA peak, measured with independent 8-wide FMA chains on every core.</summary>
internal static class Peak
{
    public static double GflopsPerCore()
    {
        if (!Fma.IsSupported) return double.NaN;
        const long iterations = 100_000_000;
        Chains(1000);
        var sw = Stopwatch.StartNew();
        Chains(iterations);
        // 12 chains × 8 lanes × 2 flops per iteration.
        double avx2 = iterations * 12 * 8 * 2 / sw.Elapsed.TotalSeconds / 1e9;
        if (!Avx512F.IsSupported) return avx2;
        Chains512(1000);
        sw.Restart();
        Chains512(iterations);
        double avx512 = iterations * 12 * 16 * 2 / sw.Elapsed.TotalSeconds / 1e9;
        return Math.Max(avx2, avx512);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Chains512(long iterations)
    {
        var m = Vector512.Create(0.999999f);
        var a = Vector512.Create(1e-7f);
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
        Vector512<float> c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
        for (long i = 0; i < iterations; i++)
        {
            c0 = Avx512F.FusedMultiplyAdd(c0, m, a); c1 = Avx512F.FusedMultiplyAdd(c1, m, a); c2 = Avx512F.FusedMultiplyAdd(c2, m, a);
            c3 = Avx512F.FusedMultiplyAdd(c3, m, a); c4 = Avx512F.FusedMultiplyAdd(c4, m, a); c5 = Avx512F.FusedMultiplyAdd(c5, m, a);
            c6 = Avx512F.FusedMultiplyAdd(c6, m, a); c7 = Avx512F.FusedMultiplyAdd(c7, m, a); c8 = Avx512F.FusedMultiplyAdd(c8, m, a);
            c9 = Avx512F.FusedMultiplyAdd(c9, m, a); c10 = Avx512F.FusedMultiplyAdd(c10, m, a); c11 = Avx512F.FusedMultiplyAdd(c11, m, a);
        }
        return (c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11).ToScalar();
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Chains(long iterations)
    {
        var m = Vector256.Create(0.999999f);
        var a = Vector256.Create(1e-7f);
        Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
        Vector256<float> c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
        for (long i = 0; i < iterations; i++)
        {
            c0 = Fma.MultiplyAdd(c0, m, a); c1 = Fma.MultiplyAdd(c1, m, a); c2 = Fma.MultiplyAdd(c2, m, a);
            c3 = Fma.MultiplyAdd(c3, m, a); c4 = Fma.MultiplyAdd(c4, m, a); c5 = Fma.MultiplyAdd(c5, m, a);
            c6 = Fma.MultiplyAdd(c6, m, a); c7 = Fma.MultiplyAdd(c7, m, a); c8 = Fma.MultiplyAdd(c8, m, a);
            c9 = Fma.MultiplyAdd(c9, m, a); c10 = Fma.MultiplyAdd(c10, m, a); c11 = Fma.MultiplyAdd(c11, m, a);
        }
        return (c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11).ToScalar();
    }
}
