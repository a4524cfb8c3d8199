using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ml.Cnn.Backends.Cpu;

/// <summary>
/// Single-precision GEMM in the BLIS/Goto style: C ← α·op(A)·op(B) + β·C, row-major. B is packed into KC×NR
/// slivers shared by all threads, A into MR×KC slivers per thread, and a 6×16 register-blocked micro-kernel
/// (twelve 8-wide FMA accumulators) does the arithmetic. Each element of C is computed by one thread with a fixed
/// k-order, so results do not depend on the thread count.
/// </summary>
internal static unsafe class Sgemm
{
    internal const int MR = 6, NR = 16;
    private const int KC = 256, MC = 144, NC = 3072;

    [ThreadStatic] private static float[]? t_packedA;
    [ThreadStatic] private static float[]? t_packedB;

    /// <summary>Runs the product on up to <paramref name="threads"/> threads (1 runs inline on the caller).</summary>
    public static void Multiply(bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc, int threads)
    {
        if (m == 0 || n == 0) return;
        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
            Multiply(transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc, threads);
    }

    public static void Multiply(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, int threads)
    {
        if (k == 0 || alpha == 0)
        {
            ScaleC(m, n, beta, c, ldc);
            return;
        }
        var operands = new Operands(transA, transB, a, lda, b, ldb, c, ldc, alpha);
        int icBlocks = (m + MC - 1) / MC;
        for (int jc = 0; jc < n; jc += NC)
        {
            int nc = Math.Min(NC, n - jc);
            int slivers = (nc + NR - 1) / NR;
            // Split the N direction too when M alone gives the threads too little to share.
            int jChunks = threads <= 1 ? 1 : Math.Clamp(2 * threads / icBlocks, 1, slivers);
            for (int pc = 0; pc < k; pc += KC)
            {
                int kc = Math.Min(KC, k - pc);
                bool firstBlock = pc == 0;
                // The calling thread owns the packed B panel; workers only read it.
                float[] packedB = ThreadBuffer(ref t_packedB, KC * NC);
                fixed (float* pbPacked = packedB)
                {
                    float* pbp = pbPacked;
                    if (threads <= 1 || slivers < 4)
                        PackB(operands, pc, kc, jc, nc, 0, slivers, pbp);
                    else
                        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
                            PackB(operands, pc, kc, jc, nc, slivers * t / threads, slivers * (t + 1) / threads, pbp));

                    int tasks = icBlocks * jChunks;
                    if (threads <= 1 || tasks == 1)
                        for (int task = 0; task < tasks; task++)
                            RunTask(operands, task, jChunks, slivers, m, jc, nc, pc, kc, firstBlock, beta, pbp);
                    else
                        Parallel.For(0, tasks, new ParallelOptions { MaxDegreeOfParallelism = threads }, task =>
                            RunTask(operands, task, jChunks, slivers, m, jc, nc, pc, kc, firstBlock, beta, pbp));
                }
            }
        }
    }

    private static float[] ThreadBuffer(ref float[]? slot, int length)
    {
        if (slot is null || slot.Length < length) slot = GC.AllocateUninitializedArray<float>(length, pinned: true);
        return slot;
    }

    private readonly struct Operands(bool transA, bool transB, float* a, int lda, float* b, int ldb, float* c, int ldc, float alpha)
    {
        public readonly bool TransA = transA, TransB = transB;
        public readonly float* A = a, B = b, C = c;
        public readonly int Lda = lda, Ldb = ldb, Ldc = ldc;
        public readonly float Alpha = alpha;
    }

    private static void RunTask(in Operands op, int task, int jChunks, int slivers, int m, int jc, int nc, int pc, int kc,
        bool firstBlock, float beta, float* packedB)
    {
        int icBlock = task / jChunks, jChunk = task % jChunks;
        int ic = icBlock * MC, mc = Math.Min(MC, m - ic);
        int sliverStart = slivers * jChunk / jChunks, sliverEnd = slivers * (jChunk + 1) / jChunks;
        var packedABuffer = ThreadBuffer(ref t_packedA, MC * KC);
        fixed (float* packedA = packedABuffer)
        {
            PackA(op, ic, mc, pc, kc, packedA);
            for (int s = sliverStart; s < sliverEnd; s++)
            {
                int jr = s * NR, nr = Math.Min(NR, nc - jr);
                float* bSliver = packedB + (long)s * kc * NR;
                for (int ir = 0; ir < mc; ir += MR)
                {
                    int mr = Math.Min(MR, mc - ir);
                    float* cTile = op.C + (long)(ic + ir) * op.Ldc + jc + jr;
                    float* aSliver = packedA + (long)ir * kc;
                    if (mr == MR && nr == NR)
                        MicroKernel(kc, aSliver, bSliver, cTile, op.Ldc, op.Alpha, beta, firstBlock);
                    else
                        EdgeKernel(kc, aSliver, bSliver, cTile, op.Ldc, op.Alpha, beta, firstBlock, mr, nr);
                }
            }
        }
    }

    private static void PackA(in Operands op, int ic, int mc, int pc, int kc, float* dst)
    {
        for (int ir = 0; ir < mc; ir += MR)
        {
            int mr = Math.Min(MR, mc - ir);
            float* d = dst + (long)ir * kc;
            if (!op.TransA)
            {
                for (int r = 0; r < MR; r++)
                {
                    if (r >= mr) { for (int p = 0; p < kc; p++) d[p * MR + r] = 0; continue; }
                    float* src = op.A + (long)(ic + ir + r) * op.Lda + pc;
                    for (int p = 0; p < kc; p++) d[p * MR + r] = src[p];
                }
            }
            else
            {
                for (int p = 0; p < kc; p++)
                {
                    float* src = op.A + (long)(pc + p) * op.Lda + ic + ir;
                    for (int r = 0; r < mr; r++) d[p * MR + r] = src[r];
                    for (int r = mr; r < MR; r++) d[p * MR + r] = 0;
                }
            }
        }
    }

    private static void PackB(in Operands op, int pc, int kc, int jc, int nc, int sliverStart, int sliverEnd, float* dst)
    {
        for (int s = sliverStart; s < sliverEnd; s++)
        {
            int jr = s * NR, nr = Math.Min(NR, nc - jr);
            float* d = dst + (long)s * kc * NR;
            if (!op.TransB)
            {
                float* src = op.B + (long)pc * op.Ldb + jc + jr;
                if (nr == NR)
                {
                    for (int p = 0; p < kc; p++, src += op.Ldb, d += NR)
                    {
                        Vector256.Store(Vector256.Load(src), d);
                        Vector256.Store(Vector256.Load(src + 8), d + 8);
                    }
                }
                else
                {
                    for (int p = 0; p < kc; p++, src += op.Ldb, d += NR)
                    {
                        for (int j = 0; j < nr; j++) d[j] = src[j];
                        for (int j = nr; j < NR; j++) d[j] = 0;
                    }
                }
            }
            else
            {
                for (int j = 0; j < NR; j++)
                {
                    if (j >= nr) { for (int p = 0; p < kc; p++) d[p * NR + j] = 0; continue; }
                    float* src = op.B + (long)(jc + jr + j) * op.Ldb + pc;
                    for (int p = 0; p < kc; p++) d[p * NR + j] = src[p];
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> MulAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) =>
        Fma.IsSupported ? Fma.MultiplyAdd(a, b, c) : a * b + c;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MicroKernel(int kc, float* a, float* b, float* c, int ldc, float alpha, float beta, bool firstBlock)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++, a += MR, b += NR)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            var av = Vector256.Create(a[0]); c00 = MulAdd(av, b0, c00); c01 = MulAdd(av, b1, c01);
            av = Vector256.Create(a[1]); c10 = MulAdd(av, b0, c10); c11 = MulAdd(av, b1, c11);
            av = Vector256.Create(a[2]); c20 = MulAdd(av, b0, c20); c21 = MulAdd(av, b1, c21);
            av = Vector256.Create(a[3]); c30 = MulAdd(av, b0, c30); c31 = MulAdd(av, b1, c31);
            av = Vector256.Create(a[4]); c40 = MulAdd(av, b0, c40); c41 = MulAdd(av, b1, c41);
            av = Vector256.Create(a[5]); c50 = MulAdd(av, b0, c50); c51 = MulAdd(av, b1, c51);
        }
        var va = Vector256.Create(alpha);
        StoreRow(c, c00, c01, va, beta, firstBlock); c += ldc;
        StoreRow(c, c10, c11, va, beta, firstBlock); c += ldc;
        StoreRow(c, c20, c21, va, beta, firstBlock); c += ldc;
        StoreRow(c, c30, c31, va, beta, firstBlock); c += ldc;
        StoreRow(c, c40, c41, va, beta, firstBlock); c += ldc;
        StoreRow(c, c50, c51, va, beta, firstBlock);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(float* c, Vector256<float> lo, Vector256<float> hi, Vector256<float> alpha, float beta, bool firstBlock)
    {
        lo *= alpha;
        hi *= alpha;
        if (!firstBlock || beta == 1)
        {
            lo += Vector256.Load(c);
            hi += Vector256.Load(c + 8);
        }
        else if (beta != 0)
        {
            // β = 0 must not read C: it may hold NaN garbage that 0·NaN would propagate.
            var vb = Vector256.Create(beta);
            lo = MulAdd(vb, Vector256.Load(c), lo);
            hi = MulAdd(vb, Vector256.Load(c + 8), hi);
        }
        Vector256.Store(lo, c);
        Vector256.Store(hi, c + 8);
    }

    private static void EdgeKernel(int kc, float* a, float* b, float* c, int ldc, float alpha, float beta, bool firstBlock, int mr, int nr)
    {
        float* tile = stackalloc float[MR * NR];
        MicroKernel(kc, a, b, tile, NR, alpha, 0f, true);
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < nr; j++)
            {
                float* target = c + (long)i * ldc + j;
                float value = tile[i * NR + j];
                if (!firstBlock || beta == 1) value += *target;
                else if (beta != 0) value += beta * *target;
                *target = value;
            }
    }

    private static void ScaleC(int m, int n, float beta, float* c, int ldc)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                c[(long)i * ldc + j] = beta == 0 ? 0 : beta * c[(long)i * ldc + j];
    }
}
