using ILGPU;

namespace Ml.Cnn.Gpu.Kernels;

/// <summary>
/// Softmax and the losses. Each thread writes its row's (or element's) loss term into <c>terms</c> and the gradient
/// in place; <see cref="AddTerms"/> then adds the terms on the device into the loss's slot, so a loss costs no read.
/// </summary>
internal static class LossKernels
{
    public static void Softmax(Index1D row, ArrayView<float> x, ArrayView<float> y, int classes)
    {
        long o = (long)row.X * classes;
        float max = float.NegativeInfinity;
        for (int j = 0; j < classes; j++) max = x[o + j] > max ? x[o + j] : max;
        double sum = 0;
        for (int j = 0; j < classes; j++) sum += MathF.Exp(x[o + j] - max);
        for (int j = 0; j < classes; j++) y[o + j] = (float)(MathF.Exp(x[o + j] - max) / sum);
    }

    public static void SoftmaxGradient(Index1D row, ArrayView<float> y, ArrayView<float> dy, ArrayView<float> dx, int classes)
    {
        long o = (long)row.X * classes;
        double dot = 0;
        for (int j = 0; j < classes; j++) dot += (double)dy[o + j] * y[o + j];
        for (int j = 0; j < classes; j++) dx[o + j] = (float)(y[o + j] * (dy[o + j] - dot));
    }

    /// <summary>Softmax cross-entropy of one row: terms[row] ← log Σ e^x − x[label]; gradient divided by the batch.</summary>
    public static void SoftmaxCrossEntropy(Index1D row, ArrayView<float> logits, ArrayView<float> labels, ArrayView<float> grad,
        ArrayView<double> terms, int classes, int rows)
    {
        long o = (long)row.X * classes;
        int label = (int)labels[row];
        float max = float.NegativeInfinity;
        for (int j = 0; j < classes; j++) max = logits[o + j] > max ? logits[o + j] : max;
        double sum = 0;
        for (int j = 0; j < classes; j++) sum += MathF.Exp(logits[o + j] - max);
        double logSum = max + Math.Log(sum);
        terms[row] = logSum - logits[o + label];
        for (int j = 0; j < classes; j++)
            grad[o + j] = (float)((Math.Exp(logits[o + j] - logSum) - (j == label ? 1 : 0)) / rows);
    }

    /// <summary>
    /// Per-pixel softmax cross-entropy over [N, C, plane] logits, first pass: terms[pixel] ← w·(log Σ e^x − x[label])
    /// and terms[pixels + pixel] ← w, the label's class weight (0 where the label is ignored). The mean divides by the
    /// summed weights, which <see cref="PixelCrossEntropyGradient"/> is then given.
    /// </summary>
    public static void PixelCrossEntropy(Index1D pixel, ArrayView<float> logits, ArrayView<float> labels, ArrayView<float> weights,
        ArrayView<double> terms, PixelLossArgs g)
    {
        int label = (int)labels[pixel];
        if (label == g.IgnoreLabel)
        {
            terms[pixel] = 0;
            terms[g.Pixels + pixel] = 0;
            return;
        }
        double w = g.Weighted != 0 ? weights[label] : 1;
        terms[pixel] = w * (LogSumExp(logits, g, pixel) - logits[At(g, pixel, label)]);
        terms[g.Pixels + pixel] = w;
    }

    /// <summary>
    /// values[slot] += scale · Σ terms[0 … count): one group, each thread adding a strided share in double and the
    /// shares combined by a fixed-order tree, so the sum repeats bit for bit.
    /// </summary>
    public static void AddTerms(ArrayView<double> terms, ArrayView<float> values, int count, int slot, double scale)
    {
        var shared = SharedMemory.Allocate<double>(ReductionKernels.MaxGroup);
        double own = 0;
        for (int k = Group.IdxX; k < count; k += Group.DimX) own += terms[k];
        double total = ReductionKernels.GroupSum(shared, own);
        if (Group.IdxX == 0) values[slot] += (float)(total * scale);
    }

    /// <summary>
    /// Between the per-pixel passes: the summed losses and weights into totals[0] and totals[1], for the gradient pass,
    /// and their ratio added to values[slot] (nothing when every pixel is ignored). One group, as <see cref="AddTerms"/>.
    /// </summary>
    public static void PixelTotals(ArrayView<double> terms, ArrayView<double> totals, ArrayView<float> values, int pixels, int slot)
    {
        var shared = SharedMemory.Allocate<double>(ReductionKernels.MaxGroup);
        double loss = 0, weight = 0;
        for (int k = Group.IdxX; k < pixels; k += Group.DimX) (loss, weight) = (loss + terms[k], weight + terms[pixels + k]);
        double totalLoss = ReductionKernels.GroupSum(shared, loss), totalWeight = ReductionKernels.GroupSum(shared, weight);
        if (Group.IdxX != 0) return;
        (totals[0], totals[1]) = (totalLoss, totalWeight);
        if (totalWeight != 0) values[slot] += (float)(totalLoss / totalWeight);
    }

    /// <summary>terms[i] ← 1 where the first maximum of position i's scores is its label, else 0 (and 0 where ignored).</summary>
    public static void Correct(Index1D i, ArrayView<float> scores, ArrayView<float> labels, ArrayView<double> terms, int classes, int plane,
        int ignoreLabel)
    {
        int position = i;
        long first = (long)(position / plane) * classes * plane + position % plane; // class c's score is at first + c·plane
        int best = 0;
        for (int c = 1; c < classes; c++)
            if (scores[first + (long)c * plane] > scores[first + (long)best * plane]) best = c;
        terms[i] = labels[i] != ignoreLabel && best == (int)labels[i] ? 1 : 0;
    }

    /// <summary>Second pass: the gradient w/Σw · (softmax − one-hot) of every class at the pixel (0 where ignored).</summary>
    public static void PixelCrossEntropyGradient(Index1D pixel, ArrayView<float> logits, ArrayView<float> labels, ArrayView<float> weights,
        ArrayView<float> grad, PixelLossArgs g, ArrayView<double> totals)
    {
        double total = totals[1];
        int label = (int)labels[pixel];
        bool ignored = label == g.IgnoreLabel || total == 0;
        double w = ignored ? 0 : (g.Weighted != 0 ? weights[label] : 1) / total;
        double logSum = ignored ? 0 : LogSumExp(logits, g, pixel);
        for (int j = 0; j < g.Classes; j++)
        {
            long at = At(g, pixel, j);
            grad[at] = ignored ? 0 : (float)(w * (Math.Exp(logits[at] - logSum) - (j == label ? 1 : 0)));
        }
    }

    private static long At(PixelLossArgs g, int pixel, int j) => ((long)(pixel / g.Plane) * g.Classes + j) * g.Plane + pixel % g.Plane;

    private static double LogSumExp(ArrayView<float> logits, PixelLossArgs g, int pixel)
    {
        double max = double.NegativeInfinity, sum = 0;
        for (int j = 0; j < g.Classes; j++) max = Math.Max(max, logits[At(g, pixel, j)]);
        for (int j = 0; j < g.Classes; j++) sum += Math.Exp(logits[At(g, pixel, j)] - max);
        return max + Math.Log(sum);
    }

    /// <summary>Σ_{j≠y} max(0, s_j − s_y + 1) for one row; gradient divided by the batch.</summary>
    public static void MulticlassHinge(Index1D row, ArrayView<float> scores, ArrayView<float> labels, ArrayView<float> grad,
        ArrayView<double> terms, int classes, int rows)
    {
        long o = (long)row.X * classes;
        int label = (int)labels[row];
        double loss = 0;
        int violations = 0;
        for (int j = 0; j < classes; j++)
        {
            if (j == label) continue;
            double margin = scores[o + j] - scores[o + label] + 1;
            bool violated = margin > 0;
            if (violated) { loss += margin; violations++; }
            grad[o + j] = violated ? 1f / rows : 0;
        }
        grad[o + label] = -(float)violations / rows;
        terms[row] = loss;
    }

    /// <summary>
    /// The elementwise losses, by <paramref name="kind"/>: 0 squared error, 1 absolute error, 2 binary cross-entropy
    /// with logits (averaged: <paramref name="scale"/> is one over the count), 3 weighted absolute error and 4 sigmoid
    /// focal loss with <paramref name="alpha"/> and <paramref name="gamma"/> (summed, then scaled); the gradient is the
    /// scaled one.
    /// </summary>
    public static void Elementwise(Index1D i, ArrayView<float> p, ArrayView<float> t, ArrayView<float> w, ArrayView<float> grad,
        ArrayView<double> terms, int kind, float scale, float alpha, float gamma)
    {
        double d = (double)p[i] - t[i];
        switch (kind)
        {
            case 0:
                terms[i] = d * d;
                grad[i] = (float)(2 * d * scale);
                break;
            case 1:
                terms[i] = Math.Abs(d);
                grad[i] = Sign(d) * scale;
                break;
            case 2:
            {
                double x = p[i], target = t[i];
                // log(1 + e^x) − x·t, written to stay finite for large |x|.
                terms[i] = Math.Max(x, 0) - x * target + Math.Log(1 + Math.Exp(-Math.Abs(x)));
                grad[i] = (float)((1 / (1 + Math.Exp(-x)) - target) * scale);
                break;
            }
            case 3:
                terms[i] = w[i] * Math.Abs(d);
                grad[i] = w[i] * Sign(d) * scale;
                break;
            default:
            {
                double x = p[i], target = t[i], prob = 1 / (1 + Math.Exp(-x));
                double ce = Math.Max(x, 0) - x * target + Math.Log(1 + Math.Exp(-Math.Abs(x)));
                double pt = prob * target + (1 - prob) * (1 - target), modulation = Math.Pow(1 - pt, gamma);
                // (1 − pt)^(γ−1) is infinite at pt = 1 for γ < 1, where p(1 − p) = 0 and the product's limit is 0.
                double dModulation = gamma == 0 || pt >= 1 ? 0
                    : -gamma * Math.Pow(1 - pt, gamma - 1) * (2 * target - 1) * prob * (1 - prob);
                double weight = alpha >= 0 ? alpha * target + (1 - alpha) * (1 - target) : 1;
                terms[i] = weight * ce * modulation;
                grad[i] = (float)(scale * weight * ((prob - target) * modulation + ce * dModulation));
                break;
            }
        }
    }

    // NaN gives 0 (Math.Sign would throw).
    private static float Sign(double d) => d > 0 ? 1 : d < 0 ? -1 : 0;
}

internal struct PixelLossArgs
{
    public int Pixels, Plane, Classes, IgnoreLabel, Weighted;
}
