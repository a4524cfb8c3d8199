using Microsoft.ML;
using Microsoft.ML.Data;
using Ml.Cnn.MLNet;
using Ml.Cnn.Neighbors;
using Xunit;

namespace Ml.Cnn.Tests.MLNet;

/// <summary>Estimators refuse bad options when they are created, before any data is read, naming the option.</summary>
public sealed class EstimatorOptionTests
{
    public static TheoryData<string, Action<CnnTrainerOptions>> BadCnnOptions() => new()
    {
        { "Architecture", o => o.Architecture = null! },
        { "Architecture", o => o.Architecture = "resnet-2000" },
        { "Threads", o => o.Threads = -1 },
        { "ImageChannels", o => o.ImageChannels = -1 },
        { "ImageHeight", o => o.ImageHeight = -28 },
        { "ImageWidth", o => o.ImageWidth = -28 },
        { "FeatureColumnName", o => o.FeatureColumnName = null! },
        { "LearningRate", o => o.LearningRate = -0.1f },
        { "Epochs", o => o.Epochs = 0 },
        { "DivergenceFactor", o => o.DivergenceFactor = 0.5f },
        { "DivergencePatience", o => o.DivergencePatience = -1 },
        { "Schedule", o => o.Schedule = null! },
        { "Schedule.Factor", o => o.Schedule = new Ml.Cnn.Training.LearningRateSchedule { Factor = 2 } },
    };

    [Theory]
    [MemberData(nameof(BadCnnOptions))]
    public void CnnTrainersRefuseAtCreation(string option, Action<CnnTrainerOptions> spoil)
    {
        var options = new CnnTrainerOptions();
        spoil(options);
        var ml = new MLContext(seed: 1);
        Assert.Equal(option, Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.ConvolutionalNetwork(options)).ParamName);
        Assert.Equal(option, Assert.Throws<ArgumentOutOfRangeException>(() => ml.Regression.Trainers.ConvolutionalNetwork(options)).ParamName);
    }

    [Fact]
    public void ANetworkFactoryThatReturnsNullIsNamed()
    {
        var ml = new MLContext(seed: 1);
        var options = new CnnTrainerOptions { Network = _ => null!, Epochs = 1 };
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.MulticlassClassification.Trainers.ConvolutionalNetwork(options));
        Assert.Contains("Network returned null", Assert.Throws<InvalidOperationException>(() => pipeline.Fit(FashionData.View(ml, true, 20))).Message);
    }

    public static TheoryData<string, Action<KnnOptions>> BadKnnOptions() => new()
    {
        { "Distance", o => o.Distance = (KnnDistance)99 },
        { "Distance", o => o.CandidateDistances = [KnnDistance.Euclidean, (KnnDistance)99] },
        { "Weighting", o => o.Weighting = (KnnWeighting)99 },
        { "Threads", o => o.Threads = -1 },
        { "Folds", o => o.Folds = 1 },
    };

    [Theory]
    [MemberData(nameof(BadKnnOptions))]
    public void KnnRefusesAtCreation(string option, Action<KnnOptions> spoil)
    {
        var options = new KnnOptions();
        spoil(options);
        Assert.Equal(option, Assert.Throws<ArgumentOutOfRangeException>(() => new MLContext().MulticlassClassification.Trainers.KNearestNeighbors(options)).ParamName);
    }

    [Fact]
    public void ScoresThatOverflowAreReportedNotPassedOn()
    {
        var ml = new MLContext(seed: 1);
        var train = FashionData.View(ml, true, 200);
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.ConvolutionalNetwork(new CnnTrainerOptions { Architecture = "lenet5", Epochs = 1 }))
            .Fit(train);
        var rows = FashionData.Rows(false, 4);
        foreach (var r in rows) Array.Fill(r.Features, 3e38f);
        var scored = model.Transform(ml.Data.LoadFromEnumerable(rows));
        var error = Assert.Throws<InvalidOperationException>(() => scored.GetColumn<float[]>("Score").ToList());
        Assert.Contains("'Features'", error.Message);
    }
}

public sealed class PredictionTransformerTests
{
    [Fact]
    public void TrainersReturnMlNetPredictionTransformersWithTheirModel()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(FashionData.View(ml, true, 100)).Transform(FashionData.View(ml, true, 100));
        ISingleFeaturePredictionTransformer<CnnModel> cnn =
            ml.MulticlassClassification.Trainers.ConvolutionalNetwork(new CnnTrainerOptions { Architecture = "linear", Epochs = 1 }).Fit(data);
        Assert.Equal("Features", cnn.FeatureColumnName);
        Assert.Equal(784, ((VectorDataViewType)cnn.FeatureColumnType).Size);
        Assert.Equal([1, 28, 28], cnn.Model.ImageShape.Dims);
        ISingleFeaturePredictionTransformer<KnnClassifier> knn = ml.MulticlassClassification.Trainers.KNearestNeighbors(k: 3).Fit(data);
        Assert.Equal(3, knn.Model.K);
    }

    [Fact]
    public void AnImageTooSmallForTheArchitectureSaysItsShape()
    {
        var ml = new MLContext(seed: 1);
        var rows = Enumerable.Range(0, 8).Select(i => new TinyRow { Features = new float[16], Label = (i % 2).ToString() });
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.ConvolutionalNetwork(new CnnTrainerOptions { Architecture = "lenet5", Epochs = 1 }));
        var error = Assert.Throws<ArgumentException>(() => pipeline.Fit(ml.Data.LoadFromEnumerable(rows)));
        Assert.Contains("Architecture 'lenet5' does not fit images of [1, 4, 4]", error.Message);
    }

    private sealed class TinyRow
    {
        [VectorType(16)] public float[] Features { get; set; } = [];
        public string Label { get; set; } = "";
    }
}
