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

    /// <inheritdoc />
    public bool IsRowToRowMapper => true;

    /// <inheritdoc />
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => Scorer.OutputSchema(inputSchema);

    /// <inheritdoc />
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => new ScoringRowMapper(inputSchema, Scorer);

    /// <inheritdoc />
    public IDataView Transform(IDataView input) => new ScoredDataView(input, Scorer);

    /// <summary>
    /// Not available yet: ML.NET's model-zip format for third-party transformers is internal. Persistence through
    /// ONNX inside ordinary model zips is planned (issue 6); until then keep the <see cref="CnnModel"/> in memory or
    /// resume from a training checkpoint.
    /// </summary>
    public void Save(ModelSaveContext ctx) =>
        throw new NotSupportedException($"{GetType().Name} cannot be saved into an ML.NET model zip yet: persistence through ONNX is not implemented.");
}

/// <summary>
/// A trained convolutional classifier. Appends <c>Score</c> (class probabilities in label-key order, annotated with
/// the label's slot names) and <c>PredictedLabel</c> (the label's key type).
/// </summary>
public sealed class CnnMulticlassTransformer : ScoringTransformer
{
    internal CnnMulticlassTransformer(CnnModel model, string featureColumnName, KeyDataViewType labelType, DataViewSchema.Annotations labelAnnotations)
    {
        Model = model;
        int classes = (int)labelType.Count;
        Scorer = new BatchScorer(featureColumnName, model.ImageShape.Length, classes, ClassifierColumns.Create(labelType, labelAnnotations),
            (inputs, count, outputs) => model.Run(inputs, count, outputs, null, probabilities: true));
    }

    /// <summary>The trained network and its input standardization.</summary>
    public CnnModel Model { get; }

    private protected override BatchScorer Scorer { get; }
}

/// <summary>The Score and PredictedLabel columns of a classifier, annotated as ML.NET's own multiclass trainers do.</summary>
internal static class ClassifierColumns
{
    // ML.NET's annotation-kind constants (AnnotationUtils.Kinds) are internal; these are their documented values.
    public const string KeyValuesKind = "KeyValues", SlotNamesKind = "SlotNames";

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
public sealed class CnnRegressionTransformer : ScoringTransformer
{
    internal CnnRegressionTransformer(CnnModel model, string featureColumnName)
    {
        Model = model;
        Scorer = new BatchScorer(featureColumnName, model.ImageShape.Length, 1, [OutputColumn.Scalar("Score")],
            (inputs, count, outputs) => model.Run(inputs, count, outputs, null));
    }

    /// <summary>The trained network and its input standardization.</summary>
    public CnnModel Model { get; }

    private protected override BatchScorer Scorer { get; }
}

/// <summary>Outputs a trained network's activations at a named layer as a float vector column (CNN features).</summary>
public sealed class CnnFeaturizerTransformer : ScoringTransformer
{
    internal CnnFeaturizerTransformer(CnnModel model, string layerName, string outputColumnName, string inputColumnName)
    {
        var node = model.Network[layerName];
        int size = node.OutputShape.Length;
        LayerName = layerName;
        Scorer = new BatchScorer(inputColumnName, model.ImageShape.Length, size, [OutputColumn.Vector(outputColumnName, size)],
            (inputs, count, outputs) => model.Run(inputs, count, outputs, layerName));
    }

    /// <summary>The layer whose activations are output.</summary>
    public string LayerName { get; }

    private protected override BatchScorer Scorer { get; }
}
