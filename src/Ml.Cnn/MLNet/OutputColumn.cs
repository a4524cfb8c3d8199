using Microsoft.ML;
using Microsoft.ML.Data;

namespace Ml.Cnn.MLNet;

/// <summary>
/// A column that a scoring transformer appends: its schema entry and how to read its value from the model's raw
/// output vector for one row (e.g. probabilities → Score, arg-max → PredictedLabel).
/// </summary>
internal abstract class OutputColumn(string name, DataViewType type, DataViewSchema.Annotations? annotations)
{
    public string Name { get; } = name;
    public DataViewType Type { get; } = type;
    public DataViewSchema.Annotations Annotations { get; } = annotations ?? DataViewSchema.Annotations.Empty;

    /// <summary>A getter that reads this column from <paramref name="currentOutput"/> (the current row's raw output).</summary>
    public abstract Delegate CreateGetter(Func<ReadOnlyMemory<float>> currentOutput);

    /// <summary>A float vector column holding the whole raw output.</summary>
    public static OutputColumn Vector(string name, int size, DataViewSchema.Annotations? annotations = null) =>
        new VectorColumn(name, size, annotations);

    /// <summary>A float scalar column holding the first output value.</summary>
    public static OutputColumn Scalar(string name) => new ScalarColumn(name);

    /// <summary>A key column holding 1 + the index of the largest output (ML.NET keys count from 1; 0 means missing).</summary>
    public static OutputColumn ArgMaxKey(string name, KeyDataViewType type, DataViewSchema.Annotations? annotations) =>
        new ArgMaxColumn(name, type, annotations);

    /// <summary>
    /// A key vector holding, for each of <paramref name="pixels"/> pixels, 1 + the class of highest score in a
    /// [classes, pixels] output.
    /// </summary>
    public static OutputColumn PixelArgMaxKeys(string name, KeyDataViewType type, DataViewSchema.Annotations? annotations, int classes, int pixels) =>
        new PixelArgMaxColumn(name, type, annotations, classes, pixels);

    /// <summary>A float vector holding the per-pixel softmax of a [classes, pixels] output.</summary>
    public static OutputColumn PixelProbabilities(string name, int classes, int pixels) => new PixelProbabilityColumn(name, classes, pixels);

    /// <summary>
    /// A variable-length vector decoded from the row's raw output (a detector's labels, scores or boxes): each read
    /// runs <paramref name="decode"/> on the output.
    /// </summary>
    public static OutputColumn Decoded<T>(string name, DataViewType itemType, DataViewSchema.Annotations? annotations, Func<ReadOnlyMemory<float>, T[]> decode) =>
        new DecodedColumn<T>(name, itemType, annotations, decode);

    private sealed class DecodedColumn<T>(string name, DataViewType itemType, DataViewSchema.Annotations? annotations, Func<ReadOnlyMemory<float>, T[]> decode)
        : OutputColumn(name, new VectorDataViewType((PrimitiveDataViewType)itemType), annotations)
    {
        public override Delegate CreateGetter(Func<ReadOnlyMemory<float>> currentOutput) =>
            (ValueGetter<VBuffer<T>>)((ref VBuffer<T> value) =>
            {
                var values = decode(currentOutput());
                var editor = VBufferEditor.Create(ref value, values.Length);
                values.CopyTo(editor.Values);
                value = editor.Commit();
            });
    }

    private sealed class PixelArgMaxColumn(string name, KeyDataViewType type, DataViewSchema.Annotations? annotations, int classes, int pixels)
        : OutputColumn(name, new VectorDataViewType(type, pixels), annotations)
    {
        public override Delegate CreateGetter(Func<ReadOnlyMemory<float>> currentOutput) =>
            (ValueGetter<VBuffer<uint>>)((ref VBuffer<uint> value) =>
            {
                var scores = currentOutput().Span;
                var editor = VBufferEditor.Create(ref value, pixels);
                for (int p = 0; p < pixels; p++)
                {
                    int best = 0;
                    for (int c = 1; c < classes; c++)
                        if (scores[c * pixels + p] > scores[best * pixels + p]) best = c;
                    editor.Values[p] = (uint)best + 1;
                }
                value = editor.Commit();
            });
    }

    private sealed class PixelProbabilityColumn(string name, int classes, int pixels)
        : OutputColumn(name, new VectorDataViewType(NumberDataViewType.Single, classes * pixels), null)
    {
        public override Delegate CreateGetter(Func<ReadOnlyMemory<float>> currentOutput) =>
            (ValueGetter<VBuffer<float>>)((ref VBuffer<float> value) =>
            {
                var scores = currentOutput().Span;
                var editor = VBufferEditor.Create(ref value, classes * pixels);
                var probabilities = editor.Values;
                for (int p = 0; p < pixels; p++)
                {
                    float max = float.NegativeInfinity, sum = 0;
                    for (int c = 0; c < classes; c++) max = Math.Max(max, scores[c * pixels + p]);
                    for (int c = 0; c < classes; c++) sum += probabilities[c * pixels + p] = MathF.Exp(scores[c * pixels + p] - max);
                    for (int c = 0; c < classes; c++) probabilities[c * pixels + p] /= sum;
                }
                value = editor.Commit();
            });
    }

    private sealed class VectorColumn(string name, int size, DataViewSchema.Annotations? annotations)
        : OutputColumn(name, new VectorDataViewType(NumberDataViewType.Single, size), annotations)
    {
        public override Delegate CreateGetter(Func<ReadOnlyMemory<float>> currentOutput) =>
            (ValueGetter<VBuffer<float>>)((ref VBuffer<float> value) =>
            {
                var source = currentOutput().Span;
                var editor = VBufferEditor.Create(ref value, source.Length);
                source.CopyTo(editor.Values);
                value = editor.Commit();
            });
    }

    private sealed class ScalarColumn(string name) : OutputColumn(name, NumberDataViewType.Single, null)
    {
        public override Delegate CreateGetter(Func<ReadOnlyMemory<float>> currentOutput) =>
            (ValueGetter<float>)((ref float value) => value = currentOutput().Span[0]);
    }

    private sealed class ArgMaxColumn(string name, KeyDataViewType type, DataViewSchema.Annotations? annotations)
        : OutputColumn(name, type, annotations)
    {
        public override Delegate CreateGetter(Func<ReadOnlyMemory<float>> currentOutput) =>
            (ValueGetter<uint>)((ref uint value) => value = (uint)Ml.Cnn.Core.Scores.ArgMax(currentOutput().Span) + 1);
    }
}
