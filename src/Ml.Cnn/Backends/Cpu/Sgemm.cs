using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Ml.Cnn.Backends.Cpu;

/// <summary>
/// Single-precision GEMM in the BLIS/Goto style: C ← α·op(A)·op(B) + β·C, row-major. B is packed into KC×NR
/// slivers shared by all threads, A into MR×KC slivers per thread, and a register-blocked micro-kernel does the
/// arithmetic: 12×32 with twenty-four 16-wide accumulators where AVX-512 exists (fewer instructions per FMA, which
/// is what limits the narrower kernel), elsewhere 6 rows by two vectors with twelve accumulators, written once for
/// 256-bit (AVX2: 6×16) and 128-bit vectors (SSE, Arm64 AdvSimd: 6×8). Each element of C is computed by one thread
/// with a fixed k-order, the same at every width, so results do not depend on the thread count.
/// </summary>
internal static unsafe class Sgemm
{
    /// <summary>The vector width of the micro-kernel: the widest here; tests switch to the narrower ones to exercise them.</summary>
    internal static int KernelBits { get; set; } = W512.IsSupported ? 512 : W256.IsSupported ? 256 : 128;
    // MC is a multiple of both MRs. KC is deep: an A block (144 × 1024) still fits the 1 MiB L2 of current x86 cores,
    // and fewer k-blocks mean fewer C updates, fewer packing passes and fewer thread barriers, which matters most when
    // M is small (dense layers, per-chunk convolutions). KC must not depend on M: the summation order would then
    // depend on the batch size.
    private const int KC = 1024, MC = 144, NC = 3072;

    [ThreadStatic] private static float[]? t_packedA;
    [ThreadStatic] private static float[]? t_packedB;
    [ThreadStatic] private static float[]? t_partials;

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
        if (transB && !transA && n <= SmallGemm.MaxDotColumns)
        {
            SmallGemm.RowDots(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads);
            return;
        }
        // Below about a million multiply-adds, waking a second thread and sharing the packed panel costs more than it saves.
        if ((long)m * n * k < 1 << 20)
        {
            if (!transB && k <= SmallGemm.MaxShallowDepth)
            {
                SmallGemm.Shallow(transA, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
                return;
            }
            threads = 1;
        }
        if (threads > 1 && k >= 4 * KC && (long)m * n <= MaxSplitOutputs && beta is 0 or 1)
        {
            MultiplySplitK(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads);
            return;
        }
        Blocked(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads);
    }

    // Up to this many elements of C, a deep product splits its reduction over the threads (MultiplySplitK).
    private const int MaxSplitOutputs = 1 << 16;

    /// <summary>
    /// A small C over a deep reduction (a convolution's weight gradient over a chunk's pixels: 64 × 147 over 16,384):
    /// row and column blocks leave the threads a few tiles each and a barrier per k-block, so instead each thread takes
    /// whole k-blocks, product αA·B of its own into a buffer, and the caller adds them in k order. That is the
    /// sequence of additions the one-thread loop over k-blocks performs, so C is the same to the bit, whatever the
    /// thread count.
    /// </summary>
    private static void MultiplySplitK(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, int threads)
    {
        int parts = (k + KC - 1) / KC;
        float[] partials = ThreadBuffer(ref t_partials, parts * m * n);
        fixed (float* buffer = partials)
        {
            float* products = buffer;
            CpuWork.For(parts, threads, part =>
            {
                int pc = part * KC, kc = Math.Min(KC, k - pc);
                float* partA = transA ? a + (long)pc * lda : a + pc, partB = transB ? b + pc : b + (long)pc * ldb;
                Blocked(transA, transB, m, n, kc, alpha, partA, lda, partB, ldb, 0f, products + (long)part * m * n, n, threads: 1);
            });
            for (int i = 0; i < m; i++)
            {
                float* row = c + (long)i * ldc;
                var first = new ReadOnlySpan<float>(products + (long)i * n, n);
                // The first k-block meets C as the micro-kernel's store does (β is 0 or 1 here): β = 0 never reads C.
                if (beta == 0) first.CopyTo(new Span<float>(row, n));
                else for (int j = 0; j < n; j++) row[j] = first[j] + row[j];
                for (int part = 1; part < parts; part++)
                {
                    float* product = products + ((long)part * m + i) * n;
                    for (int j = 0; j < n; j++) row[j] += product[j];
                }
            }
        }
    }

    /// <summary>The packed, register-blocked product (the BLIS loops) for any shape the special cases above leave.</summary>
    private static void Blocked(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, int threads)
    {
        var operands = new Operands(transA, transB, a, lda, b, ldb, c, ldc, alpha, KernelBits);
        int MR = operands.MR, NR = operands.NR;
        // Row blocks of equal size, as many as a multiple of the thread count, so no thread waits on a short block.
        int blocks = (m + MC - 1) / MC;
        if (threads > 1) blocks = (blocks + threads - 1) / threads * threads;
        int blockRows = Math.Min(MC, ((m + blocks - 1) / blocks + MR - 1) / MR * MR);
        int icBlocks = (m + blockRows - 1) / blockRows;
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
                            RunTask(operands, task, jChunks, slivers, blockRows, m, jc, nc, pc, kc, firstBlock, beta, pbp);
                    else
                        Parallel.For(0, tasks, new ParallelOptions { MaxDegreeOfParallelism = threads }, task =>
                            RunTask(operands, task, jChunks, slivers, blockRows, m, jc, nc, pc, kc, firstBlock, beta, pbp));
                }
            }
        }
    }

    private static float[] ThreadBuffer(ref float[]? slot, int length)
    {
        if (slot is null || slot.Length < length) slot = GC.AllocateUninitializedArray<float>(length, pinned: true);
        return slot;
    }

    private readonly struct Operands(bool transA, bool transB, float* a, int lda, float* b, int ldb, float* c, int ldc, float alpha, int bits)
    {
        public readonly int Bits = bits;
        public readonly int MR = bits == 512 ? 12 : 6, NR = bits == 512 ? 32 : bits / 16;
        public readonly bool TransA = transA, TransB = transB;
        public readonly float* A = a, B = b, C = c;
        public readonly int Lda = lda, Ldb = ldb, Ldc = ldc;
        public readonly float Alpha = alpha;
    }

    private static void RunTask(in Operands op, int task, int jChunks, int slivers, int blockRows, int m, int jc, int nc, int pc, int kc,
        bool firstBlock, float beta, float* packedB)
    {
        int icBlock = task / jChunks, jChunk = task % jChunks;
        int ic = icBlock * blockRows, mc = Math.Min(blockRows, m - ic);
        int sliverStart = slivers * jChunk / jChunks, sliverEnd = slivers * (jChunk + 1) / jChunks;
        var packedABuffer = ThreadBuffer(ref t_packedA, MC * KC);
        fixed (float* packedA = packedABuffer)
        {
            PackA(op, ic, mc, pc, kc, packedA);
            for (int s = sliverStart; s < sliverEnd; s++)
            {
                int jr = s * op.NR, nr = Math.Min(op.NR, nc - jr);
                float* bSliver = packedB + (long)s * kc * op.NR;
                for (int ir = 0; ir < mc; ir += op.MR)
                {
                    int mr = Math.Min(op.MR, mc - ir);
                    float* cTile = op.C + (long)(ic + ir) * op.Ldc + jc + jr;
                    float* aSliver = packedA + (long)ir * kc;
                    if (mr == op.MR && nr == op.NR)
                        Kernel(op.Bits, kc, aSliver, bSliver, cTile, op.Ldc, op.Alpha, beta, firstBlock);
                    else
                        EdgeKernel(op.Bits, op.NR, kc, aSliver, bSliver, cTile, op.Ldc, op.Alpha, beta, firstBlock, mr, nr);
                }
            }
        }
    }

    private static void PackA(in Operands op, int ic, int mc, int pc, int kc, float* dst)
    {
        for (int ir = 0; ir < mc; ir += op.MR)
        {
            int mr = Math.Min(op.MR, mc - ir);
            float* d = dst + (long)ir * kc;
            if (!op.TransA)
            {
                for (int r = 0; r < op.MR; r++)
                {
                    if (r >= mr) { for (int p = 0; p < kc; p++) d[p * op.MR + r] = 0; continue; }
                    float* src = op.A + (long)(ic + ir + r) * op.Lda + pc;
                    for (int p = 0; p < kc; p++) d[p * op.MR + r] = src[p];
                }
            }
            else
            {
                for (int p = 0; p < kc; p++)
                {
                    float* src = op.A + (long)(pc + p) * op.Lda + ic + ir;
                    for (int r = 0; r < mr; r++) d[p * op.MR + r] = src[r];
                    for (int r = mr; r < op.MR; r++) d[p * op.MR + r] = 0;
                }
            }
        }
    }

    private static void PackB(in Operands op, int pc, int kc, int jc, int nc, int sliverStart, int sliverEnd, float* dst)
    {
        for (int s = sliverStart; s < sliverEnd; s++)
        {
            int jr = s * op.NR, nr = Math.Min(op.NR, nc - jr);
            float* d = dst + (long)s * kc * op.NR;
            if (!op.TransB)
            {
                float* src = op.B + (long)pc * op.Ldb + jc + jr;
                if (nr == op.NR)
                {
                    // A copy call per 8–32 floats costs more than the copy: whole vectors (NR is a multiple of 8).
                    for (int p = 0; p < kc; p++, src += op.Ldb, d += op.NR)
                        if (Vector256.IsHardwareAccelerated)
                            for (int j = 0; j < op.NR; j += 8) Vector256.Store(Vector256.Load(src + j), d + j);
                        else
                            for (int j = 0; j < op.NR; j += 4) Vector128.Store(Vector128.Load(src + j), d + j);
                }
                else
                {
                    for (int p = 0; p < kc; p++, src += op.Ldb, d += op.NR)
                    {
                        for (int j = 0; j < nr; j++) d[j] = src[j];
                        for (int j = nr; j < op.NR; j++) d[j] = 0;
                    }
                }
            }
            else
            {
                int p0 = 0;
                if (nr == op.NR && Avx.IsSupported)
                {
                    // op(B) = Bᵀ: rows of B become columns of the sliver; move them 8×8 at a time through registers.
                    for (; p0 + 8 <= kc; p0 += 8)
                        for (int j = 0; j < op.NR; j += 8)
                            Transpose8x8(op.B + (long)(jc + jr + j) * op.Ldb + pc + p0, op.Ldb, d + p0 * op.NR + j, op.NR);
                }
                for (int j = 0; j < op.NR; j++)
                {
                    if (j >= nr) { for (int p = p0; p < kc; p++) d[p * op.NR + j] = 0; continue; }
                    float* src = op.B + (long)(jc + jr + j) * op.Ldb + pc;
                    for (int p = p0; p < kc; p++) d[p * op.NR + j] = src[p];
                }
            }
        }
    }

    /// <summary>dst[c, r] = src[r, c] for an 8×8 block (row strides in floats).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x8(float* src, int srcStride, float* dst, int dstStride)
    {
        var r0 = Avx.LoadVector256(src); var r1 = Avx.LoadVector256(src + srcStride);
        var r2 = Avx.LoadVector256(src + 2 * srcStride); var r3 = Avx.LoadVector256(src + 3 * srcStride);
        var r4 = Avx.LoadVector256(src + 4 * srcStride); var r5 = Avx.LoadVector256(src + 5 * srcStride);
        var r6 = Avx.LoadVector256(src + 6 * srcStride); var r7 = Avx.LoadVector256(src + 7 * srcStride);
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(dst, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(dst + dstStride, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(dst + 2 * dstStride, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(dst + 3 * dstStride, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(dst + 4 * dstStride, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(dst + 5 * dstStride, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(dst + 6 * dstStride, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(dst + 7 * dstStride, Avx.Permute2x128(u3, u7, 0x31));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Kernel(int bits, int kc, float* a, float* b, float* c, int ldc, float alpha, float beta, bool firstBlock)
    {
        if (bits == 512) MicroKernel512(kc, a, b, c, ldc, alpha, beta, firstBlock);
        else if (bits == 256) MicroKernel<Vector256<float>, W256>(kc, a, b, c, ldc, alpha, beta, firstBlock);
        else MicroKernel<Vector128<float>, W128>(kc, a, b, c, ldc, alpha, beta, firstBlock);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MicroKernel512(int kc, float* a, float* b, float* c, int ldc, float alpha, float beta, bool firstBlock)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default, c70 = default, c71 = default, c80 = default, c81 = default;
        Vector512<float> c90 = default, c91 = default, cA0 = default, cA1 = default, cB0 = default, cB1 = default;
        for (int p = 0; p < kc; p++, a += 12, b += 32)
        {
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + 16);
            var av = Vector512.Create(a[0]); c00 = Avx512F.FusedMultiplyAdd(av, b0, c00); c01 = Avx512F.FusedMultiplyAdd(av, b1, c01);
            av = Vector512.Create(a[1]); c10 = Avx512F.FusedMultiplyAdd(av, b0, c10); c11 = Avx512F.FusedMultiplyAdd(av, b1, c11);
            av = Vector512.Create(a[2]); c20 = Avx512F.FusedMultiplyAdd(av, b0, c20); c21 = Avx512F.FusedMultiplyAdd(av, b1, c21);
            av = Vector512.Create(a[3]); c30 = Avx512F.FusedMultiplyAdd(av, b0, c30); c31 = Avx512F.FusedMultiplyAdd(av, b1, c31);
            av = Vector512.Create(a[4]); c40 = Avx512F.FusedMultiplyAdd(av, b0, c40); c41 = Avx512F.FusedMultiplyAdd(av, b1, c41);
            av = Vector512.Create(a[5]); c50 = Avx512F.FusedMultiplyAdd(av, b0, c50); c51 = Avx512F.FusedMultiplyAdd(av, b1, c51);
            av = Vector512.Create(a[6]); c60 = Avx512F.FusedMultiplyAdd(av, b0, c60); c61 = Avx512F.FusedMultiplyAdd(av, b1, c61);
            av = Vector512.Create(a[7]); c70 = Avx512F.FusedMultiplyAdd(av, b0, c70); c71 = Avx512F.FusedMultiplyAdd(av, b1, c71);
            av = Vector512.Create(a[8]); c80 = Avx512F.FusedMultiplyAdd(av, b0, c80); c81 = Avx512F.FusedMultiplyAdd(av, b1, c81);
            av = Vector512.Create(a[9]); c90 = Avx512F.FusedMultiplyAdd(av, b0, c90); c91 = Avx512F.FusedMultiplyAdd(av, b1, c91);
            av = Vector512.Create(a[10]); cA0 = Avx512F.FusedMultiplyAdd(av, b0, cA0); cA1 = Avx512F.FusedMultiplyAdd(av, b1, cA1);
            av = Vector512.Create(a[11]); cB0 = Avx512F.FusedMultiplyAdd(av, b0, cB0); cB1 = Avx512F.FusedMultiplyAdd(av, b1, cB1);
        }
        var va = Vector512.Create(alpha);
        StoreRow512(c, c00, c01, va, beta, firstBlock); c += ldc;
        StoreRow512(c, c10, c11, va, beta, firstBlock); c += ldc;
        StoreRow512(c, c20, c21, va, beta, firstBlock); c += ldc;
        StoreRow512(c, c30, c31, va, beta, firstBlock); c += ldc;
        StoreRow512(c, c40, c41, va, beta, firstBlock); c += ldc;
        StoreRow512(c, c50, c51, va, beta, firstBlock); c += ldc;
        StoreRow512(c, c60, c61, va, beta, firstBlock); c += ldc;
        StoreRow512(c, c70, c71, va, beta, firstBlock); c += ldc;
        StoreRow512(c, c80, c81, va, beta, firstBlock); c += ldc;
        StoreRow512(c, c90, c91, va, beta, firstBlock); c += ldc;
        StoreRow512(c, cA0, cA1, va, beta, firstBlock); c += ldc;
        StoreRow512(c, cB0, cB1, va, beta, firstBlock);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow512(float* c, Vector512<float> lo, Vector512<float> hi, Vector512<float> alpha, float beta, bool firstBlock)
    {
        lo *= alpha;
        hi *= alpha;
        if (!firstBlock || beta == 1)
        {
            lo += Vector512.Load(c);
            hi += Vector512.Load(c + 16);
        }
        else if (beta != 0)
        {
            var vb = Vector512.Create(beta);
            lo = Avx512F.FusedMultiplyAdd(vb, Vector512.Load(c), lo);
            hi = Avx512F.FusedMultiplyAdd(vb, Vector512.Load(c + 16), hi);
        }
        Vector512.Store(lo, c);
        Vector512.Store(hi, c + 16);
    }

    /// <summary>6 rows by two vectors (6×16 at 256 bits, 6×8 at 128): twelve accumulators, within 16 registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MicroKernel<V, S>(int kc, float* a, float* b, float* c, int ldc, float alpha, float beta, bool firstBlock)
        where V : struct where S : struct, ISimd<V>
    {
        int l = S.Lanes, nr = 2 * l;
        V c00 = S.Zero, c01 = S.Zero, c10 = S.Zero, c11 = S.Zero, c20 = S.Zero, c21 = S.Zero;
        V c30 = S.Zero, c31 = S.Zero, c40 = S.Zero, c41 = S.Zero, c50 = S.Zero, c51 = S.Zero;
        for (int p = 0; p < kc; p++, a += 6, b += nr)
        {
            var b0 = S.Load(b);
            var b1 = S.Load(b + l);
            var av = S.Broadcast(a[0]); c00 = S.MulAdd(av, b0, c00); c01 = S.MulAdd(av, b1, c01);
            av = S.Broadcast(a[1]); c10 = S.MulAdd(av, b0, c10); c11 = S.MulAdd(av, b1, c11);
            av = S.Broadcast(a[2]); c20 = S.MulAdd(av, b0, c20); c21 = S.MulAdd(av, b1, c21);
            av = S.Broadcast(a[3]); c30 = S.MulAdd(av, b0, c30); c31 = S.MulAdd(av, b1, c31);
            av = S.Broadcast(a[4]); c40 = S.MulAdd(av, b0, c40); c41 = S.MulAdd(av, b1, c41);
            av = S.Broadcast(a[5]); c50 = S.MulAdd(av, b0, c50); c51 = S.MulAdd(av, b1, c51);
        }
        var va = S.Broadcast(alpha);
        StoreRow<V, S>(c, c00, c01, va, beta, firstBlock); c += ldc;
        StoreRow<V, S>(c, c10, c11, va, beta, firstBlock); c += ldc;
        StoreRow<V, S>(c, c20, c21, va, beta, firstBlock); c += ldc;
        StoreRow<V, S>(c, c30, c31, va, beta, firstBlock); c += ldc;
        StoreRow<V, S>(c, c40, c41, va, beta, firstBlock); c += ldc;
        StoreRow<V, S>(c, c50, c51, va, beta, firstBlock);
    }

    /// <summary>Writes two vectors of a row: α·sums, plus C when not the first k-block (or β = 1), plus β·C otherwise.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void StoreRow<V, S>(float* c, V lo, V hi, V alpha, float beta, bool firstBlock) where V : struct where S : struct, ISimd<V>
    {
        lo = S.Multiply(lo, alpha);
        hi = S.Multiply(hi, alpha);
        if (!firstBlock || beta == 1)
        {
            lo = S.Add(lo, S.Load(c));
            hi = S.Add(hi, S.Load(c + S.Lanes));
        }
        else if (beta != 0)
        {
            // β = 0 must not read C: it may hold NaN garbage that 0·NaN would propagate.
            var vb = S.Broadcast(beta);
            lo = S.MulAdd(vb, S.Load(c), lo);
            hi = S.MulAdd(vb, S.Load(c + S.Lanes), hi);
        }
        S.Store(c, lo);
        S.Store(c + S.Lanes, hi);
    }

    private static void EdgeKernel(int bits, int tileWidth, int kc, float* a, float* b, float* c, int ldc, float alpha, float beta, bool firstBlock, int mr, int nr)
    {
        float* tile = stackalloc float[12 * 32];
        Kernel(bits, kc, a, b, tile, tileWidth, alpha, 0f, true);
        bool addC = !firstBlock || beta == 1;
        for (int i = 0; i < mr; i++)
        {
            float* source = tile + i * tileWidth, target = c + (long)i * ldc;
            for (int j = 0; j < nr; j++)
            {
                float value = source[j];
                if (addC) value += target[j];
                else if (beta != 0) value += beta * target[j];
                target[j] = value;
            }
        }
    }

    private static void ScaleC(int m, int n, float beta, float* c, int ldc)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                c[(long)i * ldc + j] = beta == 0 ? 0 : beta * c[(long)i * ldc + j];
    }
}
