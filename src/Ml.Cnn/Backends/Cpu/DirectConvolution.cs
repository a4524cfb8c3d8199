using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Ml.Cnn.Backends.Cpu;

/// <summary>
/// Direct convolution for stride 1 without dilation, written once for every vector width (<see cref="ISimd{V}"/>:
/// 512-bit on AVX-512, 256-bit on AVX2, 128-bit on SSE and Arm64). Forward keeps one vector of output channels in
/// the lanes of a register and seven output pixels of a row in seven such accumulators: every weight vector loaded
/// feeds seven FMAs, each with one input value broadcast, so no lane is spent on pixels past the row's end (a 14-wide
/// map fills two blocks exactly) and kernel rows that fall on the padding above or below the image are skipped. No
/// im2col matrix is written, read back and packed (at small channel counts those memory passes cost more than the
/// arithmetic). Each image is first copied into a zero-padded buffer, so every load is in bounds. Backward-data is
/// the same operation on the output gradient with the kernel flipped and its channel axes swapped. The weight gradient
/// also keeps a vector of output channels in lanes, with one register per kernel tap. Each lane sums in the same
/// order at every width, so the widths differ only where one fuses multiply-adds and another cannot.
/// </summary>
// Every stack buffer here is written before it is read: zeroing them cost a store per vector on each tile.
[SkipLocalsInit]
internal static unsafe class DirectConvolution
{
    // Seven output pixels of a row per block: 28-, 14- and 7-wide maps split into whole blocks.
    private const int BlockPixels = 7;
    // Below this many multiply-adds per output, forward keeps pixels in the lanes instead (see ForwardPixelBlock).
    private const int ShortReduction = 64;
    // The geometries the kernels are written for have at least this many output channels per group.
    private const int MinOutChannels = 16;

    /// <summary>The vector width the kernels run at here: the widest the JIT accelerates (0: none, im2col runs).</summary>
    public static int Bits => W512.IsSupported ? 512 : W256.IsSupported ? 256 : W128.IsSupported ? 128 : 0;

    /// <summary>Whether the direct forward kernel runs this geometry on this processor.</summary>
    public static bool Applies(in ConvGeometry g) => Bits > 0 && Fits(g);

    /// <summary>
    /// Whether the direct forward kernel is written for this geometry (and runs faster there than im2col + GEMM),
    /// whatever the processor: the selection rule that tests check where the kernel cannot run.
    /// </summary>
    public static bool Fits(in ConvGeometry g) =>
        g.StrideH == 1 && g.StrideW == 1 && g.DilationH == 1 && g.DilationW == 1
        && g.GroupOutChannels >= MinOutChannels && g.OutW >= 5 && !PointwiseByGemm(g);

    /// <summary>
    /// A 1×1 convolution on small planes with many output channels is one product of the weights and the batch's
    /// pixels side by side, which the packed GEMM runs at two to three times this kernel's speed (a vision
    /// transformer's projections on 17 to 197 tokens, MobileNet's pointwise layers on 8×8 maps; measured with
    /// `networks profile`); on large planes, or with few output channels, this kernel is as fast or faster.
    /// </summary>
    public static bool PointwiseByGemm(in ConvGeometry g) =>
        g.KernelH == 1 && g.KernelW == 1 && g.PadH == 0 && g.PadW == 0 && g.GroupOutChannels >= 32 && g.OutH * g.OutW <= 256;

    /// <summary>
    /// The geometry of backward-data as a forward convolution: output gradient in, input gradient out, padding
    /// k − 1 − p. Only a stride-1, undilated convolution's data gradient is such a convolution (a strided one would
    /// need zeros between the gradient's pixels); null for the others and where that padding would be negative.
    /// </summary>
    public static ConvGeometry? DataGradientGeometry(in ConvGeometry g)
    {
        if (g.StrideH != 1 || g.StrideW != 1 || g.DilationH != 1 || g.DilationW != 1) return null;
        if (g.PadH > g.KernelH - 1 || g.PadW > g.KernelW - 1) return null;
        return new ConvGeometry(g.Batch, g.OutChannels, g.OutH, g.OutW, g.InChannels, g.KernelH, g.KernelW, 1, 1,
            g.KernelH - 1 - g.PadH, g.KernelW - 1 - g.PadW, 1, 1, g.Groups);
    }

    /// <summary>
    /// Weights [Cout, Cin/groups, kH, kW] as backward-data's forward weights: flipped, channel axes swapped per group,
    /// a task per group's input channel (each writes its own rows).
    /// </summary>
    public static float[] DataGradientWeights(in ConvGeometry g, float[] w, int threads)
    {
        int gic = g.GroupInChannels, goc = g.GroupOutChannels, kh = g.KernelH, kw = g.KernelW;
        var flipped = CpuWork.Scratch(ref t_flippedWeights, (long)g.OutChannels * gic * kh * kw);
        CpuWork.For(g.Groups * gic, threads, row =>
        {
            int group = row / gic, c = row % gic;
            for (int oc = 0; oc < goc; oc++)
                for (int ky = 0; ky < kh; ky++)
                    for (int kx = 0; kx < kw; kx++)
                        flipped[((row * goc + oc) * kh + ky) * kw + kx] =
                            w[(((group * goc + oc) * gic + c) * kh + (kh - 1 - ky)) * kw + (kw - 1 - kx)];
        });
        return flipped;
    }

    /// <summary>
    /// y = conv(x, w) + b for geometries where <see cref="Fits"/> holds, with vectors of <paramref name="bits"/>
    /// (default: <see cref="Bits"/>; tests run every width the processor has).
    /// </summary>
    public static void Forward(in ConvGeometry g, float[] x, ReadOnlySpan<float> w, float[]? bias, float[] y, int threads, int bits = 0)
    {
        switch (bits == 0 ? Bits : bits)
        {
            case 512: Forward<Vector512<float>, W512>(g, x, w, bias, y, threads); break;
            case 256: Forward<Vector256<float>, W256>(g, x, w, bias, y, threads); break;
            case 128: Forward<Vector128<float>, W128>(g, x, w, bias, y, threads); break;
            default: throw new PlatformNotSupportedException($"No {bits}-bit vectors here: {CpuIsa.Describe()}.");
        }
    }

    private static void Forward<V, S>(in ConvGeometry g, float[] x, ReadOnlySpan<float> w, float[]? bias, float[] y, int threads)
        where V : struct where S : struct, ISimd<V>
    {
        var geometry = g;
        var packed = PackWeights(g, w, S.Lanes);
        int blocks = (g.GroupOutChannels + S.Lanes - 1) / S.Lanes, images = g.Batch * g.Groups;
        bool pixelLanes = g.GroupInChannels * g.KernelH * g.KernelW < ShortReduction && g.OutW >= S.Lanes / 2;
        // A task pads one image (one group of it) once and runs its output-channel blocks; the blocks are split over
        // tasks only where the images alone would leave threads idle (an image scored on its own).
        int splits = Math.Clamp(threads / images, 1, blocks);
        CpuWork.For(images * splits, threads, task =>
        {
            int image = task / splits, split = task % splits, n = image / geometry.Groups, group = image % geometry.Groups;
            var padded = Pad(geometry, x, n, group, S.Lanes, out int pw, out int ph);
            for (int block = blocks * split / splits; block < blocks * (split + 1) / splits; block++)
                if (pixelLanes) ForwardPixelBlock<V, S>(geometry, padded, pw, ph, packed, bias, y, n, group, block, blocks);
                else ForwardBlock<V, S>(geometry, padded, pw, ph, packed, bias, y, n, group, block, blocks);
        });
    }

    /// <summary>[group][block of <paramref name="lanes"/> output channels][input channel][ky][kx][lanes], channels beyond the group's zero.</summary>
    internal static float[] PackWeights(in ConvGeometry g, ReadOnlySpan<float> w, int lanes)
    {
        int gic = g.GroupInChannels, goc = g.GroupOutChannels, taps = g.KernelH * g.KernelW, blocks = (goc + lanes - 1) / lanes;
        var packed = CpuWork.Scratch(ref t_packedWeights, g.Groups * blocks * gic * taps * lanes);
        packed.AsSpan(0, g.Groups * blocks * gic * taps * lanes).Clear();
        for (int group = 0; group < g.Groups; group++)
            for (int oc = 0; oc < goc; oc++)
            {
                int block = oc / lanes, lane = oc % lanes;
                for (int c = 0; c < gic; c++)
                    for (int t = 0; t < taps; t++)
                        packed[((((group * blocks + block) * gic + c) * taps) + t) * lanes + lane] = w[((group * goc + oc) * gic + c) * taps + t];
            }
        return packed;
    }

    /// <summary>One group of image n's channels, zero-padded, with two vectors of slack after the last row.</summary>
    private static float[] Pad(in ConvGeometry g, float[] x, int n, int group, int lanes, out int paddedW, out int paddedH)
    {
        paddedW = g.InW + 2 * g.PadW;
        paddedH = g.InH + 2 * g.PadH;
        int gic = g.GroupInChannels, plane = paddedW * paddedH, length = gic * plane + 2 * lanes + g.KernelW;
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
    private static void ForwardBlock<V, S>(in ConvGeometry g, float[] padded, int pw, int ph, float[] packed, float[]? bias, float[] y,
        int n, int group, int block, int blocks) where V : struct where S : struct, ISimd<V>
    {
        int lanes = S.Lanes, gic = g.GroupInChannels, goc = g.GroupOutChannels, kh = g.KernelH, kw = g.KernelW, oh = g.OutH, ow = g.OutW;
        int channels = Math.Min(lanes, goc - block * lanes), firstChannel = group * goc + block * lanes;
        int plane = ph * pw, channelWeights = kh * kw * lanes;
        long outputPlane = (long)oh * ow;
        float* results = stackalloc float[BlockPixels * 16];
        var biases = ChannelsLast.Block<V, S>(bias, firstChannel, channels);
        fixed (float* input = padded)
        fixed (float* weights = &packed[(group * blocks + block) * gic * channelWeights])
        fixed (float* output = y)
            for (int oy = 0; oy < oh; oy++)
            {
                // Kernel rows that fall on the zero padding above or below the image add nothing: skip them.
                int firstRow = Math.Max(0, g.PadH - oy), endRow = Math.Min(kh, g.InH + g.PadH - oy);
                for (int ox = 0; ox < ow; ox += BlockPixels)
                {
                    V a0 = S.Zero, a1 = S.Zero, a2 = S.Zero, a3 = S.Zero, a4 = S.Zero, a5 = S.Zero, a6 = S.Zero;
                    for (int c = 0; c < gic; c++)
                        for (int ky = firstRow; ky < endRow; ky++)
                        {
                            float* row = input + c * plane + (oy + ky) * pw + ox;
                            float* w = weights + c * channelWeights + ky * kw * lanes;
                            for (int kx = 0; kx < kw; kx++, w += lanes, row++)
                            {
                                var wv = S.Load(w);
                                a0 = S.MulAdd(S.Broadcast(row[0]), wv, a0);
                                a1 = S.MulAdd(S.Broadcast(row[1]), wv, a1);
                                a2 = S.MulAdd(S.Broadcast(row[2]), wv, a2);
                                a3 = S.MulAdd(S.Broadcast(row[3]), wv, a3);
                                a4 = S.MulAdd(S.Broadcast(row[4]), wv, a4);
                                a5 = S.MulAdd(S.Broadcast(row[5]), wv, a5);
                                a6 = S.MulAdd(S.Broadcast(row[6]), wv, a6);
                            }
                        }
                    S.Store(results, S.Add(a0, biases)); S.Store(results + lanes, S.Add(a1, biases));
                    S.Store(results + 2 * lanes, S.Add(a2, biases)); S.Store(results + 3 * lanes, S.Add(a3, biases));
                    S.Store(results + 4 * lanes, S.Add(a4, biases)); S.Store(results + 5 * lanes, S.Add(a5, biases));
                    S.Store(results + 6 * lanes, S.Add(a6, biases));
                    // Seven pixels of a vector of channels become a row segment of each channel.
                    ChannelsLast.ToPlanes<V, S>(results, Math.Min(BlockPixels, ow - ox),
                        output + (((long)n * g.OutChannels + firstChannel) * oh + oy) * ow + ox, outputPlane, channels);
                }
            }
    }

    /// <summary>
    /// Two vectors of output pixels of a row in the lanes and an accumulator per output channel, four channels at a
    /// time (eight with 32 registers): for short reductions (a first layer's one or three input channels) the
    /// channel-lane kernel's transposing store would cost as much as its arithmetic, while here every result leaves
    /// as a whole vector.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ForwardPixelBlock<V, S>(in ConvGeometry g, float[] padded, int pw, int ph, float[] packed, float[]? bias, float[] y,
        int n, int group, int block, int blocks) where V : struct where S : struct, ISimd<V>
    {
        int lanes = S.Lanes, gic = g.GroupInChannels, goc = g.GroupOutChannels, kh = g.KernelH, kw = g.KernelW, oh = g.OutH, ow = g.OutW;
        int channels = Math.Min(lanes, goc - block * lanes), firstChannel = group * goc + block * lanes;
        bool eight = S.Registers >= 32 && lanes >= 8;
        var tile = new PixelTile(kh, kw, pw, ph, gic, lanes, (long)oh * ow, bias);
        fixed (float* input = padded)
        fixed (float* weights = &packed[(group * blocks + block) * gic * kh * kw * lanes])
        fixed (float* output = y)
            for (int oy = 0; oy < oh; oy++)
            {
                // As in ForwardBlock: kernel rows on the padding above or below the image are skipped.
                int firstRow = Math.Max(0, g.PadH - oy), endRow = Math.Min(kh, g.InH + g.PadH - oy);
                for (int ox = 0; ox < ow; ox += 2 * lanes)
                {
                    float* rows = input + oy * pw + ox;
                    float* target = output + (((long)n * g.OutChannels + firstChannel) * oh + oy) * ow + ox;
                    int pixels = Math.Min(lanes, ow - ox), more = Math.Min(lanes, ow - ox - lanes);
                    for (int first = 0; first < channels; first += eight ? 8 : 4)
                        if (eight) PixelTile8<V, S>(tile, rows, weights + first, firstRow, endRow, target + first * tile.Plane,
                            firstChannel + first, Math.Min(8, channels - first), pixels, more);
                        else PixelTile4<V, S>(tile, rows, weights + first, firstRow, endRow, target + first * tile.Plane,
                            firstChannel + first, Math.Min(4, channels - first), pixels, more);
                }
            }
    }

    /// <summary>What the pixel tiles share: the kernel and padded-image sizes, the output plane, the biases.</summary>
    private readonly record struct PixelTile(int KernelH, int KernelW, int PaddedW, int PaddedH, int InChannels, int Lanes, long Plane, float[]? Bias);

    /// <summary>Four output channels by two vectors of pixels: eight accumulators, for 16-register machines.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PixelTile4<V, S>(in PixelTile t, float* rows, float* weights, int firstRow, int endRow, float* target,
        int channel, int count, int pixels, int more) where V : struct where S : struct, ISimd<V>
    {
        int l = t.Lanes;
        V a0 = S.Zero, a1 = S.Zero, a2 = S.Zero, a3 = S.Zero, b0 = S.Zero, b1 = S.Zero, b2 = S.Zero, b3 = S.Zero;
        for (int c = 0; c < t.InChannels; c++)
            for (int ky = firstRow; ky < endRow; ky++)
            {
                float* row = rows + (c * t.PaddedH + ky) * t.PaddedW;
                float* w = weights + (c * t.KernelH + ky) * t.KernelW * l;
                for (int kx = 0; kx < t.KernelW; kx++, w += l)
                {
                    V u = S.Load(row + kx), v = S.Load(row + kx + l);
                    V w0 = S.Broadcast(w[0]), w1 = S.Broadcast(w[1]), w2 = S.Broadcast(w[2]), w3 = S.Broadcast(w[3]);
                    a0 = S.MulAdd(w0, u, a0); b0 = S.MulAdd(w0, v, b0); a1 = S.MulAdd(w1, u, a1); b1 = S.MulAdd(w1, v, b1);
                    a2 = S.MulAdd(w2, u, a2); b2 = S.MulAdd(w2, v, b2); a3 = S.MulAdd(w3, u, a3); b3 = S.MulAdd(w3, v, b3);
                }
            }
        // Straight from the accumulators: a round trip through a staging buffer cost a fifth of the time here.
        StorePixels<V, S>(target, a0, b0, t.Bias, channel, pixels, more);
        if (count > 1) StorePixels<V, S>(target + t.Plane, a1, b1, t.Bias, channel + 1, pixels, more);
        if (count > 2) StorePixels<V, S>(target + 2 * t.Plane, a2, b2, t.Bias, channel + 2, pixels, more);
        if (count > 3) StorePixels<V, S>(target + 3 * t.Plane, a3, b3, t.Bias, channel + 3, pixels, more);
    }

    /// <summary>Eight output channels by two vectors of pixels: sixteen accumulators, for 32-register machines.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PixelTile8<V, S>(in PixelTile t, float* rows, float* weights, int firstRow, int endRow, float* target,
        int channel, int count, int pixels, int more) where V : struct where S : struct, ISimd<V>
    {
        int l = t.Lanes;
        V a0 = S.Zero, a1 = S.Zero, a2 = S.Zero, a3 = S.Zero, a4 = S.Zero, a5 = S.Zero, a6 = S.Zero, a7 = S.Zero;
        V b0 = S.Zero, b1 = S.Zero, b2 = S.Zero, b3 = S.Zero, b4 = S.Zero, b5 = S.Zero, b6 = S.Zero, b7 = S.Zero;
        for (int c = 0; c < t.InChannels; c++)
            for (int ky = firstRow; ky < endRow; ky++)
            {
                float* row = rows + (c * t.PaddedH + ky) * t.PaddedW;
                float* w = weights + (c * t.KernelH + ky) * t.KernelW * l;
                for (int kx = 0; kx < t.KernelW; kx++, w += l)
                {
                    V u = S.Load(row + kx), v = S.Load(row + kx + l);
                    V w0 = S.Broadcast(w[0]), w1 = S.Broadcast(w[1]), w2 = S.Broadcast(w[2]), w3 = S.Broadcast(w[3]);
                    a0 = S.MulAdd(w0, u, a0); b0 = S.MulAdd(w0, v, b0); a1 = S.MulAdd(w1, u, a1); b1 = S.MulAdd(w1, v, b1);
                    a2 = S.MulAdd(w2, u, a2); b2 = S.MulAdd(w2, v, b2); a3 = S.MulAdd(w3, u, a3); b3 = S.MulAdd(w3, v, b3);
                    w0 = S.Broadcast(w[4]); w1 = S.Broadcast(w[5]); w2 = S.Broadcast(w[6]); w3 = S.Broadcast(w[7]);
                    a4 = S.MulAdd(w0, u, a4); b4 = S.MulAdd(w0, v, b4); a5 = S.MulAdd(w1, u, a5); b5 = S.MulAdd(w1, v, b5);
                    a6 = S.MulAdd(w2, u, a6); b6 = S.MulAdd(w2, v, b6); a7 = S.MulAdd(w3, u, a7); b7 = S.MulAdd(w3, v, b7);
                }
            }
        StorePixels<V, S>(target, a0, b0, t.Bias, channel, pixels, more);
        if (count > 1) StorePixels<V, S>(target + t.Plane, a1, b1, t.Bias, channel + 1, pixels, more);
        if (count > 2) StorePixels<V, S>(target + 2 * t.Plane, a2, b2, t.Bias, channel + 2, pixels, more);
        if (count > 3) StorePixels<V, S>(target + 3 * t.Plane, a3, b3, t.Bias, channel + 3, pixels, more);
        if (count > 4) StorePixels<V, S>(target + 4 * t.Plane, a4, b4, t.Bias, channel + 4, pixels, more);
        if (count > 5) StorePixels<V, S>(target + 5 * t.Plane, a5, b5, t.Bias, channel + 5, pixels, more);
        if (count > 6) StorePixels<V, S>(target + 6 * t.Plane, a6, b6, t.Bias, channel + 6, pixels, more);
        if (count > 7) StorePixels<V, S>(target + 7 * t.Plane, a7, b7, t.Bias, channel + 7, pixels, more);
    }

    /// <summary>One channel's two vectors of pixels plus its bias: <paramref name="pixels"/> then <paramref name="more"/> (≤ 0: none) values.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StorePixels<V, S>(float* target, V first, V second, float[]? bias, int channel, int pixels, int more)
        where V : struct where S : struct, ISimd<V>
    {
        var b = S.Broadcast(bias is null ? 0 : bias[channel]);
        S.StorePrefix(target, S.Add(first, b), pixels);
        if (more > 0) S.StorePrefix(target + S.Lanes, S.Add(second, b), more);
    }

    // ---- weight gradient ----

    // Images per task of the fixed-order sum (CpuWork.SumOverImages).
    private const int ImagesPerTask = 4;

    /// <summary>Whether <see cref="WeightGradient"/> handles this geometry on this processor.</summary>
    public static bool AppliesToWeightGradient(in ConvGeometry g) => Bits > 0 && FitsWeightGradient(g);

    /// <summary>Whether the direct weight-gradient kernel is written for this geometry, whatever the processor: square 3×3 and 5×5 kernels.</summary>
    public static bool FitsWeightGradient(in ConvGeometry g) => Fits(g) && g.KernelH == g.KernelW && g.KernelW is 3 or 5;

    /// <summary>
    /// dw[oc, c, ky, kx] = Σ over images and output pixels of dy[n, oc, pixel] · x[n, c, pixel + (ky, kx) − padding].
    /// A vector of output channels shares a register's lanes and every tap of the kernel (9 or 25) has its own, so one
    /// load of the output gradient at a pixel feeds one FMA per tap, each with one input value broadcast. A task
    /// takes a fixed group of 4 images: it zero-pads each, transposes its output gradient to [block][pixel][lanes],
    /// and adds the image to its sums for every (output block, input channel), held in registers over the image,
    /// and to the bias sums when <paramref name="db"/> is given; the tasks' sums are then added in order.
    /// </summary>
    public static void WeightGradient(in ConvGeometry g, float[] x, float[] dy, float[] dw, float[]? db, int threads, int bits = 0)
    {
        switch (bits == 0 ? Bits : bits)
        {
            case 512: WeightGradient<Vector512<float>, W512>(g, x, dy, dw, db, threads); break;
            case 256: WeightGradient<Vector256<float>, W256>(g, x, dy, dw, db, threads); break;
            case 128: WeightGradient<Vector128<float>, W128>(g, x, dy, dw, db, threads); break;
            default: throw new PlatformNotSupportedException($"No {bits}-bit vectors here: {CpuIsa.Describe()}.");
        }
    }

    private static void WeightGradient<V, S>(in ConvGeometry g, float[] x, float[] dy, float[] dw, float[]? db, int threads)
        where V : struct where S : struct, ISimd<V>
    {
        var geometry = g;
        int lanes = S.Lanes, gic = g.GroupInChannels, goc = g.GroupOutChannels, taps = g.KernelH * g.KernelW;
        int blocks = (goc + lanes - 1) / lanes, allBlocks = g.Groups * blocks, weightSums = allBlocks * gic * taps * lanes;
        bool withBias = db is not null;
        var sums = CpuWork.SumOverImages(g.Batch, ImagesPerTask, weightSums + (withBias ? allBlocks * lanes : 0), threads, ref t_sums,
            (n, partial, offset) => AccumulateImage<V, S>(geometry, x, dy, n, partial, offset, withBias));
        for (int block = 0; block < allBlocks; block++)
            for (int c = 0; c < gic; c++)
            {
                int group = block / blocks, channels = Math.Min(lanes, goc - block % blocks * lanes);
                for (int lane = 0; lane < channels; lane++)
                {
                    int oc = group * goc + block % blocks * lanes + lane;
                    for (int t = 0; t < taps; t++) dw[(oc * gic + c) * taps + t] = sums[((long)(block * gic + c) * taps + t) * lanes + lane];
                    if (c == 0 && db is not null) db[oc] = sums[weightSums + block * lanes + lane];
                }
            }
    }

    /// <summary>
    /// Image n's share of every (output block, input channel) pair's tap sums, [block][channel][tap][lanes] from
    /// <paramref name="offset"/>, then of the bias sums [block][lanes] (the transposed gradient summed over its pixels).
    /// </summary>
    private static void AccumulateImage<V, S>(in ConvGeometry g, float[] x, float[] dy, int n, float[] partial, int offset, bool withBias)
        where V : struct where S : struct, ISimd<V>
    {
        int lanes = S.Lanes, gic = g.GroupInChannels, taps = g.KernelH * g.KernelW, pixels = g.OutH * g.OutW;
        int blocks = (g.GroupOutChannels + lanes - 1) / lanes, allBlocks = g.Groups * blocks;
        var transposed = CpuWork.Scratch(ref t_transposedGradient, (long)allBlocks * pixels * lanes);
        fixed (float* gradients = transposed)
        fixed (float* sums = &partial[offset])
        {
            TransposeGradient<V, S>(g, dy, n, gradients);
            if (withBias)
                for (int block = 0; block < allBlocks; block++)
                    ChannelsLast.AddPixels<V, S>(sums + ((long)allBlocks * gic * taps + block) * lanes, gradients + (long)block * pixels * lanes, pixels, lanes);
            for (int group = 0; group < g.Groups; group++)
                fixed (float* image = Pad(g, x, n, group, lanes, out int pw, out int ph))
                    for (int block = group * blocks; block < (group + 1) * blocks; block++)
                        for (int c = 0; c < gic; c++)
                        {
                            float* channel = image + (long)c * ph * pw, gradient = gradients + (long)block * pixels * lanes;
                            float* target = sums + (long)(block * gic + c) * taps * lanes;
                            if (g.KernelW == 3) Accumulate3x3<V, S>(target, gradient, channel, pw, g.OutH, g.OutW);
                            else if (S.Registers >= 32) Accumulate5x5<V, S>(target, gradient, channel, pw, g.OutH, g.OutW);
                            // 25 accumulators do not fit 16 registers: a kernel row at a time, reading the gradient five times.
                            else for (int ky = 0; ky < 5; ky++) Accumulate1x5<V, S>(target + ky * 5 * lanes, gradient, channel + ky * pw, pw, g.OutH, g.OutW);
                        }
        }
    }

    /// <summary>Image n's output gradient as [group·block][pixel][lanes channels], lanes past a group's channels zero.</summary>
    private static void TransposeGradient<V, S>(in ConvGeometry g, float[] dy, int n, float* target) where V : struct where S : struct, ISimd<V>
    {
        int lanes = S.Lanes, goc = g.GroupOutChannels, blocks = (goc + lanes - 1) / lanes, pixels = g.OutH * g.OutW;
        fixed (float* source = &dy[n * g.OutChannels * pixels])
            for (int group = 0; group < g.Groups; group++)
                for (int block = 0; block < blocks; block++)
                    // A plane's pixels are one run in both layouts: copied as a single row.
                    ChannelsLast.Copy<V, S>(source + (long)(group * goc + block * lanes) * pixels, pixels, Math.Min(lanes, goc - block * lanes),
                        1, pixels, target + (long)(group * blocks + block) * pixels * lanes, 0, lanes);
    }

    [ThreadStatic] private static float[]? t_padded, t_sums, t_transposedGradient, t_flippedWeights, t_packedWeights;

    /// <summary>One image's contribution to the 9 tap sums of a 3×3 kernel: a loop of loads and FMAs only, so they stay in registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Accumulate3x3<V, S>(float* s, float* gradient, float* image, int pw, int oh, int ow) where V : struct where S : struct, ISimd<V>
    {
        int l = S.Lanes;
        V s00 = S.Load(s), s01 = S.Load(s + l), s02 = S.Load(s + 2 * l);
        V s10 = S.Load(s + 3 * l), s11 = S.Load(s + 4 * l), s12 = S.Load(s + 5 * l);
        V s20 = S.Load(s + 6 * l), s21 = S.Load(s + 7 * l), s22 = S.Load(s + 8 * l);
        for (int oy = 0; oy < oh; oy++)
        {
            float* r0 = image + oy * pw, r1 = r0 + pw, r2 = r1 + pw;
            for (int ox = 0; ox < ow; ox++, gradient += l, r0++, r1++, r2++)
            {
                var d = S.Load(gradient);
                s00 = S.MulAdd(S.Broadcast(r0[0]), d, s00); s01 = S.MulAdd(S.Broadcast(r0[1]), d, s01); s02 = S.MulAdd(S.Broadcast(r0[2]), d, s02);
                s10 = S.MulAdd(S.Broadcast(r1[0]), d, s10); s11 = S.MulAdd(S.Broadcast(r1[1]), d, s11); s12 = S.MulAdd(S.Broadcast(r1[2]), d, s12);
                s20 = S.MulAdd(S.Broadcast(r2[0]), d, s20); s21 = S.MulAdd(S.Broadcast(r2[1]), d, s21); s22 = S.MulAdd(S.Broadcast(r2[2]), d, s22);
            }
        }
        S.Store(s, s00); S.Store(s + l, s01); S.Store(s + 2 * l, s02);
        S.Store(s + 3 * l, s10); S.Store(s + 4 * l, s11); S.Store(s + 5 * l, s12);
        S.Store(s + 6 * l, s20); S.Store(s + 7 * l, s21); S.Store(s + 8 * l, s22);
    }

    /// <summary>One image's contribution to one kernel row's 5 tap sums of a 5×5 kernel (where 25 accumulators do not fit).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Accumulate1x5<V, S>(float* s, float* gradient, float* image, int pw, int oh, int ow) where V : struct where S : struct, ISimd<V>
    {
        int l = S.Lanes;
        V s0 = S.Load(s), s1 = S.Load(s + l), s2 = S.Load(s + 2 * l), s3 = S.Load(s + 3 * l), s4 = S.Load(s + 4 * l);
        for (int oy = 0; oy < oh; oy++)
        {
            float* r = image + oy * pw;
            for (int ox = 0; ox < ow; ox++, gradient += l, r++)
            {
                var d = S.Load(gradient);
                s0 = S.MulAdd(S.Broadcast(r[0]), d, s0); s1 = S.MulAdd(S.Broadcast(r[1]), d, s1); s2 = S.MulAdd(S.Broadcast(r[2]), d, s2);
                s3 = S.MulAdd(S.Broadcast(r[3]), d, s3); s4 = S.MulAdd(S.Broadcast(r[4]), d, s4);
            }
        }
        S.Store(s, s0); S.Store(s + l, s1); S.Store(s + 2 * l, s2); S.Store(s + 3 * l, s3); S.Store(s + 4 * l, s4);
    }

    /// <summary>One image's contribution to the 25 tap sums of a 5×5 kernel (25 accumulators and the gradient: 26 of 32 registers).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Accumulate5x5<V, S>(float* s, float* gradient, float* image, int pw, int oh, int ow) where V : struct where S : struct, ISimd<V>
    {
        int l = S.Lanes;
        V s00 = S.Load(s), s01 = S.Load(s + l), s02 = S.Load(s + 2 * l), s03 = S.Load(s + 3 * l), s04 = S.Load(s + 4 * l);
        V s10 = S.Load(s + 5 * l), s11 = S.Load(s + 6 * l), s12 = S.Load(s + 7 * l), s13 = S.Load(s + 8 * l), s14 = S.Load(s + 9 * l);
        V s20 = S.Load(s + 10 * l), s21 = S.Load(s + 11 * l), s22 = S.Load(s + 12 * l), s23 = S.Load(s + 13 * l), s24 = S.Load(s + 14 * l);
        V s30 = S.Load(s + 15 * l), s31 = S.Load(s + 16 * l), s32 = S.Load(s + 17 * l), s33 = S.Load(s + 18 * l), s34 = S.Load(s + 19 * l);
        V s40 = S.Load(s + 20 * l), s41 = S.Load(s + 21 * l), s42 = S.Load(s + 22 * l), s43 = S.Load(s + 23 * l), s44 = S.Load(s + 24 * l);
        for (int oy = 0; oy < oh; oy++)
        {
            float* r0 = image + oy * pw, r1 = r0 + pw, r2 = r1 + pw, r3 = r2 + pw, r4 = r3 + pw;
            for (int ox = 0; ox < ow; ox++, gradient += l, r0++, r1++, r2++, r3++, r4++)
            {
                var d = S.Load(gradient);
                s00 = S.MulAdd(S.Broadcast(r0[0]), d, s00); s01 = S.MulAdd(S.Broadcast(r0[1]), d, s01); s02 = S.MulAdd(S.Broadcast(r0[2]), d, s02);
                s03 = S.MulAdd(S.Broadcast(r0[3]), d, s03); s04 = S.MulAdd(S.Broadcast(r0[4]), d, s04);
                s10 = S.MulAdd(S.Broadcast(r1[0]), d, s10); s11 = S.MulAdd(S.Broadcast(r1[1]), d, s11); s12 = S.MulAdd(S.Broadcast(r1[2]), d, s12);
                s13 = S.MulAdd(S.Broadcast(r1[3]), d, s13); s14 = S.MulAdd(S.Broadcast(r1[4]), d, s14);
                s20 = S.MulAdd(S.Broadcast(r2[0]), d, s20); s21 = S.MulAdd(S.Broadcast(r2[1]), d, s21); s22 = S.MulAdd(S.Broadcast(r2[2]), d, s22);
                s23 = S.MulAdd(S.Broadcast(r2[3]), d, s23); s24 = S.MulAdd(S.Broadcast(r2[4]), d, s24);
                s30 = S.MulAdd(S.Broadcast(r3[0]), d, s30); s31 = S.MulAdd(S.Broadcast(r3[1]), d, s31); s32 = S.MulAdd(S.Broadcast(r3[2]), d, s32);
                s33 = S.MulAdd(S.Broadcast(r3[3]), d, s33); s34 = S.MulAdd(S.Broadcast(r3[4]), d, s34);
                s40 = S.MulAdd(S.Broadcast(r4[0]), d, s40); s41 = S.MulAdd(S.Broadcast(r4[1]), d, s41); s42 = S.MulAdd(S.Broadcast(r4[2]), d, s42);
                s43 = S.MulAdd(S.Broadcast(r4[3]), d, s43); s44 = S.MulAdd(S.Broadcast(r4[4]), d, s44);
            }
        }
        S.Store(s, s00); S.Store(s + l, s01); S.Store(s + 2 * l, s02); S.Store(s + 3 * l, s03); S.Store(s + 4 * l, s04);
        S.Store(s + 5 * l, s10); S.Store(s + 6 * l, s11); S.Store(s + 7 * l, s12); S.Store(s + 8 * l, s13); S.Store(s + 9 * l, s14);
        S.Store(s + 10 * l, s20); S.Store(s + 11 * l, s21); S.Store(s + 12 * l, s22); S.Store(s + 13 * l, s23); S.Store(s + 14 * l, s24);
        S.Store(s + 15 * l, s30); S.Store(s + 16 * l, s31); S.Store(s + 17 * l, s32); S.Store(s + 18 * l, s33); S.Store(s + 19 * l, s34);
        S.Store(s + 20 * l, s40); S.Store(s + 21 * l, s41); S.Store(s + 22 * l, s42); S.Store(s + 23 * l, s43); S.Store(s + 24 * l, s44);
    }
}
