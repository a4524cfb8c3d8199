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
        float* block = stackalloc float[Lanes * Lanes];
        for (int row = 0; row < height; row++)
            for (int column = 0; column < width; column += Lanes)
            {
                int count = Math.Min(Lanes, width - column);
                var mask = PrefixMask(count);
                for (int c = 0; c < Lanes; c++)
                    Vector512.Store(c < channels ? Avx512F.MaskLoad(source + c * plane + (long)row * width + column, mask, Vector512<float>.Zero) : Vector512<float>.Zero,
                        block + c * Lanes);
                Transpose16(block);
                for (int p = 0; p < count; p++) Vector512.Store(Vector512.Load(block + p * Lanes), target + row * rowStride + (long)(column + p) * pixelStride);
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

    /// <summary>Transposes the 16×16 block at <paramref name="block"/> (rows of 16) in place, in registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Transpose16(float* block)
    {
        Vector512<float> r0 = Vector512.Load(block), r1 = Vector512.Load(block + 16), r2 = Vector512.Load(block + 32), r3 = Vector512.Load(block + 48);
        Vector512<float> r4 = Vector512.Load(block + 64), r5 = Vector512.Load(block + 80), r6 = Vector512.Load(block + 96), r7 = Vector512.Load(block + 112);
        Vector512<float> r8 = Vector512.Load(block + 128), r9 = Vector512.Load(block + 144), rA = Vector512.Load(block + 160), rB = Vector512.Load(block + 176);
        Vector512<float> rC = Vector512.Load(block + 192), rD = Vector512.Load(block + 208), rE = Vector512.Load(block + 224), rF = Vector512.Load(block + 240);
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
        Vector512.Store(r0, block); Vector512.Store(r1, block + 16); Vector512.Store(r2, block + 32); Vector512.Store(r3, block + 48);
        Vector512.Store(r4, block + 64); Vector512.Store(r5, block + 80); Vector512.Store(r6, block + 96); Vector512.Store(r7, block + 112);
        Vector512.Store(r8, block + 128); Vector512.Store(r9, block + 144); Vector512.Store(rA, block + 160); Vector512.Store(rB, block + 176);
        Vector512.Store(rC, block + 192); Vector512.Store(rD, block + 208); Vector512.Store(rE, block + 224); Vector512.Store(rF, block + 240);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Swap(ref Vector512<float> a, ref Vector512<float> b, Vector512<int> low, Vector512<int> high)
    {
        var first = Avx512F.PermuteVar16x32x2(a, low, b);
        b = Avx512F.PermuteVar16x32x2(a, high, b);
        a = first;
    }
}
