using ILGPU;

namespace Ml.Cnn.Gpu.Kernels;

/// <summary>
/// Nearest and bilinear upsampling of [planes, h, w] to [planes, H, W] in the CPU backend's two separable passes
/// (along each row into a [planes, h, W] scratch, then between rows) with its arithmetic in its order, so the two
/// agree to the bit. The taps come from the host's one definition (<c>Interpolation</c>), as a table of
/// (i₀, i₁, λ) per output index and, for the backward passes, the first and last output index reading each input index.
/// Backward gathers per input element over those outputs, in output order, so it needs no atomics.
/// </summary>
internal static class ResamplingKernels
{
    public static void RowsForward(Index1D i, ArrayView<float> x, ArrayView<float> rows, ArrayView<float> columnTaps, ResampleArgs g)
    {
        int ox = i % g.OutW, rest = i / g.OutW; // rest = plane·h + y
        int x0 = (int)columnTaps[3 * ox], x1 = (int)columnTaps[3 * ox + 1];
        float lx = columnTaps[3 * ox + 2];
        rows[i] = (1 - lx) * x[(long)rest * g.InW + x0] + lx * x[(long)rest * g.InW + x1];
    }

    public static void ColumnsForward(Index1D i, ArrayView<float> rows, ArrayView<float> y, ArrayView<float> rowTaps, ResampleArgs g)
    {
        int ox = i % g.OutW, oy = i / g.OutW % g.OutH, plane = i / (g.OutW * g.OutH);
        int y0 = (int)rowTaps[3 * oy], y1 = (int)rowTaps[3 * oy + 1];
        float ly = rowTaps[3 * oy + 2];
        long top = ((long)plane * g.InH + y0) * g.OutW + ox, bottom = ((long)plane * g.InH + y1) * g.OutW + ox;
        y[i] = (1 - ly) * rows[top] + ly * rows[bottom];
    }

    /// <summary>rows[plane, y, ox] ← Σ over the output rows oy that read row y, of their weight on it times dy.</summary>
    public static void ColumnsBackward(Index1D i, ArrayView<float> dy, ArrayView<float> rows, ArrayView<float> rowTaps,
        ArrayView<float> rowRanges, ResampleArgs g)
    {
        int ox = i % g.OutW, y = i / g.OutW % g.InH, plane = i / (g.OutW * g.InH);
        float sum = 0;
        for (int oy = (int)rowRanges[2 * y]; oy <= (int)rowRanges[2 * y + 1]; oy++)
        {
            float ly = rowTaps[3 * oy + 2], gradient = dy[((long)plane * g.OutH + oy) * g.OutW + ox];
            if ((int)rowTaps[3 * oy] == y) sum += (1 - ly) * gradient;
            if ((int)rowTaps[3 * oy + 1] == y) sum += ly * gradient;
        }
        rows[i] = sum;
    }

    /// <summary>dx[plane, y, x] ← Σ over the output columns ox that read column x, of their weight times rows.</summary>
    public static void RowsBackward(Index1D i, ArrayView<float> rows, ArrayView<float> dx, ArrayView<float> columnTaps,
        ArrayView<float> columnRanges, ResampleArgs g)
    {
        int x = i % g.InW, rest = i / g.InW; // rest = plane·h + y
        float sum = 0;
        for (int ox = (int)columnRanges[2 * x]; ox <= (int)columnRanges[2 * x + 1]; ox++)
        {
            float lx = columnTaps[3 * ox + 2], gradient = rows[(long)rest * g.OutW + ox];
            if ((int)columnTaps[3 * ox] == x) sum += (1 - lx) * gradient;
            if ((int)columnTaps[3 * ox + 1] == x) sum += lx * gradient;
        }
        dx[i] = sum;
    }
}

internal struct ResampleArgs
{
    public int InH, InW, OutH, OutW;
}
