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

    private static float[] FirstWeights(int contextSeed, ulong? optionsSeed = null, List<string>? log = null)
    {
        var ml = new MLContext(seed: contextSeed);
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
}
