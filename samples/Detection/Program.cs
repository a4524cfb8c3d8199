using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Data;
using Ml.Cnn.MLNet;
using Ml.Cnn.Training;
using Ml.Cnn.Zoo;
using SkiaSharp;

// Object detection as the lectures describe it: each object's bounding box and class. A single-stage, anchor-free
// detector (CenterNet: a heatmap of object centres per class, and each centre's offset and box size) trains on
// Fashion-MNIST items placed on a 64×64 canvas (SceneGenerator), in an ML.NET pipeline with the columns of ML.NET's
// own object-detection trainer (Labels, Box; PredictedLabel, Score, PredictedBoundingBoxes).
// Arguments: [output folder] [epochs] [training scenes] [test scenes] [Fashion-MNIST folder]
string output = Path.GetFullPath(args.Length > 0 ? args[0] : "detection-output");
int epochs = args.Length > 1 ? int.Parse(args[1]) : 15;
int trainCount = args.Length > 2 ? int.Parse(args[2]) : 2000;
int testCount = args.Length > 3 ? int.Parse(args[3]) : 300;
string source = args.Length > 4 ? args[4] : Path.Combine(AppContext.BaseDirectory, "data", "fashion-mnist-subset");
const int Size = 64;
Directory.CreateDirectory(output);

var trainScenes = SceneGenerator.Generate(Idx.LoadFromFolder(source, "train"), trainCount, new SceneGeneratorOptions { Seed = 1 });
var testScenes = SceneGenerator.Generate(Idx.LoadFromFolder(source, "t10k"), testCount, new SceneGeneratorOptions { Seed = 2 });
Console.WriteLine($"{trainCount} training and {testCount} test scenes of {Size}×{Size} ({source}); CPU: {CpuIsa.Describe()}");

var ml = new MLContext(seed: 1);
var train = ml.Data.LoadFromScenes(trainScenes, 1, Size, Size, Idx.FashionMnistClasses);
var test = ml.Data.LoadFromScenes(testScenes, 1, Size, Size, Idx.FashionMnistClasses);
var trainer = ml.ObjectDetection().Trainers.ConvolutionalNetwork(new CnnTrainerOptions
{
    Architecture = "centernet", LabelColumnName = "Labels", BoundingBoxColumnName = "Box", Epochs = epochs, BatchSize = 32,
    Optimizer = OptimizerKind.Adam, LearningRate = 2e-3f, Schedule = new LearningRateSchedule { Kind = ScheduleKind.Cosine },
    Augmentation = new Augmentation { HorizontalFlip = true }, // the boxes move with the images
});
var clock = Stopwatch.StartNew();
var model = trainer.Fit(train);
double seconds = clock.Elapsed.TotalSeconds;
Console.WriteLine($"centernet: {model.Model.Network.ParameterCount:N0} parameters, trained {epochs} epochs in {seconds:F0} s " +
    $"({trainCount * epochs / seconds:F0} img/s)");
foreach (var e in model.Model.Training!.History.Where(e => e.Epoch % Math.Max(1, epochs / 4) == 0 || e.Epoch == epochs))
    Console.WriteLine($"  epoch {e.Epoch}: loss {e.TrainingLoss:F3}");

clock.Restart();
var scored = model.Transform(test);
var metrics = ml.ObjectDetection().Evaluate(scored);
Console.WriteLine($"test: mAP@0.5 {metrics.MAP50:F3}, mAP@0.5:0.95 {metrics.MAP50_95:F3} over {metrics.TrueBoxes} boxes " +
    $"({testCount / clock.Elapsed.TotalSeconds:F0} img/s scored and decoded)");
Console.WriteLine("  AP@0.5 per class: " + string.Join(", ", Idx.FashionMnistClasses.Select((n, c) => $"{n} {metrics.PerClassAP50[c]:F2}")));

// The model zip, reloaded by ML.NET alone: the decoding runs inside its ONNX model.
string zip = Path.Combine(output, "model.zip");
ml.Model.SaveAtomically(model, train.Schema, zip);
var reloaded = new MLContext().Model.Load(zip, out _);
Console.WriteLine($"model.zip reloaded: mAP@0.5 {ml.ObjectDetection().Evaluate(reloaded.Transform(test)).MAP50:F3}");

// ONNX: the network for any image size; its output decodes to the same detections.
string onnx = Path.Combine(output, "detector.onnx");
model.ExportToOnnx(onnx);
using (var session = new InferenceSession(onnx))
{
    var wide = SceneGenerator.Generate(Idx.LoadFromFolder(source, "t10k"), 1, new SceneGeneratorOptions { Width = 128, Height = 96, Seed = 3, MaxObjects = 6 })[0];
    using var results = session.Run([NamedOnnxValue.CreateFromTensor("Features", new DenseTensor<float>(wide.Image, [1, 1, 96, 128]))]);
    var found = CenterNet.Decode(results.Single().AsTensor<float>().ToArray(), 10, 24, 32, ModelZoo.CenterNetStride, minScore: 0.3f);
    Console.WriteLine($"ONNX Runtime on a 128×96 scene with {wide.Objects.Count} items: {found.Count} detections above 0.3 — " +
        string.Join("; ", found.Select(d => $"{Idx.FashionMnistClasses[d.Box.Label]} {d.Score:F2} at ({d.Box.X0:F0}, {d.Box.Y0:F0})–({d.Box.X1:F0}, {d.Box.Y1:F0})")));
}

// Pictures: true boxes in green, detections scoring 0.3 or more in red.
var labels = scored.GetColumn<uint[]>("PredictedLabel").Take(6).ToArray();
var scores = scored.GetColumn<float[]>("Score").Take(6).ToArray();
var boxes = scored.GetColumn<float[]>("PredictedBoundingBoxes").Take(6).ToArray();
string picture = Path.Combine(output, "detection-examples.png");
WriteExamples(testScenes.Take(6).ToArray(), labels, scores, boxes, picture);
Console.WriteLine($"wrote {picture} (green: true boxes, red: detections scoring at least 0.3)");
return 0;

static void WriteExamples(Scene[] scenes, uint[][] labels, float[][] scores, float[][] boxes, string path)
{
    const int Scale = 4, Gap = 4;
    int tile = Size * Scale;
    using var bitmap = new SKBitmap(3 * tile + 2 * Gap, 2 * tile + Gap);
    using (var canvas = new SKCanvas(bitmap))
    {
        canvas.Clear(SKColors.White);
        using var truthPen = new SKPaint { Color = new SKColor(60, 200, 75), Style = SKPaintStyle.Stroke, StrokeWidth = 2 };
        using var detectionPen = new SKPaint { Color = new SKColor(230, 25, 75), Style = SKPaintStyle.Stroke, StrokeWidth = 2 };
        for (int i = 0; i < scenes.Length; i++)
        {
            float left = i % 3 * (tile + Gap), top = i / 3 * (tile + Gap);
            using var image = new SKBitmap(Size, Size, SKColorType.Gray8, SKAlphaType.Opaque);
            for (int p = 0; p < Size * Size; p++)
            {
                byte v = (byte)Math.Clamp(scenes[i].Image[p] * 255, 0, 255);
                image.SetPixel(p % Size, p / Size, new SKColor(v, v, v));
            }
            canvas.DrawBitmap(image, new SKRect(left, top, left + tile, top + tile));
            foreach (var o in scenes[i].Objects)
                canvas.DrawRect(new SKRect(left + o.X0 * Scale, top + o.Y0 * Scale, left + o.X1 * Scale, top + o.Y1 * Scale), truthPen);
            for (int d = 0; d < labels[i].Length; d++)
                if (scores[i][d] >= 0.3f)
                    canvas.DrawRect(new SKRect(left + boxes[i][4 * d] * Scale, top + boxes[i][4 * d + 1] * Scale,
                        left + boxes[i][4 * d + 2] * Scale, top + boxes[i][4 * d + 3] * Scale), detectionPen);
        }
    }
    using var png = bitmap.Encode(SKEncodedImageFormat.Png, 100);
    string temporary = path + ".tmp";
    File.WriteAllBytes(temporary, png.ToArray());
    File.Move(temporary, path, overwrite: true);
}
