using System.Runtime.InteropServices;
using Google.Protobuf;
using Ml.Cnn.Onnx.Proto;

namespace Ml.Cnn.Onnx;

/// <summary>
/// A small writer for ONNX graphs: every node has one output named after the node, so a name is both the node and
/// the value it produces.
/// </summary>
internal sealed class OnnxGraph
{
    /// <summary>The opset the written models declare.</summary>
    public const int Opset = 13;

    public GraphProto Graph { get; } = new() { Name = "ml-cnn" };

    public string Node(string opType, string name, IEnumerable<string> inputs, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = opType, Name = name };
        node.Input.AddRange(inputs);
        node.Output.Add(name);
        node.Attribute.AddRange(attributes);
        Graph.Node.Add(node);
        return name;
    }

    public string Initializer(string name, ReadOnlySpan<float> values, params long[] dims) =>
        RawInitializer(name, MemoryMarshal.AsBytes(values), TensorProto.Types.DataType.Float, dims);

    public string DoubleInitializer(string name, ReadOnlySpan<double> values, params long[] dims) =>
        RawInitializer(name, MemoryMarshal.AsBytes(values), TensorProto.Types.DataType.Double, dims);

    private string RawInitializer(string name, ReadOnlySpan<byte> bytes, TensorProto.Types.DataType type, long[] dims)
    {
        var proto = new TensorProto { Name = name, DataType = (int)type, RawData = ByteString.CopyFrom(bytes) };
        proto.Dims.AddRange(dims);
        Graph.Initializer.Add(proto);
        return name;
    }

    public string Int64Initializer(string name, params long[] values)
    {
        var proto = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        proto.Dims.Add(values.Length);
        proto.Int64Data.AddRange(values);
        Graph.Initializer.Add(proto);
        return name;
    }

    /// <summary>Reshapes <paramref name="input"/> to <paramref name="shape"/> (ONNX Reshape: -1 infers one dimension).</summary>
    public string Reshape(string name, string input, params long[] shape) =>
        Node("Reshape", name, [input, Int64Initializer(name + ".shape", shape)]);

    /// <summary>
    /// Declares a float graph input or output; a null dimension is free, named "N" first (the batch) and
    /// <paramref name="spatialPrefix"/> + "H" and "W" as the last two of an image tensor (one prefix per size: equal
    /// names tell a runtime the sizes are equal).
    /// </summary>
    public static ValueInfoProto Value(string name, IEnumerable<long?> dims, TensorProto.Types.DataType type = TensorProto.Types.DataType.Float,
        string spatialPrefix = "")
    {
        var shape = new TensorShapeProto();
        var all = dims.ToArray();
        for (int i = 0; i < all.Length; i++)
            shape.Dim.Add(all[i] is { } value ? new TensorShapeProto.Types.Dimension { DimValue = value }
                : new TensorShapeProto.Types.Dimension { DimParam = i == 0 ? "N" : all.Length == 4 && i >= 2 ? spatialPrefix + "HW"[i - 2] : $"d{i}" });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }

    public void Input(string name, params long?[] dims) => Graph.Input.Add(Value(name, dims));

    public void Output(string name, params long?[] dims) => Graph.Output.Add(Value(name, dims));

    public void Output(string name, string spatialPrefix, params long?[] dims) =>
        Graph.Output.Add(Value(name, dims, spatialPrefix: spatialPrefix));

    public ModelProto ToModel()
    {
        var model = new ModelProto { IrVersion = 7, ProducerName = "Ml.Cnn", ProducerVersion = "1", Graph = Graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        return model;
    }

    public static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto Str(string name, string value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = Google.Protobuf.ByteString.CopyFromUtf8(value) };

    public static AttributeProto Float(string name, float value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    public static AttributeProto Ints(string name, params long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }
}
