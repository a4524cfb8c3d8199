using Microsoft.ML;
using Ml.Cnn.MLNet;
using Xunit;

namespace Ml.Cnn.Tests.MLNet;

/// <summary>Our trainers take the MLContext's seed and write to its log, as ML.NET's own trainers do.</summary>
public sealed class MLContextAccessTests
{
    [Fact]
    public void TheReflectedAccessorsStillExistInThisMlNet() => Assert.True(MLContextAccess.Resolved,
        "ML.NET renamed IInternalCatalog.Environment or ChannelMessage's constructor: update MLContextAccess.");

    private static float[] FirstWeights(int contextSeed, ulong? optionsSeed = null, List<string>? log = null, MLContext? context = null)
    {
        var ml = context ?? new MLContext(seed: contextSeed);
        if (log is not null) ml.Log += (_, e) => { if (e.Source == "Ml.Cnn") lock (log) log.Add(e.Message); };
        var view = ml.Data.LoadFromEnumerable(FashionData.Rows(train: true, 64));
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(view).Transform(view);
        var cnn = ml.MulticlassClassification.Trainers.ConvolutionalNetwork(new CnnTrainerOptions
        {
            Architecture = "linear", Epochs = 2, BatchSize = 16, Seed = optionsSeed, Threads = 1,
        }).Fit(data);
        return cnn.Model.Network.Parameters.First().Value.ToArray();
    }

    [Fact]
    public void TheContextSeedDecidesTheModelWhenTheOptionsGiveNone()
    {
        Assert.Equal(FirstWeights(1), FirstWeights(1));
        Assert.NotEqual(FirstWeights(1), FirstWeights(2));
        Assert.Equal(FirstWeights(1, optionsSeed: 7), FirstWeights(2, optionsSeed: 7));
    }

    [Fact]
    public void EpochLinesGoToTheContextsLog()
    {
        var log = new List<string>();
        FirstWeights(1, log: log);
        Assert.Contains(log, line => line.Contains("Kind=Info] Epoch 1/2: loss "));
        Assert.Contains(log, line => line.Contains("Kind=Info] Epoch 2/2: loss ") && line.Contains("images/s"));
    }

    [Fact]
    public void GpuSettingsAreReadFromTheContext()
    {
        var ml = new MLContext { GpuDeviceId = 3, FallbackToCpu = true };
        Assert.Equal((3, true), MLContextAccess.GpuSettings(MLContextAccess.EnvironmentOf(ml.MulticlassClassification.Trainers)));
        Assert.Equal((null, false), MLContextAccess.GpuSettings(MLContextAccess.EnvironmentOf(new MLContext().MulticlassClassification.Trainers)));
    }

    [Fact]
    public void ADeviceThatIsNotThereFailsWithWhatWasLookedForOrFallsBackToTheCpuWithALogLine()
    {
        // Device 99 exists on no machine: without a driver the message names it, with one it lists the devices found.
        var strict = new MLContext(seed: 1) { GpuDeviceId = 99, FallbackToCpu = false };
        var error = Assert.Throws<Ml.Cnn.Backends.GpuUnavailableException>(() => FirstWeights(1, context: strict));
        Assert.Contains("CUDA device 99 was asked for", error.Message);
        Assert.True(error.Message.Contains("libcuda.so.1") || error.Message.Contains("device(s)"), error.Message);

        var log = new List<string>();
        var lenient = new MLContext(seed: 1) { GpuDeviceId = 99, FallbackToCpu = true };
        Assert.Equal(FirstWeights(1), FirstWeights(1, log: log, context: lenient));
        Assert.Single(log, line => line.Contains("Training on the CPU (1 threads") && line.Contains("CUDA device 99"));
    }
}
