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
