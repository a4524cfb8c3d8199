using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ml.Cnn.Backends.Cpu;

/// <summary>
/// Between channel planes (NCHW) and channels-last blocks of one vector of channels, for kernels that keep channels
/// in the lanes of a register. On AVX-512 through 16×16 transposes in registers, since element-wise copies with a
/// stride of a vector or more cost as much as the arithmetic they feed; at the narrower widths element by element.
/// </summary>
internal static unsafe class ChannelsLast
{
    private const int Lanes = 16;

    /// <summary>
    /// Up to S.Lanes planes of height × width, <paramref name="plane"/> floats apart, in channels-last order: pixel
    /// (row, column) becomes S.Lanes consecutive floats at target + row·rowStride + column·pixelStride, the channels
    /// past <paramref name="channels"/> zero.
    /// </summary>
    public static void Copy<V, S>(float* source, long plane, int channels, int height, int width, float* target, long rowStride, int pixelStride)
        where V : struct where S : struct, ISimd<V>
    {
        if (typeof(S) == typeof(W512) || typeof(S) == typeof(W256) && Avx.IsSupported)
        {
            for (int row = 0; row < height; row++)
                for (int column = 0; column < width; column += S.Lanes)
                {
                    int count = Math.Min(S.Lanes, width - column);
                    TransposeBlock<V, S>(source + (long)row * width + column, plane, channels, count,
                        target + row * rowStride + (long)column * pixelStride, pixelStride, count, S.Lanes);
                }
            return;
        }
        for (int row = 0; row < height; row++)
            for (int column = 0; column < width; column++)
            {
                float* pixel = target + row * rowStride + (long)column * pixelStride;
                long offset = (long)row * width + column;
                for (int c = 0; c < S.Lanes; c++) pixel[c] = c < channels ? source[c * plane + offset] : 0;
            }
    }

    /// <summary>
    /// The reverse for one row segment: <paramref name="pixels"/> channels-last pixels, S.Lanes floats apart, become
    /// a run of <paramref name="pixels"/> floats in each of the first <paramref name="channels"/> planes.
    /// </summary>
    public static void ToPlanes<V, S>(float* source, int pixels, float* target, long plane, int channels)
        where V : struct where S : struct, ISimd<V>
    {
        if (typeof(S) == typeof(W512) || typeof(S) == typeof(W256) && Avx.IsSupported)
        {
            for (int first = 0; first < pixels; first += S.Lanes)
            {
                int count = Math.Min(S.Lanes, pixels - first);
                TransposeBlock<V, S>(source + first * S.Lanes, S.Lanes, count, S.Lanes, target + first, plane, channels, count);
            }
            return;
        }
        for (int c = 0; c < channels; c++)
            for (int p = 0; p < pixels; p++) target[c * plane + p] = source[p * S.Lanes + c];
    }

    /// <summary>
    /// A square block of one vector's lanes transposed in registers: <paramref name="rows"/> vectors of
    /// <paramref name="loadCount"/> floats from source + i·sourceStride (the rest zero) become the first
    /// <paramref name="count"/> columns, each stored as <paramref name="storeCount"/> floats at target + j·targetStride.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TransposeBlock<V, S>(float* source, long sourceStride, int rows, int loadCount,
        float* target, long targetStride, int count, int storeCount) where V : struct where S : struct, ISimd<V>
    {
        if (typeof(S) == typeof(W512))
            Transpose16(source, sourceStride, rows, PrefixMask(loadCount), target, targetStride, count, PrefixMask(storeCount));
        else
            Transpose8(source, sourceStride, rows, loadCount, target, targetStride, count, storeCount);
    }

    /// <summary>values[first … first + count − 1] in lanes 0 … count − 1, zero in the others (all zero without values).</summary>
    public static V Block<V, S>(float[]? values, int first, int count) where V : struct where S : struct, ISimd<V>
    {
        if (values is null) return S.Zero;
        fixed (float* start = &values[first]) return S.LoadPrefix(start, count);
    }

    /// <summary>*sum += Σ over <paramref name="count"/> channels-last pixels, <paramref name="pixelStride"/> floats apart, of their channels.</summary>
    public static void AddPixels<V, S>(float* sum, float* pixels, int count, long pixelStride) where V : struct where S : struct, ISimd<V>
    {
        var total = S.Load(sum);
        for (int p = 0; p < count; p++) total = S.Add(total, S.Load(pixels + p * pixelStride));
        S.Store(sum, total);
    }

    /// <summary>Lanes 0 … count − 1 set.</summary>
    public static Vector512<float> PrefixMask(int count) =>
        Vector512.LessThan(Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), Vector512.Create(count)).AsSingle();

    /// <summary>
    /// Loads <paramref name="rows"/> vectors from source + i·sourceStride (lanes outside <paramref name="loadMask"/>
    /// and rows past <paramref name="rows"/> zero), transposes the 16×16 block in registers and stores its first
    /// <paramref name="count"/> rows at target + j·targetStride, lanes outside <paramref name="storeMask"/> untouched.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Transpose16(float* source, long sourceStride, int rows, Vector512<float> loadMask,
        float* target, long targetStride, int count, Vector512<float> storeMask)
    {
        Vector512<float> r0 = Row(source, sourceStride, 0, rows, loadMask), r1 = Row(source, sourceStride, 1, rows, loadMask);
        Vector512<float> r2 = Row(source, sourceStride, 2, rows, loadMask), r3 = Row(source, sourceStride, 3, rows, loadMask);
        Vector512<float> r4 = Row(source, sourceStride, 4, rows, loadMask), r5 = Row(source, sourceStride, 5, rows, loadMask);
        Vector512<float> r6 = Row(source, sourceStride, 6, rows, loadMask), r7 = Row(source, sourceStride, 7, rows, loadMask);
        Vector512<float> r8 = Row(source, sourceStride, 8, rows, loadMask), r9 = Row(source, sourceStride, 9, rows, loadMask);
        Vector512<float> rA = Row(source, sourceStride, 10, rows, loadMask), rB = Row(source, sourceStride, 11, rows, loadMask);
        Vector512<float> rC = Row(source, sourceStride, 12, rows, loadMask), rD = Row(source, sourceStride, 13, rows, loadMask);
        Vector512<float> rE = Row(source, sourceStride, 14, rows, loadMask), rF = Row(source, sourceStride, 15, rows, loadMask);
        // Pairs of rows interleave their 32-bit, then 64-bit elements within each 128-bit lane; two rounds of
        // 128-bit lane shuffles then gather each column's four quarters.
        Vector512<float> t0 = Avx512F.UnpackLow(r0, r1), t1 = Avx512F.UnpackHigh(r0, r1), t2 = Avx512F.UnpackLow(r2, r3), t3 = Avx512F.UnpackHigh(r2, r3);
        Vector512<float> t4 = Avx512F.UnpackLow(r4, r5), t5 = Avx512F.UnpackHigh(r4, r5), t6 = Avx512F.UnpackLow(r6, r7), t7 = Avx512F.UnpackHigh(r6, r7);
        Vector512<float> t8 = Avx512F.UnpackLow(r8, r9), t9 = Avx512F.UnpackHigh(r8, r9), tA = Avx512F.UnpackLow(rA, rB), tB = Avx512F.UnpackHigh(rA, rB);
        Vector512<float> tC = Avx512F.UnpackLow(rC, rD), tD = Avx512F.UnpackHigh(rC, rD), tE = Avx512F.UnpackLow(rE, rF), tF = Avx512F.UnpackHigh(rE, rF);
        r0 = Low64(t0, t2); r1 = High64(t0, t2); r2 = Low64(t1, t3); r3 = High64(t1, t3);
        r4 = Low64(t4, t6); r5 = High64(t4, t6); r6 = Low64(t5, t7); r7 = High64(t5, t7);
        r8 = Low64(t8, tA); r9 = High64(t8, tA); rA = Low64(t9, tB); rB = High64(t9, tB);
        rC = Low64(tC, tE); rD = High64(tC, tE); rE = Low64(tD, tF); rF = High64(tD, tF);
        t0 = Avx512F.Shuffle4x128(r0, r4, 0x88); t1 = Avx512F.Shuffle4x128(r1, r5, 0x88); t2 = Avx512F.Shuffle4x128(r2, r6, 0x88); t3 = Avx512F.Shuffle4x128(r3, r7, 0x88);
        t4 = Avx512F.Shuffle4x128(r0, r4, 0xDD); t5 = Avx512F.Shuffle4x128(r1, r5, 0xDD); t6 = Avx512F.Shuffle4x128(r2, r6, 0xDD); t7 = Avx512F.Shuffle4x128(r3, r7, 0xDD);
        t8 = Avx512F.Shuffle4x128(r8, rC, 0x88); t9 = Avx512F.Shuffle4x128(r9, rD, 0x88); tA = Avx512F.Shuffle4x128(rA, rE, 0x88); tB = Avx512F.Shuffle4x128(rB, rF, 0x88);
        tC = Avx512F.Shuffle4x128(r8, rC, 0xDD); tD = Avx512F.Shuffle4x128(r9, rD, 0xDD); tE = Avx512F.Shuffle4x128(rA, rE, 0xDD); tF = Avx512F.Shuffle4x128(rB, rF, 0xDD);
        r0 = Avx512F.Shuffle4x128(t0, t8, 0x88); r1 = Avx512F.Shuffle4x128(t1, t9, 0x88); r2 = Avx512F.Shuffle4x128(t2, tA, 0x88); r3 = Avx512F.Shuffle4x128(t3, tB, 0x88);
        r4 = Avx512F.Shuffle4x128(t4, tC, 0x88); r5 = Avx512F.Shuffle4x128(t5, tD, 0x88); r6 = Avx512F.Shuffle4x128(t6, tE, 0x88); r7 = Avx512F.Shuffle4x128(t7, tF, 0x88);
        r8 = Avx512F.Shuffle4x128(t0, t8, 0xDD); r9 = Avx512F.Shuffle4x128(t1, t9, 0xDD); rA = Avx512F.Shuffle4x128(t2, tA, 0xDD); rB = Avx512F.Shuffle4x128(t3, tB, 0xDD);
        rC = Avx512F.Shuffle4x128(t4, tC, 0xDD); rD = Avx512F.Shuffle4x128(t5, tD, 0xDD); rE = Avx512F.Shuffle4x128(t6, tE, 0xDD); rF = Avx512F.Shuffle4x128(t7, tF, 0xDD);
        Avx512F.MaskStore(target, storeMask, r0);
        if (count > 1) Avx512F.MaskStore(target + targetStride, storeMask, r1);
        if (count > 2) Avx512F.MaskStore(target + 2 * targetStride, storeMask, r2);
        if (count > 3) Avx512F.MaskStore(target + 3 * targetStride, storeMask, r3);
        if (count > 4) Avx512F.MaskStore(target + 4 * targetStride, storeMask, r4);
        if (count > 5) Avx512F.MaskStore(target + 5 * targetStride, storeMask, r5);
        if (count > 6) Avx512F.MaskStore(target + 6 * targetStride, storeMask, r6);
        if (count > 7) Avx512F.MaskStore(target + 7 * targetStride, storeMask, r7);
        if (count > 8) Avx512F.MaskStore(target + 8 * targetStride, storeMask, r8);
        if (count > 9) Avx512F.MaskStore(target + 9 * targetStride, storeMask, r9);
        if (count > 10) Avx512F.MaskStore(target + 10 * targetStride, storeMask, rA);
        if (count > 11) Avx512F.MaskStore(target + 11 * targetStride, storeMask, rB);
        if (count > 12) Avx512F.MaskStore(target + 12 * targetStride, storeMask, rC);
        if (count > 13) Avx512F.MaskStore(target + 13 * targetStride, storeMask, rD);
        if (count > 14) Avx512F.MaskStore(target + 14 * targetStride, storeMask, rE);
        if (count > 15) Avx512F.MaskStore(target + 15 * targetStride, storeMask, rF);
    }

    /// <summary>
    /// The 8×8 version of <see cref="Transpose16"/> on AVX: <paramref name="rows"/> vectors of the first
    /// <paramref name="loadCount"/> floats (others zero) in, the first <paramref name="count"/> columns out, each
    /// <paramref name="storeCount"/> floats long.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Transpose8(float* source, long sourceStride, int rows, int loadCount,
        float* target, long targetStride, int count, int storeCount)
    {
        Vector256<float> r0 = Row8(source, sourceStride, 0, rows, loadCount), r1 = Row8(source, sourceStride, 1, rows, loadCount);
        Vector256<float> r2 = Row8(source, sourceStride, 2, rows, loadCount), r3 = Row8(source, sourceStride, 3, rows, loadCount);
        Vector256<float> r4 = Row8(source, sourceStride, 4, rows, loadCount), r5 = Row8(source, sourceStride, 5, rows, loadCount);
        Vector256<float> r6 = Row8(source, sourceStride, 6, rows, loadCount), r7 = Row8(source, sourceStride, 7, rows, loadCount);
        // Interleave pairs of rows' 32-bit, then 64-bit elements within each 128-bit half; then swap the halves.
        Vector256<float> t0 = Avx.UnpackLow(r0, r1), t1 = Avx.UnpackHigh(r0, r1), t2 = Avx.UnpackLow(r2, r3), t3 = Avx.UnpackHigh(r2, r3);
        Vector256<float> t4 = Avx.UnpackLow(r4, r5), t5 = Avx.UnpackHigh(r4, r5), t6 = Avx.UnpackLow(r6, r7), t7 = Avx.UnpackHigh(r6, r7);
        r0 = Avx.Shuffle(t0, t2, 0x44); r1 = Avx.Shuffle(t0, t2, 0xEE); r2 = Avx.Shuffle(t1, t3, 0x44); r3 = Avx.Shuffle(t1, t3, 0xEE);
        r4 = Avx.Shuffle(t4, t6, 0x44); r5 = Avx.Shuffle(t4, t6, 0xEE); r6 = Avx.Shuffle(t5, t7, 0x44); r7 = Avx.Shuffle(t5, t7, 0xEE);
        t0 = Avx.Permute2x128(r0, r4, 0x20); t1 = Avx.Permute2x128(r1, r5, 0x20); t2 = Avx.Permute2x128(r2, r6, 0x20); t3 = Avx.Permute2x128(r3, r7, 0x20);
        t4 = Avx.Permute2x128(r0, r4, 0x31); t5 = Avx.Permute2x128(r1, r5, 0x31); t6 = Avx.Permute2x128(r2, r6, 0x31); t7 = Avx.Permute2x128(r3, r7, 0x31);
        W256.StorePrefix(target, t0, storeCount);
        if (count > 1) W256.StorePrefix(target + targetStride, t1, storeCount);
        if (count > 2) W256.StorePrefix(target + 2 * targetStride, t2, storeCount);
        if (count > 3) W256.StorePrefix(target + 3 * targetStride, t3, storeCount);
        if (count > 4) W256.StorePrefix(target + 4 * targetStride, t4, storeCount);
        if (count > 5) W256.StorePrefix(target + 5 * targetStride, t5, storeCount);
        if (count > 6) W256.StorePrefix(target + 6 * targetStride, t6, storeCount);
        if (count > 7) W256.StorePrefix(target + 7 * targetStride, t7, storeCount);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Row8(float* source, long stride, int i, int rows, int count) =>
        i < rows ? W256.LoadPrefix(source + i * stride, count) : Vector256<float>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Row(float* source, long stride, int i, int rows, Vector512<float> mask) =>
        i < rows ? Avx512F.MaskLoad(source + i * stride, mask, Vector512<float>.Zero) : Vector512<float>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Low64(Vector512<float> a, Vector512<float> b) => Avx512F.UnpackLow(a.AsDouble(), b.AsDouble()).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> High64(Vector512<float> a, Vector512<float> b) => Avx512F.UnpackHigh(a.AsDouble(), b.AsDouble()).AsSingle();
}
