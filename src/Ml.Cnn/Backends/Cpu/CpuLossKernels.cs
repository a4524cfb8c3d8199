using System.Buffers;

namespace Ml.Cnn.Backends.Cpu;

/// <summary>
/// Softmax, the losses and the small per-channel operations on the CPU: float arithmetic per element, losses summed
/// in double over fixed chunks (rows, images or runs of <see cref="Chunk"/> elements) and the chunks added in order, so
/// a loss has the same bits whatever the thread count. Scalar code only: a vector exp would round differently at each
/// width, and a model trained with AVX2 equals one trained with AVX-512.
/// </summary>
internal static class CpuLossKernels
{
    /// <summary>Elements per task of the elementwise losses.</summary>
    private const int Chunk = 1 << 14;

    /// <summary>Σ over chunks of body(start, end), the chunks [k·size, (k + 1)·size) of 0…length − 1, added in order.</summary>
    private static double SumChunks(int length, int size, int threads, Func<int, int, double> body)
    {
        int chunks = (length + size - 1) / size;
        if (chunks == 0) return 0;
        var partial = ArrayPool<double>.Shared.Rent(chunks);
        try
        {
            CpuWork.For(chunks, threads, k => partial[k] = body(k * size, Math.Min(length, (k + 1) * size)));
            double total = 0;
            for (int k = 0; k < chunks; k++) total += partial[k];
            return total;
        }
        finally
        {
            ArrayPool<double>.Shared.Return(partial);
        }
    }

    /// <summary>body(start, end) over the chunks [k·size, (k + 1)·size) of 0…length − 1.</summary>
    private static void ForChunks(int length, int size, int threads, Action<int, int> body) =>
        CpuWork.For((length + size - 1) / size, threads, k => body(k * size, Math.Min(length, (k + 1) * size)));

    /// <summary>Rows per task for row-wise work of <paramref name="columns"/> values a row (about 4,000 values a task).</summary>
    private static int RowsPerTask(int columns) => Math.Max(1, 4096 / Math.Max(1, columns));

    /// <summary>max + log Σ exp(x − max) of a row, computed stably.</summary>
    internal static float LogSumExp(ReadOnlySpan<float> row)
    {
        float max = float.NegativeInfinity;
        foreach (float v in row) max = MathF.Max(max, v);
        float sum = 0;
        foreach (float v in row) sum += MathF.Exp(v - max);
        return max + MathF.Log(sum);
    }

    public static void SoftmaxForward(float[] x, float[] y, int rows, int columns, int threads) =>
        ForChunks(rows, RowsPerTask(columns), threads, (first, end) =>
        {
            for (int i = first; i < end; i++)
            {
                var row = x.AsSpan(i * columns, columns);
                float logSum = LogSumExp(row);
                var target = y.AsSpan(i * columns, columns);
                for (int j = 0; j < columns; j++) target[j] = MathF.Exp(row[j] - logSum);
            }
        });

    public static void SoftmaxBackward(float[] y, float[] dy, float[] dx, int rows, int columns, int threads) =>
        ForChunks(rows, RowsPerTask(columns), threads, (first, end) =>
        {
            for (int i = first; i < end; i++)
            {
                int at = i * columns;
                float dot = 0;
                for (int j = 0; j < columns; j++) dot += dy[at + j] * y[at + j];
                for (int j = 0; j < columns; j++) dx[at + j] = y[at + j] * (dy[at + j] - dot);
            }
        });

    /// <summary>How many labels the first maximum of their position's scores matches (ignored labels count for nothing).</summary>
    public static int CountCorrect(float[] scores, float[] labels, int ignoreLabel, int classes, int plane, int count)
    {
        int correct = 0;
        for (int i = 0; i < count; i++)
        {
            if (labels[i] == ignoreLabel) continue;
            int item = i / plane, pixel = i % plane, best = 0;
            for (int c = 1; c < classes; c++)
                if (scores[(item * classes + c) * plane + pixel] > scores[(item * classes + best) * plane + pixel]) best = c;
            if (best == (int)labels[i]) correct++;
        }
        return correct;
    }

    /// <summary>Mean over rows of −log softmax(x)[label]; the gradient is (softmax − one-hot) / rows.</summary>
    public static float SoftmaxCrossEntropy(float[] logits, float[] labels, float[] dLogits, int rows, int columns, int threads)
    {
        float inverse = 1f / rows;
        double loss = SumChunks(rows, RowsPerTask(columns), threads, (first, end) =>
        {
            double sum = 0;
            for (int i = first; i < end; i++)
            {
                var row = logits.AsSpan(i * columns, columns);
                int label = (int)labels[i];
                float logSum = LogSumExp(row);
                sum += logSum - row[label];
                for (int j = 0; j < columns; j++)
                    dLogits[i * columns + j] = (MathF.Exp(row[j] - logSum) - (j == label ? 1 : 0)) * inverse;
            }
            return sum;
        });
        return (float)(loss / rows);
    }

    /// <summary>
    /// Per-pixel cross-entropy of [N, C, plane] logits, weighted by class and averaged over the summed weights of the
    /// pixels not ignored. Each image is one task, walking class planes so every read is sequential.
    /// </summary>
    public static float PixelSoftmaxCrossEntropy(float[] logits, float[] labels, float[]? classWeights, int ignoreLabel, float[] dLogits,
        int images, int classes, int plane, int threads)
    {
        var logSums = ArrayPool<float>.Shared.Rent(images * plane);
        var weights = ArrayPool<double>.Shared.Rent(images);
        try
        {
            double loss = SumChunks(images, 1, threads, (i, _) =>
            {
                var label = labels.AsSpan(i * plane, plane);
                var max = logSums.AsSpan(i * plane, plane); // the maxima first, then log Σ exp in place
                max.Fill(float.NegativeInfinity);
                for (int c = 0; c < classes; c++)
                {
                    var x = logits.AsSpan((i * classes + c) * plane, plane);
                    for (int p = 0; p < plane; p++) max[p] = MathF.Max(max[p], x[p]);
                }
                var scratch = ArrayPool<float>.Shared.Rent(plane);
                try
                {
                    var sums = scratch.AsSpan(0, plane);
                    sums.Clear();
                    for (int c = 0; c < classes; c++)
                    {
                        var x = logits.AsSpan((i * classes + c) * plane, plane);
                        for (int p = 0; p < plane; p++) sums[p] += MathF.Exp(x[p] - max[p]);
                    }
                    double imageLoss = 0, imageWeight = 0;
                    for (int p = 0; p < plane; p++)
                    {
                        max[p] += MathF.Log(sums[p]);
                        int target = (int)label[p];
                        if (target == ignoreLabel) continue;
                        double w = classWeights is null ? 1 : classWeights[target];
                        imageLoss += w * (max[p] - logits[(i * classes + target) * plane + p]);
                        imageWeight += w;
                    }
                    weights[i] = imageWeight;
                    return imageLoss;
                }
                finally
                {
                    ArrayPool<float>.Shared.Return(scratch);
                }
            });
            double total = 0;
            for (int i = 0; i < images; i++) total += weights[i];
            // The gradient needs the total weight, known only now: w / total · (softmax − one-hot), 0 where ignored.
            float scale = total == 0 ? 0 : (float)(1 / total);
            CpuWork.For(images, threads, i =>
            {
                var label = labels.AsSpan(i * plane, plane);
                var logSum = logSums.AsSpan(i * plane, plane);
                for (int c = 0; c < classes; c++)
                {
                    var x = logits.AsSpan((i * classes + c) * plane, plane);
                    var d = dLogits.AsSpan((i * classes + c) * plane, plane);
                    for (int p = 0; p < plane; p++)
                    {
                        int target = (int)label[p];
                        float w = target == ignoreLabel ? 0 : (classWeights is null ? 1 : classWeights[target]) * scale;
                        d[p] = w == 0 ? 0 : w * (MathF.Exp(x[p] - logSum[p]) - (c == target ? 1 : 0));
                    }
                }
            });
            return total == 0 ? 0 : (float)(loss / total);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(logSums);
            ArrayPool<double>.Shared.Return(weights);
        }
    }

    /// <summary>Σ of torchvision's sigmoid_focal_loss (α-weighted, (1 − pt)^γ-modulated binary cross-entropy).</summary>
    public static float SigmoidFocalLoss(float[] logits, float[] targets, float alpha, float gamma, float[] dLogits, int length, int threads) =>
        (float)SumChunks(length, Chunk, threads, (first, end) =>
        {
            double sum = 0;
            for (int i = first; i < end; i++)
            {
                double x = logits[i], t = targets[i];
                double p = 1 / (1 + Math.Exp(-x));
                double ce = Math.Max(x, 0) - x * t + Math.Log(1 + Math.Exp(-Math.Abs(x)));
                double pt = p * t + (1 - p) * (1 - t);
                double modulation = Math.Pow(1 - pt, gamma);
                // (1 − pt)^(γ−1) is infinite at pt = 1 for γ < 1, where p(1 − p) = 0 and the product's limit is 0.
                double dModulation = gamma == 0 || pt >= 1 ? 0 : -gamma * Math.Pow(1 - pt, gamma - 1) * (2 * t - 1) * p * (1 - p);
                double weight = alpha >= 0 ? alpha * t + (1 - alpha) * (1 - t) : 1;
                sum += weight * ce * modulation;
                dLogits[i] = (float)(weight * ((p - t) * modulation + ce * dModulation));
            }
            return sum;
        });

    /// <summary>Σ w·|p − t|; the gradient is w·sign(p − t), 0 at equality and for NaN.</summary>
    public static float WeightedAbsoluteError(float[] predictions, float[] targets, float[] weights, float[] dPredictions, int length, int threads) =>
        (float)SumChunks(length, Chunk, threads, (first, end) =>
        {
            double sum = 0;
            for (int i = first; i < end; i++)
            {
                float difference = predictions[i] - targets[i];
                sum += weights[i] * Math.Abs(difference);
                dPredictions[i] = difference > 0 ? weights[i] : difference < 0 ? -weights[i] : 0;
            }
            return sum;
        });

    /// <summary>Mean over rows of Σ_j≠label max(0, x_j − x_label + 1) (Crammer–Singer's hinge, summed over classes).</summary>
    public static float MulticlassHinge(float[] scores, float[] labels, float[] dScores, int rows, int columns, int threads)
    {
        float inverse = 1f / rows;
        double loss = SumChunks(rows, RowsPerTask(columns), threads, (first, end) =>
        {
            double sum = 0;
            for (int i = first; i < end; i++)
            {
                int label = (int)labels[i], at = i * columns;
                float labelGradient = 0;
                for (int j = 0; j < columns; j++)
                {
                    float margin = scores[at + j] - scores[at + label] + 1;
                    bool active = j != label && margin > 0;
                    if (active) sum += margin;
                    dScores[at + j] = active ? inverse : 0;
                    if (active) labelGradient -= inverse;
                }
                dScores[at + label] = labelGradient;
            }
            return sum;
        });
        return (float)(loss / rows);
    }

    public static float MeanSquaredError(float[] predictions, float[] targets, float[] dPredictions, int length, int threads)
    {
        float twice = 2f / length;
        return (float)(SumChunks(length, Chunk, threads, (first, end) =>
        {
            double sum = 0;
            for (int i = first; i < end; i++)
            {
                float difference = predictions[i] - targets[i];
                sum += (double)difference * difference;
                dPredictions[i] = difference * twice;
            }
            return sum;
        }) / length);
    }

    public static float MeanAbsoluteError(float[] predictions, float[] targets, float[] dPredictions, int length, int threads)
    {
        float inverse = 1f / length;
        return (float)(SumChunks(length, Chunk, threads, (first, end) =>
        {
            double sum = 0;
            for (int i = first; i < end; i++)
            {
                float difference = predictions[i] - targets[i];
                sum += Math.Abs(difference);
                dPredictions[i] = difference > 0 ? inverse : difference < 0 ? -inverse : 0;
            }
            return sum;
        }) / length);
    }

    /// <summary>Mean of max(x, 0) − x·t + log(1 + e^−|x|), the stable form of binary cross-entropy on logits.</summary>
    public static float BinaryCrossEntropyWithLogits(float[] logits, float[] targets, float[] dLogits, int length, int threads)
    {
        float inverse = 1f / length;
        return (float)(SumChunks(length, Chunk, threads, (first, end) =>
        {
            double sum = 0;
            for (int i = first; i < end; i++)
            {
                float x = logits[i], t = targets[i];
                sum += MathF.Max(x, 0) - x * t + MathF.Log(1 + MathF.Exp(-MathF.Abs(x)));
                dLogits[i] = (1 / (1 + MathF.Exp(-x)) - t) * inverse;
            }
            return sum;
        }) / length);
    }

    /// <summary>y[n, c, ·] += bias[c], a plane per task group.</summary>
    public static void AddChannelBias(float[] bias, float[] y, int planes, int channels, int plane, int threads) =>
        ForChunks(planes, RowsPerTask(plane), threads, (first, end) =>
        {
            for (int q = first; q < end; q++)
            {
                float b = bias[q % channels];
                foreach (ref float v in y.AsSpan(q * plane, plane)) v += b;
            }
        });

    /// <summary>sums[c] = Σ over images and the plane of x[n, c, ·], in double, a channel per task.</summary>
    public static void ChannelSums(float[] x, float[] sums, int images, int channels, int plane, int threads) =>
        CpuWork.For(channels, threads, c =>
        {
            double sum = 0;
            for (int n = 0; n < images; n++)
                foreach (float v in x.AsSpan((n * channels + c) * plane, plane)) sum += v;
            sums[c] = (float)sum;
        });

    /// <summary>Copies a height × width window of every plane of [planes, sh, sw] into [planes, dh, dw].</summary>
    public static void CopyWindow(float[] src, int sh, int sw, int srcY, int srcX, float[] dst, int dh, int dw, int dstY, int dstX,
        int planes, int height, int width, int threads) =>
        ForChunks(planes, RowsPerTask(height * width), threads, (first, end) =>
        {
            for (int p = first; p < end; p++)
                for (int y = 0; y < height; y++)
                    src.AsSpan((p * sh + srcY + y) * sw + srcX, width).CopyTo(dst.AsSpan((p * dh + dstY + y) * dw + dstX, width));
        });
}
