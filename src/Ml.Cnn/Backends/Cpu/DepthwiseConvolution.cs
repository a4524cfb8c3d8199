namespace Ml.Cnn.Backends.Cpu;

/// <summary>
/// Depthwise convolutions (one input channel per group: MobileNet's 3×3 with groups = channels). The im2col path
/// would make one tiny GEMM per channel; here a stride-1 convolution on a large plane runs plane by plane, each
/// kernel tap adding a scaled, shifted copy of the plane to the output in one vector loop, and strided ones or small
/// planes run channels-last, vectorized across channels. Every output sums its taps in one fixed order and sums over
/// images go in fixed groups, so results do not depend on the thread count or the vector width.
/// </summary>
internal static class DepthwiseConvolution
{
    /// <summary>Grouped convolutions with one input channel per group (and any number of outputs per group).</summary>
    public static bool Applies(in ConvGeometry g) => g.Groups > 1 && g.GroupInChannels == 1;

    public static void Forward(in ConvGeometry g, float[] x, ReadOnlySpan<float> w, float[]? b, float[] y, int threads)
    {
        if (RunsChannelsLast(g))
        {
            ChannelsLastPlanes.Forward(g, x, w, b, y, threads);
            return;
        }
        var geometry = g;
        var weights = w.ToArray();
        int inPlane = g.InH * g.InW, outPlane = g.OutH * g.OutW, taps = g.KernelH * g.KernelW;
        CpuWork.For(g.Batch * g.OutChannels, threads, p =>
        {
            int n = p / geometry.OutChannels, oc = p % geometry.OutChannels, ic = oc / geometry.GroupOutChannels;
            var src = x.AsSpan((n * geometry.InChannels + ic) * inPlane, inPlane);
            var dst = y.AsSpan(p * outPlane, outPlane);
            var kernel = weights.AsSpan(oc * taps, taps);
            if (geometry.StrideH == 1 && geometry.StrideW == 1)
            {
                Stride1(src, geometry.InH, geometry.InW, geometry.PadH, geometry.PadW, geometry, kernel, flip: false, dst, geometry.OutH, geometry.OutW);
                if (b is not null) Pointwise.AddScalar(dst, b[oc]);
                return;
            }
            dst.Fill(b is null ? 0 : b[oc]);
            for (int kh = 0; kh < geometry.KernelH; kh++)
                for (int kw = 0; kw < geometry.KernelW; kw++)
                    AddTap(geometry, kh, kw, kernel[kh * geometry.KernelW + kw], src, dst);
        });
    }

    /// <summary>
    /// Without a channel multiplier, input planes of at most 64 pixels (a MobileNet's last stages, hundreds of channels
    /// on 4×4 or 2×2, where set-up per plane would be most of the work) and strided convolutions (whose rows cannot be
    /// one vector span) run channels-last, vectorized across channels (<see cref="ChannelsLastPlanes"/>). Measured on
    /// MobileNetV2: stride 1 on 16×16 and 32×32 planes is faster plane by plane.
    /// </summary>
    private static bool RunsChannelsLast(in ConvGeometry g) => g.GroupOutChannels == 1 && (g.InH * g.InW <= 64 || g.StrideH > 1 || g.StrideW > 1);

    /// <summary>
    /// Channels-last depthwise passes: an image is transposed to [pixel][channel], each output pixel adds tap weight ×
    /// input pixel across all channels at once, and the result is transposed back. Each output value still sums its
    /// taps in one fixed order, and the weight gradient sums images in fixed groups (CpuWork.SumOverImages).
    /// </summary>
    private static class ChannelsLastPlanes
    {
        [ThreadStatic] private static float[]? t_in, t_out;
        [ThreadStatic] private static float[]? t_sums;

        /// <summary>[tap][channel] from [channel][tap].</summary>
        private static float[] TapsFirst(in ConvGeometry g, ReadOnlySpan<float> w)
        {
            int taps = g.KernelH * g.KernelW, channels = g.OutChannels;
            var t = new float[taps * channels];
            for (int c = 0; c < channels; c++)
                for (int k = 0; k < taps; k++) t[k * channels + c] = w[c * taps + k];
            return t;
        }

        private static void ToChannelsLast(ReadOnlySpan<float> planes, int channels, int pixels, Span<float> target)
        {
            for (int c = 0; c < channels; c++)
                for (int p = 0; p < pixels; p++) target[p * channels + c] = planes[c * pixels + p];
        }

        private static void ToPlanes(ReadOnlySpan<float> source, int channels, int pixels, Span<float> planes)
        {
            for (int p = 0; p < pixels; p++)
                for (int c = 0; c < channels; c++) planes[c * pixels + p] = source[p * channels + c];
        }

        /// <summary>Calls tap(input pixel, output pixel, tap) for every tap that lands inside the image, in fixed order.</summary>
        private static void ForTaps(in ConvGeometry g, Action<int, int, int> tap)
        {
            for (int oh = 0; oh < g.OutH; oh++)
                for (int ow = 0; ow < g.OutW; ow++)
                    for (int kh = 0; kh < g.KernelH; kh++)
                    {
                        int ih = oh * g.StrideH - g.PadH + kh * g.DilationH;
                        if ((uint)ih >= (uint)g.InH) continue;
                        for (int kw = 0; kw < g.KernelW; kw++)
                        {
                            int iw = ow * g.StrideW - g.PadW + kw * g.DilationW;
                            if ((uint)iw < (uint)g.InW) tap(ih * g.InW + iw, oh * g.OutW + ow, kh * g.KernelW + kw);
                        }
                    }
        }

        public static void Forward(in ConvGeometry g, float[] x, ReadOnlySpan<float> w, float[]? b, float[] y, int threads)
        {
            var geometry = g;
            var weights = TapsFirst(g, w);
            int c = g.InChannels, inPixels = g.InH * g.InW, outPixels = g.OutH * g.OutW;
            CpuWork.For(g.Batch, threads, n =>
            {
                var input = CpuWork.Scratch(ref t_in, c * inPixels);
                var output = CpuWork.Scratch(ref t_out, c * outPixels);
                ToChannelsLast(x.AsSpan(n * c * inPixels, c * inPixels), c, inPixels, input);
                for (int p = 0; p < outPixels; p++)
                    if (b is null) output.AsSpan(p * c, c).Clear(); else b.AsSpan(0, c).CopyTo(output.AsSpan(p * c, c));
                ForTaps(geometry, (i, o, k) => Pointwise.MultiplyAddInto(output.AsSpan(o * c, c), weights.AsSpan(k * c, c), input.AsSpan(i * c, c)));
                ToPlanes(output.AsSpan(0, c * outPixels), c, outPixels, y.AsSpan(n * c * outPixels, c * outPixels));
            });
        }

        public static void DataGradient(in ConvGeometry g, float[] dy, ReadOnlySpan<float> w, float[] dx, int threads)
        {
            var geometry = g;
            var weights = TapsFirst(g, w);
            int c = g.InChannels, inPixels = g.InH * g.InW, outPixels = g.OutH * g.OutW;
            CpuWork.For(g.Batch, threads, n =>
            {
                var upstream = CpuWork.Scratch(ref t_out, c * outPixels);
                var gradient = CpuWork.Scratch(ref t_in, c * inPixels);
                ToChannelsLast(dy.AsSpan(n * c * outPixels, c * outPixels), c, outPixels, upstream);
                gradient.AsSpan(0, c * inPixels).Clear();
                ForTaps(geometry, (i, o, k) => Pointwise.MultiplyAddInto(gradient.AsSpan(i * c, c), weights.AsSpan(k * c, c), upstream.AsSpan(o * c, c)));
                ToPlanes(gradient.AsSpan(0, c * inPixels), c, inPixels, dx.AsSpan(n * c * inPixels, c * inPixels));
            });
        }

        public static void WeightGradient(in ConvGeometry g, float[] x, float[] dy, float[] dw, float[]? db, int threads)
        {
            var geometry = g;
            int c = g.InChannels, inPixels = g.InH * g.InW, outPixels = g.OutH * g.OutW, taps = g.KernelH * g.KernelW;
            // Per task: [tap][channel] weight sums, then [channel] bias sums.
            var sums = CpuWork.SumOverImages(g.Batch, 4, (taps + 1) * c, threads, ref t_sums, (n, total, offset) =>
            {
                var input = CpuWork.Scratch(ref t_in, c * inPixels);
                var upstream = CpuWork.Scratch(ref t_out, c * outPixels);
                ToChannelsLast(x.AsSpan(n * c * inPixels, c * inPixels), c, inPixels, input);
                ToChannelsLast(dy.AsSpan(n * c * outPixels, c * outPixels), c, outPixels, upstream);
                ForTaps(geometry, (i, o, k) => Pointwise.MultiplyAddInto(total.AsSpan(offset + k * c, c), upstream.AsSpan(o * c, c), input.AsSpan(i * c, c)));
                for (int o = 0; o < outPixels; o++) Pointwise.AddInto(total.AsSpan(offset + taps * c, c), upstream.AsSpan(o * c, c));
            });
            for (int ch = 0; ch < c; ch++)
                for (int k = 0; k < taps; k++) dw[ch * taps + k] = sums[k * c + ch];
            if (db is not null) sums.AsSpan(taps * c, c).CopyTo(db);
        }
    }

    [ThreadStatic] private static float[]? t_padded, t_wide;

    /// <summary>
    /// A stride-1 correlation of one plane: the source is copied into a zero-padded plane, and each tap adds one long
    /// scaled span of it to an output kept at the padded width (the extra columns are dropped at the end), so a tap
    /// is one vector loop over the plane rather than one per row. With <paramref name="flip"/> the kernel is turned
    /// 180° (the data gradient of a stride-1 convolution is this correlation of dy).
    /// </summary>
    private static void Stride1(ReadOnlySpan<float> src, int srcH, int srcW, int padH, int padW, in ConvGeometry g,
        ReadOnlySpan<float> kernel, bool flip, Span<float> dst, int dstH, int dstW)
    {
        int wide = srcW + 2 * padW, tall = srcH + 2 * padH;
        var padded = CpuWork.Scratch(ref t_padded, wide * tall).AsSpan(0, wide * tall);
        Pad(src, srcH, srcW, padH, padW, padded, wide);
        int length = (dstH - 1) * wide + dstW;
        var output = CpuWork.Scratch(ref t_wide, length).AsSpan(0, length);
        output.Clear();
        int kH = g.KernelH, kW = g.KernelW;
        for (int kh = 0; kh < kH; kh++)
            for (int kw = 0; kw < kW; kw++)
            {
                float weight = flip ? kernel[(kH - 1 - kh) * kW + (kW - 1 - kw)] : kernel[kh * kW + kw];
                Pointwise.AddScaledInto(output, weight, padded.Slice(kh * g.DilationH * wide + kw * g.DilationW, length));
            }
        for (int r = 0; r < dstH; r++) output.Slice(r * wide, dstW).CopyTo(dst.Slice(r * dstW, dstW));
    }

    /// <summary>Copies a plane into the middle of a zero plane <paramref name="wide"/> columns wide.</summary>
    private static void Pad(ReadOnlySpan<float> src, int srcH, int srcW, int padH, int padW, Span<float> padded, int wide)
    {
        padded.Clear();
        for (int r = 0; r < srcH; r++) src.Slice(r * srcW, srcW).CopyTo(padded.Slice((r + padH) * wide + padW, srcW));
    }

    /// <summary>dx of a depthwise convolution: each output gradient row, scaled by its tap, added back where it came from.</summary>
    public static void DataGradient(in ConvGeometry g, float[] dy, ReadOnlySpan<float> w, float[] dx, int threads)
    {
        if (RunsChannelsLast(g))
        {
            ChannelsLastPlanes.DataGradient(g, dy, w, dx, threads);
            return;
        }
        var geometry = g;
        var weights = w.ToArray();
        int inPlane = g.InH * g.InW, outPlane = g.OutH * g.OutW, taps = g.KernelH * g.KernelW, perGroup = g.GroupOutChannels;
        CpuWork.For(g.Batch * g.InChannels, threads, p =>
        {
            int n = p / geometry.InChannels, ic = p % geometry.InChannels;
            var gradient = dx.AsSpan(p * inPlane, inPlane);
            gradient.Clear();
            int padH = geometry.DilationH * (geometry.KernelH - 1) - geometry.PadH, padW = geometry.DilationW * (geometry.KernelW - 1) - geometry.PadW;
            bool correlate = geometry.StrideH == 1 && geometry.StrideW == 1 && padH >= 0 && padW >= 0;
            var single = correlate && perGroup > 1 ? new float[inPlane] : null;
            for (int oc = ic * perGroup; oc < (ic + 1) * perGroup; oc++)
            {
                var upstream = dy.AsSpan((n * geometry.OutChannels + oc) * outPlane, outPlane);
                if (correlate)
                {
                    // dx = dy correlated with the kernel turned 180°, padded by d(k − 1) − p.
                    var target = single ?? gradient;
                    Stride1(upstream, geometry.OutH, geometry.OutW, padH, padW, geometry, weights.AsSpan(oc * taps, taps), flip: true,
                        target, geometry.InH, geometry.InW);
                    if (single is not null) Pointwise.AddInto(gradient, single);
                    continue;
                }
                for (int kh = 0; kh < geometry.KernelH; kh++)
                    for (int kw = 0; kw < geometry.KernelW; kw++)
                        ScatterTap(geometry, kh, kw, weights[oc * taps + kh * geometry.KernelW + kw], upstream, gradient);
            }
        });
    }

    /// <summary>dw (and db) of a depthwise convolution, one output channel per thread, summed over the batch in order.</summary>
    public static void WeightGradient(in ConvGeometry g, float[] x, float[] dy, float[] dw, float[]? db, int threads)
    {
        if (RunsChannelsLast(g))
        {
            ChannelsLastPlanes.WeightGradient(g, x, dy, dw, db, threads);
            return;
        }
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
                if (geometry.StrideH == 1 && geometry.StrideW == 1)
                {
                    Stride1WeightGradient(geometry, src, upstream, sums);
                    continue;
                }
                for (int kh = 0; kh < geometry.KernelH; kh++)
                    for (int kw = 0; kw < geometry.KernelW; kw++)
                        sums[kh * geometry.KernelW + kw] += Correlate(geometry, kh, kw, src, upstream);
            }
            for (int t = 0; t < taps; t++) dw[oc * taps + t] = (float)sums[t];
            if (db is not null) db[oc] = (float)bias;
        });
    }

    [ThreadStatic] private static float[]? t_upstream;

    /// <summary>
    /// Stride-1 weight gradient of one plane: with the input zero-padded and dy laid out at the padded width (zeros in
    /// the extra columns), each tap's gradient is one dot product of two long spans.
    /// </summary>
    private static void Stride1WeightGradient(in ConvGeometry g, ReadOnlySpan<float> src, ReadOnlySpan<float> upstream, double[] sums)
    {
        int wide = g.InW + 2 * g.PadW, tall = g.InH + 2 * g.PadH;
        var padded = CpuWork.Scratch(ref t_padded, wide * tall).AsSpan(0, wide * tall);
        Pad(src, g.InH, g.InW, g.PadH, g.PadW, padded, wide);
        int length = (g.OutH - 1) * wide + g.OutW;
        var spread = CpuWork.Scratch(ref t_upstream, length).AsSpan(0, length);
        spread.Clear();
        for (int r = 0; r < g.OutH; r++) upstream.Slice(r * g.OutW, g.OutW).CopyTo(spread.Slice(r * wide, g.OutW));
        for (int kh = 0; kh < g.KernelH; kh++)
            for (int kw = 0; kw < g.KernelW; kw++)
                sums[kh * g.KernelW + kw] += Pointwise.Dot(spread, padded.Slice(kh * g.DilationH * wide + kw * g.DilationW, length));
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
