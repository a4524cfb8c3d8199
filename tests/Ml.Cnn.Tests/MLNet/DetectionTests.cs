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

/// <summary>CenterNet's encoding and decoding, COCO's mAP on hand-computed cases, and the detector in an ML.NET pipeline.</summary>
public sealed class DetectionTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "ml-cnn-detection-" + Guid.NewGuid().ToString("N"));

    public DetectionTests() => Directory.CreateDirectory(_folder);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void DecodingAPerfectOutputGivesBackTheEncodedBoxes()
    {
        ObjectBox[] boxes = [new(2, 3, 5, 21, 17), new(0, 30, 8, 47, 30), new(1, 10, 20, 18, 31)];
        const int classes = 3, h = 8, w = 12, stride = 4;
        var target = CenterNet.Encode(boxes, classes, h, w, stride);
        int plane = h * w;
        var output = new float[CenterNet.OutputChannels(classes) * plane];
        for (int c = 0; c < classes; c++)
            for (int p = 0; p < plane; p++) output[c * plane + p] = target[c * plane + p] > 0 ? 6 : -6;
        Array.Copy(target, classes * plane, output, classes * plane, 4 * plane);

        var detections = CenterNet.Decode(output, classes, h, w, stride);
        Assert.Equal(3, detections.Count);
        foreach (var box in boxes)
        {
            var d = Assert.Single(detections, d => d.Box.Label == box.Label);
            Assert.Equal(box.X0, d.Box.X0, 4);
            Assert.Equal(box.Y0, d.Box.Y0, 4);
            Assert.Equal(box.X1, d.Box.X1, 4);
            Assert.Equal(box.Y1, d.Box.Y1, 4);
            Assert.Equal(1 / (1 + MathF.Exp(-6)), d.Score, 5);
        }
    }

    [Fact]
    public void SuppressionKeepsTheBestOfOverlappingBoxesOfAClassOnly()
    {
        Detection[] detections = [new(new(0, 0, 0, 10, 10), 0.6f), new(new(0, 1, 1, 11, 11), 0.9f), new(new(1, 1, 1, 11, 11), 0.5f),
            new(new(0, 20, 20, 30, 30), 0.4f)];
        var kept = CenterNet.NonMaximumSuppression(detections, 0.5f);
        Assert.Equal([0.9f, 0.5f, 0.4f], kept.Select(d => d.Score));
    }

    private static IReadOnlyList<IReadOnlyList<T>> One<T>(params T[] items) => [items];

    [Fact]
    public void PerfectDetectionsScoreOne()
    {
        var truth = One(new ObjectBox(0, 0, 0, 10, 10), new ObjectBox(1, 5, 5, 20, 25));
        var m = ObjectDetectionMetrics.Compute(truth, One(new Detection(truth[0][0], 0.9f), new Detection(truth[0][1], 0.8f)), 2);
        Assert.Equal(1, m.MAP50, 12);
        Assert.Equal(1, m.MAP50_95, 12);
    }

    [Fact]
    public void APIsTheMeanOf101InterpolatedPrecisions()
    {
        // Two true boxes in two images; detections by score: hit (0.9), miss (0.8), hit (0.7).
        IReadOnlyList<IReadOnlyList<ObjectBox>> truth = [[new(0, 0, 0, 10, 10)], [new(0, 0, 0, 10, 10)]];
        IReadOnlyList<IReadOnlyList<Detection>> detections =
            [[new(new(0, 0, 0, 10, 10), 0.9f), new(new(0, 50, 50, 60, 60), 0.8f)], [new(new(0, 0, 0, 10, 10), 0.7f)]];
        // Precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1; made non-increasing: 1, 2/3, 2/3. Recalls 0…0.5 read 1 (51 of
        // them), 0.51…1 read 2/3 (50): AP = (51 + 50 · 2/3) / 101, as pycocotools computes it.
        var m = ObjectDetectionMetrics.Compute(truth, detections, 1);
        Assert.Equal((51 + 50 * 2.0 / 3) / 101, m.MAP50, 12);
    }

    [Fact]
    public void ABoxCountsAtTheThresholdsItsOverlapReaches()
    {
        // IoU 0.6 (a 10×10 box against one shifted by 2.5 pixels: 75/125): a hit at 0.5, 0.55 and 0.6 of the ten thresholds.
        var truth = One(new ObjectBox(0, 0, 0, 10, 10));
        var m = ObjectDetectionMetrics.Compute(truth, One(new Detection(new(0, 2.5f, 0, 12.5f, 10), 0.8f)), 1);
        Assert.Equal(0.6f, truth[0][0].IoU(new(0, 2.5f, 0, 12.5f, 10)), 6);
        Assert.Equal(1, m.MAP50, 12);
        Assert.Equal(0.3, m.MAP50_95, 12);
    }

    [Fact]
    public void AClassWithoutTrueBoxesIsLeftOutAndAWrongClassIsAMiss()
    {
        var truth = One(new ObjectBox(0, 0, 0, 10, 10));
        var m = ObjectDetectionMetrics.Compute(truth, One(new Detection(new(2, 0, 0, 10, 10), 0.9f)), 3);
        Assert.Equal(0, m.MAP50, 12);
        Assert.True(double.IsNaN(m.PerClassAP50[1]) && double.IsNaN(m.PerClassAP50[2]));
    }

    private static readonly Lazy<(MLContext Ml, CnnObjectDetectionTransformer Model, IDataView Test)> Fitted = new(() =>
    {
        var ml = new MLContext(seed: 1);
        var items = Idx.LoadFromFolder(FashionData.Folder, "train");
        IDataView Scenes(int count, ulong seed) => ml.Data.LoadFromScenes(SceneGenerator.Generate(items, count, SegmentationTests.Canvas(seed)),
            1, 32, 48, Idx.FashionMnistClasses);
        var model = ml.ObjectDetection().Trainers.ConvolutionalNetwork(new CnnTrainerOptions
        {
            Architecture = "centernet", LabelColumnName = "Labels", Epochs = 4, BatchSize = 16, Optimizer = OptimizerKind.Adam,
            LearningRate = 3e-3f, Threads = 2,
        }).Fit(Scenes(300, 1));
        return (ml, model, Scenes(60, 2));
    });

    [Fact]
    public void TrainsInAPipelineAndItsDetectionsAreScoredByTheEvaluator()
    {
        var (ml, model, test) = Fitted.Value;
        var history = model.Model.Training!.History;
        Assert.True(history[^1].TrainingLoss < history[0].TrainingLoss * 0.7, $"loss {history[0].TrainingLoss} → {history[^1].TrainingLoss}");
        var scored = model.Transform(test);
        var labels = scored.GetColumn<uint[]>("PredictedLabel").ToArray();
        var scores = scored.GetColumn<float[]>("Score").ToArray();
        var boxes = scored.GetColumn<float[]>("PredictedBoundingBoxes").ToArray();
        for (int row = 0; row < labels.Length; row++)
        {
            Assert.Equal(labels[row].Length, scores[row].Length);
            Assert.Equal(4 * labels[row].Length, boxes[row].Length);
            Assert.True(scores[row].Zip(scores[row].Skip(1)).All(p => p.First >= p.Second), "scores best first");
            Assert.All(labels[row], k => Assert.InRange(k, 1u, 10u));
        }
        var metrics = ml.ObjectDetection().Evaluate(scored);
        Assert.True(metrics.MAP50 > 0.05 && metrics.MAP50 >= metrics.MAP50_95, $"mAP@0.5 {metrics.MAP50}, mAP@0.5:0.95 {metrics.MAP50_95}");
        Assert.Equal(scored.GetColumn<uint[]>("Labels").Sum(l => l.Length), metrics.TrueBoxes);
    }

    [Fact]
    public void TheOnnxExportRunsInOnnxRuntimeOnTwoImageSizes()
    {
        var (ml, model, test) = Fitted.Value;
        string path = Path.Combine(_folder, "detector.onnx");
        model.ExportToOnnx(path);
        using var session = new InferenceSession(path);
        var network = model.Model.Network;
        foreach (var (h, w) in new[] { (32, 48), (64, 96) })
        {
            var x = RandomNormal(new Core.Rng(4), h * w, 0.5).Select(Math.Abs).ToArray();
            using var results = session.Run([NamedOnnxValue.CreateFromTensor("Features", new DenseTensor<float>(x, [1, 1, h, w]))]);
            var theirs = results.Single().AsTensor<float>();
            Assert.Equal(new[] { 1, 14, h / 4, w / 4 }, theirs.Dimensions.ToArray());
            Assert.Equal(["N", "", "out_H", "out_W"], session.OutputMetadata["output"].SymbolicDimensions);
            Assert.Equal(["N", "", "H", "W"], session.InputMetadata["Features"].SymbolicDimensions);
            AssertClose(network.Forward(TensorOf(network.Backend, x, 1, 1, h, w), training: false).ToArray(), theirs.ToArray(),
                $"ONNX Runtime at {h}x{w}", rel: 1e-3, abs: 1e-4);
        }
    }

    [Fact]
    public void AModelZipDecodesInsideOnnxAndReloadsWithoutMlCnnGivingTheSameDetections()
    {
        var (ml, model, test) = Fitted.Value;
        string zip = Path.Combine(_folder, "detector.zip");
        model.Model.Network.Resize(new TensorShape(1, 64, 96)); // the zip holds the trained size whatever the network last ran
        ml.Model.Save(model, test.Schema, zip);
        var loaded = new MLContext(seed: 2).Model.Load(zip, out _);
        Assert.DoesNotContain(Transformers(loaded), t => t.GetType().Assembly == typeof(CnnModel).Assembly);
        var (ours, theirs) = (model.Transform(test), loaded.Transform(test));
        Assert.Equal(((VectorDataViewType)ours.Schema["PredictedLabel"].Type).ItemType, ((VectorDataViewType)theirs.Schema["PredictedLabel"].Type).ItemType);
        var names = default(VBuffer<ReadOnlyMemory<char>>);
        theirs.Schema["PredictedLabel"].GetKeyValues(ref names);
        Assert.Equal(Idx.FashionMnistClasses, names.DenseValues().Select(n => n.ToString()));
        var (labels, scores, boxes) = (ours.GetColumn<uint[]>("PredictedLabel").ToArray(), ours.GetColumn<float[]>("Score").ToArray(),
            ours.GetColumn<float[]>("PredictedBoundingBoxes").ToArray());
        var (zipLabels, zipScores, zipBoxes) = (theirs.GetColumn<uint[]>("PredictedLabel").ToArray(), theirs.GetColumn<float[]>("Score").ToArray(),
            theirs.GetColumn<float[]>("PredictedBoundingBoxes").ToArray());
        Assert.True(labels.Sum(l => l.Length) > labels.Length, "a few detections per image");
        for (int row = 0; row < labels.Length; row++)
        {
            Assert.Equal(labels[row], zipLabels[row]);
            AssertClose(scores[row], zipScores[row], $"row {row} scores", rel: 1e-4, abs: 1e-5);
            AssertClose(boxes[row], zipBoxes[row], $"row {row} boxes", rel: 1e-4, abs: 1e-3);
        }
    }

    [Fact]
    public async Task TheSampleTrainsEvaluatesExportsAndDrawsItsDetections()
    {
        string output = await Support.SampleProcess.Run("Ml.Cnn.Samples.Detection.dll", _folder, "2", "150", "30");
        Assert.Contains("test: mAP@0.5 ", output);
        Assert.Contains("ONNX Runtime on a 128×96 scene", output);
        Assert.True(new FileInfo(Path.Combine(_folder, "detection-examples.png")).Length > 1000);
        Assert.True(File.Exists(Path.Combine(_folder, "detector.onnx")));
        Assert.Contains("model.zip reloaded: mAP@0.5 ", output);
    }

    [Fact]
    public void BoxesThatDoNotFitTheirLabelsAndGeometricAugmentationAreRefused()
    {
        var ml = new MLContext(seed: 1);
        var augmentation = Assert.Throws<ArgumentOutOfRangeException>(() => ml.ObjectDetection().Trainers.ConvolutionalNetwork(
            new CnnTrainerOptions { Architecture = "centernet", Augmentation = new Augmentation { HorizontalFlip = true, MaxRotationDegrees = 5 } }));
        Assert.Contains("must not crop or rotate", augmentation.Message);
        var rows = new[] { new BoxRow { Features = new float[32 * 48], Labels = [1, 2], Box = [0, 0, 5, 5] } };
        var schema = SchemaDefinition.Create(typeof(BoxRow));
        schema["Features"].ColumnType = new VectorDataViewType(NumberDataViewType.Single, 1, 32, 48);
        schema["Labels"].ColumnType = new VectorDataViewType(new KeyDataViewType(typeof(uint), 3));
        var e = Assert.Throws<InvalidOperationException>(() => ml.ObjectDetection().Trainers.ConvolutionalNetwork(epochs: 1)
            .Fit(ml.Data.LoadFromEnumerable(rows, schema)));
        Assert.Contains("2 labels in 'Labels' need 8 box values in 'Box'", e.Message);
    }

    [Fact]
    public void TheOnnxDecodingAgreesWithDecodeAtOtherSettingsAndReturnsNothingWhenNothingScores()
    {
        var (_, model, _) = Fitted.Value;
        var network = model.Model.ScoringNetwork;
        var scenes = SceneGenerator.Generate(Idx.LoadFromFolder(FashionData.Folder, "t10k"), 4, SegmentationTests.Canvas(9));
        var raw = network.Forward(TensorOf(network.Backend, scenes.SelectMany(s => s.Image).ToArray(), 4, 1, 32, 48), training: false).ToArray();
        int plane = 14 * 8 * 12;
        foreach (var (minScore, maxDetections, iou) in new[] { (0.01f, 3, 0.3f), (0.2f, 100, 1f), (2f, 100, 0.5f) })
        {
            var onnx = Ml.Cnn.Onnx.OnnxExporter.BuildDetectionRowScorer(network, model.Model.Normalization, "Features", 4, minScore, maxDetections, iou,
                "Score", "Class", "Boxes");
            using var session = new InferenceSession(Google.Protobuf.MessageExtensions.ToByteArray(onnx));
            for (int i = 0; i < scenes.Count; i++)
            {
                var expected = CenterNet.Decode(raw.AsSpan(i * plane, plane), 10, 8, 12, 4, minScore, maxDetections, iou);
                using var results = session.Run([NamedOnnxValue.CreateFromTensor("Features", new DenseTensor<float>(scenes[i].Image, [32 * 48]))]);
                var outputs = results.ToDictionary(r => r.Name, r => r.AsTensor<float>().ToArray());
                string context = $"scene {i}, min score {minScore}, at most {maxDetections}, IoU {iou}";
                Assert.Equal(expected.Select(d => (float)d.Box.Label), outputs["Class"]);
                AssertClose(expected.Select(d => d.Score).ToArray(), outputs["Score"], context, rel: 1e-4, abs: 1e-5);
                AssertClose(expected.SelectMany(d => new[] { d.Box.X0, d.Box.Y0, d.Box.X1, d.Box.Y1 }).ToArray(), outputs["Boxes"], context,
                    rel: 1e-4, abs: 1e-3);
                if (minScore > 1) Assert.Empty(outputs["Score"]);
                else Assert.NotEmpty(outputs["Score"]);
            }
        }
    }

    private static IEnumerable<ITransformer> Transformers(ITransformer transformer) =>
        transformer is IEnumerable<ITransformer> chain ? chain.SelectMany(Transformers) : [transformer];

    private static IDataView BoxRows(MLContext ml, int keys, params (uint[] Labels, float[] Box)[] objects)
    {
        var schema = SchemaDefinition.Create(typeof(BoxRow));
        schema["Features"].ColumnType = new VectorDataViewType(NumberDataViewType.Single, 1, 32, 48);
        schema["Labels"].ColumnType = new VectorDataViewType(new KeyDataViewType(typeof(uint), keys));
        return ml.Data.LoadFromEnumerable(objects.Select(o => new BoxRow { Features = new float[32 * 48], Labels = o.Labels, Box = o.Box }), schema);
    }

    [Fact]
    public void AnEmptyBoxInTheTrainingDataIsRefusedWithItsRow()
    {
        var ml = new MLContext(seed: 1);
        var data = BoxRows(ml, 3, ([1], [0, 0, 8, 8]), ([2], [4, 4, 4, 12]));
        var e = Assert.Throws<InvalidOperationException>(() => ml.ObjectDetection().Trainers.ConvolutionalNetwork(epochs: 1).Fit(data));
        Assert.Contains("Row 1", e.Message);
        Assert.Contains("(4, 4, 4, 12), which is empty", e.Message);
    }

    [Fact]
    public void AnImageSizeTheZooDetectorCannotMapIsRefusedWithBothSizes()
    {
        var ml = new MLContext(seed: 1);
        var schema = SchemaDefinition.Create(typeof(BoxRow));
        schema["Features"].ColumnType = new VectorDataViewType(NumberDataViewType.Single, 1, 36, 44);
        schema["Labels"].ColumnType = new VectorDataViewType(new KeyDataViewType(typeof(uint), 3));
        var data = ml.Data.LoadFromEnumerable([new BoxRow { Features = new float[36 * 44], Labels = [1], Box = [0, 0, 8, 8] }], schema);
        var e = Assert.ThrowsAny<ArgumentException>(() => ml.ObjectDetection().Trainers.ConvolutionalNetwork(epochs: 1).Fit(data));
        Assert.Contains("does not fit images of [1, 36, 44]", e.Message);
    }

    [Fact]
    public void AValidationSetWithAnotherKeyCountIsRefused()
    {
        var ml = new MLContext(seed: 1);
        var trainer = ml.ObjectDetection().Trainers.ConvolutionalNetwork(new CnnTrainerOptions
        {
            Architecture = "centernet", LabelColumnName = "Labels", Epochs = 1, ValidationSet = BoxRows(ml, 4, ([1], [0, 0, 8, 8])),
        });
        var e = Assert.Throws<ArgumentException>(() => trainer.Fit(BoxRows(ml, 3, ([1], [0, 0, 8, 8]))));
        Assert.Contains("has 4 keys, the training data's 3", e.Message);
    }

    [Fact]
    public void TheCoreTrainerRefusesGeometricAugmentationForADetector()
    {
        var target = CenterNet.Encode([new ObjectBox(0, 2, 2, 10, 12)], 2, 4, 4, 4);
        var data = new ImageDataset(new TensorShape(1, 16, 16), new float[16 * 16], target, target.Length);
        var network = Ml.Cnn.Networks.Network.Create(Zoo.ModelZoo.CenterNetDetector(2, 4), new Backends.Cpu.CpuBackend(1), new TensorShape(1, 16, 16));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Trainer.Train(network, data, new TrainerOptions
        {
            Loss = LossKind.CenterNet, Epochs = 1, Augmentation = new Augmentation { CropPadding = 2 },
        }));
        Assert.Contains("must not crop or rotate", e.Message);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AFlippedTargetIsTheTargetOfTheFlippedBoxes(bool horizontal)
    {
        // Centres off the cell borders (one on a border stays in the mirrored cell with offset 1; Encode moves it on).
        ObjectBox[] boxes = [new(2, 3, 5, 22, 17), new(0, 30, 8, 46.5f, 30), new(1, 10, 20, 18, 31)];
        const int classes = 3, h = 8, w = 12, stride = 4;
        var flipped = CenterNet.Encode(boxes, classes, h, w, stride);
        CenterNet.Flip(flipped, classes, h, w, horizontal);
        var mirrored = boxes.Select(b => horizontal ? new ObjectBox(b.Label, w * stride - b.X1, b.Y0, w * stride - b.X0, b.Y1)
            : new ObjectBox(b.Label, b.X0, h * stride - b.Y1, b.X1, h * stride - b.Y0)).ToArray();
        AssertClose(CenterNet.Encode(mirrored, classes, h, w, stride), flipped, "flipped target", rel: 1e-6, abs: 1e-5);
    }

    [Fact]
    public void AugmentationFlipsADetectorsTargetWithItsImage()
    {
        const int classes = 2, h = 4, w = 6, stride = 4;
        var target = CenterNet.Encode([new ObjectBox(1, 1, 2, 9, 7)], classes, h, w, stride);
        var augmentation = new Augmentation { HorizontalFlip = true };
        var rng = new Core.Rng(3);
        int flips = 0;
        for (int trial = 0; trial < 8; trial++)
        {
            var image = new float[h * stride * w * stride];
            image[0] = 1; // the top-left pixel shows whether the image was mirrored
            var moved = (float[])target.Clone();
            augmentation.Apply(image, new float[image.Length], 1, h * stride, w * stride, rng, moved, classes, stride);
            var expected = (float[])target.Clone();
            if (image[0] == 0)
            {
                flips++;
                CenterNet.Flip(expected, classes, h, w, horizontal: true);
            }
            Assert.Equal(expected, moved);
        }
        Assert.InRange(flips, 1, 7);
    }

    [Fact]
    public void FlipsTrainADetector()
    {
        var ml = new MLContext(seed: 1);
        var data = BoxRows(ml, 3, ([1], [0, 0, 8, 8]), ([2, 3], [4, 4, 12, 20, 20, 8, 40, 30]));
        var model = ml.ObjectDetection().Trainers.ConvolutionalNetwork(new CnnTrainerOptions
        {
            Architecture = "centernet", LabelColumnName = "Labels", Epochs = 2, BatchSize = 2,
            Augmentation = new Augmentation { HorizontalFlip = true, VerticalFlip = true },
        }).Fit(data);
        Assert.Equal(2, model.Model.Training!.History.Count);
    }

    [Fact]
    public void DecodingRefusesAnOutputThatIsNotFinite()
    {
        const int classes = 2, h = 4, w = 6;
        var output = new float[CenterNet.OutputChannels(classes) * h * w];
        output[h * w + 2 * w + 3] = float.NaN;
        var e = Assert.Throws<ArgumentException>(() => CenterNet.Decode(output, classes, h, w, 4));
        Assert.Contains("NaN at channel 1, cell (2, 3)", e.Message);
        output[h * w + 2 * w + 3] = 0;
        output[^1] = float.PositiveInfinity;
        Assert.Throws<ArgumentException>(() => CenterNet.Decode(output, classes, h, w, 4));
    }

    private sealed class BoxRow
    {
        public float[] Features { get; set; } = [];
        public uint[] Labels { get; set; } = [];
        public float[] Box { get; set; } = [];
    }
}
