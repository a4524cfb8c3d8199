using System.Numerics;
using System.Runtime.Intrinsics;

namespace Ml.Cnn.Backends.Cpu;

/// <summary>Pooling over one H×W plane; planes are independent, so the backend spreads them over threads.</summary>
internal static unsafe class PoolKernels
{
    /// <summary>Whether every window lies inside the input, so the common no-padding case can skip bounds checks.</summary>
    private static bool Interior(in PoolGeometry g) =>
        g.PadH == 0 && g.PadW == 0 && (g.OutH - 1) * g.StrideH + g.KernelH <= g.InH && (g.OutW - 1) * g.StrideW + g.KernelW <= g.InW;

    private static readonly Vector128<int> Lanes = Vector128.Create(0, 1, 2, 3);

    private static bool TwoByTwo(in PoolGeometry g) =>
        Interior(g) && g.KernelH == 2 && g.KernelW == 2 && g.StrideH == 2 && g.StrideW == 2;

    public static void MaxForwardPlane(in PoolGeometry g, ReadOnlySpan<float> x, Span<float> y)
    {
        if (TwoByTwo(g))
        {
            // The most common pooling: branch-free maxima (random data makes compare-and-branch mispredict half the time).
            int outH = g.OutH, outW = g.OutW, inW = g.InW;
            fixed (float* px = x)
            fixed (float* py = y)
                for (int oy = 0; oy < outH; oy++)
                {
                    float* r0 = px + 2 * oy * inW, r1 = r0 + inW, dst = py + oy * outW;
                    for (int ox = 0; ox < outW; ox++)
                        dst[ox] = MathF.Max(MathF.Max(r0[2 * ox], r0[2 * ox + 1]), MathF.Max(r1[2 * ox], r1[2 * ox + 1]));
                }
            return;
        }
        if (Interior(g))
        {
            int outH = g.OutH, outW = g.OutW;
            fixed (float* px = x)
            fixed (float* py = y)
                for (int oy = 0; oy < outH; oy++)
                    for (int ox = 0; ox < outW; ox++)
                        py[oy * outW + ox] = px[InteriorArgMax(g, px, oy, ox)];
            return;
        }
        // Padded windows (ResNet's 3×3/2 stem pooling): the plane is copied inside a −∞ border, which no value or NaN
        // loses to, so the interior kernel runs without bounds checks and takes the same maximum.
        var padded = g with { InH = (g.OutH - 1) * g.StrideH + g.KernelH, InW = (g.OutW - 1) * g.StrideW + g.KernelW,
            PadH = 0, PadW = 0, CeilMode = false };
        var buffer = CpuWork.Scratch(ref t_padded, padded.InH * padded.InW);
        buffer.AsSpan(0, padded.InH * padded.InW).Fill(float.NegativeInfinity);
        int rows = Math.Clamp(padded.InH - g.PadH, 0, g.InH), columns = Math.Clamp(padded.InW - g.PadW, 0, g.InW);
        for (int iy = 0; iy < rows; iy++)
            x.Slice(iy * g.InW, columns).CopyTo(buffer.AsSpan((iy + g.PadH) * padded.InW + g.PadW));
        MaxForwardPlane(padded, buffer.AsSpan(0, padded.InH * padded.InW), y);
    }

    [ThreadStatic] private static float[]? t_padded;

    public static void MaxBackwardPlane(in PoolGeometry g, ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        if (TwoByTwo(g))
        {
            int outH = g.OutH, outW = g.OutW, inW = g.InW;
            if (g.InH != 2 * outH || inW != 2 * outW) dx.Clear(); // an odd last row or column gets no gradient
            fixed (float* px = x)
            fixed (float* pdy = dy)
            fixed (float* pdx = dx)
                for (int oy = 0; oy < outH; oy++)
                {
                    float* r0 = px + 2 * oy * inW, r1 = r0 + inW;
                    float* d0 = pdx + 2 * oy * inW, d1 = d0 + inW;
                    for (int ox = 0; ox < outW; ox++)
                    {
                        // The first maximum in row-major order takes the gradient (NaN counts as a maximum). Lane
                        // masks and a trailing-zero count pick it without branches, which random data would mispredict.
                        var window = Vector128.Create(Vector64.Load(r0 + 2 * ox), Vector64.Load(r1 + 2 * ox));
                        float m = MathF.Max(MathF.Max(window[0], window[1]), MathF.Max(window[2], window[3]));
                        var candidates = Vector128.Equals(window, Vector128.Create(m)) | ~Vector128.Equals(window, window);
                        int first = BitOperations.TrailingZeroCount(candidates.ExtractMostSignificantBits());
                        var routed = Vector128.ConditionalSelect(Vector128.Equals(Lanes, Vector128.Create(first)).AsSingle(),
                            Vector128.Create(pdy[oy * outW + ox]), Vector128<float>.Zero);
                        routed.GetLower().Store(d0 + 2 * ox);
                        routed.GetUpper().Store(d1 + 2 * ox);
                    }
                }
            return;
        }
        dx.Clear();
        if (Interior(g))
        {
            int outH = g.OutH, outW = g.OutW;
            fixed (float* px = x)
            fixed (float* pdy = dy)
            fixed (float* pdx = dx)
                for (int oy = 0; oy < outH; oy++)
                    for (int ox = 0; ox < outW; ox++)
                        pdx[InteriorArgMax(g, px, oy, ox)] += pdy[oy * outW + ox];
            return;
        }
        int ow = g.OutW, oh = g.OutH;
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++)
                dx[ArgMax(g, x, oy, ox)] += dy[oy * ow + ox];
    }

    /// <summary><see cref="ArgMax"/> for a window known to lie inside the input.</summary>
    private static int InteriorArgMax(in PoolGeometry g, float* x, int oy, int ox)
    {
        int best = oy * g.StrideH * g.InW + ox * g.StrideW;
        float bestValue = x[best];
        for (int ky = 0; ky < g.KernelH; ky++)
        {
            int row = (oy * g.StrideH + ky) * g.InW + ox * g.StrideW;
            for (int kx = 0; kx < g.KernelW; kx++)
            {
                // Written to compile to conditional moves: the comparison outcome is random on real data.
                float v = x[row + kx];
                bool take = (v > bestValue) | (float.IsNaN(v) & !float.IsNaN(bestValue));
                best = take ? row + kx : best;
                bestValue = take ? v : bestValue;
            }
        }
        return best;
    }

    /// <summary>The first maximum in the window, in row-major order (NaN wins, as in PyTorch).</summary>
    private static int ArgMax(in PoolGeometry g, ReadOnlySpan<float> x, int oy, int ox)
    {
        int y0 = oy * g.StrideH - g.PadH, x0 = ox * g.StrideW - g.PadW;
        int y1 = Math.Min(y0 + g.KernelH, g.InH), x1 = Math.Min(x0 + g.KernelW, g.InW);
        y0 = Math.Max(y0, 0);
        x0 = Math.Max(x0, 0);
        int best = y0 * g.InW + x0;
        float bestValue = x[best];
        for (int iy = y0; iy < y1; iy++)
        {
            int row = iy * g.InW;
            for (int ix = x0; ix < x1; ix++)
            {
                float v = x[row + ix];
                if (v > bestValue || float.IsNaN(v)) { bestValue = v; best = row + ix; if (float.IsNaN(v)) return best; }
            }
        }
        return best;
    }

    public static void AvgForwardPlane(in PoolGeometry g, ReadOnlySpan<float> x, Span<float> y)
    {
        int ow = g.OutW, oh = g.OutH;
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++)
            {
                var (y0, y1, x0, x1, divisor) = g.AverageWindow(oy, ox);
                float sum = 0;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) sum += x[iy * g.InW + ix];
                y[oy * ow + ox] = sum / divisor;
            }
    }

    public static void AvgBackwardPlane(in PoolGeometry g, ReadOnlySpan<float> dy, Span<float> dx)
    {
        dx.Clear();
        int ow = g.OutW, oh = g.OutH;
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++)
            {
                var (y0, y1, x0, x1, divisor) = g.AverageWindow(oy, ox);
                float share = dy[oy * ow + ox] / divisor;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) dx[iy * g.InW + ix] += share;
            }
    }
}
