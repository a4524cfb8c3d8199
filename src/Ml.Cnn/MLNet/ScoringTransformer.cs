using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace Ml.Cnn.MLNet;

/// <summary>
/// Shared ITransformer plumbing: each transformer appends columns computed from one float vector column by a
/// <see cref="BatchScorer"/>, lazily and a batch of rows at a time; PredictionEngine scores row by row.
/// </summary>
public abstract class ScoringTransformer : ITransformer, IDisposable
{
    private protected ScoringTransformer() { }

    /// <summary>
    /// Releases what the model holds outside the managed heap at once, rather than when the process exits: the
    /// network a fit trained and the backend the fit opened (a GPU's device memory), or a KNN model's device copy of
    /// its training vectors. ML.NET's <c>TransformerChain</c> disposes the transformers it holds. The transformer
    /// cannot score afterwards; a model zip saved from it still loads.
    /// </summary>
    public void Dispose()
    {
        Release();
        GC.SuppressFinalize(this);
    }

    /// <summary>What <see cref="Dispose"/> releases; nothing by default (a featurizer's network is its caller's).</summary>
    private protected virtual void Release() { }

    private protected abstract BatchScorer Scorer { get; }

    /// <summary>For a model that takes an image column: the transforms that turn it into the pixels the scorer reads.</summary>
    private protected virtual ImageInput.Preparation? Images => null;

    /// <summary>The input column the model scores.</summary>
    public string FeatureColumnName => Images?.ImageColumn ?? Scorer.InputColumn;

    /// <summary>The input column's type: a vector of Single of the model's input size, or an image.</summary>
    public DataViewType FeatureColumnType =>
        Images is null ? new VectorDataViewType(NumberDataViewType.Single, Scorer.InputSize) : new ImageDataViewType();

    /// <inheritdoc />
    public bool IsRowToRowMapper => true;

    /// <inheritdoc />
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) =>
        Images is null ? Scorer.OutputSchema(inputSchema) : ImageChain.GetOutputSchema(inputSchema);

    /// <inheritdoc />
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) =>
        Images is null ? new ScoringRowMapper(inputSchema, Scorer) : ImageChain.GetRowToRowMapper(inputSchema);

    /// <inheritdoc />
    public IDataView Transform(IDataView input) =>
        Images is null ? new ScoredDataView(input, Scorer) : ImageChain.Transform(input);

    /// <summary>
    /// Saves into an ML.NET model zip (<c>mlContext.Model.Save</c>) as an equivalent chain of ML.NET's own
    /// transformers around the model exported to ONNX, so the zip loads with <c>mlContext.Model.Load</c> in a process
    /// without Ml.Cnn and scores with ONNX Runtime. Loaded classifiers give the same Score values (to float rounding)
    /// and the same PredictedLabel keys and key values; Score no longer carries the class names as slot names.
    /// </summary>
    public void Save(ModelSaveContext ctx) =>
        (Images is null ? ToPersistable() : AroundPixels(Images, ToPersistable())).Save(ctx);

    /// <summary>The chain of ML.NET transformers that this transformer saves as (scoring the pixel column).</summary>
    private protected abstract ITransformer ToPersistable();

    private ITransformer? _imageChain;

    /// <summary>For an image model: the preparation, the scorer on its pixels, and the drop of what the preparation added.</summary>
    private ITransformer ImageChain => _imageChain ??= AroundPixels(Images!, new PixelScorer(Scorer));

    /// <summary>A transformer of the pixel column between the image preparation and the removal of its columns.</summary>
    private static TransformerChain<ITransformer> AroundPixels(ImageInput.Preparation images, ITransformer pixels) =>
        new(images.Transformer, pixels, images.Drop);

    /// <summary>The scorer alone on the extracted pixels, as one link of the image chain.</summary>
    private sealed class PixelScorer(BatchScorer scorer) : ITransformer
    {
        public bool IsRowToRowMapper => true;
        public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => scorer.OutputSchema(inputSchema);
        public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => new ScoringRowMapper(inputSchema, scorer);
        public IDataView Transform(IDataView input) => new ScoredDataView(input, scorer);
        public void Save(ModelSaveContext ctx) => throw new NotSupportedException("Saved as part of its scoring transformer.");
    }
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
