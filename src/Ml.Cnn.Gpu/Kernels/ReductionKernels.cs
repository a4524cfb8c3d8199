using ILGPU;

namespace Ml.Cnn.Gpu.Kernels;

/// <summary>
/// Per-channel reductions (batch normalization, channel sums) with one group per channel: each thread adds a strided
/// share of the channel's N·H·W values in double, then a fixed-order tree in shared memory combines the shares. No
/// atomics, so a run repeats bit for bit on the same device and group size.
/// </summary>
internal static class ReductionKernels
{
    public const int MaxGroup = 256;

    /// <summary>Σ over the channel of v(x), after which every thread of the group holds the total.</summary>
    internal static double GroupSum(ArrayView<double> shared, double own)
    {
        int t = Group.IdxX;
        shared[t] = own;
        Group.Barrier();
        for (int stride = Group.DimX / 2; stride > 0; stride >>= 1)
        {
            if (t < stride) shared[t] += shared[t + stride];
            Group.Barrier();
        }
        double total = shared[0];
        Group.Barrier();
        return total;
    }

    // Element k of channel c's N·plane values.
    private static long At(int k, int c, ChannelArgs a) => ((long)(k / a.Plane) * a.Channels + c) * a.Plane + k % a.Plane;

    /// <summary>Batch statistics of channel Grid.IdxX: saves mean and 1/σ and updates the running statistics.</summary>
    public static void BatchNormStatistics(ArrayView<float> x, ArrayView<float> savedMean, ArrayView<float> savedInvStd,
        ArrayView<float> runningMean, ArrayView<float> runningVar, ChannelArgs a, float momentum, float epsilon)
    {
        var shared = SharedMemory.Allocate<double>(MaxGroup);
        int c = Grid.IdxX, count = a.Items * a.Plane;
        double sum = 0;
        for (int k = Group.IdxX; k < count; k += Group.DimX) sum += x[At(k, c, a)];
        double mean = GroupSum(shared, sum) / count;
        double squares = 0;
        for (int k = Group.IdxX; k < count; k += Group.DimX) { double d = x[At(k, c, a)] - mean; squares += d * d; }
        double sumSq = GroupSum(shared, squares);
        if (Group.IdxX != 0) return;
        double variance = sumSq / count;
        savedMean[c] = (float)mean;
        savedInvStd[c] = (float)(1 / Math.Sqrt(variance + epsilon));
        double unbiased = count > 1 ? sumSq / (count - 1) : variance;
        runningMean[c] = (float)((1 - momentum) * runningMean[c] + momentum * mean);
        runningVar[c] = (float)((1 - momentum) * runningVar[c] + momentum * unbiased);
    }

    /// <summary>dβ (Σ dy) and dγ (Σ dy·x̂) of channel Grid.IdxX.</summary>
    public static void BatchNormGradientSums(ArrayView<float> x, ArrayView<float> dy, ArrayView<float> savedMean,
        ArrayView<float> savedInvStd, ArrayView<float> dgamma, ArrayView<float> dbeta, ChannelArgs a)
    {
        var shared = SharedMemory.Allocate<double>(MaxGroup);
        int c = Grid.IdxX, count = a.Items * a.Plane;
        double mean = savedMean[c], invStd = savedInvStd[c], sumDy = 0, sumDyXhat = 0;
        for (int k = Group.IdxX; k < count; k += Group.DimX)
        {
            long index = At(k, c, a);
            sumDy += dy[index];
            sumDyXhat += dy[index] * (x[index] - mean) * invStd;
        }
        double totalDy = GroupSum(shared, sumDy), totalDyXhat = GroupSum(shared, sumDyXhat);
        if (Group.IdxX != 0) return;
        dbeta[c] = (float)totalDy;
        dgamma[c] = (float)totalDyXhat;
    }

    /// <summary>sums[c] ← Σ over items and positions of x[n, c, …].</summary>
    public static void ChannelSums(ArrayView<float> x, ArrayView<float> sums, ChannelArgs a)
    {
        var shared = SharedMemory.Allocate<double>(MaxGroup);
        int c = Grid.IdxX, count = a.Items * a.Plane;
        double sum = 0;
        for (int k = Group.IdxX; k < count; k += Group.DimX) sum += x[At(k, c, a)];
        double total = GroupSum(shared, sum);
        if (Group.IdxX == 0) sums[c] = (float)total;
    }

    /// <summary>partials[g] ← Σ x² over group g's contiguous slice of x (the host adds the partials in order).</summary>
    public static void SumOfSquares(ArrayView<float> x, ArrayView<double> partials, int length)
    {
        var shared = SharedMemory.Allocate<double>(MaxGroup);
        long slice = (length + (long)Grid.DimX - 1) / Grid.DimX, start = Grid.IdxX * slice;
        long end = start + slice < length ? start + slice : length;
        double sum = 0;
        for (long k = start + Group.IdxX; k < end; k += Group.DimX) sum += (double)x[k] * x[k];
        double total = GroupSum(shared, sum);
        if (Group.IdxX == 0) partials[Grid.IdxX] = total;
    }

    /// <summary>y ← (x − μ)·(1/σ)·γ + β with per-channel μ and 1/σ (training and evaluation alike).</summary>
    public static void Normalize(Index1D i, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> invStd,
        ArrayView<float> gamma, ArrayView<float> beta, ArrayView<float> y, int channels, int plane)
    {
        int c = i / plane % channels;
        y[i] = (float)(((double)x[i] - mean[c]) * invStd[c] * gamma[c] + beta[c]);
    }

    /// <summary>The evaluation statistics: μ and 1/σ from the running statistics.</summary>
    public static void RunningStatistics(Index1D c, ArrayView<float> runningMean, ArrayView<float> runningVar, float epsilon,
        ArrayView<float> savedMean, ArrayView<float> savedInvStd)
    {
        savedMean[c] = runningMean[c];
        savedInvStd[c] = (float)(1 / Math.Sqrt(runningVar[c] + (double)epsilon));
    }

    public static void BatchNormInputGradient(Index1D i, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> gamma,
        ArrayView<float> mean, ArrayView<float> invStd, ArrayView<float> dgamma, ArrayView<float> dbeta, ArrayView<float> dx,
        ChannelArgs a, int batchStatistics)
    {
        int c = i / a.Plane % a.Channels;
        double count = (double)a.Items * a.Plane, s = invStd[c], xhat = (x[i] - mean[c]) * s;
        dx[i] = batchStatistics != 0
            ? (float)(gamma[c] * s / count * (count * dy[i] - dbeta[c] - xhat * dgamma[c]))
            : (float)(gamma[c] * s * dy[i]);
    }

    /// <summary>db[j] ← Σ over plane j of dy ⊙ a (a broadcast factor's gradient), in order.</summary>
    public static void PlaneDot(Index1D j, ArrayView<float> dy, ArrayView<float> a, ArrayView<float> db, int plane)
    {
        double sum = 0;
        for (int k = 0; k < plane; k++) sum += (double)dy[(long)j.X * plane + k] * a[(long)j.X * plane + k];
        db[j] = (float)sum;
    }
}

internal struct ChannelArgs
{
    public int Items, Channels, Plane;
}

/// <summary>Local response normalization across channels, PyTorch's form, one thread per element.</summary>
/// <summary>
/// Layer normalization over the channels of each position: a thread per position walks its channels in order, and the
/// per-channel parameter gradients use <see cref="ReductionKernels"/>' fixed-order group sums.
/// </summary>
internal static class LayerNormKernels
{
    private static long At(int position, int c, ChannelArgs a) =>
        ((long)(position / a.Plane) * a.Channels + c) * a.Plane + position % a.Plane;

    public static void Forward(Index1D position, ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> y, ArrayView<float> savedMean, ArrayView<float> savedInvStd, ChannelArgs a, float epsilon)
    {
        double sum = 0, squares = 0;
        for (int c = 0; c < a.Channels; c++) sum += x[At(position, c, a)];
        double mean = sum / a.Channels;
        for (int c = 0; c < a.Channels; c++) { double d = x[At(position, c, a)] - mean; squares += d * d; }
        double invStd = 1 / Math.Sqrt(squares / a.Channels + epsilon);
        savedMean[position] = (float)mean;
        savedInvStd[position] = (float)invStd;
        for (int c = 0; c < a.Channels; c++)
        {
            long i = At(position, c, a);
            y[i] = (float)((x[i] - mean) * invStd * gamma[c] + beta[c]);
        }
    }

    public static void InputGradient(Index1D position, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> gamma,
        ArrayView<float> savedMean, ArrayView<float> savedInvStd, ArrayView<float> dx, ChannelArgs a)
    {
        double mean = savedMean[position], invStd = savedInvStd[position], sumG = 0, sumGXhat = 0;
        for (int c = 0; c < a.Channels; c++)
        {
            long i = At(position, c, a);
            double g = (double)dy[i] * gamma[c];
            sumG += g;
            sumGXhat += g * (x[i] - mean) * invStd;
        }
        for (int c = 0; c < a.Channels; c++)
        {
            long i = At(position, c, a);
            double xhat = (x[i] - mean) * invStd;
            dx[i] = (float)(invStd * ((double)dy[i] * gamma[c] - (sumG + xhat * sumGXhat) / a.Channels));
        }
    }

    /// <summary>dγ (Σ dy·x̂) and dβ (Σ dy) of channel Grid.IdxX over every position.</summary>
    public static void ParameterGradients(ArrayView<float> x, ArrayView<float> dy, ArrayView<float> savedMean,
        ArrayView<float> savedInvStd, ArrayView<float> dgamma, ArrayView<float> dbeta, ChannelArgs a)
    {
        var shared = SharedMemory.Allocate<double>(ReductionKernels.MaxGroup);
        int c = Grid.IdxX, positions = a.Items * a.Plane;
        double sumDy = 0, sumDyXhat = 0;
        for (int k = Group.IdxX; k < positions; k += Group.DimX)
        {
            long i = At(k, c, a);
            sumDy += dy[i];
            sumDyXhat += dy[i] * (x[i] - savedMean[k]) * savedInvStd[k];
        }
        double totalDy = ReductionKernels.GroupSum(shared, sumDy), totalDyXhat = ReductionKernels.GroupSum(shared, sumDyXhat);
        if (Group.IdxX != 0) return;
        dbeta[c] = (float)totalDy;
        dgamma[c] = (float)totalDyXhat;
    }
}

internal static class LrnKernels
{
    public static void Forward(Index1D i, ArrayView<float> x, ArrayView<float> y, ArrayView<float> scale, LrnArgs a)
    {
        int p = i % a.Plane, c = i / a.Plane % a.Channels, n = i / (a.Plane * a.Channels);
        double sumSq = 0;
        for (int j = c - a.Size / 2; j <= c + (a.Size - 1) / 2; j++)
            if (j >= 0 && j < a.Channels) { double v = x[(n * a.Channels + j) * a.Plane + p]; sumSq += v * v; }
        double s = a.K + a.Alpha / a.Size * sumSq;
        scale[i] = (float)s;
        y[i] = (float)(x[i] * Math.Pow(s, -a.Beta));
    }

    public static void Backward(Index1D i, ArrayView<float> x, ArrayView<float> y, ArrayView<float> scale, ArrayView<float> dy,
        ArrayView<float> dx, LrnArgs a)
    {
        int p = i % a.Plane, c = i / a.Plane % a.Channels, n = i / (a.Plane * a.Channels);
        double grad = dy[i] * Math.Pow(scale[i], -a.Beta);
        // Output channel j's window covers c when j − size/2 ≤ c ≤ j + (size − 1)/2.
        for (int j = c - (a.Size - 1) / 2; j <= c + a.Size / 2; j++)
        {
            if (j < 0 || j >= a.Channels) continue;
            int jdx = (n * a.Channels + j) * a.Plane + p;
            grad -= 2.0 * a.Alpha * a.Beta / a.Size * x[i] * dy[jdx] * y[jdx] / scale[jdx];
        }
        dx[i] = (float)grad;
    }
}

internal struct LrnArgs
{
    public int Channels, Plane, Size;
    public float Alpha, Beta, K;
}
