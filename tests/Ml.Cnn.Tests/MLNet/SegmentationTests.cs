using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Ml.Cnn.Data;
using Ml.Cnn.MLNet;
using Ml.Cnn.Tensors;
using Ml.Cnn.Training;
using Xunit;
using static Ml.Cnn.Tests.Support.Numerics;

namespace Ml.Cnn.Tests.MLNet;

/// <summary>
/// Semantic segmentation end to end on generated scenes (Fashion-MNIST items on a 48×32 canvas): the ML.NET trainer,
/// its columns, the evaluator, ONNX Runtime on two image sizes, and the model zip.
/// </summary>
public sealed class SegmentationTests : IDisposable
{
    private const int Height = 32, Width = 48, Classes = 11;
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "ml-cnn-segmentation-" + Guid.NewGuid().ToString("N"));

    public SegmentationTests() => Directory.CreateDirectory(_folder);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static readonly Lazy<ImageDataset> Items = new(() => Idx.LoadFromFolder(FashionData.Folder, "train"));

    internal static SceneGeneratorOptions Canvas(ulong seed) => new()
    {
        Width = Width, Height = Height, MinScale = 0.5f, MaxScale = 1f, MaxObjects = 3, Seed = seed,
    };

    private static IDataView Scenes(MLContext ml, int count, ulong seed) =>
        ml.Data.LoadFromScenes(SceneGenerator.Generate(Items.Value, count, Canvas(seed)), 1, Height, Width, Idx.FashionMnistClasses);

    private static CnnTrainerOptions Options(int epochs = 4) => new()
    {
        Architecture = "unet-small", Epochs = epochs, BatchSize = 16, Optimizer = OptimizerKind.Adam, LearningRate = 3e-3f, Threads = 2,
    };

    // One fit shared by the tests that only read it.
    private static readonly Lazy<(MLContext Ml, CnnSegmentationTransformer Model, IDataView Test)> Fitted = new(() =>
    {
        var ml = new MLContext(seed: 1);
        var model = ml.Segmentation().Trainers.ConvolutionalNetwork(Options()).Fit(Scenes(ml, 240, 1));
        return (ml, model, Scenes(ml, 40, 2));
    });

    [Fact]
    public void TrainsInAPipelineAndBeatsAnAllBackgroundAnswer()
    {
        var (ml, model, test) = Fitted.Value;
        var history = model.Model.Training!.History;
        Assert.True(history[^1].TrainingLoss < history[0].TrainingLoss * 0.8, $"loss {history[0].TrainingLoss} → {history[^1].TrainingLoss}");

        var scored = model.Transform(test);
        var predicted = (VectorDataViewType)scored.Schema["PredictedLabel"].Type;
        Assert.Equal(Height * Width, predicted.Size);
        Assert.Equal((ulong)Classes, ((KeyDataViewType)predicted.ItemType).Count);
        Assert.Equal(Classes * Height * Width, ((VectorDataViewType)scored.Schema["Score"].Type).Size);
        var keyValues = default(VBuffer<ReadOnlyMemory<char>>);
        scored.Schema["PredictedLabel"].GetKeyValues(ref keyValues);
        Assert.Equal("background", keyValues.GetValues()[0].ToString());

        var metrics = ml.Segmentation().Evaluate(scored);
        var truth = scored.GetColumn<uint[]>("Label").SelectMany(m => m).ToArray();
        double background = truth.Count(k => k == 1) / (double)truth.Length;
        Assert.True(metrics.PixelAccuracy > background + 0.02, $"pixel accuracy {metrics.PixelAccuracy:F4}, background share {background:F4}");
        Assert.True(metrics.PerClassIoU[0] > 0.8, $"background IoU {metrics.PerClassIoU[0]:F3}");
        Assert.Equal(truth.Length, metrics.LabelledPixels);
    }

    [Fact]
    public void ScoresArePerPixelProbabilitiesWhosePeaksAreThePredictedLabels()
    {
        var (_, model, test) = Fitted.Value;
        var scored = model.Transform(test);
        var scores = scored.GetColumn<float[]>("Score").Take(3).ToArray();
        var labels = scored.GetColumn<uint[]>("PredictedLabel").Take(3).ToArray();
        int pixels = Height * Width;
        for (int row = 0; row < scores.Length; row++)
            for (int p = 0; p < pixels; p += 97)
            {
                var probabilities = Enumerable.Range(0, Classes).Select(c => scores[row][c * pixels + p]).ToArray();
                Assert.Equal(1f, probabilities.Sum(), 4);
                Assert.Equal((uint)Array.IndexOf(probabilities, probabilities.Max()) + 1, labels[row][p]);
            }
    }

    [Fact]
    public void TheOnnxExportRunsInOnnxRuntimeOnTwoImageSizes()
    {
        var (_, model, _) = Fitted.Value;
        string path = Path.Combine(_folder, "segmenter.onnx");
        model.ExportToOnnx(path);
        using var session = new InferenceSession(path);
        var network = model.Model.Network;
        foreach (var (h, w) in new[] { (Height, Width), (64, 96) })
        {
            var x = RandomNormal(new Core.Rng(3), 2 * h * w, 0.5).Select(Math.Abs).ToArray();
            var input = new DenseTensor<float>(x, [2, 1, h, w]);
            using var results = session.Run([NamedOnnxValue.CreateFromTensor("Features", input)]);
            var theirs = results.Single().AsTensor<float>();
            Assert.Equal(new[] { 2, Classes, h, w }, theirs.Dimensions.ToArray());

            var output = network.Forward(TensorOf(network.Backend, x, 2, 1, h, w), training: false);
            var ours = network.Backend.Allocate(output.Shape);
            var logits = output.ToArray();
            var expected = new float[logits.Length];
            for (int n = 0; n < 2; n++)
                for (int p = 0; p < h * w; p++)
                {
                    int at = n * Classes * h * w + p;
                    float max = Enumerable.Range(0, Classes).Max(c => logits[at + c * h * w]);
                    float sum = Enumerable.Range(0, Classes).Sum(c => MathF.Exp(logits[at + c * h * w] - max));
                    for (int c = 0; c < Classes; c++) expected[at + c * h * w] = MathF.Exp(logits[at + c * h * w] - max) / sum;
                }
            AssertClose(expected, theirs.ToArray(), $"ONNX Runtime at {h}x{w}", rel: 1e-3, abs: 1e-4);
        }
        network.Resize(new TensorShape(1, Height, Width));
    }

    [Fact]
    public void TheModelZipLoadsAndPredictsTheSameMasks()
    {
        var (ml, model, test) = Fitted.Value;
        string zip = Path.Combine(_folder, "segmenter.zip");
        ml.Model.Save(model, test.Schema, zip);
        var loaded = new MLContext(seed: 2).Model.Load(zip, out _);
        var before = model.Transform(test).GetColumn<uint[]>("PredictedLabel").ToArray();
        var afterView = loaded.Transform(test);
        var after = afterView.GetColumn<uint[]>("PredictedLabel").ToArray();
        Assert.Equal(before.Length, after.Length);
        int differ = before.Zip(after).Sum(pair => pair.First.Zip(pair.Second).Count(p => p.First != p.Second));
        Assert.True(differ <= before.Length * Height * Width / 1000, $"{differ} pixels differ after reloading");
        var type = Assert.IsType<VectorDataViewType>(afterView.Schema["PredictedLabel"].Type);
        Assert.Equal((ulong)Classes, Assert.IsType<KeyDataViewType>(type.ItemType).Count);
        var keyValues = default(VBuffer<ReadOnlyMemory<char>>);
        afterView.Schema["PredictedLabel"].GetKeyValues(ref keyValues);
        Assert.Equal(["background", .. Idx.FashionMnistClasses], keyValues.DenseValues().Select(v => v.ToString()));
        Assert.Equal(ml.Segmentation().Evaluate(model.Transform(test)).MeanIoU, ml.Segmentation().Evaluate(afterView).MeanIoU, 2);
    }

    [Fact]
    public async Task TheSampleTrainsExportsReloadsAndRunsTheSlidingWindowBaseline()
    {
        string output = await Support.SampleProcess.Run("Ml.Cnn.Samples.Segmentation.dll", _folder, "2", "150", "30");
        string Line(string prefix) => output.Split('\n').Single(l => l.StartsWith(prefix, StringComparison.Ordinal));
        double After(string prefix, string marker)
        {
            var line = Line(prefix);
            int at = line.IndexOf(marker, StringComparison.Ordinal) + marker.Length;
            return double.Parse(line[at..].Split(' ', '%', ')')[0], System.Globalization.CultureInfo.InvariantCulture);
        }
        Assert.Equal(After("unet on 30 test scenes", "mean IoU "), After("model.zip reloaded", "mean IoU "));
        Assert.InRange(After("ONNX Runtime at 64×64", ": "), 99.9, 100);
        Assert.InRange(After("ONNX Runtime at 128×96", ": "), 99.9, 100);
        Assert.InRange(After("sliding window on 30 test scenes", "mean IoU "), 0, 1);
        Assert.True(new FileInfo(Path.Combine(_folder, "segmentation-examples.png")).Length > 1000);
    }

    [Fact]
    public void BadColumnsAndOptionsAreRefusedByName()
    {
        var ml = new MLContext(seed: 1);
        var scenes = Scenes(ml, 4, 5);
        var classifierArchitecture = Assert.Throws<ArgumentOutOfRangeException>(() =>
            ml.Segmentation().Trainers.ConvolutionalNetwork(new CnnTrainerOptions { Architecture = "resnet20" }));
        Assert.Contains("unet", classifierArchitecture.Message);

        var augmentation = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Segmentation().Trainers.ConvolutionalNetwork(
            new CnnTrainerOptions { Architecture = "unet", Augmentation = new Augmentation { HorizontalFlip = true, MaxRotationDegrees = 10 } }));
        Assert.Contains("MaxRotationDegrees", augmentation.Message);

        var textLabel = ml.Transforms.CopyColumns("Mask", "Features").Fit(scenes).Transform(scenes);
        var notKeys = Assert.Throws<ArgumentOutOfRangeException>(() =>
            ml.Segmentation().Trainers.ConvolutionalNetwork(new CnnTrainerOptions { Architecture = "unet", LabelColumnName = "Mask", Epochs = 1 })
                .Fit(textLabel));
        Assert.Contains("'Mask'", notKeys.Message);
        Assert.Contains("key", notKeys.Message);
    }
}

/// <summary>The evaluator's figures against hand-computed cases, and the scene generator's invariants.</summary>
public sealed class SegmentationMetricsAndScenesTests
{
    [Fact]
    public void IoUAndPixelAccuracyMatchAHandComputedCase()
    {
        // Truth and prediction over 3 classes, one ignored pixel (its prediction must not count).
        int[] truth = [0, 0, 0, 1, 1, 2, 2, ImageDataset.IgnoredLabel];
        int[] predicted = [0, 0, 1, 1, 2, 2, 2, 1];
        var m = SegmentationMetrics.Compute(truth, predicted, 3);
        // class 0: TP 2, FP 0, FN 1 → 2/3; class 1: TP 1, FP 1, FN 1 → 1/3; class 2: TP 2, FP 1, FN 0 → 2/3.
        Assert.Equal(2.0 / 3, m.PerClassIoU[0], 12);
        Assert.Equal(1.0 / 3, m.PerClassIoU[1], 12);
        Assert.Equal(2.0 / 3, m.PerClassIoU[2], 12);
        Assert.Equal(5.0 / 9, m.MeanIoU, 12);
        Assert.Equal(5.0 / 7, m.PixelAccuracy, 12);
        Assert.Equal(7, m.LabelledPixels);
        Assert.Equal(1, m.ConfusionMatrix[0, 1]);
    }

    [Fact]
    public void AClassNeitherLabelledNorPredictedHasNoIoUAndLeavesTheMeanAlone()
    {
        var m = SegmentationMetrics.Compute([0, 1, 1], [0, 1, 0], 4);
        Assert.True(double.IsNaN(m.PerClassIoU[2]) && double.IsNaN(m.PerClassIoU[3]));
        Assert.Equal((0.5 + 0.5) / 2, m.MeanIoU, 12);
        var e = Assert.Throws<ArgumentException>(() => SegmentationMetrics.Compute([0, 5], [0, 1], 4));
        Assert.Contains("True label 1 is 5", e.Message);
    }

    [Fact]
    public void ScenesAreDeterministicNonSquareAndTheirMasksLieInTheirBoxes()
    {
        var items = Idx.LoadFromFolder(FashionData.Folder, "t10k");
        var options = SegmentationTests.Canvas(seed: 7);
        var scenes = SceneGenerator.Generate(items, 30, options);
        var again = SceneGenerator.Generate(items, 30, options);
        Assert.Equal(scenes.SelectMany(s => s.Mask), again.SelectMany(s => s.Mask));
        Assert.NotEqual(scenes.SelectMany(s => s.Mask), SceneGenerator.Generate(items, 30, SegmentationTests.Canvas(seed: 8)).SelectMany(s => s.Mask));
        foreach (var scene in scenes)
        {
            Assert.InRange(scene.Objects.Count, 1, 3);
            Assert.Equal(48 * 32, scene.Mask.Length);
            for (int p = 0; p < scene.Mask.Length; p++)
            {
                if (scene.Mask[p] == 0) continue;
                int x = p % 48, y = p / 48;
                // A labelled pixel lies in the box of an object of its class, and shows the object's intensity.
                Assert.Contains(scene.Objects, o => o.Label + 1 == scene.Mask[p] && x >= o.X0 && x < o.X1 && y >= o.Y0 && y < o.Y1);
                Assert.True(scene.Image[p] > options.Threshold);
            }
            for (int i = 0; i < scene.Objects.Count; i++)
                for (int j = 0; j < i; j++)
                    Assert.True(scene.Objects[i].IoU(scene.Objects[j]) <= options.MaxOverlap);
        }
    }

    [Fact]
    public void ACanvasTooSmallForTheLargestItemIsRefused()
    {
        var items = Idx.LoadFromFolder(FashionData.Folder, "t10k");
        var e = Assert.Throws<ArgumentOutOfRangeException>(() =>
            SceneGenerator.Generate(items, 1, new SceneGeneratorOptions { Width = 32, Height = 32, MaxScale = 1.5f }));
        Assert.Contains("MaxScale", e.Message);
        Assert.Contains("42", e.Message);
    }
}
