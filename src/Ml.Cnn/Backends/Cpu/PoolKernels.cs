using Ml.Cnn.Backends.Reference;

namespace Ml.Cnn.Backends.Cpu;

/// <summary>Pooling over one H×W plane; planes are independent, so the backend spreads them over threads.</summary>
internal static class PoolKernels
{
    public static void MaxForwardPlane(in PoolGeometry g, ReadOnlySpan<float> x, Span<float> y)
    {
        int ow = g.OutW;
        for (int oy = 0; oy < g.OutH; oy++)
            for (int ox = 0; ox < ow; ox++)
                y[oy * ow + ox] = x[ArgMax(g, x, oy, ox)];
    }

    public static void MaxBackwardPlane(in PoolGeometry g, ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        dx.Clear();
        int ow = g.OutW;
        for (int oy = 0; oy < g.OutH; oy++)
            for (int ox = 0; ox < ow; ox++)
                dx[ArgMax(g, x, oy, ox)] += dy[oy * ow + ox];
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
        int ow = g.OutW;
        for (int oy = 0; oy < g.OutH; oy++)
            for (int ox = 0; ox < ow; ox++)
            {
                var (y0, y1, x0, x1, divisor) = ReferenceBackend.AvgWindow(g, oy, ox);
                float sum = 0;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) sum += x[iy * g.InW + ix];
                y[oy * ow + ox] = sum / divisor;
            }
    }

    public static void AvgBackwardPlane(in PoolGeometry g, ReadOnlySpan<float> dy, Span<float> dx)
    {
        dx.Clear();
        int ow = g.OutW;
        for (int oy = 0; oy < g.OutH; oy++)
            for (int ox = 0; ox < ow; ox++)
            {
                var (y0, y1, x0, x1, divisor) = ReferenceBackend.AvgWindow(g, oy, ox);
                float share = dy[oy * ow + ox] / divisor;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) dx[iy * g.InW + ix] += share;
            }
    }
}
