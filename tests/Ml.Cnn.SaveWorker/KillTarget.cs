using Microsoft.ML;
using Microsoft.ML.Data;
using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Core;
using Ml.Cnn.Data;
using Ml.Cnn.Layers;
using Ml.Cnn.MLNet;
using Ml.Cnn.Networks;
using Ml.Cnn.Tensors;
using Ml.Cnn.Training;

namespace Ml.Cnn.SaveWorker;

/// <summary>What the worker saves, defined once so the test can load it back with the same network and data.</summary>
public static class KillTarget
{
    private const int Side = 28, Items = 64, Classes = 4;

    public static ImageDataset Data()
    {
        var rng = new Rng(5);
        var features = new float[Items * Side * Side];
        for (int i = 0; i < features.Length; i++) features[i] = (float)rng.NextDouble();
        var labels = Enumerable.Range(0, Items).Select(i => (float)(i % Classes)).ToArray();
        return new ImageDataset(new TensorShape(1, Side, Side), features, labels, classCount: Classes);
    }

    /// <summary>A network of about a megabyte of weights, so a save takes long enough to be killed in the middle.</summary>
    public static Network Network() =>
        Ml.Cnn.Networks.Network.Sequential(new CpuBackend(1), new TensorShape(1, Side, Side), 1,
            new Flatten(), new Dense(256), new Relu(), new Dense(Classes));

    public static TrainerOptions CheckpointOptions(string directory, int epochs) => new()
    {
        Epochs = epochs, BatchSize = 32, Optimizer = OptimizerKind.Adam, LearningRate = 1e-4f, CheckpointDirectory = directory,
        DivergenceFactor = 0,
    };

    private sealed class Row
    {
        [VectorType(1, Side, Side)] public float[] Features { get; set; } = [];
        public string Label { get; set; } = "";
    }

    public static (ITransformer Model, DataViewSchema Schema) ModelZip(MLContext ml)
    {
        var data = Data();
        var view = ml.Data.LoadFromEnumerable(Enumerable.Range(0, data.Count)
            .Select(i => new Row { Features = data.GetItem(i), Label = data.Targets[i].ToString() }));
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.ConvolutionalNetwork(new CnnTrainerOptions { Architecture = "mlp", Epochs = 1 }))
            .Fit(view);
        return (model, view.Schema);
    }
}
