using Google.Protobuf;
using Ml.Cnn.Data;
using Ml.Cnn.Layers;
using Ml.Cnn.Networks;
using Ml.Cnn.Onnx.Proto;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Onnx;

/// <summary>
/// Writes a network as an ONNX model (opset 13): input "input" [N, C, H, W] with a free batch size, output "output"
/// (the network's scores, or probabilities when a softmax is appended). Dropout is the identity at inference and is
/// left out. Files are written atomically.
/// </summary>
public static class OnnxExporter
{
    /// <summary>The opset the exported models declare.</summary>
    public const int Opset = 13;

    /// <summary>
    /// Exports to a file (temp file, then rename). With <paramref name="normalization"/>, the per-channel
    /// standardization the network was trained with becomes Sub and Div nodes at the input, so the file takes raw inputs.
    /// </summary>
    public static void Export(Network network, string path, bool appendSoftmax = false, ChannelNormalization? normalization = null)
    {
        var bytes = ToBytes(network, appendSoftmax, normalization);
        string full = Path.GetFullPath(path);
        string temporary = full + ".tmp";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write))
        {
            stream.Write(bytes);
            stream.Flush(flushToDisk: true);
        }
        File.Move(temporary, full, overwrite: true);
    }

    /// <summary>The ONNX model as bytes.</summary>
    public static byte[] ToBytes(Network network, bool appendSoftmax = false, ChannelNormalization? normalization = null) =>
        Build(network, appendSoftmax, normalization).ToByteArray();

    internal static ModelProto Build(Network network, bool appendSoftmax, ChannelNormalization? normalization = null)
    {
        if (!network.IsAllocated) throw new ArgumentException("The network has no weights (it was created for its shapes only).", nameof(network));
        var graph = new GraphProto { Name = "ml-cnn" };
        graph.Input.Add(Value("input", network.InputShape));
        string networkInput = "input";
        if (normalization is not null)
        {
            var channelShape = network.InputShape.Rank == 3 ? new long[] { normalization.Mean.Length, 1, 1 } : [normalization.Mean.Length];
            networkInput = Add(graph, "Div", "input.normalized",
                [Add(graph, "Sub", "input.centred", ["input", Initializer(graph, "input.mean", normalization.Mean, channelShape)]),
                 Initializer(graph, "input.std", normalization.Std, channelShape)]);
        }
        var names = new string[network.Nodes.Count];
        string Source(int index) => index < 0 ? networkInput : names[index];
        for (int i = 0; i < network.Nodes.Count; i++)
        {
            var node = network.Nodes[i];
            names[i] = node.Layer switch
            {
                Layer layer => Emit(graph, layer, node.Name, Source(node.Inputs[0])),
                Concat => Add(graph, "Concat", node.Name, node.Inputs.Select(Source), Int("axis", 1)),
                Ml.Cnn.Layers.Add => EmitSum(graph, node.Name, node.Inputs.Select(Source).ToArray()),
                _ => throw new NotSupportedException($"Layer '{node.Name}' ({node.Layer.GetType().Name}) has no ONNX export."),
            };
        }
        string last = names[^1];
        if (appendSoftmax) last = Add(graph, "Softmax", "probabilities", [last], Int("axis", 1));
        Add(graph, "Identity", "output", [last]);
        graph.Output.Add(Value("output", network.OutputShape));
        var model = new ModelProto { IrVersion = 7, ProducerName = "Ml.Cnn", ProducerVersion = "1", Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        return model;
    }

    private static string Emit(GraphProto graph, Layer layer, string name, string input)
    {
        switch (layer)
        {
            case Conv2d conv:
            {
                var inputs = new List<string> { input, Initializer(graph, $"{name}.weight", conv.Weight.Value) };
                if (conv.Bias is not null) inputs.Add(Initializer(graph, $"{name}.bias", conv.Bias.Value));
                return Add(graph, "Conv", name, inputs,
                    Ints("kernel_shape", conv.KernelSize.H, conv.KernelSize.W), Ints("strides", conv.Stride.H, conv.Stride.W),
                    Ints("pads", conv.Padding.H, conv.Padding.W, conv.Padding.H, conv.Padding.W),
                    Ints("dilations", conv.Dilation.H, conv.Dilation.W), Int("group", conv.Groups));
            }
            case MaxPool2d pool:
                return Add(graph, "MaxPool", name, [input], PoolAttributes(pool));
            case AvgPool2d pool:
                return Add(graph, "AveragePool", name, [input], [.. PoolAttributes(pool), Int("count_include_pad", pool.IncludesPadding ? 1 : 0)]);
            case GlobalAvgPool:
                return Add(graph, "Flatten", name, [Add(graph, "GlobalAveragePool", name + ".pool", [input])], Int("axis", 1));
            case Dense dense:
            {
                string flat = layer.InputShape.Rank > 1 ? Add(graph, "Flatten", name + ".flatten", [input], Int("axis", 1)) : input;
                var inputs = new List<string> { flat, Initializer(graph, $"{name}.weight", dense.Weight.Value) };
                if (dense.Bias is not null) inputs.Add(Initializer(graph, $"{name}.bias", dense.Bias.Value));
                return Add(graph, "Gemm", name, inputs, Int("transB", 1));
            }
            case Relu: return Add(graph, "Relu", name, [input]);
            case LeakyRelu leaky: return Add(graph, "LeakyRelu", name, [input], Float("alpha", leaky.Alpha));
            case Elu elu: return Add(graph, "Elu", name, [input], Float("alpha", elu.Alpha));
            case Sigmoid: return Add(graph, "Sigmoid", name, [input]);
            case Tanh: return Add(graph, "Tanh", name, [input]);
            case Dropout: return input;
            case Flatten: return Add(graph, "Flatten", name, [input], Int("axis", 1));
            case Softmax: return Add(graph, "Softmax", name, [input], Int("axis", 1));
            case BatchNorm bn:
                return Add(graph, "BatchNormalization", name,
                    [input, Initializer(graph, $"{name}.gamma", bn.Gamma.Value), Initializer(graph, $"{name}.beta", bn.Beta.Value),
                     Initializer(graph, $"{name}.running_mean", bn.RunningMean), Initializer(graph, $"{name}.running_var", bn.RunningVariance)],
                    Float("epsilon", bn.Epsilon));
            case LocalResponseNorm lrn:
                // ONNX centres an even window one channel later than PyTorch (and Ml.Cnn); odd windows agree.
                if (lrn.Size % 2 == 0)
                    throw new NotSupportedException($"Layer '{name}': LRN with an even size ({lrn.Size}) has no exact ONNX equivalent.");
                return Add(graph, "LRN", name, [input], Float("alpha", lrn.Alpha), Float("beta", lrn.Beta), Float("bias", lrn.K), Int("size", lrn.Size));
            default:
                throw new NotSupportedException($"Layer '{name}' ({layer.GetType().Name}) has no ONNX export.");
        }
    }

    private static AttributeProto[] PoolAttributes(Pool2d pool) =>
    [
        Ints("kernel_shape", pool.KernelSize, pool.KernelSize), Ints("strides", pool.Stride, pool.Stride),
        Ints("pads", pool.Padding, pool.Padding, pool.Padding, pool.Padding), Int("ceil_mode", pool.CeilMode ? 1 : 0),
    ];

    private static string EmitSum(GraphProto graph, string name, string[] inputs)
    {
        string sum = inputs[0];
        for (int i = 1; i < inputs.Length; i++)
            sum = Add(graph, "Add", i == inputs.Length - 1 ? name : $"{name}.{i}", [sum, inputs[i]]);
        return sum;
    }

    private static string Add(GraphProto graph, string opType, string name, IEnumerable<string> inputs, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = opType, Name = name };
        node.Input.AddRange(inputs);
        node.Output.Add(name);
        node.Attribute.AddRange(attributes);
        graph.Node.Add(node);
        return name;
    }

    private static string Initializer(GraphProto graph, string name, Tensor tensor) =>
        Initializer(graph, name, tensor.ToArray(), tensor.Shape.Dims.Select(d => (long)d).ToArray());

    private static string Initializer(GraphProto graph, string name, float[] values, long[] dims)
    {
        var proto = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        proto.Dims.AddRange(dims);
        proto.RawData = ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
        graph.Initializer.Add(proto);
        return name;
    }

    private static ValueInfoProto Value(string name, TensorShape itemShape)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "N" });
        foreach (int d in itemShape.Dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }

    private static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    private static AttributeProto Float(string name, float value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    private static AttributeProto Ints(string name, params long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }
}
