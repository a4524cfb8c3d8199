// Scores images with a model zip saved by the FashionMnist sample, in a program that does not reference Ml.Cnn:
//   dotnet run -c Release --project samples/FashionMnist          (writes fashion-mnist-output/model.zip)
//   dotnet run -c Release --project samples/ScoreModelZip -- fashion-mnist-output/model.zip
using Microsoft.ML;
using Microsoft.ML.Data;

string zip = args.Length > 0 ? args[0] : Path.Combine("fashion-mnist-output", "model.zip");
var ml = new MLContext();
var model = ml.Model.Load(zip, out var inputSchema);
Console.WriteLine($"Loaded {zip}; it expects: {string.Join(", ", inputSchema.Select(c => $"{c.Name} ({c.Type})"))}");

// Three synthetic 28×28 images: blank, a filled square, a vertical bar.
var images = new[]
{
    new Image { Features = new float[784] },
    new Image { Features = Enumerable.Range(0, 784).Select(i => i / 28 is > 5 and < 22 && i % 28 is > 5 and < 22 ? 0.8f : 0f).ToArray() },
    new Image { Features = Enumerable.Range(0, 784).Select(i => i % 28 is > 11 and < 16 ? 1f : 0f).ToArray() },
};
var engine = ml.Model.CreatePredictionEngine<Image, Prediction>(model);
foreach (var (image, name) in images.Zip(new[] { "blank", "square", "bar" }))
{
    var prediction = engine.Predict(image);
    Console.WriteLine($"{name,-7} → {prediction.PredictedLabel,-12} (probability {prediction.Score.Max():P1})");
}

internal sealed class Image
{
    [VectorType(784)]
    public float[] Features { get; set; } = [];

    public string Label { get; set; } = "";
}

internal sealed class Prediction
{
    public float[] Score { get; set; } = [];

    public string PredictedLabel { get; set; } = "";
}
