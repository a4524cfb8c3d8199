using ILGPU;

namespace Ml.Cnn.Gpu.Kernels;

/// <summary>
/// SGEMM over a batch of equal products (grouped convolutions): C ← α·op(A)·op(B) + β·C, row-major. Each thread owns
/// one element of C and adds its products in k order, so the result does not depend on the tile size, the kernel or the
/// device's scheduling: <see cref="Gemm"/> and <see cref="GemmPerElement"/> give the same bits. β = 0 ignores what C
/// held (NaN included), as BLAS does.
/// </summary>
internal static class GemmKernels
{
    public const int MaxTile = 16;

    /// <summary>
    /// One thread per element of C reading A and B straight from memory: no barriers, so it is the fast choice on ILGPU's
    /// CPU accelerator, where a group barrier costs a thread handshake.
    /// </summary>
    public static void GemmPerElement(Index3D i, GemmArgs p, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c)
    {
        int col = i.X, row = i.Y;
        long aBase = (long)i.Z * p.StrideA, bBase = (long)i.Z * p.StrideB;
        float sum = 0;
        for (int k = 0; k < p.K; k++)
            sum += a[aBase + (p.TransposeA != 0 ? (long)k * p.M + row : (long)row * p.K + k)]
                * b[bBase + (p.TransposeB != 0 ? (long)col * p.K + k : (long)k * p.N + col)];
        long index = (long)i.Z * p.StrideC + (long)row * p.N + col;
        c[index] = p.Beta == 0 ? p.Alpha * sum : p.Alpha * sum + p.Beta * c[index];
    }

    /// <summary>
    /// The GPU's kernel: a square group of T × T threads (T ≤ <see cref="MaxTile"/>) stages T-deep slices of A and B in
    /// shared memory.
    /// </summary>
    public static void Gemm(GemmArgs p, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c)
    {
        var tileA = SharedMemory.Allocate<float>(MaxTile * MaxTile);
        var tileB = SharedMemory.Allocate<float>(MaxTile * MaxTile);
        int t = Group.DimX, tx = Group.IdxX, ty = Group.IdxY;
        int col = Grid.IdxX * t + tx, row = Grid.IdxY * t + ty;
        long aBase = (long)Grid.IdxZ * p.StrideA, bBase = (long)Grid.IdxZ * p.StrideB, cBase = (long)Grid.IdxZ * p.StrideC;
        float sum = 0;
        for (int k0 = 0; k0 < p.K; k0 += t)
        {
            int ka = k0 + tx, kb = k0 + ty;
            tileA[ty * t + tx] = row < p.M && ka < p.K
                ? a[aBase + (p.TransposeA != 0 ? (long)ka * p.M + row : (long)row * p.K + ka)] : 0;
            tileB[ty * t + tx] = col < p.N && kb < p.K
                ? b[bBase + (p.TransposeB != 0 ? (long)col * p.K + kb : (long)kb * p.N + col)] : 0;
            Group.Barrier();
            int depth = p.K - k0 < t ? p.K - k0 : t;
            for (int kk = 0; kk < depth; kk++) sum += tileA[ty * t + kk] * tileB[kk * t + tx];
            Group.Barrier();
        }
        if (row >= p.M || col >= p.N) return;
        long index = cBase + (long)row * p.N + col;
        c[index] = p.Beta == 0 ? p.Alpha * sum : p.Alpha * sum + p.Beta * c[index];
    }

    /// <summary>y[n, j] += bias[j] for a [rows, columns] matrix.</summary>
    public static void AddRowBias(Index1D i, ArrayView<float> bias, ArrayView<float> y, int columns) => y[i] += bias[i % columns];

    /// <summary>sums[j] ← Σ_n y[n, j] (+ sums[j] when <paramref name="accumulate"/>), in n order.</summary>
    public static void ColumnSums(Index1D j, ArrayView<float> y, ArrayView<float> sums, int rows, int columns, int accumulate)
    {
        float sum = accumulate != 0 ? sums[j] : 0;
        for (int n = 0; n < rows; n++) sum += y[(long)n * columns + j];
        sums[j] = sum;
    }

    /// <summary>sums[r] ← Σ_j y[r, j] (+ sums[r] when <paramref name="accumulate"/>), in j order.</summary>
    public static void RowSums(Index1D r, ArrayView<float> y, ArrayView<float> sums, int columns, int accumulate)
    {
        float sum = accumulate != 0 ? sums[r] : 0;
        for (int j = 0; j < columns; j++) sum += y[(long)r.X * columns + j];
        sums[r] = sum;
    }
}

internal struct GemmArgs
{
    public int M, N, K, TransposeA, TransposeB;
    public float Alpha, Beta;
    public long StrideA, StrideB, StrideC;
}
