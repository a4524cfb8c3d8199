using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Data;
using Ml.Cnn.Layers;
using Ml.Cnn.Networks;
using Ml.Cnn.Tensors;
using Ml.Cnn.Training;
using Ml.Cnn.Tests.Support;
using Xunit;

namespace Ml.Cnn.Tests.Training;

public sealed class TrainerTests
{
    private static Network SmallCnn(ulong seed, bool withDropoutAndBatchNorm = false)
    {
        var layers = new List<Layer> { new Conv2d(8, 3, padding: 1) };
        if (withDropoutAndBatchNorm) layers.Add(new BatchNorm());
        layers.AddRange([new Relu(), new MaxPool2d(2), new Flatten(), new Dense(32), new Relu()]);
        if (withDropoutAndBatchNorm) layers.Add(new Dropout(0.3f));
        layers.Add(new Dense(4));
        return Network.Sequential(new CpuBackend(2), new TensorShape(1, 8, 8), seed, [.. layers]);
    }

    [Fact]
    public void MemorizesA256ImageBatch()
    {
        var data = TrainingData.Noise(256, 1);
        var network = Network.Sequential(new CpuBackend(2), new TensorShape(1, 8, 8), 1,
            new Conv2d(16, 3, padding: 1), new Relu(), new MaxPool2d(2), new Flatten(), new Dense(128), new Relu(), new Dense(4));
        var result = Trainer.Train(network, data, new TrainerOptions
        {
            Epochs = 300, BatchSize = 256, Optimizer = OptimizerKind.Adam, LearningRate = 0.002f,
        });
        var (_, accuracy) = Trainer.Evaluate(network, data, Trainer.CreateLoss(LossKind.SoftmaxCrossEntropy), null);
        Assert.Equal(1f, accuracy);
        Assert.True(result.History[^1].TrainingLoss < result.History[0].TrainingLoss / 10);
    }

    [Fact]
    public void LearnsAndGeneralizesOnSeparableImages()
    {
        var network = SmallCnn(2);
        var result = Trainer.Train(network, TrainingData.Blobs(400, 2), new TrainerOptions { Epochs = 8, BatchSize = 32, LearningRate = 0.05f, NormalizeInputs = true });
        var (_, accuracy) = Trainer.Evaluate(network, TrainingData.Blobs(200, 3), Trainer.CreateLoss(LossKind.SoftmaxCrossEntropy), result.Normalization);
        Assert.True(accuracy > 0.9f, $"test accuracy {accuracy}");
    }

    [Fact]
    public void FixedInputStatisticsAreUsedAsGivenAndChecked()
    {
        var data = TrainingData.Blobs(40, 2); // one channel
        var statistics = new ChannelNormalization([0.25f], [0.5f]);
        var result = Trainer.Train(SmallCnn(2), data, new TrainerOptions { Epochs = 1, InputNormalization = statistics });
        Assert.Same(statistics, result.Normalization);
        var both = new TrainerOptions { InputNormalization = statistics, NormalizeInputs = true };
        Assert.Equal(nameof(TrainerOptions.NormalizeInputs), Assert.Throws<ArgumentOutOfRangeException>(() => Trainer.Train(SmallCnn(2), data, both)).ParamName);
        var imageNet = new TrainerOptions { InputNormalization = ChannelNormalization.ImageNet }; // three channels, the data has one
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Trainer.Train(SmallCnn(2), data, imageNet));
        Assert.Equal(nameof(TrainerOptions.InputNormalization), e.ParamName);
        Assert.Contains("1 channels", e.Message);
    }

    private static TrainerOptions ResumableOptions(int epochs, string? directory) => new()
    {
        Epochs = epochs, BatchSize = 16, LearningRate = 0.02f, Momentum = 0.9f, Nesterov = true, WeightDecay = 1e-4f,
        ValidationFraction = 0.2f, RestoreBestWeights = false, NormalizeInputs = true, Seed = 9,
        Schedule = new LearningRateSchedule { Kind = ScheduleKind.ReduceOnPlateau, Patience = 0, Factor = 0.5f, WarmupEpochs = 1 },
        Augmentation = new Augmentation { HorizontalFlip = true, CropPadding = 1, Brightness = 0.05f },
        CheckpointDirectory = directory,
    };

    [Fact]
    public void ResumedRunEqualsUninterruptedRunBitForBit()
    {
        var data = TrainingData.Blobs(120, 4);
        var uninterrupted = SmallCnn(5, withDropoutAndBatchNorm: true);
        var full = Trainer.Train(uninterrupted, data, ResumableOptions(4, null));

        string directory = Path.Combine(Path.GetTempPath(), "mlcnn-resume-" + Guid.NewGuid().ToString("N"));
        try
        {
            Trainer.Train(SmallCnn(5, withDropoutAndBatchNorm: true), data, ResumableOptions(2, directory)); // "stopped" after epoch 2
            var resumed = SmallCnn(5, withDropoutAndBatchNorm: true);
            var second = Trainer.Train(resumed, data, ResumableOptions(4, directory));
            Assert.Equal(full.History.Select(h => h.TrainingLoss), second.History.Select(h => h.TrainingLoss));
            foreach (var (a, b) in uninterrupted.StateTensors.Zip(resumed.StateTensors)) Assert.Equal(a.ToArray(), b.ToArray());
            Assert.False(File.Exists(Path.Combine(directory, "checkpoint.mlcnn.tmp")));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void CancellationStopsAfterTheCurrentBatchAndKeepsTheLastCheckpoint()
    {
        var data = TrainingData.Blobs(160, 6);
        string directory = Path.Combine(Path.GetTempPath(), "mlcnn-cancel-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var cancellation = new CancellationTokenSource();
            int batchesSeen = 0;
            var options = ResumableOptions(3, directory);
            options.Progress = new SynchronousProgress(p =>
            {
                if (!p.EpochEnd && p.Epoch == 2 && ++batchesSeen == 3) cancellation.Cancel();
            });
            Assert.ThrowsAny<OperationCanceledException>(() => Trainer.Train(SmallCnn(7, true), data, options, cancellation.Token));
            Assert.Equal(3, batchesSeen);
            // The epoch-1 checkpoint is intact: a new run resumes from it and finishes.
            var result = Trainer.Train(SmallCnn(7, true), data, ResumableOptions(3, directory));
            Assert.Equal(3, result.History.Count);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void DivergenceNamesEpochAndBatchAndReturnsNoModel()
    {
        var data = TrainingData.Blobs(64, 8);
        var error = Assert.Throws<TrainingDivergedException>(() =>
            Trainer.Train(SmallCnn(8), data, new TrainerOptions { Epochs = 5, BatchSize = 16, LearningRate = 1e8f, Momentum = 0 }));
        Assert.Contains("lower learning rate", error.Message);
        Assert.Contains($"epoch {error.Epoch}, batch {error.Batch}", error.Message);
    }

    [Fact]
    public void RestoresTheBestValidationEpoch()
    {
        var data = TrainingData.Blobs(200, 10);
        var network = SmallCnn(10);
        var options = new TrainerOptions { Epochs = 6, BatchSize = 16, LearningRate = 0.3f, ValidationFraction = 0.25f, EarlyStoppingPatience = 2, Seed = 3 };
        var result = Trainer.Train(network, data, options);
        var best = result.History.MinBy(h => h.ValidationLoss)!;
        Assert.Equal(best.Epoch, result.BestEpoch);
        var (_, validation) = Trainer.Split(data, 0.25f, 3);
        var (loss, _) = Trainer.Evaluate(network, validation!, Trainer.CreateLoss(LossKind.SoftmaxCrossEntropy), null, 16);
        Assert.Equal(best.ValidationLoss, loss, 4);
        if (result.StoppedEarly) Assert.True(result.History.Count - best.Epoch >= 2);
    }

    [Fact]
    public void GradientClippingBoundsTheUpdate()
    {
        var data = TrainingData.Blobs(32, 11);
        var network = SmallCnn(11);
        var before = network.Parameters.Select(p => p.Value.ToArray()).ToArray();
        Trainer.Train(network, data, new TrainerOptions { Epochs = 1, BatchSize = 32, LearningRate = 1f, Momentum = 0, GradientClipNorm = 0.01f });
        double step = Math.Sqrt(network.Parameters.Zip(before).Sum(pair => pair.First.Value.ToArray().Zip(pair.Second).Sum(v => (double)(v.First - v.Second) * (v.First - v.Second))));
        Assert.InRange(step, 0.005, 0.0100001);
    }

    [Fact]
    public void InputErrorsAreExplained()
    {
        var data = TrainingData.Blobs(32, 12);
        Assert.Contains("ValidationFraction must be in [0, 1)", Assert.ThrowsAny<ArgumentException>(() =>
            Trainer.Train(SmallCnn(1), data, new TrainerOptions { ValidationFraction = 1.5f })).Message);
        var wrongShape = Network.Sequential(new CpuBackend(1), new TensorShape(1, 9, 9), 0, new Flatten(), new Dense(4));
        Assert.Contains("[1, 9, 9]", Assert.Throws<ArgumentException>(() => Trainer.Train(wrongShape, data, new TrainerOptions())).Message);
        var wrongClasses = Network.Sequential(new CpuBackend(1), new TensorShape(1, 8, 8), 0, new Flatten(), new Dense(3));
        Assert.Contains("4 classes", Assert.Throws<ArgumentException>(() => Trainer.Train(wrongClasses, data, new TrainerOptions())).Message);
        Assert.Contains("item 1 is NaN", Assert.Throws<ArgumentException>(() =>
            new ImageDataset(new TensorShape(2), [0, 1, float.NaN, 2], [0, 1], classCount: 2)).Message);
    }
}

public sealed class TrainerEdgeCaseTests
{
    [Fact]
    public void BatchSizeOneTrainsItemByItem()
    {
        var data = TrainingData.Blobs(40, 13);
        var network = Network.Sequential(new CpuBackend(1), new TensorShape(1, 8, 8), 1, new Flatten(), new Dense(4));
        var before = network.Parameters.First().Value.ToArray();
        var result = Trainer.Train(network, data, new TrainerOptions { Epochs = 1, BatchSize = 1, LearningRate = 0.01f });
        Assert.NotEqual(before, network.Parameters.First().Value.ToArray());
        Assert.True(result.History[0].TrainingLoss > 0);
    }

    [Fact]
    public void AnEarlyStoppedRunStaysStoppedWhenRunAgain()
    {
        var data = TrainingData.Noise(120, 14);
        string directory = Path.Combine(Path.GetTempPath(), "mlcnn-stopped-" + Guid.NewGuid().ToString("N"));
        try
        {
            TrainerOptions Options() => new()
            {
                Epochs = 30, BatchSize = 16, LearningRate = 0.05f, ValidationFraction = 0.25f, EarlyStoppingPatience = 1,
                RestoreBestWeights = false, CheckpointDirectory = directory, Seed = 2,
            };
            var first = Trainer.Train(Network.Sequential(new CpuBackend(1), new TensorShape(1, 8, 8), 1, new Flatten(), new Dense(32), new Relu(), new Dense(4)), data, Options());
            Assert.True(first.StoppedEarly);
            var again = Network.Sequential(new CpuBackend(1), new TensorShape(1, 8, 8), 1, new Flatten(), new Dense(32), new Relu(), new Dense(4));
            var second = Trainer.Train(again, data, Options());
            Assert.True(second.StoppedEarly);
            Assert.Equal(first.History.Count, second.History.Count);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}

public sealed class CheckpointMismatchTests
{
    [Fact]
    public void ACheckpointOfAnotherArchitectureIsRefusedWithoutTouchingTheNetwork()
    {
        var data = TrainingData.Blobs(40, 15);
        string directory = Path.Combine(Path.GetTempPath(), "mlcnn-mismatch-" + Guid.NewGuid().ToString("N"));
        try
        {
            var options = new TrainerOptions { Epochs = 1, BatchSize = 8, CheckpointDirectory = directory };
            Trainer.Train(Network.Sequential(new CpuBackend(1), new TensorShape(1, 8, 8), 1, new Flatten(), new Dense(16), new Relu(), new Dense(4)), data, options);
            // Same number of tensors, but the hidden layer is wider: the weights cannot fit.
            var wider = Network.Sequential(new CpuBackend(1), new TensorShape(1, 8, 8), 1, new Flatten(), new Dense(24), new Relu(), new Dense(4));
            var before = wider.StateTensors.Select(t => t.ToArray()).ToList();
            var error = Assert.Throws<InvalidDataException>(() => Trainer.Train(wider, data, options));
            Assert.Contains("values where", error.Message);
            Assert.Equal(before, wider.StateTensors.Select(t => t.ToArray()).ToList());
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
