using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Backends.Reference;
using Ml.Cnn.Core;
using Ml.Cnn.Networks;
using Ml.Cnn.Onnx;
using Ml.Cnn.Tensors;
using Ml.Cnn.Zoo;
using Xunit;
using static Ml.Cnn.Tests.Support.Numerics;

namespace Ml.Cnn.Tests.Onnx;

/// <summary>
/// Dense-prediction networks through ONNX: PyTorch exports with transposed convolutions and Resize import and give
/// PyTorch's outputs on both backends and ONNX Runtime's on another image size; the zoo's networks export and import back.
/// </summary>
public sealed class DenseImportTests
{
    private static readonly string Root = Path.Combine(AppContext.BaseDirectory, "Fixtures", "torchvision");

    private static float[] RunOnnxRuntime(string path, float[] x, int n, int h, int w)
    {
        using var session = new InferenceSession(path);
        var name = session.InputMetadata.Keys.Single();
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(name, new DenseTensor<float>(x, [n, 1, h, w]))]);
        return results.Single().AsTensor<float>().ToArray();
    }

    [Theory]
    [InlineData("dense_unet", "reference")]
    [InlineData("dense_unet", "cpu")]
    [InlineData("dense_decoder", "reference")]
    [InlineData("dense_decoder", "cpu")]
    public void PyTorchExportsImportAndMatchPyTorchAndOnnxRuntimeOnAnotherSize(string name, string backendName)
    {
        var backend = backendName == "cpu" ? (Backends.IBackend)new CpuBackend(2) : new ReferenceBackend();
        string path = Path.Combine(Root, name + ".onnx");
        var network = OnnxImporter.Import(path, backend, inputShape: new TensorShape(1, 32, 48));
        var x = ReadFloats(Path.Combine(Root, name + ".x.f32"));
        var y = network.Forward(TensorOf(backend, x, 2, 1, 32, 48), training: false);
        AssertClose(ReadFloats(Path.Combine(Root, name + ".y.f32")), y.ToArray(), $"{name} against PyTorch", rel: 1e-4, abs: 1e-4);

        var big = RandomNormal(new Rng(7), 64 * 80);
        AssertClose(RunOnnxRuntime(path, big, 1, 64, 80), network.Forward(TensorOf(backend, big, 1, 1, 64, 80), training: false).ToArray(),
            $"{name} at 64x80 against ONNX Runtime", rel: 1e-3, abs: 1e-4);
    }

    [Fact]
    public void AFreeImageSizeNeedsTheShapeToBuildFor()
    {
        var e = Assert.Throws<InvalidDataException>(() => OnnxImporter.Import(Path.Combine(Root, "dense_unet.onnx"), new CpuBackend(1)));
        Assert.Contains("free size ('H') in dimension 2", e.Message);
        Assert.Contains("inputShape", e.Message);
    }

    [Theory]
    [InlineData("unet")]
    [InlineData("fcn8s")]
    [InlineData("centernet")]
    public void ZooNetworksExportAndImportBackWithTheirOutputs(string name)
    {
        var definition = name == "centernet" ? ModelZoo.GetDetection(name, 3) : ModelZoo.GetSegmentation(name, 3);
        var network = Network.Create(definition, new CpuBackend(2), new TensorShape(1, 32, 64), seed: 5);
        var x = TensorOf(network.Backend, RandomNormal(new Rng(8), 2 * 32 * 64), 2, 1, 32, 64);
        var expected = network.Forward(x, training: false).ToArray();
        var imported = OnnxImporter.Import(OnnxExporter.ToBytes(network), network.Backend);
        AssertClose(expected, imported.Forward(x, training: false).ToArray(), $"{name} imported back", rel: 1e-4, abs: 1e-5);
    }
}
