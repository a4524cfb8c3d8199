using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Ml.Cnn.Data;
using Ml.Cnn.Training;
using Ml.Cnn.Zoo;

namespace Ml.Cnn.MLNet;

/// <summary>
/// Trains a single-stage, anchor-free object detector (CenterNet: objects as points) on images with boxes.
/// <list type="table">
/// <item><term>Machine learning task</term><description>Object detection</description></item>
/// <item><term>Input columns</term><description>Labels: vector of a key type, one key per object; Box: vector of Single,
/// x0, y0, x1, y1 in pixels per object (ML.NET's ObjectDetection convention); Features: known-size vector of Single (a CHW
/// image whose height and width divide by 8), or an image column (MLImage), resized and extracted by the model</description></item>
/// <item><term>Example weights</term><description>Not supported</description></item>
/// <item><term>Output columns</term><description>PredictedLabel: vector of the label's key type; Score: vector of Single;
/// PredictedBoundingBoxes: vector of Single, four values per detection (x0, y0, x1, y1)</description></item>
/// <item><term>Is normalization required?</term><description>No (optional per-channel standardization: NormalizeInputs)</description></item>
/// <item><term>Is caching required?</term><description>No: the training data is read into memory once</description></item>
/// <item><term>GPU</term><description>CUDA through Ml.Cnn.Gpu: set MLContext.GpuDeviceId (FallbackToCpu trains on the CPU when no device is usable)</description></item>
/// <item><term>ONNX export / model zip</term><description>ExportToOnnx writes the network (heatmaps and box maps, any
/// image size; decode with <c>CenterNet.Decode</c>); <c>mlContext.Model.Save</c> writes a zip that ML.NET loads without
/// Ml.Cnn, its decoding (peaks, NonMaxSuppression, TopK) inside the ONNX model</description></item>
/// </list>
/// Architectures: <see cref="ModelZoo.DetectionNames"/> or your own network ending in [classes + 4, H/4, W/4].
/// Flips move the boxes with the images; crops and rotation are refused.
/// </summary>
public sealed class CnnObjectDetectionTrainer : CnnTrainerBase<CnnObjectDetectionTransformer>
{
    internal CnnObjectDetectionTrainer(CnnTrainerOptions options, IHostEnvironment? environment = null)
        : base(options, environment, CnnTask.Detection)
    {
        if (options.Loss is not (null or LossKind.CenterNet))
            throw new ArgumentOutOfRangeException(nameof(options), options.Loss, "Object detection trains with the CenterNet loss.");
        TrainerOptions.Require(options.Augmentation is not { CropsOrRotates: true }, nameof(options.Augmentation), "crops or rotation",
            TrainerOptions.DetectionAugmentation);
    }

    /// <inheritdoc />
    public override CnnObjectDetectionTransformer Fit(IDataView input)
    {
        var (pixels, prepared, imageInput, images) = Prepare(input);
        var options = (CnnTrainerOptions)prepared.CopyForRun();
        options.Loss = LossKind.CenterNet;
        var data = DataViewReader.ReadDetection(pixels, options, ModelZoo.CenterNetStride, out int classes, out var imageShape);
        int validationClasses = classes;
        var validation = options.ValidationSet is null ? null
            : DataViewReader.ReadDetection(options.ValidationSet, options, ModelZoo.CenterNetStride, out validationClasses, out _);
        CnnTraining.CheckValidationKeys(Options.LabelColumnName, validationClasses, classes);
        var (network, result) = Train(options, data, validation, classes, imageShape);
        var label = input.Schema[Options.LabelColumnName];
        return new CnnObjectDetectionTransformer(new CnnModel(network, result.Normalization, result, imageInput), options.FeatureColumnName,
            (KeyDataViewType)((VectorDataViewType)label.Type).ItemType, label.Annotations, images);
    }

    /// <inheritdoc />
    public override SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        CnnTraining.CheckFeatures(inputSchema, Options.FeatureColumnName);
        var label = CnnTraining.Find(inputSchema, Options.LabelColumnName, "Label");
        if (label.Kind == SchemaShape.Column.VectorKind.Scalar || !label.IsKey)
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Label column '{Options.LabelColumnName}' must be a vector of a key type " +
                $"(one key per object), got {label.Kind} of {label.ItemType}.");
        CnnTraining.Find(inputSchema, Options.BoundingBoxColumnName, "Bounding-box");
        var added = new DataViewSchema.Builder();
        added.AddColumn("PredictedLabel", new VectorDataViewType(new KeyDataViewType(((PrimitiveDataViewType)label.ItemType).RawType, int.MaxValue)),
            SchemaShapeAdapter.PlaceholderAnnotations(label.Annotations.Select(a => (a.Name, a)).ToArray()));
        added.AddColumn("Score", new VectorDataViewType(NumberDataViewType.Single));
        added.AddColumn("PredictedBoundingBoxes", new VectorDataViewType(NumberDataViewType.Single));
        return SchemaShapeAdapter.Append(inputSchema, added.ToSchema());
    }
}

/// <summary>
/// A trained detector. Appends <c>PredictedLabel</c> (a key per detection), <c>Score</c> and
/// <c>PredictedBoundingBoxes</c> (x0, y0, x1, y1 per detection, in pixels), best first, after peak extraction and
/// non-maximum suppression (<see cref="CenterNet.Decode"/> with <see cref="MinScore"/>).
/// </summary>
public sealed class CnnObjectDetectionTransformer : ScoringTransformer, ISingleFeaturePredictionTransformer<CnnModel>
{
    private const int ScoringBatch = 32;

    internal CnnObjectDetectionTransformer(CnnModel model, string featureColumnName, KeyDataViewType labelType,
        DataViewSchema.Annotations labelAnnotations, ImageInput.Preparation? images)
    {
        Model = model;
        Images = images;
        var output = model.Network.OutputShape;
        Classes = output[0] - 4;
        List<Detection> Decode(ReadOnlyMemory<float> raw) =>
            CenterNet.Decode(raw.Span, Classes, output[1], output[2], ModelZoo.CenterNetStride, MinScore, MaxDetections, NmsIoU);
        Scorer = new BatchScorer(featureColumnName, model.ImageShape.Length, output.Length,
            [OutputColumn.Decoded("PredictedLabel", labelType, labelAnnotations, raw => Decode(raw).Select(d => (uint)d.Box.Label + 1).ToArray()),
             OutputColumn.Decoded("Score", NumberDataViewType.Single, null, raw => Decode(raw).Select(d => d.Score).ToArray()),
             OutputColumn.Decoded("PredictedBoundingBoxes", NumberDataViewType.Single, null,
                 raw => Decode(raw).SelectMany(d => new[] { d.Box.X0, d.Box.Y0, d.Box.X1, d.Box.Y1 }).ToArray())],
            (inputs, count, outputs) => model.Run(inputs, count, outputs, null), ScoringBatch, model.ImageShape.Dims);
    }

    /// <summary>The trained network and its input standardization.</summary>
    public CnnModel Model { get; }

    /// <summary>Object classes.</summary>
    public int Classes { get; }

    /// <summary>The lowest score a detection is reported with (0.05; mAP counts low-scoring detections too).</summary>
    public float MinScore { get; init; } = 0.05f;

    /// <summary>The most detections reported per image, best first (COCO's 100).</summary>
    public int MaxDetections { get; init; } = 100;

    /// <summary>The overlap (IoU) above which a detection of a class is suppressed by a better one of that class.</summary>
    public float NmsIoU { get; init; } = 0.5f;

    /// <summary>
    /// Writes the network as ONNX for any image size (sides divisible by 8): input named after the feature column,
    /// [N, C, H, W]; output <paramref name="outputName"/>, [N, classes + 4, H/4, W/4] heatmap logits and box values,
    /// which <see cref="CenterNet.Decode"/> turns into detections.
    /// </summary>
    public void ExportToOnnx(string path, string outputName = "output") =>
        Onnx.OnnxExporter.Export(Model.ScoringNetwork, path, appendSoftmax: false, Model.Normalization, Scorer.InputColumn, outputName,
            dynamicImageSize: true);

    private protected override BatchScorer Scorer { get; }

    private protected override void Release() => Model.Dispose();

    private protected override ImageInput.Preparation? Images { get; }

    private protected override ITransformer ToPersistable() =>
        ZipPersistence.Detector(Onnx.OnnxExporter.BuildDetectionRowScorer(Model.ScoringNetwork, Model.Normalization, Scorer.InputColumn,
            ModelZoo.CenterNetStride, MinScore, MaxDetections, NmsIoU, "Score", ZipPersistence.ClassIndexColumn, "PredictedBoundingBoxes"), Scorer);
}

/// <summary>
/// The object-detection task: <c>mlContext.ObjectDetection().Trainers.ConvolutionalNetwork(…)</c> and
/// <c>mlContext.ObjectDetection().Evaluate(predictions)</c>, with the columns of ML.NET's own object-detection trainer.
/// </summary>
public sealed class ObjectDetectionCatalog
{
    internal ObjectDetectionCatalog(MLContext context) => Trainers = new ObjectDetectionTrainers(context);

    /// <summary>The detection trainers.</summary>
    public ObjectDetectionTrainers Trainers { get; }

    /// <summary>
    /// mAP@0.5 and mAP@0.5:0.95 (COCO's definitions) of the predicted columns against the true labels and boxes, row by
    /// row. Labels are key vectors of one key count; boxes four values (x0, y0, x1, y1) per label.
    /// </summary>
    public ObjectDetectionMetrics Evaluate(IDataView data, string labelColumnName = "Labels", string boundingBoxColumnName = "Box",
        string predictedLabelColumnName = "PredictedLabel", string predictedBoundingBoxColumnName = "PredictedBoundingBoxes",
        string scoreColumnName = "Score")
    {
        ArgumentNullException.ThrowIfNull(data);
        var (truth, classes) = DataViewReader.ReadBoxes(data, labelColumnName, boundingBoxColumnName);
        var detections = DataViewReader.ReadDetections(data, predictedLabelColumnName, predictedBoundingBoxColumnName, scoreColumnName);
        return ObjectDetectionMetrics.Compute(truth, detections, classes);
    }

    /// <summary>The trainers of <see cref="ObjectDetectionCatalog"/>.</summary>
    public sealed class ObjectDetectionTrainers
    {
        private readonly MLContext _context;

        internal ObjectDetectionTrainers(MLContext context) => _context = context;

        /// <summary>A CenterNet detector (the zoo's "centernet"), trained from scratch.</summary>
        public CnnObjectDetectionTrainer ConvolutionalNetwork(string labelColumnName = "Labels", string boundingBoxColumnName = "Box",
            string featureColumnName = CnnTrainerOptions.Defaults.FeatureColumnName, int epochs = TrainerOptions.Defaults.Epochs) =>
            new(new CnnTrainerOptions
            {
                LabelColumnName = labelColumnName, BoundingBoxColumnName = boundingBoxColumnName, FeatureColumnName = featureColumnName,
                Architecture = "centernet", Epochs = epochs,
            }, _context);

        /// <summary>A detector with every option (Architecture names a detection network; LabelColumnName is usually "Labels").</summary>
        public CnnObjectDetectionTrainer ConvolutionalNetwork(CnnTrainerOptions options) =>
            new(options ?? throw new ArgumentNullException(nameof(options)), _context);
    }
}
