using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Ml.Cnn.Data;
using Ml.Cnn.Training;

namespace Ml.Cnn.MLNet;

/// <summary>
/// Trains a fully convolutional network that labels every pixel of an image (semantic segmentation).
/// <list type="table">
/// <item><term>Machine learning task</term><description>Semantic segmentation</description></item>
/// <item><term>Input columns</term><description>Label: known-size vector of a key type, one key per pixel in row-major
/// order (H·W; key 0, missing, marks pixels that do not count); Features: known-size vector of Single (a CHW image), or
/// an image column (MLImage, from LoadImages), resized and extracted by the model itself</description></item>
/// <item><term>Example weights</term><description>Not supported</description></item>
/// <item><term>Output columns</term><description>PredictedLabel: vector of the label's key type (H·W); Score: vector
/// of Single, the class probabilities of every pixel (classes × H × W)</description></item>
/// <item><term>Is normalization required?</term><description>No (optional per-channel standardization: NormalizeInputs)</description></item>
/// <item><term>Is caching required?</term><description>No: the training data is read into memory once</description></item>
/// <item><term>GPU</term><description>CUDA through Ml.Cnn.Gpu: set MLContext.GpuDeviceId (FallbackToCpu trains on the CPU when no device is usable)</description></item>
/// <item><term>ONNX export / model zip</term><description>Yes: <c>ExportToOnnx</c> writes a model of any image size;
/// <c>mlContext.Model.Save</c> stores the network as ONNX inside the zip, loadable without Ml.Cnn</description></item>
/// </list>
/// Architectures: <see cref="Zoo.ModelZoo.SegmentationNames"/> ("unet", "fcn8s") or a network of your own through
/// <see cref="CnnTrainerOptions.Network"/>, given the class count and ending in [classes, H, W] scores.
/// Augmentation moves the masks with the images (flips, crops; pixels shifted in are not counted); rotation is refused.
/// </summary>
public sealed class CnnSegmentationTrainer : CnnTrainerBase<CnnSegmentationTransformer>
{
    internal CnnSegmentationTrainer(CnnTrainerOptions options, IHostEnvironment? environment = null)
        : base(options, environment, CnnTask.Segmentation)
    {
        if (options.Loss is not (null or LossKind.PixelSoftmaxCrossEntropy))
            throw new ArgumentOutOfRangeException(nameof(options), options.Loss, "Segmentation trains with PixelSoftmaxCrossEntropy.");
        TrainerOptions.Require(options.Augmentation is not { MaxRotationDegrees: > 0 }, "Augmentation.MaxRotationDegrees",
            options.Augmentation?.MaxRotationDegrees ?? 0, "must be 0 for segmentation (rotating would blend pixel labels; flips and crops move them)");
    }

    /// <inheritdoc />
    public override CnnSegmentationTransformer Fit(IDataView input)
    {
        var (pixels, options, imageInput, images) = Prepare(input);
        var data = DataViewReader.ReadSegmentation(pixels, options, out int classes, out var imageShape);
        var validation = options.ValidationSet is null ? null : DataViewReader.ReadSegmentation(options.ValidationSet, options, out _, out _);
        CnnTraining.CheckValidationKeys(Options.LabelColumnName, validation?.ClassCount ?? classes, classes);
        var (network, result) = Train(options, data, validation, classes, imageShape);
        var label = input.Schema[Options.LabelColumnName];
        return new CnnSegmentationTransformer(new CnnModel(network, result.Normalization, result, imageInput), options.FeatureColumnName,
            (KeyDataViewType)((VectorDataViewType)label.Type).ItemType, label.Annotations, images);
    }

    /// <inheritdoc />
    public override SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        CnnTraining.CheckFeatures(inputSchema, Options.FeatureColumnName);
        var label = CnnTraining.Find(inputSchema, Options.LabelColumnName, "Label");
        if (label.Kind != SchemaShape.Column.VectorKind.Vector || !label.IsKey)
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Label column '{Options.LabelColumnName}' must be a known-size vector of " +
                $"a key type (one key per pixel), got {label.Kind} of {label.ItemType}.");
        var added = new DataViewSchema.Builder();
        added.AddColumn("PredictedLabel", new VectorDataViewType(new KeyDataViewType(((PrimitiveDataViewType)label.ItemType).RawType, int.MaxValue), 1),
            SchemaShapeAdapter.PlaceholderAnnotations(label.Annotations.Select(a => (a.Name, a)).ToArray()));
        added.AddColumn("Score", new VectorDataViewType(NumberDataViewType.Single, 1));
        return SchemaShapeAdapter.Append(inputSchema, added.ToSchema());
    }
}

/// <summary>
/// A trained segmentation network. Appends <c>PredictedLabel</c> (one key of the label's type per pixel) and
/// <c>Score</c> (per-pixel class probabilities, classes × H × W). The network itself (<see cref="Model"/>) runs on
/// any image size its strides divide; the columns have the training images' size.
/// </summary>
public sealed class CnnSegmentationTransformer : ScoringTransformer, ISingleFeaturePredictionTransformer<CnnModel>
{
    private const int ScoringBatch = 32;

    internal CnnSegmentationTransformer(CnnModel model, string featureColumnName, KeyDataViewType labelType,
        DataViewSchema.Annotations labelAnnotations, ImageInput.Preparation? images)
    {
        Model = model;
        Images = images;
        int classes = model.Network.OutputShape[0], pixels = model.Network.OutputShape[1] * model.Network.OutputShape[2];
        Scorer = new BatchScorer(featureColumnName, model.ImageShape.Length, classes * pixels,
            [OutputColumn.PixelArgMaxKeys("PredictedLabel", labelType, labelAnnotations, classes, pixels),
             OutputColumn.PixelProbabilities("Score", classes, pixels)],
            (inputs, count, outputs) => model.Run(inputs, count, outputs, null), ScoringBatch, model.ImageShape.Dims);
    }

    /// <summary>The trained network and its input standardization.</summary>
    public CnnModel Model { get; }

    /// <summary>
    /// Writes the network as ONNX for any image size: input named after the feature column, [N, C, H, W] with H and
    /// W free; output <paramref name="outputName"/>, [N, classes, H, W] per-pixel class probabilities.
    /// </summary>
    public void ExportToOnnx(string path, string outputName = "Score") =>
        Onnx.OnnxExporter.Export(Model.ScoringNetwork, path, appendSoftmax: true, Model.Normalization, Scorer.InputColumn, outputName,
            dynamicImageSize: true);

    private protected override BatchScorer Scorer { get; }

    private protected override void Release() => Model.Dispose();

    private protected override ImageInput.Preparation? Images { get; }

    private protected override ITransformer ToPersistable() =>
        ZipPersistence.Segmenter(
            Onnx.OnnxExporter.BuildRowScorer(Model.ScoringNetwork, Model.Normalization, Scorer.InputColumn, Model.Network.Nodes[^1].Name,
                Onnx.OnnxExporter.RowOutputs.PixelProbabilitiesAndClassIndices, "Score", ZipPersistence.ClassIndexColumn),
            Scorer);
}

/// <summary>
/// The segmentation task in ML.NET's shape: <c>mlContext.Segmentation().Trainers.ConvolutionalNetwork(…)</c> and
/// <c>mlContext.Segmentation().Evaluate(predictions)</c>, as <c>mlContext.MulticlassClassification</c> has for labels.
/// </summary>
public sealed class SegmentationCatalog
{
    internal SegmentationCatalog(MLContext context) => Trainers = new SegmentationTrainers(context);

    /// <summary>The segmentation trainers.</summary>
    public SegmentationTrainers Trainers { get; }

    /// <summary>
    /// Pixel accuracy, per-class and mean IoU of <paramref name="predictedLabelColumnName"/> against
    /// <paramref name="labelColumnName"/> over every row (both key vectors of one length; label key 0 is not counted).
    /// </summary>
    public SegmentationMetrics Evaluate(IDataView data, string labelColumnName = "Label", string predictedLabelColumnName = "PredictedLabel")
    {
        ArgumentNullException.ThrowIfNull(data);
        var (truth, predicted, classes) = DataViewReader.ReadMaskPairs(data, labelColumnName, predictedLabelColumnName);
        return SegmentationMetrics.Compute(truth, predicted, classes);
    }

    /// <summary>The trainers of <see cref="SegmentationCatalog"/>.</summary>
    public sealed class SegmentationTrainers
    {
        private readonly MLContext _context;

        internal SegmentationTrainers(MLContext context) => _context = context;

        /// <summary>A fully convolutional segmentation network (by default the zoo's "unet"), trained from scratch.</summary>
        public CnnSegmentationTrainer ConvolutionalNetwork(string labelColumnName = CnnTrainerOptions.Defaults.LabelColumnName,
            string featureColumnName = CnnTrainerOptions.Defaults.FeatureColumnName, string architecture = "unet",
            int epochs = TrainerOptions.Defaults.Epochs) =>
            new(new CnnTrainerOptions { LabelColumnName = labelColumnName, FeatureColumnName = featureColumnName, Architecture = architecture, Epochs = epochs },
                _context);

        /// <summary>A fully convolutional segmentation network with every option (Architecture names a segmentation network).</summary>
        public CnnSegmentationTrainer ConvolutionalNetwork(CnnTrainerOptions options) =>
            new(options ?? throw new ArgumentNullException(nameof(options)), _context);
    }
}
