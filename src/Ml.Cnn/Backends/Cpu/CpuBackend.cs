using System.Buffers;
using System.Numerics;
using System.Runtime.InteropServices;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Backends.Cpu;

/// <summary>
/// The optimized CPU backend: packed AVX2/FMA SGEMM (portable vector fallback elsewhere), im2col convolution, SIMD
/// pointwise loops, all spread over <see cref="Threads"/> cores. Work is split statically wherever partial results
/// are summed, so the same thread count always gives bit-identical results.
/// </summary>
public sealed class CpuBackend : HostBackend, IBackend
{
    /// <summary>Creates a backend using <paramref name="threads"/> cores (default: all).</summary>
    public CpuBackend(int threads = 0)
    {
        if (threads < 0) throw new ArgumentOutOfRangeException(nameof(threads), threads, "Thread count must be positive, or 0 for all cores.");
        Threads = threads == 0 ? Environment.ProcessorCount : threads;
    }

    /// <summary>Number of worker threads; results are deterministic for a given value.</summary>
    public int Threads { get; }

    /// <inheritdoc />
    public string Name => $"cpu({Threads} threads)";

    /// <inheritdoc />
    public Tensor Allocate(TensorShape shape) => AllocateHost(this, shape);

    private void For(int count, Action<int> body) => CpuWork.For(count, Threads, body);

    /// <summary>Runs body(start, end) over about equal contiguous ranges of [0, length), one per thread.</summary>
    private void ForRanges(int length, int minimumPerRange, Action<int, int> body)
    {
        int ranges = Math.Clamp(length / Math.Max(1, minimumPerRange), 1, Threads);
        For(ranges, r => body((int)((long)length * r / ranges), (int)((long)length * (r + 1) / ranges)));
    }

    // ---- elementwise and data movement ----

    /// <inheritdoc />
    public void Fill(Tensor t, float value) => Data(t).Fill(value);

    /// <inheritdoc />
    public void Copy(Tensor src, Tensor dst) => Data(src).CopyTo(Data(dst));

    /// <inheritdoc />
    public void Add(Tensor a, Tensor b, Tensor y)
    {
        var (fa, fb, fy) = (Array(a), Array(b), Array(y));
        ForRanges(y.Length, 1 << 15, (start, end) =>
        {
            var sy = fy.AsSpan(start, end - start);
            fa.AsSpan(start, end - start).CopyTo(sy);
            Pointwise.AddInto(sy, fb.AsSpan(start, end - start));
        });
    }

    /// <inheritdoc />
    public void Axpy(float alpha, Tensor x, Tensor y)
    {
        var (fy, fx) = (Array(y), Array(x));
        ForRanges(y.Length, 1 << 15, (start, end) => Pointwise.AddScaledInto(fy.AsSpan(start, end - start), alpha, fx.AsSpan(start, end - start)));
    }

    /// <inheritdoc />
    public void Scale(Tensor t, float factor)
    {
        var vs = MemoryMarshal.Cast<float, Vector<float>>(Data(t));
        for (int i = 0; i < vs.Length; i++) vs[i] *= factor;
        var s = Data(t);
        for (int i = vs.Length * Vector<float>.Count; i < s.Length; i++) s[i] *= factor;
    }

    /// <inheritdoc />
    public double SumOfSquares(Tensor t)
    {
        var s = Data(t);
        double sum = 0;
        // Chunks keep float lane sums short enough to stay accurate.
        for (int start = 0; start < s.Length; start += 4096)
        {
            var chunk = s.Slice(start, Math.Min(4096, s.Length - start));
            var acc = Vector<float>.Zero;
            var vs = MemoryMarshal.Cast<float, Vector<float>>(chunk);
            foreach (var v in vs) acc += v * v;
            sum += Vector.Sum(acc);
            for (int i = vs.Length * Vector<float>.Count; i < chunk.Length; i++) sum += (double)chunk[i] * chunk[i];
        }
        return sum;
    }

    /// <inheritdoc />
    public double SumOfSquares(IReadOnlyList<Tensor> tensors)
    {
        double sum = 0;
        foreach (var t in tensors) sum += SumOfSquares(t);
        return sum;
    }

    /// <inheritdoc />
    public void CopyChannels(Tensor src, int srcChannelOffset, Tensor dst, int dstChannelOffset, int channels)
    {
        int n = src.Shape.N, srcC = src.Shape[1], dstC = dst.Shape[1];
        int plane = src.Shape.ItemLength / srcC;
        var (s, d) = (Array(src), Array(dst));
        for (int i = 0; i < n; i++)
            s.AsSpan((i * srcC + srcChannelOffset) * plane, channels * plane)
             .CopyTo(d.AsSpan((i * dstC + dstChannelOffset) * plane, channels * plane));
    }

    // ---- matrix products ----

    /// <inheritdoc />
    public void MatMul(Tensor a, bool transposeA, Tensor b, bool transposeB, Tensor c, float alpha = 1f, float beta = 0f)
    {
        var (m, n, k) = MatMulShape(a, transposeA, b, transposeB, c);
        Sgemm.Multiply(transposeA, transposeB, m, n, k, alpha, Data(a), a.Shape[1], Data(b), b.Shape[1], beta, Data(c), n, Threads);
    }

    /// <inheritdoc />
    public void DenseForward(Tensor x, Tensor w, Tensor? b, Tensor y)
    {
        int n = x.Shape.N, inF = x.Shape.ItemLength, outF = w.Shape[0];
        Sgemm.Multiply(false, true, n, outF, inF, 1f, Data(x), inF, Data(w), inF, 0f, Data(y), outF, Threads);
        if (b is null) return;
        var (fy, fb) = (Array(y), Array(b));
        for (int i = 0; i < n; i++) Pointwise.AddInto(fy.AsSpan(i * outF, outF), fb);
    }

    /// <inheritdoc />
    public void DenseBackward(Tensor x, Tensor w, Tensor dy, Tensor? dx, Tensor dw, Tensor? db)
    {
        int n = x.Shape.N, inF = x.Shape.ItemLength, outF = w.Shape[0];
        if (dx is not null)
            Sgemm.Multiply(false, false, n, inF, outF, 1f, Data(dy), outF, Data(w), inF, 0f, Data(dx), inF, Threads);
        Sgemm.Multiply(true, false, outF, inF, n, 1f, Data(dy), outF, Data(x), inF, 0f, Data(dw), inF, Threads);
        if (db is null) return;
        var (fdy, fdb) = (Array(dy), Array(db));
        System.Array.Clear(fdb);
        for (int i = 0; i < n; i++) Pointwise.AddInto(fdb, fdy.AsSpan(i * outF, outF));
    }

    // ---- convolution ----
    //
    // Images are processed in chunks laid side by side in one im2col matrix, so each GEMM is large (N = images ×
    // OutH·OutW) and runs on all threads, instead of many small per-image GEMMs that waste the register tile's edges.
    // The chunk size depends only on the geometry, never on the thread count, so results stay reproducible.

    private const int ColumnBudget = 1 << 22; // floats in one chunk's im2col matrix (16 MiB)

    // Scratch matrices of the calling thread, kept between calls: renting 16 MiB arrays per call costs more than the copy.
    [ThreadStatic] private static float[]? t_columns, t_matrix, t_layerNormShares, t_layerNormSums;

    private static int ImagesPerChunk(in ConvGeometry g)
    {
        long perImage = (long)g.PatchSize * g.OutH * g.OutW;
        if (perImage > System.Array.MaxLength)
            throw new ArgumentException($"Convolution {g.InChannels}x{g.InH}x{g.InW} → {g.OutChannels}x{g.OutH}x{g.OutW} with a {g.KernelH}x{g.KernelW} kernel needs an im2col matrix of {perImage} values for one image, more than an array can hold.");
        // Equal chunks: a batch of 64 in chunks of 26 would end with a thin 12-image GEMM.
        int largest = (int)Math.Clamp(ColumnBudget / Math.Max(1, perImage), 1, g.Batch);
        int chunks = (g.Batch + largest - 1) / largest;
        return (g.Batch + chunks - 1) / chunks;
    }

    /// <summary>Whether a SIMD kernel (Winograd, else direct) computes this convolution without im2col.</summary>
    private static bool HasForwardKernel(in ConvGeometry g) => WinogradConvolution.Applies(g) || DirectConvolution.Applies(g);

    /// <summary>y = conv(x, w) + b on a SIMD kernel when one applies (Winograd first); false leaves y untouched.</summary>
    private bool TryForwardKernel(in ConvGeometry g, float[] x, ReadOnlySpan<float> w, float[]? b, float[] y)
    {
        if (WinogradConvolution.Applies(g)) WinogradConvolution.Forward(g, x, w, b, y, Threads);
        else if (DirectConvolution.Applies(g)) DirectConvolution.Forward(g, x, w, b, y, Threads);
        else return false;
        return true;
    }

    /// <inheritdoc />
    public void ConvForward(in ConvGeometry g, Tensor x, Tensor w, Tensor? b, Tensor y)
    {
        var geometry = g;
        var (fx, fw, fy) = (Array(x), Array(w), Array(y));
        float[]? fb = b is null ? null : Array(b);
        if (DepthwiseConvolution.Applies(g))
        {
            DepthwiseConvolution.Forward(g, fx, fw, fb, fy, Threads);
            return;
        }
        if (TryForwardKernel(g, fx, Data(w), fb, fy)) return;
        int plane = g.OutH * g.OutW, goc = g.GroupOutChannels, chunk = ImagesPerChunk(g);
        float[] columns = CpuWork.Scratch(ref t_columns, g.PatchSize * chunk * plane);
        float[] output = CpuWork.Scratch(ref t_matrix, goc * chunk * plane);
        for (int start = 0; start < g.Batch; start += chunk)
        {
            int images = Math.Min(chunk, g.Batch - start), width = images * plane;
            for (int group = 0; group < g.Groups; group++)
            {
                int grp = group;
                UnfoldChunk(g, fx, start, images, group, columns);
                Sgemm.Multiply(false, false, goc, width, g.PatchSize, 1f, fw.AsSpan(group * goc * g.PatchSize), g.PatchSize,
                    columns, width, 0f, output, width, Threads);
                For(images, i =>
                {
                    for (int oc = 0; oc < goc; oc++)
                    {
                        int channel = grp * goc + oc;
                        var dst = fy.AsSpan(((start + i) * geometry.OutChannels + channel) * plane, plane);
                        output.AsSpan(oc * width + i * plane, plane).CopyTo(dst);
                        if (fb is not null) Pointwise.AddScalar(dst, fb[channel]);
                    }
                });
            }
        }
    }

    /// <summary>Unfolds one group of a chunk's images side by side into a [PatchSize, images·plane] matrix.</summary>
    private void UnfoldChunk(in ConvGeometry g, float[] x, int start, int images, int group, float[] columns)
    {
        var geometry = g;
        int inPlane = g.InH * g.InW, plane = g.OutH * g.OutW, width = images * plane;
        For(images, i =>
        {
            var image = x.AsSpan(((start + i) * geometry.InChannels + group * geometry.GroupInChannels) * inPlane, geometry.GroupInChannels * inPlane);
            Im2Col.Unfold(geometry, image, columns, i * plane, width);
        });
    }

    /// <summary>Copies one group's output-gradient planes of a chunk into a [GroupOutChannels, images·plane] matrix.</summary>
    private void GatherOutputGradient(in ConvGeometry g, float[] dy, int start, int images, int group, float[] matrix)
    {
        var geometry = g;
        int plane = g.OutH * g.OutW, goc = g.GroupOutChannels, width = images * plane;
        For(images, i =>
        {
            for (int oc = 0; oc < goc; oc++)
                dy.AsSpan(((start + i) * geometry.OutChannels + group * goc + oc) * plane, plane)
                  .CopyTo(matrix.AsSpan(oc * width + i * plane, plane));
        });
    }

    /// <inheritdoc />
    public void ConvBackwardData(in ConvGeometry g, Tensor dy, Tensor w, Tensor dx)
    {
        var geometry = g;
        var (fdy, fw, fdx) = (Array(dy), Array(w), Array(dx));
        if (DepthwiseConvolution.Applies(g))
        {
            DepthwiseConvolution.DataGradient(g, fdy, fw, fdx, Threads);
            return;
        }
        if (DirectConvolution.DataGradientGeometry(g) is { } transposed && HasForwardKernel(transposed)
            && TryForwardKernel(transposed, fdy, DirectConvolution.DataGradientWeights(g, fw, Threads), null, fdx))
            return;
        int plane = g.OutH * g.OutW, inPlane = g.InH * g.InW, goc = g.GroupOutChannels, chunk = ImagesPerChunk(g);
        float[] columns = CpuWork.Scratch(ref t_columns, g.PatchSize * chunk * plane);
        float[] gradient = CpuWork.Scratch(ref t_matrix, goc * chunk * plane);
        for (int start = 0; start < g.Batch; start += chunk)
        {
            int images = Math.Min(chunk, g.Batch - start), width = images * plane;
            for (int group = 0; group < g.Groups; group++)
            {
                int grp = group;
                GatherOutputGradient(g, fdy, start, images, group, gradient);
                Sgemm.Multiply(true, false, g.PatchSize, width, goc, 1f, fw.AsSpan(group * goc * g.PatchSize), g.PatchSize,
                    gradient, width, 0f, columns, width, Threads);
                For(images, i =>
                {
                    var image = fdx.AsSpan(((start + i) * geometry.InChannels + grp * geometry.GroupInChannels) * inPlane,
                        geometry.GroupInChannels * inPlane);
                    image.Clear();
                    Im2Col.FoldAdd(geometry, columns, i * plane, width, image);
                });
            }
        }
    }

    /// <inheritdoc />
    public void ConvBackwardWeights(in ConvGeometry g, Tensor x, Tensor dy, Tensor dw, Tensor? db)
    {
        var geometry = g;
        var (fx, fdy, fdw) = (Array(x), Array(dy), Array(dw));
        int plane = g.OutH * g.OutW;
        if (DepthwiseConvolution.Applies(g))
        {
            DepthwiseConvolution.WeightGradient(g, fx, fdy, fdw, db is null ? null : Array(db), Threads);
            return;
        }
        // The SIMD kernels sum the bias gradient from their channels-last copy of dy, sparing a pass over it.
        if (WinogradConvolution.Applies(g))
        {
            WinogradConvolution.WeightGradient(g, fx, fdy, fdw, db is null ? null : Array(db), Threads);
            return;
        }
        if (DirectConvolution.AppliesToWeightGradient(g))
        {
            DirectConvolution.WeightGradient(g, fx, fdy, fdw, db is null ? null : Array(db), Threads);
            return;
        }
        WeightGradientByGemm(g, fx, fdy, fdw);
        if (db is not null) Pointwise.ChannelSums(fdy, g.Batch, g.OutChannels, plane, Array(db), Threads);
    }

    private void WeightGradientByGemm(in ConvGeometry g, float[] fx, float[] fdy, float[] fdw)
    {
        int plane = g.OutH * g.OutW, goc = g.GroupOutChannels, chunk = ImagesPerChunk(g);
        float[] columns = CpuWork.Scratch(ref t_columns, g.PatchSize * chunk * plane);
        float[] gradient = CpuWork.Scratch(ref t_matrix, goc * chunk * plane);
        for (int start = 0; start < g.Batch; start += chunk)
        {
            int images = Math.Min(chunk, g.Batch - start), width = images * plane;
            for (int group = 0; group < g.Groups; group++)
            {
                UnfoldChunk(g, fx, start, images, group, columns);
                GatherOutputGradient(g, fdy, start, images, group, gradient);
                Sgemm.Multiply(false, true, goc, g.PatchSize, width, 1f, gradient, width, columns, width,
                    start == 0 ? 0f : 1f, fdw.AsSpan(group * goc * g.PatchSize, goc * g.PatchSize), g.PatchSize, Threads);
            }
        }
    }

    // ---- pooling ----

    /// <inheritdoc />
    public void MaxPoolForward(in PoolGeometry g, Tensor x, Tensor y)
    {
        var geometry = g;
        var (fx, fy) = (Array(x), Array(y));
        For(g.Batch * g.Channels, plane => PoolKernels.MaxForwardPlane(geometry, fx.AsSpan(plane * geometry.InH * geometry.InW, geometry.InH * geometry.InW),
            fy.AsSpan(plane * geometry.OutH * geometry.OutW, geometry.OutH * geometry.OutW)));
    }

    /// <inheritdoc />
    public void MaxPoolBackward(in PoolGeometry g, Tensor x, Tensor dy, Tensor dx)
    {
        var geometry = g;
        var (fx, fdy, fdx) = (Array(x), Array(dy), Array(dx));
        For(g.Batch * g.Channels, plane => PoolKernels.MaxBackwardPlane(geometry,
            fx.AsSpan(plane * geometry.InH * geometry.InW, geometry.InH * geometry.InW),
            fdy.AsSpan(plane * geometry.OutH * geometry.OutW, geometry.OutH * geometry.OutW),
            fdx.AsSpan(plane * geometry.InH * geometry.InW, geometry.InH * geometry.InW)));
    }

    /// <inheritdoc />
    public void AvgPoolForward(in PoolGeometry g, Tensor x, Tensor y)
    {
        var geometry = g;
        var (fx, fy) = (Array(x), Array(y));
        For(g.Batch * g.Channels, plane => PoolKernels.AvgForwardPlane(geometry, fx.AsSpan(plane * geometry.InH * geometry.InW, geometry.InH * geometry.InW),
            fy.AsSpan(plane * geometry.OutH * geometry.OutW, geometry.OutH * geometry.OutW)));
    }

    /// <inheritdoc />
    public void AvgPoolBackward(in PoolGeometry g, Tensor dy, Tensor dx)
    {
        var geometry = g;
        var (fdy, fdx) = (Array(dy), Array(dx));
        For(g.Batch * g.Channels, plane => PoolKernels.AvgBackwardPlane(geometry,
            fdy.AsSpan(plane * geometry.OutH * geometry.OutW, geometry.OutH * geometry.OutW),
            fdx.AsSpan(plane * geometry.InH * geometry.InW, geometry.InH * geometry.InW)));
    }

    /// <inheritdoc />
    public void GlobalAvgPoolForward(Tensor x, Tensor y)
    {
        var (fx, fy) = (Array(x), Array(y));
        int planeSize = x.Length / y.Length;
        For(y.Length, p => fy[p] = (float)(Pointwise.Sum(fx.AsSpan(p * planeSize, planeSize)) / planeSize));
    }

    /// <inheritdoc />
    public void GlobalAvgPoolBackward(Tensor dy, Tensor dx)
    {
        var (fdy, fdx) = (Array(dy), Array(dx));
        int planeSize = dx.Length / dy.Length;
        For(dy.Length, p => fdx.AsSpan(p * planeSize, planeSize).Fill(fdy[p] / planeSize));
    }

    // ---- pointwise nonlinearities and dropout ----

    /// <inheritdoc />
    public void ActivationForward(ActivationKind kind, float alpha, float beta, Tensor x, Tensor y)
    {
        var (fx, fy) = (Array(x), Array(y));
        ForRanges(x.Length, 1 << 14, (start, end) =>
            ActivationKernels.Forward(kind, alpha, beta, fx.AsSpan(start, end - start), fy.AsSpan(start, end - start)));
    }

    /// <inheritdoc />
    public void ActivationBackward(ActivationKind kind, float alpha, float beta, Tensor x, Tensor y, Tensor dy, Tensor dx)
    {
        var (fx, fy, fdy, fdx) = (Array(x), Array(y), Array(dy), Array(dx));
        ForRanges(x.Length, 1 << 14, (start, end) => ActivationKernels.Backward(kind, alpha, beta,
            fx.AsSpan(start, end - start), fy.AsSpan(start, end - start), fdy.AsSpan(start, end - start), fdx.AsSpan(start, end - start)));
    }

    /// <inheritdoc />
    public void Multiply(Tensor a, Tensor b, Tensor y)
    {
        var (fa, fb, fy) = (Array(a), Array(b), Array(y));
        int plane = a.Length / b.Length;
        if (plane == 1)
            ForRanges(a.Length, 1 << 14, (start, end) => Pointwise.Multiply(fa.AsSpan(start, end - start), fb.AsSpan(start, end - start), fy.AsSpan(start, end - start)));
        else
            For(b.Length, j => Pointwise.Scale(fa.AsSpan(j * plane, plane), fb[j], fy.AsSpan(j * plane, plane)));
    }

    /// <inheritdoc />
    public void MultiplyBackward(Tensor a, Tensor b, Tensor dy, Tensor da, Tensor db)
    {
        var (fa, fb, fdy, fda, fdb) = (Array(a), Array(b), Array(dy), Array(da), Array(db));
        int plane = a.Length / b.Length;
        if (plane == 1)
            ForRanges(a.Length, 1 << 14, (start, end) =>
            {
                Pointwise.Multiply(fdy.AsSpan(start, end - start), fb.AsSpan(start, end - start), fda.AsSpan(start, end - start));
                Pointwise.Multiply(fdy.AsSpan(start, end - start), fa.AsSpan(start, end - start), fdb.AsSpan(start, end - start));
            });
        else
            For(b.Length, j =>
            {
                Pointwise.Scale(fdy.AsSpan(j * plane, plane), fb[j], fda.AsSpan(j * plane, plane));
                fdb[j] = Pointwise.Dot(fdy.AsSpan(j * plane, plane), fa.AsSpan(j * plane, plane));
            });
    }

    /// <inheritdoc />
    public void DropoutForward(Tensor x, Tensor y, float p, ulong seed)
    {
        var (fx, fy) = (Array(x), Array(y));
        float keepScale = 1 / (1 - p);
        ForRanges(x.Length, 1 << 14, (start, end) =>
        {
            for (int i = start; i < end; i++) fy[i] = DropoutMask.Keep(seed, i, p) ? fx[i] * keepScale : 0;
        });
    }

    /// <inheritdoc />
    public void DropoutBackward(Tensor dy, Tensor dx, float p, ulong seed) => DropoutForward(dy, dx, p, seed);

    // ---- normalization ----

    /// <inheritdoc />
    public void BatchNormTrainForward(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor savedMean, Tensor savedInvStd,
        Tensor runningMean, Tensor runningVar, float momentum, float epsilon)
    {
        var (fx, fy) = (Array(x), Array(y));
        var (fg, fb, fm, fs, frm, frv) = (Array(gamma), Array(beta), Array(savedMean), Array(savedInvStd), Array(runningMean), Array(runningVar));
        int n = x.Shape.N, c = x.Shape[1], plane = x.Shape.ItemLength / c;
        long count = (long)n * plane;
        For(c, ch =>
        {
            double sum = 0;
            for (int i = 0; i < n; i++) sum += Pointwise.Sum(fx.AsSpan((i * c + ch) * plane, plane));
            float mean = (float)(sum / count);
            double sumSq = 0;
            for (int i = 0; i < n; i++) sumSq += Pointwise.SumSquaredDeviations(fx.AsSpan((i * c + ch) * plane, plane), mean);
            double variance = sumSq / count;
            float invStd = (float)(1 / Math.Sqrt(variance + epsilon));
            fm[ch] = mean;
            fs[ch] = invStd;
            double unbiased = count > 1 ? sumSq / (count - 1) : variance;
            frm[ch] = (float)((1 - momentum) * frm[ch] + momentum * (double)mean);
            frv[ch] = (float)((1 - momentum) * frv[ch] + momentum * unbiased);
            float scale = fg[ch] * invStd, shift = fb[ch] - mean * scale;
            for (int i = 0; i < n; i++) Pointwise.Affine(fx.AsSpan((i * c + ch) * plane, plane), fy.AsSpan((i * c + ch) * plane, plane), scale, shift);
        });
    }

    /// <inheritdoc />
    public void BatchNormEvalForward(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, float epsilon, Tensor y,
        Tensor savedMean, Tensor savedInvStd)
    {
        var (fx, fy) = (Array(x), Array(y));
        var (fg, fb, frm, frv, fm, fs) = (Array(gamma), Array(beta), Array(runningMean), Array(runningVar), Array(savedMean), Array(savedInvStd));
        int n = x.Shape.N, c = x.Shape[1], plane = x.Shape.ItemLength / c;
        For(c, ch =>
        {
            fm[ch] = frm[ch];
            fs[ch] = (float)(1 / Math.Sqrt(frv[ch] + (double)epsilon));
            float scale = fg[ch] * fs[ch], shift = fb[ch] - frm[ch] * scale;
            for (int i = 0; i < n; i++) Pointwise.Affine(fx.AsSpan((i * c + ch) * plane, plane), fy.AsSpan((i * c + ch) * plane, plane), scale, shift);
        });
    }

    /// <inheritdoc />
    public void BatchNormBackward(Tensor x, Tensor dy, Tensor gamma, Tensor savedMean, Tensor savedInvStd, bool batchStatistics,
        Tensor dx, Tensor dgamma, Tensor dbeta)
    {
        var (fx, fdy, fdx) = (Array(x), Array(dy), Array(dx));
        var (fg, fm, fs, fdg, fdb) = (Array(gamma), Array(savedMean), Array(savedInvStd), Array(dgamma), Array(dbeta));
        int n = x.Shape.N, c = x.Shape[1], plane = x.Shape.ItemLength / c;
        double count = (double)n * plane;
        For(c, ch =>
        {
            float mean = fm[ch], invStd = fs[ch];
            double sumDy = 0, sumDyXhat = 0;
            for (int i = 0; i < n; i++)
            {
                var (partialDy, partialDyCentred) = Pointwise.GradientSums(fdy.AsSpan((i * c + ch) * plane, plane), fx.AsSpan((i * c + ch) * plane, plane), mean);
                sumDy += partialDy;
                sumDyXhat += partialDyCentred * invStd;
            }
            fdg[ch] = (float)sumDyXhat;
            fdb[ch] = (float)sumDy;
            float k = fg[ch] * invStd;
            float meanDy = batchStatistics ? (float)(sumDy / count) : 0, meanDyXhat = batchStatistics ? (float)(sumDyXhat / count) : 0;
            for (int i = 0; i < n; i++)
                Pointwise.NormalizationGradient(fx.AsSpan((i * c + ch) * plane, plane), fdy.AsSpan((i * c + ch) * plane, plane),
                    fdx.AsSpan((i * c + ch) * plane, plane), k, meanDy, mean, invStd, meanDyXhat);
        });
    }

    /// <inheritdoc />
    public void LayerNormForward(Tensor x, Tensor gamma, Tensor beta, float epsilon, Tensor y, Tensor savedMean, Tensor savedInvStd)
    {
        var (fx, fy, fg, fb, fm, fs) = (Array(x), Array(y), Array(gamma), Array(beta), Array(savedMean), Array(savedInvStd));
        int c = x.Shape[1], plane = x.Shape.ItemLength / c;
        // Items in parallel; within one, channel planes are walked in order, so the sums do not depend on threads.
        For(x.Shape.N, n =>
        {
            var mean = fm.AsSpan(n * plane, plane);
            var invStd = fs.AsSpan(n * plane, plane);
            mean.Clear();
            invStd.Clear();
            for (int ch = 0; ch < c; ch++) Pointwise.AddInto(mean, fx.AsSpan((n * c + ch) * plane, plane));
            for (int p = 0; p < plane; p++) mean[p] /= c;
            for (int ch = 0; ch < c; ch++)
            {
                var xc = fx.AsSpan((n * c + ch) * plane, plane);
                for (int p = 0; p < plane; p++) invStd[p] += (xc[p] - mean[p]) * (xc[p] - mean[p]);
            }
            for (int p = 0; p < plane; p++) invStd[p] = 1 / MathF.Sqrt(invStd[p] / c + epsilon);
            for (int ch = 0; ch < c; ch++)
            {
                var xc = fx.AsSpan((n * c + ch) * plane, plane);
                var yc = fy.AsSpan((n * c + ch) * plane, plane);
                for (int p = 0; p < plane; p++) yc[p] = (xc[p] - mean[p]) * invStd[p] * fg[ch] + fb[ch];
            }
        });
    }

    /// <inheritdoc />
    public void LayerNormBackward(Tensor x, Tensor dy, Tensor gamma, Tensor savedMean, Tensor savedInvStd, Tensor dx, Tensor dgamma,
        Tensor dbeta)
    {
        var (fx, fdy, fdx, fg, fm, fs) = (Array(x), Array(dy), Array(dx), Array(gamma), Array(savedMean), Array(savedInvStd));
        int items = x.Shape.N, c = x.Shape[1], plane = x.Shape.ItemLength / c;
        // Each item's share of dγ and dβ, added in item order afterwards: the same bits for any thread count.
        var shares = CpuWork.Scratch(ref t_layerNormShares, 2L * items * c);
        For(items, n =>
        {
            var mean = fm.AsSpan(n * plane, plane);
            var invStd = fs.AsSpan(n * plane, plane);
            var sums = CpuWork.Scratch(ref t_layerNormSums, 2L * plane); // Σ g and Σ g·x̂ over channels, per position
            var sumG = sums.AsSpan(0, plane);
            var sumGXhat = sums.AsSpan(plane, plane);
            sumG.Clear();
            sumGXhat.Clear();
            for (int ch = 0; ch < c; ch++)
            {
                var xc = fx.AsSpan((n * c + ch) * plane, plane);
                var dyc = fdy.AsSpan((n * c + ch) * plane, plane);
                double dg = 0, db = 0;
                for (int p = 0; p < plane; p++)
                {
                    float xhat = (xc[p] - mean[p]) * invStd[p], g = dyc[p] * fg[ch];
                    sumG[p] += g;
                    sumGXhat[p] += g * xhat;
                    dg += dyc[p] * xhat;
                    db += dyc[p];
                }
                (shares[(n * 2) * c + ch], shares[(n * 2 + 1) * c + ch]) = ((float)dg, (float)db);
            }
            for (int ch = 0; ch < c; ch++)
            {
                var xc = fx.AsSpan((n * c + ch) * plane, plane);
                var dyc = fdy.AsSpan((n * c + ch) * plane, plane);
                var dxc = fdx.AsSpan((n * c + ch) * plane, plane);
                for (int p = 0; p < plane; p++)
                {
                    float xhat = (xc[p] - mean[p]) * invStd[p];
                    dxc[p] = invStd[p] * (dyc[p] * fg[ch] - (sumG[p] + xhat * sumGXhat[p]) / c);
                }
            }
        });
        var (fdg, fdb) = (Array(dgamma), Array(dbeta));
        for (int ch = 0; ch < c; ch++)
        {
            double dg = 0, db = 0;
            for (int n = 0; n < items; n++) (dg, db) = (dg + shares[(n * 2) * c + ch], db + shares[(n * 2 + 1) * c + ch]);
            (fdg[ch], fdb[ch]) = ((float)dg, (float)db);
        }
    }

    /// <inheritdoc />
    public void LrnForward(Tensor x, Tensor y, Tensor scale, int size, float alpha, float beta, float k)
    {
        var (fx, fy, fs) = (Array(x), Array(y), Array(scale));
        int c = x.Shape[1], plane = x.Shape.ItemLength / c;
        For(x.Shape.N, i =>
        {
            int item = i * c * plane;
            for (int ch = 0; ch < c; ch++)
            {
                var s = fs.AsSpan(item + ch * plane, plane);
                s.Fill(0);
                for (int j = Math.Max(0, ch - size / 2); j <= Math.Min(c - 1, ch + (size - 1) / 2); j++)
                {
                    var xj = fx.AsSpan(item + j * plane, plane);
                    for (int p = 0; p < plane; p++) s[p] += xj[p] * xj[p];
                }
                var xc = fx.AsSpan(item + ch * plane, plane);
                var yc = fy.AsSpan(item + ch * plane, plane);
                for (int p = 0; p < plane; p++)
                {
                    s[p] = k + alpha / size * s[p];
                    yc[p] = xc[p] * MathF.Pow(s[p], -beta);
                }
            }
        });
    }

    /// <inheritdoc />
    public void LrnBackward(Tensor x, Tensor y, Tensor scale, Tensor dy, Tensor dx, int size, float alpha, float beta)
    {
        var (fx, fy, fs, fdy, fdx) = (Array(x), Array(y), Array(scale), Array(dy), Array(dx));
        int c = x.Shape[1], plane = x.Shape.ItemLength / c;
        float factor = 2f * alpha * beta / size;
        For(x.Shape.N, i =>
        {
            int item = i * c * plane;
            // ratio_j = dy_j · y_j / s_j, the part of channel j's gradient that flows into its whole window.
            float[] ratio = ArrayPool<float>.Shared.Rent(c * plane);
            try
            {
                for (int q = 0; q < c * plane; q++) ratio[q] = fdy[item + q] * fy[item + q] / fs[item + q];
                for (int ch = 0; ch < c; ch++)
                {
                    var sdx = fdx.AsSpan(item + ch * plane, plane);
                    var sx = fx.AsSpan(item + ch * plane, plane);
                    var sdy = fdy.AsSpan(item + ch * plane, plane);
                    var ss = fs.AsSpan(item + ch * plane, plane);
                    for (int p = 0; p < plane; p++) sdx[p] = 0;
                    for (int j = Math.Max(0, ch - (size - 1) / 2); j <= Math.Min(c - 1, ch + size / 2); j++)
                        Pointwise.AddInto(sdx, ratio.AsSpan(j * plane, plane));
                    for (int p = 0; p < plane; p++) sdx[p] = sdy[p] * MathF.Pow(ss[p], -beta) - factor * sx[p] * sdx[p];
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(ratio);
            }
        });
    }

    /// <inheritdoc />
    public void AttentionForward(Tensor qkv, int heads, float scale, Tensor probabilities, Tensor y) =>
        CpuAttentionKernels.Forward(Array(qkv), Array(probabilities), Array(y), y.Shape.N, heads, y.Shape[1], y.Shape.ItemLength / y.Shape[1],
            scale, Threads);

    /// <inheritdoc />
    public void AttentionBackward(Tensor qkv, Tensor probabilities, Tensor dy, int heads, float scale, Tensor scratch, Tensor dqkv) =>
        CpuAttentionKernels.Backward(Array(qkv), Array(probabilities), Array(dy), Array(scratch), Array(dqkv), dy.Shape.N, heads, dy.Shape[1],
            dy.Shape.ItemLength / dy.Shape[1], scale, Threads);

    /// <inheritdoc />
    public void SoftmaxForward(Tensor x, Tensor y) => CpuLossKernels.SoftmaxForward(Array(x), Array(y), x.Shape.N, x.Shape.ItemLength, Threads);

    /// <inheritdoc />
    public void SoftmaxBackward(Tensor y, Tensor dy, Tensor dx) =>
        CpuLossKernels.SoftmaxBackward(Array(y), Array(dy), Array(dx), y.Shape.N, y.Shape.ItemLength, Threads);

    // ---- losses ----

    /// <inheritdoc />
    public void SoftmaxCrossEntropy(Tensor logits, Tensor labels, Tensor dLogits, Tensor losses, int slot) =>
        Array(losses)[slot] += CpuLossKernels.SoftmaxCrossEntropy(Array(logits), Array(labels), Array(dLogits),
            logits.Shape.N, logits.Shape.ItemLength, Threads);

    /// <inheritdoc />
    public void PixelSoftmaxCrossEntropy(Tensor logits, Tensor labels, Tensor? classWeights, int ignoreLabel,
        Tensor dLogits, Tensor losses, int slot) =>
        Array(losses)[slot] += CpuLossKernels.PixelSoftmaxCrossEntropy(Array(logits), Array(labels),
            classWeights is null ? null : Array(classWeights), ignoreLabel,
            Array(dLogits), logits.Shape.N, logits.Shape[1], logits.Shape.ItemLength / logits.Shape[1], Threads);

    /// <inheritdoc />
    public void SigmoidFocalLoss(Tensor logits, Tensor targets, float alpha, float gamma, float scale, Tensor dLogits,
        Tensor losses, int slot)
    {
        Array(losses)[slot] += scale * CpuLossKernels.SigmoidFocalLoss(Array(logits), Array(targets), alpha, gamma,
            Array(dLogits), logits.Length, Threads);
        if (scale != 1) Scale(dLogits, scale);
    }

    /// <inheritdoc />
    public void WeightedAbsoluteError(Tensor predictions, Tensor targets, Tensor weights, float scale,
        Tensor dPredictions, Tensor losses, int slot)
    {
        Array(losses)[slot] += scale * CpuLossKernels.WeightedAbsoluteError(Array(predictions), Array(targets),
            Array(weights), Array(dPredictions), predictions.Length, Threads);
        if (scale != 1) Scale(dPredictions, scale);
    }

    /// <inheritdoc />
    public void UpsampleForward(UpsampleMode mode, Tensor x, Tensor y) =>
        Resampling.Forward(mode, Array(x), Array(y), x.Shape.N * x.Shape[1], x.Shape[2], x.Shape[3], y.Shape[2], y.Shape[3], Threads);

    /// <inheritdoc />
    public void UpsampleBackward(UpsampleMode mode, Tensor dy, Tensor dx) =>
        Resampling.Backward(mode, Array(dy), Array(dx), dx.Shape.N * dx.Shape[1], dx.Shape[2], dx.Shape[3], dy.Shape[2], dy.Shape[3], Threads);

    /// <inheritdoc />
    public void CopyWindow(Tensor src, int srcY, int srcX, Tensor dst, int dstY, int dstX, int height, int width) =>
        CpuLossKernels.CopyWindow(Array(src), src.Shape[2], src.Shape[3], srcY, srcX, Array(dst), dst.Shape[2], dst.Shape[3], dstY, dstX,
            src.Shape.N * src.Shape[1], height, width, Threads);

    /// <inheritdoc />
    public void AddChannelBias(Tensor bias, Tensor y) =>
        CpuLossKernels.AddChannelBias(Array(bias), Array(y), y.Shape.N * y.Shape[1], y.Shape[1], y.Shape.ItemLength / y.Shape[1], Threads);

    /// <inheritdoc />
    public void ChannelSums(Tensor x, Tensor sums) =>
        CpuLossKernels.ChannelSums(Array(x), Array(sums), x.Shape.N, x.Shape[1], x.Shape.ItemLength / x.Shape[1], Threads);

    /// <inheritdoc />
    public void MulticlassHinge(Tensor scores, Tensor labels, Tensor dScores, Tensor losses, int slot) =>
        Array(losses)[slot] += CpuLossKernels.MulticlassHinge(Array(scores), Array(labels), Array(dScores),
            scores.Shape.N, scores.Shape.ItemLength, Threads);

    /// <inheritdoc />
    public void MeanSquaredError(Tensor predictions, Tensor targets, Tensor dPredictions, Tensor losses, int slot) =>
        Array(losses)[slot] += CpuLossKernels.MeanSquaredError(Array(predictions), Array(targets), Array(dPredictions),
            predictions.Length, Threads);

    /// <inheritdoc />
    public void MeanAbsoluteError(Tensor predictions, Tensor targets, Tensor dPredictions, Tensor losses, int slot) =>
        Array(losses)[slot] += CpuLossKernels.MeanAbsoluteError(Array(predictions), Array(targets),
            Array(dPredictions), predictions.Length, Threads);

    /// <inheritdoc />
    public void BinaryCrossEntropyWithLogits(Tensor logits, Tensor targets, Tensor dLogits, Tensor losses, int slot) =>
        Array(losses)[slot] += CpuLossKernels.BinaryCrossEntropyWithLogits(Array(logits), Array(targets),
            Array(dLogits), logits.Length, Threads);

    /// <inheritdoc />
    public void CountCorrect(Tensor scores, Tensor labels, int ignoreLabel, Tensor correct, int slot) =>
        Array(correct)[slot] += CpuLossKernels.CountCorrect(Array(scores), Array(labels), ignoreLabel, scores.Shape[1],
            scores.Shape.ItemLength / scores.Shape[1], labels.Length);

    // ---- optimizer updates ----

    /// <inheritdoc />
    public void SgdUpdate(Tensor param, Tensor grad, Tensor velocity, float learningRate, float momentum, float weightDecay, bool nesterov)
    {
        var (fp, fg, fv) = (Array(param), Array(grad), Array(velocity));
        ForRanges(param.Length, 1 << 15, (start, end) =>
        {
            // Whole vectors first (the same operations in the same order as the scalar loop, so the same bits).
            int i = start;
            if (Vector.IsHardwareAccelerated)
            {
                Vector<float> decay = new(weightDecay), mu = new(momentum), rate = new(learningRate);
                for (; i + Vector<float>.Count <= end; i += Vector<float>.Count)
                {
                    var p = new Vector<float>(fp, i);
                    var d = new Vector<float>(fg, i) + decay * p;
                    if (momentum != 0)
                    {
                        var v = mu * new Vector<float>(fv, i) + d;
                        v.CopyTo(fv, i);
                        d = nesterov ? d + mu * v : v;
                    }
                    (p - rate * d).CopyTo(fp, i);
                }
            }
            for (; i < end; i++)
            {
                float d = fg[i] + weightDecay * fp[i];
                if (momentum != 0)
                {
                    fv[i] = momentum * fv[i] + d;
                    d = nesterov ? d + momentum * fv[i] : fv[i];
                }
                fp[i] -= learningRate * d;
            }
        });
    }

    /// <inheritdoc />
    public void AdamUpdate(Tensor param, Tensor grad, Tensor m, Tensor v, float learningRate, float beta1, float beta2,
        float epsilon, float weightDecay, bool decoupledWeightDecay, int step)
    {
        var (fp, fg, fm, fv) = (Array(param), Array(grad), Array(m), Array(v));
        float stepSize = (float)(learningRate / (1 - Math.Pow(beta1, step)));
        float invBiasCorrection2Sqrt = (float)(1 / Math.Sqrt(1 - Math.Pow(beta2, step)));
        float decay = decoupledWeightDecay ? 1 - learningRate * weightDecay : 1;
        float l2 = decoupledWeightDecay ? 0 : weightDecay;
        ForRanges(param.Length, 1 << 15, (start, end) =>
        {
            for (int i = start; i < end; i++)
            {
                float d = fg[i] + l2 * fp[i];
                fp[i] *= decay;
                fm[i] = beta1 * fm[i] + (1 - beta1) * d;
                fv[i] = beta2 * fv[i] + (1 - beta2) * d * d;
                fp[i] -= stepSize * fm[i] / (MathF.Sqrt(fv[i]) * invBiasCorrection2Sqrt + epsilon);
            }
        });
    }
}
