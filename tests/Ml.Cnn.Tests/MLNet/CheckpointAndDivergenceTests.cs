using Microsoft.ML;
using Ml.Cnn.Layers;
using Ml.Cnn.MLNet;
using Ml.Cnn.Networks;
using Ml.Cnn.Training;
using Ml.Cnn.Tests.Support;
using Xunit;

namespace Ml.Cnn.Tests.MLNet;

/// <summary>Checkpoints through ML.NET: every fit has its own, so none can stand in for another.</summary>
public sealed class CheckpointAndDivergenceTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "mlcnn-cvckpt-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    private static CnnTrainerOptions Options(string? checkpoints, float learningRate = 2e-3f) => new()
    {
        Network = classes => NetworkBuilder.Sequential(new Conv2d(4, 5, stride: 2), new Relu(), new Flatten(), new Dense(classes)),
        Epochs = 2, Optimizer = OptimizerKind.Adam, LearningRate = learningRate, BatchSize = 32, Threads = 1, Seed = 1,
        CheckpointDirectory = checkpoints,
    };

    [Fact]
    public void CrossValidationWithACheckpointFolderTrainsEveryFold()
    {
        var ml = new MLContext(seed: 1);
        var raw = FashionData.View(ml, train: true, 300);
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(raw).Transform(raw);
        var plain = ml.MulticlassClassification.CrossValidate(data, ml.MulticlassClassification.Trainers.ConvolutionalNetwork(Options(null)), 3);
        var checkpointed = ml.MulticlassClassification.CrossValidate(data,
            ml.MulticlassClassification.Trainers.ConvolutionalNetwork(Options(_directory)), 3);
        Assert.Equal(3, Directory.GetDirectories(_directory).Length);
        Assert.Equal(plain.Select(r => r.Metrics.LogLoss), checkpointed.Select(r => r.Metrics.LogLoss));
    }

    [Fact]
    public void FittingAgainResumesTheSameRunAndOtherDataTrainsAfresh()
    {
        var ml = new MLContext(seed: 1);
        IDataView Keyed(IDataView v) => ml.Transforms.Conversion.MapValueToKey("Label").Fit(v).Transform(v);
        var first = Keyed(FashionData.View(ml, train: true, 200));
        var trainer = ml.MulticlassClassification.Trainers.ConvolutionalNetwork(Options(_directory));
        var a = trainer.Fit(first);
        var b = trainer.Fit(first);
        Assert.Single(Directory.GetDirectories(_directory));
        Assert.Equal(a.Model.Network.Parameters.Select(p => p.Value.ToArray()), b.Model.Network.Parameters.Select(p => p.Value.ToArray()));

        var other = trainer.Fit(Keyed(FashionData.View(ml, train: false, 200)));
        Assert.Equal(2, Directory.GetDirectories(_directory).Length);
        Assert.NotEqual(a.Model.Network.Parameters.First().Value.ToArray(), other.Model.Network.Parameters.First().Value.ToArray());
    }

    [Fact]
    public void ALargeLearningRateThrowsInsteadOfReturningAModel()
    {
        var ml = new MLContext(seed: 1);
        var raw = FashionData.View(ml, train: true, 300);
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.ConvolutionalNetwork(Options(null, learningRate: 50f)));
        var error = Assert.Throws<TrainingDivergedException>(() => pipeline.Fit(raw));
        Assert.Contains("learning rate", error.Message);
    }

    [Theory]
    [InlineData(new[] { 1.0f, 0.5f, 0.6f, 0.7f }, 2, true)]
    [InlineData(new[] { 1.0f, 0.5f, 0.6f, 0.4f }, 2, false)]
    [InlineData(new[] { 1.0f, 0.5f, 0.5f }, 2, false)]  // not yet patience epochs after the best
    [InlineData(new[] { 1.0f, 0.5f, 0.6f, 0.7f }, 0, false)]
    public void AStalledTrainingLossStopsTheRunAfterThePatience(float[] losses, int patience, bool stops)
    {
        var history = losses.Select((l, i) => new EpochStatistics(i + 1, l, 0.5f, float.NaN, float.NaN, 0.01f, 1)).ToList();
        var check = new DivergenceCheck(1e3f, patience, history);
        var error = Record.Exception(() => check.CheckProgress(batches: 10));
        if (!stops) { Assert.Null(error); return; }
        var diverged = Assert.IsType<TrainingDivergedException>(error);
        Assert.Equal(losses.Length, diverged.Epoch);
        Assert.Contains("has not fallen below 0.5 (epoch 2) for 2 epochs", diverged.Message);
    }

    [Fact]
    public void CancellationStopsFitWithinOneBatch()
    {
        var ml = new MLContext(seed: 1);
        using var cancellation = new CancellationTokenSource();
        int batches = 0;
        var options = Options(null);
        options.Cancellation = cancellation.Token;
        options.Progress = new SynchronousProgress(_ => { if (++batches == 2) cancellation.Cancel(); });
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.MulticlassClassification.Trainers.ConvolutionalNetwork(options));
        Assert.ThrowsAny<OperationCanceledException>(() => pipeline.Fit(FashionData.View(ml, train: true, 300)));
        Assert.Equal(2, batches);
    }
}
