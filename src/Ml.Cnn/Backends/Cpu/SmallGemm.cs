using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Ml.Cnn.Backends.Cpu;

/// <summary>
/// The GEMM shapes that packing serves badly, computed straight from the operands. A classifier's forward product
/// (few outputs: C = A·Bᵀ with n ≤ <see cref="MaxDotColumns"/>) would pad n up to the packed kernel's 32 columns and
/// transpose B for nothing, so each element is a dot product of two contiguous rows instead. A shallow product
/// (k ≤ <see cref="MaxShallowDepth"/>, op(B) = B: a classifier's input gradient, whose depth is the class count) spends more on packing
/// and tile bookkeeping than on arithmetic; it runs as row-broadcast FMAs over B's rows, each element summed over p in
/// order from zero as the packed kernel sums it (identical bits where β is 0 or 1).
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
        CpuWork.For(parts, parts, part =>
        {
            for (int tile = rowTiles * part / parts; tile < rowTiles * (part + 1) / parts; tile++)
                for (int j = 0; j < n; j += 4)
                    DotTile((float*)pa, lda, 2 * tile, m, (float*)pb, ldb, j, n, k, alpha, beta, (float*)pc, ldc);
        });
    }

    private static void DotTile(float* a, int lda, int i0, int m, float* b, int ldb, int j0, int n, int k,
        float alpha, float beta, float* c, int ldc)
    {
        float* a0 = a + (long)i0 * lda, a1 = a + (long)Math.Min(i0 + 1, m - 1) * lda;
        float* b0 = b + (long)j0 * ldb, b1 = b + (long)Math.Min(j0 + 1, n - 1) * ldb;
        float* b2 = b + (long)Math.Min(j0 + 2, n - 1) * ldb, b3 = b + (long)Math.Min(j0 + 3, n - 1) * ldb;
        Vector256<float> s00 = default, s01 = default, s02 = default, s03 = default;
        Vector256<float> s10 = default, s11 = default, s12 = default, s13 = default;
        int p = 0;
        for (; p + 8 <= k; p += 8)
        {
            var x0 = Vector256.Load(a0 + p);
            var x1 = Vector256.Load(a1 + p);
            var w = Vector256.Load(b0 + p); s00 = CpuIsa.MulAdd(x0, w, s00); s10 = CpuIsa.MulAdd(x1, w, s10);
            w = Vector256.Load(b1 + p); s01 = CpuIsa.MulAdd(x0, w, s01); s11 = CpuIsa.MulAdd(x1, w, s11);
            w = Vector256.Load(b2 + p); s02 = CpuIsa.MulAdd(x0, w, s02); s12 = CpuIsa.MulAdd(x1, w, s12);
            w = Vector256.Load(b3 + p); s03 = CpuIsa.MulAdd(x0, w, s03); s13 = CpuIsa.MulAdd(x1, w, s13);
        }
        float* row0 = c + (long)i0 * ldc + j0;
        StoreDot(row0, 0, s00, a0, b0, p, k, alpha, beta, j0, n);
        StoreDot(row0, 1, s01, a0, b1, p, k, alpha, beta, j0, n);
        StoreDot(row0, 2, s02, a0, b2, p, k, alpha, beta, j0, n);
        StoreDot(row0, 3, s03, a0, b3, p, k, alpha, beta, j0, n);
        if (i0 + 1 >= m) return;
        float* row1 = row0 + ldc;
        StoreDot(row1, 0, s10, a1, b0, p, k, alpha, beta, j0, n);
        StoreDot(row1, 1, s11, a1, b1, p, k, alpha, beta, j0, n);
        StoreDot(row1, 2, s12, a1, b2, p, k, alpha, beta, j0, n);
        StoreDot(row1, 3, s13, a1, b3, p, k, alpha, beta, j0, n);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreDot(float* row, int column, Vector256<float> partial, float* a, float* b, int p, int k,
        float alpha, float beta, int j0, int n)
    {
        if (j0 + column >= n) return;
        float sum = Vector256.Sum(partial);
        for (; p < k; p++) sum = CpuIsa.MulAdd(a[p], b[p], sum);
        row[column] = Finish(sum * alpha, beta, row + column);
    }

    /// <summary>C ← α·op(A)·B + β·C for a shallow k, without packing.</summary>
    public static void Shallow(bool transA, int m, int n, int k, float alpha, float* a, int lda, float* b, int ldb,
        float beta, float* c, int ldc)
    {
        // op(A)[i, p] sits at a[i·lda + p], or at a[p·lda + i] when transposed.
        long rowStep = transA ? 1 : lda, depthStep = transA ? lda : 1;
        int vectorColumns = n & ~15;
        for (int i = 0; i < m; i += 4)
            ShallowRows(a, rowStep, depthStep, i, m, b, ldb, vectorColumns, k, alpha, beta, c, ldc);
        for (int j = vectorColumns; j < n; j++)
            for (int i = 0; i < m; i++)
            {
                float sum = 0;
                for (int p = 0; p < k; p++) sum = CpuIsa.MulAdd(a[i * rowStep + p * depthStep], b[(long)p * ldb + j], sum);
                float* target = c + (long)i * ldc + j;
                *target = Finish(sum * alpha, beta, target);
            }
    }

    /// <summary>Rows i0…i0+3 (the last row repeated past m, not stored) by columns 0…n−1 in 16-wide tiles.</summary>
    private static void ShallowRows(float* a, long rowStep, long depthStep, int i0, int m, float* b, int ldb, int n, int k,
        float alpha, float beta, float* c, int ldc)
    {
        float* a0 = a + i0 * rowStep, a1 = a + Math.Min(i0 + 1, m - 1) * rowStep;
        float* a2 = a + Math.Min(i0 + 2, m - 1) * rowStep, a3 = a + Math.Min(i0 + 3, m - 1) * rowStep;
        var va = Vector256.Create(alpha);
        for (int j0 = 0; j0 < n; j0 += 16)
        {
            Vector256<float> s00 = default, s01 = default, s10 = default, s11 = default;
            Vector256<float> s20 = default, s21 = default, s30 = default, s31 = default;
            float* bp = b + j0;
            for (int p = 0; p < k; p++, bp += ldb)
            {
                var w0 = Vector256.Load(bp);
                var w1 = Vector256.Load(bp + 8);
                long at = p * depthStep;
                var x = Vector256.Create(a0[at]); s00 = CpuIsa.MulAdd(x, w0, s00); s01 = CpuIsa.MulAdd(x, w1, s01);
                x = Vector256.Create(a1[at]); s10 = CpuIsa.MulAdd(x, w0, s10); s11 = CpuIsa.MulAdd(x, w1, s11);
                x = Vector256.Create(a2[at]); s20 = CpuIsa.MulAdd(x, w0, s20); s21 = CpuIsa.MulAdd(x, w1, s21);
                x = Vector256.Create(a3[at]); s30 = CpuIsa.MulAdd(x, w0, s30); s31 = CpuIsa.MulAdd(x, w1, s31);
            }
            // One k-block only: the packed kernel's store for its first block gives the same bits.
            float* row = c + (long)i0 * ldc + j0;
            Sgemm.StoreRow(row, s00, s01, va, beta, firstBlock: true);
            if (i0 + 1 < m) Sgemm.StoreRow(row + ldc, s10, s11, va, beta, firstBlock: true);
            if (i0 + 2 < m) Sgemm.StoreRow(row + 2 * ldc, s20, s21, va, beta, firstBlock: true);
            if (i0 + 3 < m) Sgemm.StoreRow(row + 3 * ldc, s30, s31, va, beta, firstBlock: true);
        }
    }

    /// <summary>β·C + αAB rounded as the packed kernel's store rounds it (β = 0 never reads C: it may hold NaN garbage).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Finish(float product, float beta, float* c) =>
        beta == 0 ? product : beta == 1 ? product + *c : CpuIsa.MulAdd(beta, *c, product);
}
