namespace Ml.Cnn.Backends.Cpu;

/// <summary>
/// Unfolds one image's group of channels into the [PatchSize, OutH·OutW] matrix that turns convolution into GEMM,
/// and folds gradients back (col2im). Stride, padding and dilation are handled here so the GEMM never sees them.
/// Several images sit side by side in one matrix: image i occupies columns [offset, offset + OutH·OutW) of rows
/// rowStride floats apart, so one large GEMM serves a whole chunk of the batch. Rows of small images are short
/// (14–28 floats), so the loops use raw pointers: span slicing per row costs more than the copy.
/// </summary>
internal static unsafe class Im2Col
{
    public static void Unfold(in ConvGeometry g, ReadOnlySpan<float> image, Span<float> col, int columnOffset, int rowStride)
    {
        int oh = g.OutH, ow = g.OutW, inW = g.InW, inH = g.InH, sw = g.StrideW;
        fixed (float* imageStart = image)
        fixed (float* colStart = col)
        {
            float* dstRow = colStart + columnOffset;
            for (int c = 0; c < g.GroupInChannels; c++)
            {
                float* channel = imageStart + (long)c * inH * inW;
                for (int ky = 0; ky < g.KernelH; ky++)
                    for (int kx = 0; kx < g.KernelW; kx++, dstRow += rowStride)
                    {
                        int xOffset = kx * g.DilationW - g.PadW;
                        var (oxStart, oxEnd) = ValidRange(ow, sw, xOffset, inW);
                        float* dst = dstRow;
                        for (int oy = 0; oy < oh; oy++, dst += ow)
                        {
                            int iy = oy * g.StrideH - g.PadH + ky * g.DilationH;
                            if ((uint)iy >= (uint)inH)
                            {
                                for (int ox = 0; ox < ow; ox++) dst[ox] = 0;
                                continue;
                            }
                            float* src = channel + (long)iy * inW + xOffset;
                            int ox2 = 0;
                            for (; ox2 < oxStart; ox2++) dst[ox2] = 0;
                            if (sw == 1)
                                for (; ox2 < oxEnd; ox2++) dst[ox2] = src[ox2];
                            else
                                for (; ox2 < oxEnd; ox2++) dst[ox2] = src[ox2 * sw];
                            for (; ox2 < ow; ox2++) dst[ox2] = 0;
                        }
                    }
            }
        }
    }

    /// <summary>Adds the columns back into the image gradient (which the caller zeroes first).</summary>
    public static void FoldAdd(in ConvGeometry g, ReadOnlySpan<float> col, int columnOffset, int rowStride, Span<float> image)
    {
        int oh = g.OutH, ow = g.OutW, inW = g.InW, inH = g.InH, sw = g.StrideW;
        fixed (float* imageStart = image)
        fixed (float* colStart = col)
        {
            float* srcRow = colStart + columnOffset;
            for (int c = 0; c < g.GroupInChannels; c++)
            {
                float* channel = imageStart + (long)c * inH * inW;
                for (int ky = 0; ky < g.KernelH; ky++)
                    for (int kx = 0; kx < g.KernelW; kx++, srcRow += rowStride)
                    {
                        int xOffset = kx * g.DilationW - g.PadW;
                        var (oxStart, oxEnd) = ValidRange(ow, sw, xOffset, inW);
                        float* src = srcRow;
                        for (int oy = 0; oy < oh; oy++, src += ow)
                        {
                            int iy = oy * g.StrideH - g.PadH + ky * g.DilationH;
                            if ((uint)iy >= (uint)inH) continue;
                            float* dst = channel + (long)iy * inW + xOffset;
                            if (sw == 1)
                                for (int ox = oxStart; ox < oxEnd; ox++) dst[ox] += src[ox];
                            else
                                for (int ox = oxStart; ox < oxEnd; ox++) dst[ox * sw] += src[ox];
                        }
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
