using Microsoft.ML;
using Microsoft.ML.Data;
using Ml.Cnn.MLNet;
using Ml.Cnn.Neighbors;
using Ml.Cnn.Training;
using Xunit;

namespace Ml.Cnn.Tests.MLNet;

/// <summary>
/// Fitted pipelines with our transformers save with mlContext.Model.Save, load in a fresh MLContext as ML.NET's own
/// transformers only, and score as before.
/// </summary>
public sealed class ModelZipTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "mlcnn-zip-" + Guid.NewGuid().ToString("N"));

    public ModelZipTests() => Directory.CreateDirectory(_folder);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void CnnClassifierPipelineRoundTripsThroughAModelZip()
    {
        var ml = new MLContext(seed: 1);
        var train = FashionData.View(ml, train: true, 600);
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.ConvolutionalNetwork(new CnnTrainerOptions
            {
                Architecture = "lenet5", Epochs = 1, Optimizer = OptimizerKind.Adam, LearningRate = 2e-3f, BatchSize = 32, Threads = 2, NormalizeInputs = true,
            }))
            .Fit(train);
        var (loaded, test) = SaveAndLoad(ml, model, train, FashionData.View(ml, train: false, 300));

        var before = model.Transform(test);
        var after = loaded.Transform(test);
        AssertSameClassifierOutput(before, after, scoreTolerance: 1e-4f);
        Assert.Equal(
            ml.MulticlassClassification.Evaluate(before).MicroAccuracy,
            new MLContext().MulticlassClassification.Evaluate(after).MicroAccuracy);
        // Key values survive: PredictedLabel maps back to the class names.
        var names = new MLContext().Transforms.Conversion.MapKeyToValue("PredictedLabel").Fit(after).Transform(after).GetColumn<string>("PredictedLabel").ToArray();
        var expected = ml.Transforms.Conversion.MapKeyToValue("PredictedLabel").Fit(before).Transform(before).GetColumn<string>("PredictedLabel").ToArray();
        Assert.Equal(expected, names);
        Assert.Contains("Ankle boot", names);
    }

    [Theory]
    [InlineData(KnnDistance.Euclidean, KnnWeighting.Uniform, 5)]
    [InlineData(KnnDistance.Euclidean, KnnWeighting.InverseDistance, 4)]
    [InlineData(KnnDistance.Manhattan, KnnWeighting.Uniform, 3)]
    [InlineData(KnnDistance.Cosine, KnnWeighting.InverseDistance, 7)]
    public void KnnPipelineRoundTripsThroughAModelZip(KnnDistance distance, KnnWeighting weighting, int k)
    {
        var ml = new MLContext(seed: 1);
        var train = FashionData.View(ml, train: true, 500);
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.KNearestNeighbors(new KnnOptions { K = k, Distance = distance, Weighting = weighting }))
            .Fit(train);
        // Test rows plus exact copies of training rows (distance 0: the inverse-distance rule's special case).
        var rows = FashionData.Rows(train: false, 200).Concat(FashionData.Rows(train: true, 20)).ToList();
        var (loaded, test) = SaveAndLoad(ml, model, train, ml.Data.LoadFromEnumerable(rows));
        AssertSameClassifierOutput(model.Transform(test), loaded.Transform(test), scoreTolerance: 1e-6f);
    }

    [Fact]
    public void FeaturizerAndRegressorRoundTripThroughAModelZip()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(FashionData.Rows(train: true, 200).Select(r => new RegressionRow { Features = r.Features, Label = r.Features.Average() }));
        var regressor = ml.Regression.Trainers.ConvolutionalNetwork(new CnnTrainerOptions { Architecture = "lenet5", Epochs = 1, BatchSize = 32, Threads = 2 }).Fit(data);
        var model = regressor.Append(ml.Transforms.CnnFeaturizer(regressor.Model, "maxpool2d2", "CnnFeatures").Fit(data))
            .Append(ml.Transforms.CnnFeaturizer(regressor.Model, "dense1", "Features").Fit(data)); // replaces its own input column
        var (loaded, test) = SaveAndLoad(ml, model, data, data);
        var before = model.Transform(test);
        var after = loaded.Transform(test);

        AssertClose(before.GetColumn<float[]>("CnnFeatures"), after.GetColumn<float[]>("CnnFeatures"), 1e-4f);
        AssertClose(before.GetColumn<float[]>("Features"), after.GetColumn<float[]>("Features"), 1e-4f);
        // OnnxTransformer cannot output scalars: a loaded regressor's Score is a one-element vector.
        Assert.Equal(new VectorDataViewType(NumberDataViewType.Single, 1), after.Schema["Score"].Type);
        AssertClose(before.GetColumn<float>("Score").Select(s => new[] { s }), after.GetColumn<float[]>("Score"), 1e-4f);
    }

    private (ITransformer Loaded, IDataView Test) SaveAndLoad(MLContext ml, ITransformer model, IDataView train, IDataView test)
    {
        string path = Path.Combine(_folder, "model.zip");
        ml.Model.Save(model, train.Schema, path);
        var loaded = new MLContext().Model.Load(path, out var inputSchema);
        Assert.Equal(train.Schema.Select(c => c.Name), inputSchema.Select(c => c.Name));
        Assert.DoesNotContain(Transformers(loaded), t => t.GetType().Assembly == typeof(CnnCatalog).Assembly);
        Assert.Contains(Transformers(loaded), t => t.GetType().Name == "OnnxTransformer");
        return (loaded, test);
    }

    private static IEnumerable<ITransformer> Transformers(ITransformer transformer) =>
        transformer is IEnumerable<ITransformer> chain ? chain.SelectMany(Transformers) : [transformer];

    private static void AssertSameClassifierOutput(IDataView before, IDataView after, float scoreTolerance)
    {
        var beforeLabel = (KeyDataViewType)before.Schema["PredictedLabel"].Type;
        var afterLabel = (KeyDataViewType)after.Schema["PredictedLabel"].Type;
        Assert.Equal(beforeLabel.Count, afterLabel.Count);
        Assert.Equal(before.Schema["Score"].Type, after.Schema["Score"].Type);
        Assert.Equal(KeyValues(before), KeyValues(after));
        Assert.Equal(before.GetColumn<uint>("PredictedLabel"), after.GetColumn<uint>("PredictedLabel"));
        AssertClose(before.GetColumn<float[]>("Score"), after.GetColumn<float[]>("Score"), scoreTolerance);
    }

    private static string[] KeyValues(IDataView view)
    {
        var values = default(VBuffer<ReadOnlyMemory<char>>);
        view.Schema["PredictedLabel"].GetKeyValues(ref values);
        return values.DenseValues().Select(v => v.ToString()).ToArray();
    }

    private static void AssertClose(IEnumerable<float[]> expected, IEnumerable<float[]> actual, float tolerance)
    {
        var e = expected.ToList();
        var a = actual.ToList();
        Assert.Equal(e.Count, a.Count);
        for (int row = 0; row < e.Count; row++)
        {
            Assert.Equal(e[row].Length, a[row].Length);
            for (int i = 0; i < e[row].Length; i++)
                Assert.True(Math.Abs(e[row][i] - a[row][i]) <= tolerance * Math.Max(1, Math.Abs(e[row][i])),
                    $"Row {row}, slot {i}: {e[row][i]} before saving, {a[row][i]} after loading.");
        }
    }

    private sealed class RegressionRow
    {
        [VectorType(784)]
        public float[] Features { get; set; } = [];

        public float Label { get; set; }
    }
}
