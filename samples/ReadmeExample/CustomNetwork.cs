using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Data;
using Ml.Cnn.Layers;
using Ml.Cnn.Networks;
using Ml.Cnn.Tensors;
using Ml.Cnn.Training;

/// <summary>
/// README.md's "A network of your own": the usings and the lines between the markers, verbatim but for the README
/// showing <c>dataFolder</c> as the embedded subset's path and <c>epochs</c> as 5.
/// </summary>
public static class CustomNetwork
{
    public static TrainingResult Train(string dataFolder, int epochs)
    {
        // README begin
        var b = new NetworkBuilder();
        var x = b.Chain(b.Input, new Conv2d(16, 3, padding: 1), new BatchNorm(), new Relu());
        var y = b.Chain(x, new Conv2d(16, 3, padding: 1), new BatchNorm());
        b.Chain(b.Merge(new Add(), x, y), new Relu(), new GlobalAvgPool(), new Dense(10));
        var network = Network.Create(b, new CpuBackend(), new TensorShape(1, 28, 28), seed: 1);
        Console.WriteLine(network.Summary());
        var result = Trainer.Train(network, Idx.LoadFromFolder(dataFolder, "train"),
            new TrainerOptions { Epochs = epochs, Optimizer = OptimizerKind.Adam, LearningRate = 1e-3f, ValidationFraction = 0.1f });
        // README end
        return result;
    }
}
