using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Core;
using Ml.Cnn.Data;
using Ml.Cnn.Layers;
using Ml.Cnn.Networks;
using Ml.Cnn.Onnx;
using Ml.Cnn.Tensors;
using Ml.Cnn.Tests.MLNet;
using Ml.Cnn.Training;
using Ml.Cnn.Zoo;
using Xunit;
using static Ml.Cnn.Tests.Support.Numerics;

namespace Ml.Cnn.Tests.Onnx;

public sealed class OnnxImportTests
{
    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "onnx", name);

    private static float[] ReadFloats(string name) => Support.Numerics.ReadFloats(Fixture(name));

    [Theory]
    [InlineData("lenet5")]
    [InlineData("tinyresnet")]
    public void PyTorchExportsRunWithPyTorchsOutputs(string model)
    {
        var backend = new CpuBackend(2);
        var network = OnnxImporter.Import(Fixture(model + ".onnx"), backend);
        var x = TensorOf(backend, ReadFloats(model + ".x.f32"), 4, 1, 28, 28);
        AssertClose(ReadFloats(model + ".y.f32"), network.Forward(x, training: false).ToArray(), $"{model} output", rel: 1e-4, abs: 1e-4);
    }

    [Theory]
    [InlineData("lenet5", 1, 28)]
    [InlineData("resnet20", 3, 16)]
    [InlineData("googlenet", 3, 32)]
    [InlineData("alexnet", 3, 64)]
    public void ExportThenImportGivesIdenticalOutputs(string architecture, int channels, int size)
    {
        var backend = new CpuBackend(2);
        var original = Network.Create(ModelZoo.Get(architecture, 5), backend, new TensorShape(channels, size, size), seed: 2);
        var imported = OnnxImporter.Import(OnnxExporter.ToBytes(original), backend);
        var rng = new Rng(1);
        var x = TensorOf(backend, RandomNormal(rng, 3 * channels * size * size), 3, channels, size, size);
        var expected = original.Forward(x, false).ToArray();
        Assert.Equal(expected, imported.Forward(x, false).ToArray());
        Assert.Equal(original.ParameterCount, imported.ParameterCount);
    }

    [Fact]
    public void LayersAreNamedAfterPyTorchsModulePaths()
    {
        // The fixture's modules: stem = Sequential(conv, bn, relu), blocks l1 and l2 with convolutions c1 and c2.
        var network = OnnxImporter.Import(Fixture("tinyresnet.onnx"), new CpuBackend(1));
        var names = network.Nodes.Select(n => n.Name).ToList();
        Assert.Contains("stem.0", names);
        Assert.Contains("l1.c1", names);
        Assert.Contains("l2.c2", names);
        Assert.Contains("l1.c1.weight", network.NamedParameters.Select(p => p.Key));
        Assert.Same(network["l1.c1"].Layer.Parameters[0], network.GetParameter("l1.c1.weight"));
        Assert.Contains("l1.c1.weight", Assert.Throws<KeyNotFoundException>(() => network.GetParameter("l1.c3.weight")).Message);
    }

    [Fact]
    public void AFrozenModulePathFreezesTheLayersUnderIt()
    {
        var start = OnnxImporter.Import(Fixture("tinyresnet.onnx"), new CpuBackend(1));
        var options = new Ml.Cnn.MLNet.CnnTrainerOptions { StartingNetwork = start, FrozenLayers = ["l1"], Threads = 1 };
        var network = Ml.Cnn.MLNet.CnnTraining.CreateNetwork(options, 3, start.InputShape, seed: 1, Ml.Cnn.MLNet.CnnTask.Classification,
            new CpuBackend(1));
        var frozen = network.NamedParameters.Where(p => !p.Value.Trainable).Select(p => p.Key).ToList();
        Assert.Contains("l1.c1.weight", frozen);
        Assert.Contains("l1.c2.weight", frozen);
        Assert.All(frozen, name => Assert.StartsWith("l1.", name));
        Assert.Contains(network.NamedParameters, p => p.Key.StartsWith("l2.") && p.Value.Trainable);
    }

    [Fact]
    public void ExportedParametersKeepTheirQualifiedNames()
    {
        var original = Network.Create(ModelZoo.Get("resnet20", 5), new CpuBackend(1), new TensorShape(3, 16, 16), seed: 2);
        var imported = OnnxImporter.Import(OnnxExporter.ToBytes(original), new CpuBackend(1));
        Assert.Equal(original.NamedParameters.Select(p => p.Key), imported.NamedParameters.Select(p => p.Key));
        Assert.Contains(original.NamedParameters, p => p.Key.EndsWith(".gamma"));
    }

    [Fact]
    public void FineTuningAnImportedModelWithANewHeadImprovesAccuracy()
    {
        var backend = new CpuBackend(2);
        var network = OnnxImporter.Import(Fixture("lenet5.onnx"), backend, newClassCount: 4, seed: 5);
        Assert.Equal(new TensorShape(4), network.OutputShape);
        // Freeze the convolutions; train the dense layers on a 4-class slice of Fashion-MNIST.
        foreach (var layer in network.Nodes.Select(n => n.Layer).OfType<Conv2d>())
            foreach (var p in layer.Parameters) p.Trainable = false;
        var frozen = network.Nodes.Select(n => n.Layer).OfType<Conv2d>().First().Weight.Value.ToArray();
        var all = Idx.LoadFromFolder(FashionData.Folder, "train");
        var fourClasses = Enumerable.Range(0, all.Count).Where(i => all.Targets[i] < 4).Take(800).ToArray();
        var subset = all.Subset(fourClasses);
        var data = new ImageDataset(subset.ItemShape, Enumerable.Range(0, subset.Count).SelectMany(subset.GetItem).ToArray(), subset.Targets, classCount: 4);
        var (train, test) = (data.Subset(Enumerable.Range(0, 600).ToArray()), data.Subset(Enumerable.Range(600, 200).ToArray()));
        var loss = Trainer.CreateLoss(LossKind.SoftmaxCrossEntropy);
        var (_, before) = Trainer.Evaluate(network, test, loss, null);
        Trainer.Train(network, train, new TrainerOptions { Epochs = 5, BatchSize = 32, Optimizer = OptimizerKind.Adam, LearningRate = 2e-3f });
        var (_, after) = Trainer.Evaluate(network, test, loss, null);
        Assert.True(after > before + 0.2f && after > 0.7f, $"accuracy {before} before, {after} after fine-tuning");
        Assert.Equal(frozen, network.Nodes.Select(n => n.Layer).OfType<Conv2d>().First().Weight.Value.ToArray());
    }

    [Fact]
    public void TruncatedFilesAreInvalidDataAtEveryCut()
    {
        var bytes = File.ReadAllBytes(Fixture("tinyresnet.onnx"));
        var rng = new Rng(3);
        for (int trial = 0; trial < 25; trial++)
        {
            int cut = 1 + rng.NextInt(bytes.Length - 1);
            var error = Record.Exception(() => OnnxImporter.Import(bytes[..cut], new CpuBackend(1), source: $"cut at {cut}"));
            Assert.True(error is InvalidDataException or NotSupportedException, $"cut at {cut}: {error?.GetType().Name}: {error?.Message}");
        }
        Assert.Throws<InvalidDataException>(() => OnnxImporter.Import([0xFF, 0xFF, 0xFF, 0x01, 0x02], new CpuBackend(1)));
    }

    [Fact]
    public void UnsupportedOperatorsNameTheOperatorAndNode()
    {
        var network = Network.Create(ModelZoo.LeNet5(10), new CpuBackend(1), new TensorShape(1, 28, 28), seed: 1);
        var model = OnnxExporter.Build(network, appendSoftmax: false);
        model.Graph.Node[1].OpType = "Einsum";
        var error = Assert.Throws<NotSupportedException>(() => OnnxImporter.Import(Google.Protobuf.MessageExtensions.ToByteArray(model), new CpuBackend(1)));
        Assert.Contains("'Einsum'", error.Message);
        Assert.Contains($"'{model.Graph.Node[1].Name}'", error.Message);
    }

    [Theory]
    [InlineData("Transpose", "MaxPool", "channels-last view")] // pooling a channels-last view would pool the channels
    [InlineData("Div", "Relu", "step (GeluScaled)")]          // a step of GELU read by another operator
    [InlineData("Pow", "Relu", "step (Square)")]              // a step of layer normalization read by another operator
    public void ConvNextsViewsAndStepsReadElsewhereAreRefusedByName(string producer, string reader, string expected) =>
        AssertReadElsewhereIsRefused("convnext.onnx", n => n.OpType == producer && (producer != "Div" || n.Name.Contains("block.4")),
            reader, expected);

    /// <summary>
    /// Inserts a <paramref name="reader"/> node after the first node <paramref name="producer"/> picks, reading its
    /// output, and checks the import is refused naming that node and <paramref name="expected"/>.
    /// </summary>
    private static void AssertReadElsewhereIsRefused(string fixture, Predicate<Ml.Cnn.Onnx.Proto.NodeProto> producer, string reader,
        string expected)
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Fixtures", "torchvision", fixture);
        var model = Ml.Cnn.Onnx.Proto.ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
        int at = model.Graph.Node.ToList().FindIndex(producer);
        var extra = new Ml.Cnn.Onnx.Proto.NodeProto { OpType = reader, Name = "extra", Input = { model.Graph.Node[at].Output[0] }, Output = { "extra_out" } };
        if (reader == "MaxPool") extra.Attribute.Add(new Ml.Cnn.Onnx.Proto.AttributeProto { Name = "kernel_shape", Ints = { 2, 2 } });
        model.Graph.Node.Insert(at + 1, extra);
        var error = Assert.Throws<NotSupportedException>(() => OnnxImporter.Import(Google.Protobuf.MessageExtensions.ToByteArray(model), new CpuBackend(1)));
        Assert.Contains("'extra'", error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Theory]
    [InlineData("Softmax", "Relu", "step (Probabilities) of the multi-head attention")] // attention weights read elsewhere
    [InlineData("Concat", "MaxPool", "channels-last view")]                             // pooling the tokens' view
    public void VisionTransformerStepsReadElsewhereAreRefusedByName(string producer, string reader, string expected) =>
        // "/Concat_2" is the float Concat: the class token before the patches (the others concatenate shape values).
        AssertReadElsewhereIsRefused("vit.onnx", n => n.OpType == producer && (producer != "Concat" || n.Name == "/Concat_2"), reader, expected);

    [Fact]
    public void AnAttentionWhoseSoftmaxIsOverTheQueriesIsRefused()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Fixtures", "torchvision", "vit.onnx");
        var model = Ml.Cnn.Onnx.Proto.ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
        var softmax = model.Graph.Node.First(n => n.OpType == "Softmax");
        softmax.Attribute.Single(a => a.Name == "axis").I = 1;
        var error = Assert.Throws<NotSupportedException>(() => OnnxImporter.Import(Google.Protobuf.MessageExtensions.ToByteArray(model), new CpuBackend(1)));
        Assert.Contains($"'{softmax.Name}'", error.Message);
        Assert.Contains("over the keys", error.Message);
    }

    [Fact]
    public void AnInitializerPassedThroughIdentityIsAConstant()
    {
        // PyTorch exports a constant that layers share as Identity(initializer); torchvision's MobileNets and
        // EfficientNets have them.
        var backend = new CpuBackend(1);
        var network = Network.Create(ModelZoo.LeNet5(10), backend, new TensorShape(1, 28, 28), seed: 1);
        var model = OnnxExporter.Build(network, appendSoftmax: false);
        var conv = model.Graph.Node.First(n => n.OpType == "Conv");
        string bias = conv.Input[2];
        model.Graph.Node.Insert(0, new Ml.Cnn.Onnx.Proto.NodeProto { OpType = "Identity", Name = "shared_bias", Input = { bias }, Output = { bias + ".shared" } });
        conv.Input[2] = bias + ".shared";
        var imported = OnnxImporter.Import(Google.Protobuf.MessageExtensions.ToByteArray(model), backend);
        var x = TensorOf(backend, RandomNormal(new Rng(2), 2 * 784), 2, 1, 28, 28);
        Assert.Equal(network.Forward(x, false).ToArray(), imported.Forward(x, false).ToArray());
    }

    [Fact]
    public void OnlyAStateDictKeyNamesALayer()
    {
        // A weight that reaches the node from a Constant ("/l1/l1.0/Constant_output_0") says nothing of the module.
        var network = Network.Create(ModelZoo.LeNet5(10), new CpuBackend(1), new TensorShape(1, 28, 28), seed: 1);
        var model = OnnxExporter.Build(network, appendSoftmax: false);
        var conv = model.Graph.Node.First(n => n.OpType == "Conv");
        var weight = model.Graph.Initializer.First(t => t.Name == conv.Input[1]);
        weight.Name = "/l1/l1.0/Constant_output_0";
        conv.Input[1] = weight.Name;
        var imported = OnnxImporter.Import(Google.Protobuf.MessageExtensions.ToByteArray(model), new CpuBackend(1));
        Assert.Contains(conv.Name, imported.Nodes.Select(n => n.Name));
    }

    [Fact]
    public void InputOfTheWrongSizeNamesBoth()
    {
        var network = OnnxImporter.Import(Fixture("lenet5.onnx"), new CpuBackend(1));
        var error = Assert.Throws<ArgumentException>(() => network.Forward(network.Backend.Allocate(new TensorShape(2, 1, 32, 32)), false));
        Assert.Contains("[N, 1, 28, 28]", error.Message);
        Assert.Contains("[2, 1, 32, 32]", error.Message);
    }
}
