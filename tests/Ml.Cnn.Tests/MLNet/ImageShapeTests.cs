using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using Ml.Cnn.Layers;
using Ml.Cnn.MLNet;
using Ml.Cnn.Networks;
using Ml.Cnn.Training;
using Xunit;

namespace Ml.Cnn.Tests.MLNet;

/// <summary>The trainers take the image shape from the feature column's dimensions, never a guess that fits the size.</summary>
public sealed class ImageShapeTests : IDisposable
{
    private const int Width = 12, Height = 8;
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "mlcnn-shapes-" + Guid.NewGuid().ToString("N"));

    public ImageShapeTests()
    {
        // Two classes of non-square colour photos: "red" ones are reddest in their top half, "blue" ones bluest in
        // their bottom half, so both a colour and a grey (red-plane) network can tell them apart, and only if rows
        // and columns are read the right way round.
        var rng = new Random(3);
        foreach (var label in new[] { "red", "blue" })
        {
            Directory.CreateDirectory(Path.Combine(_folder, label));
            for (int n = 0; n < 24; n++)
            {
                var pixels = new byte[Width * Height * 4];
                for (int y = 0; y < Height; y++)
                    for (int x = 0; x < Width; x++)
                    {
                        bool lit = label == "red" ? y < Height / 2 : y >= Height / 2;
                        int p = 4 * (y * Width + x);
                        byte noise = (byte)rng.Next(40);
                        pixels[p] = (byte)(label == "blue" && lit ? 200 + noise : noise);      // B
                        pixels[p + 1] = noise;                                                 // G
                        pixels[p + 2] = (byte)(label == "red" && lit ? 200 + noise : noise);   // R
                        pixels[p + 3] = 255;
                    }
                using var image = MLImage.CreateFromPixels(Width, Height, MLPixelFormat.Bgra32, pixels);
                image.Save(Path.Combine(_folder, label, $"{n:D2}.png"));
            }
        }
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static CnnTrainerOptions Small() => new()
    {
        Network = classes => NetworkBuilder.Sequential(new Conv2d(4, 3, padding: 1), new Relu(), new Flatten(), new Dense(classes)),
        Epochs = 8, BatchSize = 8, Optimizer = OptimizerKind.Adam, LearningRate = 0.01f,
    };

    private IEstimator<ITransformer> Pixels(MLContext ml, ImagePixelExtractingEstimator.ColorBits colors, bool interleave) =>
        ml.Transforms.LoadImages("Image", imageFolder: "", inputColumnName: "ImagePath")
            .Append(ml.Transforms.ResizeImages("Image", Width, Height))
            .Append(ml.Transforms.ExtractPixels("Features", "Image", colorsToExtract: colors, interleavePixelColors: interleave,
                scaleImage: 1f / 255))
            .Append(ml.Transforms.Conversion.MapValueToKey("Label"));

    [Theory]
    [InlineData(ImagePixelExtractingEstimator.ColorBits.Rgb, 3)]
    [InlineData(ImagePixelExtractingEstimator.ColorBits.Red, 1)]
    public void NonSquareImagesTrainWithTheColumnsShape(ImagePixelExtractingEstimator.ColorBits colors, int channels)
    {
        var ml = new MLContext(seed: 1);
        var files = ml.Data.LoadFromImageFolder(_folder);
        var model = Pixels(ml, colors, interleave: false)
            .Append(ml.MulticlassClassification.Trainers.ConvolutionalNetwork(Small())).Fit(files);
        var cnn = model.LastTransformer as CnnMulticlassTransformer ?? throw new InvalidOperationException("no CNN transformer");
        Assert.Equal([channels, Height, Width], cnn.Model.ImageShape.Dims);
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(files));
        Assert.True(metrics.MicroAccuracy > 0.9, $"accuracy {metrics.MicroAccuracy} on two balanced classes (a fixed guess gets 0.5)");
    }

    [Fact]
    public void InterleavedPixelsAreRefusedWithTheFix()
    {
        var ml = new MLContext(seed: 1);
        var pipeline = Pixels(ml, ImagePixelExtractingEstimator.ColorBits.Rgb, interleave: true)
            .Append(ml.MulticlassClassification.Trainers.ConvolutionalNetwork(Small()));
        var error = Assert.ThrowsAny<ArgumentOutOfRangeException>(() => pipeline.Fit(ml.Data.LoadFromImageFolder(_folder)));
        Assert.Contains("interleaved", error.Message);
        Assert.Contains("interleavePixelColors: false", error.Message);
    }

    [Fact]
    public void AStatedShapeThatContradictsTheColumnIsRefused()
    {
        var ml = new MLContext(seed: 1);
        var options = Small();
        (options.ImageChannels, options.ImageHeight, options.ImageWidth) = (3, Width, Height);
        var pipeline = Pixels(ml, ImagePixelExtractingEstimator.ColorBits.Rgb, interleave: false)
            .Append(ml.MulticlassClassification.Trainers.ConvolutionalNetwork(options));
        var error = Assert.ThrowsAny<ArgumentOutOfRangeException>(() => pipeline.Fit(ml.Data.LoadFromImageFolder(_folder)));
        Assert.Contains("[3, 8, 12]", error.Message);
    }

    private sealed class FlatRow
    {
        [VectorType(3 * 8 * 12)] public float[] Features { get; set; } = [];
        public string Label { get; set; } = "";
    }

    [Fact]
    public void ASizeThatIsNoSquareImageIsNotGuessed()
    {
        var ml = new MLContext(seed: 1);
        var rows = Enumerable.Range(0, 8).Select(i => new FlatRow { Features = new float[3 * 8 * 12], Label = (i % 2).ToString() });
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.ConvolutionalNetwork(Small()));
        var error = Assert.ThrowsAny<ArgumentOutOfRangeException>(() => pipeline.Fit(ml.Data.LoadFromEnumerable(rows)));
        Assert.Contains("288 values", error.Message);
        Assert.Contains("ImageHeight", error.Message);
    }

    [Fact]
    public void ScoringRefusesImagesOfAnotherLayout()
    {
        var ml = new MLContext(seed: 1);
        var files = ml.Data.LoadFromImageFolder(_folder);
        var model = Pixels(ml, ImagePixelExtractingEstimator.ColorBits.Rgb, interleave: false)
            .Append(ml.MulticlassClassification.Trainers.ConvolutionalNetwork(Small())).Fit(files);
        var cnn = (CnnMulticlassTransformer)model.LastTransformer;
        var interleaved = Pixels(ml, ImagePixelExtractingEstimator.ColorBits.Rgb, interleave: true).Fit(files).Transform(files);
        var error = Assert.ThrowsAny<ArgumentOutOfRangeException>(() => cnn.Transform(interleaved));
        Assert.Contains("[8, 12, 3]", error.Message);
        Assert.Contains("[3, 8, 12]", error.Message);
    }

    private IDataView Images(MLContext ml) =>
        ml.Transforms.LoadImages("Image", imageFolder: "", inputColumnName: "ImagePath")
            .Append(ml.Transforms.Conversion.MapValueToKey("Label"))
            .Fit(ml.Data.LoadFromImageFolder(_folder)).Transform(ml.Data.LoadFromImageFolder(_folder));

    [Theory]
    [InlineData(3)]
    [InlineData(1)]
    public void AnImageColumnTrainsResizedToTheStatedShape(int channels)
    {
        var ml = new MLContext(seed: 1);
        var images = Images(ml);
        var options = Small();
        (options.FeatureColumnName, options.ImageChannels, options.ImageHeight, options.ImageWidth) = ("Image", channels, 4, 6);
        var cnn = ml.MulticlassClassification.Trainers.ConvolutionalNetwork(options).Fit(images);

        Assert.Equal([channels, 4, 6], cnn.Model.ImageShape.Dims);
        Assert.Equal(cnn.Model.ImageShape, cnn.Model.ImageInput!.Shape);
        Assert.Equal("Image", cnn.FeatureColumnName);
        var scored = cnn.Transform(images);
        Assert.DoesNotContain(scored.Schema, c => c.Name.StartsWith("Image."));
        var accuracy = ml.MulticlassClassification.Evaluate(scored).MicroAccuracy;
        Assert.True(accuracy > 0.9, $"accuracy {accuracy} on two balanced classes (a fixed guess gets 0.5)");

        // Scoring resizes and extracts as training did: the same scores as the pixels ImageAnalytics extracts itself.
        var pixels = ml.Transforms.ResizeImages("Small", 6, 4, "Image")
            .Append(channels == 1 ? ml.Transforms.ConvertToGrayscale("Small") : (IEstimator<ITransformer>)ml.Transforms.CopyColumns("Small", "Small"))
            .Append(ml.Transforms.ExtractPixels("Features", "Small",
                channels == 1 ? ImagePixelExtractingEstimator.ColorBits.Red : ImagePixelExtractingEstimator.ColorBits.Rgb, scaleImage: 1f / 255))
            .Fit(images).Transform(images).GetColumn<float[]>("Features").ToArray();
        var expected = new float[2];
        cnn.Model.Run(pixels[0], 1, expected, null, probabilities: true);
        Assert.Equal(expected, scored.GetColumn<float[]>("Score").First());
    }

    [Fact]
    public void AModelOfAnImageColumnSavesIntoAZipThatScoresTheImagesAlike()
    {
        var ml = new MLContext(seed: 1);
        var images = Images(ml);
        var options = Small();
        (options.FeatureColumnName, options.ImageHeight, options.ImageWidth) = ("Image", 4, 6);
        options.ValidationSet = images; // prepared like the training images
        var cnn = ml.MulticlassClassification.Trainers.ConvolutionalNetwork(options).Fit(images);
        Assert.All(cnn.Model.Training!.History, e => Assert.False(float.IsNaN(e.ValidationLoss)));
        string zip = Path.Combine(_folder, "model.zip");
        ml.Model.Save(cnn, images.Schema, zip);

        var loaded = new MLContext(seed: 2).Model.Load(zip, out _);
        var expected = cnn.Transform(images).GetColumn<float[]>("Score").ToArray();
        var actual = loaded.Transform(images).GetColumn<float[]>("Score").ToArray();
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            for (int c = 0; c < 2; c++) Assert.Equal(expected[i][c], actual[i][c], 1e-5f);
        Assert.Equal(cnn.Transform(images).GetColumn<uint>("PredictedLabel"), loaded.Transform(images).GetColumn<uint>("PredictedLabel"));

        // Its ONNX export takes the extracted pixels, named for the column they come from.
        string onnx = Path.Combine(_folder, "model.onnx");
        cnn.ExportToOnnx(onnx);
        Assert.Equal("Image.Pixels", Ml.Cnn.Onnx.Proto.ModelProto.Parser.ParseFrom(File.ReadAllBytes(onnx)).Graph.Input[0].Name);
    }

    [Fact]
    public void TheFeaturizerOfAnImageModelTakesImages()
    {
        var ml = new MLContext(seed: 1);
        var images = Images(ml);
        var options = Small();
        (options.FeatureColumnName, options.ImageHeight, options.ImageWidth) = ("Image", 4, 6);
        var cnn = ml.MulticlassClassification.Trainers.ConvolutionalNetwork(options).Fit(images);
        var photos = ml.Transforms.CopyColumns("Photo", "Image").Fit(images).Transform(images);
        var layer = cnn.Model.Network.Nodes[^2].Name;
        var features = ml.Transforms.CnnFeaturizer(cnn.Model, layer, "Embedding", "Photo").Fit(photos).Transform(photos);
        Assert.Equal(cnn.Model.Network.Nodes[^2].OutputShape.Length, features.GetColumn<float[]>("Embedding").First().Length);
    }

    [Fact]
    public void AnImageColumnOfAnySizeNeedsTheSizeStated()
    {
        var ml = new MLContext(seed: 1);
        var options = Small();
        options.FeatureColumnName = "Image";
        var error = Assert.Throws<ArgumentOutOfRangeException>(
            () => ml.MulticlassClassification.Trainers.ConvolutionalNetwork(options).Fit(Images(ml)));
        Assert.Contains("ImageHeight and ImageWidth", error.Message);
    }
}
