using Microsoft.ML;
using Microsoft.ML.Data;
using Ml.Cnn.Backends;
using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.MLNet;
using Ml.Cnn.Onnx;
using Ml.Cnn.Tests.Support;
using Ml.Cnn.Training;
using Xunit;
using static Ml.Cnn.Tests.Support.Numerics;

namespace Ml.Cnn.Tests.Onnx;

/// <summary>
/// torchvision's classification families as PyTorch 1.13 exports them (opset 13, eval mode, 3×64×64 — VGG and AlexNet
/// 3×224×224, where their adaptive pools keep the maps' size, Inception v3 3×96×96 —, random weights;
/// eng/make_torchvision_fixtures.py): imported, they give PyTorch's outputs on both backends, and exported again they
/// give ONNX Runtime's.
/// </summary>
public sealed class TorchvisionImportTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "mlcnn-torchvision-" + Guid.NewGuid().ToString("N"));

    public TorchvisionImportTests() => Directory.CreateDirectory(_folder);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "torchvision", name);

    private static float[] ReadFloats(string name) => Support.Numerics.ReadFloats(Fixture(name));

    public static TheoryData<string, string> Families() => new()
    {
        { "mobilenet_v2", "cpu2" }, { "mobilenet_v2", "reference" },
        { "mobilenet_v3_small", "cpu2" }, { "mobilenet_v3_small", "reference" },
        { "efficientnet_b0", "cpu2" }, { "efficientnet_b0", "reference" },
        { "mnasnet", "cpu2" }, { "squeezenet1_1", "cpu2" }, { "densenet", "cpu2" }, { "densenet", "reference" },
        { "shufflenet_v2_x0_5", "cpu2" }, { "shufflenet_v2_x0_5", "reference" },
        { "resnet18", "cpu2" }, { "resnet18", "reference" }, { "googlenet", "cpu2" }, { "googlenet", "reference" },
        { "regnet_y", "cpu2" }, { "regnet_y", "reference" },
        { "vgg11_bn", "cpu2" }, { "vgg11_bn", "reference" }, { "alexnet", "cpu2" }, { "alexnet", "reference" },
        { "inception_v3", "cpu2" }, { "inception_v3", "reference" }, { "convnext", "cpu2" }, { "convnext", "reference" },
        { "resnext", "cpu2" }, { "resnext", "reference" }, { "efficientnet_v2", "cpu2" }, { "efficientnet_v2", "reference" },
        { "vit", "cpu2" }, { "vit", "reference" },
    };

    [Theory, MemberData(nameof(Families))]
    public void ImportedFamiliesGivePyTorchsOutputs(string family, string backendName)
    {
        IBackend backend = TestBackends.Create(backendName);
        var network = OnnxImporter.Import(Fixture(family + ".onnx"), backend);
        var x = TensorOf(backend, ReadFloats(family + ".x.f32"), [2, .. network.InputShape.Dims]); // 3×64×64, VGG and AlexNet 3×224×224
        AssertClose(ReadFloats(family + ".y.f32"), network.Forward(x, training: false).ToArray(), $"{family} output", rel: 1e-4, abs: 1e-4);
        if (backendName == "cpu2") OnnxExportTests.CheckAgainstOnnxRuntime(network, _folder);
    }

    [Fact]
    public void AnImportedMobileNetFineTunesInAnMLNetPipelineWithItsBackboneFrozen()
    {
        var start = OnnxImporter.Import(Fixture("mobilenet_v3_small.onnx"), new CpuBackend(2));
        var before = start.NamedParameters.Where(p => p.Key.StartsWith("features.")).ToDictionary(p => p.Key, p => p.Value.Value.ToArray());
        Assert.NotEmpty(before);
        // Two classes of noisy 3×64×64 images: reddish or bluish (a random backbone's pooled features keep colour).
        var rng = new Ml.Cnn.Core.Rng(4);
        var rows = Enumerable.Range(0, 160).Select(i =>
        {
            var pixels = new float[3 * 64 * 64];
            int tinted = i % 2 == 0 ? 0 : 2;
            for (int k = 0; k < pixels.Length; k++) pixels[k] = (float)rng.NextGaussian() * 0.5f + (k / (64 * 64) == tinted ? 1f : 0f);
            return new ImageRow { Label = i % 2 == 0 ? "red" : "blue", Features = pixels };
        }).ToList();
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(rows);
        var options = new CnnTrainerOptions
        {
            StartingNetwork = start, FrozenLayers = ["features"], ImageChannels = 3, ImageHeight = 64, ImageWidth = 64,
            Epochs = 8, BatchSize = 16, Optimizer = OptimizerKind.Adam, LearningRate = 5e-3f, Threads = 2,
        };
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.ConvolutionalNetwork(options)).Fit(data);
        var cnn = model.OfType<CnnMulticlassTransformer>().Single();
        var history = cnn.Model.Training!.History;
        Assert.True(history[^1].TrainingLoss < 0.8 * history[0].TrainingLoss, $"loss {history[0].TrainingLoss} → {history[^1].TrainingLoss}");
        Assert.Equal(2, cnn.Model.Network.OutputShape[0]);
        var after = cnn.Model.Network.NamedParameters.Where(p => p.Key.StartsWith("features.")).ToDictionary(p => p.Key, p => p.Value.Value.ToArray());
        Assert.Equal(before.Keys.Order(), after.Keys.Order());
        foreach (var (name, values) in before) Assert.True(values.SequenceEqual(after[name]), $"{name} changed while frozen");
        Assert.InRange(ml.MulticlassClassification.Evaluate(model.Transform(data)).MicroAccuracy, 0.7, 1.0); // chance is 0.5; a random backbone limits the rest
    }

    [Fact]
    public void AnImportedVisionTransformerFineTunesWithItsEncoderFrozen()
    {
        var network = OnnxImporter.Import(Fixture("vit.onnx"), new CpuBackend(2), newClassCount: 2, seed: 3);
        var frozen = network.NamedParameters.Where(p => !p.Key.StartsWith("heads.")).ToDictionary(p => p.Key, p => p.Value);
        Assert.Contains(frozen.Keys, k => k.Contains("self_attention"));
        foreach (var p in frozen.Values) p.Trainable = false;
        var before = frozen.ToDictionary(p => p.Key, p => p.Value.Value.ToArray());
        // Two classes of noisy 3×64×64 images, reddish or bluish.
        var rng = new Ml.Cnn.Core.Rng(5);
        int items = 32, length = 3 * 64 * 64;
        var features = new float[items * length];
        var labels = new float[items];
        for (int i = 0; i < items; i++)
        {
            labels[i] = i % 2;
            for (int k = 0; k < length; k++) features[i * length + k] = (float)rng.NextGaussian() * 0.5f + (k / (64 * 64) == 2 * (i % 2) ? 1f : 0f);
        }
        var data = new Ml.Cnn.Data.ImageDataset(new Ml.Cnn.Tensors.TensorShape(3, 64, 64), features, labels, classCount: 2);
        var run = Trainer.Train(network, data, new TrainerOptions
        {
            Epochs = 6, BatchSize = 8, Optimizer = OptimizerKind.Adam, LearningRate = 1e-2f, ValidationFraction = 0, Seed = 1,
        });
        Assert.True(run.History[^1].TrainingLoss < 0.8 * run.History[0].TrainingLoss,
            $"loss {run.History[0].TrainingLoss} → {run.History[^1].TrainingLoss}");
        foreach (var (name, values) in before) Assert.True(values.SequenceEqual(frozen[name].Value.ToArray()), $"{name} changed while frozen");
    }

    private sealed class ImageRow
    {
        public string Label { get; set; } = "";

        [VectorType(3 * 64 * 64)]
        public float[] Features { get; set; } = [];
    }

    [Fact]
    public async Task TheTransferLearningSampleFineTunesOnAnImageFolderAndSavesAZipThatScoresTheSame()
    {
        string output = await Support.SampleProcess.Run("Ml.Cnn.Samples.TransferLearning.dll", _folder, "3", "60");
        double Accuracy(string prefix)
        {
            var line = output.Split('\n').Single(l => l.StartsWith(prefix, StringComparison.Ordinal));
            return double.Parse(line[prefix.Length..line.IndexOf('%')].Trim(), System.Globalization.CultureInfo.InvariantCulture);
        }
        Assert.InRange(Accuracy("test accuracy"), 60, 100); // three classes: chance is 33 %
        Assert.Equal(Accuracy("test accuracy"), Accuracy("model.zip reloaded: test accuracy"));
        Assert.Equal(3, Directory.GetDirectories(Path.Combine(_folder, "train")).Length);
    }
}
