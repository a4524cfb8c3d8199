using Google.Protobuf;
using Ml.Cnn.Data;
using Ml.Cnn.Layers;
using Ml.Cnn.Networks;
using Ml.Cnn.Onnx.Proto;
using static Ml.Cnn.Onnx.OnnxGraph;

namespace Ml.Cnn.Onnx;

/// <summary>
/// Writes a network as an ONNX model (opset 13): input "input" [N, C, H, W] with a free batch size, output "output"
/// (the network's scores, or probabilities when a softmax is appended). Dropout is the identity at inference and is
/// left out. Files are written atomically.
/// </summary>
public static class OnnxExporter
{
    /// <summary>The opset the exported models declare.</summary>
    public const int Opset = OnnxGraph.Opset;

    /// <summary>
    /// Exports to a file (temp file, then rename). With <paramref name="normalization"/>, the per-channel
    /// standardization the network was trained with becomes Sub and Div nodes at the input, so the file takes raw inputs.
    /// </summary>
    /// <param name="network">The network.</param>
    /// <param name="path">The file to write.</param>
    /// <param name="appendSoftmax">End with a softmax, so the output holds class probabilities.</param>
    /// <param name="normalization">The input standardization to put in front of the network.</param>
    /// <param name="inputName">The graph input's name: the column name for <c>ApplyOnnxModel</c> (e.g. "Features").</param>
    /// <param name="outputName">The graph output's name (e.g. "Score").</param>
    /// <param name="classNames">Class names in output order, stored as model metadata (<see cref="ClassNamesKey"/>).</param>
    /// <param name="dynamicImageSize">Declare height and width free ("H", "W") as well as the batch, for a fully
    /// convolutional network that runs on any image size (segmentation); a layer that fixes the size is refused.</param>
    public static void Export(Network network, string path, bool appendSoftmax = false, ChannelNormalization? normalization = null,
        string inputName = "input", string outputName = "output", IReadOnlyList<string>? classNames = null, bool dynamicImageSize = false) =>
        Core.AtomicFile.Write(path, Build(network, appendSoftmax, normalization, inputName, outputName, classNames, dynamicImageSize).ToByteArray());

    /// <summary>The ONNX model as bytes.</summary>
    public static byte[] ToBytes(Network network, bool appendSoftmax = false, ChannelNormalization? normalization = null) =>
        Build(network, appendSoftmax, normalization).ToByteArray();

    /// <summary>The metadata key under which <see cref="Export"/> stores class names: a JSON array in class order.</summary>
    public const string ClassNamesKey = "class_names";

    internal static ModelProto Build(Network network, bool appendSoftmax, ChannelNormalization? normalization = null,
        string inputName = "input", string outputName = "output", IReadOnlyList<string>? classNames = null, bool dynamicImageSize = false)
    {
        if (dynamicImageSize) CheckAnySize(network);
        foreach (var name in new[] { inputName, outputName })
            if (string.IsNullOrEmpty(name) || network.Nodes.Any(n => n.Name == name) || name is "probabilities")
                throw new ArgumentException($"'{name}' cannot name the model's input or output: it is empty or the name of a layer.", nameof(inputName));
        if (inputName == outputName) throw new ArgumentException($"The input and the output are both named '{inputName}'.", nameof(outputName));
        if (classNames is not null && classNames.Count != network.OutputShape.Length)
            throw new ArgumentException($"{classNames.Count} class names for {network.OutputShape.Length} outputs.", nameof(classNames));
        var graph = new OnnxGraph();
        long?[] Dims(Ml.Cnn.Tensors.TensorShape shape) =>
            [null, .. shape.Dims.Select((d, i) => dynamicImageSize && i > 0 ? null : (long?)d)];
        graph.Input(inputName, Dims(network.InputShape));
        string last = EmitNetwork(graph, network, inputName, normalization, network.Nodes[^1].Name);
        if (appendSoftmax) last = graph.Node("Softmax", "probabilities", [last], Int("axis", 1));
        graph.Node("Identity", outputName, [last]);
        // A detector's H/4 × W/4 map must not share the input's dimension names.
        bool sameSize = network.InputShape.Rank == 3 && network.OutputShape.Rank == 3
            && network.InputShape[1] == network.OutputShape[1] && network.InputShape[2] == network.OutputShape[2];
        graph.Output(outputName, sameSize ? "" : "out_", Dims(network.OutputShape));
        var model = graph.ToModel();
        if (classNames is not null)
            model.MetadataProps.Add(new StringStringEntryProto { Key = ClassNamesKey, Value = System.Text.Json.JsonSerializer.Serialize(classNames) });
        return model;
    }

    /// <summary>Throws unless every layer's export holds for any image size: [C, H, W] in and out, no fixed reshapes.</summary>
    private static void CheckAnySize(Network network)
    {
        if (network.InputShape.Rank != 3 || network.OutputShape.Rank != 3)
            throw new ArgumentException($"A dynamic image size needs [C, H, W] inputs and outputs; the network maps {network.InputShape} to " +
                $"{network.OutputShape}.", nameof(network));
        var fixedSize = network.Nodes.FirstOrDefault(n => n.Layer is Dense or Flatten or ChannelShuffle or Crop or GlobalAvgPool { KeepSpatialDims: false });
        if (fixedSize is not null)
            throw new ArgumentException($"A dynamic image size needs a fully convolutional network; layer '{fixedSize.Name}' " +
                $"({fixedSize.Layer.GetType().Name}) is exported for one image size.", nameof(network));
    }

    /// <summary>What a one-row scoring model outputs.</summary>
    internal enum RowOutputs
    {
        /// <summary>The layer's activations, flattened.</summary>
        Activations,
        /// <summary>Softmax probabilities, and the arg-max class index as a one-element float vector.</summary>
        ProbabilitiesAndClassIndex,
        /// <summary>Per-pixel softmax probabilities [classes·H·W], and each pixel's arg-max class as floats [H·W].</summary>
        PixelProbabilitiesAndClassIndices,
    }

    /// <summary>
    /// A model that scores one row at a time, the form ML.NET's OnnxTransformer runs (it cannot read scalar outputs):
    /// input <paramref name="inputName"/> [C·H·W], outputs named by <paramref name="outputNames"/>, each a 1-D tensor.
    /// </summary>
    internal static ModelProto BuildRowScorer(Network network, ChannelNormalization? normalization, string inputName, string layer,
        RowOutputs outputs, params string[] outputNames)
    {
        var (graph, last) = RowScorerGraph(network, normalization, inputName, layer);
        int size = network[layer].OutputShape.Length;
        switch (outputs)
        {
            case RowOutputs.Activations:
                graph.Reshape(outputNames[0], last, size);
                graph.Output(outputNames[0], size);
                break;
            case RowOutputs.ProbabilitiesAndClassIndex:
                string probabilities = graph.Node("Softmax", "probabilities", [last], Int("axis", 1));
                graph.Reshape(outputNames[0], probabilities, size);
                string index = graph.Node("ArgMax", "class-index", [probabilities], Int("axis", 1), Int("keepdims", 0));
                graph.Node("Cast", outputNames[1], [index], Int("to", (int)TensorProto.Types.DataType.Float));
                graph.Output(outputNames[0], size);
                graph.Output(outputNames[1], 1);
                break;
            case RowOutputs.PixelProbabilitiesAndClassIndices:
            {
                var shape = network[layer].OutputShape;
                int pixels = shape[1] * shape[2];
                string pixelProbabilities = graph.Node("Softmax", "probabilities", [last], Int("axis", 1));
                graph.Reshape(outputNames[0], pixelProbabilities, size);
                string classes = graph.Node("ArgMax", "class-index", [pixelProbabilities], Int("axis", 1), Int("keepdims", 0));
                string asFloat = graph.Node("Cast", "class-index.float", [classes], Int("to", (int)TensorProto.Types.DataType.Float));
                graph.Reshape(outputNames[1], asFloat, pixels);
                graph.Output(outputNames[0], size);
                graph.Output(outputNames[1], pixels);
                break;
            }
        }
        return graph.ToModel();
    }

    /// <summary>A graph taking one row [C·H·W] as <paramref name="inputName"/>, through <paramref name="layer"/> ([1, …]).</summary>
    private static (OnnxGraph Graph, string Last) RowScorerGraph(Network network, ChannelNormalization? normalization, string inputName,
        string layer)
    {
        if (network.Nodes.Any(n => n.Name == inputName))
            throw new ArgumentException($"The input column '{inputName}' has the name of a layer; rename the column or the layer.", nameof(inputName));
        var graph = new OnnxGraph();
        graph.Input(inputName, network.InputShape.Length);
        string image = graph.Reshape(inputName + ".image", inputName, [1, .. network.InputShape.Dims.Select(d => (long)d)]);
        return (graph, EmitNetwork(graph, network, image, normalization, layer));
    }

    /// <summary>
    /// A one-row detector model: the network's [classes + 4, h, w] output decoded as <see cref="CenterNet.Decode"/>
    /// decodes it — 3×3 peaks (a cell equal to its max-pooled neighbourhood) of at least <paramref name="minScore"/>,
    /// per-class NonMaxSuppression at <paramref name="nmsIoU"/>, the <paramref name="maxDetections"/> best by TopK —
    /// with outputs [1, D] scores, [1, D] class indices (as floats) and [1, 4·D] boxes (x0, y0, x1, y1 in pixels).
    /// The first dimension is the batch ML.NET's OnnxTransformer expects; the second is free.
    /// </summary>
    internal static ModelProto BuildDetectionRowScorer(Network network, ChannelNormalization? normalization, string inputName, int stride,
        float minScore, int maxDetections, float nmsIoU, string scoreName, string classIndexName, string boxesName)
    {
        var (graph, output) = RowScorerGraph(network, normalization, inputName, network.Nodes[^1].Name);
        var shape = network.OutputShape;
        int classes = shape[0] - 4, h = shape[1], w = shape[2], cells = h * w;
        string Slice(string name, string input, long start, long end, long axis) => graph.Node("Slice", name, [input,
            graph.Int64Initializer(name + ".starts", start), graph.Int64Initializer(name + ".ends", end), graph.Int64Initializer(name + ".axes", axis)]);
        string Constant(string name, float value) => graph.Initializer(name, [value], 1);

        // Peaks: σ(logit) where the logit equals its 3×3 maximum (logits: σ rounds large ones alike), −1 elsewhere.
        string logits = Slice("decode.logits", output, 0, classes, 1);
        string pooled = graph.Node("MaxPool", "decode.pooled", [logits], Ints("kernel_shape", 3, 3), Ints("pads", 1, 1, 1, 1), Ints("strides", 1, 1));
        string peaks = graph.Node("Where", "decode.peaks", [graph.Node("Equal", "decode.is-peak", [logits, pooled]),
            graph.Node("Sigmoid", "decode.heat", [logits]), Constant("decode.no-peak", -1)]);
        string scores = graph.Reshape("decode.scores", peaks, 1, classes, cells);

        // Boxes of every cell: centre (cell + offset)·stride, size max(0, value)·stride, clipped to the image.
        string values = graph.Reshape("decode.values", Slice("decode.box-values", output, classes, classes + 4, 1), 4, cells);
        string strideValue = Constant("decode.stride", stride);
        var grid = new float[2 * cells];
        for (int c = 0; c < cells; c++) (grid[c], grid[cells + c]) = (c % w, c / w);
        string centre = graph.Node("Mul", "decode.centre", [graph.Node("Add", "decode.cell", [graph.Initializer("decode.grid", grid, 2, cells),
            Slice("decode.offset", values, 0, 2, 0)]), strideValue]);
        string half = graph.Node("Div", "decode.half", [graph.Node("Mul", "decode.size", [graph.Node("Relu", "decode.size-cells",
            [Slice("decode.size-values", values, 2, 4, 0)]), strideValue]), Constant("decode.two", 2)]);
        string limit = graph.Initializer("decode.limit", [w * stride, h * stride], 2, 1);
        string Clip(string name, string x) => graph.Node("Min", name, [graph.Node("Max", name + ".low", [x, Constant(name + ".zero", 0)]), limit]);
        string corners = graph.Node("Concat", "decode.corners", [Clip("decode.x0y0", graph.Node("Sub", "decode.low", [centre, half])),
            Clip("decode.x1y1", graph.Node("Add", "decode.high", [centre, half]))], Int("axis", 0));
        string boxes = graph.Node("Transpose", "decode.boxes", [corners], Ints("perm", 1, 0)); // [cells, 4]

        // NonMaxSuppression takes [y0, x0, y1, x1]; IoU is the same with the axes swapped.
        string selected = graph.Node("NonMaxSuppression", "decode.selected", [graph.Reshape("decode.nms-boxes", boxes, 1, cells, 4), scores,
            graph.Int64Initializer("decode.max-per-class", maxDetections), Constant("decode.iou", nmsIoU), Constant("decode.min-score", minScore)]);
        string Column(string name, long index) =>
            graph.Reshape(name, graph.Node("Gather", name + ".column", [selected, graph.Int64Initializer(name + ".index", index)], Int("axis", 1)), -1);
        string classIndex = Column("decode.class", 1), cell = Column("decode.cell-index", 2);
        string flat = graph.Node("Add", "decode.flat", [graph.Node("Mul", "decode.class-offset", [classIndex, graph.Int64Initializer("decode.cells", cells)]), cell]);
        string candidateScores = graph.Node("Gather", "decode.candidate-scores", [graph.Reshape("decode.all-scores", peaks, -1), flat]);
        string count = graph.Node("Min", "decode.count", [graph.Node("Shape", "decode.candidates", [candidateScores]),
            graph.Int64Initializer("decode.max", maxDetections)]);
        var best = new NodeProto { OpType = "TopK", Name = "decode.best" };
        best.Input.AddRange([candidateScores, count]);
        best.Output.AddRange(["decode.best-scores", "decode.best-index"]);
        graph.Graph.Node.Add(best);
        graph.Reshape(scoreName, "decode.best-scores", 1, -1);
        graph.Reshape(classIndexName, graph.Node("Cast", "decode.best-class", [graph.Node("Gather", "decode.best-class-index", [classIndex, "decode.best-index"])],
            Int("to", (int)TensorProto.Types.DataType.Float)), 1, -1);
        graph.Reshape(boxesName, graph.Node("Gather", "decode.best-boxes", [boxes, graph.Node("Gather", "decode.best-cell", [cell, "decode.best-index"])]), 1, -1);
        foreach (var (name, size) in new[] { (scoreName, "D"), (classIndexName, "D"), (boxesName, "4D") })
        {
            var value = Value(name, [1, null]);
            value.Type.TensorType.Shape.Dim[1].DimParam = size;
            graph.Graph.Output.Add(value);
        }
        return graph.ToModel();
    }

    /// <summary>Emits the nodes that <paramref name="lastLayer"/> depends on; returns the name of its output.</summary>
    private static string EmitNetwork(OnnxGraph graph, Network network, string input, ChannelNormalization? normalization, string lastLayer)
    {
        if (!network.IsAllocated) throw new ArgumentException("The network has no weights (it was created for its shapes only).", nameof(network));
        string networkInput = input;
        if (normalization is not null)
        {
            var channelShape = network.InputShape.Rank == 3 ? new long[] { normalization.Mean.Length, 1, 1 } : [normalization.Mean.Length];
            networkInput = graph.Node("Div", "input.normalized",
                [graph.Node("Sub", "input.centred", [input, graph.Initializer("input.mean", normalization.Mean, channelShape)]),
                 graph.Initializer("input.std", normalization.Std, channelShape)]);
        }
        int lastIndex = network.Nodes.ToList().FindIndex(n => n.Name == lastLayer);
        var needed = new bool[lastIndex + 1];
        needed[lastIndex] = true;
        for (int i = lastIndex; i >= 0; i--)
            if (needed[i])
                foreach (int source in network.Nodes[i].Inputs.Where(s => s >= 0)) needed[source] = true;
        var names = new string[lastIndex + 1];
        string Source(int index) => index < 0 ? networkInput : names[index];
        for (int i = 0; i <= lastIndex; i++)
        {
            if (!needed[i]) continue;
            var node = network.Nodes[i];
            names[i] = node.Layer switch
            {
                Layer layer => Emit(graph, layer, node.Name, Source(node.Inputs[0])),
                Concat => graph.Node("Concat", node.Name, node.Inputs.Select(Source), Int("axis", 1)),
                Ml.Cnn.Layers.Add => EmitSum(graph, node.Name, node.Inputs.Select(Source).ToArray()),
                Multiply multiply => EmitProduct(graph, node.Name, multiply, node.Inputs.Select(Source).ToArray()),
                Crop crop => graph.Node("Slice", node.Name, [Source(node.Inputs[0]),
                    graph.Int64Initializer(node.Name + ".starts", crop.Offset.Top, crop.Offset.Left),
                    graph.Int64Initializer(node.Name + ".ends", crop.Offset.Top + crop.OutputShape[1], crop.Offset.Left + crop.OutputShape[2]),
                    graph.Int64Initializer(node.Name + ".axes", 2, 3)]),
                _ => throw new NotSupportedException($"Layer '{node.Name}' ({node.Layer.GetType().Name}) has no ONNX export."),
            };
        }
        return names[lastIndex];
    }

    private static string Emit(OnnxGraph graph, Layer layer, string name, string input)
    {
        switch (layer)
        {
            case Conv2d conv:
            {
                var inputs = new List<string> { input, Initializer(graph, $"{name}.weight", conv.Weight.Value) };
                if (conv.Bias is not null) inputs.Add(Initializer(graph, $"{name}.bias", conv.Bias.Value));
                return graph.Node("Conv", name, inputs,
                    Ints("kernel_shape", conv.KernelSize.H, conv.KernelSize.W), Ints("strides", conv.Stride.H, conv.Stride.W),
                    Ints("pads", conv.Padding.H, conv.Padding.W, conv.Padding.H, conv.Padding.W),
                    Ints("dilations", conv.Dilation.H, conv.Dilation.W), Int("group", conv.Groups));
            }
            case ConvTranspose2d deconv:
            {
                var inputs = new List<string> { input, Initializer(graph, $"{name}.weight", deconv.Weight.Value) };
                if (deconv.Bias is not null) inputs.Add(Initializer(graph, $"{name}.bias", deconv.Bias.Value));
                return graph.Node("ConvTranspose", name, inputs,
                    Ints("kernel_shape", deconv.KernelSize.H, deconv.KernelSize.W), Ints("strides", deconv.Stride.H, deconv.Stride.W),
                    Ints("pads", deconv.Padding.H, deconv.Padding.W, deconv.Padding.H, deconv.Padding.W),
                    Ints("output_padding", deconv.OutputPadding.H, deconv.OutputPadding.W),
                    Ints("dilations", deconv.Dilation.H, deconv.Dilation.W), Int("group", deconv.Groups));
            }
            case Upsample upsample:
            {
                // PyTorch's nearest takes ⌊dst · in/out⌋ (asymmetric, floor); its bilinear is ONNX's half-pixel rule.
                string scales = graph.Initializer(name + ".scales", [1, 1, upsample.ScaleFactor, upsample.ScaleFactor], 4);
                return upsample.Mode == Backends.UpsampleMode.Nearest
                    ? graph.Node("Resize", name, [input, "", scales], Str("mode", "nearest"),
                        Str("coordinate_transformation_mode", "asymmetric"), Str("nearest_mode", "floor"))
                    : graph.Node("Resize", name, [input, "", scales], Str("mode", "linear"),
                        Str("coordinate_transformation_mode", "half_pixel"));
            }
            case MaxPool2d pool:
                return graph.Node("MaxPool", name, [input], PoolAttributes(pool));
            case AvgPool2d pool:
                return graph.Node("AveragePool", name, [input], [.. PoolAttributes(pool), Int("count_include_pad", pool.IncludesPadding ? 1 : 0)]);
            case GlobalAvgPool { KeepSpatialDims: true }:
                return graph.Node("GlobalAveragePool", name, [input]);
            case GlobalAvgPool:
                return graph.Node("Flatten", name, [graph.Node("GlobalAveragePool", name + ".pool", [input])], Int("axis", 1));
            case Dense dense:
            {
                string flat = layer.InputShape.Rank > 1 ? graph.Node("Flatten", name + ".flatten", [input], Int("axis", 1)) : input;
                var inputs = new List<string> { flat, Initializer(graph, $"{name}.weight", dense.Weight.Value) };
                if (dense.Bias is not null) inputs.Add(Initializer(graph, $"{name}.bias", dense.Bias.Value));
                return graph.Node("Gemm", name, inputs, Int("transB", 1));
            }
            case Relu: return graph.Node("Relu", name, [input]);
            case LeakyRelu leaky: return graph.Node("LeakyRelu", name, [input], Float("alpha", leaky.Alpha));
            case Elu elu: return graph.Node("Elu", name, [input], Float("alpha", elu.Alpha));
            case Sigmoid: return graph.Node("Sigmoid", name, [input]);
            case Tanh: return graph.Node("Tanh", name, [input]);
            case Clip clip:
                return graph.Node("Clip", name, [input, graph.Initializer($"{name}.min", [clip.Min]), graph.Initializer($"{name}.max", [clip.Max])]);
            case HardSigmoid hard: return graph.Node("HardSigmoid", name, [input], Float("alpha", hard.Alpha), Float("beta", hard.Beta));
            // HardSwish is an operator from opset 14 on; at opset 13 it is x · HardSigmoid(x), as PyTorch writes it.
            case HardSwish:
                return graph.Node("Mul", name, [input, graph.Node("HardSigmoid", name + ".gate", [input], Float("alpha", 1f / 6), Float("beta", 0.5f))]);
            case Silu: return graph.Node("Mul", name, [input, graph.Node("Sigmoid", name + ".gate", [input])]);
            // Gelu is an operator from opset 20 on; at opset 13 it is x · (1 + erf(x / √2)) / 2, as PyTorch writes it.
            case Gelu:
            {
                string scaled = graph.Node("Div", name + ".scaled", [input, graph.Initializer(name + ".sqrt2", [MathF.Sqrt(2)])]);
                string onePlusErf = graph.Node("Add", name + ".one_plus_erf", [graph.Node("Erf", name + ".erf", [scaled]),
                    graph.Initializer(name + ".one", [1f])]);
                string gated = graph.Node("Mul", name + ".gated", [input, onePlusErf]);
                return graph.Node("Mul", name, [gated, graph.Initializer(name + ".half", [0.5f])]);
            }
            case Dropout: return input;
            case ChannelSlice slice:
                return graph.Node("Slice", name, [input, graph.Int64Initializer($"{name}.starts", slice.Start),
                    graph.Int64Initializer($"{name}.ends", slice.Start + slice.Count), graph.Int64Initializer($"{name}.axes", 1)]);
            case ChannelShuffle shuffle:
            {
                var (c, h, w) = (layer.InputShape[0], layer.InputShape[1], layer.InputShape[2]);
                string grouped = graph.Reshape(name + ".grouped", input, 0, shuffle.Groups, c / shuffle.Groups, h, w);
                string swapped = graph.Node("Transpose", name + ".transposed", [grouped], Ints("perm", 0, 2, 1, 3, 4));
                return graph.Reshape(name, swapped, 0, c, h, w);
            }
            case Flatten: return graph.Node("Flatten", name, [input], Int("axis", 1));
            case Softmax: return graph.Node("Softmax", name, [input], Int("axis", 1));
            case BatchNorm bn:
                return graph.Node("BatchNormalization", name,
                    [input, Initializer(graph, $"{name}.gamma", bn.Gamma.Value), Initializer(graph, $"{name}.beta", bn.Beta.Value),
                     Initializer(graph, $"{name}.running_mean", bn.RunningMean), Initializer(graph, $"{name}.running_var", bn.RunningVariance)],
                    Float("epsilon", bn.Epsilon));
            // LayerNormalization is an operator from opset 17 on; at opset 13 it is its arithmetic over axis 1.
            case LayerNorm norm:
            {
                long[] perChannel = layer.InputShape.Rank == 3 ? [layer.InputShape[0], 1, 1] : [layer.InputShape[0]];
                string mean = graph.Node("ReduceMean", name + ".mean", [input], Ints("axes", 1), Int("keepdims", 1));
                string centred = graph.Node("Sub", name + ".centred", [input, mean]);
                string square = graph.Node("Pow", name + ".square", [centred, graph.Initializer(name + ".two", [2f])]);
                string variance = graph.Node("ReduceMean", name + ".variance", [square], Ints("axes", 1), Int("keepdims", 1));
                string plusEpsilon = graph.Node("Add", name + ".variance_plus_epsilon",
                    [variance, graph.Initializer(name + ".epsilon", [norm.Epsilon])]);
                string deviation = graph.Node("Sqrt", name + ".deviation", [plusEpsilon]);
                string scaled = graph.Node("Mul", name + ".scaled", [graph.Node("Div", name + ".normalized", [centred, deviation]),
                    graph.Initializer($"{name}.gamma", norm.Gamma.Value.ToArray(), perChannel)]);
                return graph.Node("Add", name, [scaled, graph.Initializer($"{name}.beta", norm.Beta.Value.ToArray(), perChannel)]);
            }
            case ClassToken token:
            {
                var (c, t) = (layer.InputShape[0], (long)layer.InputShape[1] * layer.InputShape[2]);
                string batch = graph.Node("Slice", name + ".batch", [graph.Node("Shape", name + ".shape", [input]),
                    graph.Int64Initializer(name + ".batch.starts", 0), graph.Int64Initializer(name + ".batch.ends", 1)]);
                string broadcast = graph.Node("Concat", name + ".broadcast", [batch, graph.Int64Initializer(name + ".rest", c, 1, 1)],
                    Int("axis", 0));
                string tokens = graph.Node("Expand", name + ".tokens", [graph.Initializer($"{name}.token", token.Token.Value.ToArray(),
                    1, c, 1, 1), broadcast]);
                return graph.Node("Concat", name, [tokens, graph.Reshape(name + ".positions", input, 0, c, 1, t)], Int("axis", 3));
            }
            case PositionEmbedding embedding:
                return graph.Node("Add", name, [input, graph.Initializer($"{name}.embedding", embedding.Embedding.Value.ToArray(),
                    [1, .. layer.InputShape.Dims.Select(d => (long)d)])]);
            case TokenAt at:
            {
                var (c, t) = (layer.InputShape[0], (long)layer.InputShape[1] * layer.InputShape[2]);
                string token = graph.Node("Slice", name + ".token", [graph.Reshape(name + ".positions", input, 0, c, t),
                    graph.Int64Initializer(name + ".starts", at.Index), graph.Int64Initializer(name + ".ends", at.Index + 1),
                    graph.Int64Initializer(name + ".axes", 2)]);
                return graph.Node("Flatten", name, [token], Int("axis", 1));
            }
            // Per head: P = softmax(scale · QᵀK) over the keys, Y = V·Pᵀ, on [N, heads, d, T] views of the 3C channels.
            case SelfAttention attention:
            {
                var (c, h, w) = (layer.OutputShape[0], layer.OutputShape[1], layer.OutputShape[2]);
                long heads = attention.Heads, t = (long)h * w;
                string blocks = graph.Reshape(name + ".heads", input, 0, 3 * heads, c / heads, t);
                string Block(string part, long index) => graph.Node("Slice", $"{name}.{part}", [blocks,
                    graph.Int64Initializer($"{name}.{part}.starts", index * heads), graph.Int64Initializer($"{name}.{part}.ends", (index + 1) * heads),
                    graph.Int64Initializer($"{name}.{part}.axes", 1)]);
                string queries = graph.Node("Transpose", name + ".queries_t", [Block("queries", 0)], Ints("perm", 0, 1, 3, 2));
                string scores = graph.Node("Mul", name + ".scores", [graph.Node("MatMul", name + ".products", [queries, Block("keys", 1)]),
                    graph.Initializer(name + ".scale", [attention.Scale])]);
                string probabilities = graph.Node("Softmax", name + ".probabilities", [scores], Int("axis", 3));
                string attended = graph.Node("MatMul", name + ".attended", [Block("values", 2),
                    graph.Node("Transpose", name + ".probabilities_t", [probabilities], Ints("perm", 0, 1, 3, 2))]);
                return graph.Reshape(name, attended, 0, c, h, w);
            }
            case LocalResponseNorm lrn:
                // ONNX centres an even window one channel later than PyTorch (and Ml.Cnn); odd windows agree.
                if (lrn.Size % 2 == 0)
                    throw new NotSupportedException($"Layer '{name}': LRN with an even size ({lrn.Size}) has no exact ONNX equivalent.");
                return graph.Node("LRN", name, [input], Float("alpha", lrn.Alpha), Float("beta", lrn.Beta), Float("bias", lrn.K), Int("size", lrn.Size));
            default:
                throw new NotSupportedException($"Layer '{name}' ({layer.GetType().Name}) has no ONNX export.");
        }
    }

    private static AttributeProto[] PoolAttributes(Pool2d pool) =>
    [
        Ints("kernel_shape", pool.KernelSize, pool.KernelSize), Ints("strides", pool.Stride, pool.Stride),
        Ints("pads", pool.Padding, pool.Padding, pool.Padding, pool.Padding), Int("ceil_mode", pool.CeilMode ? 1 : 0),
    ];

    /// <summary>A product; a [C] gate is reshaped to [N, C, 1, 1] for ONNX's broadcasting.</summary>
    private static string EmitProduct(OnnxGraph graph, string name, Multiply multiply, string[] inputs)
    {
        var gateShape = multiply.InputShapes[multiply.GateIndex];
        if (gateShape.Rank == 1 && multiply.InputShapes[1 - multiply.GateIndex].Rank == 3)
            inputs[multiply.GateIndex] = graph.Reshape(name + ".gate", inputs[multiply.GateIndex], 0, gateShape[0], 1, 1);
        return graph.Node("Mul", name, inputs);
    }

    private static string EmitSum(OnnxGraph graph, string name, string[] inputs)
    {
        string sum = inputs[0];
        for (int i = 1; i < inputs.Length; i++)
            sum = graph.Node("Add", i == inputs.Length - 1 ? name : $"{name}.{i}", [sum, inputs[i]]);
        return sum;
    }

    private static string Initializer(OnnxGraph graph, string name, Tensors.Tensor tensor) =>
        graph.Initializer(name, tensor.ToArray(), tensor.Shape.Dims.Select(d => (long)d).ToArray());
}
