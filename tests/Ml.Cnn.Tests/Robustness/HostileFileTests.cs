using System.Buffers.Binary;
using System.IO.Compression;
using Google.Protobuf;
using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Core;
using Ml.Cnn.Data;
using Ml.Cnn.Fuzzing;
using Ml.Cnn.Onnx;
using Ml.Cnn.Onnx.Proto;
using Ml.Cnn.Tensors;
using Ml.Cnn.Tests.MLNet;
using Ml.Cnn.Zoo;
using Xunit;

namespace Ml.Cnn.Tests.Robustness;

/// <summary>
/// Seeded corpora of mutated files, generated here: every load ends in the format's typed error or a result, and
/// allocates at most twice the file's size plus 64 MiB — a header field cannot size an allocation.
/// </summary>
public sealed class HostileFileTests : IDisposable
{
    private const long FixedBudget = 64L << 20;
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "mlcnn-hostile-" + Guid.NewGuid().ToString("N"));

    public HostileFileTests() => Directory.CreateDirectory(_folder);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>Runs <paramref name="load"/> and returns the exception it ended with, checking its allocations.</summary>
    private static Exception? LoadWithinBudget(Action load, long fileSize, string what)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        Exception? error = null;
        try { load(); }
        catch (Exception e) { error = e; }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated <= 2 * fileSize + FixedBudget, $"{what}: {allocated} bytes allocated for a {fileSize}-byte file");
        return error;
    }

    private (byte[] Images, byte[] Labels) SmallIdx()
    {
        var data = Idx.LoadFromFolder(FashionData.Folder, "t10k");
        int count = 40;
        var images = new byte[16 + count * 784];
        BinaryPrimitives.WriteInt32BigEndian(images, 0x803);
        BinaryPrimitives.WriteInt32BigEndian(images.AsSpan(4), count);
        BinaryPrimitives.WriteInt32BigEndian(images.AsSpan(8), 28);
        BinaryPrimitives.WriteInt32BigEndian(images.AsSpan(12), 28);
        var labels = new byte[8 + count];
        BinaryPrimitives.WriteInt32BigEndian(labels, 0x801);
        BinaryPrimitives.WriteInt32BigEndian(labels.AsSpan(4), count);
        for (int i = 0; i < count; i++)
        {
            var item = data.GetItem(i);
            for (int p = 0; p < 784; p++) images[16 + i * 784 + p] = (byte)Math.Round(item[p] * 255);
            labels[8 + i] = (byte)data.Targets[i];
        }
        return (images, labels);
    }

    private static byte[] Gzip(byte[] bytes)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest)) gzip.Write(bytes);
        return output.ToArray();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MutatedIdxFilesEndInInvalidDataOrLoad(bool compressed)
    {
        var (images, labels) = SmallIdx();
        string imagesPath = Path.Combine(_folder, "images"), labelsPath = Path.Combine(_folder, "labels");
        File.WriteAllBytes(labelsPath, compressed ? Gzip(labels) : labels);
        int tried = 0, refused = 0;
        foreach (var mutant in Mutants.Of(images, compressed ? 11UL : 12UL, 40, 16, bigEndian: true))
        {
            var bytes = compressed ? Gzip(mutant) : mutant;
            File.WriteAllBytes(imagesPath, bytes);
            var error = LoadWithinBudget(() => Idx.Load(imagesPath, labelsPath), bytes.Length, $"IDX mutant {tried}");
            Assert.True(error is null or InvalidDataException, $"IDX mutant {tried}: {error}");
            if (error is not null) Assert.Contains(imagesPath, error.Message);
            tried++;
            refused += error is null ? 0 : 1;
        }
        foreach (var mutant in Mutants.Of(labels, 13, 20, 8, bigEndian: true))
        {
            File.WriteAllBytes(labelsPath, mutant);
            var error = LoadWithinBudget(() => Idx.ReadLabels(labelsPath), mutant.Length, $"label mutant {tried}");
            Assert.True(error is null or InvalidDataException, $"label mutant {tried}: {error}");
            tried++;
        }
        Assert.True(refused > 0 && tried > 150, $"{tried} tried, {refused} refused");
    }

    [Fact]
    public void AHeaderDeclaringHugeImagesIsRefusedBeforeAllocating()
    {
        var (images, labels) = SmallIdx();
        BinaryPrimitives.WriteInt32BigEndian(images.AsSpan(8), 30000);
        BinaryPrimitives.WriteInt32BigEndian(images.AsSpan(12), 30000);
        string imagesPath = Path.Combine(_folder, "images"), labelsPath = Path.Combine(_folder, "labels");
        File.WriteAllBytes(imagesPath, images);
        File.WriteAllBytes(labelsPath, labels);
        var error = Assert.Throws<InvalidDataException>(() => Idx.Load(imagesPath, labelsPath));
        Assert.Contains("30000x30000", error.Message);
        BinaryPrimitives.WriteInt32BigEndian(images.AsSpan(8), 2000);
        BinaryPrimitives.WriteInt32BigEndian(images.AsSpan(12), 2000);
        File.WriteAllBytes(imagesPath, Gzip(images));
        Assert.Contains("more than the file can hold", Assert.Throws<InvalidDataException>(() => Idx.Load(imagesPath, labelsPath)).Message);
    }

    [Fact]
    public void MutatedCifarBatchesEndInInvalidDataOrLoad()
    {
        var rng = new Rng(41);
        var original = new byte[6 * 3073];
        for (int r = 0; r < 6; r++)
        {
            original[r * 3073] = (byte)(r % 10);
            for (int p = 1; p < 3073; p++) original[r * 3073 + p] = (byte)rng.NextInt(256);
        }
        string path = Path.Combine(_folder, "data_batch_1.bin");
        int tried = 0;
        foreach (var mutant in Mutants.Of(original, 42, 40, 8, bigEndian: true))
        {
            File.WriteAllBytes(path, mutant);
            var error = LoadWithinBudget(() => Cifar10.Load([path]), mutant.Length, $"CIFAR mutant {tried}");
            Assert.True(error is null or InvalidDataException, $"CIFAR mutant {tried}: {error}");
            if (error is not null) Assert.Contains(path, error.Message);
            tried++;
        }
        Assert.True(tried > 100);
    }

    private static byte[] LeNetOnnx() =>
        OnnxExporter.ToBytes(Ml.Cnn.Networks.Network.Create(ModelZoo.Get("lenet5", 10), new CpuBackend(1), new TensorShape(1, 28, 28), 1));

    [Fact]
    public void MutatedOnnxModelsEndInATypedError()
    {
        var original = LeNetOnnx();
        int tried = 0;
        foreach (var mutant in Mutants.Of(original, 21, 100, 64, bigEndian: true))
        {
            var error = LoadWithinBudget(() => OnnxImporter.Import(mutant, new CpuBackend(1)), mutant.Length, $"ONNX mutant {tried}");
            Assert.True(error is null or InvalidDataException or NotSupportedException, $"ONNX mutant {tried}: {error}");
            tried++;
        }
        Assert.True(tried > 250);
    }

    [Theory]
    [InlineData(16_777_216L)]
    [InlineData((1L << 32) + 6)]
    [InlineData(-1L)]
    public void AWeightDimensionTheFileCannotHoldIsRefusedBeforeBuilding(long dim)
    {
        var model = ModelProto.Parser.ParseFrom(LeNetOnnx());
        var weight = model.Graph.Initializer.First(t => t.Dims.Count == 4);
        weight.Dims[0] = dim;
        var bytes = model.ToByteArray();
        var error = LoadWithinBudget(() => OnnxImporter.Import(bytes, new CpuBackend(1)), bytes.Length, $"dim {dim}");
        Assert.IsType<InvalidDataException>(error);
        Assert.Contains(weight.Name, error!.Message);
    }

    [Fact]
    public void StructuralDefectsAreNamed()
    {
        var model = ModelProto.Parser.ParseFrom(LeNetOnnx());
        model.Graph.Initializer.Add(model.Graph.Initializer[0].Clone());
        Assert.Contains("defined twice", Assert.Throws<InvalidDataException>(() => OnnxImporter.Import(model.ToByteArray(), new CpuBackend(1))).Message);

        model = ModelProto.Parser.ParseFrom(LeNetOnnx());
        model.Graph.Node[1].Input.Clear();
        Assert.Contains("0 inputs", Assert.Throws<InvalidDataException>(() => OnnxImporter.Import(model.ToByteArray(), new CpuBackend(1))).Message);

        model = ModelProto.Parser.ParseFrom(LeNetOnnx());
        var conv = model.Graph.Initializer.First(t => t.Dims.Count == 4);
        long values = conv.Dims.Aggregate(1L, (a, b) => a * b);
        conv.Dims.Clear();
        conv.Dims.Add(values);
        Assert.Contains("4 dimensions", Assert.Throws<InvalidDataException>(() => OnnxImporter.Import(model.ToByteArray(), new CpuBackend(1))).Message);
    }
}
