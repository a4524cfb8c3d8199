using Microsoft.ML;
using Microsoft.ML.Data;

namespace Ml.Cnn.MLNet;

/// <summary>
/// Shared ITransformer plumbing: each transformer appends columns computed from one float vector column by a
/// <see cref="BatchScorer"/>, lazily and a batch of rows at a time; PredictionEngine scores row by row.
/// </summary>
public abstract class ScoringTransformer : ITransformer
{
    private protected ScoringTransformer() { }

    private protected abstract BatchScorer Scorer { get; }

    /// <summary>The input column the model scores.</summary>
    public string FeatureColumnName => Scorer.InputColumn;

    /// <summary>The input column's type: a vector of Single of the model's input size.</summary>
    public DataViewType FeatureColumnType => new VectorDataViewType(NumberDataViewType.Single, Scorer.InputSize);

    /// <inheritdoc />
    public bool IsRowToRowMapper => true;

    /// <inheritdoc />
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => Scorer.OutputSchema(inputSchema);

    /// <inheritdoc />
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => new ScoringRowMapper(inputSchema, Scorer);

    /// <inheritdoc />
    public IDataView Transform(IDataView input) => new ScoredDataView(input, Scorer);

    /// <summary>
    /// Saves into an ML.NET model zip (<c>mlContext.Model.Save</c>) as an equivalent chain of ML.NET's own
    /// transformers around the model exported to ONNX, so the zip loads with <c>mlContext.Model.Load</c> in a process
    /// without Ml.Cnn and scores with ONNX Runtime. Loaded classifiers give the same Score values (to float rounding)
    /// and the same PredictedLabel keys and key values; Score no longer carries the class names as slot names.
    /// </summary>
    public void Save(ModelSaveContext ctx) => ToPersistable().Save(ctx);

    /// <summary>The chain of ML.NET transformers that this transformer saves as.</summary>
    private protected abstract ITransformer ToPersistable();
}

/// <summary>
/// A trained convolutional classifier. Appends <c>Score</c> (class probabilities in label-key order, annotated with
/// the label's slot names) and <c>PredictedLabel</c> (the label's key type).
/// </summary>
public sealed class CnnMulticlassTransformer : ScoringTransformer, ISingleFeaturePredictionTransformer<CnnModel>
{
    internal CnnMulticlassTransformer(CnnModel model, string featureColumnName, KeyDataViewType labelType, DataViewSchema.Annotations labelAnnotations)
    {
        Model = model;
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
    /// same data; the class names are stored as the model's "class_names" metadata.
    /// </summary>
    public void ExportToOnnx(string path, string outputName = "Score") =>
        Model.ExportToOnnx(path, probabilities: true, FeatureColumnName, outputName, ClassNames);

    private protected override BatchScorer Scorer { get; }

    private protected override ITransformer ToPersistable() =>
        ZipPersistence.Classifier(
            Onnx.OnnxExporter.BuildRowScorer(Model.Network, Model.Normalization, Scorer.InputColumn, Model.Network.Nodes[^1].Name,
                Onnx.OnnxExporter.RowOutputs.ProbabilitiesAndClassIndex, "Score", ZipPersistence.ClassIndexColumn),
            Scorer);
}

/// <summary>The Score and PredictedLabel columns of a classifier, annotated as ML.NET's own multiclass trainers do.</summary>
internal static class ClassifierColumns
{
    // ML.NET's annotation-kind constants (AnnotationUtils.Kinds) are internal; these are their documented values.
    public const string KeyValuesKind = "KeyValues", SlotNamesKind = "SlotNames";

    /// <summary>The key values of a label as text, in key order (null when it has none).</summary>
    public static IReadOnlyList<string>? KeyNames(KeyDataViewType labelType, DataViewSchema.Annotations labelAnnotations)
    {
        var keyValues = labelAnnotations.Schema.GetColumnOrNull(KeyValuesKind);
        if (keyValues is not { Type: VectorDataViewType { ItemType: TextDataViewType } names } || names.Size != (int)labelType.Count) return null;
        var values = default(VBuffer<ReadOnlyMemory<char>>);
        labelAnnotations.GetValue(KeyValuesKind, ref values);
        return values.DenseValues().Select(v => v.ToString()).ToArray();
    }

    public static OutputColumn[] Create(KeyDataViewType labelType, DataViewSchema.Annotations labelAnnotations)
    {
        int classes = (int)labelType.Count;
        var scoreAnnotations = new DataViewSchema.Annotations.Builder();
        var keyValues = labelAnnotations.Schema.GetColumnOrNull(KeyValuesKind);
        if (keyValues is { } kv && kv.Type is VectorDataViewType { ItemType: TextDataViewType } names && names.Size == classes)
        {
            var values = default(VBuffer<ReadOnlyMemory<char>>);
            labelAnnotations.GetValue(KeyValuesKind, ref values);
            scoreAnnotations.Add(SlotNamesKind, kv.Type, (ValueGetter<VBuffer<ReadOnlyMemory<char>>>)((ref VBuffer<ReadOnlyMemory<char>> v) => values.CopyTo(ref v)));
        }
        return [OutputColumn.Vector("Score", classes, scoreAnnotations.ToAnnotations()), OutputColumn.ArgMaxKey("PredictedLabel", labelType, labelAnnotations)];
    }
}

/// <summary>A trained convolutional regressor. Appends <c>Score</c> (Single).</summary>
public sealed class CnnRegressionTransformer : ScoringTransformer, ISingleFeaturePredictionTransformer<CnnModel>
{
    internal CnnRegressionTransformer(CnnModel model, string featureColumnName)
    {
        Model = model;
        Scorer = new BatchScorer(featureColumnName, model.ImageShape.Length, 1, [OutputColumn.Scalar("Score")],
            (inputs, count, outputs) => model.Run(inputs, count, outputs, null),
            inputDimensions: model.ImageShape.Dims);
    }

    /// <summary>The trained network and its input standardization.</summary>
    public CnnModel Model { get; }

    private protected override BatchScorer Scorer { get; }

    /// <remarks>
    /// ML.NET's OnnxTransformer cannot output scalars and no built-in ML.NET transformer turns a one-element vector
    /// into a scalar, so a loaded regressor's Score is a Vector of Single of length 1 (same value).
    /// </remarks>
    private protected override ITransformer ToPersistable() =>
        ZipPersistence.Vector(output => Onnx.OnnxExporter.BuildRowScorer(Model.Network, Model.Normalization, Scorer.InputColumn,
                Model.Network.Nodes[^1].Name, Onnx.OnnxExporter.RowOutputs.Activations, output),
            Scorer);
}

/// <summary>Outputs a trained network's activations at a named layer as a float vector column (CNN features).</summary>
public sealed class CnnFeaturizerTransformer : ScoringTransformer
{
    private readonly CnnModel _model;

    internal CnnFeaturizerTransformer(CnnModel model, string layerName, string outputColumnName, string inputColumnName)
    {
        _model = model;
        var node = model.Network[layerName];
        int size = node.OutputShape.Length;
        LayerName = layerName;
        Scorer = new BatchScorer(inputColumnName, model.ImageShape.Length, size, [OutputColumn.Vector(outputColumnName, size)],
            (inputs, count, outputs) => model.Run(inputs, count, outputs, layerName), inputDimensions: model.ImageShape.Dims);
    }

    /// <summary>The layer whose activations are output.</summary>
    public string LayerName { get; }

    /// <summary>The trained network it runs.</summary>
    public CnnModel Model => _model;

    private protected override BatchScorer Scorer { get; }

    private protected override ITransformer ToPersistable() =>
        ZipPersistence.Vector(output => Onnx.OnnxExporter.BuildRowScorer(_model.Network, _model.Normalization, Scorer.InputColumn, LayerName,
                Onnx.OnnxExporter.RowOutputs.Activations, output),
            Scorer);
}
