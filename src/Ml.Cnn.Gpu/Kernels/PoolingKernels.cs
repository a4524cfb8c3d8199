using ILGPU;

namespace Ml.Cnn.Gpu.Kernels;

/// <summary>
/// Max and average pooling with PyTorch's rules (padding never wins a max, the first maximum takes the gradient,
/// the average's divisor per count-include-pad). Backward passes gather per input pixel over the windows that cover
/// it, so they need no atomics and no zeroing pass.
/// </summary>
internal static class PoolingKernels
{
    public static void MaxForward(Index1D i, ArrayView<float> x, ArrayView<float> y, PoolArgs g)
    {
        int ox = i % g.OutW, oy = i / g.OutW % g.OutH, plane = i / (g.OutW * g.OutH);
        y[i] = x[MaxIndex(x, g, plane, oy, ox)];
    }

    public static void MaxBackward(Index1D i, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> dx, PoolArgs g)
    {
        int ix = i % g.InW, iy = i / g.InW % g.InH, plane = i / (g.InW * g.InH);
        float sum = 0;
        for (int oy = First(iy, g.PadH, g.KernelH, g.StrideH); oy <= Last(iy, g.PadH, g.StrideH, g.OutH); oy++)
            for (int ox = First(ix, g.PadW, g.KernelW, g.StrideW); ox <= Last(ix, g.PadW, g.StrideW, g.OutW); ox++)
                if (MaxIndex(x, g, plane, oy, ox) == i) sum += dy[(plane * g.OutH + oy) * g.OutW + ox];
        dx[i] = sum;
    }

    public static void AvgForward(Index1D i, ArrayView<float> x, ArrayView<float> y, PoolArgs g)
    {
        int ox = i % g.OutW, oy = i / g.OutW % g.OutH, plane = i / (g.OutW * g.OutH);
        int y0 = oy * g.StrideH - g.PadH, x0 = ox * g.StrideW - g.PadW;
        int divisor = Divisor(g, y0, x0);
        float sum = 0;
        for (int iy = Max(y0, 0); iy < Min(y0 + g.KernelH, g.InH); iy++)
            for (int ix = Max(x0, 0); ix < Min(x0 + g.KernelW, g.InW); ix++) sum += x[(plane * g.InH + iy) * g.InW + ix];
        y[i] = sum / divisor;
    }

    public static void AvgBackward(Index1D i, ArrayView<float> dy, ArrayView<float> dx, PoolArgs g)
    {
        int ix = i % g.InW, iy = i / g.InW % g.InH, plane = i / (g.InW * g.InH);
        float sum = 0;
        for (int oy = First(iy, g.PadH, g.KernelH, g.StrideH); oy <= Last(iy, g.PadH, g.StrideH, g.OutH); oy++)
            for (int ox = First(ix, g.PadW, g.KernelW, g.StrideW); ox <= Last(ix, g.PadW, g.StrideW, g.OutW); ox++)
                sum += dy[(plane * g.OutH + oy) * g.OutW + ox] / Divisor(g, oy * g.StrideH - g.PadH, ox * g.StrideW - g.PadW);
        dx[i] = sum;
    }

    /// <summary>y[p] ← mean of plane p; one thread per plane, in order.</summary>
    public static void GlobalAvgForward(Index1D p, ArrayView<float> x, ArrayView<float> y, int plane)
    {
        float sum = 0;
        for (int j = 0; j < plane; j++) sum += x[(long)p.X * plane + j];
        y[p] = sum / plane;
    }

    public static void GlobalAvgBackward(Index1D i, ArrayView<float> dy, ArrayView<float> dx, int plane) => dx[i] = dy[i / plane] / plane;

    // The first window (along one axis) that covers input position v, and the last.
    private static int First(int v, int pad, int kernel, int stride)
    {
        int span = v + pad - kernel + 1;
        return span <= 0 ? 0 : (span + stride - 1) / stride;
    }

    private static int Last(int v, int pad, int stride, int outSize) => Min((v + pad) / stride, outSize - 1);

    private static int MaxIndex(ArrayView<float> x, PoolArgs g, int plane, int oy, int ox)
    {
        int best = -1;
        float bestValue = 0;
        for (int ky = 0; ky < g.KernelH; ky++)
            for (int kx = 0; kx < g.KernelW; kx++)
            {
                int iy = oy * g.StrideH - g.PadH + ky, ix = ox * g.StrideW - g.PadW + kx;
                if (iy < 0 || iy >= g.InH || ix < 0 || ix >= g.InW) continue;
                int index = (plane * g.InH + iy) * g.InW + ix;
                float v = x[index];
                if (best < 0 || v > bestValue || float.IsNaN(v)) { best = index; bestValue = v; }
            }
        return best;
    }

    // PyTorch: the divisor counts padding (clipped to the padded input) with count-include-pad, real pixels otherwise.
    private static int Divisor(PoolArgs g, int y0, int x0)
    {
        int y1 = Min(y0 + g.KernelH, g.InH + g.PadH), x1 = Min(x0 + g.KernelW, g.InW + g.PadW);
        if (g.CountIncludePad != 0) return (y1 - y0) * (x1 - x0);
        return (Min(y1, g.InH) - Max(y0, 0)) * (Min(x1, g.InW) - Max(x0, 0));
    }

    private static int Min(int a, int b) => a < b ? a : b;

    private static int Max(int a, int b) => a > b ? a : b;
}

internal struct PoolArgs
{
    public int InH, InW, OutH, OutW, KernelH, KernelW, StrideH, StrideW, PadH, PadW, CountIncludePad;
}
