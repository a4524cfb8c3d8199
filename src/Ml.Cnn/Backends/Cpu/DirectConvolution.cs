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
/// the same operation on the output gradient with the kernel flipped and its channel axes swapped. The weight gradient
/// also keeps sixteen output channels in lanes, with one register per kernel tap.
/// </summary>
// Every stack buffer here is written before it is read: zeroing them cost a store per vector on each tile.
[SkipLocalsInit]
internal static unsafe class DirectConvolution
{
    private const int Lanes = 16;
    // Seven output pixels of a row per block: 28-, 14- and 7-wide maps split into whole blocks.
    private const int BlockPixels = 7;
    // Below this many multiply-adds per output, forward keeps pixels in the lanes instead (see ForwardPixelBlock).
    private const int ShortReduction = 64;

    /// <summary>Whether the direct forward kernel runs this geometry on this processor.</summary>
    public static bool Applies(in ConvGeometry g) => Sgemm.UseWideKernel && Fits(g);

    /// <summary>
    /// Whether the direct forward kernel is written for this geometry (and runs faster there than im2col + GEMM),
    /// whatever the processor: the selection rule that tests check where the kernel cannot run.
    /// </summary>
    public static bool Fits(in ConvGeometry g) =>
        g.StrideH == 1 && g.StrideW == 1 && g.DilationH == 1 && g.DilationW == 1
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
        int blocks = (g.GroupOutChannels + Lanes - 1) / Lanes, images = g.Batch * g.Groups;
        bool pixelLanes = g.GroupInChannels * g.KernelH * g.KernelW < ShortReduction && g.OutW >= Lanes / 2;
        // A task pads one image (one group of it) once and runs its output-channel blocks; the blocks are split over
        // tasks only where the images alone would leave threads idle (an image scored on its own).
        int splits = Math.Clamp(threads / images, 1, blocks);
        CpuWork.For(images * splits, threads, task =>
        {
            int image = task / splits, split = task % splits, n = image / geometry.Groups, group = image % geometry.Groups;
            var padded = Pad(geometry, x, n, group, out int pw, out int ph);
            for (int block = blocks * split / splits; block < blocks * (split + 1) / splits; block++)
                if (pixelLanes) ForwardPixelBlock(geometry, padded, pw, ph, packed, bias, y, n, group, block, blocks);
                else ForwardBlock(geometry, padded, pw, ph, packed, bias, y, n, group, block, blocks);
        });
    }

    /// <summary>[group][block of 16 output channels][input channel][ky][kx][16], channels beyond the group's zero.</summary>
    internal static float[] PackWeights(in ConvGeometry g, ReadOnlySpan<float> w)
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
    private static void ForwardBlock(in ConvGeometry g, float[] padded, int pw, int ph, float[] packed, float[]? bias, float[] y,
        int n, int group, int block, int blocks)
    {
        int gic = g.GroupInChannels, goc = g.GroupOutChannels, kh = g.KernelH, kw = g.KernelW, oh = g.OutH, ow = g.OutW;
        int channels = Math.Min(Lanes, goc - block * Lanes), firstChannel = group * goc + block * Lanes;
        int plane = ph * pw, channelWeights = kh * kw * Lanes;
        long outputPlane = (long)oh * ow;
        float* results = stackalloc float[BlockPixels * Lanes];
        var biases = ChannelsLast.Block(bias, firstChannel, channels);
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
                    Vector512.Store(a0 + biases, results); Vector512.Store(a1 + biases, results + 16); Vector512.Store(a2 + biases, results + 32);
                    Vector512.Store(a3 + biases, results + 48); Vector512.Store(a4 + biases, results + 64); Vector512.Store(a5 + biases, results + 80);
                    Vector512.Store(a6 + biases, results + 96);
                    // Seven pixels of sixteen channels become a row segment of each channel.
                    ChannelsLast.Transpose16(results, Lanes, BlockPixels, ChannelsLast.PrefixMask(Lanes),
                        output + (((long)n * g.OutChannels + firstChannel) * oh + oy) * ow + ox, outputPlane, channels,
                        ChannelsLast.PrefixMask(Math.Min(BlockPixels, ow - ox)));
                }
            }
    }

    /// <summary>
    /// Sixteen output pixels of a row in the lanes and an accumulator per output channel: for short reductions (a
    /// first layer's one or three input channels) the channel-lane kernel's scalar transposing store would cost as much
    /// as its arithmetic, while here every result leaves as a whole vector.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ForwardPixelBlock(in ConvGeometry g, float[] padded, int pw, int ph, float[] packed, float[]? bias, float[] y,
        int n, int group, int block, int blocks)
    {
        int gic = g.GroupInChannels, goc = g.GroupOutChannels, kh = g.KernelH, kw = g.KernelW, oh = g.OutH, ow = g.OutW;
        int channels = Math.Min(Lanes, goc - block * Lanes), firstChannel = group * goc + block * Lanes;
        long plane = (long)oh * ow;
        float* biases = stackalloc float[Lanes];
        Vector512.Store(ChannelsLast.Block(bias, firstChannel, channels), biases);
        fixed (float* input = padded)
        fixed (float* weights = &packed[(group * blocks + block) * gic * kh * kw * Lanes])
        fixed (float* output = y)
            for (int oy = 0; oy < oh; oy++)
            {
                // As in ForwardBlock: kernel rows on the padding above or below the image are skipped.
                int firstRow = Math.Max(0, g.PadH - oy), endRow = Math.Min(kh, g.InH + g.PadH - oy);
                for (int ox = 0; ox < ow; ox += Lanes)
                {
                    Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
                    Vector512<float> a8 = default, a9 = default, aA = default, aB = default, aC = default, aD = default, aE = default, aF = default;
                    for (int c = 0; c < gic; c++)
                        for (int ky = firstRow; ky < endRow; ky++)
                        {
                            float* row = input + (c * ph + oy + ky) * pw + ox;
                            float* w = weights + (c * kh + ky) * kw * Lanes;
                            for (int kx = 0; kx < kw; kx++, w += Lanes)
                            {
                                var v = Vector512.Load(row + kx);
                                a0 = Avx512F.FusedMultiplyAdd(Vector512.Create(w[0]), v, a0);
                                a1 = Avx512F.FusedMultiplyAdd(Vector512.Create(w[1]), v, a1);
                                a2 = Avx512F.FusedMultiplyAdd(Vector512.Create(w[2]), v, a2);
                                a3 = Avx512F.FusedMultiplyAdd(Vector512.Create(w[3]), v, a3);
                                a4 = Avx512F.FusedMultiplyAdd(Vector512.Create(w[4]), v, a4);
                                a5 = Avx512F.FusedMultiplyAdd(Vector512.Create(w[5]), v, a5);
                                a6 = Avx512F.FusedMultiplyAdd(Vector512.Create(w[6]), v, a6);
                                a7 = Avx512F.FusedMultiplyAdd(Vector512.Create(w[7]), v, a7);
                                a8 = Avx512F.FusedMultiplyAdd(Vector512.Create(w[8]), v, a8);
                                a9 = Avx512F.FusedMultiplyAdd(Vector512.Create(w[9]), v, a9);
                                aA = Avx512F.FusedMultiplyAdd(Vector512.Create(w[10]), v, aA);
                                aB = Avx512F.FusedMultiplyAdd(Vector512.Create(w[11]), v, aB);
                                aC = Avx512F.FusedMultiplyAdd(Vector512.Create(w[12]), v, aC);
                                aD = Avx512F.FusedMultiplyAdd(Vector512.Create(w[13]), v, aD);
                                aE = Avx512F.FusedMultiplyAdd(Vector512.Create(w[14]), v, aE);
                                aF = Avx512F.FusedMultiplyAdd(Vector512.Create(w[15]), v, aF);
                            }
                        }
                    // Straight from the accumulators: a round trip through a staging buffer cost a fifth of the time here.
                    var mask = ChannelsLast.PrefixMask(Math.Min(Lanes, ow - ox));
                    float* target = output + (((long)n * g.OutChannels + firstChannel) * oh + oy) * ow + ox;
                    Avx512F.MaskStore(target, mask, a0 + Vector512.Create(biases[0]));
                    if (channels > 1) Avx512F.MaskStore(target + plane, mask, a1 + Vector512.Create(biases[1]));
                    if (channels > 2) Avx512F.MaskStore(target + 2 * plane, mask, a2 + Vector512.Create(biases[2]));
                    if (channels > 3) Avx512F.MaskStore(target + 3 * plane, mask, a3 + Vector512.Create(biases[3]));
                    if (channels > 4) Avx512F.MaskStore(target + 4 * plane, mask, a4 + Vector512.Create(biases[4]));
                    if (channels > 5) Avx512F.MaskStore(target + 5 * plane, mask, a5 + Vector512.Create(biases[5]));
                    if (channels > 6) Avx512F.MaskStore(target + 6 * plane, mask, a6 + Vector512.Create(biases[6]));
                    if (channels > 7) Avx512F.MaskStore(target + 7 * plane, mask, a7 + Vector512.Create(biases[7]));
                    if (channels > 8) Avx512F.MaskStore(target + 8 * plane, mask, a8 + Vector512.Create(biases[8]));
                    if (channels > 9) Avx512F.MaskStore(target + 9 * plane, mask, a9 + Vector512.Create(biases[9]));
                    if (channels > 10) Avx512F.MaskStore(target + 10 * plane, mask, aA + Vector512.Create(biases[10]));
                    if (channels > 11) Avx512F.MaskStore(target + 11 * plane, mask, aB + Vector512.Create(biases[11]));
                    if (channels > 12) Avx512F.MaskStore(target + 12 * plane, mask, aC + Vector512.Create(biases[12]));
                    if (channels > 13) Avx512F.MaskStore(target + 13 * plane, mask, aD + Vector512.Create(biases[13]));
                    if (channels > 14) Avx512F.MaskStore(target + 14 * plane, mask, aE + Vector512.Create(biases[14]));
                    if (channels > 15) Avx512F.MaskStore(target + 15 * plane, mask, aF + Vector512.Create(biases[15]));
                }
            }
    }

    // ---- weight gradient ----

    // Images per task of the fixed-order sum (CpuWork.SumOverImages).
    private const int ImagesPerTask = 4;

    /// <summary>Whether <see cref="WeightGradient"/> handles this geometry: square 3×3 and 5×5 kernels.</summary>
    public static bool AppliesToWeightGradient(in ConvGeometry g) => Sgemm.UseWideKernel && FitsWeightGradient(g);

    /// <summary>Whether the direct weight-gradient kernel is written for this geometry, whatever the processor.</summary>
    public static bool FitsWeightGradient(in ConvGeometry g) => Fits(g) && g.KernelH == g.KernelW && g.KernelW is 3 or 5;

    /// <summary>
    /// dw[oc, c, ky, kx] = Σ over images and output pixels of dy[n, oc, pixel] · x[n, c, pixel + (ky, kx) − padding].
    /// Sixteen output channels share a register's lanes and every tap of the kernel (9 or 25) has its own, so one
    /// load of the output gradient at a pixel feeds one FMA per tap, each with one input value broadcast. A task
    /// takes a fixed group of 4 images: it zero-pads each, transposes its output gradient to [block][pixel][16
    /// channels], and adds the image to its sums for every (output block, input channel), held in registers over
    /// the image, and to the bias sums when <paramref name="db"/> is given; the tasks' sums are then added in order.
    /// </summary>
    public static void WeightGradient(in ConvGeometry g, float[] x, float[] dy, float[] dw, float[]? db, int threads)
    {
        var geometry = g;
        int gic = g.GroupInChannels, goc = g.GroupOutChannels, taps = g.KernelH * g.KernelW;
        int blocks = (goc + Lanes - 1) / Lanes, allBlocks = g.Groups * blocks, weightSums = allBlocks * gic * taps * Lanes;
        bool withBias = db is not null;
        var sums = CpuWork.SumOverImages(g.Batch, ImagesPerTask, weightSums + (withBias ? allBlocks * Lanes : 0), threads, ref t_sums,
            (n, partial, offset) => AccumulateImage(geometry, x, dy, n, partial, offset, withBias));
        for (int block = 0; block < allBlocks; block++)
            for (int c = 0; c < gic; c++)
            {
                int group = block / blocks, channels = Math.Min(Lanes, goc - block % blocks * Lanes);
                for (int lane = 0; lane < channels; lane++)
                {
                    int oc = group * goc + block % blocks * Lanes + lane;
                    for (int t = 0; t < taps; t++) dw[(oc * gic + c) * taps + t] = sums[((long)(block * gic + c) * taps + t) * Lanes + lane];
                    if (c == 0 && db is not null) db[oc] = sums[weightSums + block * Lanes + lane];
                }
            }
    }

    /// <summary>
    /// Image n's share of every (output block, input channel) pair's tap sums, [block][channel][tap][16] from
    /// <paramref name="offset"/>, then of the bias sums [block][16] (the transposed gradient summed over its pixels).
    /// </summary>
    private static void AccumulateImage(in ConvGeometry g, float[] x, float[] dy, int n, float[] partial, int offset, bool withBias)
    {
        int gic = g.GroupInChannels, taps = g.KernelH * g.KernelW, pixels = g.OutH * g.OutW;
        int blocks = (g.GroupOutChannels + Lanes - 1) / Lanes, allBlocks = g.Groups * blocks;
        var transposed = CpuWork.Scratch(ref t_transposedGradient, (long)allBlocks * pixels * Lanes);
        fixed (float* gradients = transposed)
        fixed (float* sums = &partial[offset])
        {
            TransposeGradient(g, dy, n, gradients);
            if (withBias)
                for (int block = 0; block < allBlocks; block++)
                    ChannelsLast.AddPixels(sums + ((long)allBlocks * gic * taps + block) * Lanes, gradients + (long)block * pixels * Lanes, pixels, Lanes);
            for (int group = 0; group < g.Groups; group++)
                fixed (float* image = Pad(g, x, n, group, out int pw, out int ph))
                    for (int block = group * blocks; block < (group + 1) * blocks; block++)
                        for (int c = 0; c < gic; c++)
                        {
                            float* channel = image + (long)c * ph * pw, gradient = gradients + (long)block * pixels * Lanes;
                            float* target = sums + (long)(block * gic + c) * taps * Lanes;
                            if (g.KernelW == 3) Accumulate3x3(target, gradient, channel, pw, g.OutH, g.OutW);
                            else Accumulate5x5(target, gradient, channel, pw, g.OutH, g.OutW);
                        }
        }
    }

    /// <summary>Image n's output gradient as [group·block][pixel][16 channels], lanes past a group's channels zero.</summary>
    private static void TransposeGradient(in ConvGeometry g, float[] dy, int n, float* target)
    {
        int goc = g.GroupOutChannels, blocks = (goc + Lanes - 1) / Lanes, pixels = g.OutH * g.OutW;
        fixed (float* source = &dy[n * g.OutChannels * pixels])
            for (int group = 0; group < g.Groups; group++)
                for (int block = 0; block < blocks; block++)
                    // A plane's pixels are one run in both layouts: copied as a single row.
                    ChannelsLast.Copy(source + (long)(group * goc + block * Lanes) * pixels, pixels, Math.Min(Lanes, goc - block * Lanes),
                        1, pixels, target + (long)(group * blocks + block) * pixels * Lanes, 0, Lanes);
    }

    [ThreadStatic] private static float[]? t_padded, t_sums, t_transposedGradient, t_flippedWeights, t_packedWeights;

    /// <summary>One image's contribution to the 9 tap sums of a 3×3 kernel: a loop of loads and FMAs only, so they stay in registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Accumulate3x3(float* s, float* gradient, float* image, int pw, int oh, int ow)
    {
        Vector512<float> s00 = Vector512.Load(s), s01 = Vector512.Load(s + 16), s02 = Vector512.Load(s + 32);
        Vector512<float> s10 = Vector512.Load(s + 48), s11 = Vector512.Load(s + 64), s12 = Vector512.Load(s + 80);
        Vector512<float> s20 = Vector512.Load(s + 96), s21 = Vector512.Load(s + 112), s22 = Vector512.Load(s + 128);
        for (int oy = 0; oy < oh; oy++)
        {
            float* r0 = image + oy * pw, r1 = r0 + pw, r2 = r1 + pw;
            for (int ox = 0; ox < ow; ox++, gradient += Lanes, r0++, r1++, r2++)
            {
                var d = Vector512.Load(gradient);
                s00 = Avx512F.FusedMultiplyAdd(Vector512.Create(r0[0]), d, s00);
                s01 = Avx512F.FusedMultiplyAdd(Vector512.Create(r0[1]), d, s01);
                s02 = Avx512F.FusedMultiplyAdd(Vector512.Create(r0[2]), d, s02);
                s10 = Avx512F.FusedMultiplyAdd(Vector512.Create(r1[0]), d, s10);
                s11 = Avx512F.FusedMultiplyAdd(Vector512.Create(r1[1]), d, s11);
                s12 = Avx512F.FusedMultiplyAdd(Vector512.Create(r1[2]), d, s12);
                s20 = Avx512F.FusedMultiplyAdd(Vector512.Create(r2[0]), d, s20);
                s21 = Avx512F.FusedMultiplyAdd(Vector512.Create(r2[1]), d, s21);
                s22 = Avx512F.FusedMultiplyAdd(Vector512.Create(r2[2]), d, s22);
            }
        }
        Vector512.Store(s00, s); Vector512.Store(s01, s + 16); Vector512.Store(s02, s + 32);
        Vector512.Store(s10, s + 48); Vector512.Store(s11, s + 64); Vector512.Store(s12, s + 80);
        Vector512.Store(s20, s + 96); Vector512.Store(s21, s + 112); Vector512.Store(s22, s + 128);
    }

    /// <summary>One image's contribution to the 25 tap sums of a 5×5 kernel (25 accumulators and the gradient: 26 of 32 registers).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Accumulate5x5(float* s, float* gradient, float* image, int pw, int oh, int ow)
    {
        Vector512<float> s00 = Vector512.Load(s), s01 = Vector512.Load(s + 16), s02 = Vector512.Load(s + 32), s03 = Vector512.Load(s + 48), s04 = Vector512.Load(s + 64);
        Vector512<float> s10 = Vector512.Load(s + 80), s11 = Vector512.Load(s + 96), s12 = Vector512.Load(s + 112), s13 = Vector512.Load(s + 128), s14 = Vector512.Load(s + 144);
        Vector512<float> s20 = Vector512.Load(s + 160), s21 = Vector512.Load(s + 176), s22 = Vector512.Load(s + 192), s23 = Vector512.Load(s + 208), s24 = Vector512.Load(s + 224);
        Vector512<float> s30 = Vector512.Load(s + 240), s31 = Vector512.Load(s + 256), s32 = Vector512.Load(s + 272), s33 = Vector512.Load(s + 288), s34 = Vector512.Load(s + 304);
        Vector512<float> s40 = Vector512.Load(s + 320), s41 = Vector512.Load(s + 336), s42 = Vector512.Load(s + 352), s43 = Vector512.Load(s + 368), s44 = Vector512.Load(s + 384);
        for (int oy = 0; oy < oh; oy++)
        {
            float* r0 = image + oy * pw, r1 = r0 + pw, r2 = r1 + pw, r3 = r2 + pw, r4 = r3 + pw;
            for (int ox = 0; ox < ow; ox++, gradient += Lanes, r0++, r1++, r2++, r3++, r4++)
            {
                var d = Vector512.Load(gradient);
                s00 = Avx512F.FusedMultiplyAdd(Vector512.Create(r0[0]), d, s00); s01 = Avx512F.FusedMultiplyAdd(Vector512.Create(r0[1]), d, s01);
                s02 = Avx512F.FusedMultiplyAdd(Vector512.Create(r0[2]), d, s02); s03 = Avx512F.FusedMultiplyAdd(Vector512.Create(r0[3]), d, s03);
                s04 = Avx512F.FusedMultiplyAdd(Vector512.Create(r0[4]), d, s04);
                s10 = Avx512F.FusedMultiplyAdd(Vector512.Create(r1[0]), d, s10); s11 = Avx512F.FusedMultiplyAdd(Vector512.Create(r1[1]), d, s11);
                s12 = Avx512F.FusedMultiplyAdd(Vector512.Create(r1[2]), d, s12); s13 = Avx512F.FusedMultiplyAdd(Vector512.Create(r1[3]), d, s13);
                s14 = Avx512F.FusedMultiplyAdd(Vector512.Create(r1[4]), d, s14);
                s20 = Avx512F.FusedMultiplyAdd(Vector512.Create(r2[0]), d, s20); s21 = Avx512F.FusedMultiplyAdd(Vector512.Create(r2[1]), d, s21);
                s22 = Avx512F.FusedMultiplyAdd(Vector512.Create(r2[2]), d, s22); s23 = Avx512F.FusedMultiplyAdd(Vector512.Create(r2[3]), d, s23);
                s24 = Avx512F.FusedMultiplyAdd(Vector512.Create(r2[4]), d, s24);
                s30 = Avx512F.FusedMultiplyAdd(Vector512.Create(r3[0]), d, s30); s31 = Avx512F.FusedMultiplyAdd(Vector512.Create(r3[1]), d, s31);
                s32 = Avx512F.FusedMultiplyAdd(Vector512.Create(r3[2]), d, s32); s33 = Avx512F.FusedMultiplyAdd(Vector512.Create(r3[3]), d, s33);
                s34 = Avx512F.FusedMultiplyAdd(Vector512.Create(r3[4]), d, s34);
                s40 = Avx512F.FusedMultiplyAdd(Vector512.Create(r4[0]), d, s40); s41 = Avx512F.FusedMultiplyAdd(Vector512.Create(r4[1]), d, s41);
                s42 = Avx512F.FusedMultiplyAdd(Vector512.Create(r4[2]), d, s42); s43 = Avx512F.FusedMultiplyAdd(Vector512.Create(r4[3]), d, s43);
                s44 = Avx512F.FusedMultiplyAdd(Vector512.Create(r4[4]), d, s44);
            }
        }
        Vector512.Store(s00, s); Vector512.Store(s01, s + 16); Vector512.Store(s02, s + 32); Vector512.Store(s03, s + 48); Vector512.Store(s04, s + 64);
        Vector512.Store(s10, s + 80); Vector512.Store(s11, s + 96); Vector512.Store(s12, s + 112); Vector512.Store(s13, s + 128); Vector512.Store(s14, s + 144);
        Vector512.Store(s20, s + 160); Vector512.Store(s21, s + 176); Vector512.Store(s22, s + 192); Vector512.Store(s23, s + 208); Vector512.Store(s24, s + 224);
        Vector512.Store(s30, s + 240); Vector512.Store(s31, s + 256); Vector512.Store(s32, s + 272); Vector512.Store(s33, s + 288); Vector512.Store(s34, s + 304);
        Vector512.Store(s40, s + 320); Vector512.Store(s41, s + 336); Vector512.Store(s42, s + 352); Vector512.Store(s43, s + 368); Vector512.Store(s44, s + 384);
    }
}
