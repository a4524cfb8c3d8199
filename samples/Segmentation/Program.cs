using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Data;
using Ml.Cnn.MLNet;
using Ml.Cnn.Networks;
using Ml.Cnn.Tensors;
using Ml.Cnn.Training;
using Ml.Cnn.Zoo;
using SkiaSharp;

// Semantic segmentation as the lectures describe it: a fully convolutional network labels every pixel at once and
// takes images of any size; a sliding-window classifier, the slow and weak way, labels one window at a time.
// The scenes are Fashion-MNIST items placed on a 64×64 canvas (SceneGenerator); the mask gives each item's pixels its
// class + 1 and the rest background.
// Arguments: [output folder] [epochs] [training scenes] [test scenes] [architecture: unet | fcn8s] [Fashion-MNIST folder]
string output = Path.GetFullPath(args.Length > 0 ? args[0] : "segmentation-output");
int epochs = args.Length > 1 ? int.Parse(args[1]) : 12;
int trainCount = args.Length > 2 ? int.Parse(args[2]) : 2000;
int testCount = args.Length > 3 ? int.Parse(args[3]) : 300;
string architecture = args.Length > 4 ? args[4] : "unet";
string source = args.Length > 5 ? args[5] : Path.Combine(AppContext.BaseDirectory, "data", "fashion-mnist-subset");
const int Size = 64, Classes = 11;
Directory.CreateDirectory(output);
string[] names = ["background", .. Idx.FashionMnistClasses];

var trainItems = Idx.LoadFromFolder(source, "train");
var testItems = Idx.LoadFromFolder(source, "t10k");
var trainScenes = SceneGenerator.Generate(trainItems, trainCount, new SceneGeneratorOptions { Width = Size, Height = Size, Seed = 1 });
var testScenes = SceneGenerator.Generate(testItems, testCount, new SceneGeneratorOptions { Width = Size, Height = Size, Seed = 2 });
Console.WriteLine($"{trainCount} training and {testCount} test scenes of {Size}×{Size} from {trainItems.Count} and {testItems.Count} " +
    $"Fashion-MNIST items ({source}); CPU: {CpuIsa.Describe()}");

// ---- the fully convolutional network, in an ML.NET pipeline ----
var ml = new MLContext(seed: 1);
var train = ml.Data.LoadFromScenes(trainScenes, 1, Size, Size, Idx.FashionMnistClasses);
var test = ml.Data.LoadFromScenes(testScenes, 1, Size, Size, Idx.FashionMnistClasses);
var trainer = ml.Segmentation().Trainers.ConvolutionalNetwork(new CnnTrainerOptions
{
    Architecture = architecture, Epochs = epochs, BatchSize = 32, Optimizer = OptimizerKind.Adam, LearningRate = 2e-3f,
    Schedule = new LearningRateSchedule { Kind = ScheduleKind.Cosine },
    Augmentation = new Augmentation { HorizontalFlip = true, CropPadding = 4 }, // the masks move with the images
});
var clock = Stopwatch.StartNew();
var model = trainer.Fit(train);
double trainSeconds = clock.Elapsed.TotalSeconds;
var network = model.Model.Network;
Console.WriteLine($"{architecture}: {network.ParameterCount:N0} parameters, trained {epochs} epochs in {trainSeconds:F0} s " +
    $"({trainCount * epochs / trainSeconds:F0} img/s)");
foreach (var e in model.Model.Training!.History.Where(e => e.Epoch % Math.Max(1, epochs / 4) == 0 || e.Epoch == epochs))
    Console.WriteLine($"  epoch {e.Epoch}: loss {e.TrainingLoss:F3}, pixel accuracy {e.TrainingAccuracy:P1}");

clock.Restart();
var scored = model.Transform(test);
var metrics = ml.Segmentation().Evaluate(scored);
double fcnSeconds = clock.Elapsed.TotalSeconds;
PrintMetrics(architecture, metrics, fcnSeconds);

// ---- the same weights on images of another size (non-square) ----
var wide = SceneGenerator.Generate(testItems, 100, new SceneGeneratorOptions { Width = 128, Height = 96, Seed = 3, MaxObjects = 6 });
var wideSet = SceneGenerator.ToSegmentationSet(wide, 1, 96, 128, 10);
var wideScores = Trainer.Predict(network, wideSet, model.Model.Normalization, 32);
var wideMetrics = SegmentationMetrics.Compute(wideSet.Targets.Select(t => (int)t).ToArray(),
    SegmentationMetrics.PredictMasks(wideScores, Classes, 96 * 128), Classes);
Console.WriteLine($"the same network on 128×96 scenes (up to 6 items): pixel accuracy {wideMetrics.PixelAccuracy:P1}, mean IoU {wideMetrics.MeanIoU:F3}");

// ---- ONNX: one file for every image size, scored by ONNX Runtime ----
string onnx = Path.Combine(output, "segmenter.onnx");
model.ExportToOnnx(onnx);
using (var session = new InferenceSession(onnx))
    foreach (var (set, h, w) in new[] { (SceneGenerator.ToSegmentationSet(testScenes.Take(16).ToList(), 1, Size, Size, 10), Size, Size), (wideSet, 96, 128) })
    {
        int count = Math.Min(16, set.Count);
        var pixels = Enumerable.Range(0, count).SelectMany(set.GetItem).ToArray();
        using var results = session.Run([NamedOnnxValue.CreateFromTensor("Features", new DenseTensor<float>(pixels, [count, 1, h, w]))]);
        var theirs = SegmentationMetrics.PredictMasks(results.Single().AsTensor<float>().ToArray(), Classes, h * w);
        var ours = SegmentationMetrics.PredictMasks(Trainer.Predict(network, set.Subset(Enumerable.Range(0, count).ToArray()), null, 16), Classes, h * w);
        Console.WriteLine($"ONNX Runtime at {w}×{h}: {theirs.Zip(ours).Count(p => p.First == p.Second) / (double)ours.Length:P3} of pixels " +
            "get the class Ml.Cnn gives");
    }

// ---- the model zip, reloaded by ML.NET alone ----
string zip = Path.Combine(output, "model.zip");
ml.Model.SaveAtomically(model, train.Schema, zip);
var reloaded = new MLContext().Model.Load(zip, out _);
Console.WriteLine($"model.zip reloaded: mean IoU {ml.Segmentation().Evaluate(reloaded.Transform(test)).MeanIoU:F3}");

// ---- pictures: image, truth, prediction ----
var predictedMasks = scored.GetColumn<uint[]>("PredictedLabel").Take(6).Select(m => m.Select(k => (int)k - 1).ToArray()).ToArray();
string overlay = Path.Combine(output, "segmentation-examples.png");
WriteExamples(testScenes.Take(6).ToArray(), predictedMasks, overlay);
Console.WriteLine($"wrote {overlay} (columns: image, true mask, predicted mask)");

// ---- the sliding-window baseline: a CNN that classifies the pixel at the centre of a 28×28 window ----
const int Window = 28, Stride = 4;
var windows = WindowSet(trainScenes.Take(Math.Min(trainCount, 1500)).ToList(), perScene: 16, seed: 5);
var classifier = Network.Create(ModelZoo.Get("reference-cnn", Classes), new CpuBackend(), new TensorShape(1, Window, Window), seed: 1);
clock.Restart();
Trainer.Train(classifier, windows, new TrainerOptions { Epochs = 4, BatchSize = 64, Optimizer = OptimizerKind.Adam, LearningRate = 1e-3f, Seed = 1 });
double windowTrainSeconds = clock.Elapsed.TotalSeconds;
clock.Restart();
var slidingMasks = testScenes.SelectMany(scene => SlidingWindow(classifier, scene)).ToArray();
double slidingSeconds = clock.Elapsed.TotalSeconds;
var sliding = SegmentationMetrics.Compute(testScenes.SelectMany(s => s.Mask).ToArray(), slidingMasks, Classes);
Console.WriteLine($"sliding window ({Window}×{Window} windows every {Stride} pixels, {windows.Count} training windows, trained in " +
    $"{windowTrainSeconds:F0} s):");
PrintMetrics("sliding window", sliding, slidingSeconds);
Console.WriteLine($"summary: {architecture} mean IoU {metrics.MeanIoU:F3} at {testCount / fcnSeconds:F0} img/s; sliding window " +
    $"{sliding.MeanIoU:F3} at {testCount / slidingSeconds:F1} img/s");
return 0;

void PrintMetrics(string what, SegmentationMetrics m, double seconds)
{
    Console.WriteLine($"{what} on {testCount} test scenes: pixel accuracy {m.PixelAccuracy:P1}, mean IoU {m.MeanIoU:F3} " +
        $"({testCount / seconds:F1} img/s scored)");
    Console.WriteLine("  " + string.Join(", ", names.Select((n, c) => $"{n} {m.PerClassIoU[c]:F2}")));
}

// Windows cut from the training scenes, labelled by their centre pixel: half centred on objects, half anywhere.
static ImageDataset WindowSet(IReadOnlyList<Scene> scenes, int perScene, ulong seed)
{
    var rng = new Ml.Cnn.Core.Rng(seed);
    var features = new List<float>();
    var labels = new List<float>();
    foreach (var scene in scenes)
    {
        var objectPixels = Enumerable.Range(0, scene.Mask.Length).Where(p => scene.Mask[p] > 0).ToArray();
        for (int k = 0; k < perScene; k++)
        {
            int p = k % 2 == 0 && objectPixels.Length > 0 ? objectPixels[rng.NextInt(objectPixels.Length)] : rng.NextInt(scene.Mask.Length);
            features.AddRange(Crop(scene.Image, p / Size, p % Size));
            labels.Add(scene.Mask[p]);
        }
    }
    return new ImageDataset(new TensorShape(1, Window, Window), [.. features], [.. labels], classCount: Classes);
}

static float[] Crop(float[] image, int cy, int cx)
{
    var crop = new float[Window * Window];
    for (int y = 0; y < Window; y++)
        for (int x = 0; x < Window; x++)
        {
            int sy = cy - Window / 2 + y, sx = cx - Window / 2 + x;
            if (sy >= 0 && sy < Size && sx >= 0 && sx < Size) crop[y * Window + x] = image[sy * Size + sx];
        }
    return crop;
}

// One window per Stride×Stride cell, centred on it; the cell takes the window's class.
static int[] SlidingWindow(Network classifier, Scene scene)
{
    int cells = Size / Stride;
    var crops = new List<float>();
    for (int cy = 0; cy < cells; cy++)
        for (int cx = 0; cx < cells; cx++) crops.AddRange(Crop(scene.Image, cy * Stride + Stride / 2, cx * Stride + Stride / 2));
    var set = new ImageDataset(new TensorShape(1, Window, Window), [.. crops], new float[cells * cells], classCount: Classes);
    var scores = Trainer.Predict(classifier, set, null, 256);
    var mask = new int[Size * Size];
    for (int cell = 0; cell < cells * cells; cell++)
    {
        int label = Ml.Cnn.Core.Scores.ArgMax(scores.AsSpan(cell * Classes, Classes));
        for (int y = 0; y < Stride; y++)
            for (int x = 0; x < Stride; x++) mask[(cell / cells * Stride + y) * Size + cell % cells * Stride + x] = label;
    }
    return mask;
}

static void WriteExamples(Scene[] scenes, int[][] predicted, string path)
{
    const int Scale = 3, Gap = 4;
    SKColor[] palette = [new(0, 0, 0), new(230, 25, 75), new(60, 180, 75), new(255, 225, 25), new(0, 130, 200), new(245, 130, 48),
        new(145, 30, 180), new(70, 240, 240), new(240, 50, 230), new(210, 245, 60), new(250, 190, 212)];
    int tile = Size * Scale;
    using var bitmap = new SKBitmap(3 * tile + 2 * Gap, scenes.Length * (tile + Gap) - Gap);
    using (var canvas = new SKCanvas(bitmap)) canvas.Clear(SKColors.White);
    for (int row = 0; row < scenes.Length; row++)
        for (int y = 0; y < Size * Scale; y++)
            for (int x = 0; x < Size * Scale; x++)
            {
                int p = y / Scale * Size + x / Scale, top = row * (tile + Gap) + y;
                byte v = (byte)Math.Clamp(scenes[row].Image[p] * 255, 0, 255);
                bitmap.SetPixel(x, top, new SKColor(v, v, v));
                bitmap.SetPixel(tile + Gap + x, top, palette[scenes[row].Mask[p]]);
                bitmap.SetPixel(2 * (tile + Gap) + x, top, palette[predicted[row][p]]);
            }
    using var png = bitmap.Encode(SKEncodedImageFormat.Png, 100);
    string temporary = path + ".tmp";
    File.WriteAllBytes(temporary, png.ToArray());
    File.Move(temporary, path, overwrite: true);
}
