using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Ml.Cnn.MLNet;

/// <summary>
/// The one place that works around ML.NET's API. An estimator's <c>GetOutputSchema</c> must return
/// <see cref="SchemaShape"/> columns, but <c>SchemaShape.Column</c>'s constructor and <c>SchemaShape.Create(DataViewSchema)</c>
/// are internal, so a third-party trainer cannot describe its Score and PredictedLabel columns. We call
/// <c>SchemaShape.Create</c> on a throwaway <see cref="DataViewSchema"/> holding the new columns. SchemaShapeAdapterTests
/// fails loudly if a future ML.NET renames it or changes what it produces.
/// </summary>
internal static class SchemaShapeAdapter
{
    private static readonly Func<DataViewSchema, SchemaShape> Create =
        typeof(SchemaShape).GetMethod("Create", BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic, [typeof(DataViewSchema)])
            ?.CreateDelegate<Func<DataViewSchema, SchemaShape>>()
        ?? throw new MissingMethodException("ML.NET no longer has SchemaShape.Create(DataViewSchema); update SchemaShapeAdapter.");

    /// <summary>The shape of <paramref name="schema"/>.</summary>
    public static SchemaShape ShapeOf(DataViewSchema schema) => Create(schema);

    /// <summary>
    /// Annotations with the given names and the types of the given shape columns, for schemas that exist only to be
    /// turned into shapes: their values are never read.
    /// </summary>
    public static DataViewSchema.Annotations PlaceholderAnnotations(params (string Name, SchemaShape.Column Shape)[] annotations)
    {
        var builder = new DataViewSchema.Annotations.Builder();
        foreach (var (name, shape) in annotations)
        {
            var item = (PrimitiveDataViewType)shape.ItemType;
            bool vector = shape.Kind != SchemaShape.Column.VectorKind.Scalar;
            DataViewType type = vector ? new VectorDataViewType(item) : item;
            switch (item.RawType)
            {
                case var t when t == typeof(ReadOnlyMemory<char>) && vector: Add<VBuffer<ReadOnlyMemory<char>>>(builder, name, type); break;
                case var t when t == typeof(ReadOnlyMemory<char>): Add<ReadOnlyMemory<char>>(builder, name, type); break;
                case var t when t == typeof(bool) && !vector: Add<bool>(builder, name, type); break;
                case var t when t == typeof(float) && vector: Add<VBuffer<float>>(builder, name, type); break;
                case var t when t == typeof(uint) && !vector: Add<uint>(builder, name, type); break;
                default: break; // other annotation kinds do not matter to downstream shape checks
            }
        }
        return builder.ToAnnotations();
    }

    private static void Add<T>(DataViewSchema.Annotations.Builder builder, string name, DataViewType type) =>
        builder.Add(name, type, (ValueGetter<T>)((ref T _) => throw new InvalidOperationException($"Annotation '{name}' of an output schema shape has no value.")));

    /// <summary>The input shape with <paramref name="added"/> columns appended (replacing any of the same name).</summary>
    public static SchemaShape Append(SchemaShape input, DataViewSchema added)
    {
        var columns = input.ToDictionary(c => c.Name);
        foreach (var column in Create(added)) columns[column.Name] = column;
        return new SchemaShape(columns.Values);
    }
}
