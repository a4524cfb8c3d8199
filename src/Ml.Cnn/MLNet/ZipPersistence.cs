using System.Reflection;
using Google.Protobuf;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;

namespace Ml.Cnn.MLNet;

/// <summary>
/// How fitted Ml.Cnn transformers go into ML.NET model zips. ML.NET's save/load machinery for third-party
/// transformers is internal, so each of ours saves itself as an equivalent chain of ML.NET's own transformers, which
/// <c>mlContext.Model.Load</c> reads back without any Ml.Cnn code: an OnnxTransformer holding the model exported for
/// one row at a time (its bytes travel inside the zip), and for classifiers a Hash (combining the one-element class
/// index vector into a scalar, since OnnxTransformer cannot output scalars) and a MapValue from those hashes to the
/// label's values as a key type — the same PredictedLabel keys and key values as before.
/// </summary>
internal static class ZipPersistence
{
    /// <summary>The class-index output that <see cref="Classifier"/> expects the ONNX model to have.</summary>
    public const string ClassIndexColumn = "PredictedLabel.ClassIndex";

    private const string ClassHashColumn = "PredictedLabel.ClassHash";
    private const string ClassValuesColumn = "PredictedLabel.ClassValues";

    /// <summary>
    /// A chain appending Score (Vector of Single) and PredictedLabel (the label's key type, as the scorer declares it)
    /// from a one-row ONNX model with the scorer's input column as input and outputs "Score" and <see cref="ClassIndexColumn"/>.
    /// </summary>
    public static ITransformer Classifier(IMessage onnx, BatchScorer scorer)
    {
        var predictedLabel = scorer.Columns.Single(c => c.Name == "PredictedLabel"); // the label's key type and key values
        return LabelChain(onnx, scorer, (KeyDataViewType)predictedLabel.Type, predictedLabel.Annotations, perPixel: false);
    }

    /// <summary>
    /// The segmentation form of <see cref="Classifier"/>: the ONNX model's <see cref="ClassIndexColumn"/> holds one
    /// class index per pixel, and PredictedLabel becomes a vector of the label's key type.
    /// </summary>
    public static ITransformer Segmenter(IMessage onnx, BatchScorer scorer)
    {
        var predictedLabel = scorer.Columns.Single(c => c.Name == "PredictedLabel");
        return LabelChain(onnx, scorer, (KeyDataViewType)((VectorDataViewType)predictedLabel.Type).ItemType, predictedLabel.Annotations,
            perPixel: true);
    }

    /// <summary>
    /// The detection form: the ONNX model outputs Score, <see cref="ClassIndexColumn"/> (one class index per
    /// detection) and PredictedBoundingBoxes, all of variable length, and PredictedLabel becomes a key vector.
    /// </summary>
    public static ITransformer Detector(IMessage onnx, BatchScorer scorer)
    {
        var predictedLabel = scorer.Columns.Single(c => c.Name == "PredictedLabel");
        return LabelChain(onnx, scorer, (KeyDataViewType)((VectorDataViewType)predictedLabel.Type).ItemType, predictedLabel.Annotations,
            perPixel: true, "PredictedBoundingBoxes");
    }

    private static ITransformer LabelChain(IMessage onnx, BatchScorer scorer, KeyDataViewType labelType, DataViewSchema.Annotations labelAnnotations,
        bool perPixel, params string[] moreOutputs)
    {
        var (featureColumn, featureSize) = (scorer.InputColumn, scorer.InputSize);
        var ml = new MLContext(seed: 0);
        int classes = (int)labelType.Count;
        // A classifier's one-element index vector is combined into a scalar; a mask's indices are hashed one by one.
        var hash = ml.Transforms.Conversion.Hash(new HashingEstimator.ColumnOptions(ClassHashColumn, ClassIndexColumn, numberOfBits: 31,
            combine: !perPixel));
        var indices = VectorView(ml, ClassIndexColumn, 1, Enumerable.Range(0, classes).Select(c => new[] { (float)c }));
        var hashed = hash.Fit(indices).Transform(indices);
        uint[] hashes = perPixel ? hashed.GetColumn<uint[]>(ClassHashColumn).Select(h => h[0]).ToArray()
            : hashed.GetColumn<uint>(ClassHashColumn).ToArray();
        if (hashes.Distinct().Count() != classes)
            throw new InvalidOperationException($"Two of the {classes} class indices hash alike; the classifier cannot be saved into a model zip.");
        return ml.Transforms.ApplyOnnxModel(["Score", ClassIndexColumn, .. moreOutputs], [featureColumn], new MemoryStream(onnx.ToByteArray()))
            .Append(hash)
            .Append(MapToLabelValues(ml, hashes, labelAnnotations, perPixel))
            .Append(ml.Transforms.DropColumns(perPixel ? [ClassIndexColumn, ClassHashColumn, ClassValuesColumn] : [ClassIndexColumn, ClassHashColumn]))
            .Fit(VectorView(ml, featureColumn, featureSize, []));
    }

    /// <summary>A chain appending the scorer's one output column from a one-row ONNX model with one input and one output.</summary>
    public static ITransformer Vector(Func<string, IMessage> onnxWithOutput, BatchScorer scorer)
    {
        var (inputColumn, inputSize, outputColumn) = (scorer.InputColumn, scorer.InputSize, scorer.Columns.Single().Name);
        var ml = new MLContext(seed: 0);
        var empty = VectorView(ml, inputColumn, inputSize, []);
        if (outputColumn != inputColumn)
            return ml.Transforms.ApplyOnnxModel([outputColumn], [inputColumn], new MemoryStream(onnxWithOutput(outputColumn).ToByteArray())).Fit(empty);
        // An ONNX graph's output cannot be named like its input: score into a temporary column, then replace the input.
        string temporary = outputColumn + ".Output";
        return ml.Transforms.ApplyOnnxModel([temporary], [inputColumn], new MemoryStream(onnxWithOutput(temporary).ToByteArray()))
            .Append(ml.Transforms.CopyColumns(outputColumn, temporary))
            .Append(ml.Transforms.DropColumns(temporary))
            .Fit(empty);
    }

    /// <summary>Maps class hashes to the label's key values (or to 0-based class numbers where it has none) as a key type.</summary>
    private static IEstimator<ITransformer> MapToLabelValues(MLContext ml, uint[] hashes, DataViewSchema.Annotations labelAnnotations, bool perPixel)
    {
        var keyValues = labelAnnotations.Schema.GetColumnOrNull(ClassifierColumns.KeyValuesKind);
        if (keyValues?.Type is not VectorDataViewType { ItemType: PrimitiveDataViewType itemType } type || type.Size != hashes.Length)
            return MapValue(ml, hashes, Enumerable.Range(0, hashes.Length).Select(c => (uint)c).ToArray(), perPixel);
        if (itemType is TextDataViewType)
            return MapValue(ml, hashes, ReadKeyValues<ReadOnlyMemory<char>>(labelAnnotations).Select(v => v.ToString()).ToArray(), perPixel);
        var read = typeof(ZipPersistence).GetMethod(nameof(MapKeyValues), BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(itemType.RawType);
        return (IEstimator<ITransformer>)read.Invoke(null, [ml, hashes, labelAnnotations, perPixel])!;
    }

    private static IEstimator<ITransformer> MapKeyValues<T>(MLContext ml, uint[] hashes, DataViewSchema.Annotations labelAnnotations, bool perPixel) =>
        MapValue(ml, hashes, ReadKeyValues<T>(labelAnnotations), perPixel);

    private static T[] ReadKeyValues<T>(DataViewSchema.Annotations annotations)
    {
        var values = default(VBuffer<T>);
        annotations.GetValue(ClassifierColumns.KeyValuesKind, ref values);
        return values.DenseValues().ToArray();
    }

    /// <summary>
    /// MapValue with treatValuesAsKeyType numbers the keys in the order given, so key c + 1 is class c, as before. On
    /// a vector it yields plain numbers, so a mask's values are mapped first and then made keys, in class order, by
    /// MapValueToKey over the values as key data.
    /// </summary>
    private static IEstimator<ITransformer> MapValue<T>(MLContext ml, uint[] hashes, T[] values, bool perPixel)
    {
        var pairs = hashes.Zip(values, KeyValuePair.Create);
        if (!perPixel) return ml.Transforms.Conversion.MapValue("PredictedLabel", pairs, ClassHashColumn, treatValuesAsKeyType: true);
        var definition = SchemaDefinition.Create(typeof(KeyRow<T>));
        definition[0].ColumnName = ClassValuesColumn;
        var keyData = ml.Data.LoadFromEnumerable(values.Select(v => new KeyRow<T> { Value = v }), definition);
        return ml.Transforms.Conversion.MapValue(ClassValuesColumn, pairs, ClassHashColumn)
            .Append(ml.Transforms.Conversion.MapValueToKey("PredictedLabel", ClassValuesColumn, keyData: keyData));
    }

    private sealed class KeyRow<T>
    {
        public T Value = default!;
    }

    /// <summary>An in-memory view with one float vector column.</summary>
    private static IDataView VectorView(MLContext ml, string column, int size, IEnumerable<float[]> rows)
    {
        var definition = SchemaDefinition.Create(typeof(VectorRow));
        definition[0].ColumnName = column;
        definition[0].ColumnType = new VectorDataViewType(NumberDataViewType.Single, size);
        return ml.Data.LoadFromEnumerable(rows.Select(r => new VectorRow { Values = r }), definition);
    }

    private sealed class VectorRow
    {
        public float[] Values = [];
    }
}
