using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Ml.Cnn.Training;

namespace Ml.Cnn.MLNet;

/// <summary>
/// Trains a convolutional network for regression on images (one Single target, MSE or L1 loss).
/// <list type="table">
/// <item><term>Machine learning task</term><description>Regression</description></item>
/// <item><term>Input columns</term><description>Label: Single; Features: known-size vector of Single (a CHW image), or an
/// image column (MLImage, from LoadImages), resized and extracted by the model itself</description></item>
/// <item><term>Example weights</term><description>Not supported (no exampleWeightColumnName): resample or repeat rows to weight them</description></item>
/// <item><term>Output columns</term><description>Score: Single</description></item>
/// <item><term>GPU</term><description>CUDA through Ml.Cnn.Gpu: set MLContext.GpuDeviceId (FallbackToCpu trains on the CPU when no device is usable)</description></item>
/// <item><term>ONNX export / model zip</term><description>Yes (a reloaded Score is a one-element vector: ML.NET's OnnxTransformer has no scalar outputs)</description></item>
/// </list>
/// </summary>
public sealed class CnnRegressionTrainer : CnnTrainerBase<CnnRegressionTransformer>
{
    internal CnnRegressionTrainer(CnnTrainerOptions options, IHostEnvironment? environment = null) : base(options, environment)
    {
        if (options.Loss is not (null or LossKind.MeanSquaredError or LossKind.L1))
            throw new ArgumentOutOfRangeException(nameof(options), options.Loss, "Regression trains with MeanSquaredError or L1.");
    }

    /// <inheritdoc />
    public override CnnRegressionTransformer Fit(IDataView input)
    {
        var (pixels, options, imageInput, images) = Prepare(input);
        var data = DataViewReader.ReadRegression(pixels, options, out var imageShape);
        var validation = options.ValidationSet is null ? null : DataViewReader.ReadRegression(options.ValidationSet, options, out _);
        var (network, result) = Train(options, data, validation, 1, imageShape);
        return new CnnRegressionTransformer(new CnnModel(network, result.Normalization, result, imageInput), options.FeatureColumnName, images);
    }

    /// <inheritdoc />
    public override SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        CnnTraining.CheckFeatures(inputSchema, Options.FeatureColumnName);
        var label = CnnTraining.Find(inputSchema, Options.LabelColumnName, "Label");
        if (label.Kind != SchemaShape.Column.VectorKind.Scalar || label.ItemType != NumberDataViewType.Single)
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Label column '{Options.LabelColumnName}' must be a Single scalar for regression, got {label.ItemType}.");
        var added = new DataViewSchema.Builder();
        added.AddColumn("Score", NumberDataViewType.Single);
        return SchemaShapeAdapter.Append(inputSchema, added.ToSchema());
    }
}

/// <summary>A trained convolutional regressor. Appends <c>Score</c> (Single).</summary>
public sealed class CnnRegressionTransformer : ScoringTransformer, ISingleFeaturePredictionTransformer<CnnModel>
{
    internal CnnRegressionTransformer(CnnModel model, string featureColumnName, ImageInput.Preparation? images)
    {
        Model = model;
        Images = images;
        Scorer = new BatchScorer(featureColumnName, model.ImageShape.Length, 1, [OutputColumn.Scalar("Score")],
            (inputs, count, outputs) => model.Run(inputs, count, outputs, null),
            inputDimensions: model.ImageShape.Dims);
    }

    /// <summary>The trained network and its input standardization.</summary>
    public CnnModel Model { get; }

    private protected override BatchScorer Scorer { get; }

    private protected override void Release() => Model.Dispose();

    private protected override ImageInput.Preparation? Images { get; }

    /// <remarks>
    /// ML.NET's OnnxTransformer cannot output scalars and no built-in ML.NET transformer turns a one-element vector
    /// into a scalar, so a loaded regressor's Score is a Vector of Single of length 1 (same value).
    /// </remarks>
    private protected override ITransformer ToPersistable() =>
        ZipPersistence.Vector(output => Onnx.OnnxExporter.BuildRowScorer(Model.ScoringNetwork, Model.Normalization, Scorer.InputColumn,
                Model.Network.Nodes[^1].Name, Onnx.OnnxExporter.RowOutputs.Activations, output),
            Scorer);
}
