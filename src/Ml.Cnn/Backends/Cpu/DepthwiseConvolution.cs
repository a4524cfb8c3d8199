namespace Ml.Cnn.Backends.Cpu;

/// <summary>
/// Depthwise convolutions (one input channel per group: MobileNet's 3×3 with groups = channels), plane by plane. The
/// im2col path would make one tiny GEMM per channel; here each kernel tap adds a scaled, shifted input row to an
/// output row, vectorized along the row when the stride is 1. Every output sums its taps in one fixed order and
/// every plane is one thread's, so results do not depend on the thread count or the vector width.
/// </summary>
internal static class DepthwiseConvolution
{
    /// <summary>Grouped convolutions with one input channel per group (and any number of outputs per group).</summary>
    public static bool Applies(in ConvGeometry g) => g.Groups > 1 && g.GroupInChannels == 1;

    public static void Forward(in ConvGeometry g, float[] x, ReadOnlySpan<float> w, float[]? b, float[] y, int threads)
    {
        var geometry = g;
        var weights = w.ToArray();
        int inPlane = g.InH * g.InW, outPlane = g.OutH * g.OutW, taps = g.KernelH * g.KernelW;
        CpuWork.For(g.Batch * g.OutChannels, threads, p =>
        {
            int n = p / geometry.OutChannels, oc = p % geometry.OutChannels, ic = oc / geometry.GroupOutChannels;
            var src = x.AsSpan((n * geometry.InChannels + ic) * inPlane, inPlane);
            var dst = y.AsSpan(p * outPlane, outPlane);
            dst.Fill(b is null ? 0 : b[oc]);
            for (int kh = 0; kh < geometry.KernelH; kh++)
                for (int kw = 0; kw < geometry.KernelW; kw++)
                    AddTap(geometry, kh, kw, weights[oc * taps + kh * geometry.KernelW + kw], src, dst);
        });
    }

    /// <summary>dx of a depthwise convolution: each output gradient row, scaled by its tap, added back where it came from.</summary>
    public static void DataGradient(in ConvGeometry g, float[] dy, ReadOnlySpan<float> w, float[] dx, int threads)
    {
        var geometry = g;
        var weights = w.ToArray();
        int inPlane = g.InH * g.InW, outPlane = g.OutH * g.OutW, taps = g.KernelH * g.KernelW, perGroup = g.GroupOutChannels;
        CpuWork.For(g.Batch * g.InChannels, threads, p =>
        {
            int n = p / geometry.InChannels, ic = p % geometry.InChannels;
            var gradient = dx.AsSpan(p * inPlane, inPlane);
            gradient.Clear();
            for (int oc = ic * perGroup; oc < (ic + 1) * perGroup; oc++)
            {
                var upstream = dy.AsSpan((n * geometry.OutChannels + oc) * outPlane, outPlane);
                for (int kh = 0; kh < geometry.KernelH; kh++)
                    for (int kw = 0; kw < geometry.KernelW; kw++)
                        ScatterTap(geometry, kh, kw, weights[oc * taps + kh * geometry.KernelW + kw], upstream, gradient);
            }
        });
    }

    /// <summary>dw (and db) of a depthwise convolution, one output channel per thread, summed over the batch in order.</summary>
    public static void WeightGradient(in ConvGeometry g, float[] x, float[] dy, float[] dw, float[]? db, int threads)
    {
        var geometry = g;
        int inPlane = g.InH * g.InW, outPlane = g.OutH * g.OutW, taps = g.KernelH * g.KernelW;
        CpuWork.For(g.OutChannels, threads, oc =>
        {
            int ic = oc / geometry.GroupOutChannels;
            var sums = new double[taps];
            double bias = 0;
            for (int n = 0; n < geometry.Batch; n++)
            {
                var src = x.AsSpan((n * geometry.InChannels + ic) * inPlane, inPlane);
                var upstream = dy.AsSpan((n * geometry.OutChannels + oc) * outPlane, outPlane);
                if (db is not null) bias += Pointwise.Sum(upstream);
                for (int kh = 0; kh < geometry.KernelH; kh++)
                    for (int kw = 0; kw < geometry.KernelW; kw++)
                        sums[kh * geometry.KernelW + kw] += Correlate(geometry, kh, kw, src, upstream);
            }
            for (int t = 0; t < taps; t++) dw[oc * taps + t] = (float)sums[t];
            if (db is not null) db[oc] = (float)bias;
        });
    }

    /// <summary>
    /// The output columns [start, end) whose input column for tap column <paramref name="kw"/> lies inside the image,
    /// and the input column of <c>start</c>.
    /// </summary>
    private static (int Start, int End, int InputStart) Columns(in ConvGeometry g, int kw)
    {
        int offset = kw * g.DilationW - g.PadW;          // input column of output column 0
        int start = offset >= 0 ? 0 : (-offset + g.StrideW - 1) / g.StrideW;
        int end = Math.Min(g.OutW, (g.InW - 1 - offset) / g.StrideW + 1);
        if (g.InW - 1 - offset < 0) end = 0;
        return (start, Math.Max(start, end), start * g.StrideW + offset);
    }

    /// <summary>For every output row: output row += weight · the input row under tap (kh, kw).</summary>
    private static void AddTap(in ConvGeometry g, int kh, int kw, float weight, ReadOnlySpan<float> input, Span<float> output)
    {
        var (start, end, inputStart) = Columns(g, kw);
        int count = end - start;
        if (count <= 0) return;
        for (int oh = 0; oh < g.OutH; oh++)
        {
            int ih = oh * g.StrideH - g.PadH + kh * g.DilationH;
            if (ih < 0 || ih >= g.InH) continue;
            int inRow = ih * g.InW + inputStart, outRow = oh * g.OutW + start;
            if (g.StrideW == 1) Pointwise.AddScaledInto(output.Slice(outRow, count), weight, input.Slice(inRow, count));
            else for (int i = 0; i < count; i++) output[outRow + i] += weight * input[inRow + i * g.StrideW];
        }
    }

    /// <summary>The transpose of <see cref="AddTap"/>: the input row under tap (kh, kw) += weight · output-gradient row.</summary>
    private static void ScatterTap(in ConvGeometry g, int kh, int kw, float weight, ReadOnlySpan<float> upstream, Span<float> gradient)
    {
        var (start, end, inputStart) = Columns(g, kw);
        int count = end - start;
        if (count <= 0) return;
        for (int oh = 0; oh < g.OutH; oh++)
        {
            int ih = oh * g.StrideH - g.PadH + kh * g.DilationH;
            if (ih < 0 || ih >= g.InH) continue;
            int inRow = ih * g.InW + inputStart, outRow = oh * g.OutW + start;
            if (g.StrideW == 1) Pointwise.AddScaledInto(gradient.Slice(inRow, count), weight, upstream.Slice(outRow, count));
            else for (int i = 0; i < count; i++) gradient[inRow + i * g.StrideW] += weight * upstream[outRow + i];
        }
    }

    /// <summary>Σ over output positions of dy · (the input under tap kh, kw).</summary>
    private static double Correlate(in ConvGeometry g, int kh, int kw, ReadOnlySpan<float> input, ReadOnlySpan<float> upstream)
    {
        var (start, end, inputStart) = Columns(g, kw);
        if (end <= start) return 0;
        int count = end - start;
        double sum = 0;
        for (int oh = 0; oh < g.OutH; oh++)
        {
            int ih = oh * g.StrideH - g.PadH + kh * g.DilationH;
            if (ih < 0 || ih >= g.InH) continue;
            int inRow = ih * g.InW + inputStart, outRow = oh * g.OutW + start;
            if (g.StrideW == 1) sum += Pointwise.Dot(upstream.Slice(outRow, count), input.Slice(inRow, count));
            else
                for (int i = 0; i < count; i++) sum += upstream[outRow + i] * input[inRow + i * g.StrideW];
        }
        return sum;
    }
}
