namespace Ml.Cnn.Backends.Cpu;

/// <summary>
/// Multi-head self-attention on the CPU (see <see cref="IBackend.AttentionForward"/> for the layout): one task per item
/// and head, each running its products through single-threaded SGEMM calls on the head's rows in place, so an item's
/// result depends neither on the batch size nor on the thread count.
/// </summary>
internal static class CpuAttentionKernels
{
    /// <summary>The [d, T] blocks of one item and head: queries, keys and values in qkv, the output in y.</summary>
    private readonly record struct Head(int Query, int Key, int Value, int Output, int Scores)
    {
        public static Head Of(int item, int head, int heads, int channels, int tokens)
        {
            int d = channels / heads, rows = head * d * tokens;
            int qkv = item * 3 * channels * tokens;
            return new(qkv + rows, qkv + channels * tokens + rows, qkv + 2 * channels * tokens + rows,
                item * channels * tokens + rows, (item * heads + head) * tokens * tokens);
        }
    }

    public static void Forward(float[] qkv, float[] probabilities, float[] y, int items, int heads, int channels, int tokens,
        float scale, int threads)
    {
        int d = channels / heads, t = tokens;
        CpuWork.For(items * heads, threads, task =>
        {
            var at = Head.Of(task / heads, task % heads, heads, channels, tokens);
            var p = probabilities.AsSpan(at.Scores, t * t);
            // S = scale·QᵀK, then each row's softmax over the keys; Y = V·Pᵀ.
            Sgemm.Multiply(true, false, t, t, d, scale, qkv.AsSpan(at.Query), t, qkv.AsSpan(at.Key), t, 0f, p, t, 1);
            for (int i = 0; i < t; i++)
            {
                var row = p.Slice(i * t, t);
                float logSum = CpuLossKernels.LogSumExp(row);
                for (int j = 0; j < t; j++) row[j] = MathF.Exp(row[j] - logSum);
            }
            Sgemm.Multiply(false, true, d, t, t, 1f, qkv.AsSpan(at.Value), t, p, t, 0f, y.AsSpan(at.Output, d * t), t, 1);
        });
    }

    public static void Backward(float[] qkv, float[] probabilities, float[] dy, float[] scratch, float[] dqkv, int items, int heads,
        int channels, int tokens, float scale, int threads)
    {
        int d = channels / heads, t = tokens;
        CpuWork.For(items * heads, threads, task =>
        {
            var at = Head.Of(task / heads, task % heads, heads, channels, tokens);
            var p = probabilities.AsSpan(at.Scores, t * t);
            var ds = scratch.AsSpan(at.Scores, t * t);
            var dOut = dy.AsSpan(at.Output);
            // dV = dY·P; dP = dYᵀ·V; dS = P ⊙ (dP − Σⱼ dP ⊙ P) row-wise; dQ = scale·K·dSᵀ; dK = scale·Q·dS.
            Sgemm.Multiply(false, false, d, t, t, 1f, dOut, t, p, t, 0f, dqkv.AsSpan(at.Value, d * t), t, 1);
            Sgemm.Multiply(true, false, t, t, d, 1f, dOut, t, qkv.AsSpan(at.Value), t, 0f, ds, t, 1);
            for (int i = 0; i < t; i++)
            {
                var pi = p.Slice(i * t, t);
                var di = ds.Slice(i * t, t);
                float dot = 0;
                for (int j = 0; j < t; j++) dot += di[j] * pi[j];
                for (int j = 0; j < t; j++) di[j] = pi[j] * (di[j] - dot);
            }
            Sgemm.Multiply(false, true, d, t, t, scale, qkv.AsSpan(at.Key), t, ds, t, 0f, dqkv.AsSpan(at.Query, d * t), t, 1);
            Sgemm.Multiply(false, false, d, t, t, scale, qkv.AsSpan(at.Query), t, ds, t, 0f, dqkv.AsSpan(at.Key, d * t), t, 1);
        });
    }
}
