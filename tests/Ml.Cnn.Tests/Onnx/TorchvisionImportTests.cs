using Ml.Cnn.Backends;
using Ml.Cnn.Tests.Support;
using Ml.Cnn.Onnx;
using Xunit;
using static Ml.Cnn.Tests.Support.Numerics;

namespace Ml.Cnn.Tests.Onnx;

/// <summary>
/// torchvision's classification families as PyTorch 1.13 exports them (opset 13, eval mode, 3×64×64, random weights;
/// eng/make_torchvision_fixtures.py): imported, they give PyTorch's outputs on both backends, and exported again they
/// give ONNX Runtime's.
/// </summary>
public sealed class TorchvisionImportTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "mlcnn-torchvision-" + Guid.NewGuid().ToString("N"));

    public TorchvisionImportTests() => Directory.CreateDirectory(_folder);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "torchvision", name);

    private static float[] ReadFloats(string name)
    {
        var bytes = File.ReadAllBytes(Fixture(name));
        var values = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
        return values;
    }

    public static TheoryData<string, string> Families() => new()
    {
        { "mobilenet_v2", "cpu2" }, { "mobilenet_v2", "reference" },
        { "mobilenet_v3_small", "cpu2" }, { "mobilenet_v3_small", "reference" },
        { "efficientnet_b0", "cpu2" }, { "efficientnet_b0", "reference" },
        { "mnasnet", "cpu2" }, { "squeezenet1_1", "cpu2" }, { "densenet", "cpu2" }, { "densenet", "reference" },
        { "shufflenet_v2_x0_5", "cpu2" }, { "shufflenet_v2_x0_5", "reference" },
    };

    [Theory, MemberData(nameof(Families))]
    public void ImportedFamiliesGivePyTorchsOutputs(string family, string backendName)
    {
        IBackend backend = TestBackends.Create(backendName);
        var network = OnnxImporter.Import(Fixture(family + ".onnx"), backend);
        var x = TensorOf(backend, ReadFloats(family + ".x.f32"), 2, 3, 64, 64);
        AssertClose(ReadFloats(family + ".y.f32"), network.Forward(x, training: false).ToArray(), $"{family} output", rel: 1e-4, abs: 1e-4);
        if (backendName == "cpu2") OnnxExportTests.CheckAgainstOnnxRuntime(network, _folder);
    }
}
