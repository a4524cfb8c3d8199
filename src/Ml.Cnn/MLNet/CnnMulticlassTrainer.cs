using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Ml.Cnn.Training;

namespace Ml.Cnn.MLNet;

/// <summary>
/// Trains a convolutional network for multiclass classification of images.
/// <list type="table">
/// <item><term>Machine learning task</term><description>Multiclass classification</description></item>
/// <item><term>Input columns</term><description>Label: key type (MapValueToKey); Features: known-size vector of Single (a CHW image), or an
/// image column (MLImage, from LoadImages), resized and extracted by the model itself</description></item>
/// <item><term>Example weights</term><description>Not supported (no exampleWeightColumnName): resample or repeat rows to weight them</description></item>
/// <item><term>Output columns</term><description>Score: vector of Single class probabilities; PredictedLabel: the label's key type</description></item>
/// <item><term>Is normalization required?</term><description>No (optional per-channel standardization: NormalizeInputs)</description></item>
/// <item><term>Is caching required?</term><description>No: the training data is read into memory once</description></item>
/// <item><term>GPU</term><description>CUDA through Ml.Cnn.Gpu: set MLContext.GpuDeviceId (FallbackToCpu trains on the CPU when no device is usable); else the CPU backend, AVX-512, AVX2 or 128-bit SIMD on all cores</description></item>
/// <item><term>ONNX export / model zip</term><description>Yes: <c>Model.ExportToOnnx</c>; <c>mlContext.Model.Save</c> stores it as ONNX inside the zip, loadable without Ml.Cnn</description></item>
/// </list>
/// </summary>
public sealed class CnnMulticlassTrainer : CnnTrainerBase<CnnMulticlassTransformer>
{
    internal CnnMulticlassTrainer(CnnTrainerOptions options, IHostEnvironment? environment = null) : base(options, environment)
    {
        if (options.Loss is not (null or LossKind.SoftmaxCrossEntropy or LossKind.MulticlassHinge))
            throw new ArgumentOutOfRangeException(nameof(options), options.Loss, "Classification trains with SoftmaxCrossEntropy or MulticlassHinge.");
    }

    /// <inheritdoc />
    public override CnnMulticlassTransformer Fit(IDataView input)
    {
        var (pixels, options, imageInput, images) = Prepare(input);
        var data = DataViewReader.ReadClassification(pixels, options, out int classes, out var imageShape);
        int validationClasses = classes;
        var validation = options.ValidationSet is null ? null : DataViewReader.ReadClassification(options.ValidationSet, options, out validationClasses, out _);
        CnnTraining.CheckValidationKeys(Options.LabelColumnName, validationClasses, classes);
        var (network, result) = Train(options, data, validation, classes, imageShape);
        var label = input.Schema[Options.LabelColumnName];
        return new CnnMulticlassTransformer(new CnnModel(network, result.Normalization, result, imageInput), options.FeatureColumnName,
            (KeyDataViewType)label.Type, label.Annotations, images);
    }

    /// <inheritdoc />
    public override SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        CnnTraining.CheckFeatures(inputSchema, Options.FeatureColumnName);
        return CnnTraining.ClassifierOutputShape(inputSchema, Options.LabelColumnName);
    }
}

/// <summary>
/// A trained convolutional classifier. Appends <c>Score</c> (class probabilities in label-key order, annotated with
/// the label's slot names) and <c>PredictedLabel</c> (the label's key type).
/// </summary>
public sealed class CnnMulticlassTransformer : ScoringTransformer, ISingleFeaturePredictionTransformer<CnnModel>
{
    internal CnnMulticlassTransformer(CnnModel model, string featureColumnName, KeyDataViewType labelType, DataViewSchema.Annotations labelAnnotations,
        ImageInput.Preparation? images)
    {
        Model = model;
        Images = images;
        int classes = (int)labelType.Count;
        ClassNames = ClassifierColumns.KeyNames(labelType, labelAnnotations);
        Scorer = new BatchScorer(featureColumnName, model.ImageShape.Length, classes, ClassifierColumns.Create(labelType, labelAnnotations),
            (inputs, count, outputs) => model.Run(inputs, count, outputs, null, probabilities: true),
            inputDimensions: model.ImageShape.Dims);
    }

    /// <summary>The trained network and its input standardization.</summary>
    public CnnModel Model { get; }

    /// <summary>The label's class names in score order (the key values), when the label has them.</summary>
    public IReadOnlyList<string>? ClassNames { get; }

    /// <summary>
    /// Writes the classifier as ONNX with its graph input named after the feature column and its output "Score"
    /// (class probabilities), so <c>mlContext.Transforms.ApplyOnnxModel("Score", "Features", path)</c> runs it on the
    /// same data; the class names are stored as the model's "class_names" metadata. A model of an image column takes
    /// its extracted pixels: the input is named "&lt;column&gt;.Pixels", what <see cref="CnnModel.ImageInput"/>'s
    /// ResizeImages and ExtractPixels produce.
    /// </summary>
    public void ExportToOnnx(string path, string outputName = "Score") =>
        Model.ExportToOnnx(path, probabilities: true, Scorer.InputColumn, outputName, ClassNames);

    private protected override BatchScorer Scorer { get; }

    private protected override void Release() => Model.Dispose();

    private protected override ImageInput.Preparation? Images { get; }

    private protected override ITransformer ToPersistable() =>
        ZipPersistence.Classifier(
            Onnx.OnnxExporter.BuildRowScorer(Model.ScoringNetwork, Model.Normalization, Scorer.InputColumn, Model.Network.Nodes[^1].Name,
                Onnx.OnnxExporter.RowOutputs.ProbabilitiesAndClassIndex, "Score", ZipPersistence.ClassIndexColumn),
            Scorer);
}
