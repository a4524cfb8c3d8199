using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Ml.Cnn.Backends.Cpu;

/// <summary>
/// The GEMM shapes that packing serves badly, computed straight from the operands. A classifier's forward product
/// (few outputs: C = A·Bᵀ with n ≤ <see cref="MaxDotColumns"/>) would pad n up to the packed kernel's 32 columns and
/// transpose B for nothing, so each element is a dot product of two contiguous rows instead. A shallow product
/// (k ≤ <see cref="MaxShallowDepth"/>, op(B) = B: a classifier's input gradient, whose depth is the class count) spends more on packing
/// and tile bookkeeping than on arithmetic; it runs as row-broadcast FMAs over B's rows, each element summed over p in
/// order from zero as the packed kernel sums it (identical bits where β is 0 or 1). Both run with 256-bit vectors
/// where AVX2 exists (also beside AVX-512) and with 128-bit ones elsewhere.
/// </summary>
internal static unsafe class SmallGemm
{
    public const int MaxDotColumns = 16;
    public const int MaxShallowDepth = 32;

    /// <summary>C ← α·A·Bᵀ + β·C with B's rows contiguous: m×n dot products of length k.</summary>
    public static void RowDots(int m, int n, int k, float alpha, float* a, int lda, float* b, int ldb, float beta,
        float* c, int ldc, int threads)
    {
        // Tiles of 2 rows of A by 4 rows of B: eight 8-wide accumulators, six loads per eight FMAs. Rows past the edge
        // repeat the last row, and their results are not stored, so every element takes the same arithmetic path
        // whatever m is: a row's scores do not depend on the batch it was scored in.
        int rowTiles = (m + 1) / 2;
        int parts = (long)m * n * k < 1 << 20 ? 1 : Math.Min(threads, rowTiles);
        nint pa = (nint)a, pb = (nint)b, pc = (nint)c;
        bool wide = Sgemm.KernelBits >= 256;
        CpuWork.For(parts, parts, part =>
        {
            for (int tile = rowTiles * part / parts; tile < rowTiles * (part + 1) / parts; tile++)
                for (int j = 0; j < n; j += 4)
                    if (wide) DotTile<Vector256<float>, W256>((float*)pa, lda, 2 * tile, m, (float*)pb, ldb, j, n, k, alpha, beta, (float*)pc, ldc);
                    else DotTile<Vector128<float>, W128>((float*)pa, lda, 2 * tile, m, (float*)pb, ldb, j, n, k, alpha, beta, (float*)pc, ldc);
        });
    }

    private static void DotTile<V, S>(float* a, int lda, int i0, int m, float* b, int ldb, int j0, int n, int k,
        float alpha, float beta, float* c, int ldc) where V : struct where S : struct, ISimd<V>
    {
        float* a0 = a + (long)i0 * lda, a1 = a + (long)Math.Min(i0 + 1, m - 1) * lda;
        float* b0 = b + (long)j0 * ldb, b1 = b + (long)Math.Min(j0 + 1, n - 1) * ldb;
        float* b2 = b + (long)Math.Min(j0 + 2, n - 1) * ldb, b3 = b + (long)Math.Min(j0 + 3, n - 1) * ldb;
        V s00 = S.Zero, s01 = S.Zero, s02 = S.Zero, s03 = S.Zero;
        V s10 = S.Zero, s11 = S.Zero, s12 = S.Zero, s13 = S.Zero;
        int p = 0;
        for (; p + S.Lanes <= k; p += S.Lanes)
        {
            var x0 = S.Load(a0 + p);
            var x1 = S.Load(a1 + p);
            var w = S.Load(b0 + p); s00 = S.MulAdd(x0, w, s00); s10 = S.MulAdd(x1, w, s10);
            w = S.Load(b1 + p); s01 = S.MulAdd(x0, w, s01); s11 = S.MulAdd(x1, w, s11);
            w = S.Load(b2 + p); s02 = S.MulAdd(x0, w, s02); s12 = S.MulAdd(x1, w, s12);
            w = S.Load(b3 + p); s03 = S.MulAdd(x0, w, s03); s13 = S.MulAdd(x1, w, s13);
        }
        float* row0 = c + (long)i0 * ldc + j0;
        StoreDot<V, S>(row0, 0, s00, a0, b0, p, k, alpha, beta, j0, n);
        StoreDot<V, S>(row0, 1, s01, a0, b1, p, k, alpha, beta, j0, n);
        StoreDot<V, S>(row0, 2, s02, a0, b2, p, k, alpha, beta, j0, n);
        StoreDot<V, S>(row0, 3, s03, a0, b3, p, k, alpha, beta, j0, n);
        if (i0 + 1 >= m) return;
        float* row1 = row0 + ldc;
        StoreDot<V, S>(row1, 0, s10, a1, b0, p, k, alpha, beta, j0, n);
        StoreDot<V, S>(row1, 1, s11, a1, b1, p, k, alpha, beta, j0, n);
        StoreDot<V, S>(row1, 2, s12, a1, b2, p, k, alpha, beta, j0, n);
        StoreDot<V, S>(row1, 3, s13, a1, b3, p, k, alpha, beta, j0, n);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreDot<V, S>(float* row, int column, V partial, float* a, float* b, int p, int k,
        float alpha, float beta, int j0, int n) where V : struct where S : struct, ISimd<V>
    {
        if (j0 + column >= n) return;
        float sum = S.Sum(partial);
        for (; p < k; p++) sum = CpuIsa.MulAdd(a[p], b[p], sum);
        row[column] = Finish(sum * alpha, beta, row + column);
    }

    /// <summary>C ← α·op(A)·B + β·C for a shallow k, without packing.</summary>
    public static void Shallow(bool transA, int m, int n, int k, float alpha, float* a, int lda, float* b, int ldb,
        float beta, float* c, int ldc)
    {
        // op(A)[i, p] sits at a[i·lda + p], or at a[p·lda + i] when transposed.
        long rowStep = transA ? 1 : lda, depthStep = transA ? lda : 1;
        bool wide = Sgemm.KernelBits >= 256;
        int vectorColumns = n & ~(wide ? 15 : 7);
        for (int i = 0; i < m; i += 4)
            if (wide) ShallowRows<Vector256<float>, W256>(a, rowStep, depthStep, i, m, b, ldb, vectorColumns, k, alpha, beta, c, ldc);
            else ShallowRows<Vector128<float>, W128>(a, rowStep, depthStep, i, m, b, ldb, vectorColumns, k, alpha, beta, c, ldc);
        for (int j = vectorColumns; j < n; j++)
            for (int i = 0; i < m; i++)
            {
                float sum = 0;
                for (int p = 0; p < k; p++) sum = CpuIsa.MulAdd(a[i * rowStep + p * depthStep], b[(long)p * ldb + j], sum);
                float* target = c + (long)i * ldc + j;
                *target = Finish(sum * alpha, beta, target);
            }
    }

    /// <summary>Rows i0…i0+3 (the last row repeated past m, not stored) by columns 0…n−1 in tiles two vectors wide.</summary>
    private static void ShallowRows<V, S>(float* a, long rowStep, long depthStep, int i0, int m, float* b, int ldb, int n, int k,
        float alpha, float beta, float* c, int ldc) where V : struct where S : struct, ISimd<V>
    {
        float* a0 = a + i0 * rowStep, a1 = a + Math.Min(i0 + 1, m - 1) * rowStep;
        float* a2 = a + Math.Min(i0 + 2, m - 1) * rowStep, a3 = a + Math.Min(i0 + 3, m - 1) * rowStep;
        var va = S.Broadcast(alpha);
        for (int j0 = 0; j0 < n; j0 += 2 * S.Lanes)
        {
            V s00 = S.Zero, s01 = S.Zero, s10 = S.Zero, s11 = S.Zero;
            V s20 = S.Zero, s21 = S.Zero, s30 = S.Zero, s31 = S.Zero;
            float* bp = b + j0;
            for (int p = 0; p < k; p++, bp += ldb)
            {
                var w0 = S.Load(bp);
                var w1 = S.Load(bp + S.Lanes);
                long at = p * depthStep;
                var x = S.Broadcast(a0[at]); s00 = S.MulAdd(x, w0, s00); s01 = S.MulAdd(x, w1, s01);
                x = S.Broadcast(a1[at]); s10 = S.MulAdd(x, w0, s10); s11 = S.MulAdd(x, w1, s11);
                x = S.Broadcast(a2[at]); s20 = S.MulAdd(x, w0, s20); s21 = S.MulAdd(x, w1, s21);
                x = S.Broadcast(a3[at]); s30 = S.MulAdd(x, w0, s30); s31 = S.MulAdd(x, w1, s31);
            }
            // One k-block only: the packed kernel's store for its first block gives the same bits.
            float* row = c + (long)i0 * ldc + j0;
            Sgemm.StoreRow<V, S>(row, s00, s01, va, beta, firstBlock: true);
            if (i0 + 1 < m) Sgemm.StoreRow<V, S>(row + ldc, s10, s11, va, beta, firstBlock: true);
            if (i0 + 2 < m) Sgemm.StoreRow<V, S>(row + 2 * ldc, s20, s21, va, beta, firstBlock: true);
            if (i0 + 3 < m) Sgemm.StoreRow<V, S>(row + 3 * ldc, s30, s31, va, beta, firstBlock: true);
        }
    }

    /// <summary>β·C + αAB rounded as the packed kernel's store rounds it (β = 0 never reads C: it may hold NaN garbage).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Finish(float product, float beta, float* c) =>
        beta == 0 ? product : beta == 1 ? product + *c : CpuIsa.MulAdd(beta, *c, product);
}
