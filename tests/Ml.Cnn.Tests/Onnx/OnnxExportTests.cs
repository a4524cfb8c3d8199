using Microsoft.ML;
using Microsoft.ML.Data;
using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Core;
using Ml.Cnn.Layers;
using Ml.Cnn.MLNet;
using Ml.Cnn.Networks;
using Ml.Cnn.Onnx;
using Ml.Cnn.Tensors;
using Ml.Cnn.Zoo;
using Xunit;
using static Ml.Cnn.Tests.Support.Numerics;

namespace Ml.Cnn.Tests.Onnx;

/// <summary>Exported models run in ONNX Runtime (through ML.NET's ApplyOnnxModel) and give our scores to 1e-4.</summary>
public sealed class OnnxExportTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "mlcnn-onnx-" + Guid.NewGuid().ToString("N"));

    public OnnxExportTests() => Directory.CreateDirectory(_folder);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    public static TheoryData<string, int, int> Architectures() => new()
    {
        { "linear", 1, 28 }, { "mlp", 1, 28 }, { "lenet5", 1, 28 }, { "reference-cnn", 1, 28 },
        { "resnet20", 3, 16 }, { "vgg11-bn", 3, 32 }, { "googlenet", 3, 32 }, { "alexnet", 3, 64 },
        { "mobilenet-v2", 3, 32 }, { "densenet121", 3, 32 },
    };

    [Theory, MemberData(nameof(Architectures))]
    public void ZooArchitecturesMatchOnnxRuntime(string architecture, int channels, int size) =>
        CheckAgainstOnnxRuntime(Network.Create(ModelZoo.Get(architecture, 7), new CpuBackend(2), new TensorShape(channels, size, size), seed: 3));

    /// <summary>
    /// The layers mobile networks bring: depthwise and shuffled channels, ReLU6, hard-swish, SiLU, a squeeze-and-
    /// excitation gate from dense layers ([C], broadcast over the plane), a channel slice, and a product of two vectors.
    /// </summary>
    private static Network MobileBlocks()
    {
        var b = new NetworkBuilder();
        var x = b.Chain(b.Input, new Conv2d(8, 3, padding: 1), new Clip() { Name = "relu6" }, new Conv2d(8, 3, padding: 1, groups: 8),
            new HardSwish { Name = "hswish" }, new ChannelShuffle(2));
        var gate = b.Chain(x, new GlobalAvgPool(), new Dense(8), new Silu { Name = "act" }, new Dense(8), new HardSigmoid());
        var gated = b.Merge(new Multiply(), x, gate);
        var half = b.Chain(gated, new ChannelSlice(2, 4), new GlobalAvgPool());
        var a = b.Add(new Dense(5), half);
        var c = b.Add(new Dense(5), half);
        b.Merge(new Multiply(), a, c);
        return Network.Create(b, new CpuBackend(2), new TensorShape(3, 7, 7), seed: 6);
    }

    [Fact]
    public void MobileBlocksMatchOnnxRuntime() => CheckAgainstOnnxRuntime(MobileBlocks());

    [Fact]
    public void MobileBlocksImportAgainWithTheirNamesAndOutputs() => ImportsAgain(MobileBlocks(), "relu6", "hswish", "act");

    /// <summary>A 3×7×7 network exported and imported again gives the same outputs and keeps its parameters and names.</summary>
    private static Network ImportsAgain(Network original, params string[] names)
    {
        var imported = OnnxImporter.Import(OnnxExporter.ToBytes(original), new CpuBackend(2));
        var values = RandomNormal(new Rng(3), 2 * 3 * 7 * 7);
        var expected = original.Forward(TensorOf(original.Backend, values, 2, 3, 7, 7), false).ToArray();
        Assert.Equal(expected, imported.Forward(TensorOf(imported.Backend, values, 2, 3, 7, 7), false).ToArray());
        Assert.Equal(original.ParameterCount, imported.ParameterCount);
        foreach (var name in names) Assert.Contains(imported.Nodes, n => n.Name == name);
        return imported;
    }

    /// <summary>ConvNeXt's layers: layer normalization over an image's channels and over a vector's features, GELU.</summary>
    private static Network NormalizedBlocks()
    {
        var b = new NetworkBuilder();
        var x = b.Chain(b.Input, new Conv2d(6, 3, padding: 1), new LayerNorm(1e-6f) { Name = "norm" }, new Gelu { Name = "gelu" });
        b.Chain(x, new GlobalAvgPool(), new Dense(5), new LayerNorm { Name = "head_norm" }, new Gelu(), new Dense(3));
        var network = Network.Create(b, new CpuBackend(2), new TensorShape(3, 7, 7), seed: 6);
        var rng = new Rng(8);
        foreach (var p in network.Parameters) p.Value.CopyFrom(RandomNormal(rng, p.Value.Length, 0.7));
        return network;
    }

    [Fact]
    public void NormalizedBlocksMatchOnnxRuntime() => CheckAgainstOnnxRuntime(NormalizedBlocks());

    [Fact]
    public void NormalizedBlocksImportAgainWithTheirNamesAndOutputs()
    {
        var imported = ImportsAgain(NormalizedBlocks(), "norm", "gelu", "head_norm");
        Assert.Equal(2, imported.Nodes.Count(n => n.Layer is LayerNorm));
    }

    [Fact]
    public void UserWrittenDagMatchesOnnxRuntime()
    {
        var b = new NetworkBuilder();
        var stem = b.Chain(b.Input, new Conv2d(6, 3, padding: 1, groups: 2), new BatchNorm(), new LeakyRelu(0.1f));
        var left = b.Chain(stem, new AvgPool2d(3, 1, padding: 1, countIncludePad: false), new Elu());
        var right = b.Chain(stem, new Conv2d(6, 3, padding: 2, dilation: 2), new Tanh());
        var merged = b.Merge(new Add(), left, right, stem);
        var joined = b.Merge(new Concat(), merged, b.Chain(stem, new Sigmoid()));
        b.Chain(joined, new LocalResponseNorm(3, 0.01f, 0.75f, 2f), new MaxPool2d(3, 2, ceilMode: true), new Flatten(), new Dense(5), new Softmax());
        CheckAgainstOnnxRuntime(Network.Create(b, new CpuBackend(2), new TensorShape(2, 9, 9), seed: 4));
    }

    private void CheckAgainstOnnxRuntime(Network network) => CheckAgainstOnnxRuntime(network, _folder);

    /// <summary>Exports <paramref name="network"/> into <paramref name="folder"/> and checks ONNX Runtime's outputs against ours.</summary>
    internal static void CheckAgainstOnnxRuntime(Network network, string folder)
    {
        var rng = new Rng(9);
        // Non-trivial batch-norm statistics, so evaluation-mode normalization is exercised.
        foreach (var bn in network.Nodes.Select(n => n.Layer).OfType<BatchNorm>())
        {
            bn.RunningMean.CopyFrom(Enumerable.Range(0, bn.RunningMean.Length).Select(_ => (float)rng.NextGaussian() * 0.1f).ToArray());
            bn.RunningVariance.CopyFrom(Enumerable.Range(0, bn.RunningVariance.Length).Select(_ => 0.5f + (float)rng.NextDouble()).ToArray());
        }
        int size = network.InputShape.Length, count = 5;
        var inputs = Enumerable.Range(0, count * size).Select(_ => (float)rng.NextGaussian()).ToArray();
        var x = network.Backend.Allocate(network.InputShape.Prepend(count));
        x.CopyFrom(inputs);
        var ours = network.Forward(x, training: false).ToArray();

        string path = Path.Combine(folder, "model.onnx");
        OnnxExporter.Export(network, path);
        var ml = new MLContext(seed: 1);
        var schema = SchemaDefinition.Create(typeof(InputRow));
        schema[nameof(InputRow.Input)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, size);
        schema[nameof(InputRow.Input)].ColumnName = "input";
        var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, count).Select(i => new InputRow { Input = inputs[(i * size)..((i + 1) * size)] }), schema);
        var scored = ml.Transforms.ApplyOnnxModel(["output"], ["input"], path).Fit(data).Transform(data);
        var theirs = scored.GetColumn<float[]>("output").SelectMany(v => v).ToArray();
        Support.Numerics.AssertClose(ours, theirs, "ONNX Runtime output", rel: 1e-4, abs: 1e-4);
    }

    private sealed class InputRow
    {
        public float[] Input { get; set; } = [];
    }

    [Fact]
    public void UnsupportedLayersAreNamed()
    {
        var network = Network.Sequential(new CpuBackend(1), new TensorShape(4, 5, 5), 1, new LocalResponseNorm(4) { Name = "lrn-even" }, new Flatten(), new Dense(2));
        Assert.Contains("lrn-even", Assert.Throws<NotSupportedException>(() => OnnxExporter.ToBytes(network)).Message);
    }
}

/// <summary>A model trained through ML.NET, with input standardization, exported and scored by ONNX Runtime.</summary>
public sealed class OnnxModelExportTests
{
    [Fact]
    public void TrainedModelWithNormalizationScoresTheSameInOnnxRuntime()
    {
        var ml = new MLContext(seed: 1);
        var train = Ml.Cnn.Tests.MLNet.FashionData.View(ml, true, 300);
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.ConvolutionalNetwork(new Ml.Cnn.MLNet.CnnTrainerOptions
            {
                Architecture = "lenet5", Epochs = 1, NormalizeInputs = true, Optimizer = Ml.Cnn.Training.OptimizerKind.Adam, LearningRate = 1e-3f,
            })).Fit(train);
        var scores = model.Transform(train).GetColumn<float[]>("Score").Take(20).SelectMany(v => v).ToArray();

        string path = Path.Combine(Path.GetTempPath(), $"mlcnn-model-{Guid.NewGuid():N}.onnx");
        try
        {
            model.LastTransformer.Model.ExportToOnnx(path);
            var renamed = ml.Transforms.CopyColumns("input", "Features").Fit(train).Transform(train);
            var onnx = ml.Transforms.ApplyOnnxModel(["output"], ["input"], path).Fit(renamed).Transform(renamed);
            var theirs = onnx.GetColumn<float[]>("output").Take(20).SelectMany(v => v).ToArray();
            Support.Numerics.AssertClose(scores, theirs, "probabilities", rel: 1e-4, abs: 1e-5);
        }
        finally
        {
            File.Delete(path);
        }
    }
}

public sealed class NamedOnnxExportTests : IDisposable
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), "mlcnn-named-" + Guid.NewGuid().ToString("N") + ".onnx");

    public void Dispose() => File.Delete(_path);

    [Fact]
    public void AClassifierExportRunsUnderApplyOnnxModelWithTheColumnNames()
    {
        var ml = new MLContext(seed: 1);
        var view = ml.Data.LoadFromEnumerable(MLNet.FashionData.Rows(train: true, 200));
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(view).Transform(view);
        var cnn = ml.MulticlassClassification.Trainers.ConvolutionalNetwork(new CnnTrainerOptions { Architecture = "lenet5", Epochs = 1, NormalizeInputs = true })
            .Fit(data);
        cnn.ExportToOnnx(_path);

        var onnx = ml.Transforms.ApplyOnnxModel("Score", "Features", _path).Fit(data).Transform(data);
        var expected = cnn.Transform(data).GetColumn<float[]>("Score").ToList();
        var actual = onnx.GetColumn<float[]>("Score").ToList();
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
            for (int j = 0; j < expected[i].Length; j++) Assert.Equal(expected[i][j], actual[i][j], 1e-4f);

        var model = Ml.Cnn.Onnx.Proto.ModelProto.Parser.ParseFrom(File.ReadAllBytes(_path));
        var names = System.Text.Json.JsonSerializer.Deserialize<string[]>(model.MetadataProps.Single(p => p.Key == OnnxExporter.ClassNamesKey).Value)!;
        Assert.Equal(cnn.ClassNames, names);
        Assert.Contains("Ankle boot", names);
    }
}

public sealed class ReimportTests : IDisposable
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), "mlcnn-reimport-" + Guid.NewGuid().ToString("N") + ".onnx");

    public void Dispose() => File.Delete(_path);

    private CnnMulticlassTransformer Fit(bool normalize)
    {
        var ml = new MLContext(seed: 1);
        var view = ml.Data.LoadFromEnumerable(MLNet.FashionData.Rows(train: true, 100));
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(view).Transform(view);
        return ml.MulticlassClassification.Trainers.ConvolutionalNetwork(new CnnTrainerOptions { Architecture = "lenet5", Epochs = 1, NormalizeInputs = normalize })
            .Fit(data);
    }

    [Fact]
    public void OurClassifierExportImportsForFineTuningWithoutItsSoftmax()
    {
        Fit(normalize: false).ExportToOnnx(_path);
        var network = OnnxImporter.Import(_path, new CpuBackend(1), newClassCount: 3);
        Assert.IsType<Dense>(network.Nodes[^1].Layer);
        Assert.Equal(3, network.OutputShape.Length);
    }

    [Fact]
    public void ItsInputStandardizationIsRefusedWithTheWayOut()
    {
        Fit(normalize: true).ExportToOnnx(_path);
        var error = Assert.Throws<NotSupportedException>(() => OnnxImporter.Import(_path, new CpuBackend(1), newClassCount: 3));
        Assert.Contains("input standardization", error.Message);
        Assert.Contains("OnnxExporter.Export(model.Network, path)", error.Message);
    }
}
