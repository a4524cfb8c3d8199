namespace Ml.Cnn.Backends.Cpu;

/// <summary>
/// Depthwise convolutions (one input channel per group: MobileNet's 3×3 with groups = channels). The im2col path
/// would make one tiny GEMM per channel; here a stride-1 convolution on a large plane runs plane by plane, each
/// kernel tap adding a scaled, shifted copy of the plane to the output in one vector loop, and the others run
/// channels-last, vectorized across channels. Every output sums its taps in one fixed order and sums over
/// images go in fixed groups, so results do not depend on the thread count or the vector width.
/// </summary>
internal static class DepthwiseConvolution
{
    /// <summary>Grouped convolutions with one input channel per group (and any number of outputs per group).</summary>
    public static bool Applies(in ConvGeometry g) => g.Groups > 1 && g.GroupInChannels == 1;

    /// <summary>
    /// Stride-1 convolutions without a channel multiplier on planes above 64 pixels run plane by plane (and their data
    /// gradient too where the transposed padding d(k − 1) − p is not negative); everything else runs channels-last:
    /// small planes (a MobileNet's last stages, hundreds of channels on 4×4 or 2×2, where set-up per plane would be
    /// most of the work), strides (whose rows are not one vector span) and channel multipliers. Measured on
    /// MobileNetV2: stride 1 on 16×16 and 32×32 planes is faster plane by plane, the rest channels-last.
    /// </summary>
    private static bool PlaneByPlane(in ConvGeometry g) =>
        g is { StrideH: 1, StrideW: 1, GroupOutChannels: 1 } && g.InH * g.InW > 64;

    /// <summary>The padding that makes the data gradient a stride-1 correlation of dy, or null where it would be negative.</summary>
    private static (int H, int W)? TransposedPadding(in ConvGeometry g)
    {
        int padH = g.DilationH * (g.KernelH - 1) - g.PadH, padW = g.DilationW * (g.KernelW - 1) - g.PadW;
        return padH >= 0 && padW >= 0 ? (padH, padW) : null;
    }

    public static void Forward(in ConvGeometry g, float[] x, float[] w, float[]? b, float[] y, int threads)
    {
        if (!PlaneByPlane(g))
        {
            ChannelsLastPlanes.Forward(g, x, w, b, y, threads);
            return;
        }
        var geometry = g;
        int inPlane = g.InH * g.InW, outPlane = g.OutH * g.OutW, taps = g.KernelH * g.KernelW;
        CpuWork.For(g.Batch * g.OutChannels, threads, p =>
        {
            int n = p / geometry.OutChannels, c = p % geometry.OutChannels;
            var dst = y.AsSpan(p * outPlane, outPlane);
            Stride1(x.AsSpan((n * geometry.InChannels + c) * inPlane, inPlane), geometry.InH, geometry.InW, geometry.PadH, geometry.PadW,
                geometry, w.AsSpan(c * taps, taps), flip: false, dst, geometry.OutH, geometry.OutW);
            if (b is not null) Pointwise.AddScalar(dst, b[c]);
        });
    }

    /// <summary>dx of a depthwise convolution: dy correlated with the kernel turned 180°, plane by plane where that applies.</summary>
    public static void DataGradient(in ConvGeometry g, float[] dy, float[] w, float[] dx, int threads)
    {
        if (!PlaneByPlane(g) || TransposedPadding(g) is not { } pad)
        {
            ChannelsLastPlanes.DataGradient(g, dy, w, dx, threads);
            return;
        }
        var geometry = g;
        int inPlane = g.InH * g.InW, outPlane = g.OutH * g.OutW, taps = g.KernelH * g.KernelW;
        CpuWork.For(g.Batch * g.InChannels, threads, p =>
        {
            int c = p % geometry.InChannels;
            Stride1(dy.AsSpan(p * outPlane, outPlane), geometry.OutH, geometry.OutW, pad.H, pad.W, geometry, w.AsSpan(c * taps, taps), flip: true,
                dx.AsSpan(p * inPlane, inPlane), geometry.InH, geometry.InW);
        });
    }

    /// <summary>dw (and db) of a depthwise convolution, one channel per thread (plane by plane), summed over the batch in order.</summary>
    public static void WeightGradient(in ConvGeometry g, float[] x, float[] dy, float[] dw, float[]? db, int threads)
    {
        if (!PlaneByPlane(g))
        {
            ChannelsLastPlanes.WeightGradient(g, x, dy, dw, db, threads);
            return;
        }
        var geometry = g;
        int inPlane = g.InH * g.InW, outPlane = g.OutH * g.OutW, taps = g.KernelH * g.KernelW;
        CpuWork.For(g.OutChannels, threads, c =>
        {
            var sums = new double[taps];
            double bias = 0;
            for (int n = 0; n < geometry.Batch; n++)
            {
                var upstream = dy.AsSpan((n * geometry.OutChannels + c) * outPlane, outPlane);
                if (db is not null) bias += Pointwise.Sum(upstream);
                Stride1WeightGradient(geometry, x.AsSpan((n * geometry.InChannels + c) * inPlane, inPlane), upstream, sums);
            }
            for (int t = 0; t < taps; t++) dw[c * taps + t] = (float)sums[t];
            if (db is not null) db[c] = (float)bias;
        });
    }

    [ThreadStatic] private static float[]? t_padded, t_wide, t_upstream;

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

    /// <summary>Copies a plane into the middle of a zero plane <paramref name="wide"/> columns wide.</summary>
    private static void Pad(ReadOnlySpan<float> src, int srcH, int srcW, int padH, int padW, Span<float> padded, int wide)
    {
        padded.Clear();
        for (int r = 0; r < srcH; r++) src.Slice(r * srcW, srcW).CopyTo(padded.Slice((r + padH) * wide + padW, srcW));
    }

    /// <summary>
    /// Channels-last depthwise passes: an image is transposed to [pixel][output channel] — each input channel repeated
    /// for its GroupOutChannels outputs — each output pixel adds tap weight × input pixel across all channels at once,
    /// and the result is transposed back (a data gradient summing each input channel's repeats in order). Each output
    /// value sums its taps in one fixed order, and the weight gradient sums images in fixed groups
    /// (CpuWork.SumOverImages), so results do not depend on the thread count.
    /// </summary>
    private static class ChannelsLastPlanes
    {
        [ThreadStatic] private static float[]? t_in, t_out, t_sums;

        /// <summary>[tap][channel] from [channel][tap].</summary>
        private static float[] TapsFirst(in ConvGeometry g, float[] w)
        {
            int taps = g.KernelH * g.KernelW, channels = g.OutChannels;
            var t = new float[taps * channels];
            for (int c = 0; c < channels; c++)
                for (int k = 0; k < taps; k++) t[k * channels + c] = w[c * taps + k];
            return t;
        }

        /// <summary>[channel][pixel] planes to [pixel][channel · repeat], each channel written <paramref name="repeat"/> times.</summary>
        private static void ToChannelsLast(ReadOnlySpan<float> planes, int channels, int repeat, int pixels, Span<float> target)
        {
            int width = channels * repeat;
            for (int c = 0; c < channels; c++)
                for (int p = 0; p < pixels; p++)
                {
                    float v = planes[c * pixels + p];
                    for (int r = 0; r < repeat; r++) target[p * width + c * repeat + r] = v;
                }
        }

        /// <summary>The reverse: [pixel][channel · repeat] to [channel][pixel], each channel the sum of its repeats.</summary>
        private static void ToPlanes(ReadOnlySpan<float> source, int channels, int repeat, int pixels, Span<float> planes)
        {
            int width = channels * repeat;
            for (int p = 0; p < pixels; p++)
                for (int c = 0; c < channels; c++)
                {
                    float sum = source[p * width + c * repeat];
                    for (int r = 1; r < repeat; r++) sum += source[p * width + c * repeat + r];
                    planes[c * pixels + p] = sum;
                }
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

        public static void Forward(in ConvGeometry g, float[] x, float[] w, float[]? b, float[] y, int threads)
        {
            var geometry = g;
            var weights = TapsFirst(g, w);
            int ic = g.InChannels, oc = g.OutChannels, m = g.GroupOutChannels, inPixels = g.InH * g.InW, outPixels = g.OutH * g.OutW;
            CpuWork.For(g.Batch, threads, n =>
            {
                var input = CpuWork.Scratch(ref t_in, oc * inPixels);
                var output = CpuWork.Scratch(ref t_out, oc * outPixels);
                ToChannelsLast(x.AsSpan(n * ic * inPixels, ic * inPixels), ic, m, inPixels, input);
                for (int p = 0; p < outPixels; p++)
                    if (b is null) output.AsSpan(p * oc, oc).Clear(); else b.AsSpan(0, oc).CopyTo(output.AsSpan(p * oc, oc));
                ForTaps(geometry, (i, o, k) => Pointwise.MultiplyAddInto(output.AsSpan(o * oc, oc), weights.AsSpan(k * oc, oc), input.AsSpan(i * oc, oc)));
                ToPlanes(output.AsSpan(0, oc * outPixels), oc, 1, outPixels, y.AsSpan(n * oc * outPixels, oc * outPixels));
            });
        }

        public static void DataGradient(in ConvGeometry g, float[] dy, float[] w, float[] dx, int threads)
        {
            var geometry = g;
            var weights = TapsFirst(g, w);
            int ic = g.InChannels, oc = g.OutChannels, m = g.GroupOutChannels, inPixels = g.InH * g.InW, outPixels = g.OutH * g.OutW;
            CpuWork.For(g.Batch, threads, n =>
            {
                var upstream = CpuWork.Scratch(ref t_out, oc * outPixels);
                var gradient = CpuWork.Scratch(ref t_in, oc * inPixels);
                ToChannelsLast(dy.AsSpan(n * oc * outPixels, oc * outPixels), oc, 1, outPixels, upstream);
                gradient.AsSpan(0, oc * inPixels).Clear();
                ForTaps(geometry, (i, o, k) => Pointwise.MultiplyAddInto(gradient.AsSpan(i * oc, oc), weights.AsSpan(k * oc, oc), upstream.AsSpan(o * oc, oc)));
                ToPlanes(gradient.AsSpan(0, oc * inPixels), ic, m, inPixels, dx.AsSpan(n * ic * inPixels, ic * inPixels));
            });
        }

        public static void WeightGradient(in ConvGeometry g, float[] x, float[] dy, float[] dw, float[]? db, int threads)
        {
            var geometry = g;
            int ic = g.InChannels, oc = g.OutChannels, m = g.GroupOutChannels, inPixels = g.InH * g.InW, outPixels = g.OutH * g.OutW;
            int taps = g.KernelH * g.KernelW;
            // Per task: [tap][channel] weight sums, then [channel] bias sums.
            var sums = CpuWork.SumOverImages(g.Batch, 4, (taps + 1) * oc, threads, ref t_sums, (n, total, offset) =>
            {
                var input = CpuWork.Scratch(ref t_in, oc * inPixels);
                var upstream = CpuWork.Scratch(ref t_out, oc * outPixels);
                ToChannelsLast(x.AsSpan(n * ic * inPixels, ic * inPixels), ic, m, inPixels, input);
                ToChannelsLast(dy.AsSpan(n * oc * outPixels, oc * outPixels), oc, 1, outPixels, upstream);
                ForTaps(geometry, (i, o, k) => Pointwise.MultiplyAddInto(total.AsSpan(offset + k * oc, oc), upstream.AsSpan(o * oc, oc), input.AsSpan(i * oc, oc)));
                for (int o = 0; o < outPixels; o++) Pointwise.AddInto(total.AsSpan(offset + taps * oc, oc), upstream.AsSpan(o * oc, oc));
            });
            for (int c = 0; c < oc; c++)
                for (int k = 0; k < taps; k++) dw[c * taps + k] = sums[k * oc + c];
            if (db is not null) sums.AsSpan(taps * oc, oc).CopyTo(db);
        }
    }
}
