using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ml.Cnn.Backends.Cpu;

/// <summary>
/// Winograd convolution on 6×6 input tiles (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks",
/// 2016), all on the points 0, ±1, ±2 and ∞ so that one input transform serves every variant: F(2×2, 5×5) costs 36
/// multiply-adds per input channel for a 2×2 output tile instead of 4·25 = 100, F(4×4, 3×3) 36 for a 4×4 tile instead
/// of 16·9 = 144. Stride 1 without dilation, on AVX-512. Backward-data is the same forward on the flipped kernel; the
/// weight gradients are F(5×5, 2×2) and F(3×3, 4×4) (see <see cref="WeightGradient"/>). The sums are rounded
/// differently from a direct convolution's: the error measured 0.6–5·10⁻⁶ of Σ|x·w| or Σ|x·dy| (a direct sum's is
/// near 2·10⁻⁷), far below what training notices.
/// <para>
/// Per image: the input is copied zero-padded in channels-last order, so that the input transform works on sixteen
/// channels per vector; seven tiles at a time are transformed into V[position][16-channel block][tile][16]; for each
/// block of sixteen output channels and each of the 36 positions, M = U·V is a product with the output channels in
/// the lanes (U: the transformed weights), seven tiles in seven accumulators; the output transform takes M back to
/// the tile's pixels. Every sum runs in a fixed order, whatever the thread count.
/// </para>
/// </summary>
// Every stack buffer here is written before it is read: zeroing them cost a store per vector on each tile.
[SkipLocalsInit]
internal static unsafe class WinogradConvolution
{
    private const int Lanes = 16, Alpha = 6, Positions = Alpha * Alpha;
    private const int ChunkTiles = 7;

    // The finite interpolation points and the scale each row of G carries, chosen so that the input transform Bᵀ has
    // small integer entries (it is written out in Combine6); G's rows are a point's scale times (1, p, p², …).
    private static readonly double[] Points = [0, 1, -1, 2, -2];
    private static readonly double[] Scales = [1.0 / 4, 1.0 / 6, 1.0 / 6, 1.0 / 24, 1.0 / 24];

    /// <summary>
    /// Whether Winograd handles this geometry, for every pass: 5×5 and 3×3 kernels with 16 or more channels in and out
    /// per group, on maps 7 or more wide. Measured against the direct kernels (2 threads) it ran 1.3–2.2× on every
    /// such shape tried but one, the 5×5 forward on a 7-wide map (1.0×); on a 5-wide map it lost (0.7–0.8×).
    /// </summary>
    public static bool Applies(in ConvGeometry g) => Sgemm.UseWideKernel && Fits(g);

    /// <summary>Whether the Winograd kernels are written for this geometry, whatever the processor.</summary>
    public static bool Fits(in ConvGeometry g) =>
        g.StrideH == 1 && g.StrideW == 1 && g.DilationH == 1 && g.DilationW == 1
        && g.KernelH == g.KernelW && g.KernelW is 3 or 5
        && g.GroupInChannels >= Lanes && g.GroupOutChannels >= Lanes && g.OutW >= 7;

    /// <summary>y = conv(x, w) + b for geometries where <see cref="Applies"/> holds.</summary>
    public static void Forward(in ConvGeometry g, float[] x, ReadOnlySpan<float> w, float[]? bias, float[] y, int threads)
    {
        var geometry = g;
        int m = TileSize(g), tilesY = (g.OutH + m - 1) / m, tilesX = (g.OutW + m - 1) / m;
        int chunks = (tilesY * tilesX + ChunkTiles - 1) / ChunkTiles, images = g.Batch * g.Groups;
        var transformed = TransformWeights(g, w);
        // As in the direct kernel: a task is one image (one group of it); its chunks of tiles are split over tasks
        // only where the images alone would leave threads idle.
        int splits = Math.Clamp(threads / images, 1, chunks);
        CpuWork.For(images * splits, threads, task =>
        {
            int image = task / splits, split = task % splits;
            ForwardImage(geometry, x, transformed, bias, y, image / geometry.Groups, image % geometry.Groups,
                chunks * split / splits, chunks * (split + 1) / splits);
        });
    }

    /// <summary>Output pixels per tile side: 2 for a 5×5 kernel, 4 for a 3×3 one (tile + kernel − 1 = 6).</summary>
    private static int TileSize(in ConvGeometry g) => Alpha + 1 - g.KernelW;

    /// <summary>Input channels of a group rounded up to whole vectors (the extra ones are zero).</summary>
    private static int PaddedChannels(in ConvGeometry g) => (g.GroupInChannels + Lanes - 1) / Lanes * Lanes;

    /// <summary>
    /// U = G·w·Gᵀ for every output/input channel pair, as [group][16-channel output block][position][input
    /// channel][16], sixteen output channels per vector (from the direct kernel's packing of the weights).
    /// </summary>
    private static float[] TransformWeights(in ConvGeometry g, ReadOnlySpan<float> w)
    {
        int r = g.KernelW, gic = g.GroupInChannels, icP = PaddedChannels(g), taps = r * r;
        int blocks = (g.GroupOutChannels + Lanes - 1) / Lanes, length = g.Groups * blocks * Positions * icP * Lanes;
        var u = CpuWork.Scratch(ref t_transformedWeights, length);
        if (icP != gic) u.AsSpan(0, length).Clear();
        float* gm = stackalloc float[Alpha * r];
        for (int i = 0; i < Alpha; i++)
            for (int j = 0; j < r; j++)
                gm[i * r + j] = i == Alpha - 1 ? (j == r - 1 ? 1 : 0) : (float)(Scales[i] * Math.Pow(Points[i], j));
        float* half = stackalloc float[Alpha * 5 * Lanes];
        fixed (float* packed = DirectConvolution.PackWeights(g, w, Lanes))
        fixed (float* transformed = u)
            for (int groupBlock = 0; groupBlock < g.Groups * blocks; groupBlock++)
                for (int c = 0; c < gic; c++)
                {
                    float* taps0 = packed + ((long)groupBlock * gic + c) * taps * Lanes;
                    for (int i = 0; i < Alpha; i++)
                        for (int j = 0; j < r; j++)
                        {
                            var sum = Vector512<float>.Zero;
                            for (int k = 0; k < r; k++) sum = Avx512F.FusedMultiplyAdd(Vector512.Create(gm[i * r + k]), Vector512.Load(taps0 + (k * r + j) * Lanes), sum);
                            Vector512.Store(sum, half + (i * r + j) * Lanes);
                        }
                    for (int i = 0; i < Alpha; i++)
                        for (int l = 0; l < Alpha; l++)
                        {
                            var sum = Vector512<float>.Zero;
                            for (int j = 0; j < r; j++) sum = Avx512F.FusedMultiplyAdd(Vector512.Load(half + (i * r + j) * Lanes), Vector512.Create(gm[l * r + j]), sum);
                            Vector512.Store(sum, transformed + (((long)groupBlock * Positions + i * Alpha + l) * icP + c) * Lanes);
                        }
                }
        return u;
    }

    /// <summary>
    /// One image's chunks of tiles: a chunk is up to seven consecutive tiles in row order, so its outputs are m rows
    /// of up to 7·m pixels in each tile row it touches, which leave through 16×16 transposes as row segments.
    /// </summary>
    private static void ForwardImage(in ConvGeometry g, float[] x, float[] u, float[]? bias, float[] y, int n, int group,
        int firstChunk, int endChunk)
    {
        int m = TileSize(g), tilesY = (g.OutH + m - 1) / m, tilesX = (g.OutW + m - 1) / m, tiles = tilesY * tilesX;
        int icP = PaddedChannels(g), goc = g.GroupOutChannels, blocks = (goc + Lanes - 1) / Lanes;
        int pw = tilesX * m + Alpha - m, ph = tilesY * m + Alpha - m, positionStride = icP * ChunkTiles;
        long plane = (long)g.OutH * g.OutW;
        var padded = PadChannelsLast(g, x, n, group, pw, ph, icP);
        var v = CpuWork.Scratch(ref t_v, Positions * positionStride);
        var products = CpuWork.Scratch(ref t_m, Positions * ChunkTiles * Lanes);
        // Up to four output rows of 32 pixels (7·m used) by sixteen channels.
        const int rowStride = 2 * Lanes * Lanes;
        float* rows = stackalloc float[4 * rowStride];
        fixed (float* image = padded)
        fixed (float* transformedInput = v)
        fixed (float* product = products)
        fixed (float* transformedWeights = u)
        fixed (float* output = y)
            for (int chunk = firstChunk; chunk < endChunk; chunk++)
            {
                int firstTile = chunk * ChunkTiles, count = Math.Min(ChunkTiles, tiles - firstTile);
                for (int t = 0; t < ChunkTiles; t++)
                    for (int block = 0; block < icP / Lanes; block++)
                    {
                        float* target = transformedInput + (block * ChunkTiles + t) * Lanes;
                        if (t < count)
                            TransformInput(image + ((long)(firstTile + t) / tilesX * m * pw + (firstTile + t) % tilesX * m) * icP + block * Lanes,
                                (long)pw * icP, icP, target, positionStride);
                        else
                            // A short chunk: the spare tiles' products are computed and dropped; keep them finite.
                            for (int p = 0; p < Positions; p++) Vector512.Store(Vector512<float>.Zero, target + (long)p * positionStride);
                    }
                for (int block = 0; block < blocks; block++)
                {
                    float* weights = transformedWeights + (long)(group * blocks + block) * Positions * icP * Lanes;
                    for (int p = 0; p < Positions; p++)
                        Multiply(weights + (long)p * icP * Lanes, transformedInput + (long)p * positionStride, icP, product + p * ChunkTiles * Lanes);
                    for (int t = 0; t < count; t++)
                        TransformOutput(product + t * Lanes, ChunkTiles * Lanes, m, rows + t * m * Lanes, rowStride);
                    int channels = Math.Min(Lanes, goc - block * Lanes), firstChannel = group * goc + block * Lanes;
                    StoreChunk(g, rows, rowStride, firstTile, count, ChannelsLast.Block<Vector512<float>, W512>(bias, firstChannel, channels),
                        output + ((long)n * g.OutChannels + firstChannel) * plane, channels);
                }
            }
    }

    /// <summary>
    /// Adds the bias to a chunk's transformed outputs (rows[a][pixel][16], <paramref name="rowStride"/> apart) and
    /// writes them to the first of <paramref name="channels"/> output planes at <paramref name="output"/>: the chunk's
    /// tiles in each tile row it touches are one run of pixels in every output row, leaving through 16×16 transposes.
    /// </summary>
    private static void StoreChunk(in ConvGeometry g, float* rows, int rowStride, int firstTile, int count, Vector512<float> bias,
        float* output, int channels)
    {
        int m = TileSize(g), tilesX = (g.OutW + m - 1) / m;
        long plane = (long)g.OutH * g.OutW;
        for (int t = 0, run; t < count; t += run)
        {
            int tx = (firstTile + t) % tilesX, oy = (firstTile + t) / tilesX * m, ox = tx * m;
            run = Math.Min(count - t, tilesX - tx);
            int width = Math.Min(run * m, g.OutW - ox), height = Math.Min(m, g.OutH - oy);
            for (int a = 0; a < height; a++)
            {
                float* row = rows + a * rowStride + t * m * Lanes;
                for (int p = 0; p < width; p++) Vector512.Store(Vector512.Load(row + p * Lanes) + bias, row + p * Lanes);
                for (int first = 0; first < width; first += Lanes)
                {
                    int pixels = Math.Min(Lanes, width - first);
                    ChannelsLast.ToPlanes<Vector512<float>, W512>(row + first * Lanes, pixels,
                        output + (long)(oy + a) * g.OutW + ox + first, plane, channels);
                }
            }
        }
    }

    /// <summary>Image n's channels of one group as [row][column][channel], zero-padded on every side and to <paramref name="icP"/> channels.</summary>
    private static float[] PadChannelsLast(in ConvGeometry g, float[] x, int n, int group, int pw, int ph, int icP)
    {
        int gic = g.GroupInChannels, length = ph * pw * icP;
        var buffer = CpuWork.Scratch(ref t_padded, length);
        buffer.AsSpan(0, length).Clear();
        fixed (float* source = &x[(n * g.InChannels + group * gic) * g.InH * g.InW])
        fixed (float* target = &buffer[(g.PadH * pw + g.PadW) * icP])
            for (int block = 0; block < icP / Lanes; block++)
                ChannelsLast.Copy<Vector512<float>, W512>(source + (long)block * Lanes * g.InH * g.InW, g.InH * g.InW, Math.Min(Lanes, gic - block * Lanes),
                    g.InH, g.InW, target + block * Lanes, (long)pw * icP, icP);
        return buffer;
    }

    /// <summary>
    /// V = Bᵀ·d·B for sixteen channels of one 6×6 input tile: <paramref name="d"/> points at its top-left pixel,
    /// rows <paramref name="rowStride"/> apart, pixels <paramref name="pixelStride"/>; position p of the result goes to
    /// <paramref name="v"/> + p·<paramref name="positionStride"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformInput(float* d, long rowStride, int pixelStride, float* v, int positionStride)
    {
        float* columns = stackalloc float[Positions * Lanes];
        for (int j = 0; j < Alpha; j++)
            Combine6(d + j * pixelStride, rowStride, columns + j * Lanes, Alpha * Lanes);
        for (int i = 0; i < Alpha; i++)
            Combine6(columns + i * Alpha * Lanes, Lanes, v + (long)i * Alpha * positionStride, positionStride);
    }

    /// <summary>Bᵀ·(s₀ … s₅) for six vectors <paramref name="stride"/> apart, Bᵀ's rows being the integer rows of the 0, ±1, ±2, ∞ points.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Combine6(float* s, long stride, float* target, long targetStride)
    {
        var d0 = Vector512.Load(s); var d1 = Vector512.Load(s + stride); var d2 = Vector512.Load(s + 2 * stride);
        var d3 = Vector512.Load(s + 3 * stride); var d4 = Vector512.Load(s + 4 * stride); var d5 = Vector512.Load(s + 5 * stride);
        var four = Vector512.Create(4f); var two = Vector512.Create(2f); var five = Vector512.Create(5f);
        Vector512.Store(Avx512F.FusedMultiplyAdd(four, d0, d4) - five * d2, target);
        Vector512.Store(Avx512F.FusedMultiplyAdd(four, d1 + d2, -(d3 + d4)), target + targetStride);
        Vector512.Store(Avx512F.FusedMultiplyAdd(four, d2 - d1, d3 - d4), target + 2 * targetStride);
        Vector512.Store(Avx512F.FusedMultiplyAdd(two, d3 - d1, d4 - d2), target + 3 * targetStride);
        Vector512.Store(Avx512F.FusedMultiplyAdd(two, d1 - d3, d4 - d2), target + 4 * targetStride);
        Vector512.Store(Avx512F.FusedMultiplyAdd(four, d1, d5) - five * d3, target + 5 * targetStride);
    }

    /// <summary>
    /// M[position] for seven tiles and sixteen output channels: Σ over input channels of U[channel] · V[channel, tile],
    /// U's vector loaded once for seven FMAs, each with one value of V broadcast.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Multiply(float* u, float* v, int icP, float* m)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default;
        for (int block = 0; block < icP; block += Lanes, v += ChunkTiles * Lanes)
            for (int c = 0; c < Lanes; c++, u += Lanes)
            {
                var w = Vector512.Load(u);
                a0 = Avx512F.FusedMultiplyAdd(Vector512.Create(v[c]), w, a0);
                a1 = Avx512F.FusedMultiplyAdd(Vector512.Create(v[c + Lanes]), w, a1);
                a2 = Avx512F.FusedMultiplyAdd(Vector512.Create(v[c + 2 * Lanes]), w, a2);
                a3 = Avx512F.FusedMultiplyAdd(Vector512.Create(v[c + 3 * Lanes]), w, a3);
                a4 = Avx512F.FusedMultiplyAdd(Vector512.Create(v[c + 4 * Lanes]), w, a4);
                a5 = Avx512F.FusedMultiplyAdd(Vector512.Create(v[c + 5 * Lanes]), w, a5);
                a6 = Avx512F.FusedMultiplyAdd(Vector512.Create(v[c + 6 * Lanes]), w, a6);
            }
        Vector512.Store(a0, m); Vector512.Store(a1, m + Lanes); Vector512.Store(a2, m + 2 * Lanes); Vector512.Store(a3, m + 3 * Lanes);
        Vector512.Store(a4, m + 4 * Lanes); Vector512.Store(a5, m + 5 * Lanes); Vector512.Store(a6, m + 6 * Lanes);
    }

    /// <summary>
    /// Y = Aᵀ·M·A for one tile: M's 36 positions are <paramref name="positionStride"/> apart; the m×m result's rows
    /// go <paramref name="rowStride"/> apart from <paramref name="y"/>, its pixels as consecutive vectors.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformOutput(float* mm, long positionStride, int m, float* y, int rowStride)
    {
        float* rows = stackalloc float[4 * Alpha * Lanes];
        for (int j = 0; j < Alpha; j++)
            Combine(mm + j * positionStride, Alpha * positionStride, m, rows + j * Lanes, Alpha * Lanes);
        for (int a = 0; a < m; a++)
            Combine(rows + a * Alpha * Lanes, Lanes, m, y + a * rowStride, Lanes);
    }

    // ---- weight gradient: F(5×5, 2×2) and F(3×3, 4×4) ----

    // Images per task of the fixed-order sum (CpuWork.SumOverImages): each task keeps its own 36 position products.
    private const int ImagesPerTask = 8;
    // Tiles transformed together before their products are accumulated (two tile rows of a 14-wide map).
    private const int GradientChunkTiles = 14;

    /// <summary>
    /// dw for geometries where <see cref="Applies"/> holds. An m×m tile of the output gradient
    /// correlated with its 6×6 input tile gives the tile's share of every tap, which is F(r×r, m×m) on the same points
    /// (r the kernel size): dw = Aᵀ·[Σ over tiles of (G·dy·Gᵀ) ⊙ (Bᵀ·x·B)]·A, the sum taken before the output
    /// transform. For each of the 36 positions that sum is a product of output by input channels with the tiles as its
    /// reduction: 36 multiply-adds per tile and channel pair instead of m²·r² (100 or 144). The bias gradient
    /// <paramref name="db"/>, when given, is summed from the same channels-last copy of dy.
    /// </summary>
    public static void WeightGradient(in ConvGeometry g, float[] x, float[] dy, float[] dw, float[]? db, int threads)
    {
        var geometry = g;
        int icBlocks = PaddedChannels(g) / Lanes, ocBlocks = (g.GroupOutChannels + Lanes - 1) / Lanes;
        // Per task: the position products of every group, then (with a bias) the bias sums [group][block][16].
        int groupSums = Positions * ocBlocks * icBlocks * Lanes * Lanes, weightSums = g.Groups * groupSums;
        var sums = CpuWork.SumOverImages(g.Batch, ImagesPerTask, weightSums + (db is null ? 0 : g.Groups * ocBlocks * Lanes), threads,
            ref t_gradientSums, (n, partial, offset) =>
            {
                for (int group = 0; group < geometry.Groups; group++)
                    AccumulateImage(geometry, x, dy, n, group, partial, offset + group * groupSums,
                        db is null ? -1 : offset + weightSums + group * ocBlocks * Lanes);
            });
        fixed (float* total = sums) TransformWeightGradient(g, total, dw);
        if (db is null) return;
        for (int group = 0; group < g.Groups; group++)
            for (int oc = 0; oc < g.GroupOutChannels; oc++)
                db[group * g.GroupOutChannels + oc] = sums[weightSums + group * ocBlocks * Lanes + oc];
    }

    /// <summary>
    /// Image n's share of one group's position products (from <paramref name="offset"/>) and, unless
    /// <paramref name="biasOffset"/> is negative, of its bias sums (its channels-last output gradient summed over pixels).
    /// </summary>
    private static void AccumulateImage(in ConvGeometry g, float[] x, float[] dy, int n, int group, float[] sums, int offset, int biasOffset)
    {
        int m = TileSize(g), tilesY = (g.OutH + m - 1) / m, tilesX = (g.OutW + m - 1) / m, tiles = tilesY * tilesX;
        int icP = PaddedChannels(g), icBlocks = icP / Lanes, ocBlocks = (g.GroupOutChannels + Lanes - 1) / Lanes, ocP = ocBlocks * Lanes;
        int pw = tilesX * m + Alpha - m, ph = tilesY * m + Alpha - m, gw = tilesX * m;
        var padded = PadChannelsLast(g, x, n, group, pw, ph, icP);
        var gradient = GradientChannelsLast(g, dy, n, group, gw, tilesY * m, ocP);
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
                        ChannelsLast.AddPixels<Vector512<float>, W512>(biasSums + block * Lanes, outputGradient + block * Lanes, tilesY * m * gw, ocP);
            for (int first = 0; first < tiles; first += GradientChunkTiles)
            {
                int count = Math.Min(GradientChunkTiles, tiles - first);
                for (int t = 0; t < count; t++)
                {
                    int ty = (first + t) / tilesX, tx = (first + t) % tilesX;
                    for (int block = 0; block < icBlocks; block++)
                        TransformInput(image + ((long)ty * m * pw + tx * m) * icP + block * Lanes, (long)pw * icP, icP,
                            transformedInput + (block * GradientChunkTiles + t) * Lanes, icP * GradientChunkTiles);
                    for (int block = 0; block < ocBlocks; block++)
                        TransformGradient(outputGradient + ((long)ty * m * gw + tx * m) * ocP + block * Lanes, (long)gw * ocP, ocP, m,
                            transformedGradient + (block * GradientChunkTiles + t) * Lanes, ocP * GradientChunkTiles);
                }
                for (int p = 0; p < Positions; p++)
                    for (int outBlock = 0; outBlock < ocBlocks; outBlock++)
                        for (int inBlock = 0; inBlock < icBlocks; inBlock++)
                            AccumulateOuter(s + ((long)(p * ocBlocks + outBlock) * icBlocks + inBlock) * Lanes * Lanes,
                                transformedGradient + ((long)p * ocBlocks + outBlock) * GradientChunkTiles * Lanes,
                                transformedInput + ((long)p * icBlocks + inBlock) * GradientChunkTiles * Lanes, count);
            }
        }
    }

    /// <summary>Image n's output gradient for one group as [row][column][channel], zero past the map (odd sizes fill whole tiles) and the channels.</summary>
    private static float[] GradientChannelsLast(in ConvGeometry g, float[] dy, int n, int group, int gw, int gh, int ocP)
    {
        int goc = g.GroupOutChannels, length = gh * gw * ocP, plane = g.OutH * g.OutW;
        var buffer = CpuWork.Scratch(ref t_gradient, length);
        buffer.AsSpan(0, length).Clear();
        fixed (float* source = &dy[(n * g.OutChannels + group * goc) * plane])
        fixed (float* target = buffer)
            for (int block = 0; block < ocP / Lanes; block++)
                ChannelsLast.Copy<Vector512<float>, W512>(source + (long)block * Lanes * plane, plane, Math.Min(Lanes, goc - block * Lanes),
                    g.OutH, g.OutW, target + block * Lanes, (long)gw * ocP, ocP);
        return buffer;
    }

    /// <summary>G·k·Gᵀ for sixteen channels of one m×m gradient tile (pixels as in <see cref="TransformInput"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformGradient(float* k, long rowStride, int pixelStride, int m, float* target, int positionStride)
    {
        float* columns = stackalloc float[Alpha * 4 * Lanes];
        for (int b = 0; b < m; b++)
            Expand(k + b * pixelStride, rowStride, m, columns + b * Lanes, m * Lanes);
        for (int i = 0; i < Alpha; i++)
            Expand(columns + i * m * Lanes, Lanes, m, target + (long)i * Alpha * positionStride, positionStride);
    }

    /// <summary>
    /// G·(x₀ … x_{m−1}) for m = 2 or 4 vectors <paramref name="stride"/> apart: G's rows are the points' scales
    /// times (1, p, p², …), the ∞ row picks the last.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Expand(float* x, long stride, int m, float* target, long targetStride)
    {
        var x0 = Vector512.Load(x);
        Vector512<float> even, odd, evenTwice, oddTwice, last;
        if (m == 2)
        {
            last = Vector512.Load(x + stride);
            (even, odd, evenTwice, oddTwice) = (x0, last, x0, last + last);
        }
        else
        {
            var x1 = Vector512.Load(x + stride); var x2 = Vector512.Load(x + 2 * stride); last = Vector512.Load(x + 3 * stride);
            even = x0 + x2;
            odd = x1 + last;
            evenTwice = Avx512F.FusedMultiplyAdd(Vector512.Create(4f), x2, x0);
            oddTwice = Avx512F.FusedMultiplyAdd(Vector512.Create(8f), last, x1 + x1);
        }
        Vector512.Store(x0 * Vector512.Create(1f / 4), target);
        Vector512.Store((even + odd) * Vector512.Create(1f / 6), target + targetStride);
        Vector512.Store((even - odd) * Vector512.Create(1f / 6), target + 2 * targetStride);
        Vector512.Store((evenTwice + oddTwice) * Vector512.Create(1f / 24), target + 3 * targetStride);
        Vector512.Store((evenTwice - oddTwice) * Vector512.Create(1f / 24), target + 4 * targetStride);
        Vector512.Store(last, target + 5 * targetStride);
    }

    /// <summary>
    /// s[c] += Σ over <paramref name="count"/> tiles of v[tile, c] · u[tile] for sixteen input channels c, each s[c]
    /// a vector of sixteen output channels: one load of u feeds sixteen FMAs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AccumulateOuter(float* s, float* u, float* v, int count)
    {
        Vector512<float> s0 = Vector512.Load(s), s1 = Vector512.Load(s + 16), s2 = Vector512.Load(s + 32), s3 = Vector512.Load(s + 48);
        Vector512<float> s4 = Vector512.Load(s + 64), s5 = Vector512.Load(s + 80), s6 = Vector512.Load(s + 96), s7 = Vector512.Load(s + 112);
        Vector512<float> s8 = Vector512.Load(s + 128), s9 = Vector512.Load(s + 144), sA = Vector512.Load(s + 160), sB = Vector512.Load(s + 176);
        Vector512<float> sC = Vector512.Load(s + 192), sD = Vector512.Load(s + 208), sE = Vector512.Load(s + 224), sF = Vector512.Load(s + 240);
        for (int t = 0; t < count; t++, u += Lanes, v += Lanes)
        {
            var d = Vector512.Load(u);
            s0 = Avx512F.FusedMultiplyAdd(Vector512.Create(v[0]), d, s0); s1 = Avx512F.FusedMultiplyAdd(Vector512.Create(v[1]), d, s1);
            s2 = Avx512F.FusedMultiplyAdd(Vector512.Create(v[2]), d, s2); s3 = Avx512F.FusedMultiplyAdd(Vector512.Create(v[3]), d, s3);
            s4 = Avx512F.FusedMultiplyAdd(Vector512.Create(v[4]), d, s4); s5 = Avx512F.FusedMultiplyAdd(Vector512.Create(v[5]), d, s5);
            s6 = Avx512F.FusedMultiplyAdd(Vector512.Create(v[6]), d, s6); s7 = Avx512F.FusedMultiplyAdd(Vector512.Create(v[7]), d, s7);
            s8 = Avx512F.FusedMultiplyAdd(Vector512.Create(v[8]), d, s8); s9 = Avx512F.FusedMultiplyAdd(Vector512.Create(v[9]), d, s9);
            sA = Avx512F.FusedMultiplyAdd(Vector512.Create(v[10]), d, sA); sB = Avx512F.FusedMultiplyAdd(Vector512.Create(v[11]), d, sB);
            sC = Avx512F.FusedMultiplyAdd(Vector512.Create(v[12]), d, sC); sD = Avx512F.FusedMultiplyAdd(Vector512.Create(v[13]), d, sD);
            sE = Avx512F.FusedMultiplyAdd(Vector512.Create(v[14]), d, sE); sF = Avx512F.FusedMultiplyAdd(Vector512.Create(v[15]), d, sF);
        }
        Vector512.Store(s0, s); Vector512.Store(s1, s + 16); Vector512.Store(s2, s + 32); Vector512.Store(s3, s + 48);
        Vector512.Store(s4, s + 64); Vector512.Store(s5, s + 80); Vector512.Store(s6, s + 96); Vector512.Store(s7, s + 112);
        Vector512.Store(s8, s + 128); Vector512.Store(s9, s + 144); Vector512.Store(sA, s + 160); Vector512.Store(sB, s + 176);
        Vector512.Store(sC, s + 192); Vector512.Store(sD, s + 208); Vector512.Store(sE, s + 224); Vector512.Store(sF, s + 240);
    }

    /// <summary>dw[oc, c] = Aᵀ·S·A for the summed positions S [group][position][output block][input block][c][16 output channels].</summary>
    private static void TransformWeightGradient(in ConvGeometry g, float* sums, float[] dw)
    {
        int r = g.KernelW, gic = g.GroupInChannels, goc = g.GroupOutChannels, icBlocks = PaddedChannels(g) / Lanes, ocBlocks = (goc + Lanes - 1) / Lanes;
        long positionStride = (long)ocBlocks * icBlocks * Lanes * Lanes, groupSums = Positions * positionStride;
        float* rows = stackalloc float[5 * Alpha * Lanes];
        float* taps = stackalloc float[5 * 5 * Lanes];
        for (int group = 0; group < g.Groups; group++)
            for (int outBlock = 0; outBlock < ocBlocks; outBlock++)
                for (int c = 0; c < gic; c++)
                {
                    float* s = sums + group * groupSums + ((long)outBlock * icBlocks + c / Lanes) * Lanes * Lanes + c % Lanes * Lanes;
                    for (int j = 0; j < Alpha; j++)
                        Combine(s + j * positionStride, Alpha * positionStride, r, rows + j * Lanes, Alpha * Lanes);
                    for (int a = 0; a < r; a++)
                        Combine(rows + a * Alpha * Lanes, Lanes, r, taps + a * r * Lanes, Lanes);
                    int channels = Math.Min(Lanes, goc - outBlock * Lanes);
                    for (int lane = 0; lane < channels; lane++)
                    {
                        int target = ((group * goc + outBlock * Lanes + lane) * gic + c) * r * r;
                        for (int tap = 0; tap < r * r; tap++) dw[target + tap] = taps[tap * Lanes + lane];
                    }
                }
    }

    /// <summary>
    /// The first <paramref name="rows"/> rows of Aᵀ (2 or 4 for the forward output, 5 or 3 for the weight gradient's)
    /// applied to six vectors: row a is pᵢᵃ for the points 0, 1, −1, 2, −2, and the ∞ column feeds only the last row.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Combine(float* s, long stride, int rows, float* target, long targetStride)
    {
        var s0 = Vector512.Load(s); var s1 = Vector512.Load(s + stride); var s2 = Vector512.Load(s + 2 * stride);
        var s3 = Vector512.Load(s + 3 * stride); var s4 = Vector512.Load(s + 4 * stride); var s5 = Vector512.Load(s + 5 * stride);
        Vector512<float> sum12 = s1 + s2, difference12 = s1 - s2, sum34 = s3 + s4, difference34 = s3 - s4;
        // Row 0 is all ones but for ∞; row a > 0 is (−1)ᵃ-signed: odd rows take the differences, even rows the sums,
        // the ±2 points' scaled by 2ᵃ.
        Vector512.Store(s0 + sum12 + sum34, target);
        for (int a = 1; a < rows; a++)
        {
            var scale = Vector512.Create((float)(1 << a));
            var value = a % 2 == 1 ? Avx512F.FusedMultiplyAdd(scale, difference34, difference12) : Avx512F.FusedMultiplyAdd(scale, sum34, sum12);
            Vector512.Store(a == rows - 1 ? value + s5 : value, target + a * targetStride);
        }
    }

    [ThreadStatic] private static float[]? t_transformedWeights, t_padded, t_v, t_m, t_gradient, t_gradientSums;

}
