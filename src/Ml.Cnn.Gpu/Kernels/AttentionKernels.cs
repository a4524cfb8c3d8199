using ILGPU;

namespace Ml.Cnn.Gpu.Kernels;

/// <summary>The sizes of a multi-head self-attention (see IBackend.AttentionForward for the layout).</summary>
internal struct AttentionArgs
{
    public int Heads, Channels, Tokens;
    public float Scale;

    public readonly int HeadSize => Channels / Heads;

    /// <summary>Element (row r, token i) of item n's block (0 queries, 1 keys, 2 values) of head h in qkv.</summary>
    public readonly long Qkv(int n, int block, int h, int r, int i) => (((long)n * 3 + block) * Channels + h * HeadSize + r) * Tokens + i;

    /// <summary>Element (row r, token i) of item n's head h in the output [N, C, T].</summary>
    public readonly long Output(int n, int h, int r, int i) => ((long)n * Channels + h * HeadSize + r) * Tokens + i;

    /// <summary>Element (i, j) of item n's head h in the [N, heads, T, T] probabilities.</summary>
    public readonly long Score(int n, int h, int i, int j) => (((long)n * Heads + h) * Tokens + i) * Tokens + j;
}

/// <summary>
/// Multi-head self-attention, one thread per output element, each summing its dot product in a fixed order; the
/// softmax rows reuse the classifier's row kernels. No atomics: a run repeats bit for bit.
/// </summary>
internal static class AttentionKernels
{
    /// <summary>Scores S[i, j] = scale · Σ_r Q[r, i]·K[r, j], one thread per (item, head, i, j).</summary>
    public static void Scores(Index1D k, ArrayView<float> qkv, ArrayView<float> scores, AttentionArgs a)
    {
        int t = a.Tokens, j = k % t, i = k / t % t, h = k / (t * t) % a.Heads, n = k / (t * t * a.Heads);
        double s = 0;
        for (int r = 0; r < a.HeadSize; r++) s += (double)qkv[a.Qkv(n, 0, h, r, i)] * qkv[a.Qkv(n, 1, h, r, j)];
        scores[k] = (float)(s * a.Scale);
    }

    /// <summary>Y[r, i] = Σ_j V[r, j]·P[i, j], one thread per output element.</summary>
    public static void Output(Index1D k, ArrayView<float> qkv, ArrayView<float> probabilities, ArrayView<float> y, AttentionArgs a)
    {
        int t = a.Tokens, i = k % t, ch = k / t % a.Channels, n = k / (t * a.Channels), h = ch / a.HeadSize, r = ch % a.HeadSize;
        double o = 0;
        for (int j = 0; j < t; j++) o += (double)qkv[a.Qkv(n, 2, h, r, j)] * probabilities[a.Score(n, h, i, j)];
        y[k] = (float)o;
    }

    /// <summary>dV[r, j] = Σ_i dY[r, i]·P[i, j], one thread per value element.</summary>
    public static void ValueGradient(Index1D k, ArrayView<float> probabilities, ArrayView<float> dy, ArrayView<float> dqkv,
        AttentionArgs a)
    {
        int t = a.Tokens, j = k % t, ch = k / t % a.Channels, n = k / (t * a.Channels), h = ch / a.HeadSize, r = ch % a.HeadSize;
        double v = 0;
        for (int i = 0; i < t; i++) v += (double)dy[a.Output(n, h, r, i)] * probabilities[a.Score(n, h, i, j)];
        dqkv[a.Qkv(n, 2, h, r, j)] = (float)v;
    }

    /// <summary>dP[i, j] = Σ_r dY[r, i]·V[r, j], one thread per (item, head, i, j).</summary>
    public static void ProbabilityGradient(Index1D k, ArrayView<float> qkv, ArrayView<float> dy, ArrayView<float> dp, AttentionArgs a)
    {
        int t = a.Tokens, j = k % t, i = k / t % t, h = k / (t * t) % a.Heads, n = k / (t * t * a.Heads);
        double s = 0;
        for (int r = 0; r < a.HeadSize; r++) s += (double)dy[a.Output(n, h, r, i)] * qkv[a.Qkv(n, 2, h, r, j)];
        dp[k] = (float)s;
    }

    /// <summary>dQ[r, i] = scale · Σ_j K[r, j]·dS[i, j] and dK[r, i] = scale · Σ_j Q[r, j]·dS[j, i].</summary>
    public static void QueryKeyGradient(Index1D k, ArrayView<float> qkv, ArrayView<float> ds, ArrayView<float> dqkv, AttentionArgs a)
    {
        int t = a.Tokens, i = k % t, ch = k / t % a.Channels, n = k / (t * a.Channels), h = ch / a.HeadSize, r = ch % a.HeadSize;
        double q = 0, key = 0;
        for (int j = 0; j < t; j++)
        {
            q += (double)qkv[a.Qkv(n, 1, h, r, j)] * ds[a.Score(n, h, i, j)];
            key += (double)qkv[a.Qkv(n, 0, h, r, j)] * ds[a.Score(n, h, j, i)];
        }
        dqkv[a.Qkv(n, 0, h, r, i)] = (float)(q * a.Scale);
        dqkv[a.Qkv(n, 1, h, r, i)] = (float)(key * a.Scale);
    }
}
