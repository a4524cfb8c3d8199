using Microsoft.ML;
using Ml.Cnn.Layers;
using Ml.Cnn.MLNet;
using Ml.Cnn.Training;
using Xunit;

namespace Ml.Cnn.Tests.MLNet;

/// <summary>Fine-tuning through the ML.NET trainer: a trained network, a new head, a frozen backbone.</summary>
public sealed class TransferLearningTests
{
    [Fact]
    public void FineTunesAStartingNetworkWithAFrozenBackbone()
    {
        var ml = new MLContext(seed: 1);
        IDataView Keyed(IEnumerable<FashionRow> rows)
        {
            var view = ml.Data.LoadFromEnumerable(rows);
            return ml.Transforms.Conversion.MapValueToKey("Label").Fit(view).Transform(view);
        }
        var pretrained = ml.MulticlassClassification.Trainers.ConvolutionalNetwork(new CnnTrainerOptions
        {
            Architecture = "lenet5", Epochs = 2, Optimizer = OptimizerKind.Adam, LearningRate = 2e-3f, Threads = 1,
        }).Fit(Keyed(FashionData.Rows(train: true, 600)));
        var start = pretrained.Model.Network;
        var startWeights = start.StateTensors.Select(t => t.ToArray()).ToList();
        var convolutions = start.Nodes.Where(n => n.Layer is Conv2d).Select(n => n.Name).ToList();
        Assert.Equal(2, convolutions.Count);

        // A new three-class task: trousers, sneakers and bags.
        var task = Keyed(FashionData.Rows(train: true, 2000).Where(r => r.Label is "Trouser" or "Sneaker" or "Bag"));
        var tuned = ml.MulticlassClassification.Trainers.ConvolutionalNetwork(new CnnTrainerOptions
        {
            StartingNetwork = start, FrozenLayers = convolutions, Epochs = 2, Optimizer = OptimizerKind.Adam, LearningRate = 2e-3f, Threads = 1,
        }).Fit(task);

        var network = tuned.Model.Network;
        Assert.Equal(3, network.OutputShape.Length);
        foreach (var name in convolutions)
            Assert.Equal(((Layer)start[name].Layer).Parameters.Select(p => p.Value.ToArray()),
                ((Layer)network[name].Layer).Parameters.Select(p => p.Value.ToArray()));
        Assert.Equal(startWeights, start.StateTensors.Select(t => t.ToArray()).ToList());
        var accuracy = ml.MulticlassClassification.Evaluate(tuned.Transform(task)).MicroAccuracy;
        Assert.True(accuracy > 0.8, $"training accuracy {accuracy} on three classes (a fixed guess gets about 0.33)");
    }

    [Fact]
    public void AStartingNetworkForOtherImagesAndUnknownFrozenLayersAreNamed()
    {
        var ml = new MLContext(seed: 1);
        var view = ml.Data.LoadFromEnumerable(FashionData.Rows(train: true, 100));
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(view).Transform(view);
        var start = Ml.Cnn.Networks.Network.Create(Ml.Cnn.Zoo.ModelZoo.Get("lenet5", 10), new Backends.Cpu.CpuBackend(1),
            new Tensors.TensorShape(1, 32, 32), 1);
        var error = Assert.Throws<ArgumentException>(() => ml.MulticlassClassification.Trainers.ConvolutionalNetwork(
            new CnnTrainerOptions { StartingNetwork = start, Epochs = 1 }).Fit(data));
        Assert.Contains("[1, 32, 32]", error.Message);
        Assert.Contains("ResizeImages", error.Message);

        var matching = Ml.Cnn.Networks.Network.Create(Ml.Cnn.Zoo.ModelZoo.Get("lenet5", 10), new Backends.Cpu.CpuBackend(1),
            new Tensors.TensorShape(1, 28, 28), 1);
        var unknown = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.ConvolutionalNetwork(
            new CnnTrainerOptions { StartingNetwork = matching, FrozenLayers = ["backbone"], Epochs = 1 }).Fit(data));
        Assert.Contains("'backbone'", unknown.Message);
    }
}

public sealed class ValidationSetTests
{
    [Fact]
    public void AValidationSetDrivesEarlyStoppingAndBestWeights()
    {
        var ml = new MLContext(seed: 1);
        var keys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(FashionData.View(ml, train: true, 400));
        var train = keys.Transform(FashionData.View(ml, train: true, 400));
        var validation = keys.Transform(FashionData.View(ml, train: false, 200));
        var cnn = ml.MulticlassClassification.Trainers.ConvolutionalNetwork(new CnnTrainerOptions
        {
            Architecture = "lenet5", Epochs = 3, Optimizer = OptimizerKind.Adam, LearningRate = 2e-3f, ValidationSet = validation,
        }).Fit(train);
        var history = cnn.Model.Training!.History;
        Assert.All(history, h => Assert.True(float.IsFinite(h.ValidationLoss)));
        // The reported validation figures are those of the given set: evaluating it again gives the best epoch's loss.
        var best = history.Single(h => h.Epoch == cnn.Model.Training.BestEpoch);
        Assert.Equal(best.ValidationLoss, ml.MulticlassClassification.Evaluate(cnn.Transform(validation)).LogLoss, 3);

        var both = new CnnTrainerOptions { Architecture = "lenet5", Epochs = 1, ValidationSet = validation, ValidationFraction = 0.2f };
        Assert.Equal("ValidationFraction", Assert.Throws<ArgumentOutOfRangeException>(
            () => ml.MulticlassClassification.Trainers.ConvolutionalNetwork(both).Fit(train)).ParamName);
    }
}
