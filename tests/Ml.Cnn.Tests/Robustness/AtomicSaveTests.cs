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
        File.WriteAllText(Path.Combine(_folder, ".model.zip.0123.tmp"), "left by a killed save");

        var failing = new TransformerChain<ITransformer>(good, new FailingSave());
        Assert.Throws<IOException>(() => ml.Model.SaveAtomically(failing, data.Schema, path));
        Assert.Equal(saved, File.ReadAllBytes(path));
        Assert.Equal(["model.zip"], Directory.GetFiles(_folder).Select(Path.GetFileName));
        Assert.NotNull(ml.Model.Load(path, out _));
    }
}
