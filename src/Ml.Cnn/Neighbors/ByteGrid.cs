using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace Ml.Cnn.Neighbors;

/// <summary>
/// Vectors whose every value is an 8-bit pixel: q·step for an integer q in [0, 255], with step 1 (raw pixels) or
/// 1/255 (pixels scaled to [0, 1], as ML.NET's ExtractPixels and <see cref="Data.Idx"/> scale them). For those, an L1
/// distance is step × Σ|qa − qb| exactly, and the sum of absolute byte differences is one instruction per 16, 32 or 64
/// values on x86 (PSADBW) — four times the lanes of a float and no rounding. Rows are zero-padded to
/// <see cref="Stride"/> bytes, which adds nothing to a sum.
/// </summary>
internal sealed class ByteGrid
{
    // (step, levels per unit): a value is on the grid as level × step or as level / levels, the two ways to scale.
    private static readonly (float Step, float Levels)[] Grids = [(1f, 1f), (1f / 255, 255f)];

    private ByteGrid(byte[] values, int count, int dimension, float step)
    {
        Values = values;
        Count = count;
        Dimension = dimension;
        Step = step;
    }

    /// <summary>Bytes per padded row: a whole number of the widest vectors this processor runs.</summary>
    public static int StrideFor(int dimension) => (dimension + VectorBytes - 1) / VectorBytes * VectorBytes;

    public byte[] Values { get; }
    public int Count { get; }
    public int Dimension { get; }
    public int Stride => StrideFor(Dimension);

    /// <summary>The value of one byte step: distances are the byte sums times this.</summary>
    public float Step { get; }

    /// <summary>The vectors as bytes, or null when some value is not on a pixel grid.</summary>
    public static ByteGrid? TryCreate(float[] vectors, int count, int dimension)
    {
        foreach (var (step, _) in Grids)
            if (TryCreate(vectors, count, dimension, step) is { } grid) return grid;
        return null;
    }

    /// <summary>The vectors on the grid of <paramref name="step"/>, or null when some value is not on it.</summary>
    public static ByteGrid? TryCreate(float[] vectors, int count, int dimension, float step)
    {
        float levels = Grids.Single(g => g.Step == step).Levels;
        int stride = StrideFor(dimension);
        var values = new byte[(long)count * stride];
        int offGrid = 0;
        Parallel.For(0, count, (row, state) =>
        {
            var source = vectors.AsSpan(row * dimension, dimension);
            var target = values.AsSpan(row * stride, dimension);
            for (int d = 0; d < dimension; d++)
            {
                float value = source[d], level = MathF.Round(value / step);
                if (!(level is >= 0 and <= 255) || (level * step != value && level / levels != value))
                {
                    Interlocked.Exchange(ref offGrid, 1);
                    state.Stop();
                    return;
                }
                target[d] = (byte)level;
            }
        });
        return offGrid == 0 ? new ByteGrid(values, count, dimension, step) : null;
    }

    private static int VectorBytes => Avx512BW.IsSupported && Vector512.IsHardwareAccelerated ? 64
        : Avx2.IsSupported && Vector256.IsHardwareAccelerated ? 32 : 16;

    /// <summary>The kernel <see cref="SumsOfAbsoluteDifferences"/> runs, for benchmarks and test messages.</summary>
    public static string Kernel => VectorBytes switch
    {
        64 => "AVX-512BW VPSADBW",
        32 => "AVX2 VPSADBW",
        _ => Sse2.IsSupported ? "SSE2 PSADBW" : AdvSimd.IsSupported ? "AdvSimd UABD+UADALP" : "128-bit max−min",
    };

    /// <summary>
    /// Σ|a − r| and Σ|b − r| over <paramref name="length"/> bytes (a whole number of vectors), two queries sharing each
    /// reference load.
    /// </summary>
    public static unsafe (uint, uint) SumsOfAbsoluteDifferences(byte* a, byte* b, byte* r, int length) => VectorBytes switch
    {
        64 => Sums<Vector512<uint>, Sad512>(a, b, r, length),
        32 => Sums<Vector256<uint>, Sad256>(a, b, r, length),
        _ => Sums<Vector128<uint>, Sad128>(a, b, r, length),
    };

    private static unsafe (uint, uint) Sums<V, S>(byte* a, byte* b, byte* r, int length)
        where V : struct where S : struct, ISad<V>
    {
        V a0 = default, a1 = default, b0 = default, b1 = default;
        int i = 0, n = S.Bytes;
        for (; i + 2 * n <= length; i += 2 * n)
        {
            a0 = S.Accumulate(a0, a + i, r + i);
            a1 = S.Accumulate(a1, a + i + n, r + i + n);
            b0 = S.Accumulate(b0, b + i, r + i);
            b1 = S.Accumulate(b1, b + i + n, r + i + n);
        }
        if (i < length)
        {
            a0 = S.Accumulate(a0, a + i, r + i);
            b0 = S.Accumulate(b0, b + i, r + i);
        }
        return (S.Sum(a0) + S.Sum(a1), S.Sum(b0) + S.Sum(b1));
    }

    /// <summary>One width's sum of absolute byte differences into 32-bit accumulator lanes.</summary>
    private unsafe interface ISad<V> where V : struct
    {
        static abstract int Bytes { get; }

        static abstract V Accumulate(V sums, byte* a, byte* b);

        static abstract uint Sum(V sums);
    }

    private readonly unsafe struct Sad512 : ISad<Vector512<uint>>
    {
        public static int Bytes => 64;

        // Each 64-bit lane's sum (at most 8 × 255) sits in its low 16 bits; 32-bit adds keep the high halves zero.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<uint> Accumulate(Vector512<uint> sums, byte* a, byte* b) =>
            sums + Avx512BW.SumAbsoluteDifferences(Vector512.Load(a), Vector512.Load(b)).AsUInt32();

        public static uint Sum(Vector512<uint> sums) => Vector512.Sum(sums);
    }

    private readonly unsafe struct Sad256 : ISad<Vector256<uint>>
    {
        public static int Bytes => 32;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<uint> Accumulate(Vector256<uint> sums, byte* a, byte* b) =>
            sums + Avx2.SumAbsoluteDifferences(Vector256.Load(a), Vector256.Load(b)).AsUInt32();

        public static uint Sum(Vector256<uint> sums) => Vector256.Sum(sums);
    }

    private readonly unsafe struct Sad128 : ISad<Vector128<uint>>
    {
        public static int Bytes => 16;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<uint> Accumulate(Vector128<uint> sums, byte* a, byte* b)
        {
            Vector128<byte> x = Vector128.Load(a), y = Vector128.Load(b);
            if (Sse2.IsSupported) return sums + Sse2.SumAbsoluteDifferences(x, y).AsUInt32();
            if (AdvSimd.IsSupported) return AdvSimd.AddPairwiseWideningAndAdd(sums, AdvSimd.AddPairwiseWidening(AdvSimd.AbsoluteDifference(x, y)));
            var (low, high) = Vector128.Widen(Vector128.Max(x, y) - Vector128.Min(x, y));
            var (l0, l1) = Vector128.Widen(low + high); // at most 510 per ushort lane
            return sums + l0 + l1;
        }

        public static uint Sum(Vector128<uint> sums) => Vector128.Sum(sums);
    }
}
