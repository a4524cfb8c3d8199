using System.Runtime.InteropServices;
using Google.Protobuf;
using Ml.Cnn.Backends;
using Ml.Cnn.Layers;
using Ml.Cnn.Networks;
using Ml.Cnn.Onnx.Proto;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Onnx;

/// <summary>
/// Loads an ONNX model made of the operators Ml.Cnn exports (plus PyTorch's Pad-in-constant-mode, Constant, Reshape
/// to a matrix, MatMul + Add) into a trainable <see cref="Network"/>, weights included. Optionally replaces the last
/// dense layer with a fresh one for another class count, for fine-tuning.
/// </summary>
public static partial class OnnxImporter
{
    /// <summary>
    /// Imports a model file. A model whose input has free sizes besides the batch (a fully convolutional export with
    /// dynamic height and width) needs <paramref name="inputShape"/>, the per-item shape to build for; the network
    /// then resizes to other sizes as any fully convolutional network does.
    /// </summary>
    public static Network Import(string path, IBackend backend, int? newClassCount = null, ulong seed = 0, TensorShape? inputShape = null)
    {
        byte[] bytes = File.ReadAllBytes(path);
        return Import(bytes, backend, newClassCount, seed, path, inputShape);
    }

    /// <summary>Imports model bytes (see the file overload for <paramref name="inputShape"/>).</summary>
    public static Network Import(byte[] bytes, IBackend backend, int? newClassCount = null, ulong seed = 0, string source = "ONNX model",
        TensorShape? inputShape = null)
    {
        ModelProto model;
        try
        {
            model = ModelProto.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"'{source}' is not a valid ONNX model: it is truncated or corrupted ({e.Message}).", e);
        }
        if (model.Graph is null || model.Graph.Node.Count == 0)
            throw new InvalidDataException($"'{source}' holds no graph: it is truncated or not an ONNX model.");
        return new Reader(model.Graph, source).Build(backend, newClassCount, seed, inputShape);
    }

    private sealed partial class Reader(GraphProto graph, string source)
    {
        private readonly Dictionary<string, TensorProto> _constants = Initializers(graph, source);
        private readonly NetworkBuilder _builder = new();
        private readonly Dictionary<string, Node> _tensors = [];
        private readonly Dictionary<string, (int H, int W)> _pendingPads = [];
        private readonly List<(Layer Layer, string Parameter, float[] Values)> _weights = [];
        private readonly Dictionary<Layer, float[]> _runningMeans = [], _runningVariances = [];
        private readonly Dictionary<string, int> _rank = [];
        private Dense? _lastDense;
        private Node _lastDenseNode;
        // Which node made each tensor and which operators read it: Mul(x, Sigmoid(x)) is one SiLU layer, and a global
        // pooling that a convolution reads keeps its 1×1 plane.
        private readonly Dictionary<string, NodeProto> _producers = [];
        private readonly Dictionary<string, List<string>> _consumers = Consumers(graph);
        // Shape arithmetic folded at import (the input's size is fixed but for the batch): int64 values, null for the
        // batch size. Views PyTorch takes for a channel shuffle: [N, g, C/g, H, W], then its transpose.
        private readonly Dictionary<string, long?[]> _integers = [];
        private readonly Dictionary<string, (string Source, int Groups)> _groupedViews = [], _shuffledViews = [];
        // Layer normalization and GELU as PyTorch writes them at opset 13 (ReduceMean, Sub, Pow, ReduceMean, Add ε,
        // Sqrt, Div, then Mul γ and Add β; Div √2, Erf, Add 1, Mul x, Mul ½): each step's tensor, what it is and the
        // tensor the pattern started from; the last step makes one LayerNorm or Gelu layer.
        private readonly Dictionary<string, (Step Step, string Input, float Epsilon)> _partials = [];
        // Tensors PyTorch transposed to channels-last ([N, H, W, C]) to normalize or multiply over channels; Ml.Cnn
        // keeps them channels-first and reads the ops between the two Transposes as per-channel ones.
        private readonly HashSet<string> _channelsLast = [];
        private (LayerNorm Layer, Node Node, bool Scaled)? _lastNorm;
        private (Conv2d Layer, Node Node)? _lastPointwise;
        private IBackend _backend = null!;
        private TensorShape _inputShape = null!;

        private enum Step
        {
            Mean, Centred, Square, Variance, VariancePlusEpsilon, Deviation, // layer normalization
            GeluScaled, GeluErf, GeluOnePlusErf, GeluTimesX,                 // GELU
        }

        private static Dictionary<string, List<string>> Consumers(GraphProto graph)
        {
            var consumers = new Dictionary<string, List<string>>();
            foreach (var node in graph.Node)
                foreach (var input in node.Input)
                {
                    if (!consumers.TryGetValue(input, out var list)) consumers[input] = list = [];
                    list.Add(node.OpType);
                }
            return consumers;
        }

        private static Dictionary<string, TensorProto> Initializers(GraphProto graph, string source)
        {
            var constants = new Dictionary<string, TensorProto>();
            foreach (var t in graph.Initializer)
                if (!constants.TryAdd(t.Name, t)) throw new InvalidDataException($"'{source}': initializer '{t.Name}' is defined twice.");
            return constants;
        }

        public Network Build(IBackend backend, int? newClassCount, ulong seed, TensorShape? requested)
        {
            var input = graph.Input.FirstOrDefault(i => !_constants.ContainsKey(i.Name))
                ?? throw new InvalidDataException($"'{source}': the graph has no input that is not a weight.");
            var dims = input.Type?.TensorType?.Shape?.Dim ?? throw new InvalidDataException($"'{source}': input '{input.Name}' has no tensor shape.");
            if (requested is not null && requested.Rank != dims.Count - 1)
                throw new ArgumentException($"'{source}': input '{input.Name}' has {dims.Count - 1} dimensions after the batch; inputShape {requested} has {requested.Rank}.",
                    nameof(requested));
            var itemDims = dims.Skip(1).Select((d, i) =>
            {
                bool fixedSize = d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue && d.DimValue is > 0 and <= int.MaxValue;
                if (fixedSize && requested is not null && requested[i] != d.DimValue)
                    throw new ArgumentException($"'{source}': input '{input.Name}' has size {d.DimValue} in dimension {i + 1}; inputShape {requested} asks {requested[i]}.",
                        nameof(requested));
                return fixedSize ? (int)d.DimValue : requested?[i] ?? throw new InvalidDataException($"'{source}': input '{input.Name}' has a free size " +
                    $"('{d.DimParam}') in dimension {i + 1}: give the shape to build for (Import's inputShape, e.g. [C, H, W]).");
            }).ToArray();
            var inputShape = new TensorShape(itemDims);
            (_backend, _inputShape) = (backend, inputShape);
            _tensors[input.Name] = _builder.Input;
            _rank[input.Name] = itemDims.Length;

            foreach (var node in graph.Node) ReadChecked(node);

            string outputName = graph.Output.Count == 1 ? graph.Output[0].Name : throw new NotSupportedException($"'{source}': only models with one output are supported, got {graph.Output.Count}.");
            if (!_tensors.TryGetValue(outputName, out var output) || output != _builder.Last)
                throw new NotSupportedException($"'{source}': output '{outputName}' is not produced by the last operator.");
            if (newClassCount is int && _lastDense is not null && _builder.Nodes[^1].Layer is Softmax
                && _lastDenseNode.Index == _builder.Nodes.Count - 2)
                // A classifier exported with its probabilities: the new head is trained on scores, so the softmax goes.
                _builder.Nodes.RemoveAt(_builder.Nodes.Count - 1);
            if (newClassCount is int classes)
            {
                if (_lastDense is null || _lastDenseNode != _builder.Last)
                    throw new NotSupportedException($"'{source}': replacing the head needs a model that ends in a Gemm/MatMul layer.");
                _builder.ReplaceLayer(_lastDenseNode, new Dense(classes) { Name = _lastDense.Name });
                _weights.RemoveAll(w => w.Layer == _lastDense);
            }

            Network network;
            try
            {
                network = Network.Create(_builder, backend, inputShape, seed);
            }
            catch (ArgumentException e)
            {
                throw new InvalidDataException($"'{source}': the graph does not make a network for input {inputShape}: {e.Message}", e);
            }
            foreach (var (layer, parameter, values) in _weights)
            {
                var p = layer.Parameters.Single(q => q.Name == parameter);
                if (p.Value.Length != values.Length)
                    throw new InvalidDataException($"'{source}': layer '{layer.Name}' {parameter} needs {p.Value.Length} values, the model has {values.Length}.");
                p.Value.CopyFrom(values);
            }
            foreach (var (layer, values) in _runningMeans) ((BatchNorm)layer).RunningMean.CopyFrom(values);
            foreach (var (layer, values) in _runningVariances) ((BatchNorm)layer).RunningVariance.CopyFrom(values);
            return network;
        }

        /// <summary>
        /// Reads one node; a malformed one (missing inputs or attributes, impossible sizes) fails with
        /// <see cref="InvalidDataException"/> naming the node, never with a framework exception from inside the reader.
        /// </summary>
        private void ReadChecked(NodeProto node)
        {
            if (node.Output.Count == 0 || node.Input.Count == 0 && node.OpType != "Constant")
                throw new InvalidDataException($"'{source}': node '{node.Name}' ({node.OpType}) has {node.Input.Count} inputs and {node.Output.Count} outputs.");
            try
            {
                Read(node);
                foreach (var output in node.Output) _producers[output] = node;
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or IndexOutOfRangeException or OverflowException)
            {
                throw new InvalidDataException($"'{source}': node '{node.Name}' ({node.OpType}) is malformed: {e.Message}", e);
            }
        }

        private void Read(NodeProto node)
        {
            string name = LayerName(node);
            string Out = node.Output[0];
            if (Fold(node)) return;
            if (ReadTransformer(node, name)) return;
            if (ReadPattern(node, name)) return;
            if (node.Input.FirstOrDefault(_channelsLast.Contains) is { } last && !ChannelsLastSafe(node))
                throw Unsupported(node, $"it reads '{last}', a channels-last view (after Transpose [0, 2, 3, 1]); only layer " +
                    "normalization, MatMul, GELU and elementwise operators are supported there");
            switch (node.OpType)
            {
                case "Constant":
                    _constants[Out] = node.Attribute.SingleOrDefault(a => a.Name == "value")?.T
                        ?? throw Unsupported(node, "only Constant nodes holding a tensor ('value') are supported");
                    return;
                case "Identity" when _constants.TryGetValue(node.Input[0], out var constant):
                    // PyTorch passes initializers it shares between layers through Identity nodes.
                    _constants[Out] = constant;
                    return;
                case "Identity" or "Dropout":
                    Alias(node, Out);
                    return;
                case "Pad":
                    ReadPad(node, name);
                    return;
                case "Conv":
                    ReadConv(node, name);
                    return;
                case "ConvTranspose":
                    ReadConvTranspose(node, name);
                    return;
                case "Resize":
                    ReadResize(node, name);
                    return;
                case "Gemm":
                    ReadGemm(node, name);
                    return;
                case "MatMul":
                {
                    var w = Floats(node.Input[1], name);
                    var shape = Dims(node.Input[1]);
                    if (shape.Length != 2) throw Unsupported(node, "MatMul needs a 2-D weight initializer");
                    var dense = new Dense(checked((int)shape[1]), bias: false) { Name = Unique(name) };
                    _weights.Add((dense, "weight", Transpose(w, checked((int)shape[0]), checked((int)shape[1]))));
                    AddLayer(node, dense, Out, 1);
                    _lastDense = dense;
                    _lastDenseNode = _builder.Last;
                    return;
                }
                case "Add" when node.Input.Any(_constants.ContainsKey):
                {
                    // MatMul + Add(bias): PyTorch's Linear without Gemm.
                    string activation = node.Input.Single(i => !_constants.ContainsKey(i));
                    if (_lastDense is null || Source(node, activation) != _lastDenseNode)
                        throw Unsupported(node, "Add with a constant is only supported as the bias of a MatMul");
                    var bias = Floats(node.Input.Single(_constants.ContainsKey), name);
                    var withBias = new Dense(bias.Length) { Name = _lastDense.Name };
                    _builder.ReplaceLayer(_lastDenseNode, withBias);
                    var weight = _weights.Single(w => w.Layer == _lastDense);
                    _weights.Remove(weight);
                    _weights.Add((withBias, "weight", weight.Values));
                    _weights.Add((withBias, "bias", bias));
                    _lastDense = withBias;
                    _tensors[Out] = _lastDenseNode;
                    _rank[Out] = 1;
                    return;
                }
                case "Add":
                    AddMerge(node, new Ml.Cnn.Layers.Add { Name = Unique(name) }, Out);
                    return;
                case "Concat" when node.Input.Count == 1:
                    Alias(node, Out); // DenseNet's first layer concatenates a single tensor
                    return;
                case "Concat":
                    if (Int(node, "axis", 1) != 1) throw Unsupported(node, "Concat is supported along channels (axis 1) only");
                    AddMerge(node, new Concat { Name = Unique(name) }, Out);
                    return;
                case "Mul":
                    ReadMul(node, name);
                    return;
                case "Clip":
                {
                    // Opset 11 on: bounds are optional inputs; before, attributes.
                    float Bound(int index, string attribute, float none) =>
                        node.Input.Count > index && !string.IsNullOrEmpty(node.Input[index]) ? Scalar(node.Input[index], name)
                        : Float(node, attribute, none);
                    AddLayer(node, new Clip(Bound(1, "min", float.NegativeInfinity), Bound(2, "max", float.PositiveInfinity)) { Name = Unique(name) }, Out);
                    return;
                }
                case "HardSigmoid":
                    AddLayer(node, new HardSigmoid(Float(node, "alpha", 0.2f), Float(node, "beta", 0.5f)) { Name = Unique(name) }, Out);
                    return;
                case "HardSwish": AddLayer(node, new HardSwish { Name = Unique(name) }, Out); return;
                case "ReduceMean":
                {
                    // The spatial mean (x.mean([2, 3]) in PyTorch) is global average pooling.
                    var axes = Ints(node, "axes", []).Select(a => a < 0 ? a + 4 : a).Order().ToArray();
                    if (_rank.GetValueOrDefault(node.Input[0], 3) != 3 || !axes.SequenceEqual([2L, 3L]))
                        throw Unsupported(node, "ReduceMean is supported over the spatial axes [2, 3] of an image only");
                    bool keep = Int(node, "keepdims", 1) == 1;
                    AddLayer(node, new GlobalAvgPool(keep) { Name = Unique(name) }, Out, keep ? 3 : 1);
                    return;
                }
                case "Relu": AddLayer(node, new Relu { Name = Unique(name) }, Out); return;
                case "Sigmoid": AddLayer(node, new Sigmoid { Name = Unique(name) }, Out); return;
                case "Tanh": AddLayer(node, new Tanh { Name = Unique(name) }, Out); return;
                case "LeakyRelu": AddLayer(node, new LeakyRelu(Float(node, "alpha", 0.01f)) { Name = Unique(name) }, Out); return;
                case "Elu": AddLayer(node, new Elu(Float(node, "alpha", 1f)) { Name = Unique(name) }, Out); return;
                case "Softmax": AddLayer(node, new Softmax { Name = Unique(name) }, Out); return;
                case "Flatten":
                    if (Int(node, "axis", 1) != 1) throw Unsupported(node, "Flatten is supported with axis 1 only");
                    AddLayer(node, new Flatten { Name = Unique(name) }, Out, 1);
                    return;
                case "Reshape":
                    ReadReshape(node, name);
                    return;
                case "Transpose":
                {
                    if (!_groupedViews.TryGetValue(node.Input[0], out var view) || !Ints(node, "perm", []).SequenceEqual([0L, 2, 1, 3, 4]))
                        throw Unsupported(node, "Transpose is supported as the middle of a channel shuffle (a [N, g, C/g, H, W] view, perm [0, 2, 1, 3, 4]) only");
                    _shuffledViews[Out] = view;
                    return;
                }
                case "Slice":
                    ReadSlice(node, name);
                    return;
                case "GlobalAveragePool":
                {
                    // Ml.Cnn's global pooling drops the 1×1 spatial dimensions (a following Flatten is then a no-op)
                    // unless something other than a classifier reads it: a squeeze-and-excitation convolution or gate.
                    bool keep = _consumers.GetValueOrDefault(Out, []).Any(op => op is not ("Flatten" or "Reshape" or "Gemm" or "MatMul"));
                    AddLayer(node, new GlobalAvgPool(keep) { Name = Unique(name) }, Out, keep ? 3 : 1);
                    return;
                }
                case "MaxPool" or "AveragePool":
                    ReadPool(node, name);
                    return;
                case "BatchNormalization":
                {
                    var bn = new BatchNorm(epsilon: Float(node, "epsilon", 1e-5f)) { Name = Unique(name) };
                    _weights.Add((bn, "gamma", Floats(node.Input[1], name)));
                    _weights.Add((bn, "beta", Floats(node.Input[2], name)));
                    _runningMeans[bn] = Floats(node.Input[3], name);
                    _runningVariances[bn] = Floats(node.Input[4], name);
                    if (new[] { 1, 2, 4 }.Any(i => Floats(node.Input[i], name).Length != _runningMeans[bn].Length))
                        throw Malformed(node, "scale, bias, mean and variance must have one value per channel each");
                    AddLayer(node, bn, Out);
                    return;
                }
                case "LRN":
                {
                    int size = checked((int)Int(node, "size", 0));
                    if (size % 2 == 0) throw Unsupported(node, "LRN windows of even size are centred differently from Ml.Cnn's");
                    AddLayer(node, new LocalResponseNorm(size, Float(node, "alpha", 1e-4f), Float(node, "beta", 0.75f), Float(node, "bias", 1f)) { Name = Unique(name) }, Out);
                    return;
                }
                case "Sub" or "Div" when node.Input.Count == 2 && _tensors.TryGetValue(node.Input[0], out var source) && source == _builder.Input:
                    throw Unsupported(node, "input standardization (Sub/Div on the input, as CnnModel.ExportToOnnx writes it) is not a " +
                        "layer of Ml.Cnn; export the network without it (OnnxExporter.Export(model.Network, path)) and train with NormalizeInputs");
                default:
                    throw Unsupported(node, "this operator is not supported");
            }
        }

        /// <summary>
        /// The operators of the patterns above, of channels-last views and of per-channel constants (ConvNeXt's layer
        /// scale); true when the node was one of them.
        /// </summary>
        private bool ReadPattern(NodeProto node, string name)
        {
            string Out = node.Output[0];
            (Step Step, string Input, float Epsilon)? Partial(int i) =>
                i < node.Input.Count && _partials.TryGetValue(node.Input[i], out var p) ? p : null;
            bool Made(int i) => i < node.Input.Count && _tensors.ContainsKey(node.Input[i]);
            float? Value(int i) => i < node.Input.Count && _constants.TryGetValue(node.Input[i], out var t)
                && t.DataType == (int)TensorProto.Types.DataType.Float && Floats(node.Input[i], name) is [var v] ? v : null;
            int? ConstantAt = node.Input.Count == 2 && !_partials.ContainsKey(node.Input[0]) && !_partials.ContainsKey(node.Input[1])
                ? node.Input.ToList().FindIndex(_constants.ContainsKey) is >= 0 and var k ? k : null : null;
            void Mark(Step step, string input, float epsilon = 0) => _partials[Out] = (step, input, epsilon);
            // Which of two inputs holds a step of the patterns (either order), and the other.
            (int Other, string Input)? Holding(Step step) => node.Input.Count != 2 ? null
                : Partial(0) is { } a && a.Step == step ? (1, a.Input) : Partial(1) is { } b && b.Step == step ? (0, b.Input) : null;

            switch (node.OpType)
            {
                case "Transpose" when Ints(node, "perm", []).SequenceEqual([0L, 2, 3, 1]) && Made(0)
                    && !_channelsLast.Contains(node.Input[0]) && _rank.GetValueOrDefault(node.Input[0], 3) == 3:
                    Alias(node, Out);
                    _channelsLast.Add(Out);
                    return true;
                case "Transpose" when Ints(node, "perm", []).SequenceEqual([0L, 3, 1, 2]) && _channelsLast.Contains(node.Input[0]):
                    Alias(node, Out);
                    _channelsLast.Remove(Out);
                    return true;
                case "ReduceMean" when OverChannels(node) && Int(node, "keepdims", 1) == 1 && Partial(0) is (Step.Square, var x, _):
                    Mark(Step.Variance, x);
                    return true;
                case "ReduceMean" when OverChannels(node) && Int(node, "keepdims", 1) == 1 && Made(0):
                    Mark(Step.Mean, node.Input[0]);
                    return true;
                case "Sub" when Partial(1) is (Step.Mean, var x, _) && node.Input[0] == x:
                    Mark(Step.Centred, x);
                    return true;
                case "Pow" when Partial(0) is (Step.Centred, var x, _) && Value(1) == 2:
                    Mark(Step.Square, x);
                    return true;
                case "Add" when Partial(0) is (Step.Variance, var x, _) && Value(1) is float epsilon:
                    Mark(Step.VariancePlusEpsilon, x, epsilon);
                    return true;
                case "Sqrt" when Partial(0) is (Step.VariancePlusEpsilon, var x, var epsilon):
                    Mark(Step.Deviation, x, epsilon);
                    return true;
                case "Div" when Partial(0) is (Step.Centred, var x, _) && Partial(1) is (Step.Deviation, var y, var epsilon) && x == y:
                {
                    var norm = new LayerNorm(epsilon) { Name = Unique(name) };
                    AddLayerOn(node, x, norm, Out);
                    _lastNorm = (norm, _tensors[Out], false);
                    return true;
                }
                case "LayerNormalization":
                {
                    // Opset 17's operator over the last axis: the channels of a channels-last view, or a vector's features.
                    long axis = Int(node, "axis", -1);
                    bool overChannels = _channelsLast.Contains(node.Input[0]) ? axis == -1 || axis == (_sequences.Contains(node.Input[0]) ? 2 : 3)
                        : _rank.GetValueOrDefault(node.Input[0], 3) == 1 && axis is -1 or 1;
                    if (!overChannels)
                        throw Unsupported(node, "LayerNormalization is supported over the channels (the last axis of a channels-last view) only");
                    var norm = new LayerNorm(Float(node, "epsilon", 1e-5f)) { Name = Unique(name) };
                    _weights.Add((norm, "gamma", Floats(node.Input[1], name)));
                    if (node.Input.Count > 2 && !string.IsNullOrEmpty(node.Input[2]))
                        _weights.Add((norm, "beta", Floats(node.Input[2], name)));
                    AddLayer(node, norm, Out);
                    return true;
                }
                case "Mul" when ConstantAt is int c && _lastNorm is { Scaled: false } last
                                && _tensors.GetValueOrDefault(node.Input[1 - c]) == last.Node:
                    _weights.Add((last.Layer, "gamma", PerChannel(node, c, last.Layer, name)));
                    _lastNorm = last with { Scaled = true };
                    _tensors[Out] = last.Node;
                    _rank[Out] = _rank[node.Input[1 - c]];
                    KeepView(node.Input[1 - c], Out);
                    return true;
                case "Add" when ConstantAt is int c && _lastNorm is { } last && _tensors.GetValueOrDefault(node.Input[1 - c]) == last.Node:
                    _weights.Add((last.Layer, "beta", PerChannel(node, c, last.Layer, name)));
                    last.Layer.Name = Unique(name); // the layer is named after the node that completes it, as PyTorch's module is
                    _lastNorm = null;
                    Alias(node, Out, node.Input[1 - c]);
                    return true;
                case "Gelu":
                    if (node.Attribute.FirstOrDefault(a => a.Name == "approximate")?.S.ToStringUtf8() is { Length: > 0 } approximate
                        && approximate != "none")
                        throw Unsupported(node, $"only the exact GELU is supported, not approximate='{approximate}'");
                    AddLayer(node, new Gelu { Name = Unique(name) }, Out);
                    return true;
                case "Div" when Made(0) && Value(1) is float root && MathF.Abs(root - MathF.Sqrt(2)) < 1e-5f:
                    Mark(Step.GeluScaled, node.Input[0]);
                    return true;
                case "Erf" when Partial(0) is (Step.GeluScaled, var x, _):
                    Mark(Step.GeluErf, x);
                    return true;
                case "Add" when Holding(Step.GeluErf) is (var other, var x) && Value(other) == 1:
                    Mark(Step.GeluOnePlusErf, x);
                    return true;
                case "Mul" when Holding(Step.GeluOnePlusErf) is (var other, var x) && node.Input[other] == x:
                    Mark(Step.GeluTimesX, x);
                    return true;
                case "Mul" when Holding(Step.GeluTimesX) is (var other, var x) && Value(other) == 0.5f:
                    AddLayerOn(node, x, new Gelu { Name = Unique(name) }, Out);
                    return true;
                case "MatMul" when _channelsLast.Contains(node.Input[0]):
                {
                    // A Linear over the channels of a channels-last view is a 1×1 convolution.
                    var shape = Dims(node.Input[1]);
                    if (shape.Length != 2) throw Unsupported(node, "MatMul on a channels-last view needs a 2-D weight initializer");
                    var (inputs, outputs) = (checked((int)shape[0]), checked((int)shape[1]));
                    var conv = new Conv2d(outputs, 1, bias: false) { Name = Unique(name) };
                    _weights.Add((conv, "weight", Transpose(Floats(node.Input[1], name), inputs, outputs)));
                    AddLayer(node, conv, Out);
                    _lastPointwise = (conv, _tensors[Out]);
                    return true;
                }
                case "Add" when ConstantAt is int c && _lastPointwise is { } pointwise
                                && _tensors.GetValueOrDefault(node.Input[1 - c]) == pointwise.Node:
                {
                    var bias = Floats(node.Input[c], name);
                    var withBias = new Conv2d(pointwise.Layer.OutChannels, 1) { Name = pointwise.Layer.Name };
                    if (bias.Length != withBias.OutChannels)
                        throw Malformed(node, $"the bias has {bias.Length} values for {withBias.OutChannels} channels");
                    _builder.ReplaceLayer(pointwise.Node, withBias);
                    var weight = _weights.Single(w => w.Layer == pointwise.Layer);
                    _weights.Remove(weight);
                    _weights.Add((withBias, "weight", weight.Values));
                    _weights.Add((withBias, "bias", bias));
                    _lastPointwise = null;
                    Alias(node, Out, node.Input[1 - c]);
                    return true;
                }
                case "Mul" when ConstantAt is int c && Made(1 - c) && _rank.GetValueOrDefault(node.Input[1 - c], 3) == 3:
                {
                    // A constant per channel (ConvNeXt's layer scale) is a depthwise 1×1 convolution: trainable, exported as Conv.
                    var scale = PerChannel(node, c, null, name);
                    var conv = new Conv2d(scale.Length, 1, groups: scale.Length, bias: false) { Name = Unique(name) };
                    _weights.Add((conv, "weight", scale));
                    AddLayerOn(node, node.Input[1 - c], conv, Out);
                    return true;
                }
                default:
                    return false;
            }
        }

        /// <summary>Operators that mean the same on a channels-last view as on the channels-first tensor Ml.Cnn holds.</summary>
        private bool ChannelsLastSafe(NodeProto node) => node.OpType switch
        {
            "Identity" or "Dropout" or "Relu" or "Sigmoid" or "Tanh" or "LeakyRelu" or "Elu" or "Clip" or "HardSigmoid"
                or "HardSwish" => true,
            "Add" or "Mul" => node.Input.All(_channelsLast.Contains), // equal shapes in the same layout, or SiLU
            _ => false,
        };

        /// <summary>A ReduceMean over the channels: the last axis of a channels-last view, or axis 1.</summary>
        private bool OverChannels(NodeProto node)
        {
            var axes = Ints(node, "axes", []);
            string input = _partials.TryGetValue(node.Input[0], out var partial) ? partial.Input : node.Input[0];
            return _channelsLast.Contains(input) ? axes is [-1] || axes is [2] && _sequences.Contains(input) || axes is [3] && !_sequences.Contains(input)
                : axes is [1] || axes is [-1] && _rank.GetValueOrDefault(input, 3) == 1;
        }

        /// <summary>
        /// A constant with one value per channel of the node's other input: shaped [C] on a channels-last view or a
        /// vector, [C, 1, 1] or [1, C, 1, 1] on an image (a [C] constant would broadcast along the width there).
        /// </summary>
        private float[] PerChannel(NodeProto node, int constant, Layer? layer, string name)
        {
            string other = node.Input[1 - constant];
            var dims = Dims(node.Input[constant]);
            var values = Floats(node.Input[constant], name);
            bool lastAxis = _channelsLast.Contains(other) || _rank.GetValueOrDefault(other, 3) == 1;
            bool shaped = lastAxis ? dims.Length == 1
                : dims.Length is 3 or 4 && dims[^1] == 1 && dims[^2] == 1 && (dims.Length == 3 || dims[0] == 1);
            int channels = ShapeOf(node, other)[0];
            if (!shaped || values.Length != channels)
                throw Unsupported(node, $"a constant [{string.Join(", ", dims)}] does not hold one value per channel of {ShapeOf(node, other)}" +
                    (lastAxis ? "" : " (on an image: [C, 1, 1])") + (layer is null ? "" : $" for layer '{layer.Name}'"));
            return values;
        }

        /// <summary>
        /// Mul(x, Sigmoid(x)) is SiLU and Mul(x, HardSigmoid(x)) with PyTorch's constants is hard-swish, as PyTorch
        /// exports them at opset 13: the gate's layer becomes the activation. Any other product of two tensors is a
        /// <see cref="Multiply"/> (equal shapes, or a per-channel gate).
        /// </summary>
        private void ReadMul(NodeProto node, string name)
        {
            if (node.Input.Count != 2 || node.Input.Any(_constants.ContainsKey))
                throw Unsupported(node, "Mul is supported between two computed tensors only");
            for (int g = 0; g < 2; g++)
            {
                string gate = node.Input[g], other = node.Input[1 - g];
                if (_producers.GetValueOrDefault(gate) is not { } producer || producer.Input[0] != other
                    || _consumers.GetValueOrDefault(gate, []).Count != 1) continue;
                Layer? fused = producer.OpType switch
                {
                    "Sigmoid" => new Silu(),
                    "HardSigmoid" when Math.Abs(Float(producer, "alpha", 0.2f) - 1f / 6) < 1e-6 && Float(producer, "beta", 0.5f) == 0.5f => new HardSwish(),
                    _ => null,
                };
                if (fused is null) continue;
                var gateNode = _tensors[gate];
                // Ml.Cnn exports these activations as Mul("act", Sigmoid("act.gate")): the layer keeps its own name.
                string gateName = _builder.Nodes[gateNode.Index].Layer.Name;
                fused.Name = gateName.EndsWith(".gate", StringComparison.Ordinal) ? Unique(gateName[..^".gate".Length]) : gateName;
                _builder.ReplaceLayer(gateNode, fused);
                _tensors[node.Output[0]] = gateNode;
                _rank[node.Output[0]] = _rank.GetValueOrDefault(other, 3);
                return;
            }
            var full = node.Input.MaxBy(i => _rank.GetValueOrDefault(i, 3))!;
            _tensors[node.Output[0]] = _builder.Merge(new Multiply { Name = Unique(name) }, node.Input.Select(i => Source(node, i)).ToArray());
            _rank[node.Output[0]] = _rank.GetValueOrDefault(full, 3);
        }

        /// <summary>
        /// Shape arithmetic on known sizes (Shape, Gather, Unsqueeze, Squeeze, Cast, Concat, Add, Sub, Mul, Div),
        /// evaluated here so that the Reshape or Slice it feeds has constant arguments. False for any other node.
        /// </summary>
        private bool Fold(NodeProto node)
        {
            long?[]? Known(int i) => i < node.Input.Count ? Integers(node.Input[i]) : null;
            long?[]? result = node.OpType switch
            {
                "Shape" when _tensors.ContainsKey(node.Input[0]) || _attention.ContainsKey(node.Input[0]) =>
                    ShapeRange(node, OnnxDims(node, node.Input[0])),
                "Shape" when Known(0) is { } values => [values.Length],
                "Reshape" when Known(0) is { } values && Known(1) is [-1] => values,
                "ConstantOfShape" when Known(0) is [long length] && length is >= 0 and <= 8
                                       && node.Attribute.SingleOrDefault(a => a.Name == "value")?.T is { } value
                                       && value.DataType == (int)TensorProto.Types.DataType.Int64 =>
                    Enumerable.Repeat((long?)(value.RawData.Length > 0 ? BitConverter.ToInt64(value.RawData.Span) : value.Int64Data[0]),
                        (int)length).ToArray(),
                "Equal" when Known(0) is { } a && Known(1) is { } b && a.Length == b.Length =>
                    a.Zip(b, (x, y) => x is null || y is null ? null : (long?)(x == y ? 1 : 0)).ToArray(),
                "Where" when Known(0) is { } condition && Known(1) is { } yes && Known(2) is { } no
                             && yes.Length == condition.Length && no.Length == condition.Length =>
                    condition.Select((c, i) => c is null ? null : c != 0 ? yes[i] : no[i]).ToArray(),
                "Gather" when Known(0) is { } data && Known(1) is { } indices && Int(node, "axis", 0) == 0 =>
                    indices.Select(i => i is { } k && k >= -data.Length && k < data.Length ? data[k < 0 ? k + data.Length : k]
                        : throw Malformed(node, $"index {i} is outside the {data.Length} values")).ToArray(),
                // An int64 constant stays a constant (Pad and others read it as one); casts to floats are not shape arithmetic.
                "Identity" when _constants.ContainsKey(node.Input[0]) => null,
                "Cast" when Int(node, "to", 0) is not ((long)TensorProto.Types.DataType.Int64 or (long)TensorProto.Types.DataType.Int32) => null,
                "Unsqueeze" or "Squeeze" or "Cast" or "Identity" when Known(0) is { } values => values,
                "Concat" when node.Input.All(i => Integers(i) is not null) => node.Input.SelectMany(i => Integers(i)!).ToArray(),
                "Add" or "Sub" or "Mul" or "Div" when Known(0) is { } a && Known(1) is { } b => Elementwise(node, a, b),
                _ => null,
            };
            if (result is null) return false;
            _integers[node.Output[0]] = result;
            return true;
        }

        /// <summary>Shape's optional start and end (opset 15 on), clamped as ONNX clamps them.</summary>
        private static long?[] ShapeRange(NodeProto node, long?[] dims)
        {
            long Clamp(long i) => Math.Clamp(i < 0 ? i + dims.Length : i, 0, dims.Length);
            int start = (int)Clamp(Int(node, "start", 0)), end = (int)Clamp(Int(node, "end", dims.Length));
            return end > start ? dims[start..end] : [];
        }

        private long?[] Elementwise(NodeProto node, long?[] a, long?[] b)
        {
            if (a.Length != b.Length && a.Length != 1 && b.Length != 1)
                throw Malformed(node, $"cannot broadcast {a.Length} values with {b.Length}");
            return Enumerable.Range(0, Math.Max(a.Length, b.Length)).Select(i =>
            {
                var (x, y) = (a[a.Length == 1 ? 0 : i], b[b.Length == 1 ? 0 : i]);
                if (x is not { } p || y is not { } q) return (long?)null; // anything of the batch size stays unknown
                return node.OpType switch
                {
                    "Add" => p + q,
                    "Sub" => p - q,
                    "Mul" => p * q,
                    _ => q != 0 ? p / q : throw Malformed(node, "division by zero"),
                };
            }).ToArray();
        }

        /// <summary>An int64 tensor known at import: folded shape arithmetic or a constant; null otherwise.</summary>
        private long?[]? Integers(string tensor) =>
            _integers.TryGetValue(tensor, out var v) ? v
            : _constants.TryGetValue(tensor, out var t) && t.DataType == (int)TensorProto.Types.DataType.Int64
                ? Longs(tensor, tensor).Select(x => (long?)x).ToArray() : null;

        /// <summary>
        /// The per-item shape of a computed tensor, from a shape-only network of the layers read so far (built again
        /// only when layers were added since: PyTorch asks for one tensor's sizes several times in a row).
        /// </summary>
        private TensorShape ShapeOf(NodeProto node, string tensor)
        {
            var source = Source(node, tensor);
            if (source == _builder.Input) return _inputShape;
            if (_shapes is not { } built || built.Layers != _builder.Nodes.Count)
                _shapes = built = (_builder.Nodes.Count, Network.Create(_builder, _backend, _inputShape, allocate: false));
            return built.Network.Nodes[source.Index].Layer.OutputShape;
        }

        private (int Layers, Network Network)? _shapes;

        /// <summary>
        /// Reshape to [N, features] (a Flatten), to the input's own shape (nothing), or the two views of a channel
        /// shuffle: [N, g, C/g, H, W] of an image, and [N, C, H, W] (or [N, -1, H, W]) of its transpose.
        /// </summary>
        private void ReadReshape(NodeProto node, string name)
        {
            string Out = node.Output[0];
            var shape = Integers(node.Input[1]) ?? throw Unsupported(node, "the target shape must be constant or computed from known sizes");
            bool batch = shape.Length > 0 && shape[0] is null or 0 or -1;
            if (_shuffledViews.TryGetValue(node.Input[0], out var shuffled))
            {
                var image = ShapeOf(node, shuffled.Source);
                if (!batch || shape.Length != 4 || shape[1] is not (-1L or null) && shape[1] != image[0] || shape[2] != image[1] || shape[3] != image[2])
                    throw Unsupported(node, "a transposed channel view must be reshaped back to [N, C, H, W]");
                _tensors[Out] = _builder.Add(new ChannelShuffle(shuffled.Groups) { Name = Unique(name) }, Source(node, shuffled.Source));
                _rank[Out] = 3;
                return;
            }
            var input = ShapeOf(node, node.Input[0]);
            if (batch && shape.Length == 2 && (shape[1] is null or -1 || shape[1] == input.Length))
            {
                AddLayer(node, new Flatten { Name = Unique(name) }, Out, 1);
                return;
            }
            if (batch && input.Rank == 1 && shape.Length == 4 && shape[1] == input[0] && shape[2] == 1 && shape[3] == 1)
            {
                // [C] to [N, C, 1, 1]: a per-channel gate as ONNX broadcasts it (Ml.Cnn's Multiply takes [C] gates as they are).
                Alias(node, Out);
                return;
            }
            if (batch && input.Rank == 3 && shape.Length == 3 && shape[1] == input[0] && shape[2] == input[1] * input[2])
            {
                // [N, C, H·W]: the planes flattened, a vision transformer's patches on their way to tokens.
                Alias(node, Out);
                _planeViews.Add(Out);
                return;
            }
            if (batch && input.Rank == 3 && shape.Length == 5 && shape[1] * shape[2] == input[0] && shape[3] == input[1] && shape[4] == input[2])
            {
                _groupedViews[Out] = (node.Input[0], checked((int)shape[1]!.Value));
                return;
            }
            if (batch && shape.Length == input.Rank + 1 && shape.Skip(1).Select((d, i) => d == input[i] || d == -1 && input.Rank == 1).All(x => x))
            {
                Alias(node, Out);
                return;
            }
            throw Unsupported(node, $"Reshape of [N, {string.Join(", ", input.Dims)}] to [{string.Join(", ", shape.Select(d => d?.ToString() ?? "N"))}] " +
                "is supported as a Flatten, a channel shuffle or a no-op only");
        }

        /// <summary>A Slice along channels with step 1 (ShuffleNet's chunk) is a <see cref="ChannelSlice"/>.</summary>
        private void ReadSlice(NodeProto node, string name)
        {
            long?[] Argument(int i, long fallback) => i < node.Input.Count && !string.IsNullOrEmpty(node.Input[i])
                ? Integers(node.Input[i]) ?? throw Unsupported(node, "Slice arguments must be constant or computed from known sizes") : [fallback];
            var (starts, ends, axes, steps) = (Argument(1, 0), Argument(2, 0), Argument(3, 0), Argument(4, 1));
            var input = ShapeOf(node, node.Input[0]);
            if (input.Rank != 3 || starts.Length != 1 || axes is not [1 or -3] || steps is not [1] || starts[0] is not { } start || ends[0] is not { } end)
                throw Unsupported(node, "Slice is supported along the channels of an image with step 1 only");
            int channels = input[0];
            start = Math.Clamp(start < 0 ? start + channels : start, 0, channels);
            end = Math.Clamp(end < 0 ? end + channels : end, 0, channels);
            if (end <= start) throw Unsupported(node, $"the slice [{start}, {end}) of {channels} channels is empty");
            AddLayer(node, new ChannelSlice((int)start, (int)(end - start)) { Name = Unique(name) }, node.Output[0]);
        }

        private void ReadPad(NodeProto node, string name)
        {
            if (node.Attribute.FirstOrDefault(a => a.Name == "mode") is { } mode && mode.S.ToStringUtf8() != "constant")
                throw Unsupported(node, "only constant padding is supported");
            if (node.Input.Count > 2 && !string.IsNullOrEmpty(node.Input[2]) && Floats(node.Input[2], name).Any(v => v != 0))
                throw Unsupported(node, "only zero padding is supported");
            var pads = Longs(node.Input[1], name);
            // [x1_begin, x2_begin, x3_begin, x4_begin, x1_end, …] for NCHW: only symmetric H and W padding folds into the next layer.
            if (pads.Length != 8 || pads[0] != 0 || pads[1] != 0 || pads[4] != 0 || pads[5] != 0 || pads[2] != pads[6] || pads[3] != pads[7])
                throw Unsupported(node, "only symmetric padding of height and width is supported");
            Alias(node, node.Output[0]);
            _pendingPads[node.Output[0]] = (checked((int)pads[2]), checked((int)pads[3]));
        }

        private void ReadConv(NodeProto node, string name)
        {
            var weight = Floats(node.Input[1], name);
            var shape = Dims(node.Input[1]);
            if (shape.Length != 4) throw Malformed(node, $"a Conv weight has 4 dimensions, '{node.Input[1]}' has {shape.Length}");
            var (padH, padW) = Pads(node);
            var (extraH, extraW) = _pendingPads.GetValueOrDefault(node.Input[0]);
            var strides = Ints(node, "strides", [1, 1]);
            var dilations = Ints(node, "dilations", [1, 1]);
            bool hasBias = node.Input.Count > 2 && !string.IsNullOrEmpty(node.Input[2]);
            var conv = new Conv2d(checked((int)shape[0]), (checked((int)shape[2]), checked((int)shape[3])), (checked((int)strides[0]), checked((int)strides[1])),
                (padH + extraH, padW + extraW), (checked((int)dilations[0]), checked((int)dilations[1])), checked((int)Int(node, "group", 1)), hasBias) { Name = Unique(name) };
            _weights.Add((conv, "weight", weight));
            if (hasBias) _weights.Add((conv, "bias", Floats(node.Input[2], name)));
            AddLayer(node, conv, node.Output[0]);
        }

        private void ReadConvTranspose(NodeProto node, string name)
        {
            var weight = Floats(node.Input[1], name);
            var shape = Dims(node.Input[1]);
            if (shape.Length != 4) throw Malformed(node, $"a ConvTranspose weight has 4 dimensions, '{node.Input[1]}' has {shape.Length}");
            if (node.Attribute.Any(a => a.Name == "output_shape")) throw Unsupported(node, "output_shape is not supported; give pads and output_padding");
            var (padH, padW) = Pads(node);
            var strides = Ints(node, "strides", [1, 1]);
            var dilations = Ints(node, "dilations", [1, 1]);
            var outputPadding = Ints(node, "output_padding", [0, 0]);
            if (shape[2] != shape[3] || padH != padW || strides[0] != strides[1] || dilations[0] != dilations[1] || outputPadding[0] != outputPadding[1])
                throw Unsupported(node, "only square kernels, strides, padding, dilation and output padding are supported");
            int group = checked((int)Int(node, "group", 1));
            bool hasBias = node.Input.Count > 2 && !string.IsNullOrEmpty(node.Input[2]);
            var layer = new ConvTranspose2d(checked((int)shape[1] * group), checked((int)shape[2]), checked((int)strides[0]), padH,
                checked((int)outputPadding[0]), checked((int)dilations[0]), group, hasBias) { Name = Unique(name) };
            _weights.Add((layer, "weight", weight));
            if (hasBias) _weights.Add((layer, "bias", Floats(node.Input[2], name)));
            AddLayer(node, layer, node.Output[0]);
        }

        /// <summary>
        /// Resize by a whole factor, as PyTorch exports <c>interpolate(scale_factor)</c>: nearest with asymmetric
        /// coordinates and floor, or linear with (pytorch_)half_pixel coordinates.
        /// </summary>
        private void ReadResize(NodeProto node, string name)
        {
            string Text(string attribute, string fallback) =>
                node.Attribute.FirstOrDefault(a => a.Name == attribute)?.S.ToStringUtf8() is { Length: > 0 } text ? text : fallback;
            if (node.Input.Count < 3 || string.IsNullOrEmpty(node.Input[2]))
                throw Unsupported(node, "only constant scales are supported (not sizes)");
            var scales = Floats(node.Input[2], name);
            if (scales.Length != 4 || scales[0] != 1 || scales[1] != 1 || scales[2] != scales[3] || scales[2] < 1 || scales[2] != MathF.Floor(scales[2]))
                throw Unsupported(node, $"only equal whole scales of height and width are supported, got [{string.Join(", ", scales)}]");
            string mode = Text("mode", "nearest"), coordinates = Text("coordinate_transformation_mode", "half_pixel");
            var upsample = (mode, coordinates, Text("nearest_mode", "round_prefer_floor")) switch
            {
                ("nearest", "asymmetric", "floor") => UpsampleMode.Nearest,
                ("linear", "half_pixel" or "pytorch_half_pixel", _) => UpsampleMode.Bilinear,
                _ => throw Unsupported(node, $"mode '{mode}' with coordinate_transformation_mode '{coordinates}' is not supported " +
                    "(nearest needs asymmetric coordinates and floor, linear half_pixel ones)"),
            };
            AddLayer(node, new Upsample((int)scales[2], upsample) { Name = Unique(name) }, node.Output[0]);
        }

        private void ReadGemm(NodeProto node, string name)
        {
            if (Float(node, "alpha", 1) != 1 || Float(node, "beta", 1) != 1 || Int(node, "transA", 0) != 0)
                throw Unsupported(node, "Gemm is supported with alpha = beta = 1 and transA = 0");
            var weight = Floats(node.Input[1], name);
            var shape = Dims(node.Input[1]);
            if (shape.Length != 2) throw Malformed(node, $"a Gemm weight has 2 dimensions, '{node.Input[1]}' has {shape.Length}");
            bool transB = Int(node, "transB", 0) == 1;
            int outFeatures = (int)(transB ? shape[0] : shape[1]);
            bool hasBias = node.Input.Count > 2 && !string.IsNullOrEmpty(node.Input[2]);
            var dense = new Dense(outFeatures, hasBias) { Name = Unique(name) };
            _weights.Add((dense, "weight", transB ? weight : Transpose(weight, checked((int)shape[0]), checked((int)shape[1]))));
            if (hasBias) _weights.Add((dense, "bias", Floats(node.Input[2], name)));
            AddLayer(node, dense, node.Output[0], 1);
            _lastDense = dense;
            _lastDenseNode = _builder.Last;
        }

        private void ReadPool(NodeProto node, string name)
        {
            var kernel = Ints(node, "kernel_shape", []);
            var strides = Ints(node, "strides", [1, 1]);
            var (padH, padW) = Pads(node);
            var (extraH, extraW) = _pendingPads.GetValueOrDefault(node.Input[0]);
            if (node.OpType == "MaxPool" && (extraH, extraW) != (0, 0))
                throw Unsupported(node, "zero padding before max pooling is not equivalent to pooling padding");
            if (kernel.Length != 2 || kernel[0] != kernel[1] || strides[0] != strides[1] || padH + extraH != padW + extraW)
                throw Unsupported(node, "pooling is supported with square kernels, strides and padding");
            bool ceil = Int(node, "ceil_mode", 0) == 1;
            Layer pool = node.OpType == "MaxPool"
                ? new MaxPool2d(checked((int)kernel[0]), checked((int)strides[0]), padH, ceil) { Name = Unique(name) }
                : new AvgPool2d(checked((int)kernel[0]), checked((int)strides[0]), padH + extraH, ceil, Int(node, "count_include_pad", 0) == 1 || extraH > 0) { Name = Unique(name) };
            AddLayer(node, pool, node.Output[0]);
        }

        private (int H, int W) Pads(NodeProto node)
        {
            var pads = Ints(node, "pads", [0, 0, 0, 0]);
            if (pads.Length != 4 || pads[0] != pads[2] || pads[1] != pads[3])
                throw Unsupported(node, "only symmetric padding is supported");
            if (node.Attribute.FirstOrDefault(a => a.Name == "auto_pad") is { } auto && auto.S.ToStringUtf8() is not ("NOTSET" or ""))
                throw Unsupported(node, "auto_pad is not supported");
            return (checked((int)pads[0]), checked((int)pads[1]));
        }

        private void AddLayer(NodeProto node, Layer layer, string output, int? rank = null) =>
            AddLayerOn(node, node.Input[0], layer, output, rank);

        private void AddLayerOn(NodeProto node, string input, Layer layer, string output, int? rank = null)
        {
            _tensors[output] = _builder.Add(layer, Source(node, input));
            _rank[output] = rank ?? _rank.GetValueOrDefault(input, 3);
            if (rank is null) KeepView(input, output);
        }

        private void AddMerge(NodeProto node, MergeLayer merge, string output)
        {
            if (node.Input.Select(_channelsLast.Contains).Distinct().Count() > 1)
                throw Unsupported(node, "it combines a channels-last view with a channels-first tensor");
            _tensors[output] = _builder.Merge(merge, node.Input.Select(i => Source(node, i)).ToArray());
            _rank[output] = _rank.GetValueOrDefault(node.Input[0], 3);
            KeepView(node.Input[0], output);
        }

        private void Alias(NodeProto node, string output, string? input = null)
        {
            input ??= node.Input[0];
            _tensors[output] = Source(node, input);
            _rank[output] = _rank.GetValueOrDefault(input, 3);
            KeepView(input, output);
        }

        /// <summary>The output of a per-position operator is the same kind of view as its input: channels-last, tokens.</summary>
        private void KeepView(string input, string output)
        {
            if (_channelsLast.Contains(input)) _channelsLast.Add(output);
            if (_sequences.Contains(input)) _sequences.Add(output);
        }

        private Node Source(NodeProto node, string tensor) => _tensors.TryGetValue(tensor, out var n) ? n
            : _partials.TryGetValue(tensor, out var partial)
                ? throw Unsupported(node, $"it reads '{tensor}', a step ({partial.Step}) of the layer normalization or GELU computed " +
                    $"from '{partial.Input}', which Ml.Cnn computes as one layer")
            : throw new InvalidDataException($"'{source}': node '{node.Name}' ({node.OpType}) reads '{tensor}', which no earlier node produces.");

        private readonly HashSet<string> _names = [];

        /// <summary>
        /// The layer name a node gets, as PyTorch's state dict names the module: the prefix of its weight
        /// ("layer1.0.conv1" for initializer "layer1.0.conv1.weight", as PyTorch and Ml.Cnn export them), else the
        /// module path in PyTorch's node name ("layer1.0.relu" for "/layer1/layer1.0/relu/Relu"), else the node name,
        /// else its output's name.
        /// </summary>
        private string LayerName(NodeProto node)
        {
            // Only a state-dict key names a module: "/layer1/Constant_output_0" or "onnx::Conv_62" do not.
            string weight = node.Input.Count > 1 ? node.Input[1] : "";
            if (node.OpType is "Conv" or "ConvTranspose" or "Gemm" or "BatchNormalization" && _constants.ContainsKey(weight)
                && !weight.Contains('/') && !weight.Contains(':') && weight.LastIndexOf('.') is > 0 and int dot)
                return weight[..dot];
            var scopes = node.Name.Split('/', StringSplitOptions.RemoveEmptyEntries);
            if (!node.Name.StartsWith('/') || scopes.Length < 2) return string.IsNullOrEmpty(node.Name) ? node.Output[0] : node.Name;
            // PyTorch writes a scope either by its own name ("c1" in "/l1/c1/Conv") or by its full path ("layer1.0").
            string path = scopes[0];
            foreach (var scope in scopes[1..^1])
                path = scope.StartsWith(path + ".", StringComparison.Ordinal) ? scope : $"{path}.{scope}";
            return path;
        }

        private string Unique(string name)
        {
            string candidate = name;
            for (int i = 2; !_names.Add(candidate); i++) candidate = $"{name}_{i}";
            return candidate;
        }

        private NotSupportedException Unsupported(NodeProto node, string why) =>
            new($"'{source}': ONNX operator '{node.OpType}' in node '{node.Name}': {why}.");

        private InvalidDataException Malformed(NodeProto node, string why) =>
            new($"'{source}': node '{node.Name}' ({node.OpType}): {why}.");

        /// <summary>A constant's dimensions, each a positive int (a 2³²+6 is refused, not truncated to 6).</summary>
        private long[] Dims(string tensor)
        {
            var dims = Constant(tensor).Dims.ToArray();
            if (dims.Any(d => d is < 0 or > int.MaxValue))
                throw new InvalidDataException($"'{source}': tensor '{tensor}' has dimensions [{string.Join(", ", dims)}].");
            return dims;
        }

        private TensorProto Constant(string tensor) => _constants.TryGetValue(tensor, out var t) ? t
            : throw new NotSupportedException($"'{source}': '{tensor}' must be a constant weight (an initializer or Constant node).");

        private float[] Floats(string tensor, string node)
        {
            var t = Constant(tensor);
            if (t.DataType != (int)TensorProto.Types.DataType.Float) throw new NotSupportedException($"'{source}': node '{node}': tensor '{tensor}' is not float32.");
            // The declared dimensions must match the values the file holds before any layer is sized from them.
            long declared = Dims(tensor).Aggregate(1L, (product, d) => product * d > int.MaxValue ? int.MaxValue + 1L : product * d);
            long held = t.RawData.Length > 0 ? t.RawData.Length / sizeof(float) : t.FloatData.Count;
            if (declared != held || t.RawData.Length % sizeof(float) != 0)
                throw new InvalidDataException(
                    $"'{source}': node '{node}': tensor '{tensor}' declares dimensions [{string.Join(", ", t.Dims)}] ({declared} values) but holds {held}.");
            return t.RawData.Length > 0 ? MemoryMarshal.Cast<byte, float>(t.RawData.Span).ToArray() : t.FloatData.ToArray();
        }

        /// <summary>A float constant holding one value (a Clip bound).</summary>
        private float Scalar(string tensor, string node)
        {
            var values = Floats(tensor, node);
            return values.Length == 1 ? values[0]
                : throw new InvalidDataException($"'{source}': node '{node}': tensor '{tensor}' should hold one value, it holds {values.Length}.");
        }

        private long[] Longs(string tensor, string node)
        {
            var t = Constant(tensor);
            if (t.DataType != (int)TensorProto.Types.DataType.Int64) throw new NotSupportedException($"'{source}': node '{node}': tensor '{tensor}' is not int64.");
            return t.RawData.Length > 0 ? MemoryMarshal.Cast<byte, long>(t.RawData.Span).ToArray() : t.Int64Data.ToArray();
        }

        private static long Int(NodeProto node, string name, long fallback) => node.Attribute.FirstOrDefault(a => a.Name == name)?.I ?? fallback;

        private static float Float(NodeProto node, string name, float fallback) => node.Attribute.FirstOrDefault(a => a.Name == name)?.F ?? fallback;

        private static long[] Ints(NodeProto node, string name, long[] fallback) =>
            node.Attribute.FirstOrDefault(a => a.Name == name)?.Ints.ToArray() ?? fallback;

        private static float[] Transpose(float[] values, int rows, int cols)
        {
            var result = new float[values.Length];
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++) result[c * rows + r] = values[r * cols + c];
            return result;
        }
    }
}
