using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Ml.Cnn.Data;

namespace Ml.Cnn.Training;

/// <summary>
/// What a checkpoint was trained on: a hash of the data (count, shape, every target and an evenly spaced sample of
/// items) and one of the options that shape the run. Epochs, progress and the checkpoint folder are left out, so a
/// run can be resumed for more epochs.
/// </summary>
internal readonly record struct RunFingerprint(ulong Data, ulong Options)
{
    private const int SampledItems = 256;

    public static RunFingerprint Of(ImageDataset data, TrainerOptions options) =>
        new(HashData(data) ^ (options.ValidationData is { } v ? HashData(v) * 31 : 0), HashOptions(options));

    /// <summary>A folder name for one fit of one network on this data with these options.</summary>
    public string FolderName(string networkDescription)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<ulong> words = [Data, Options];
        hash.AppendData(MemoryMarshal.AsBytes(words));
        hash.AppendData(Encoding.UTF8.GetBytes(networkDescription));
        return "fit-" + Convert.ToHexString(hash.GetHashAndReset(), 0, 8).ToLowerInvariant();
    }

    private static ulong HashData(ImageDataset data)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Encoding.UTF8.GetBytes($"{data.Count}|{data.ItemShape}|{data.ClassCount}|{data.TargetLength}"));
        hash.AppendData(MemoryMarshal.AsBytes(data.Targets.AsSpan()));
        var item = new float[data.ItemShape.Length];
        int samples = Math.Min(SampledItems, data.Count);
        for (int s = 0; s < samples; s++)
        {
            data.CopyItem((int)((long)s * data.Count / samples), item);
            hash.AppendData(MemoryMarshal.AsBytes(item.AsSpan()));
        }
        return First8(hash);
    }

    private static ulong HashOptions(TrainerOptions o)
    {
        var s = o.Schedule;
        var a = o.Augmentation;
        string text = string.Join("|", new object?[]
        {
            o.BatchSize, o.Optimizer, o.LearningRate, o.Momentum, o.Nesterov, o.WeightDecay, o.GradientClipNorm, o.Loss,
            o.ValidationFraction, o.EarlyStoppingPatience, o.RestoreBestWeights, o.NormalizeInputs, o.Seed,
            o.InputNormalization is { } n ? string.Join(",", n.Mean.Concat(n.Std).Select(v => v.ToString("R", CultureInfo.InvariantCulture))) : null,
            s.Kind, s.Factor, s.StepEpochs, s.Patience, s.MinRate, s.WarmupEpochs,
            a?.HorizontalFlip, a?.VerticalFlip, a?.CropPadding, a?.MaxRotationDegrees, a?.Brightness, a?.Contrast,
        }.Select(v => Convert.ToString(v, CultureInfo.InvariantCulture)));
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Encoding.UTF8.GetBytes(text));
        return First8(hash);
    }

    private static ulong First8(IncrementalHash hash) => BitConverter.ToUInt64(hash.GetHashAndReset(), 0);
}
