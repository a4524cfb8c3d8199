namespace Ml.Cnn.Data;

/// <summary>Per-channel standardization x ← (x − mean) / std, with statistics computed from training data.</summary>
public sealed class ChannelNormalization(float[] mean, float[] std)
{
    /// <summary>
    /// ImageNet's RGB statistics for pixels scaled to [0, 1] (torchvision's pretrained networks expect inputs
    /// standardized with them).
    /// </summary>
    public static ChannelNormalization ImageNet => new([0.485f, 0.456f, 0.406f], [0.229f, 0.224f, 0.225f]);

    /// <summary>Per-channel means.</summary>
    public float[] Mean { get; } = mean;

    /// <summary>Per-channel standard deviations (never zero).</summary>
    public float[] Std { get; } = std;

    /// <summary>Statistics of every channel over all items and pixels of <paramref name="data"/>.</summary>
    public static ChannelNormalization Fit(ImageDataset data)
    {
        int channels = data.ItemShape.Rank == 3 ? data.ItemShape[0] : 1;
        int plane = data.ItemShape.Length / channels;
        var sum = new double[channels];
        var sumSq = new double[channels];
        var item = new float[data.ItemShape.Length];
        for (int i = 0; i < data.Count; i++)
        {
            data.CopyItem(i, item);
            for (int c = 0; c < channels; c++)
                foreach (var v in item.AsSpan(c * plane, plane)) { sum[c] += v; sumSq[c] += (double)v * v; }
        }
        double n = (double)data.Count * plane;
        var mean = sum.Select(s => (float)(s / n)).ToArray();
        var std = sumSq.Select((s, c) => (float)Math.Max(Math.Sqrt(Math.Max(s / n - mean[c] * (double)mean[c], 0)), 1e-6)).ToArray();
        return new ChannelNormalization(mean, std);
    }

    /// <summary>Standardizes one CHW item in place.</summary>
    public void Apply(Span<float> item)
    {
        int plane = item.Length / Mean.Length;
        for (int c = 0; c < Mean.Length; c++)
        {
            float mean = Mean[c], inverse = 1 / Std[c];
            var channel = item.Slice(c * plane, plane);
            for (int i = 0; i < channel.Length; i++) channel[i] = (channel[i] - mean) * inverse;
        }
    }
}
