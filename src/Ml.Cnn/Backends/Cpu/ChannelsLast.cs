using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ml.Cnn.Backends.Cpu;

/// <summary>
/// Between channel planes (NCHW) and channels-last blocks of sixteen channels, for kernels that keep channels in the
/// lanes of an AVX-512 register: through 16×16 transposes, since element-wise copies with a stride of a vector or
/// more cost as much as the arithmetic they feed.
/// </summary>
internal static unsafe class ChannelsLast
{
    private const int Lanes = 16;

    /// <summary>
    /// Up to sixteen planes of height × width, <paramref name="plane"/> floats apart, in channels-last order: pixel
    /// (row, column) becomes sixteen consecutive floats at target + row·rowStride + column·pixelStride, the channels
    /// past <paramref name="channels"/> zero. Sixteen pixels at a time go through a 16×16 transpose.
    /// </summary>
    public static void Copy(float* source, long plane, int channels, int height, int width, float* target, long rowStride, int pixelStride)
    {
        var all = PrefixMask(Lanes);
        for (int row = 0; row < height; row++)
            for (int column = 0; column < width; column += Lanes)
            {
                int count = Math.Min(Lanes, width - column);
                Transpose16(source + (long)row * width + column, plane, channels, PrefixMask(count),
                    target + row * rowStride + (long)column * pixelStride, pixelStride, count, all);
            }
    }

    /// <summary>Lanes 0 … count − 1 set.</summary>
    public static Vector512<float> PrefixMask(int count) =>
        Vector512.LessThan(Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), Vector512.Create(count)).AsSingle();

    // Level h of the transpose swaps the off-diagonal h×h blocks of every 2h×2h block: row i (with bit h clear) takes
    // lanes [l] of itself where bit h of l is clear and [l − h] of row i + h where it is set; row i + h the mirror.
    private static readonly Vector512<int>[] TransposeIndices = [.. new[] { 8, 4, 2, 1 }.SelectMany(h => new[]
    {
        Vector512.Create(Enumerable.Range(0, Lanes).Select(l => (l & h) == 0 ? l : Lanes + l - h).ToArray()),
        Vector512.Create(Enumerable.Range(0, Lanes).Select(l => (l & h) == 0 ? l + h : Lanes + l).ToArray()),
    })];

    /// <summary>
    /// Loads <paramref name="rows"/> vectors from source + i·sourceStride (lanes outside <paramref name="loadMask"/>
    /// and rows past <paramref name="rows"/> zero), transposes the 16×16 block in registers and stores its first
    /// <paramref name="count"/> rows at target + j·targetStride, lanes outside <paramref name="storeMask"/> untouched.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Transpose16(float* source, long sourceStride, int rows, Vector512<float> loadMask,
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
        Vector512<int> low = TransposeIndices[0], high = TransposeIndices[1];
        Swap(ref r0, ref r8, low, high); Swap(ref r1, ref r9, low, high); Swap(ref r2, ref rA, low, high); Swap(ref r3, ref rB, low, high);
        Swap(ref r4, ref rC, low, high); Swap(ref r5, ref rD, low, high); Swap(ref r6, ref rE, low, high); Swap(ref r7, ref rF, low, high);
        low = TransposeIndices[2]; high = TransposeIndices[3];
        Swap(ref r0, ref r4, low, high); Swap(ref r1, ref r5, low, high); Swap(ref r2, ref r6, low, high); Swap(ref r3, ref r7, low, high);
        Swap(ref r8, ref rC, low, high); Swap(ref r9, ref rD, low, high); Swap(ref rA, ref rE, low, high); Swap(ref rB, ref rF, low, high);
        low = TransposeIndices[4]; high = TransposeIndices[5];
        Swap(ref r0, ref r2, low, high); Swap(ref r1, ref r3, low, high); Swap(ref r4, ref r6, low, high); Swap(ref r5, ref r7, low, high);
        Swap(ref r8, ref rA, low, high); Swap(ref r9, ref rB, low, high); Swap(ref rC, ref rE, low, high); Swap(ref rD, ref rF, low, high);
        low = TransposeIndices[6]; high = TransposeIndices[7];
        Swap(ref r0, ref r1, low, high); Swap(ref r2, ref r3, low, high); Swap(ref r4, ref r5, low, high); Swap(ref r6, ref r7, low, high);
        Swap(ref r8, ref r9, low, high); Swap(ref rA, ref rB, low, high); Swap(ref rC, ref rD, low, high); Swap(ref rE, ref rF, low, high);
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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Row(float* source, long stride, int i, int rows, Vector512<float> mask) =>
        i < rows ? Avx512F.MaskLoad(source + i * stride, mask, Vector512<float>.Zero) : Vector512<float>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Swap(ref Vector512<float> a, ref Vector512<float> b, Vector512<int> low, Vector512<int> high)
    {
        var first = Avx512F.PermuteVar16x32x2(a, low, b);
        b = Avx512F.PermuteVar16x32x2(a, high, b);
        a = first;
    }
}
