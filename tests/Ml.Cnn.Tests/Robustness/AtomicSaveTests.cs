using Microsoft.ML;
using Microsoft.ML.Data;
using Ml.Cnn.MLNet;
using Ml.Cnn.Tests.MLNet;
using Xunit;

namespace Ml.Cnn.Tests.Robustness;

public sealed class AtomicSaveTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "mlcnn-atomic-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    /// <summary>A transformer whose save fails after the chain before it has been written.</summary>
    private sealed class FailingSave : ITransformer
    {
        public bool IsRowToRowMapper => true;
        public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => inputSchema;
        public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => throw new NotSupportedException();
        public IDataView Transform(IDataView input) => input;
        public void Save(ModelSaveContext ctx) => throw new IOException("disk full");
    }

    [Fact]
    public void AFailedSaveLeavesThePreviousModelAndNoTemporaryFile()
    {
        var ml = new MLContext(seed: 1);
        var data = FashionData.View(ml, train: true, 50);
        var good = ml.Transforms.Conversion.MapValueToKey("Label").Fit(data);
        string path = Path.Combine(_folder, "model.zip");
        ml.Model.SaveAtomically(good, data.Schema, path);
        var saved = File.ReadAllBytes(path);
        string killed = Path.Combine(_folder, ".model.zip.0123.tmp");
        File.WriteAllText(killed, "left by a killed save an hour ago");
        File.SetLastWriteTimeUtc(killed, DateTime.UtcNow.AddHours(-1));
        string concurrent = ".model.zip.4567.tmp";
        File.WriteAllText(Path.Combine(_folder, concurrent), "another process's save, in progress");

        var failing = new TransformerChain<ITransformer>(good, new FailingSave());
        Assert.Throws<IOException>(() => ml.Model.SaveAtomically(failing, data.Schema, path));
        Assert.Equal(saved, File.ReadAllBytes(path));
        Assert.Equal([concurrent, "model.zip"], Directory.GetFiles(_folder).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.NotNull(ml.Model.Load(path, out _));
    }
}

/// <summary>Damaged model zips: every load ends in InvalidDataException naming the file, or loads and scores.</summary>
public sealed class ModelZipMutantTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "mlcnn-zipfuzz-" + Guid.NewGuid().ToString("N"));

    public ModelZipMutantTests() => Directory.CreateDirectory(_folder);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void MutatedZipsEndInATypedError()
    {
        var ml = new MLContext(seed: 1);
        var data = FashionData.View(ml, train: true, 100);
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.ConvolutionalNetwork(new CnnTrainerOptions { Architecture = "linear", Epochs = 1 }))
            .Fit(data);
        string good = Path.Combine(_folder, "model.zip");
        ml.Model.SaveAtomically(model, data.Schema, good);
        var original = File.ReadAllBytes(good);
        var mutants = Fuzzing.Mutants.Of(original, 31, 30, 32, bigEndian: false).ToList();
        string path = Path.Combine(_folder, "mutant.zip");
        var test = FashionData.View(ml, train: false, 20);
        int loaded = 0;
        foreach (var mutant in mutants)
        {
            File.WriteAllBytes(path, mutant);
            try
            {
                var reloaded = new MLContext().Model.LoadModel(path, out _);
                reloaded.Transform(test).Preview(5);
                loaded++;
            }
            catch (InvalidDataException e)
            {
                Assert.Contains(path, e.Message);
            }
        }
        // A zip's readers go by its central directory, so many damaged local headers load as the original did.
        Assert.True(loaded < mutants.Count, $"all {mutants.Count} damaged zips loaded: the corpus does not reach the loader");
    }
}
