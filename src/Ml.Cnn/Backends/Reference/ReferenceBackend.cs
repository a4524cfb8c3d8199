using Ml.Cnn.Core;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Backends.Reference;

/// <summary>
/// The oracle: every primitive as the textbook writes it, single-threaded, accumulating in double. Slow on purpose;
/// the tests hold the optimized backends to its answers.
/// </summary>
public sealed class ReferenceBackend : HostBackend, IBackend
{
    /// <inheritdoc />
    public string Name => "reference";

    /// <inheritdoc />
    public Tensor Allocate(TensorShape shape) => AllocateHost(this, shape);

    /// <inheritdoc />
    public void Fill(Tensor t, float value) => Data(t).Fill(value);

    /// <inheritdoc />
    public void Copy(Tensor src, Tensor dst) => Data(src).CopyTo(Data(dst));

    /// <inheritdoc />
    public void Add(Tensor a, Tensor b, Tensor y)
    {
        var sa = Data(a);
        var sb = Data(b);
        var sy = Data(y);
        for (int i = 0; i < sy.Length; i++) sy[i] = sa[i] + sb[i];
    }

    /// <inheritdoc />
    public void Axpy(float alpha, Tensor x, Tensor y)
    {
        var sy = Data(y);
        var sx = Data(x);
        for (int i = 0; i < sy.Length; i++) sy[i] += alpha * sx[i];
    }

    /// <inheritdoc />
    public void Scale(Tensor t, float factor)
    {
        var s = Data(t);
        for (int i = 0; i < s.Length; i++) s[i] *= factor;
    }

    /// <inheritdoc />
    public double SumOfSquares(Tensor t)
    {
        double sum = 0;
        foreach (var v in Data(t)) sum += (double)v * v;
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
        var s = Data(src);
        var d = Data(dst);
        for (int i = 0; i < n; i++)
            for (int c = 0; c < channels; c++)
                for (int p = 0; p < plane; p++)
                    d[(i * dstC + dstChannelOffset + c) * plane + p] = s[(i * srcC + srcChannelOffset + c) * plane + p];
    }

    /// <inheritdoc />
    public void CopyWindow(Tensor src, int srcY, int srcX, Tensor dst, int dstY, int dstX, int height, int width)
    {
        var s = Data(src);
        var d = Data(dst);
        int planes = src.Shape.N * src.Shape[1], sh = src.Shape[2], sw = src.Shape[3], dh = dst.Shape[2], dw = dst.Shape[3];
        for (int p = 0; p < planes; p++)
            for (int y = 0; y < height; y++)
                s.Slice((p * sh + srcY + y) * sw + srcX, width).CopyTo(d.Slice((p * dh + dstY + y) * dw + dstX, width));
    }

    /// <inheritdoc />
    public void AddChannelBias(Tensor bias, Tensor y)
    {
        var sb = Data(bias);
        var sy = Data(y);
        int channels = y.Shape[1], plane = y.Shape.ItemLength / channels;
        for (int i = 0; i < sy.Length; i++) sy[i] += sb[i / plane % channels];
    }

    /// <inheritdoc />
    public void ChannelSums(Tensor x, Tensor sums)
    {
        var sx = Data(x);
        var ss = Data(sums);
        int channels = x.Shape[1], plane = x.Shape.ItemLength / channels;
        for (int c = 0; c < channels; c++)
        {
            double sum = 0;
            for (int n = 0; n < x.Shape.N; n++)
                for (int p = 0; p < plane; p++) sum += sx[(n * channels + c) * plane + p];
            ss[c] = (float)sum;
        }
    }

    /// <inheritdoc />
    public void MatMul(Tensor a, bool transposeA, Tensor b, bool transposeB, Tensor c, float alpha = 1f, float beta = 0f)
    {
        var (m, n, k) = MatMulShape(a, transposeA, b, transposeB, c);
        int aCols = a.Shape[1], bCols = b.Shape[1];
        var sa = Data(a);
        var sb = Data(b);
        var sc = Data(c);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double sum = 0;
                for (int p = 0; p < k; p++)
                {
                    float av = transposeA ? sa[p * aCols + i] : sa[i * aCols + p];
                    float bv = transposeB ? sb[j * bCols + p] : sb[p * bCols + j];
                    sum += (double)av * bv;
                }
                sc[i * n + j] = (float)(alpha * sum + (beta == 0 ? 0 : beta * sc[i * n + j]));
            }
    }

    /// <inheritdoc />
    public void DenseForward(Tensor x, Tensor w, Tensor? b, Tensor y)
    {
        MatMul(AsMatrix(x), false, w, true, y);
        if (b is null) return;
        var sy = Data(y);
        var sb = Data(b);
        int outF = sb.Length;
        for (int i = 0; i < sy.Length; i++) sy[i] += sb[i % outF];
    }

    /// <inheritdoc />
    public void DenseBackward(Tensor x, Tensor w, Tensor dy, Tensor? dx, Tensor dw, Tensor? db)
    {
        if (dx is not null) MatMul(dy, false, w, false, AsMatrix(dx));
        MatMul(dy, true, AsMatrix(x), false, dw);
        if (db is null) return;
        var sdy = Data(dy);
        var sdb = Data(db);
        int outF = sdb.Length, n = dy.Shape.N;
        for (int j = 0; j < outF; j++)
        {
            double sum = 0;
            for (int i = 0; i < n; i++) sum += sdy[i * outF + j];
            sdb[j] = (float)sum;
        }
    }

    private static Tensor AsMatrix(Tensor t) => t.Reshape(new TensorShape(t.Shape.N, t.Shape.ItemLength));

    /// <inheritdoc />
    public void ConvForward(in ConvGeometry g, Tensor x, Tensor w, Tensor? b, Tensor y)
    {
        var sx = Data(x);
        var sw = Data(w);
        var sy = Data(y);
        var sb = b is null ? [] : Data(b);
        int oh = g.OutH, ow = g.OutW, gic = g.GroupInChannels, goc = g.GroupOutChannels;
        for (int n = 0; n < g.Batch; n++)
            for (int oc = 0; oc < g.OutChannels; oc++)
            {
                int group = oc / goc;
                for (int oy = 0; oy < oh; oy++)
                    for (int ox = 0; ox < ow; ox++)
                    {
                        double sum = sb.Length == 0 ? 0 : sb[oc];
                        for (int ic = 0; ic < gic; ic++)
                            for (int ky = 0; ky < g.KernelH; ky++)
                                for (int kx = 0; kx < g.KernelW; kx++)
                                {
                                    int iy = oy * g.StrideH - g.PadH + ky * g.DilationH;
                                    int ix = ox * g.StrideW - g.PadW + kx * g.DilationW;
                                    if (iy < 0 || iy >= g.InH || ix < 0 || ix >= g.InW) continue;
                                    int cin = group * gic + ic;
                                    sum += (double)sx[((n * g.InChannels + cin) * g.InH + iy) * g.InW + ix]
                                         * sw[((oc * gic + ic) * g.KernelH + ky) * g.KernelW + kx];
                                }
                        sy[((n * g.OutChannels + oc) * oh + oy) * ow + ox] = (float)sum;
                    }
            }
    }

    /// <inheritdoc />
    public void ConvBackwardData(in ConvGeometry g, Tensor dy, Tensor w, Tensor dx)
    {
        var sdy = Data(dy);
        var sw = Data(w);
        var sdx = Data(dx);
        var acc = new double[sdx.Length];
        int oh = g.OutH, ow = g.OutW, gic = g.GroupInChannels, goc = g.GroupOutChannels;
        for (int n = 0; n < g.Batch; n++)
            for (int oc = 0; oc < g.OutChannels; oc++)
            {
                int group = oc / goc;
                for (int oy = 0; oy < oh; oy++)
                    for (int ox = 0; ox < ow; ox++)
                    {
                        double grad = sdy[((n * g.OutChannels + oc) * oh + oy) * ow + ox];
                        for (int ic = 0; ic < gic; ic++)
                            for (int ky = 0; ky < g.KernelH; ky++)
                                for (int kx = 0; kx < g.KernelW; kx++)
                                {
                                    int iy = oy * g.StrideH - g.PadH + ky * g.DilationH;
                                    int ix = ox * g.StrideW - g.PadW + kx * g.DilationW;
                                    if (iy < 0 || iy >= g.InH || ix < 0 || ix >= g.InW) continue;
                                    int cin = group * gic + ic;
                                    acc[((n * g.InChannels + cin) * g.InH + iy) * g.InW + ix] +=
                                        grad * sw[((oc * gic + ic) * g.KernelH + ky) * g.KernelW + kx];
                                }
                    }
            }
        for (int i = 0; i < acc.Length; i++) sdx[i] = (float)acc[i];
    }

    /// <inheritdoc />
    public void ConvBackwardWeights(in ConvGeometry g, Tensor x, Tensor dy, Tensor dw, Tensor? db)
    {
        var sx = Data(x);
        var sdy = Data(dy);
        var sdw = Data(dw);
        int oh = g.OutH, ow = g.OutW, gic = g.GroupInChannels, goc = g.GroupOutChannels;
        for (int oc = 0; oc < g.OutChannels; oc++)
        {
            int group = oc / goc;
            for (int ic = 0; ic < gic; ic++)
                for (int ky = 0; ky < g.KernelH; ky++)
                    for (int kx = 0; kx < g.KernelW; kx++)
                    {
                        double sum = 0;
                        for (int n = 0; n < g.Batch; n++)
                            for (int oy = 0; oy < oh; oy++)
                                for (int ox = 0; ox < ow; ox++)
                                {
                                    int iy = oy * g.StrideH - g.PadH + ky * g.DilationH;
                                    int ix = ox * g.StrideW - g.PadW + kx * g.DilationW;
                                    if (iy < 0 || iy >= g.InH || ix < 0 || ix >= g.InW) continue;
                                    int cin = group * gic + ic;
                                    sum += (double)sx[((n * g.InChannels + cin) * g.InH + iy) * g.InW + ix]
                                         * sdy[((n * g.OutChannels + oc) * oh + oy) * ow + ox];
                                }
                        sdw[((oc * gic + ic) * g.KernelH + ky) * g.KernelW + kx] = (float)sum;
                    }
        }
        if (db is null) return;
        var sdb = Data(db);
        for (int oc = 0; oc < g.OutChannels; oc++)
        {
            double sum = 0;
            for (int n = 0; n < g.Batch; n++)
                for (int p = 0; p < oh * ow; p++) sum += sdy[(n * g.OutChannels + oc) * oh * ow + p];
            sdb[oc] = (float)sum;
        }
    }

    /// <inheritdoc />
    public void MaxPoolForward(in PoolGeometry g, Tensor x, Tensor y)
    {
        var sx = Data(x);
        var sy = Data(y);
        int oh = g.OutH, ow = g.OutW;
        for (int plane = 0; plane < g.Batch * g.Channels; plane++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++)
                {
                    int best = MaxIndex(g, sx, plane, oy, ox);
                    sy[(plane * oh + oy) * ow + ox] = sx[best];
                }
    }

    /// <inheritdoc />
    public void MaxPoolBackward(in PoolGeometry g, Tensor x, Tensor dy, Tensor dx)
    {
        var sx = Data(x);
        var sdy = Data(dy);
        var sdx = Data(dx);
        sdx.Clear();
        int oh = g.OutH, ow = g.OutW;
        for (int plane = 0; plane < g.Batch * g.Channels; plane++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++)
                    sdx[MaxIndex(g, sx, plane, oy, ox)] += sdy[(plane * oh + oy) * ow + ox];
    }

    private static int MaxIndex(in PoolGeometry g, Span<float> x, int plane, int oy, int ox)
    {
        int best = -1;
        for (int ky = 0; ky < g.KernelH; ky++)
            for (int kx = 0; kx < g.KernelW; kx++)
            {
                int iy = oy * g.StrideH - g.PadH + ky, ix = ox * g.StrideW - g.PadW + kx;
                if (iy < 0 || iy >= g.InH || ix < 0 || ix >= g.InW) continue;
                int index = (plane * g.InH + iy) * g.InW + ix;
                if (best < 0 || x[index] > x[best] || float.IsNaN(x[index])) best = index;
            }
        return best;
    }

    /// <inheritdoc />
    public void AvgPoolForward(in PoolGeometry g, Tensor x, Tensor y)
    {
        var sx = Data(x);
        var sy = Data(y);
        int oh = g.OutH, ow = g.OutW;
        for (int plane = 0; plane < g.Batch * g.Channels; plane++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++)
                {
                    double sum = 0;
                    var (y0, y1, x0, x1, divisor) = g.AverageWindow(oy, ox);
                    for (int iy = y0; iy < y1; iy++)
                        for (int ix = x0; ix < x1; ix++) sum += sx[(plane * g.InH + iy) * g.InW + ix];
                    sy[(plane * oh + oy) * ow + ox] = (float)(sum / divisor);
                }
    }

    /// <inheritdoc />
    public void AvgPoolBackward(in PoolGeometry g, Tensor dy, Tensor dx)
    {
        var sdy = Data(dy);
        var sdx = Data(dx);
        sdx.Clear();
        int oh = g.OutH, ow = g.OutW;
        for (int plane = 0; plane < g.Batch * g.Channels; plane++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++)
                {
                    var (y0, y1, x0, x1, divisor) = g.AverageWindow(oy, ox);
                    float share = sdy[(plane * oh + oy) * ow + ox] / divisor;
                    for (int iy = y0; iy < y1; iy++)
                        for (int ix = x0; ix < x1; ix++) sdx[(plane * g.InH + iy) * g.InW + ix] += share;
                }
    }

    /// <inheritdoc />
    public void GlobalAvgPoolForward(Tensor x, Tensor y)
    {
        var sx = Data(x);
        var sy = Data(y);
        int planeSize = x.Length / y.Length;
        for (int p = 0; p < sy.Length; p++)
        {
            double sum = 0;
            for (int i = 0; i < planeSize; i++) sum += sx[p * planeSize + i];
            sy[p] = (float)(sum / planeSize);
        }
    }

    /// <inheritdoc />
    public void GlobalAvgPoolBackward(Tensor dy, Tensor dx)
    {
        var sdy = Data(dy);
        var sdx = Data(dx);
        int planeSize = dx.Length / dy.Length;
        for (int i = 0; i < sdx.Length; i++) sdx[i] = sdy[i / planeSize] / planeSize;
    }

    /// <inheritdoc />
    public void ActivationForward(ActivationKind kind, float alpha, float beta, Tensor x, Tensor y)
    {
        var sx = Data(x);
        var sy = Data(y);
        for (int i = 0; i < sx.Length; i++)
        {
            double v = sx[i];
            sy[i] = (float)(kind switch
            {
                ActivationKind.Relu => Math.Max(v, 0),
                ActivationKind.LeakyRelu => v > 0 ? v : alpha * v,
                ActivationKind.Elu => v > 0 ? v : alpha * (Math.Exp(v) - 1),
                ActivationKind.Sigmoid => 1 / (1 + Math.Exp(-v)),
                ActivationKind.Tanh => Math.Tanh(v),
                ActivationKind.Clip => Math.Min(Math.Max(v, alpha), beta),
                ActivationKind.HardSigmoid => Math.Clamp(alpha * v + beta, 0, 1),
                ActivationKind.HardSwish => v * Math.Clamp(v / 6 + 0.5, 0, 1),
                ActivationKind.Silu => v / (1 + Math.Exp(-v)),
                ActivationKind.Gelu => 0.5 * v * (1 + SpecialFunctions.Erf(v / Math.Sqrt(2))),
                _ => throw new ArgumentOutOfRangeException(nameof(kind)),
            });
        }
    }

    /// <inheritdoc />
    public void ActivationBackward(ActivationKind kind, float alpha, float beta, Tensor x, Tensor y, Tensor dy, Tensor dx)
    {
        var sx = Data(x);
        var sy = Data(y);
        var sdy = Data(dy);
        var sdx = Data(dx);
        for (int i = 0; i < sx.Length; i++)
        {
            double v = sx[i], fv = sy[i];
            double slope = kind switch
            {
                ActivationKind.Relu => v > 0 ? 1 : 0,
                ActivationKind.LeakyRelu => v > 0 ? 1 : alpha,
                ActivationKind.Elu => v > 0 ? 1 : alpha * Math.Exp(v),
                ActivationKind.Sigmoid => fv * (1 - fv),
                ActivationKind.Tanh => 1 - fv * fv,
                // PyTorch's conventions at the kinks: the flat side's slope.
                ActivationKind.Clip => v > alpha && v < beta ? 1 : 0,
                ActivationKind.HardSigmoid => alpha * v + beta is > 0 and < 1 ? alpha : 0,
                ActivationKind.HardSwish => v < -3 ? 0 : v <= 3 ? v / 3 + 0.5 : 1,
                ActivationKind.Silu => Sigmoid(v) * (1 + v * (1 - Sigmoid(v))),
                ActivationKind.Gelu => 0.5 * (1 + SpecialFunctions.Erf(v / Math.Sqrt(2)))
                    + v * Math.Exp(-v * v / 2) / Math.Sqrt(2 * Math.PI),
                _ => throw new ArgumentOutOfRangeException(nameof(kind)),
            };
            sdx[i] = (float)(slope * sdy[i]);
        }
    }

    private static double Sigmoid(double v) => 1 / (1 + Math.Exp(-v));

    /// <inheritdoc />
    public void Multiply(Tensor a, Tensor b, Tensor y)
    {
        var sa = Data(a);
        var sb = Data(b);
        var sy = Data(y);
        int plane = a.Length / b.Length;
        for (int i = 0; i < sa.Length; i++) sy[i] = (float)((double)sa[i] * sb[i / plane]);
    }

    /// <inheritdoc />
    public void MultiplyBackward(Tensor a, Tensor b, Tensor dy, Tensor da, Tensor db)
    {
        var sa = Data(a);
        var sb = Data(b);
        var sdy = Data(dy);
        var sda = Data(da);
        var sdb = Data(db);
        int plane = a.Length / b.Length;
        for (int i = 0; i < sa.Length; i++) sda[i] = (float)((double)sdy[i] * sb[i / plane]);
        for (int j = 0; j < sb.Length; j++)
        {
            double sum = 0;
            for (int k = 0; k < plane; k++) sum += (double)sdy[j * plane + k] * sa[j * plane + k];
            sdb[j] = (float)sum;
        }
    }

    /// <inheritdoc />
    public void DropoutForward(Tensor x, Tensor y, float p, ulong seed)
    {
        var sx = Data(x);
        var sy = Data(y);
        float keepScale = 1 / (1 - p);
        for (int i = 0; i < sx.Length; i++) sy[i] = DropoutMask.Keep(seed, i, p) ? sx[i] * keepScale : 0;
    }

    /// <inheritdoc />
    public void DropoutBackward(Tensor dy, Tensor dx, float p, ulong seed) => DropoutForward(dy, dx, p, seed);

    /// <inheritdoc />
    public void BatchNormTrainForward(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor savedMean, Tensor savedInvStd,
        Tensor runningMean, Tensor runningVar, float momentum, float epsilon)
    {
        var sx = Data(x);
        var sy = Data(y);
        int n = x.Shape.N, c = x.Shape[1], plane = x.Shape.ItemLength / c;
        long count = (long)n * plane;
        for (int ch = 0; ch < c; ch++)
        {
            double sum = 0, sumSq = 0;
            for (int i = 0; i < n; i++)
                for (int p = 0; p < plane; p++) sum += sx[(i * c + ch) * plane + p];
            double mean = sum / count;
            for (int i = 0; i < n; i++)
                for (int p = 0; p < plane; p++) { double d = sx[(i * c + ch) * plane + p] - mean; sumSq += d * d; }
            double variance = sumSq / count;
            double invStd = 1 / Math.Sqrt(variance + epsilon);
            Data(savedMean)[ch] = (float)mean;
            Data(savedInvStd)[ch] = (float)invStd;
            double unbiased = count > 1 ? sumSq / (count - 1) : variance;
            Data(runningMean)[ch] = (float)((1 - momentum) * Data(runningMean)[ch] + momentum * mean);
            Data(runningVar)[ch] = (float)((1 - momentum) * Data(runningVar)[ch] + momentum * unbiased);
            double gm = Data(gamma)[ch], bt = Data(beta)[ch];
            for (int i = 0; i < n; i++)
                for (int p = 0; p < plane; p++)
                {
                    int idx = (i * c + ch) * plane + p;
                    sy[idx] = (float)((sx[idx] - mean) * invStd * gm + bt);
                }
        }
    }

    /// <inheritdoc />
    public void BatchNormEvalForward(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, float epsilon, Tensor y,
        Tensor savedMean, Tensor savedInvStd)
    {
        for (int ch = 0; ch < x.Shape[1]; ch++)
        {
            Data(savedMean)[ch] = Data(runningMean)[ch];
            Data(savedInvStd)[ch] = (float)(1 / Math.Sqrt(Data(runningVar)[ch] + (double)epsilon));
        }
        var sx = Data(x);
        var sy = Data(y);
        int n = x.Shape.N, c = x.Shape[1], plane = x.Shape.ItemLength / c;
        for (int i = 0; i < n; i++)
            for (int ch = 0; ch < c; ch++)
            {
                double invStd = 1 / Math.Sqrt(Data(runningVar)[ch] + (double)epsilon);
                for (int p = 0; p < plane; p++)
                {
                    int idx = (i * c + ch) * plane + p;
                    sy[idx] = (float)((sx[idx] - Data(runningMean)[ch]) * invStd * Data(gamma)[ch] + Data(beta)[ch]);
                }
            }
    }

    /// <inheritdoc />
    public void BatchNormBackward(Tensor x, Tensor dy, Tensor gamma, Tensor savedMean, Tensor savedInvStd, bool batchStatistics,
        Tensor dx, Tensor dgamma, Tensor dbeta)
    {
        var sx = Data(x);
        var sdy = Data(dy);
        var sdx = Data(dx);
        int n = x.Shape.N, c = x.Shape[1], plane = x.Shape.ItemLength / c;
        double count = (double)n * plane;
        for (int ch = 0; ch < c; ch++)
        {
            double mean = Data(savedMean)[ch], invStd = Data(savedInvStd)[ch];
            double sumDy = 0, sumDyXhat = 0;
            for (int i = 0; i < n; i++)
                for (int p = 0; p < plane; p++)
                {
                    int idx = (i * c + ch) * plane + p;
                    sumDy += sdy[idx];
                    sumDyXhat += sdy[idx] * (sx[idx] - mean) * invStd;
                }
            Data(dgamma)[ch] = (float)sumDyXhat;
            Data(dbeta)[ch] = (float)sumDy;
            double gm = Data(gamma)[ch];
            for (int i = 0; i < n; i++)
                for (int p = 0; p < plane; p++)
                {
                    int idx = (i * c + ch) * plane + p;
                    double xhat = (sx[idx] - mean) * invStd;
                    sdx[idx] = batchStatistics
                        ? (float)(gm * invStd / count * (count * sdy[idx] - sumDy - xhat * sumDyXhat))
                        : (float)(gm * invStd * sdy[idx]);
                }
        }
    }

    /// <inheritdoc />
    public void LayerNormForward(Tensor x, Tensor gamma, Tensor beta, float epsilon, Tensor y, Tensor savedMean, Tensor savedInvStd)
    {
        var (sx, sy, sg, sb, sm, ss) = (Array(x), Array(y), Array(gamma), Array(beta), Array(savedMean), Array(savedInvStd));
        int c = x.Shape[1], plane = x.Shape.ItemLength / c;
        for (int n = 0; n < x.Shape.N; n++)
            for (int p = 0; p < plane; p++)
            {
                int first = n * c * plane + p;
                double sum = 0, squares = 0;
                for (int ch = 0; ch < c; ch++) sum += sx[first + ch * plane];
                double mean = sum / c;
                for (int ch = 0; ch < c; ch++) squares += Math.Pow(sx[first + ch * plane] - mean, 2);
                double invStd = 1 / Math.Sqrt(squares / c + epsilon);
                sm[n * plane + p] = (float)mean;
                ss[n * plane + p] = (float)invStd;
                for (int ch = 0; ch < c; ch++)
                    sy[first + ch * plane] = (float)((sx[first + ch * plane] - mean) * invStd * sg[ch] + sb[ch]);
            }
    }

    /// <inheritdoc />
    public void LayerNormBackward(Tensor x, Tensor dy, Tensor gamma, Tensor savedMean, Tensor savedInvStd, Tensor dx, Tensor dgamma,
        Tensor dbeta)
    {
        var (sx, sdy, sdx, sg, sm, ss) = (Array(x), Array(dy), Array(dx), Array(gamma), Array(savedMean), Array(savedInvStd));
        int c = x.Shape[1], plane = x.Shape.ItemLength / c;
        var (dg, db) = (new double[c], new double[c]);
        for (int n = 0; n < x.Shape.N; n++)
            for (int p = 0; p < plane; p++)
            {
                int first = n * c * plane + p;
                double mean = sm[n * plane + p], invStd = ss[n * plane + p], sumG = 0, sumGXhat = 0;
                for (int ch = 0; ch < c; ch++)
                {
                    int i = first + ch * plane;
                    double xhat = (sx[i] - mean) * invStd, g = sdy[i] * (double)sg[ch];
                    sumG += g;
                    sumGXhat += g * xhat;
                    dg[ch] += sdy[i] * xhat;
                    db[ch] += sdy[i];
                }
                for (int ch = 0; ch < c; ch++)
                {
                    int i = first + ch * plane;
                    double xhat = (sx[i] - mean) * invStd;
                    sdx[i] = (float)(invStd * (sdy[i] * (double)sg[ch] - sumG / c - xhat * sumGXhat / c));
                }
            }
        for (int ch = 0; ch < c; ch++) (Array(dgamma)[ch], Array(dbeta)[ch]) = ((float)dg[ch], (float)db[ch]);
    }

    /// <inheritdoc />
    public void LrnForward(Tensor x, Tensor y, Tensor scale, int size, float alpha, float beta, float k)
    {
        var sx = Data(x);
        var sy = Data(y);
        var ss = Data(scale);
        int n = x.Shape.N, c = x.Shape[1], plane = x.Shape.ItemLength / c;
        for (int i = 0; i < n; i++)
            for (int ch = 0; ch < c; ch++)
                for (int p = 0; p < plane; p++)
                {
                    double sumSq = 0;
                    for (int j = ch - size / 2; j <= ch + (size - 1) / 2; j++)
                        if (j >= 0 && j < c) { double v = sx[(i * c + j) * plane + p]; sumSq += v * v; }
                    int idx = (i * c + ch) * plane + p;
                    double s = k + alpha / size * sumSq;
                    ss[idx] = (float)s;
                    sy[idx] = (float)(sx[idx] * Math.Pow(s, -beta));
                }
    }

    /// <inheritdoc />
    public void LrnBackward(Tensor x, Tensor y, Tensor scale, Tensor dy, Tensor dx, int size, float alpha, float beta)
    {
        var sx = Data(x);
        var sy = Data(y);
        var ss = Data(scale);
        var sdy = Data(dy);
        var sdx = Data(dx);
        int n = x.Shape.N, c = x.Shape[1], plane = x.Shape.ItemLength / c;
        for (int i = 0; i < n; i++)
            for (int ch = 0; ch < c; ch++)
                for (int p = 0; p < plane; p++)
                {
                    int idx = (i * c + ch) * plane + p;
                    double grad = sdy[idx] * Math.Pow(ss[idx], -beta);
                    // Output channel j's window covers ch when j − size/2 ≤ ch ≤ j + (size − 1)/2.
                    for (int j = ch - (size - 1) / 2; j <= ch + size / 2; j++)
                    {
                        if (j < 0 || j >= c) continue;
                        int jdx = (i * c + j) * plane + p;
                        grad -= 2.0 * alpha * beta / size * sx[idx] * sdy[jdx] * sy[jdx] / ss[jdx];
                    }
                    sdx[idx] = (float)grad;
                }
    }

    /// <inheritdoc />
    public void AttentionForward(Tensor qkv, int heads, float scale, Tensor probabilities, Tensor y)
    {
        var (sq, sp, sy) = (Array(qkv), Array(probabilities), Array(y));
        int c = y.Shape[1], t = y.Shape.ItemLength / c, d = c / heads;
        var scores = new double[t];
        for (int n = 0; n < y.Shape.N; n++)
            for (int h = 0; h < heads; h++)
            {
                // Row r of head h's query, key or value block: channel part·C + h·d + r of item n.
                int Q(int r) => ((n * 3 + 0) * c + h * d + r) * t;
                int K(int r) => ((n * 3 + 1) * c + h * d + r) * t;
                int V(int r) => ((n * 3 + 2) * c + h * d + r) * t;
                int rows = (n * heads + h) * t * t;
                for (int i = 0; i < t; i++)
                {
                    double max = double.NegativeInfinity, sum = 0;
                    for (int j = 0; j < t; j++)
                    {
                        double s = 0;
                        for (int r = 0; r < d; r++) s += (double)sq[Q(r) + i] * sq[K(r) + j];
                        scores[j] = s * scale;
                        max = Math.Max(max, scores[j]);
                    }
                    for (int j = 0; j < t; j++) sum += scores[j] = Math.Exp(scores[j] - max);
                    for (int j = 0; j < t; j++) sp[rows + i * t + j] = (float)(scores[j] / sum);
                }
                for (int r = 0; r < d; r++)
                    for (int i = 0; i < t; i++)
                    {
                        double o = 0;
                        for (int j = 0; j < t; j++) o += (double)sq[V(r) + j] * sp[rows + i * t + j];
                        sy[((n * c) + h * d + r) * t + i] = (float)o;
                    }
            }
    }

    /// <inheritdoc />
    public void AttentionBackward(Tensor qkv, Tensor probabilities, Tensor dy, int heads, float scale, Tensor scratch, Tensor dqkv)
    {
        var (sq, sp, sdy, ds, sdq) = (Array(qkv), Array(probabilities), Array(dy), Array(scratch), Array(dqkv));
        int c = dy.Shape[1], t = dy.Shape.ItemLength / c, d = c / heads;
        for (int n = 0; n < dy.Shape.N; n++)
            for (int h = 0; h < heads; h++)
            {
                int Q(int r) => ((n * 3 + 0) * c + h * d + r) * t;
                int K(int r) => ((n * 3 + 1) * c + h * d + r) * t;
                int V(int r) => ((n * 3 + 2) * c + h * d + r) * t;
                int O(int r) => (n * c + h * d + r) * t;
                int rows = (n * heads + h) * t * t;
                // dV = dO·P; dP = dOᵀ·V; dS = P ⊙ (dP − Σⱼ dP ⊙ P) row-wise; dQ = scale·K·dSᵀ; dK = scale·Q·dS.
                for (int r = 0; r < d; r++)
                    for (int j = 0; j < t; j++)
                    {
                        double v = 0;
                        for (int i = 0; i < t; i++) v += (double)sdy[O(r) + i] * sp[rows + i * t + j];
                        sdq[V(r) + j] = (float)v;
                    }
                for (int i = 0; i < t; i++)
                {
                    double dot = 0;
                    var dp = new double[t];
                    for (int j = 0; j < t; j++)
                    {
                        for (int r = 0; r < d; r++) dp[j] += (double)sdy[O(r) + i] * sq[V(r) + j];
                        dot += dp[j] * sp[rows + i * t + j];
                    }
                    for (int j = 0; j < t; j++) ds[rows + i * t + j] = (float)(sp[rows + i * t + j] * (dp[j] - dot));
                }
                for (int r = 0; r < d; r++)
                    for (int i = 0; i < t; i++)
                    {
                        double q = 0, k = 0;
                        for (int j = 0; j < t; j++)
                        {
                            q += (double)sq[K(r) + j] * ds[rows + i * t + j];
                            k += (double)sq[Q(r) + j] * ds[rows + j * t + i];
                        }
                        sdq[Q(r) + i] = (float)(q * scale);
                        sdq[K(r) + i] = (float)(k * scale);
                    }
            }
    }

    /// <inheritdoc />
    public void SoftmaxForward(Tensor x, Tensor y)
    {
        var sx = Data(x);
        var sy = Data(y);
        int n = x.Shape.N, c = x.Shape.ItemLength;
        for (int i = 0; i < n; i++)
        {
            double max = double.NegativeInfinity, sum = 0;
            for (int j = 0; j < c; j++) max = Math.Max(max, sx[i * c + j]);
            for (int j = 0; j < c; j++) sum += Math.Exp(sx[i * c + j] - max);
            for (int j = 0; j < c; j++) sy[i * c + j] = (float)(Math.Exp(sx[i * c + j] - max) / sum);
        }
    }

    /// <inheritdoc />
    public void SoftmaxBackward(Tensor y, Tensor dy, Tensor dx)
    {
        var sy = Data(y);
        var sdy = Data(dy);
        var sdx = Data(dx);
        int n = y.Shape.N, c = y.Shape.ItemLength;
        for (int i = 0; i < n; i++)
        {
            double dot = 0;
            for (int j = 0; j < c; j++) dot += (double)sdy[i * c + j] * sy[i * c + j];
            for (int j = 0; j < c; j++) sdx[i * c + j] = (float)(sy[i * c + j] * (sdy[i * c + j] - dot));
        }
    }

    /// <inheritdoc />
    public void SoftmaxCrossEntropy(Tensor logits, Tensor labels, Tensor dLogits, Tensor losses, int slot)
    {
        var sx = Data(logits);
        var sl = Data(labels);
        var sd = Data(dLogits);
        int n = logits.Shape.N, c = logits.Shape.ItemLength;
        double loss = 0;
        for (int i = 0; i < n; i++)
        {
            int label = (int)sl[i];
            double max = double.NegativeInfinity, sum = 0;
            for (int j = 0; j < c; j++) max = Math.Max(max, sx[i * c + j]);
            for (int j = 0; j < c; j++) sum += Math.Exp(sx[i * c + j] - max);
            double logSum = max + Math.Log(sum);
            loss += logSum - sx[i * c + label];
            for (int j = 0; j < c; j++)
                sd[i * c + j] = (float)((Math.Exp(sx[i * c + j] - logSum) - (j == label ? 1 : 0)) / n);
        }
        Data(losses)[slot] += (float)(loss / n);
    }

    /// <inheritdoc />
    public void PixelSoftmaxCrossEntropy(Tensor logits, Tensor labels, Tensor? classWeights, int ignoreLabel, Tensor dLogits, Tensor losses, int slot)
    {
        var sx = Data(logits);
        var sl = Data(labels);
        var sd = Data(dLogits);
        var weights = classWeights is null ? default : Data(classWeights);
        int n = logits.Shape.N, c = logits.Shape[1], plane = logits.Shape.ItemLength / c;
        // log Σ exp per pixel, kept for the gradient: the mean divides by the summed weights, known only at the end.
        var logSums = new double[n * plane];
        double loss = 0, total = 0;
        for (int i = 0; i < n; i++)
            for (int p = 0; p < plane; p++)
            {
                int label = (int)sl[i * plane + p];
                if (label == ignoreLabel) continue;
                double max = double.NegativeInfinity, sum = 0;
                for (int j = 0; j < c; j++) max = Math.Max(max, sx[(i * c + j) * plane + p]);
                for (int j = 0; j < c; j++) sum += Math.Exp(sx[(i * c + j) * plane + p] - max);
                double w = classWeights is null ? 1 : weights[label];
                logSums[i * plane + p] = max + Math.Log(sum);
                loss += w * (logSums[i * plane + p] - sx[(i * c + label) * plane + p]);
                total += w;
            }
        for (int i = 0; i < n; i++)
            for (int p = 0; p < plane; p++)
            {
                int label = (int)sl[i * plane + p];
                bool ignored = label == ignoreLabel || total == 0;
                double w = ignored ? 0 : (classWeights is null ? 1 : weights[label]) / total;
                for (int j = 0; j < c; j++)
                {
                    int at = (i * c + j) * plane + p;
                    sd[at] = ignored ? 0 : (float)(w * (Math.Exp(sx[at] - logSums[i * plane + p]) - (j == label ? 1 : 0)));
                }
            }
        Data(losses)[slot] += total == 0 ? 0 : (float)(loss / total);
    }

    /// <inheritdoc />
    public void SigmoidFocalLoss(Tensor logits, Tensor targets, float alpha, float gamma, float scale, Tensor dLogits, Tensor losses, int slot)
    {
        var sx = Data(logits);
        var st = Data(targets);
        var sd = Data(dLogits);
        double loss = 0;
        for (int i = 0; i < sx.Length; i++)
        {
            double x = sx[i], t = st[i];
            double p = 1 / (1 + Math.Exp(-x));
            double ce = Math.Max(x, 0) - x * t + Math.Log(1 + Math.Exp(-Math.Abs(x)));
            double pt = p * t + (1 - p) * (1 - t);
            double modulation = Math.Pow(1 - pt, gamma);
            // (1 − pt)^(γ−1) is infinite at pt = 1 for γ < 1, where p(1 − p) = 0 and the product's limit is 0.
            double dModulation = gamma == 0 || pt >= 1 ? 0 : -gamma * Math.Pow(1 - pt, gamma - 1) * (2 * t - 1) * p * (1 - p);
            double weight = alpha >= 0 ? alpha * t + (1 - alpha) * (1 - t) : 1;
            loss += weight * ce * modulation;
            sd[i] = (float)(scale * weight * ((p - t) * modulation + ce * dModulation));
        }
        Data(losses)[slot] += (float)(scale * loss);
    }

    /// <inheritdoc />
    public void WeightedAbsoluteError(Tensor predictions, Tensor targets, Tensor weights, float scale, Tensor dPredictions, Tensor losses, int slot)
    {
        var sp = Data(predictions);
        var st = Data(targets);
        var sw = Data(weights);
        var sd = Data(dPredictions);
        double loss = 0;
        for (int i = 0; i < sp.Length; i++)
        {
            float difference = sp[i] - st[i];
            loss += sw[i] * Math.Abs(difference);
            sd[i] = scale * (difference > 0 ? sw[i] : difference < 0 ? -sw[i] : 0); // NaN gives 0, not MathF.Sign's exception
        }
        Data(losses)[slot] += (float)(scale * loss);
    }

    /// <inheritdoc />
    public void CountCorrect(Tensor scores, Tensor labels, int ignoreLabel, Tensor correct, int slot)
    {
        var ss = Data(scores);
        var sl = Data(labels);
        int classes = scores.Shape[1], plane = scores.Shape.ItemLength / classes, right = 0;
        for (int i = 0; i < sl.Length; i++)
        {
            if (sl[i] == ignoreLabel) continue;
            int item = i / plane, pixel = i % plane, best = 0;
            for (int c = 1; c < classes; c++)
                if (ss[(item * classes + c) * plane + pixel] > ss[(item * classes + best) * plane + pixel]) best = c;
            if (best == (int)sl[i]) right++;
        }
        Data(correct)[slot] += right;
    }

    // ---- resampling ----

    /// <inheritdoc />
    public void UpsampleForward(UpsampleMode mode, Tensor x, Tensor y) => Resample(mode, x, y, forward: true);

    /// <inheritdoc />
    public void UpsampleBackward(UpsampleMode mode, Tensor dy, Tensor dx)
    {
        Data(dx).Clear();
        Resample(mode, dx, dy, forward: false);
    }

    /// <summary>
    /// Forward: big ← interpolation of small. Backward (forward false): small += the interpolation's transpose of big.
    /// Both walk the same taps, so the backward pass is the forward's exact adjoint.
    /// </summary>
    private static void Resample(UpsampleMode mode, Tensor small, Tensor big, bool forward)
    {
        var ss = Data(small);
        var sb = Data(big);
        int planes = small.Shape.N * small.Shape[1];
        int h = small.Shape[2], w = small.Shape[3], outH = big.Shape[2], outW = big.Shape[3];
        var rows = Taps(mode, h, outH);
        var cols = Taps(mode, w, outW);
        for (int plane = 0; plane < planes; plane++)
            for (int oy = 0; oy < outH; oy++)
                for (int ox = 0; ox < outW; ox++)
                {
                    var (y0, y1, ly) = rows[oy];
                    var (x0, x1, lx) = cols[ox];
                    int s = plane * h * w, at = (plane * outH + oy) * outW + ox;
                    if (forward)
                        sb[at] = (1 - ly) * ((1 - lx) * ss[s + y0 * w + x0] + lx * ss[s + y0 * w + x1]) +
                                 ly * ((1 - lx) * ss[s + y1 * w + x0] + lx * ss[s + y1 * w + x1]);
                    else
                    {
                        float g = sb[at];
                        ss[s + y0 * w + x0] += (1 - ly) * (1 - lx) * g;
                        ss[s + y0 * w + x1] += (1 - ly) * lx * g;
                        ss[s + y1 * w + x0] += ly * (1 - lx) * g;
                        ss[s + y1 * w + x1] += ly * lx * g;
                    }
                }
    }

    private static (int I0, int I1, float Lambda)[] Taps(UpsampleMode mode, int inSize, int outSize) =>
        mode == UpsampleMode.Nearest ? Interpolation.NearestTaps(inSize, outSize) : Interpolation.BilinearTaps(inSize, outSize);

    /// <inheritdoc />
    public void MulticlassHinge(Tensor scores, Tensor labels, Tensor dScores, Tensor losses, int slot)
    {
        var ss = Data(scores);
        var sl = Data(labels);
        var sd = Data(dScores);
        int n = scores.Shape.N, c = scores.Shape.ItemLength;
        double loss = 0;
        sd.Clear();
        for (int i = 0; i < n; i++)
        {
            int label = (int)sl[i];
            for (int j = 0; j < c; j++)
            {
                if (j == label) continue;
                double margin = ss[i * c + j] - ss[i * c + label] + 1;
                if (margin <= 0) continue;
                loss += margin;
                sd[i * c + j] += 1f / n;
                sd[i * c + label] -= 1f / n;
            }
        }
        Data(losses)[slot] += (float)(loss / n);
    }

    /// <inheritdoc />
    public void MeanSquaredError(Tensor predictions, Tensor targets, Tensor dPredictions, Tensor losses, int slot)
    {
        var sp = Data(predictions);
        var st = Data(targets);
        var sd = Data(dPredictions);
        double loss = 0;
        for (int i = 0; i < sp.Length; i++)
        {
            double diff = sp[i] - st[i];
            loss += diff * diff;
            sd[i] = (float)(2 * diff / sp.Length);
        }
        Data(losses)[slot] += (float)(loss / sp.Length);
    }

    /// <inheritdoc />
    public void MeanAbsoluteError(Tensor predictions, Tensor targets, Tensor dPredictions, Tensor losses, int slot)
    {
        var sp = Data(predictions);
        var st = Data(targets);
        var sd = Data(dPredictions);
        double loss = 0;
        for (int i = 0; i < sp.Length; i++)
        {
            double diff = sp[i] - st[i];
            loss += Math.Abs(diff);
            sd[i] = (float)Math.Sign(diff) / sp.Length;
        }
        Data(losses)[slot] += (float)(loss / sp.Length);
    }

    /// <inheritdoc />
    public void BinaryCrossEntropyWithLogits(Tensor logits, Tensor targets, Tensor dLogits, Tensor losses, int slot)
    {
        var sx = Data(logits);
        var st = Data(targets);
        var sd = Data(dLogits);
        double loss = 0;
        for (int i = 0; i < sx.Length; i++)
        {
            double v = sx[i], t = st[i];
            loss += Math.Max(v, 0) - v * t + Math.Log(1 + Math.Exp(-Math.Abs(v)));
            sd[i] = (float)((1 / (1 + Math.Exp(-v)) - t) / sx.Length);
        }
        Data(losses)[slot] += (float)(loss / sx.Length);
    }

    /// <inheritdoc />
    public void SgdUpdate(Tensor param, Tensor grad, Tensor velocity, float learningRate, float momentum, float weightDecay, bool nesterov)
    {
        var p = Data(param);
        var g = Data(grad);
        var v = Data(velocity);
        for (int i = 0; i < p.Length; i++)
        {
            float d = g[i] + weightDecay * p[i];
            if (momentum != 0)
            {
                v[i] = momentum * v[i] + d;
                d = nesterov ? d + momentum * v[i] : v[i];
            }
            p[i] -= learningRate * d;
        }
    }

    /// <inheritdoc />
    public void AdamUpdate(Tensor param, Tensor grad, Tensor m, Tensor v, float learningRate, float beta1, float beta2,
        float epsilon, float weightDecay, bool decoupledWeightDecay, int step)
    {
        var p = Data(param);
        var g = Data(grad);
        var sm = Data(m);
        var sv = Data(v);
        double biasCorrection1 = 1 - Math.Pow(beta1, step);
        double biasCorrection2Sqrt = Math.Sqrt(1 - Math.Pow(beta2, step));
        for (int i = 0; i < p.Length; i++)
        {
            float d = g[i];
            if (decoupledWeightDecay) p[i] *= 1 - learningRate * weightDecay;
            else d += weightDecay * p[i];
            sm[i] = beta1 * sm[i] + (1 - beta1) * d;
            sv[i] = beta2 * sv[i] + (1 - beta2) * d * d;
            double denom = Math.Sqrt(sv[i]) / biasCorrection2Sqrt + epsilon;
            p[i] -= (float)(learningRate / biasCorrection1 * sm[i] / denom);
        }
    }
}
