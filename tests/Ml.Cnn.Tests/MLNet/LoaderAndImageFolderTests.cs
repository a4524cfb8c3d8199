using System.IO.Compression;
using Microsoft.ML;
using Microsoft.ML.Data;
using Ml.Cnn.Data;
using Ml.Cnn.MLNet;
using Ml.Cnn.Training;
using Xunit;

namespace Ml.Cnn.Tests.MLNet;

public sealed class LoaderAndImageFolderTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "mlcnn-loaders-" + Guid.NewGuid().ToString("N"));

    public LoaderAndImageFolderTests() => Directory.CreateDirectory(_folder);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void ImageFolderPipelineTrainsFromPngFiles()
    {
        // A few hundred real Fashion-MNIST images written as PNG files, one subfolder per class.
        var data = Idx.LoadFromFolder(FashionData.Folder, "train");
        int perClass = 30;
        var written = new int[10];
        for (int i = 0; i < data.Count && written.Sum() < perClass * 10; i++)
        {
            int label = (int)data.Targets[i];
            if (written[label] == perClass) continue;
            string classFolder = Path.Combine(_folder, "images", Idx.FashionMnistClasses[label].Replace('/', '-'));
            Directory.CreateDirectory(classFolder);
            var pixels = new byte[28 * 28 * 4];
            var item = data.GetItem(i);
            for (int p = 0; p < 784; p++)
            {
                byte v = (byte)Math.Round(item[p] * 255);
                (pixels[4 * p], pixels[4 * p + 1], pixels[4 * p + 2], pixels[4 * p + 3]) = (v, v, v, 255);
            }
            using var image = MLImage.CreateFromPixels(28, 28, MLPixelFormat.Bgra32, pixels);
            image.Save(Path.Combine(classFolder, $"{i:D5}.png"));
            written[label]++;
        }

        var ml = new MLContext(seed: 1);
        var files = ml.Data.LoadFromImageFolder(Path.Combine(_folder, "images"));
        Assert.Equal(300, files.GetColumn<string>("ImagePath").Count());
        var pipeline = ml.Transforms.LoadImages("Image", imageFolder: "", inputColumnName: "ImagePath")
            .Append(ml.Transforms.ResizeImages("Image", 28, 28))
            .Append(ml.Transforms.ExtractPixels("Features", "Image", colorsToExtract: Microsoft.ML.Transforms.Image.ImagePixelExtractingEstimator.ColorBits.Red, scaleImage: 1f / 255))
            .Append(ml.Transforms.Conversion.MapValueToKey("Label"))
            .Append(ml.MulticlassClassification.Trainers.ConvolutionalNetwork(new CnnTrainerOptions
            {
                Architecture = "lenet5", Epochs = 15, Optimizer = OptimizerKind.Adam, LearningRate = 2e-3f, BatchSize = 16,
            }))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
        var model = pipeline.Fit(files);
        var scored = model.Transform(files);
        var metrics = ml.MulticlassClassification.Evaluate(scored);
        Assert.True(metrics.MicroAccuracy > 0.7, $"training accuracy {metrics.MicroAccuracy}");
        var predicted = scored.GetColumn<string>("PredictedLabel").ToList();
        Assert.Contains("Trouser", predicted);
    }

    [Fact]
    public void IdxLoaderReadsTheEmbeddedSubset()
    {
        var ml = new MLContext(seed: 1);
        var view = ml.Data.LoadFromIdxFiles(Path.Combine(FashionData.Folder, "t10k-images-idx3-ubyte.gz"),
            Path.Combine(FashionData.Folder, "t10k-labels-idx1-ubyte.gz"), classNames: Idx.FashionMnistClasses);
        Assert.Equal(784, ((VectorDataViewType)view.Schema["Features"].Type).Size);
        var labels = view.GetColumn<string>("Label").ToList();
        Assert.Equal(1000, labels.Count);
        Assert.Equal(100, labels.Count(l => l == "Ankle boot"));
        Assert.All(view.GetColumn<float[]>("Features").First(), v => Assert.InRange(v, 0f, 1f));
    }

    private string WriteIdx(string name, int magic, int[] dims, int payloadBytes, bool gzip)
    {
        using var memory = new MemoryStream();
        void Int(int v) { memory.WriteByte((byte)(v >> 24)); memory.WriteByte((byte)(v >> 16)); memory.WriteByte((byte)(v >> 8)); memory.WriteByte((byte)v); }
        Int(magic);
        foreach (var d in dims) Int(d);
        memory.Write(new byte[payloadBytes]);
        string path = Path.Combine(_folder, name);
        if (!gzip) { File.WriteAllBytes(path, memory.ToArray()); return path; }
        using (var file = File.Create(path))
        using (var zip = new GZipStream(file, CompressionLevel.Fastest)) zip.Write(memory.ToArray());
        return path;
    }

    [Fact]
    public void MalformedIdxFilesAreExplained()
    {
        string images = WriteIdx("images", 0x803, [3, 2, 2], 12, gzip: true);
        string labels = WriteIdx("labels", 0x801, [3], 3, gzip: false);
        Assert.Equal(3, Idx.Load(images, labels).Count);

        var badMagic = Assert.Throws<InvalidDataException>(() => Idx.Load(WriteIdx("magic", 0x801, [3, 2, 2], 12, false), labels));
        Assert.Contains("magic number 0x00000801, expected 0x00000803", badMagic.Message);
        var truncated = Assert.Throws<InvalidDataException>(() => Idx.Load(WriteIdx("short", 0x803, [3, 2, 2], 10, false), labels));
        Assert.Contains("truncated", truncated.Message);
        Assert.Contains("12 bytes", truncated.Message);
        var mismatch = Assert.Throws<InvalidDataException>(() => Idx.Load(images, WriteIdx("fewer", 0x801, [2], 2, false)));
        Assert.Contains("3 images", mismatch.Message);
        Assert.Contains("2 labels", mismatch.Message);

        var gz = File.ReadAllBytes(images);
        File.WriteAllBytes(Path.Combine(_folder, "cut.gz"), gz[..(gz.Length / 2)]);
        Assert.Throws<InvalidDataException>(() => Idx.ReadImages(Path.Combine(_folder, "cut.gz")));
    }

    [Fact]
    public void Cifar10BatchesAndTheirErrors()
    {
        var record = new byte[3073];
        record[0] = 7;
        record[1] = 255;
        string good = Path.Combine(_folder, "data_batch_1.bin");
        File.WriteAllBytes(good, [.. record, .. record]);
        var ml = new MLContext(seed: 1);
        var view = ml.Data.LoadFromCifar10Files([good]);
        Assert.Equal(["horse", "horse"], view.GetColumn<string>("Label").ToArray());
        Assert.Equal(1f, view.GetColumn<float[]>("Features").First()[0]);

        string truncated = Path.Combine(_folder, "cut.bin");
        File.WriteAllBytes(truncated, record[..3000]);
        Assert.Contains("truncated", Assert.Throws<InvalidDataException>(() => Cifar10.Load([truncated])).Message);
        record[0] = 12;
        string badLabel = Path.Combine(_folder, "label.bin");
        File.WriteAllBytes(badLabel, record);
        Assert.Contains("label 12", Assert.Throws<InvalidDataException>(() => Cifar10.Load([badLabel])).Message);
    }

    [Fact]
    public void EmptyImageFolder()
    {
        var ml = new MLContext(seed: 1);
        Directory.CreateDirectory(Path.Combine(_folder, "empty", "cats"));
        Assert.Contains("no images", Assert.Throws<InvalidDataException>(() => ml.Data.LoadFromImageFolder(Path.Combine(_folder, "empty"))).Message);
        Assert.Throws<DirectoryNotFoundException>(() => ml.Data.LoadFromImageFolder(Path.Combine(_folder, "missing")));
    }

    [Fact]
    public void ImageFolderKeepsNestedClassNamesAndRefusesEmptyClasses()
    {
        var ml = new MLContext(seed: 1);
        string root = Path.Combine(_folder, "nested");
        using var image = MLImage.CreateFromPixels(2, 2, MLPixelFormat.Bgra32, new byte[16]);
        foreach (var classPath in new[] { Path.Combine("T-shirt", "top"), "Trouser" })
        {
            Directory.CreateDirectory(Path.Combine(root, classPath));
            image.Save(Path.Combine(root, classPath, "a.png"));
            image.Save(Path.Combine(root, classPath, "b.png"));
        }
        var labels = ml.Data.LoadFromImageFolder(root).GetColumn<string>("Label").ToList();
        Assert.Equal(["T-shirt/top", "T-shirt/top", "Trouser", "Trouser"], labels);

        Directory.CreateDirectory(Path.Combine(root, "Bag"));
        var error = Assert.Throws<InvalidDataException>(() => ml.Data.LoadFromImageFolder(root));
        Assert.Contains("Bag", error.Message);
        Assert.Contains("no images", error.Message);
    }
}
