namespace Ml.Cnn.Backends.Cpu;

/// <summary>
/// Unfolds one image's group of channels into the [PatchSize, OutH·OutW] matrix that turns convolution into GEMM,
/// and folds gradients back (col2im). Stride, padding and dilation are handled here so the GEMM never sees them.
/// </summary>
internal static class Im2Col
{
    public static void Unfold(in ConvGeometry g, ReadOnlySpan<float> image, Span<float> col)
    {
        int oh = g.OutH, ow = g.OutW, plane = oh * ow;
        int row = 0;
        for (int c = 0; c < g.GroupInChannels; c++)
        {
            var channel = image.Slice(c * g.InH * g.InW, g.InH * g.InW);
            for (int ky = 0; ky < g.KernelH; ky++)
                for (int kx = 0; kx < g.KernelW; kx++, row++)
                {
                    var dst = col.Slice(row * plane, plane);
                    int xOffset = kx * g.DilationW - g.PadW;
                    var (oxStart, oxEnd) = ValidRange(ow, g.StrideW, xOffset, g.InW);
                    for (int oy = 0; oy < oh; oy++)
                    {
                        var line = dst.Slice(oy * ow, ow);
                        int iy = oy * g.StrideH - g.PadH + ky * g.DilationH;
                        if (iy < 0 || iy >= g.InH) { line.Clear(); continue; }
                        var src = channel.Slice(iy * g.InW, g.InW);
                        line[..oxStart].Clear();
                        if (g.StrideW == 1)
                            src.Slice(oxStart + xOffset, oxEnd - oxStart).CopyTo(line[oxStart..oxEnd]);
                        else
                            for (int ox = oxStart; ox < oxEnd; ox++) line[ox] = src[ox * g.StrideW + xOffset];
                        line[oxEnd..].Clear();
                    }
                }
        }
    }

    /// <summary>Adds the columns back into the image gradient (which the caller zeroes first).</summary>
    public static void FoldAdd(in ConvGeometry g, ReadOnlySpan<float> col, Span<float> image)
    {
        int oh = g.OutH, ow = g.OutW, plane = oh * ow;
        int row = 0;
        for (int c = 0; c < g.GroupInChannels; c++)
        {
            var channel = image.Slice(c * g.InH * g.InW, g.InH * g.InW);
            for (int ky = 0; ky < g.KernelH; ky++)
                for (int kx = 0; kx < g.KernelW; kx++, row++)
                {
                    var src = col.Slice(row * plane, plane);
                    int xOffset = kx * g.DilationW - g.PadW;
                    var (oxStart, oxEnd) = ValidRange(ow, g.StrideW, xOffset, g.InW);
                    for (int oy = 0; oy < oh; oy++)
                    {
                        int iy = oy * g.StrideH - g.PadH + ky * g.DilationH;
                        if (iy < 0 || iy >= g.InH) continue;
                        var line = src.Slice(oy * ow, ow);
                        var dst = channel.Slice(iy * g.InW, g.InW);
                        if (g.StrideW == 1)
                            Pointwise.AddInto(dst.Slice(oxStart + xOffset, oxEnd - oxStart), line[oxStart..oxEnd]);
                        else
                            for (int ox = oxStart; ox < oxEnd; ox++) dst[ox * g.StrideW + xOffset] += line[ox];
                    }
                }
        }
    }

    /// <summary>The output columns [start, end) whose input column ox·stride + offset lies inside [0, width).</summary>
    private static (int Start, int End) ValidRange(int outWidth, int stride, int offset, int width)
    {
        int start = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
        int end = width - offset <= 0 ? 0 : Math.Min(outWidth, (width - offset - 1) / stride + 1);
        start = Math.Min(start, outWidth);
        return (start, Math.Max(start, end));
    }
}
