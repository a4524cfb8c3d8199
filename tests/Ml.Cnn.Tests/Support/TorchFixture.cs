using System.Text.Json;

namespace Ml.Cnn.Tests.Support;

/// <summary>One PyTorch reference case copied from the shared fixtures: parameters and named float32 tensors.</summary>
public sealed class TorchFixture
{
    private static readonly string Root = Path.Combine(AppContext.BaseDirectory, "Fixtures", "torch");
    private readonly Dictionary<string, (int[] Shape, string File)> _tensors = [];
    private readonly JsonElement _params;

    private TorchFixture(string name)
    {
        Name = name;
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Root, name + ".json")));
        _params = doc.RootElement.GetProperty("params").Clone();
        foreach (var t in doc.RootElement.GetProperty("tensors").EnumerateArray())
            _tensors[t.GetProperty("name").GetString()!] =
                (t.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray(), t.GetProperty("file").GetString()!);
    }

    public string Name { get; }

    public static TorchFixture Load(string name) => new(name);

    public static IEnumerable<string> CasesWithPrefix(string prefix) =>
        Directory.GetFiles(Root, prefix + "*.json").Select(Path.GetFileNameWithoutExtension).Order()!;

    public int Int(string key) => _params.GetProperty(key).GetInt32();
    public float Float(string key) => _params.GetProperty(key).GetSingle();
    public float FloatAt(string key, int index) => _params.GetProperty(key)[index].GetSingle();
    public bool Bool(string key) => _params.GetProperty(key).GetBoolean();
    public bool Has(string key) => _params.TryGetProperty(key, out _);

    public int[] Shape(string tensor) => _tensors[tensor].Shape;

    public float[] Values(string tensor)
    {
        var bytes = File.ReadAllBytes(Path.Combine(Root, _tensors[tensor].File));
        var values = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
        return values;
    }

    public IEnumerable<string> TensorNames => _tensors.Keys;
}
