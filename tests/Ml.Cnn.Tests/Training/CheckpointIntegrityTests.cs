using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Core;
using Ml.Cnn.Fuzzing;
using Ml.Cnn.Layers;
using Ml.Cnn.Networks;
using Ml.Cnn.Optimizers;
using Ml.Cnn.Tensors;
using Ml.Cnn.Training;
using Ml.Cnn.Tests.Support;
using Xunit;

namespace Ml.Cnn.Tests.Training;

/// <summary>A checkpoint resumes only the run that wrote it, and only when every byte is as written.</summary>
public sealed class CheckpointIntegrityTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "mlcnn-integrity-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    private static Network Mlp() =>
        Network.Sequential(new CpuBackend(1), new TensorShape(1, 8, 8), 1, new Flatten(), new Dense(16), new Relu(), new Dense(4));

    private TrainerOptions Options(int epochs = 1, float learningRate = 0.01f) => new()
    {
        Epochs = epochs, BatchSize = 8, LearningRate = learningRate, ValidationFraction = 0.25f, CheckpointDirectory = _directory,
    };

    private string CheckpointPath => Path.Combine(_directory, "checkpoint.mlcnn");

    [Fact]
    public void OtherDataOrOtherOptionsRefuseTheCheckpoint()
    {
        Trainer.Train(Mlp(), TrainingData.Blobs(40, 1), Options());
        var otherData = Assert.Throws<InvalidOperationException>(() => Trainer.Train(Mlp(), TrainingData.Blobs(40, 2), Options(epochs: 2)));
        Assert.Contains("other data", otherData.Message);
        Assert.Contains(CheckpointPath, otherData.Message);
        var otherOptions = Assert.Throws<InvalidOperationException>(() =>
            Trainer.Train(Mlp(), TrainingData.Blobs(40, 1), Options(epochs: 2, learningRate: 0.02f)));
        Assert.Contains("other options", otherOptions.Message);
        // More epochs of the same run resume it.
        Assert.Equal(2, Trainer.Train(Mlp(), TrainingData.Blobs(40, 1), Options(epochs: 2)).History.Count);
    }

    [Fact]
    public void AFlippedWeightByteIsRefusedNamingTheSection()
    {
        Trainer.Train(Mlp(), TrainingData.Blobs(40, 1), Options());
        var bytes = File.ReadAllBytes(CheckpointPath);
        bytes[bytes.Length / 2] ^= 0x10;
        File.WriteAllBytes(CheckpointPath, bytes);
        var network = Mlp();
        var before = network.StateTensors.Select(t => t.ToArray()).ToList();
        var error = Assert.Throws<InvalidDataException>(() => Trainer.Train(network, TrainingData.Blobs(40, 1), Options(epochs: 2)));
        Assert.Contains("weights and optimizer state", error.Message);
        Assert.Contains("checksum", error.Message);
        Assert.Equal(before, network.StateTensors.Select(t => t.ToArray()).ToList());
    }

    [Fact]
    public void SeededMutantsEndInATypedErrorOrLoadUnchanged()
    {
        // Each load either fails with InvalidDataException or, for a mutant equal to the original, loads the
        // original's weights. Nothing else (no framework exception, no hang, no huge allocation).
        var data = TrainingData.Blobs(40, 1);
        Trainer.Train(Mlp(), data, Options(epochs: 2));
        var original = File.ReadAllBytes(CheckpointPath);
        var reference = LoadWeights(original, data);
        Assert.NotNull(reference);
        var mutants = Mutants.Of(original, 77, 60, 120, bigEndian: false).ToList();

        int refused = 0;
        foreach (var mutant in mutants)
        {
            var weights = LoadWeights(mutant, data);
            if (weights is null) { refused++; continue; }
            Assert.True(mutant.AsSpan().SequenceEqual(original), "a changed checkpoint loaded");
            Assert.Equal(reference, weights);
        }
        Assert.True(refused > mutants.Count * 9 / 10, $"{refused} of {mutants.Count} refused");
    }

    /// <summary>The loaded weights, or null when the load was refused with InvalidDataException.</summary>
    private List<float[]>? LoadWeights(byte[] file, Data.ImageDataset data)
    {
        Directory.CreateDirectory(_directory);
        string path = Path.Combine(_directory, "mutant.mlcnn");
        File.WriteAllBytes(path, file);
        var network = Mlp();
        var optimizer = new Sgd(network.Parameters, 0.01f, 0.9f, false, 0);
        var state = new RunState(new Rng(1));
        try
        {
            Checkpoint.Load(path, network, optimizer, new LearningRateSchedule(), state, RunFingerprint.Of(data, Options(epochs: 2)));
            return network.StateTensors.Select(t => t.ToArray()).ToList();
        }
        catch (InvalidDataException e)
        {
            Assert.Contains(path, e.Message);
            return null;
        }
    }

    [Fact]
    public void AFileWhereTheFolderShouldBeFailsBeforeTraining()
    {
        File.WriteAllText(_directory, "not a folder");
        try
        {
            int batches = 0;
            var options = Options();
            options.Progress = new SynchronousProgress(_ => batches++);
            var error = Assert.Throws<ArgumentException>(() => Trainer.Train(Mlp(), TrainingData.Blobs(40, 1), options));
            Assert.Contains("CheckpointDirectory", error.Message);
            Assert.Equal(0, batches);
        }
        finally
        {
            File.Delete(_directory);
        }
    }
}

/// <summary>Runs that leave the rails stop with TrainingDivergedException instead of returning a garbage model.</summary>
public sealed class DivergenceTests
{
    private static Network Cnn() => Network.Sequential(new CpuBackend(1), new TensorShape(1, 8, 8), 3,
        new Conv2d(8, 3, padding: 1), new Relu(), new Flatten(), new Dense(4));

    [Fact]
    public void AnExplodingButFiniteLossStopsTheRun()
    {
        var error = Assert.Throws<TrainingDivergedException>(() =>
            Trainer.Train(Cnn(), TrainingData.Blobs(128, 1), new TrainerOptions { Epochs = 3, BatchSize = 16, LearningRate = 50f }));
        Assert.Contains("level so far", error.Message);
        Assert.True(float.IsFinite(error.Loss) || float.IsNaN(error.Loss));
    }

    [Fact]
    public void TheLastStepIsCheckedToo()
    {
        // One batch, one step: the only loss is computed before the update that ruins the weights.
        var error = Assert.Throws<TrainingDivergedException>(() =>
            Trainer.Train(Cnn(), TrainingData.Blobs(16, 2), new TrainerOptions { Epochs = 1, BatchSize = 16, LearningRate = 1e20f, Momentum = 0 }));
        Assert.Contains("no longer finite", error.Message);
    }

    [Fact]
    public void AClassifierThatNeverBeatsChanceIsRefused()
    {
        // Blank images: nothing to learn, so every epoch answers one class and scores its share, 25%.
        var blank = new Data.ImageDataset(new TensorShape(1, 8, 8), new float[64 * 64], Enumerable.Range(0, 64).Select(i => (float)(i % 4)).ToArray(),
            classCount: 4);
        var options = new TrainerOptions { Epochs = 3, BatchSize = 16, LearningRate = 0.05f };
        var error = Assert.Throws<TrainingDivergedException>(() => Trainer.Train(Cnn(), blank, options));
        Assert.Contains("stayed at chance", error.Message);
        options.DivergenceFactor = 0;
        Assert.Equal(3, Trainer.Train(Cnn(), blank, options).History.Count);
    }

    [Fact]
    public void ASoundRunIsNotFlagged()
    {
        var result = Trainer.Train(Cnn(), TrainingData.Blobs(128, 3), new TrainerOptions { Epochs = 4, BatchSize = 16, LearningRate = 0.05f });
        Assert.Equal(4, result.History.Count);
    }
}

/// <summary>Every option is checked before training, naming the option and its value.</summary>
public sealed class TrainerOptionValidationTests
{
    public static TheoryData<string, Action<TrainerOptions>> BadOptions() => new()
    {
        { "Optimizer", o => o.Optimizer = (OptimizerKind)99 },
        { "Loss", o => o.Loss = (LossKind)99 },
        { "Momentum", o => o.Momentum = 1.5f },
        { "WeightDecay", o => o.WeightDecay = float.NaN },
        { "GradientClipNorm", o => o.GradientClipNorm = float.PositiveInfinity },
        { "DivergenceFactor", o => o.DivergenceFactor = 0.5f },
        { "Schedule.Factor", o => o.Schedule = new LearningRateSchedule { Kind = ScheduleKind.StepDecay, Factor = -1 } },
        { "Schedule.Factor", o => o.Schedule = new LearningRateSchedule { Kind = ScheduleKind.StepDecay, Factor = float.NaN } },
        { "Schedule.StepEpochs", o => o.Schedule = new LearningRateSchedule { StepEpochs = 0 } },
        { "Schedule.WarmupEpochs", o => o.Schedule = new LearningRateSchedule { WarmupEpochs = -5 } },
        { "Schedule.MinRate", o => o.Schedule = new LearningRateSchedule { Kind = ScheduleKind.Cosine, MinRate = float.NaN } },
        { "Schedule.Kind", o => o.Schedule = new LearningRateSchedule { Kind = (ScheduleKind)7 } },
        { "Augmentation.CropPadding", o => o.Augmentation = new Data.Augmentation { CropPadding = -3 } },
        { "Augmentation.CropPadding", o => o.Augmentation = new Data.Augmentation { CropPadding = 100 } },
        { "Augmentation.MaxRotationDegrees", o => o.Augmentation = new Data.Augmentation { MaxRotationDegrees = float.NaN } },
        { "Augmentation.Brightness", o => o.Augmentation = new Data.Augmentation { Brightness = float.PositiveInfinity } },
        { "Augmentation.Contrast", o => o.Augmentation = new Data.Augmentation { Contrast = 2 } },
        { "Augmentation.Brightness", o => o.Augmentation = new Data.Augmentation { Brightness = 1e30f } },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void IsRefusedNamingTheOption(string option, Action<TrainerOptions> spoil)
    {
        var options = new TrainerOptions { Epochs = 1, BatchSize = 8 };
        spoil(options);
        var network = Network.Sequential(new CpuBackend(1), new TensorShape(1, 8, 8), 1, new Flatten(), new Dense(4));
        var before = network.StateTensors.Select(t => t.ToArray()).ToList();
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => Trainer.Train(network, TrainingData.Blobs(16, 1), options));
        Assert.Equal(option, error.ParamName);
        Assert.StartsWith(option + " ", error.Message);
        Assert.Equal(before, network.StateTensors.Select(t => t.ToArray()).ToList());
    }
}
