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

    /// <summary>y[i] = a[i] · b[i].</summary>
    public static void Multiply(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var va = MemoryMarshal.Cast<float, Vector<float>>(a);
            var vb = MemoryMarshal.Cast<float, Vector<float>>(b);
            var vy = MemoryMarshal.Cast<float, Vector<float>>(y);
            for (; i < vy.Length; i++) vy[i] = va[i] * vb[i];
            i *= Vector<float>.Count;
        }
        for (; i < y.Length; i++) y[i] = a[i] * b[i];
    }

    /// <summary>dst[i] += a[i] · b[i].</summary>
    public static void MultiplyAddInto(Span<float> dst, ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var vd = MemoryMarshal.Cast<float, Vector<float>>(dst);
            var va = MemoryMarshal.Cast<float, Vector<float>>(a);
            var vb = MemoryMarshal.Cast<float, Vector<float>>(b);
            for (; i < vd.Length; i++) vd[i] += va[i] * vb[i];
            i *= Vector<float>.Count;
        }
        for (; i < dst.Length; i++) dst[i] += a[i] * b[i];
    }

    /// <summary>y[i] = x[i] · scale.</summary>
    public static void Scale(ReadOnlySpan<float> x, float scale, Span<float> y)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var vx = MemoryMarshal.Cast<float, Vector<float>>(x);
            var vy = MemoryMarshal.Cast<float, Vector<float>>(y);
            var vs = new Vector<float>(scale);
            for (; i < vy.Length; i++) vy[i] = vx[i] * vs;
            i *= Vector<float>.Count;
        }
        for (; i < y.Length; i++) y[i] = x[i] * scale;
    }

    /// <summary>Σ a[i] · b[i], in float lanes then double, as <see cref="Sum"/>.</summary>
    public static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        int i = 0;
        double total = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var va = MemoryMarshal.Cast<float, Vector<float>>(a);
            var vb = MemoryMarshal.Cast<float, Vector<float>>(b);
            var acc = Vector<float>.Zero;
            for (; i < va.Length; i++) acc += va[i] * vb[i];
            for (int l = 0; l < Vector<float>.Count; l++) total += acc[l];
            i *= Vector<float>.Count;
        }
        for (; i < a.Length; i++) total += a[i] * b[i];
        return (float)total;
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

    /// <summary>
    /// sums[c] = Σ over the batch of channel c's plane in [batch, channels, plane] values (a convolution's bias
    /// gradient), image by image in order, one channel per task.
    /// </summary>
    public static void ChannelSums(float[] values, int batch, int channels, int plane, float[] sums, int threads) =>
        CpuWork.For(channels, threads, c =>
        {
            double sum = 0;
            for (int n = 0; n < batch; n++) sum += Sum(values.AsSpan((n * channels + c) * plane, plane));
            sums[c] = (float)sum;
        });

    /// <summary>Σ (value − mean)², in float lanes then double, as <see cref="Sum"/>.</summary>
    public static double SumSquaredDeviations(ReadOnlySpan<float> values, float mean)
    {
        int i = 0;
        double total = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var vv = MemoryMarshal.Cast<float, Vector<float>>(values);
            var acc = Vector<float>.Zero;
            var vm = new Vector<float>(mean);
            for (; i < vv.Length; i++)
            {
                var d = vv[i] - vm;
                acc += d * d;
            }
            for (int l = 0; l < Vector<float>.Count; l++) total += acc[l];
            i *= Vector<float>.Count;
        }
        for (; i < values.Length; i++)
        {
            float d = values[i] - mean;
            total += d * d;
        }
        return total;
    }

    /// <summary>(Σ dy, Σ dy·(x − mean)) over one plane, in float lanes.</summary>
    public static (float SumDy, float SumDyCentred) GradientSums(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, float mean)
    {
        int i = 0;
        float sumDy = 0, sumDyCentred = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var vdy = MemoryMarshal.Cast<float, Vector<float>>(dy);
            var vx = MemoryMarshal.Cast<float, Vector<float>>(x);
            Vector<float> a = Vector<float>.Zero, b = Vector<float>.Zero, vm = new(mean);
            for (; i < vdy.Length; i++)
            {
                a += vdy[i];
                b += vdy[i] * (vx[i] - vm);
            }
            sumDy = Vector.Sum(a);
            sumDyCentred = Vector.Sum(b);
            i *= Vector<float>.Count;
        }
        for (; i < dy.Length; i++)
        {
            sumDy += dy[i];
            sumDyCentred += dy[i] * (x[i] - mean);
        }
        return (sumDy, sumDyCentred);
    }

    /// <summary>y[i] = x[i]·scale + shift (rounded twice, as the scalar expression).</summary>
    public static void Affine(ReadOnlySpan<float> x, Span<float> y, float scale, float shift)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var vx = MemoryMarshal.Cast<float, Vector<float>>(x);
            var vy = MemoryMarshal.Cast<float, Vector<float>>(y);
            Vector<float> vs = new(scale), vb = new(shift);
            for (; i < vx.Length; i++) vy[i] = vx[i] * vs + vb;
            i *= Vector<float>.Count;
        }
        for (; i < x.Length; i++) y[i] = x[i] * scale + shift;
    }

    /// <summary>dx = k·(dy − meanDy − (x − mean)·invStd·meanDyXhat): batch norm's input gradient over one plane.</summary>
    public static void NormalizationGradient(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx, float k, float meanDy,
        float mean, float invStd, float meanDyXhat)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var vx = MemoryMarshal.Cast<float, Vector<float>>(x);
            var vdy = MemoryMarshal.Cast<float, Vector<float>>(dy);
            var vdx = MemoryMarshal.Cast<float, Vector<float>>(dx);
            Vector<float> vk = new(k), vMeanDy = new(meanDy), vMean = new(mean), vInvStd = new(invStd), vMeanDyXhat = new(meanDyXhat);
            for (; i < vx.Length; i++) vdx[i] = vk * (vdy[i] - vMeanDy - (vx[i] - vMean) * vInvStd * vMeanDyXhat);
            i *= Vector<float>.Count;
        }
        for (; i < x.Length; i++) dx[i] = k * (dy[i] - meanDy - (x[i] - mean) * invStd * meanDyXhat);
    }
}
