using Microsoft.ML;
using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Data;
using Ml.Cnn.MLNet;
using Ml.Cnn.Onnx;
using Ml.Cnn.Training;
using SkiaSharp;

// Transfer learning as a user does it: a network exported from PyTorch (torch.onnx.export), a folder of photos with
// one subfolder per class, an ML.NET pipeline that resizes the images to the network's input, standardizes them with
// ImageNet's statistics, replaces the head, freezes the early layers and fine-tunes; then evaluation and a model zip.
// Arguments: [output folder] [epochs] [images per class]
string output = Path.GetFullPath(args.Length > 0 ? args[0] : "transfer-learning-output");
int epochs = args.Length > 1 ? int.Parse(args[1]) : 6;
int perClass = args.Length > 2 ? int.Parse(args[2]) : 200;
string data = Path.Combine(AppContext.BaseDirectory, "data");

// The photos: T-shirts, trousers and bags of the embedded Fashion-MNIST subset written out as PNG files.
string[] classes = ["T-shirt", "Trouser", "Bag"];
int[] labels = [0, 1, 8];
var fashion = Idx.LoadFromFolder(Path.Combine(data, "fashion-mnist-subset"), "train");
foreach (var (set, skip) in new[] { ("train", 0), ("test", perClass) })
    for (int c = 0; c < classes.Length; c++)
    {
        string folder = Path.Combine(output, set, classes[c]);
        Directory.CreateDirectory(folder);
        var items = Enumerable.Range(0, fashion.Count).Where(i => (int)fashion.Targets[i] == labels[c]).Skip(skip).Take(set == "train" ? perClass : perClass / 2);
        foreach (int i in items) WritePng(fashion.GetItem(i), Path.Combine(folder, $"{i}.png"));
    }

// The pretrained network. Here it has random weights (nothing can be downloaded on this machine), so only its first
// blocks are frozen and the rest learns; with a real pretrained export, freeze all of "features" instead.
var ml = new MLContext(seed: 1);
var start = OnnxImporter.Import(Path.Combine(data, "mobilenet_v3_small.onnx"), new CpuBackend());
var trainer = ml.MulticlassClassification.Trainers.ConvolutionalNetwork(new CnnTrainerOptions
{
    FeatureColumnName = "Image", StartingNetwork = start, FrozenLayers = ["features.0", "features.1"],
    ImageChannels = 3, InputNormalization = ChannelNormalization.ImageNet,
    Epochs = epochs, BatchSize = 32, Optimizer = OptimizerKind.Adam, LearningRate = 2e-3f,
    Augmentation = new Augmentation { HorizontalFlip = true },
});
var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
    .Append(ml.Transforms.LoadImages("Image", imageFolder: null, inputColumnName: "ImagePath"))
    .Append(trainer)
    .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
var train = ml.Data.LoadFromImageFolder(Path.Combine(output, "train"));
var test = ml.Data.LoadFromImageFolder(Path.Combine(output, "test"));
Console.WriteLine($"Fine-tuning {start.Nodes.Count} imported layers ({start.ParameterCount:N0} parameters) on {classes.Length} classes, " +
    $"{perClass} images each, resized to {start.InputShape[1]}×{start.InputShape[2]}");
var model = pipeline.Fit(train);
var cnn = model.OfType<CnnMulticlassTransformer>().Single();
foreach (var e in cnn.Model.Training!.History) Console.WriteLine($"  epoch {e.Epoch}: training loss {e.TrainingLoss:F3}, accuracy {e.TrainingAccuracy:P1}");
var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
Console.WriteLine($"test accuracy {metrics.MicroAccuracy:P2} (chance {1.0 / classes.Length:P0}), log-loss {metrics.LogLoss:F3}");

string zip = Path.Combine(output, "model.zip");
ml.Model.SaveAtomically(model, train.Schema, zip);
var reloaded = new MLContext().Model.Load(zip, out _);
var again = ml.MulticlassClassification.Evaluate(reloaded.Transform(test));
Console.WriteLine($"model.zip reloaded: test accuracy {again.MicroAccuracy:P2}");
return 0;

static void WritePng(float[] pixels, string path)
{
    using var bitmap = new SKBitmap(28, 28, SKColorType.Gray8, SKAlphaType.Opaque);
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++)
        {
            byte v = (byte)Math.Clamp(pixels[y * 28 + x] * 255, 0, 255);
            bitmap.SetPixel(x, y, new SKColor(v, v, v));
        }
    using var png = bitmap.Encode(SKEncodedImageFormat.Png, 100);
    File.WriteAllBytes(path, png.ToArray());
}
