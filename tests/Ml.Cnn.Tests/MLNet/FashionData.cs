using Microsoft.ML;
using Microsoft.ML.Data;
using Ml.Cnn.Data;

namespace Ml.Cnn.Tests.MLNet;

/// <summary>Rows of the embedded Fashion-MNIST subset as ML.NET sees them: pixels in [0, 1] and a text label.</summary>
public sealed class FashionRow
{
    [VectorType(784)]
    public float[] Features { get; set; } = [];

    public string Label { get; set; } = "";
}

public sealed class FashionPrediction
{
    public float[] Score { get; set; } = [];

    public string PredictedLabel { get; set; } = "";
}

internal static class FashionData
{
    public static string Folder => Path.Combine(AppContext.BaseDirectory, "data", "fashion-mnist-subset");

    private static readonly Lazy<ImageDataset> Train = new(() => Idx.LoadFromFolder(Folder, "train"));
    private static readonly Lazy<ImageDataset> Test = new(() => Idx.LoadFromFolder(Folder, "t10k"));

    /// <summary>The first <paramref name="count"/> items of the subset (classes interleave evenly in file order).</summary>
    public static List<FashionRow> Rows(bool train, int count)
    {
        var data = train ? Train.Value : Test.Value;
        return Enumerable.Range(0, Math.Min(count, data.Count))
            .Select(i => new FashionRow { Features = data.GetItem(i), Label = Idx.FashionMnistClasses[(int)data.Targets[i]] })
            .ToList();
    }

    public static IDataView View(MLContext ml, bool train, int count) => ml.Data.LoadFromEnumerable(Rows(train, count));
}
