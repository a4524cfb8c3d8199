using Ml.Cnn.Layers;
using Ml.Cnn.Onnx.Proto;

namespace Ml.Cnn.Onnx;

public static partial class OnnxImporter
{
    // A vision transformer as PyTorch exports it (torchvision's VisionTransformer at opset 13): the patch grid
    // flattened and transposed to [N, T, C] tokens, a class token concatenated before them, a position embedding added,
    // encoder blocks whose MultiheadAttention is written out operator by operator, and the class token gathered at the
    // end. Ml.Cnn keeps the tokens as a [C, 1, T] image, so the [N, T, C] view is a channels-last view of it, and the
    // attention's two dozen operators become a 1×1 convolution (the in-projection), a SelfAttention layer and another
    // 1×1 convolution (the out-projection).
    private sealed partial class Reader
    {
        // [N, C, H·W] views of an image (Reshape of its planes), and [N, T, C] token views: the channels-last views
        // whose last axis is axis 2.
        private readonly HashSet<string> _planeViews = [], _sequences = [];
        // Constants broadcast over the batch by Expand (the class token), keyed by the Expand's output.
        private readonly Dictionary<string, string> _expanded = [];
        // The steps of a multi-head attention between its first and last Transpose, each with the dims ONNX sees
        // (null for anything of the batch size).
        private readonly Dictionary<string, (AttentionStep Step, AttentionRead Read, int Part, long?[] Dims)> _attention = [];

        private enum AttentionStep
        {
            SequenceFirst, Projected, ProjectedWithBias, Part, PartHeads, HeadsFirst, KeysTransposed, ScaledQueries, Scores,
            Probabilities, Attended, AttendedSequenceFirst, Merged, OutProjected, Unmerged,
        }

        /// <summary>What one attention's steps have read so far.</summary>
        private sealed class AttentionRead(string source, string scope, int channels, int tokens)
        {
            public string Source { get; } = source;
            public string Scope { get; } = scope;
            public int Channels { get; } = channels;
            public int Tokens { get; } = tokens;
            public float[] InWeight = [], InBias = [], OutWeight = [], OutBias = [];
            public int? HeadSize;
            public float Scale = 1;
        }

        /// <summary>The dims ONNX sees for a tensor of the graph: a view's own, else the batch and the item's shape.</summary>
        private long?[] OnnxDims(NodeProto node, string tensor)
        {
            if (_attention.TryGetValue(tensor, out var step)) return step.Dims;
            var shape = ShapeOf(node, tensor);
            if (_sequences.Contains(tensor)) return [null, shape[1] * shape[2], shape[0]];
            if (_planeViews.Contains(tensor)) return [null, shape[0], shape[1] * shape[2]];
            if (_channelsLast.Contains(tensor)) return [null, shape[1], shape[2], shape[0]];
            return [null, .. shape.Dims.Select(d => (long?)d)];
        }

        /// <summary>A layer that is one parameter of PyTorch's model is named after it ("class_token"), if it has a state-dict key.</summary>
        private static string ModuleName(string parameter, string fallback) =>
            parameter.Contains('/') || parameter.Contains(':') ? fallback : parameter;

        /// <summary>The token-sequence operators; true when the node was one of them.</summary>
        private bool ReadTransformer(NodeProto node, string name)
        {
            string Out = node.Output[0];
            bool Sequence(int i) => i < node.Input.Count && _sequences.Contains(node.Input[i]);
            switch (node.OpType)
            {
                case "Transpose" when _planeViews.Contains(node.Input[0]) && Ints(node, "perm", []).SequenceEqual([0L, 2, 1]):
                    Alias(node, Out);
                    _channelsLast.Add(Out);
                    _sequences.Add(Out);
                    return true;
                case "Expand" when _constants.ContainsKey(node.Input[0]):
                {
                    var dims = Dims(node.Input[0]);
                    if (dims is not [1, 1, _] || Integers(node.Input[1]) is not { Length: 3 })
                        throw Unsupported(node, "Expand is supported for a [1, 1, C] class token broadcast to [N, 1, C] only");
                    _expanded[Out] = node.Input[0];
                    return true;
                }
                case "Concat" when node.Input.Count == 2 && _expanded.TryGetValue(node.Input[0], out var token) && Sequence(1):
                {
                    if (Int(node, "axis", 0) != 1) throw Unsupported(node, "a class token is concatenated along the tokens (axis 1) only");
                    var layer = new ClassToken { Name = Unique(ModuleName(token, name)) };
                    var values = Floats(token, name);
                    if (values.Length != ShapeOf(node, node.Input[1])[0])
                        throw Malformed(node, $"the class token has {values.Length} values for {ShapeOf(node, node.Input[1])[0]} channels");
                    _weights.Add((layer, "token", values));
                    AddLayerOn(node, node.Input[1], layer, Out);
                    _sequences.Add(Out);
                    return true;
                }
                case "Add" when node.Input.Count == 2 && (Sequence(0) && _constants.ContainsKey(node.Input[1])
                                                       || Sequence(1) && _constants.ContainsKey(node.Input[0]))
                                && Dims(node.Input[Sequence(0) ? 1 : 0]).Length > 1:
                {
                    // A constant of the tokens' own shape, [1, T, C] or [T, C]: the position embedding.
                    int c = Sequence(0) ? 1 : 0;
                    var shape = ShapeOf(node, node.Input[1 - c]);
                    var (channels, tokens) = (shape[0], shape[1] * shape[2]);
                    var dims = Dims(node.Input[c]);
                    if (dims is not ([1, _, _] or [_, _]) || dims[^1] != channels || dims[^2] != tokens)
                        throw Unsupported(node, $"a constant [{string.Join(", ", dims)}] added to {tokens} tokens of {channels} channels " +
                            $"must be a position embedding of shape [1, {tokens}, {channels}]");
                    var layer = new PositionEmbedding { Name = Unique(ModuleName(node.Input[c], name)) };
                    _weights.Add((layer, "embedding", Transpose(Floats(node.Input[c], name), tokens, channels)));
                    AddLayerOn(node, node.Input[1 - c], layer, Out);
                    _sequences.Add(Out);
                    return true;
                }
                case "Gather" when Sequence(0):
                {
                    // x[:, k]: the features of one token (the class token at 0).
                    if (Int(node, "axis", 0) != 1 || Integers(node.Input[1]) is not [long index] || Dims(node.Input[1]).Length != 0)
                        throw Unsupported(node, "Gather on tokens is supported along axis 1 with one scalar index only");
                    int count = OnnxDims(node, node.Input[0])[1] is long t ? (int)t : 0;
                    if (index < -count || index >= count) throw Malformed(node, $"token {index} is outside the {count} tokens");
                    AddLayer(node, new TokenAt((int)(index < 0 ? index + count : index)) { Name = Unique(name) }, Out, 1);
                    return true;
                }
                default:
                    return ReadAttention(node, name);
            }
        }

        /// <summary>
        /// One step of PyTorch's MultiheadAttention (need_weights = False) as torch 1.13 exports it, from the Transpose to
        /// [T, N, C] to the Transpose back, each recognised from the step before it.
        /// </summary>
        private bool ReadAttention(NodeProto node, string name)
        {
            string Out = node.Output[0];
            (AttentionStep Step, AttentionRead Read, int Part, long?[] Dims)? At(int i) =>
                i < node.Input.Count && _attention.TryGetValue(node.Input[i], out var a) ? a : null;
            var perm = node.OpType == "Transpose" ? Ints(node, "perm", []) : [];
            void Mark(AttentionStep step, AttentionRead read, long?[] dims, int part = 0) => _attention[Out] = (step, read, part, dims);
            int? constant = node.Input.Count == 2 ? node.Input.ToList().FindIndex(_constants.ContainsKey) is >= 0 and var k ? k : null : null;
            NotSupportedException Wrong(string why) => Unsupported(node, $"in the multi-head attention of '{At(0)?.Read.Scope}': {why}");

            switch (node.OpType)
            {
                case "Transpose" when _sequences.Contains(node.Input[0]) && perm.SequenceEqual([1L, 0, 2]):
                {
                    var shape = ShapeOf(node, node.Input[0]);
                    var read = new AttentionRead(node.Input[0], LayerName(node), shape[0], shape[1] * shape[2]);
                    Mark(AttentionStep.SequenceFirst, read, [read.Tokens, null, read.Channels]);
                    return true;
                }
                case "MatMul" when At(0) is (AttentionStep.SequenceFirst, var read, _, _):
                {
                    var dims = Dims(node.Input[1]);
                    if (dims is not [_, _] || dims[0] != read.Channels || dims[1] != 3 * read.Channels)
                        throw Wrong($"the in-projection must be a [{read.Channels}, {3 * read.Channels}] constant, got [{string.Join(", ", dims)}]");
                    read.InWeight = Transpose(Floats(node.Input[1], name), read.Channels, 3 * read.Channels);
                    Mark(AttentionStep.Projected, read, [read.Tokens, null, 3 * read.Channels]);
                    return true;
                }
                case "Add" when constant is int c && At(1 - c) is (AttentionStep.Projected, var read, _, var dims):
                    read.InBias = Floats(node.Input[c], name);
                    if (read.InBias.Length != 3 * read.Channels) throw Wrong($"the in-projection bias has {read.InBias.Length} values");
                    Mark(AttentionStep.ProjectedWithBias, read, dims);
                    return true;
                case "Slice" when At(0) is (AttentionStep.ProjectedWithBias, var read, _, _):
                {
                    long?[] Argument(int i) => i < node.Input.Count ? Integers(node.Input[i]) ?? [] : [];
                    if (Argument(3) is not [-1 or 2] || Argument(1) is not [long start] || Argument(2) is not [long end]
                        || start % read.Channels != 0 || end - start != read.Channels || node.Input.Count > 4 && Argument(4) is not [1])
                        throw Wrong("the queries, keys and values must be sliced as thirds of the in-projection's last axis");
                    Mark(AttentionStep.Part, read, [read.Tokens, null, read.Channels], (int)(start / read.Channels));
                    return true;
                }
                case "Reshape" when At(0) is (AttentionStep.Part, var read, var part, _):
                {
                    var shape = Integers(node.Input[1]);
                    if (shape is not [long partTokens, null, long headSize] || partTokens != read.Tokens || headSize < 1 || read.Channels % headSize != 0
                        || read.HeadSize is int known && known != headSize)
                        throw Wrong($"the heads must be split as [{read.Tokens}, N·heads, C/heads]");
                    read.HeadSize = (int)headSize;
                    Mark(AttentionStep.PartHeads, read, [read.Tokens, null, headSize], part);
                    return true;
                }
                case "Transpose" when At(0) is (AttentionStep.PartHeads, var read, var part, _):
                    if (perm.SequenceEqual([1L, 0, 2]) && part != 1)
                        Mark(AttentionStep.HeadsFirst, read, [null, read.Tokens, read.HeadSize], part);
                    else if (perm.SequenceEqual([1L, 2, 0]) && part == 1)
                        Mark(AttentionStep.KeysTransposed, read, [null, read.HeadSize, read.Tokens], part);
                    else throw Wrong($"Transpose {string.Join(", ", perm)} of the {(part == 1 ? "keys" : "queries or values")} is not one of its steps");
                    return true;
                case "Div" or "Mul" when constant == 1 && At(0) is (AttentionStep.HeadsFirst, var read, 0, var dims):
                {
                    float factor = Scalar(node.Input[1], name);
                    read.Scale = node.OpType == "Div" ? 1 / factor : factor;
                    if (!(read.Scale > 0 && float.IsFinite(read.Scale))) throw Wrong($"the queries are scaled by {factor}");
                    Mark(AttentionStep.ScaledQueries, read, dims);
                    return true;
                }
                case "MatMul" when At(0) is (AttentionStep.ScaledQueries, var read, _, _):
                    if (At(1) is not (AttentionStep.KeysTransposed, var keys, _, _) || keys != read)
                        throw Wrong("the scaled queries must be multiplied by the same attention's transposed keys");
                    Mark(AttentionStep.Scores, read, [null, read.Tokens, read.Tokens]);
                    return true;
                case "Softmax" when At(0) is (AttentionStep.Scores, var read, _, var dims):
                    if (Int(node, "axis", -1) is not (-1 or 2)) throw Wrong("the softmax must be over the keys (the last axis)");
                    Mark(AttentionStep.Probabilities, read, dims);
                    return true;
                case "MatMul" when At(0) is (AttentionStep.Probabilities, var read, _, _):
                    if (At(1) is not (AttentionStep.HeadsFirst, var values, 2, _) || values != read)
                        throw Wrong("the probabilities must be multiplied by the same attention's values");
                    Mark(AttentionStep.Attended, read, [null, read.Tokens, read.HeadSize]);
                    return true;
                case "Transpose" when At(0) is (AttentionStep.Attended, var read, _, _) && perm.SequenceEqual([1L, 0, 2]):
                    Mark(AttentionStep.AttendedSequenceFirst, read, [read.Tokens, null, read.HeadSize]);
                    return true;
                case "Reshape" when At(0) is (AttentionStep.AttendedSequenceFirst, var read, _, _):
                    if (Integers(node.Input[1]) is not [null or -1, long merged] || merged != read.Channels)
                        throw Wrong($"the heads must be merged as [T·N, {read.Channels}]");
                    Mark(AttentionStep.Merged, read, [null, read.Channels]);
                    return true;
                case "Gemm" when At(0) is (AttentionStep.Merged, var read, _, var dims):
                {
                    if (Int(node, "transB", 0) != 1 || Int(node, "transA", 0) != 0 || Float(node, "alpha", 1) != 1 || Float(node, "beta", 1) != 1
                        || node.Input.Count < 3 || Dims(node.Input[1]) is not [_, _] w || w[0] != read.Channels || w[1] != read.Channels)
                        throw Wrong($"the out-projection must be a Gemm with a [{read.Channels}, {read.Channels}] weight (transB = 1) and a bias");
                    (read.OutWeight, read.OutBias) = (Floats(node.Input[1], name), Floats(node.Input[2], name));
                    if (read.OutBias.Length != read.Channels) throw Wrong($"the out-projection bias has {read.OutBias.Length} values");
                    Mark(AttentionStep.OutProjected, read, dims);
                    return true;
                }
                case "Reshape" when At(0) is (AttentionStep.OutProjected, var read, _, _):
                    if (Integers(node.Input[1]) is not [long backTokens, null or -1, long backChannels] || backTokens != read.Tokens
                        || backChannels != read.Channels)
                        throw Wrong($"the out-projection must be reshaped back to [{read.Tokens}, N, {read.Channels}]");
                    Mark(AttentionStep.Unmerged, read, [read.Tokens, null, read.Channels]);
                    return true;
                case "Transpose" when At(0) is (AttentionStep.Unmerged, var read, _, _) && perm.SequenceEqual([1L, 0, 2]):
                {
                    int heads = read.Channels / read.HeadSize!.Value;
                    var inProjection = new Conv2d(3 * read.Channels, 1) { Name = Unique(read.Scope + ".in_proj") };
                    _weights.Add((inProjection, "weight", read.InWeight));
                    _weights.Add((inProjection, "bias", read.InBias));
                    var attention = new SelfAttention(heads, read.Scale) { Name = Unique(read.Scope) };
                    var outProjection = new Conv2d(read.Channels, 1) { Name = Unique(read.Scope + ".out_proj") };
                    _weights.Add((outProjection, "weight", read.OutWeight));
                    _weights.Add((outProjection, "bias", read.OutBias));
                    var projected = _builder.Add(inProjection, Source(node, read.Source));
                    _tensors[Out] = _builder.Add(outProjection, _builder.Add(attention, projected));
                    _rank[Out] = 3;
                    _channelsLast.Add(Out);
                    _sequences.Add(Out);
                    return true;
                }
                default:
                    if (node.Input.FirstOrDefault(_attention.ContainsKey) is { } inside)
                        throw Unsupported(node, $"it reads '{inside}', a step ({_attention[inside].Step}) of the multi-head attention of " +
                            $"'{_attention[inside].Read.Scope}' that Ml.Cnn does not recognise there");
                    return false;
            }
        }
    }
}
