using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Ml.Cnn.Backends.Cpu;

/// <summary>
/// Winograd convolution on 6×6 input tiles (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks",
/// 2016), all on the points 0, ±1, ±2 and ∞ so that one input transform serves every variant: F(2×2, 5×5) costs 36
/// multiply-adds per input channel for a 2×2 output tile instead of 4·25 = 100, F(4×4, 3×3) 36 for a 4×4 tile instead
/// of 16·9 = 144. Stride 1 without dilation, written once for every vector width (<see cref="ISimd{V}"/>).
/// Backward-data is the same forward on the flipped kernel; the weight gradients are F(5×5, 2×2) and F(3×3, 4×4)
/// (see <see cref="WeightGradient"/>). The sums are rounded differently from a direct convolution's: the error
/// measured 0.6–5·10⁻⁶ of Σ|x·w| or Σ|x·dy| (a direct sum's is near 2·10⁻⁷), far below what training notices.
/// <para>
/// Per image: the input is copied zero-padded in channels-last order, so that the input transform works on a vector
/// of channels at a time; seven tiles at a time are transformed into V[position][channel block][tile][lanes]; for
/// each block of output channels and each of the 36 positions, M = U·V is a product with the output channels in the
/// lanes (U: the transformed weights), seven tiles in seven accumulators; the output transform takes M back to the
/// tile's pixels. Every sum runs in a fixed order, whatever the thread count.
/// </para>
/// </summary>
// Every stack buffer here is written before it is read: zeroing them cost a store per vector on each tile.
[SkipLocalsInit]
internal static unsafe class WinogradConvolution
{
    private const int Alpha = 6, Positions = Alpha * Alpha;
    private const int ChunkTiles = 7;
    // The geometries Winograd is written for have at least this many channels per group in and out.
    private const int MinChannels = 16;
    // The widest vector's floats: the stack buffers are sized for it.
    private const int MaxLanes = 16;

    // The finite interpolation points and the scale each row of G carries, chosen so that the input transform Bᵀ has
    // small integer entries (it is written out in Combine6); G's rows are a point's scale times (1, p, p², …).
    private static readonly double[] Points = [0, 1, -1, 2, -2];
    private static readonly double[] Scales = [1.0 / 4, 1.0 / 6, 1.0 / 6, 1.0 / 24, 1.0 / 24];

    /// <summary>
    /// Whether Winograd handles this geometry, for every pass: 5×5 and 3×3 kernels with 16 or more channels in and out
    /// per group, on maps 7 or more wide. Measured against the direct kernels (AVX-512, 2 threads) it ran 1.3–2.2× on
    /// every such shape tried but one, the 5×5 forward on a 7-wide map (1.0×); on a 5-wide map it lost (0.7–0.8×).
    /// </summary>
    public static bool Applies(in ConvGeometry g) => DirectConvolution.Bits > 0 && Fits(g);

    /// <summary>Whether the Winograd kernels are written for this geometry, whatever the processor.</summary>
    public static bool Fits(in ConvGeometry g) =>
        g.StrideH == 1 && g.StrideW == 1 && g.DilationH == 1 && g.DilationW == 1
        && g.KernelH == g.KernelW && g.KernelW is 3 or 5
        && g.GroupInChannels >= MinChannels && g.GroupOutChannels >= MinChannels && (g.OutW >= 7 || BatchWide(g));

    /// <summary>
    /// y = conv(x, w) + b for geometries where <see cref="Fits"/> holds, with vectors of <paramref name="bits"/>
    /// (default: the widest here, <see cref="DirectConvolution.Bits"/>).
    /// </summary>
    public static void Forward(in ConvGeometry g, float[] x, ReadOnlySpan<float> w, float[]? bias, float[] y, int threads, int bits = 0)
    {
        switch (bits == 0 ? DirectConvolution.Bits : bits)
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
        if (BatchWide(g))
        {
            ForwardBatchWide<V, S>(g, x, w, bias, y, threads);
            return;
        }
        var geometry = g;
        int m = TileSize(g), tilesY = (g.OutH + m - 1) / m, tilesX = (g.OutW + m - 1) / m;
        int chunks = (tilesY * tilesX + ChunkTiles - 1) / ChunkTiles, images = g.Batch * g.Groups;
        var transformed = TransformWeights<V, S>(g, w, threads);
        // As in the direct kernel: a task is one image (one group of it); its chunks of tiles are split over tasks
        // only where the images alone would leave threads idle.
        int splits = Math.Clamp(threads / images, 1, chunks);
        CpuWork.For(images * splits, threads, task =>
        {
            int image = task / splits, split = task % splits;
            ForwardImage<V, S>(geometry, x, transformed, bias, y, image / geometry.Groups, image % geometry.Groups,
                chunks * split / splits, chunks * (split + 1) / splits);
        });
    }

    /// <summary>Output pixels per tile side: 2 for a 5×5 kernel, 4 for a 3×3 one (tile + kernel − 1 = 6).</summary>
    private static int TileSize(in ConvGeometry g) => Alpha + 1 - g.KernelW;

    /// <summary>Input channels of a group rounded up to whole vectors of <paramref name="lanes"/> (the extra ones are zero).</summary>
    private static int PaddedChannels(in ConvGeometry g, int lanes) => (g.GroupInChannels + lanes - 1) / lanes * lanes;

    /// <summary>Output channels of a group rounded up to whole vectors of <paramref name="lanes"/>.</summary>
    private static int PaddedOutChannels(in ConvGeometry g, int lanes) => (g.GroupOutChannels + lanes - 1) / lanes * lanes;

    /// <summary>
    /// U = G·w·Gᵀ for every output/input channel pair, as [group][output block][position][input channel][lanes], a
    /// vector of output channels per vector (from the direct kernel's packing of the weights); blocks are split over
    /// the threads (each writes its own), since on deep layers with few tiles this is a sizeable share of the pass.
    /// </summary>
    private static float[] TransformWeights<V, S>(in ConvGeometry g, ReadOnlySpan<float> w, int threads)
        where V : struct where S : struct, ISimd<V>
    {
        int lanes = S.Lanes, r = g.KernelW, gic = g.GroupInChannels, icP = PaddedChannels(g, lanes), taps = r * r;
        int blocks = (g.GroupOutChannels + lanes - 1) / lanes, length = g.Groups * blocks * Positions * icP * lanes;
        var u = CpuWork.Scratch(ref t_transformedWeights, length);
        if (icP != gic) u.AsSpan(0, length).Clear();
        var gm = new float[Alpha * r];
        for (int i = 0; i < Alpha; i++)
            for (int j = 0; j < r; j++)
                gm[i * r + j] = i == Alpha - 1 ? (j == r - 1 ? 1 : 0) : (float)(Scales[i] * Math.Pow(Points[i], j));
        var packed = DirectConvolution.PackWeights(g, w, lanes);
        CpuWork.For(g.Groups * blocks, threads, groupBlock =>
        {
            float* half = stackalloc float[Alpha * 5 * MaxLanes];
            fixed (float* weights = packed, transformed = u)
                for (int c = 0; c < gic; c++)
                {
                    float* taps0 = weights + ((long)groupBlock * gic + c) * taps * lanes;
                    for (int i = 0; i < Alpha; i++)
                        for (int j = 0; j < r; j++)
                        {
                            var sum = S.Zero;
                            for (int k = 0; k < r; k++) sum = S.MulAdd(S.Broadcast(gm[i * r + k]), S.Load(taps0 + (k * r + j) * lanes), sum);
                            S.Store(half + (i * r + j) * lanes, sum);
                        }
                    for (int i = 0; i < Alpha; i++)
                        for (int l = 0; l < Alpha; l++)
                        {
                            var sum = S.Zero;
                            for (int j = 0; j < r; j++) sum = S.MulAdd(S.Load(half + (i * r + j) * lanes), S.Broadcast(gm[l * r + j]), sum);
                            S.Store(transformed + (((long)groupBlock * Positions + i * Alpha + l) * icP + c) * lanes, sum);
                        }
                }
        });
        return u;
    }

    /// <summary>
    /// One image's chunks of tiles: a chunk is up to seven consecutive tiles in row order, so its outputs are m rows
    /// of up to 7·m pixels in each tile row it touches, which leave as row segments of each channel.
    /// </summary>
    private static void ForwardImage<V, S>(in ConvGeometry g, float[] x, float[] u, float[]? bias, float[] y, int n, int group,
        int firstChunk, int endChunk) where V : struct where S : struct, ISimd<V>
    {
        int lanes = S.Lanes, m = TileSize(g), tilesY = (g.OutH + m - 1) / m, tilesX = (g.OutW + m - 1) / m, tiles = tilesY * tilesX;
        int icP = PaddedChannels(g, lanes), goc = g.GroupOutChannels, blocks = (goc + lanes - 1) / lanes;
        int pw = tilesX * m + Alpha - m, ph = tilesY * m + Alpha - m, positionStride = icP * ChunkTiles;
        long plane = (long)g.OutH * g.OutW;
        var padded = PadChannelsLast<V, S>(g, x, n, group, pw, ph, icP);
        var v = CpuWork.Scratch(ref t_v, Positions * positionStride);
        var products = CpuWork.Scratch(ref t_m, Positions * ChunkTiles * lanes);
        // Up to four output rows of 32 pixels (7·m used) by a vector of channels.
        int rowStride = 32 * lanes;
        float* rows = stackalloc float[4 * 32 * MaxLanes];
        fixed (float* image = padded)
        fixed (float* transformedInput = v)
        fixed (float* product = products)
        fixed (float* transformedWeights = u)
        fixed (float* output = y)
            for (int chunk = firstChunk; chunk < endChunk; chunk++)
            {
                int firstTile = chunk * ChunkTiles, count = Math.Min(ChunkTiles, tiles - firstTile);
                for (int t = 0; t < ChunkTiles; t++)
                    for (int block = 0; block < icP / lanes; block++)
                    {
                        float* target = transformedInput + (block * ChunkTiles + t) * lanes;
                        if (t < count)
                            TransformInput<V, S>(image + ((long)(firstTile + t) / tilesX * m * pw + (firstTile + t) % tilesX * m) * icP + block * lanes,
                                (long)pw * icP, icP, target, positionStride);
                        else
                            // A short chunk: the spare tiles' products are computed and dropped; keep them finite.
                            for (int p = 0; p < Positions; p++) S.Store(target + (long)p * positionStride, S.Zero);
                    }
                for (int block = 0; block < blocks; block++)
                {
                    float* weights = transformedWeights + (long)(group * blocks + block) * Positions * icP * lanes;
                    for (int p = 0; p < Positions; p++)
                        Multiply<V, S>(weights + (long)p * icP * lanes, transformedInput + (long)p * positionStride, icP, product + p * ChunkTiles * lanes);
                    for (int t = 0; t < count; t++)
                        TransformOutput<V, S>(product + t * lanes, ChunkTiles * lanes, m, rows + t * m * lanes, rowStride);
                    int channels = Math.Min(lanes, goc - block * lanes), firstChannel = group * goc + block * lanes;
                    StoreChunk<V, S>(g, rows, rowStride, firstTile, count, ChannelsLast.Block<V, S>(bias, firstChannel, channels),
                        output + ((long)n * g.OutChannels + firstChannel) * plane, channels);
                }
            }
    }

    /// <summary>
    /// Adds the bias to a chunk's transformed outputs (rows[a][pixel][lanes], <paramref name="rowStride"/> apart) and
    /// writes them to the first of <paramref name="channels"/> output planes at <paramref name="output"/>: the chunk's
    /// tiles in each tile row it touches are one run of pixels in every output row.
    /// </summary>
    private static void StoreChunk<V, S>(in ConvGeometry g, float* rows, int rowStride, int firstTile, int count, V bias,
        float* output, int channels) where V : struct where S : struct, ISimd<V>
    {
        int lanes = S.Lanes, m = TileSize(g), tilesX = (g.OutW + m - 1) / m;
        long plane = (long)g.OutH * g.OutW;
        for (int t = 0, run; t < count; t += run)
        {
            int tx = (firstTile + t) % tilesX, oy = (firstTile + t) / tilesX * m, ox = tx * m;
            run = Math.Min(count - t, tilesX - tx);
            int width = Math.Min(run * m, g.OutW - ox), height = Math.Min(m, g.OutH - oy);
            for (int a = 0; a < height; a++)
            {
                float* row = rows + a * rowStride + t * m * lanes;
                for (int p = 0; p < width; p++) S.Store(row + p * lanes, S.Add(S.Load(row + p * lanes), bias));
                // The transposing store takes up to 16 pixels at a time.
                for (int first = 0; first < width; first += MaxLanes)
                    ChannelsLast.ToPlanes<V, S>(row + first * lanes, Math.Min(MaxLanes, width - first),
                        output + (long)(oy + a) * g.OutW + ox + first, plane, channels);
            }
        }
    }

    /// <summary>Image n's channels of one group as [row][column][channel], zero-padded on every side and to <paramref name="icP"/> channels.</summary>
    private static float[] PadChannelsLast<V, S>(in ConvGeometry g, float[] x, int n, int group, int pw, int ph, int icP)
        where V : struct where S : struct, ISimd<V>
    {
        int lanes = S.Lanes, gic = g.GroupInChannels, length = ph * pw * icP;
        var buffer = CpuWork.Scratch(ref t_padded, length);
        buffer.AsSpan(0, length).Clear();
        fixed (float* source = &x[(n * g.InChannels + group * gic) * g.InH * g.InW])
        fixed (float* target = &buffer[(g.PadH * pw + g.PadW) * icP])
            for (int block = 0; block < icP / lanes; block++)
                ChannelsLast.Copy<V, S>(source + (long)block * lanes * g.InH * g.InW, g.InH * g.InW, Math.Min(lanes, gic - block * lanes),
                    g.InH, g.InW, target + block * lanes, (long)pw * icP, icP);
        return buffer;
    }

    /// <summary>
    /// V = Bᵀ·d·B for a vector of channels of one 6×6 input tile: <paramref name="d"/> points at its top-left pixel,
    /// rows <paramref name="rowStride"/> apart, pixels <paramref name="pixelStride"/>; position p of the result goes to
    /// <paramref name="v"/> + p·<paramref name="positionStride"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformInput<V, S>(float* d, long rowStride, int pixelStride, float* v, long positionStride)
        where V : struct where S : struct, ISimd<V>
    {
        int lanes = S.Lanes;
        float* columns = stackalloc float[Positions * MaxLanes];
        for (int j = 0; j < Alpha; j++)
            Combine6<V, S>(d + j * pixelStride, rowStride, columns + j * lanes, Alpha * lanes);
        for (int i = 0; i < Alpha; i++)
            Combine6<V, S>(columns + i * Alpha * lanes, lanes, v + (long)i * Alpha * positionStride, positionStride);
    }

    /// <summary>Bᵀ·(s₀ … s₅) for six vectors <paramref name="stride"/> apart, Bᵀ's rows being the integer rows of the 0, ±1, ±2, ∞ points.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Combine6<V, S>(float* s, long stride, float* target, long targetStride) where V : struct where S : struct, ISimd<V>
    {
        var d0 = S.Load(s); var d1 = S.Load(s + stride); var d2 = S.Load(s + 2 * stride);
        var d3 = S.Load(s + 3 * stride); var d4 = S.Load(s + 4 * stride); var d5 = S.Load(s + 5 * stride);
        var four = S.Broadcast(4f); var two = S.Broadcast(2f); var five = S.Broadcast(5f);
        S.Store(target, S.Subtract(S.MulAdd(four, d0, d4), S.Multiply(five, d2)));
        S.Store(target + targetStride, S.MulAdd(four, S.Add(d1, d2), S.Subtract(S.Zero, S.Add(d3, d4))));
        S.Store(target + 2 * targetStride, S.MulAdd(four, S.Subtract(d2, d1), S.Subtract(d3, d4)));
        S.Store(target + 3 * targetStride, S.MulAdd(two, S.Subtract(d3, d1), S.Subtract(d4, d2)));
        S.Store(target + 4 * targetStride, S.MulAdd(two, S.Subtract(d1, d3), S.Subtract(d4, d2)));
        S.Store(target + 5 * targetStride, S.Subtract(S.MulAdd(four, d1, d5), S.Multiply(five, d3)));
    }

    /// <summary>
    /// M[position] for seven tiles and a vector of output channels: Σ over input channels of U[channel] ·
    /// V[channel, tile], U's vector loaded once for seven FMAs, each with one value of V broadcast.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Multiply<V, S>(float* u, float* v, int icP, float* m) where V : struct where S : struct, ISimd<V>
    {
        int lanes = S.Lanes;
        V a0 = S.Zero, a1 = S.Zero, a2 = S.Zero, a3 = S.Zero, a4 = S.Zero, a5 = S.Zero, a6 = S.Zero;
        for (int block = 0; block < icP; block += lanes, v += ChunkTiles * lanes)
            for (int c = 0; c < lanes; c++, u += lanes)
            {
                var w = S.Load(u);
                a0 = S.MulAdd(S.Broadcast(v[c]), w, a0);
                a1 = S.MulAdd(S.Broadcast(v[c + lanes]), w, a1);
                a2 = S.MulAdd(S.Broadcast(v[c + 2 * lanes]), w, a2);
                a3 = S.MulAdd(S.Broadcast(v[c + 3 * lanes]), w, a3);
                a4 = S.MulAdd(S.Broadcast(v[c + 4 * lanes]), w, a4);
                a5 = S.MulAdd(S.Broadcast(v[c + 5 * lanes]), w, a5);
                a6 = S.MulAdd(S.Broadcast(v[c + 6 * lanes]), w, a6);
            }
        S.Store(m, a0); S.Store(m + lanes, a1); S.Store(m + 2 * lanes, a2); S.Store(m + 3 * lanes, a3);
        S.Store(m + 4 * lanes, a4); S.Store(m + 5 * lanes, a5); S.Store(m + 6 * lanes, a6);
    }

    /// <summary>
    /// Y = Aᵀ·M·A for one tile: M's 36 positions are <paramref name="positionStride"/> apart; the m×m result's rows
    /// go <paramref name="rowStride"/> apart from <paramref name="y"/>, its pixels as consecutive vectors.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformOutput<V, S>(float* mm, long positionStride, int m, float* y, int rowStride)
        where V : struct where S : struct, ISimd<V>
    {
        int lanes = S.Lanes;
        float* rows = stackalloc float[4 * Alpha * MaxLanes];
        for (int j = 0; j < Alpha; j++)
            Combine<V, S>(mm + j * positionStride, Alpha * positionStride, m, rows + j * lanes, Alpha * lanes);
        for (int a = 0; a < m; a++)
            Combine<V, S>(rows + a * Alpha * lanes, lanes, m, y + a * rowStride, lanes);
    }

    // ---- weight gradient: F(5×5, 2×2) and F(3×3, 4×4) ----

    // Images per task of the fixed-order sum (CpuWork.SumOverImages): each task keeps its own 36 position products.
    private const int ImagesPerTask = 8;
    // Tiles transformed together before their products are accumulated (two tile rows of a 14-wide map).
    private const int GradientChunkTiles = 14;

    /// <summary>
    /// dw for geometries where <see cref="Fits"/> holds. An m×m tile of the output gradient
    /// correlated with its 6×6 input tile gives the tile's share of every tap, which is F(r×r, m×m) on the same points
    /// (r the kernel size): dw = Aᵀ·[Σ over tiles of (G·dy·Gᵀ) ⊙ (Bᵀ·x·B)]·A, the sum taken before the output
    /// transform. For each of the 36 positions that sum is a product of output by input channels with the tiles as its
    /// reduction: 36 multiply-adds per tile and channel pair instead of m²·r² (100 or 144). The bias gradient
    /// <paramref name="db"/>, when given, is summed from the same channels-last copy of dy.
    /// </summary>
    public static void WeightGradient(in ConvGeometry g, float[] x, float[] dy, float[] dw, float[]? db, int threads, int bits = 0)
    {
        switch (bits == 0 ? DirectConvolution.Bits : bits)
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
        if (BatchWide(g))
        {
            WeightGradientBatchWide<V, S>(g, x, dy, dw, threads);
            if (db is not null) Pointwise.ChannelSums(dy, g.Batch, g.OutChannels, g.OutH * g.OutW, db, threads);
            return;
        }
        var geometry = g;
        int lanes = S.Lanes, icBlocks = PaddedChannels(g, lanes) / lanes, ocBlocks = (g.GroupOutChannels + lanes - 1) / lanes;
        // Per task: the position products of every group, then (with a bias) the bias sums [group][block][lanes].
        int groupSums = Positions * ocBlocks * icBlocks * lanes * lanes, weightSums = g.Groups * groupSums;
        var sums = CpuWork.SumOverImages(g.Batch, ImagesPerTask, weightSums + (db is null ? 0 : g.Groups * ocBlocks * lanes), threads,
            ref t_gradientSums, (n, partial, offset) =>
            {
                for (int group = 0; group < geometry.Groups; group++)
                    AccumulateImage<V, S>(geometry, x, dy, n, group, partial, offset + group * groupSums,
                        db is null ? -1 : offset + weightSums + group * ocBlocks * S.Lanes);
            });
        fixed (float* total = sums) TransformWeightGradient<V, S>(g, total, dw, threads);
        if (db is null) return;
        for (int group = 0; group < g.Groups; group++)
            for (int oc = 0; oc < g.GroupOutChannels; oc++)
                db[group * g.GroupOutChannels + oc] = sums[weightSums + group * ocBlocks * lanes + oc];
    }

    /// <summary>
    /// Image n's share of one group's position products (from <paramref name="offset"/>) and, unless
    /// <paramref name="biasOffset"/> is negative, of its bias sums (its channels-last output gradient summed over pixels).
    /// </summary>
    private static void AccumulateImage<V, S>(in ConvGeometry g, float[] x, float[] dy, int n, int group, float[] sums, int offset, int biasOffset)
        where V : struct where S : struct, ISimd<V>
    {
        int lanes = S.Lanes, m = TileSize(g), tilesY = (g.OutH + m - 1) / m, tilesX = (g.OutW + m - 1) / m, tiles = tilesY * tilesX;
        int icP = PaddedChannels(g, lanes), icBlocks = icP / lanes, ocBlocks = (g.GroupOutChannels + lanes - 1) / lanes, ocP = ocBlocks * lanes;
        int pw = tilesX * m + Alpha - m, ph = tilesY * m + Alpha - m, gw = tilesX * m;
        var padded = PadChannelsLast<V, S>(g, x, n, group, pw, ph, icP);
        var gradient = GradientChannelsLast<V, S>(g, dy, n, group, gw, tilesY * m, ocP);
        var v = CpuWork.Scratch(ref t_v, Positions * icP * GradientChunkTiles);
        var u = CpuWork.Scratch(ref t_m, Positions * ocP * GradientChunkTiles);
        fixed (float* image = padded)
        fixed (float* outputGradient = gradient)
        fixed (float* transformedInput = v)
        fixed (float* transformedGradient = u)
        fixed (float* s = &sums[offset])
        {
            if (biasOffset >= 0)
                fixed (float* biasSums = &sums[biasOffset])
                    for (int block = 0; block < ocBlocks; block++)
                        ChannelsLast.AddPixels<V, S>(biasSums + block * lanes, outputGradient + block * lanes, tilesY * m * gw, ocP);
            for (int first = 0; first < tiles; first += GradientChunkTiles)
            {
                int count = Math.Min(GradientChunkTiles, tiles - first);
                for (int t = 0; t < count; t++)
                {
                    int ty = (first + t) / tilesX, tx = (first + t) % tilesX;
                    for (int block = 0; block < icBlocks; block++)
                        TransformInput<V, S>(image + ((long)ty * m * pw + tx * m) * icP + block * lanes, (long)pw * icP, icP,
                            transformedInput + (block * GradientChunkTiles + t) * lanes, icP * GradientChunkTiles);
                    for (int block = 0; block < ocBlocks; block++)
                        TransformGradient<V, S>(outputGradient + ((long)ty * m * gw + tx * m) * ocP + block * lanes, (long)gw * ocP, ocP, m,
                            transformedGradient + (block * GradientChunkTiles + t) * lanes, ocP * GradientChunkTiles);
                }
                for (int p = 0; p < Positions; p++)
                    for (int outBlock = 0; outBlock < ocBlocks; outBlock++)
                        for (int inBlock = 0; inBlock < icBlocks; inBlock++)
                            AccumulateOuter<V, S>(s + ((long)(p * ocBlocks + outBlock) * icBlocks + inBlock) * lanes * lanes,
                                transformedGradient + ((long)p * ocBlocks + outBlock) * GradientChunkTiles * lanes,
                                transformedInput + ((long)p * icBlocks + inBlock) * GradientChunkTiles * lanes, count);
            }
        }
    }

    /// <summary>Image n's output gradient for one group as [row][column][channel], zero past the map (odd sizes fill whole tiles) and the channels.</summary>
    private static float[] GradientChannelsLast<V, S>(in ConvGeometry g, float[] dy, int n, int group, int gw, int gh, int ocP)
        where V : struct where S : struct, ISimd<V>
    {
        int lanes = S.Lanes, goc = g.GroupOutChannels, length = gh * gw * ocP, plane = g.OutH * g.OutW;
        var buffer = CpuWork.Scratch(ref t_gradient, length);
        buffer.AsSpan(0, length).Clear();
        fixed (float* source = &dy[(n * g.OutChannels + group * goc) * plane])
        fixed (float* target = buffer)
            for (int block = 0; block < ocP / lanes; block++)
                ChannelsLast.Copy<V, S>(source + (long)block * lanes * plane, plane, Math.Min(lanes, goc - block * lanes),
                    g.OutH, g.OutW, target + block * lanes, (long)gw * ocP, ocP);
        return buffer;
    }

    /// <summary>G·k·Gᵀ for a vector of channels of one m×m gradient tile (pixels as in <see cref="TransformInput{V, S}"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformGradient<V, S>(float* k, long rowStride, int pixelStride, int m, float* target, long positionStride)
        where V : struct where S : struct, ISimd<V>
    {
        int lanes = S.Lanes;
        float* columns = stackalloc float[Alpha * 4 * MaxLanes];
        for (int b = 0; b < m; b++)
            Expand<V, S>(k + b * pixelStride, rowStride, m, columns + b * lanes, m * lanes);
        for (int i = 0; i < Alpha; i++)
            Expand<V, S>(columns + i * m * lanes, lanes, m, target + (long)i * Alpha * positionStride, positionStride);
    }

    /// <summary>
    /// G·(x₀ … x_{m−1}) for m = 2 or 4 vectors <paramref name="stride"/> apart: G's rows are the points' scales
    /// times (1, p, p², …), the ∞ row picks the last.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Expand<V, S>(float* x, long stride, int m, float* target, long targetStride) where V : struct where S : struct, ISimd<V>
    {
        var x0 = S.Load(x);
        V even, odd, evenTwice, oddTwice, last;
        if (m == 2)
        {
            last = S.Load(x + stride);
            (even, odd, evenTwice, oddTwice) = (x0, last, x0, S.Add(last, last));
        }
        else
        {
            var x1 = S.Load(x + stride); var x2 = S.Load(x + 2 * stride); last = S.Load(x + 3 * stride);
            even = S.Add(x0, x2);
            odd = S.Add(x1, last);
            evenTwice = S.MulAdd(S.Broadcast(4f), x2, x0);
            oddTwice = S.MulAdd(S.Broadcast(8f), last, S.Add(x1, x1));
        }
        S.Store(target, S.Multiply(x0, S.Broadcast(1f / 4)));
        S.Store(target + targetStride, S.Multiply(S.Add(even, odd), S.Broadcast(1f / 6)));
        S.Store(target + 2 * targetStride, S.Multiply(S.Subtract(even, odd), S.Broadcast(1f / 6)));
        S.Store(target + 3 * targetStride, S.Multiply(S.Add(evenTwice, oddTwice), S.Broadcast(1f / 24)));
        S.Store(target + 4 * targetStride, S.Multiply(S.Subtract(evenTwice, oddTwice), S.Broadcast(1f / 24)));
        S.Store(target + 5 * targetStride, last);
    }

    /// <summary>
    /// s[c] += Σ over <paramref name="count"/> tiles of v[tile, c] · u[tile] for a vector's worth of input channels c,
    /// each s[c] a vector of output channels: eight channels at a time (four at 128 bits, a whole block; sixteen at
    /// 512 bits), so that every width keeps its accumulators in registers.
    /// </summary>
    private static void AccumulateOuter<V, S>(float* s, float* u, float* v, int count) where V : struct where S : struct, ISimd<V>
    {
        if (S.Lanes < 8) Outer4<V, S>(s, u, v, count);
        // With 32 registers sixteen accumulators fit: the 16-channel blocks of 512-bit vectors in one pass.
        else if (S.Lanes == 16 && S.Registers >= 32) Outer16<V, S>(s, u, v, count);
        else for (int first = 0; first < S.Lanes; first += 8) Outer8<V, S>(s + first * S.Lanes, u, v + first, count);
    }

    /// <summary>Sixteen input channels of <see cref="AccumulateOuter{V, S}"/>: one load of u feeds sixteen FMAs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Outer16<V, S>(float* s, float* u, float* v, int count) where V : struct where S : struct, ISimd<V>
    {
        int l = S.Lanes;
        V s0 = S.Load(s), s1 = S.Load(s + l), s2 = S.Load(s + 2 * l), s3 = S.Load(s + 3 * l);
        V s4 = S.Load(s + 4 * l), s5 = S.Load(s + 5 * l), s6 = S.Load(s + 6 * l), s7 = S.Load(s + 7 * l);
        V s8 = S.Load(s + 8 * l), s9 = S.Load(s + 9 * l), sA = S.Load(s + 10 * l), sB = S.Load(s + 11 * l);
        V sC = S.Load(s + 12 * l), sD = S.Load(s + 13 * l), sE = S.Load(s + 14 * l), sF = S.Load(s + 15 * l);
        for (int t = 0; t < count; t++, u += l, v += l)
        {
            var d = S.Load(u);
            s0 = S.MulAdd(S.Broadcast(v[0]), d, s0); s1 = S.MulAdd(S.Broadcast(v[1]), d, s1);
            s2 = S.MulAdd(S.Broadcast(v[2]), d, s2); s3 = S.MulAdd(S.Broadcast(v[3]), d, s3);
            s4 = S.MulAdd(S.Broadcast(v[4]), d, s4); s5 = S.MulAdd(S.Broadcast(v[5]), d, s5);
            s6 = S.MulAdd(S.Broadcast(v[6]), d, s6); s7 = S.MulAdd(S.Broadcast(v[7]), d, s7);
            s8 = S.MulAdd(S.Broadcast(v[8]), d, s8); s9 = S.MulAdd(S.Broadcast(v[9]), d, s9);
            sA = S.MulAdd(S.Broadcast(v[10]), d, sA); sB = S.MulAdd(S.Broadcast(v[11]), d, sB);
            sC = S.MulAdd(S.Broadcast(v[12]), d, sC); sD = S.MulAdd(S.Broadcast(v[13]), d, sD);
            sE = S.MulAdd(S.Broadcast(v[14]), d, sE); sF = S.MulAdd(S.Broadcast(v[15]), d, sF);
        }
        S.Store(s, s0); S.Store(s + l, s1); S.Store(s + 2 * l, s2); S.Store(s + 3 * l, s3);
        S.Store(s + 4 * l, s4); S.Store(s + 5 * l, s5); S.Store(s + 6 * l, s6); S.Store(s + 7 * l, s7);
        S.Store(s + 8 * l, s8); S.Store(s + 9 * l, s9); S.Store(s + 10 * l, sA); S.Store(s + 11 * l, sB);
        S.Store(s + 12 * l, sC); S.Store(s + 13 * l, sD); S.Store(s + 14 * l, sE); S.Store(s + 15 * l, sF);
    }

    /// <summary>Eight input channels of <see cref="AccumulateOuter{V, S}"/>: one load of u feeds eight FMAs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Outer8<V, S>(float* s, float* u, float* v, int count) where V : struct where S : struct, ISimd<V>
    {
        int l = S.Lanes;
        V s0 = S.Load(s), s1 = S.Load(s + l), s2 = S.Load(s + 2 * l), s3 = S.Load(s + 3 * l);
        V s4 = S.Load(s + 4 * l), s5 = S.Load(s + 5 * l), s6 = S.Load(s + 6 * l), s7 = S.Load(s + 7 * l);
        for (int t = 0; t < count; t++, u += l, v += l)
        {
            var d = S.Load(u);
            s0 = S.MulAdd(S.Broadcast(v[0]), d, s0); s1 = S.MulAdd(S.Broadcast(v[1]), d, s1);
            s2 = S.MulAdd(S.Broadcast(v[2]), d, s2); s3 = S.MulAdd(S.Broadcast(v[3]), d, s3);
            s4 = S.MulAdd(S.Broadcast(v[4]), d, s4); s5 = S.MulAdd(S.Broadcast(v[5]), d, s5);
            s6 = S.MulAdd(S.Broadcast(v[6]), d, s6); s7 = S.MulAdd(S.Broadcast(v[7]), d, s7);
        }
        S.Store(s, s0); S.Store(s + l, s1); S.Store(s + 2 * l, s2); S.Store(s + 3 * l, s3);
        S.Store(s + 4 * l, s4); S.Store(s + 5 * l, s5); S.Store(s + 6 * l, s6); S.Store(s + 7 * l, s7);
    }

    /// <summary>The four input channels of a 128-bit block for <see cref="AccumulateOuter{V, S}"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Outer4<V, S>(float* s, float* u, float* v, int count) where V : struct where S : struct, ISimd<V>
    {
        int l = S.Lanes;
        V s0 = S.Load(s), s1 = S.Load(s + l), s2 = S.Load(s + 2 * l), s3 = S.Load(s + 3 * l);
        for (int t = 0; t < count; t++, u += l, v += l)
        {
            var d = S.Load(u);
            s0 = S.MulAdd(S.Broadcast(v[0]), d, s0); s1 = S.MulAdd(S.Broadcast(v[1]), d, s1);
            s2 = S.MulAdd(S.Broadcast(v[2]), d, s2); s3 = S.MulAdd(S.Broadcast(v[3]), d, s3);
        }
        S.Store(s, s0); S.Store(s + l, s1); S.Store(s + 2 * l, s2); S.Store(s + 3 * l, s3);
    }

    // ---- batch-wide: every tile of a pass of images transformed first, then the products over all of them ----

    // Floats in one pass's transformed tiles (16 MiB): a larger batch is taken in passes of whole images.
    private const int PassBudget = 1 << 22;

    /// <summary>
    /// Whether the tiles of many images are taken together: on maps of whole tiles too few to fill the per-image
    /// chunks of seven (a 4×4 map is one 3×3-kernel tile), where those chunks left most lanes idle and every image
    /// reloaded the weights. Measured on ResNet-18's 256-channel 4×4 layers (`conv resnet18`, AVX-512, 2 threads):
    /// forward 9.7 → 2.5–2.8 ms, against im2col + GEMM before.
    /// </summary>
    public static bool BatchWide(in ConvGeometry g)
    {
        int m = TileSize(g);
        return g.OutW < 7 && g.OutW % m == 0 && g.OutH % m == 0;
    }

    /// <summary>
    /// Images per pass of the batch-wide form and tiles per image. The pass is sized from the unpadded channels, so
    /// that every vector width sums the weight gradient over the same passes.
    /// </summary>
    private static (int Images, int Tiles) BatchWidePass(in ConvGeometry g)
    {
        int m = TileSize(g), tiles = g.OutH / m * (g.OutW / m);
        long perImage = (long)Positions * tiles * ((Math.Max(g.GroupInChannels, g.GroupOutChannels) + MaxLanes - 1) / MaxLanes * MaxLanes);
        return ((int)Math.Clamp(PassBudget / perImage, 1, g.Batch), tiles);
    }

    /// <summary>
    /// The per-image form's chunks of seven tiles, drawn from the flattened tiles of a pass's images: every image's
    /// tiles are transformed first, then each task takes a block of output channels through every chunk, so that
    /// block's transformed weights stay in cache while the chunks stream past.
    /// </summary>
    private static void ForwardBatchWide<V, S>(in ConvGeometry g, float[] x, ReadOnlySpan<float> w, float[]? bias, float[] y, int threads)
        where V : struct where S : struct, ISimd<V>
    {
        var geometry = g;
        int lanes = S.Lanes, icP = PaddedChannels(g, lanes), blocks = (g.GroupOutChannels + lanes - 1) / lanes;
        var (perPass, tiles) = BatchWidePass(g);
        long chunkFloats = (long)Positions * icP * ChunkTiles;
        var u = TransformWeights<V, S>(g, w, threads);
        var v = CpuWork.Scratch(ref t_v, ((long)perPass * tiles + ChunkTiles - 1) / ChunkTiles * chunkFloats);
        fixed (float* pv = v)
        {
            float* inputs = pv;
            for (int first = 0; first < g.Batch; first += perPass)
            {
                int start = first, images = Math.Min(perPass, g.Batch - first), chunks = (images * tiles + ChunkTiles - 1) / ChunkTiles;
                for (int group = 0; group < g.Groups; group++)
                {
                    int grp = group;
                    // The spare tiles of a short last chunk are computed and dropped: keep them finite.
                    new Span<float>(inputs + (chunks - 1) * chunkFloats, (int)chunkFloats).Clear();
                    CpuWork.For(images, threads, i => TransformImage<V, S>(geometry, x, start + i, grp, i * tiles, inputs,
                        ChunkTiles, chunkFloats, icP * ChunkTiles));
                    CpuWork.For(blocks, threads, block =>
                        ForwardBlockOverChunks<V, S>(geometry, u, inputs, bias, y, start, images * tiles, grp, block));
                }
            }
        }
    }

    /// <summary>
    /// Bᵀ·d·B for every tile of image n's group. Tiles, counted from <paramref name="firstTile"/>, go in groups of
    /// <paramref name="size"/> (<paramref name="groupStride"/> apart), channel blocks outermost within a group:
    /// chunks of seven for the products, or one tile per row (size 1, stride icP) of a GEMM's [tiles, channels].
    /// </summary>
    private static void TransformImage<V, S>(in ConvGeometry g, float[] x, int n, int group, int firstTile, float* v,
        int size, long groupStride, long positionStride) where V : struct where S : struct, ISimd<V>
    {
        int lanes = S.Lanes, m = TileSize(g), tilesX = g.OutW / m, tiles = tilesX * (g.OutH / m), icP = PaddedChannels(g, lanes);
        int pw = g.OutW + Alpha - m, ph = g.OutH + Alpha - m;
        var padded = PadChannelsLast<V, S>(g, x, n, group, pw, ph, icP);
        fixed (float* image = padded)
            for (int t = 0; t < tiles; t++)
            {
                int tile = firstTile + t;
                float* target = v + tile / size * groupStride + tile % size * lanes;
                for (int block = 0; block < icP / lanes; block++)
                    TransformInput<V, S>(image + ((long)t / tilesX * m * pw + t % tilesX * m) * icP + block * lanes, (long)pw * icP, icP,
                        target + block * size * lanes, positionStride);
            }
    }

    /// <summary>
    /// One block of output channels for <paramref name="count"/> flattened tiles from image <paramref name="firstImage"/>
    /// on: each chunk's 36 products, its output transforms, and the tiles' rows stored image by image.
    /// </summary>
    private static void ForwardBlockOverChunks<V, S>(in ConvGeometry g, float[] u, float* chunks, float[]? bias, float[] y,
        int firstImage, int count, int group, int block) where V : struct where S : struct, ISimd<V>
    {
        int lanes = S.Lanes, m = TileSize(g), tiles = g.OutW / m * (g.OutH / m), icP = PaddedChannels(g, lanes);
        int goc = g.GroupOutChannels, blocks = (goc + lanes - 1) / lanes, positionStride = icP * ChunkTiles;
        int channels = Math.Min(lanes, goc - block * lanes), firstChannel = group * goc + block * lanes;
        long plane = (long)g.OutH * g.OutW;
        var b = ChannelsLast.Block<V, S>(bias, firstChannel, channels);
        var products = CpuWork.Scratch(ref t_m, Positions * ChunkTiles * lanes);
        int rowStride = 32 * lanes;
        float* rows = stackalloc float[4 * 32 * MaxLanes];
        fixed (float* transformedWeights = u)
        fixed (float* product = products)
        fixed (float* output = y)
        {
            float* weights = transformedWeights + (long)(group * blocks + block) * Positions * icP * lanes;
            for (int first = 0; first < count; first += ChunkTiles)
            {
                float* chunk = chunks + (long)first / ChunkTiles * Positions * positionStride;
                for (int p = 0; p < Positions; p++)
                    Multiply<V, S>(weights + (long)p * icP * lanes, chunk + (long)p * positionStride, icP, product + p * ChunkTiles * lanes);
                int inChunk = Math.Min(ChunkTiles, count - first);
                for (int t = 0; t < inChunk; t++)
                    TransformOutput<V, S>(product + t * lanes, ChunkTiles * lanes, m, rows + t * m * lanes, rowStride);
                // The chunk's tiles, image by image: each image's share is a run of its tiles in row order.
                for (int t = 0, run; t < inChunk; t += run)
                {
                    int n = firstImage + (first + t) / tiles, tile = (first + t) % tiles;
                    run = Math.Min(inChunk - t, tiles - tile);
                    StoreChunk<V, S>(g, rows + t * m * lanes, rowStride, tile, run, b,
                        output + ((long)n * g.OutChannels + firstChannel) * plane, channels);
                }
            }
        }
    }

    /// <summary>
    /// Σ over the batch's tiles of (G·dy·Gᵀ) ⊙ (Bᵀ·x·B) for each position, as the product of the transformed inputs
    /// (tiles × input channels) and gradients (tiles × output channels): the tiles are the GEMM's reduction, summed
    /// in batch order and pass by pass whatever the thread count.
    /// </summary>
    private static void WeightGradientBatchWide<V, S>(in ConvGeometry g, float[] x, float[] dy, float[] dw, int threads)
        where V : struct where S : struct, ISimd<V>
    {
        var geometry = g;
        int icP = PaddedChannels(g, S.Lanes), ocP = PaddedOutChannels(g, S.Lanes);
        var (perPass, tiles) = BatchWidePass(g);
        var v = CpuWork.Scratch(ref t_v, (long)Positions * perPass * tiles * icP);
        var u = CpuWork.Scratch(ref t_m, (long)Positions * perPass * tiles * ocP);
        var sums = CpuWork.Scratch(ref t_gradientSums, (long)g.Groups * Positions * icP * ocP);
        fixed (float* pv = v, pu = u, ps = sums)
        {
            float* inputs = pv, gradients = pu, total = ps;
            for (int first = 0; first < g.Batch; first += perPass)
            {
                int start = first, images = Math.Min(perPass, g.Batch - first), count = images * tiles;
                float beta = first == 0 ? 0f : 1f;
                for (int group = 0; group < g.Groups; group++)
                {
                    int grp = group;
                    CpuWork.For(images, threads, i =>
                    {
                        TransformImage<V, S>(geometry, x, start + i, grp, i * tiles, inputs, 1, icP, (long)count * icP);
                        TransformImageGradient<V, S>(geometry, dy, start + i, grp, gradients + (long)i * tiles * ocP, (long)count * ocP);
                    });
                    CpuWork.For(Positions, threads, p => Sgemm.Multiply(true, false, icP, ocP, count, 1f,
                        inputs + (long)p * count * icP, icP, gradients + (long)p * count * ocP, ocP,
                        beta, total + ((long)grp * Positions + p) * icP * ocP, ocP, threads: 1));
                }
            }
            TransformWeightGradient<V, S>(g, total, dw, threads, batchWide: true);
        }
    }

    /// <summary>G·dy·Gᵀ for every tile of image n's group, laid out as in <see cref="TransformImage{V, S}"/>.</summary>
    private static void TransformImageGradient<V, S>(in ConvGeometry g, float[] dy, int n, int group, float* u, long positionStride)
        where V : struct where S : struct, ISimd<V>
    {
        int lanes = S.Lanes, m = TileSize(g), tilesX = g.OutW / m, tiles = tilesX * (g.OutH / m), ocP = PaddedOutChannels(g, lanes);
        var gradient = GradientChannelsLast<V, S>(g, dy, n, group, g.OutW, g.OutH, ocP);
        fixed (float* outputGradient = gradient)
            for (int t = 0; t < tiles; t++)
                for (int block = 0; block < ocP / lanes; block++)
                    TransformGradient<V, S>(outputGradient + ((long)t / tilesX * m * g.OutW + t % tilesX * m) * ocP + block * lanes,
                        (long)g.OutW * ocP, ocP, m, u + (long)t * ocP + block * lanes, positionStride);
    }

    /// <summary>
    /// dw[oc, c] = Aᵀ·S·A for the summed positions S: per image [group][position][output block][input block][c][lanes
    /// output channels], batch-wide [group][position][input channel][output channel].
    /// </summary>
    private static void TransformWeightGradient<V, S>(in ConvGeometry g, float* sums, float[] dw, int threads, bool batchWide = false)
        where V : struct where S : struct, ISimd<V>
    {
        int lanes = S.Lanes, r = g.KernelW, gic = g.GroupInChannels, goc = g.GroupOutChannels;
        int icP = PaddedChannels(g, lanes), ocBlocks = (goc + lanes - 1) / lanes, ocP = ocBlocks * lanes;
        long positionStride = (long)icP * ocP, groupSums = Positions * positionStride;
        long blockStride = batchWide ? lanes : (long)icP * lanes, channelStride = batchWide ? ocP : lanes;
        // A task per block of output channels: each writes its own rows of dw.
        CpuWork.For(g.Groups * ocBlocks, threads, task =>
        {
            int group = task / ocBlocks, outBlock = task % ocBlocks, channels = Math.Min(lanes, goc - outBlock * lanes);
            float* rows = stackalloc float[5 * Alpha * MaxLanes];
            float* taps = stackalloc float[5 * 5 * MaxLanes];
            for (int c = 0; c < gic; c++)
            {
                float* s = sums + group * groupSums + outBlock * blockStride + c * channelStride;
                for (int j = 0; j < Alpha; j++)
                    Combine<V, S>(s + j * positionStride, Alpha * positionStride, r, rows + j * lanes, Alpha * lanes);
                for (int a = 0; a < r; a++)
                    Combine<V, S>(rows + a * Alpha * lanes, lanes, r, taps + a * r * lanes, lanes);
                for (int lane = 0; lane < channels; lane++)
                {
                    int target = ((group * goc + outBlock * lanes + lane) * gic + c) * r * r;
                    for (int tap = 0; tap < r * r; tap++) dw[target + tap] = taps[tap * lanes + lane];
                }
            }
        });
    }

    /// <summary>
    /// The first <paramref name="rows"/> rows of Aᵀ (2 or 4 for the forward output, 5 or 3 for the weight gradient's)
    /// applied to six vectors: row a is pᵢᵃ for the points 0, 1, −1, 2, −2, and the ∞ column feeds only the last row.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Combine<V, S>(float* s, long stride, int rows, float* target, long targetStride) where V : struct where S : struct, ISimd<V>
    {
        var s0 = S.Load(s); var s1 = S.Load(s + stride); var s2 = S.Load(s + 2 * stride);
        var s3 = S.Load(s + 3 * stride); var s4 = S.Load(s + 4 * stride); var s5 = S.Load(s + 5 * stride);
        V sum12 = S.Add(s1, s2), difference12 = S.Subtract(s1, s2), sum34 = S.Add(s3, s4), difference34 = S.Subtract(s3, s4);
        // Row 0 is all ones but for ∞; row a > 0 is (−1)ᵃ-signed: odd rows take the differences, even rows the sums,
        // the ±2 points' scaled by 2ᵃ.
        S.Store(target, S.Add(S.Add(s0, sum12), sum34));
        for (int a = 1; a < rows; a++)
        {
            var scale = S.Broadcast(1 << a);
            var value = a % 2 == 1 ? S.MulAdd(scale, difference34, difference12) : S.MulAdd(scale, sum34, sum12);
            S.Store(target + a * targetStride, a == rows - 1 ? S.Add(value, s5) : value);
        }
    }

    [ThreadStatic] private static float[]? t_transformedWeights, t_padded, t_v, t_m, t_gradient, t_gradientSums;
}
