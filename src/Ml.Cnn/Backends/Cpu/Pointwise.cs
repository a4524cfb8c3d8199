using System.Numerics;
using System.Runtime.InteropServices;

namespace Ml.Cnn.Backends.Cpu;

/// <summary>Small SIMD loops shared by the CPU kernels.</summary>
internal static class Pointwise
{
    /// <summary>dst[i] += src[i].</summary>
    public static void AddInto(Span<float> dst, ReadOnlySpan<float> src)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var vd = MemoryMarshal.Cast<float, Vector<float>>(dst);
            var vs = MemoryMarshal.Cast<float, Vector<float>>(src);
            for (; i < vd.Length; i++) vd[i] += vs[i];
            i *= Vector<float>.Count;
        }
        for (; i < dst.Length; i++) dst[i] += src[i];
    }

    /// <summary>dst[i] += alpha · src[i].</summary>
    public static void AddScaledInto(Span<float> dst, float alpha, ReadOnlySpan<float> src)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var vd = MemoryMarshal.Cast<float, Vector<float>>(dst);
            var vs = MemoryMarshal.Cast<float, Vector<float>>(src);
            var va = new Vector<float>(alpha);
            for (; i < vd.Length; i++) vd[i] += va * vs[i];
            i *= Vector<float>.Count;
        }
        for (; i < dst.Length; i++) dst[i] += alpha * src[i];
    }

    /// <summary>dst[i] += value.</summary>
    public static void AddScalar(Span<float> dst, float value)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var vd = MemoryMarshal.Cast<float, Vector<float>>(dst);
            var vv = new Vector<float>(value);
            for (; i < vd.Length; i++) vd[i] += vv;
            i *= Vector<float>.Count;
        }
        for (; i < dst.Length; i++) dst[i] += value;
    }

    /// <summary>Σ values, in float lanes then double (fast and deterministic for a fixed length).</summary>
    public static double Sum(ReadOnlySpan<float> values)
    {
        int i = 0;
        double total = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var vv = MemoryMarshal.Cast<float, Vector<float>>(values);
            var acc = Vector<float>.Zero;
            for (; i < vv.Length; i++) acc += vv[i];
            for (int l = 0; l < Vector<float>.Count; l++) total += acc[l];
            i *= Vector<float>.Count;
        }
        for (; i < values.Length; i++) total += values[i];
        return total;
    }
}
