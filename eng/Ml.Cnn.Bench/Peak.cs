using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Ml.Cnn.Backends.Cpu;

namespace Ml.Cnn.Bench;

/// <summary>
/// This core's single-precision multiply-add peak at the widest vector width the JIT runs (the ISA the kernels use:
/// switching AVX-512 or AVX2 off lowers it too), measured with twelve independent chains of the kernels' own
/// multiply-add (fused where the hardware fuses).
/// </summary>
internal static class Peak
{
    public static double GflopsPerCore() =>
        W512.IsSupported ? Measure<Vector512<float>, W512>() : W256.IsSupported ? Measure<Vector256<float>, W256>() : Measure<Vector128<float>, W128>();

    private static double Measure<V, S>() where V : struct where S : struct, ISimd<V>
    {
        const long iterations = 100_000_000;
        Chains<V, S>(1000);
        var clock = Stopwatch.StartNew();
        Chains<V, S>(iterations);
        // 12 chains × lanes × 2 flops per iteration.
        return iterations * 12.0 * S.Lanes * 2 / clock.Elapsed.TotalSeconds / 1e9;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Chains<V, S>(long iterations) where V : struct where S : struct, ISimd<V>
    {
        V m = S.Broadcast(0.999999f), a = S.Broadcast(1e-7f);
        V c0 = S.Zero, c1 = S.Zero, c2 = S.Zero, c3 = S.Zero, c4 = S.Zero, c5 = S.Zero;
        V c6 = S.Zero, c7 = S.Zero, c8 = S.Zero, c9 = S.Zero, c10 = S.Zero, c11 = S.Zero;
        for (long i = 0; i < iterations; i++)
        {
            c0 = S.MulAdd(c0, m, a); c1 = S.MulAdd(c1, m, a); c2 = S.MulAdd(c2, m, a);
            c3 = S.MulAdd(c3, m, a); c4 = S.MulAdd(c4, m, a); c5 = S.MulAdd(c5, m, a);
            c6 = S.MulAdd(c6, m, a); c7 = S.MulAdd(c7, m, a); c8 = S.MulAdd(c8, m, a);
            c9 = S.MulAdd(c9, m, a); c10 = S.MulAdd(c10, m, a); c11 = S.MulAdd(c11, m, a);
        }
        return S.Sum(S.Add(S.Add(S.Add(c0, c1), S.Add(c2, c3)), S.Add(S.Add(S.Add(c4, c5), S.Add(c6, c7)), S.Add(S.Add(c8, c9), S.Add(c10, c11)))));
    }
}
