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
