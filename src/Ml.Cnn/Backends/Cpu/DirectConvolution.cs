using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ml.Cnn.Backends.Cpu;

/// <summary>
/// Direct convolution for stride 1 without dilation, on AVX-512. Forward keeps sixteen output channels in the lanes of
/// a register and seven output pixels of a row in seven such accumulators: every weight vector loaded feeds seven
/// FMAs, each with one input value broadcast, so no lane is spent on pixels past the row's end (a 14-wide map fills
/// two blocks exactly) and kernel rows that fall on the padding above or below the image are skipped. No im2col
/// matrix is written, read back and packed (at small channel counts those memory passes cost more than the
/// arithmetic). Each image is first copied into a zero-padded buffer, so every load is in bounds. Backward-data is
/// the same operation on the output gradient with the kernel flipped and its channel axes swapped; the weight
/// gradient keeps its sums in registers across whole image rows.
/// </summary>
internal static unsafe class DirectConvolution
{
    private const int Lanes = 16;
    // Seven output pixels of a row per block: 28-, 14- and 7-wide maps split into whole blocks.
    private const int BlockPixels = 7;

    /// <summary>Whether the direct forward kernel handles this geometry (and runs faster there than im2col + GEMM).</summary>
    public static bool Applies(in ConvGeometry g) =>
        Sgemm.UseWideKernel && g.StrideH == 1 && g.StrideW == 1 && g.DilationH == 1 && g.DilationW == 1
        && g.GroupOutChannels >= Lanes && g.OutW >= 5;

    /// <summary>
    /// The geometry of backward-data as a forward convolution: output gradient in, input gradient out, padding
    /// k − 1 − p. Null when that padding would be negative.
    /// </summary>
    public static ConvGeometry? DataGradientGeometry(in ConvGeometry g)
    {
        if (g.PadH > g.KernelH - 1 || g.PadW > g.KernelW - 1) return null;
        return new ConvGeometry(g.Batch, g.OutChannels, g.OutH, g.OutW, g.InChannels, g.KernelH, g.KernelW, 1, 1,
            g.KernelH - 1 - g.PadH, g.KernelW - 1 - g.PadW, 1, 1, g.Groups);
    }

    /// <summary>Weights [Cout, Cin/groups, kH, kW] as backward-data's forward weights: flipped, channel axes swapped per group.</summary>
    public static float[] DataGradientWeights(in ConvGeometry g, ReadOnlySpan<float> w)
    {
        int gic = g.GroupInChannels, goc = g.GroupOutChannels, kh = g.KernelH, kw = g.KernelW;
        var flipped = CpuWork.Scratch(ref t_flippedWeights, w.Length);
        for (int group = 0; group < g.Groups; group++)
            for (int oc = 0; oc < goc; oc++)
                for (int c = 0; c < gic; c++)
                    for (int ky = 0; ky < kh; ky++)
                        for (int kx = 0; kx < kw; kx++)
                            flipped[(((group * gic + c) * goc + oc) * kh + ky) * kw + kx] =
                                w[(((group * goc + oc) * gic + c) * kh + (kh - 1 - ky)) * kw + (kw - 1 - kx)];
        return flipped;
    }

    /// <summary>y = conv(x, w) + b for geometries where <see cref="Applies"/> holds.</summary>
    public static void Forward(in ConvGeometry g, float[] x, ReadOnlySpan<float> w, float[]? bias, float[] y, int threads)
    {
        var geometry = g;
        var packed = PackWeights(g, w);
        int blocks = (g.GroupOutChannels + Lanes - 1) / Lanes, tasks = g.Batch * g.Groups * blocks;
        CpuWork.For(tasks, threads, task =>
        {
            int n = task / (geometry.Groups * blocks), group = task / blocks % geometry.Groups, block = task % blocks;
            ForwardBlock(geometry, x, packed, bias, y, n, group, block, blocks);
        });
    }

    /// <summary>[group][block of 16 output channels][input channel][ky][kx][16], channels beyond the group's zero.</summary>
    private static float[] PackWeights(in ConvGeometry g, ReadOnlySpan<float> w)
    {
        int gic = g.GroupInChannels, goc = g.GroupOutChannels, taps = g.KernelH * g.KernelW, blocks = (goc + Lanes - 1) / Lanes;
        var packed = CpuWork.Scratch(ref t_packedWeights, g.Groups * blocks * gic * taps * Lanes);
        packed.AsSpan(0, g.Groups * blocks * gic * taps * Lanes).Clear();
        for (int group = 0; group < g.Groups; group++)
            for (int oc = 0; oc < goc; oc++)
            {
                int block = oc / Lanes, lane = oc % Lanes;
                for (int c = 0; c < gic; c++)
                    for (int t = 0; t < taps; t++)
                        packed[((((group * blocks + block) * gic + c) * taps) + t) * Lanes + lane] = w[((group * goc + oc) * gic + c) * taps + t];
            }
        return packed;
    }

    /// <summary>One group of image n's channels, zero-padded, with a vector of slack after the last row.</summary>
    private static float[] Pad(in ConvGeometry g, float[] x, int n, int group, out int paddedW, out int paddedH)
    {
        paddedW = g.InW + 2 * g.PadW;
        paddedH = g.InH + 2 * g.PadH;
        int gic = g.GroupInChannels, plane = paddedW * paddedH, length = gic * plane + 2 * Lanes + g.KernelW;
        var buffer = CpuWork.Scratch(ref t_padded, length);
        buffer.AsSpan(0, length).Clear();
        for (int c = 0; c < gic; c++)
        {
            var source = x.AsSpan(((n * g.InChannels) + group * gic + c) * g.InH * g.InW, g.InH * g.InW);
            for (int row = 0; row < g.InH; row++)
                source.Slice(row * g.InW, g.InW).CopyTo(buffer.AsSpan(c * plane + (row + g.PadH) * paddedW + g.PadW));
        }
        return buffer;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ForwardBlock(in ConvGeometry g, float[] x, float[] packed, float[]? bias, float[] y, int n, int group, int block, int blocks)
    {
        var padded = Pad(g, x, n, group, out int pw, out int ph);
        int gic = g.GroupInChannels, goc = g.GroupOutChannels, kh = g.KernelH, kw = g.KernelW, oh = g.OutH, ow = g.OutW;
        int channels = Math.Min(Lanes, goc - block * Lanes), firstChannel = group * goc + block * Lanes;
        int plane = ph * pw, channelWeights = kh * kw * Lanes;
        float* results = stackalloc float[BlockPixels * Lanes];
        fixed (float* input = padded)
        fixed (float* weights = &packed[(group * blocks + block) * gic * channelWeights])
        fixed (float* output = y)
            for (int oy = 0; oy < oh; oy++)
            {
                // Kernel rows that fall on the zero padding above or below the image add nothing: skip them.
                int firstRow = Math.Max(0, g.PadH - oy), endRow = Math.Min(kh, g.InH + g.PadH - oy);
                for (int ox = 0; ox < ow; ox += BlockPixels)
                {
                    Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default;
                    for (int c = 0; c < gic; c++)
                        for (int ky = firstRow; ky < endRow; ky++)
                        {
                            float* row = input + c * plane + (oy + ky) * pw + ox;
                            float* w = weights + c * channelWeights + ky * kw * Lanes;
                            for (int kx = 0; kx < kw; kx++, w += Lanes, row++)
                            {
                                var wv = Vector512.Load(w);
                                a0 = Avx512F.FusedMultiplyAdd(Vector512.Create(row[0]), wv, a0);
                                a1 = Avx512F.FusedMultiplyAdd(Vector512.Create(row[1]), wv, a1);
                                a2 = Avx512F.FusedMultiplyAdd(Vector512.Create(row[2]), wv, a2);
                                a3 = Avx512F.FusedMultiplyAdd(Vector512.Create(row[3]), wv, a3);
                                a4 = Avx512F.FusedMultiplyAdd(Vector512.Create(row[4]), wv, a4);
                                a5 = Avx512F.FusedMultiplyAdd(Vector512.Create(row[5]), wv, a5);
                                a6 = Avx512F.FusedMultiplyAdd(Vector512.Create(row[6]), wv, a6);
                            }
                        }
                    Vector512.Store(a0, results); Vector512.Store(a1, results + 16); Vector512.Store(a2, results + 32);
                    Vector512.Store(a3, results + 48); Vector512.Store(a4, results + 64); Vector512.Store(a5, results + 80);
                    Vector512.Store(a6, results + 96);
                    int width = Math.Min(BlockPixels, ow - ox);
                    for (int i = 0; i < channels; i++)
                    {
                        float b = bias is null ? 0f : bias[firstChannel + i];
                        float* target = output + (((long)n * g.OutChannels + firstChannel + i) * oh + oy) * ow + ox;
                        for (int j = 0; j < width; j++) target[j] = results[j * Lanes + i] + b;
                    }
                }
            }
    }

    // ---- weight gradient ----

    private const int GradientChannels = 4, ImagesPerPass = 8;

    /// <summary>Kernel columns per register block: 3 for kernels up to 3 wide (no sums wasted on taps past the kernel), else 5.</summary>
    private static int GradientTaps(in ConvGeometry g) => g.KernelW <= 3 ? 3 : 5;

    /// <summary>Whether <see cref="WeightGradient"/> handles this geometry.</summary>
    public static bool AppliesToWeightGradient(in ConvGeometry g) =>
        Applies(g) && g.OutW >= 8 && g.KernelW >= 2 && g.GroupOutChannels % GradientChannels == 0;

    /// <summary>
    /// dw[oc, c, ky, kx] = Σ over images and output pixels of dy[n, oc, pixel] · x[n, c, pixel + (ky, kx) − padding].
    /// A block of 4 output channels × 5 kernel columns (3 for kernels up to 3 wide; one input channel, one kernel row) keeps its sums in
    /// registers while it runs over the rows of 8 images; between those passes the sums wait in memory. The 4
    /// channels' output gradient is first copied with each row padded to whole vectors of zeros, which the blocks of
    /// all input channels and kernel rows then share. Every sum runs in a fixed order (image, row, lane), whatever
    /// the thread count.
    /// </summary>
    public static void WeightGradient(in ConvGeometry g, float[] x, float[] dy, float[] dw, int threads)
    {
        var geometry = g;
        int gic = g.GroupInChannels, goc = g.GroupOutChannels, kh = g.KernelH, kw = g.KernelW;
        int taps = GradientTaps(g), tapGroups = (kw + taps - 1) / taps, channelBlocks = goc / GradientChannels;
        int blocksPerTask = gic * kh * tapGroups, tasks = g.Groups * channelBlocks;
        int sumsPerBlock = GradientChannels * taps * Lanes;
        var sums = CpuWork.Scratch(ref t_sums, tasks * blocksPerTask * sumsPerBlock); // each block starts its sums at zero itself
        int pw = g.InW + 2 * g.PadW, ph = g.InH + 2 * g.PadH, paddedImage = g.InChannels * pw * ph;
        var padded = CpuWork.Scratch(ref t_paddedImages, ImagesPerPass * paddedImage + 2 * Lanes + kw);
        for (int first = 0; first < g.Batch; first += ImagesPerPass)
        {
            int images = Math.Min(ImagesPerPass, g.Batch - first);
            int start = first;
            // Vectors of the pass's last rows run past its last image: what they read there must be finite (zero
            // output gradient times NaN garbage would still be NaN).
            padded.AsSpan(images * paddedImage, 2 * Lanes + kw).Clear();
            CpuWork.For(images, threads, i =>
            {
                var image = padded.AsSpan(i * paddedImage, paddedImage);
                image.Clear();
                for (int c = 0; c < geometry.InChannels; c++)
                    for (int row = 0; row < geometry.InH; row++)
                        x.AsSpan((((start + i) * geometry.InChannels + c) * geometry.InH + row) * geometry.InW, geometry.InW)
                         .CopyTo(image.Slice((c * ph + row + geometry.PadH) * pw + geometry.PadW));
            });
            CpuWork.For(tasks, threads, task => AccumulateTask(geometry, padded, dy, sums, task, start, images, tapGroups, channelBlocks));
        }
        // Lanes summed in order; taps beyond the kernel's width were computed on padding and are dropped.
        CpuWork.For(tasks, threads, task =>
        {
            int group = task / channelBlocks, channelBlock = task % channelBlocks;
            for (int block = 0; block < blocksPerTask; block++)
            {
                int tapGroup = block % tapGroups, ky = block / tapGroups % kh, c = block / tapGroups / kh;
                for (int i = 0; i < GradientChannels; i++)
                    for (int t = 0; t < taps; t++)
                    {
                        int kx = tapGroup * taps + t;
                        if (kx >= kw) continue;
                        var lanes = sums.AsSpan((int)(((long)task * blocksPerTask + block) * sumsPerBlock + (i * taps + t) * Lanes), Lanes);
                        float total = 0;
                        foreach (float v in lanes) total += v;
                        int oc = group * goc + channelBlock * GradientChannels + i;
                        dw[((oc * gic + c) * kh + ky) * kw + kx] = total;
                    }
            }
        });
    }

    [ThreadStatic] private static float[]? t_padded, t_gradientRows, t_sums, t_paddedImages, t_flippedWeights, t_packedWeights;

    private static void AccumulateTask(in ConvGeometry g, float[] padded, float[] dy, float[] sums, int task, int first, int images, int tapGroups, int channelBlocks)
    {
        int group = task / channelBlocks, channelBlock = task % channelBlocks;
        int oh = g.OutH, ow = g.OutW, rowLength = (ow + Lanes - 1) / Lanes * Lanes, channelLength = oh * rowLength;
        int firstChannel = group * g.GroupOutChannels + channelBlock * GradientChannels;
        // This task's 4 channels of output gradient for the pass's images, rows padded with zeros to whole vectors.
        int length = images * GradientChannels * channelLength;
        var rows = CpuWork.Scratch(ref t_gradientRows, ImagesPerPass * GradientChannels * channelLength);
        rows.AsSpan(0, length).Clear();
        for (int i = 0; i < images; i++)
            for (int channel = 0; channel < GradientChannels; channel++)
                for (int oy = 0; oy < oh; oy++)
                    dy.AsSpan((((first + i) * g.OutChannels + firstChannel + channel) * oh + oy) * ow, ow)
                      .CopyTo(rows.AsSpan(((i * GradientChannels + channel) * oh + oy) * rowLength));
        int taps = GradientTaps(g), blocksPerTask = g.GroupInChannels * g.KernelH * tapGroups, sumsPerBlock = GradientChannels * taps * Lanes;
        int pw = g.InW + 2 * g.PadW, ph = g.InH + 2 * g.PadH, paddedImage = g.InChannels * pw * ph;
        for (int block = 0; block < blocksPerTask; block++)
        {
            int tapGroup = block % tapGroups, ky = block / tapGroups % g.KernelH, c = block / tapGroups / g.KernelH;
            int inputOffset = ((group * g.GroupInChannels + c) * ph + ky) * pw + tapGroup * taps;
            // Output rows whose kernel row ky falls on the zero padding above or below the image add nothing.
            int firstRow = Math.Max(0, g.PadH - ky), endRow = Math.Min(oh, g.InH + g.PadH - ky);
            long sumsOffset = ((long)task * blocksPerTask + block) * sumsPerBlock;
            if (taps == 3)
                AccumulateBlock3(sums, sumsOffset, rows, channelLength, rowLength, padded, inputOffset, paddedImage, pw, images, firstRow, endRow, fresh: first == 0);
            else
                AccumulateBlock(sums, sumsOffset, rows, channelLength, rowLength, padded, inputOffset, paddedImage, pw, images, firstRow, endRow, fresh: first == 0);
        }
    }

    /// <summary>The 20 sums (4 channels × 5 taps) of one block over the pass's images: a loop of loads and FMAs only, so they stay in registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AccumulateBlock(float[] sums, long sumsOffset, float[] rows, int channelLength, int rowLength,
        float[] padded, int inputOffset, int paddedImage, int pw, int images, int firstRow, int endRow, bool fresh)
    {
        fixed (float* s = &sums[sumsOffset])
        fixed (float* gradients = rows)
        fixed (float* inputs = padded)
            for (int i = 0; i < images; i++)
            {
                if (fresh && i == 0) new Span<float>(s, GradientChannels * 5 * Lanes).Clear();
                // Sums enter and leave registers once per image: kept live across the image loop too, the JIT spills them.
                Vector512<float> s00 = Vector512.Load(s), s01 = Vector512.Load(s + 16), s02 = Vector512.Load(s + 32), s03 = Vector512.Load(s + 48), s04 = Vector512.Load(s + 64);
                Vector512<float> s10 = Vector512.Load(s + 80), s11 = Vector512.Load(s + 96), s12 = Vector512.Load(s + 112), s13 = Vector512.Load(s + 128), s14 = Vector512.Load(s + 144);
                Vector512<float> s20 = Vector512.Load(s + 160), s21 = Vector512.Load(s + 176), s22 = Vector512.Load(s + 192), s23 = Vector512.Load(s + 208), s24 = Vector512.Load(s + 224);
                Vector512<float> s30 = Vector512.Load(s + 240), s31 = Vector512.Load(s + 256), s32 = Vector512.Load(s + 272), s33 = Vector512.Load(s + 288), s34 = Vector512.Load(s + 304);
                float* d = gradients + (long)i * GradientChannels * channelLength + firstRow * rowLength;
                float* image = inputs + (long)i * paddedImage + inputOffset + firstRow * pw;
                for (int oy = firstRow; oy < endRow; oy++, image += pw)
                {
                    float* row = image;
                    for (int ox = 0; ox < rowLength; ox += Lanes, d += Lanes, row += Lanes)
                    {
                        var g0 = Vector512.Load(d);
                        var g1 = Vector512.Load(d + channelLength);
                        var g2 = Vector512.Load(d + 2 * channelLength);
                        var g3 = Vector512.Load(d + 3 * channelLength);
                        var v = Vector512.Load(row);
                        s00 = Avx512F.FusedMultiplyAdd(g0, v, s00); s10 = Avx512F.FusedMultiplyAdd(g1, v, s10); s20 = Avx512F.FusedMultiplyAdd(g2, v, s20); s30 = Avx512F.FusedMultiplyAdd(g3, v, s30);
                        v = Vector512.Load(row + 1);
                        s01 = Avx512F.FusedMultiplyAdd(g0, v, s01); s11 = Avx512F.FusedMultiplyAdd(g1, v, s11); s21 = Avx512F.FusedMultiplyAdd(g2, v, s21); s31 = Avx512F.FusedMultiplyAdd(g3, v, s31);
                        v = Vector512.Load(row + 2);
                        s02 = Avx512F.FusedMultiplyAdd(g0, v, s02); s12 = Avx512F.FusedMultiplyAdd(g1, v, s12); s22 = Avx512F.FusedMultiplyAdd(g2, v, s22); s32 = Avx512F.FusedMultiplyAdd(g3, v, s32);
                        v = Vector512.Load(row + 3);
                        s03 = Avx512F.FusedMultiplyAdd(g0, v, s03); s13 = Avx512F.FusedMultiplyAdd(g1, v, s13); s23 = Avx512F.FusedMultiplyAdd(g2, v, s23); s33 = Avx512F.FusedMultiplyAdd(g3, v, s33);
                        v = Vector512.Load(row + 4);
                        s04 = Avx512F.FusedMultiplyAdd(g0, v, s04); s14 = Avx512F.FusedMultiplyAdd(g1, v, s14); s24 = Avx512F.FusedMultiplyAdd(g2, v, s24); s34 = Avx512F.FusedMultiplyAdd(g3, v, s34);
                    }
                }
                Vector512.Store(s00, s); Vector512.Store(s01, s + 16); Vector512.Store(s02, s + 32); Vector512.Store(s03, s + 48); Vector512.Store(s04, s + 64);
                Vector512.Store(s10, s + 80); Vector512.Store(s11, s + 96); Vector512.Store(s12, s + 112); Vector512.Store(s13, s + 128); Vector512.Store(s14, s + 144);
                Vector512.Store(s20, s + 160); Vector512.Store(s21, s + 176); Vector512.Store(s22, s + 192); Vector512.Store(s23, s + 208); Vector512.Store(s24, s + 224);
                Vector512.Store(s30, s + 240); Vector512.Store(s31, s + 256); Vector512.Store(s32, s + 272); Vector512.Store(s33, s + 288); Vector512.Store(s34, s + 304);
            }
    }
    /// <summary><see cref="AccumulateBlock"/> for 3-tap blocks: 4 channels × 3 taps, 12 sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AccumulateBlock3(float[] sums, long sumsOffset, float[] rows, int channelLength, int rowLength,
        float[] padded, int inputOffset, int paddedImage, int pw, int images, int firstRow, int endRow, bool fresh)
    {
        fixed (float* s = &sums[sumsOffset])
        fixed (float* gradients = rows)
        fixed (float* inputs = padded)
            for (int i = 0; i < images; i++)
            {
                if (fresh && i == 0) new Span<float>(s, GradientChannels * 3 * Lanes).Clear();
                Vector512<float> s00 = Vector512.Load(s), s01 = Vector512.Load(s + 16), s02 = Vector512.Load(s + 32);
                Vector512<float> s10 = Vector512.Load(s + 48), s11 = Vector512.Load(s + 64), s12 = Vector512.Load(s + 80);
                Vector512<float> s20 = Vector512.Load(s + 96), s21 = Vector512.Load(s + 112), s22 = Vector512.Load(s + 128);
                Vector512<float> s30 = Vector512.Load(s + 144), s31 = Vector512.Load(s + 160), s32 = Vector512.Load(s + 176);
                float* d = gradients + (long)i * GradientChannels * channelLength + firstRow * rowLength;
                float* image = inputs + (long)i * paddedImage + inputOffset + firstRow * pw;
                for (int oy = firstRow; oy < endRow; oy++, image += pw)
                {
                    float* row = image;
                    for (int ox = 0; ox < rowLength; ox += Lanes, d += Lanes, row += Lanes)
                    {
                        var g0 = Vector512.Load(d);
                        var g1 = Vector512.Load(d + channelLength);
                        var g2 = Vector512.Load(d + 2 * channelLength);
                        var g3 = Vector512.Load(d + 3 * channelLength);
                        var v = Vector512.Load(row);
                        s00 = Avx512F.FusedMultiplyAdd(g0, v, s00); s10 = Avx512F.FusedMultiplyAdd(g1, v, s10); s20 = Avx512F.FusedMultiplyAdd(g2, v, s20); s30 = Avx512F.FusedMultiplyAdd(g3, v, s30);
                        v = Vector512.Load(row + 1);
                        s01 = Avx512F.FusedMultiplyAdd(g0, v, s01); s11 = Avx512F.FusedMultiplyAdd(g1, v, s11); s21 = Avx512F.FusedMultiplyAdd(g2, v, s21); s31 = Avx512F.FusedMultiplyAdd(g3, v, s31);
                        v = Vector512.Load(row + 2);
                        s02 = Avx512F.FusedMultiplyAdd(g0, v, s02); s12 = Avx512F.FusedMultiplyAdd(g1, v, s12); s22 = Avx512F.FusedMultiplyAdd(g2, v, s22); s32 = Avx512F.FusedMultiplyAdd(g3, v, s32);
                    }
                }
                Vector512.Store(s00, s); Vector512.Store(s01, s + 16); Vector512.Store(s02, s + 32);
                Vector512.Store(s10, s + 48); Vector512.Store(s11, s + 64); Vector512.Store(s12, s + 80);
                Vector512.Store(s20, s + 96); Vector512.Store(s21, s + 112); Vector512.Store(s22, s + 128);
                Vector512.Store(s30, s + 144); Vector512.Store(s31, s + 160); Vector512.Store(s32, s + 176);
            }
    }
}
