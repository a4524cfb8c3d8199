using Ml.Cnn.Backends;
using Ml.Cnn.Core;
using Ml.Cnn.Layers;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Networks;

/// <summary>
/// A built network: layers bound to a backend in topological order, with their parameters. Forward runs the graph;
/// backward propagates from the output gradient, summing gradients where a node feeds several consumers, and
/// leaves every parameter's gradient in <see cref="Parameter.Gradient"/>. Dispose releases its memory at once, which
/// matters on a GPU backend; host memory would otherwise wait for the garbage collector.
/// </summary>
public sealed class Network : IDisposable
{
    private readonly NetworkNode[] _nodes;
    private readonly Tensor?[] _activations;
    private readonly Tensor?[] _gradients;
    private readonly BufferCache _gradientSums;
    private readonly int[] _consumers;
    // Per node, reused every pass: its inputs' activations and the gradients it returns for them.
    private readonly Tensor[][] _nodeInputs;
    private readonly Tensor?[][] _nodeInputGradients;

    private Network(IBackend backend, TensorShape inputShape, NetworkNode[] nodes, bool allocated)
    {
        Backend = backend;
        InputShape = inputShape;
        _nodes = nodes;
        IsAllocated = allocated;
        _activations = new Tensor?[nodes.Length];
        _gradients = new Tensor?[nodes.Length];
        _gradientSums = new BufferCache(backend);
        _consumers = new int[nodes.Length];
        _nodeInputs = nodes.Select(n => new Tensor[n.Inputs.Count]).ToArray();
        _nodeInputGradients = nodes.Select(n => new Tensor?[n.Inputs.Count]).ToArray();
        foreach (var node in nodes)
            foreach (int input in node.Inputs)
                if (input >= 0) _consumers[input]++;
    }

    /// <summary>
    /// Builds the graph described by <paramref name="definition"/> for items of <paramref name="inputShape"/> (e.g.
    /// [1, 28, 28]), naming unnamed layers, inferring every layer's input size, and initializing parameters from
    /// <paramref name="seed"/>. With <paramref name="allocate"/> false only shapes are computed (for summaries).
    /// </summary>
    public static Network Create(NetworkBuilder definition, IBackend backend, TensorShape inputShape, ulong seed = 0, bool allocate = true)
    {
        if (definition.Nodes.Count == 0) throw new ArgumentException("The network definition has no layers.", nameof(definition));
        var rng = allocate ? new Rng(seed) : null;
        var nodes = new NetworkNode[definition.Nodes.Count];
        var counts = new Dictionary<string, int>();
        for (int i = 0; i < nodes.Length; i++)
        {
            var (layer, inputs) = definition.Nodes[i];
            var inputShapes = inputs.Select(j => j < 0 ? inputShape : nodes[j].OutputShape).ToArray();
            string kind = layer.GetType().Name.ToLowerInvariant();
            counts[kind] = counts.GetValueOrDefault(kind) + 1;
            string autoName = $"{kind}{counts[kind]}";
            if (string.IsNullOrEmpty(layer.Name)) layer.Name = autoName;
            layer.BuildNode(backend, inputShapes, rng, inputIsData: inputs is [< 0]);
            nodes[i] = new NetworkNode(layer.Name, layer, inputs, layer.OutputShape);
        }
        var duplicate = nodes.GroupBy(n => n.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ArgumentException($"Two layers are named '{duplicate.Key}'; layer names must be unique.", nameof(definition));
        return new Network(backend, inputShape, nodes, allocate);
    }

    /// <summary>A plain stack of layers.</summary>
    public static Network Sequential(IBackend backend, TensorShape inputShape, ulong seed, params Layer[] layers) =>
        Create(NetworkBuilder.Sequential(layers), backend, inputShape, seed);

    /// <summary>The backend.</summary>
    public IBackend Backend { get; }

    /// <summary>Per-item input shape: the one built for, or the last one <see cref="Resize"/> set.</summary>
    public TensorShape InputShape { get; private set; }

    /// <summary>Per-item output shape.</summary>
    public TensorShape OutputShape => _nodes[^1].OutputShape;

    /// <summary>Whether parameters exist in memory (false for shape-only networks).</summary>
    public bool IsAllocated { get; }

    /// <summary>The nodes in execution order.</summary>
    public IReadOnlyList<NetworkNode> Nodes => _nodes;

    /// <summary>All parameters, in node order.</summary>
    public IEnumerable<Parameter> Parameters => _nodes.SelectMany(n => n.Layer.Parameters);

    /// <summary>
    /// All parameters by qualified name, "layer.parameter" ("conv1.weight", "dense3.bias", "bn1.gamma"), in node
    /// order: the names the ONNX export gives the initializers, and for imported PyTorch models its state dict's
    /// module paths.
    /// </summary>
    public IEnumerable<KeyValuePair<string, Parameter>> NamedParameters =>
        _nodes.SelectMany(n => n.Layer.Parameters.Select(p => KeyValuePair.Create($"{n.Name}.{p.Name}", p)));

    /// <summary>The parameter with the qualified name <paramref name="name"/> ("conv1.weight").</summary>
    public Parameter GetParameter(string name) =>
        NamedParameters.FirstOrDefault(p => p.Key == name).Value
        ?? throw new KeyNotFoundException($"No parameter named '{name}'. Parameters: {string.Join(", ", NamedParameters.Select(p => p.Key))}.");

    /// <summary>Every tensor that defines the trained model: parameter values, then buffers (running statistics).</summary>
    public IEnumerable<Tensor> StateTensors =>
        Parameters.Select(p => p.Value).Concat(_nodes.SelectMany(n => n.Layer.Buffers));

    /// <summary>Releases the parameters, their gradients, the layers' state and every activation buffer.</summary>
    public void Dispose()
    {
        foreach (var node in _nodes)
        {
            node.Layer.ReleaseMemory();
            if (!IsAllocated) continue;
            foreach (var p in node.Layer.Parameters) p.Release();
            foreach (var buffer in node.Layer.Buffers) buffer.Dispose();
        }
        _gradientSums.Dispose();
    }

    /// <summary>The layers' own generators (dropout), in node order.</summary>
    public IEnumerable<Rng> Generators => _nodes.Select(n => n.Layer.Generator).OfType<Rng>();

    /// <summary>Total number of parameter values.</summary>
    public long ParameterCount => Parameters.Sum(p => (long)p.Shape.Length);

    /// <summary>The node with the given name.</summary>
    public NetworkNode this[string name] => _nodes.FirstOrDefault(n => n.Name == name)
        ?? throw new KeyNotFoundException($"No layer named '{name}'. Layers: {string.Join(", ", _nodes.Select(n => n.Name))}.");

    /// <summary>Runs the network on a batch and returns the output (owned by the network; copy it to keep it).</summary>
    public Tensor Forward(Tensor input, bool training) => ForwardTo(input, training, _nodes.Length - 1);

    /// <summary>Runs the network up to and including the named layer and returns its activations.</summary>
    public Tensor ForwardTo(Tensor input, bool training, string layerName)
    {
        int index = Array.FindIndex(_nodes, n => n.Name == layerName);
        if (index < 0) throw new KeyNotFoundException($"No layer named '{layerName}'. Layers: {string.Join(", ", _nodes.Select(n => n.Name))}.");
        return ForwardTo(input, training, index);
    }

    private Tensor ForwardTo(Tensor input, bool training, int last)
    {
        if (!IsAllocated) throw new InvalidOperationException("This network was created for its shapes only; create it with allocate: true to run it.");
        if (input.Shape.Rank != InputShape.Rank + 1)
            throw new ArgumentException($"Network input must have shape [N, {string.Join(", ", InputShape.Dims)}], got {input.Shape}.", nameof(input));
        if (!input.Shape.Dims.Skip(1).SequenceEqual(InputShape.Dims))
        {
            var expected = InputShape;
            try
            {
                Resize(input.Shape.DropBatch());
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"Network input must have shape [N, {string.Join(", ", expected.Dims)}], got {input.Shape}: {e.Message}",
                    nameof(input), e);
            }
        }
        for (int i = 0; i <= last; i++)
        {
            var node = _nodes[i];
            var inputs = _nodeInputs[i];
            for (int k = 0; k < inputs.Length; k++) inputs[k] = Resolve(node.Inputs[k], input);
            _activations[i] = node.Layer.ForwardNode(inputs, training);
        }
        return _activations[last]!;
    }

    /// <summary>
    /// Makes the network take items of <paramref name="inputShape"/> from now on, with the same parameters and state:
    /// a fully convolutional network runs on any image size its strides and joins allow (Caffe's reshape; PyTorch
    /// needs no call). <see cref="Forward"/> resizes by itself when a batch of another size arrives. Throws, naming
    /// the layer, when a shape does not fit (a dense layer's weights fix its input size, a residual join needs equal
    /// planes); the network keeps its previous size then.
    /// </summary>
    public void Resize(TensorShape inputShape)
    {
        ArgumentNullException.ThrowIfNull(inputShape);
        if (inputShape == InputShape) return;
        if (inputShape.Rank != InputShape.Rank)
            throw new ArgumentException($"The network takes items of rank {InputShape.Rank} ({InputShape}), got {inputShape}.", nameof(inputShape));
        var previous = InputShape;
        try
        {
            ResizeNodes(inputShape);
        }
        catch
        {
            ResizeNodes(previous);
            throw;
        }
        InputShape = inputShape;
    }

    private void ResizeNodes(TensorShape inputShape)
    {
        for (int i = 0; i < _nodes.Length; i++)
        {
            var node = _nodes[i];
            node.Layer.ResizeNode(node.Inputs.Select(j => j < 0 ? inputShape : _nodes[j].OutputShape).ToArray());
            _nodes[i] = node with { OutputShape = node.Layer.OutputShape };
        }
    }

    private Tensor Resolve(int index, Tensor input) => index < 0 ? input : _activations[index]!;

    /// <summary>Backpropagates ∂loss/∂output through the last forward pass, filling every parameter gradient.</summary>
    public void Backward(Tensor outputGradient)
    {
        Array.Clear(_gradients);
        _gradients[^1] = outputGradient;
        for (int i = _nodes.Length - 1; i >= 0; i--)
        {
            var gradient = _gradients[i] ?? throw new InvalidOperationException($"Layer '{_nodes[i].Name}' does not contribute to the output.");
            var node = _nodes[i];
            var inputGradients = _nodeInputGradients[i];
            Array.Clear(inputGradients);
            node.Layer.BackwardNode(gradient, inputGradients);
            for (int k = 0; k < inputGradients.Length; k++)
                if (inputGradients[k] is { } dx) Accumulate(node.Inputs[k], dx);
        }
    }

    private void Accumulate(int node, Tensor gradient)
    {
        if (node < 0) return;
        if (_consumers[node] == 1) { _gradients[node] = gradient; return; }
        // Fan-out: consumers' gradient buffers are theirs, so sum into a buffer owned by this node.
        if (_gradients[node] is null)
        {
            var sum = _gradientSums.Get($"node {node}", gradient.Shape);
            Backend.Copy(gradient, sum);
            _gradients[node] = sum;
        }
        else
            Backend.Axpy(1, gradient, _gradients[node]!);
    }

    /// <summary>A Keras-style table: layer, output shape, receptive field, parameters and multiply-adds.</summary>
    public string Summary() => NetworkSummary.Format(this);
}

/// <summary>One layer of a built network and the nodes that feed it (−1 is the network input).</summary>
public sealed record NetworkNode(string Name, NetworkLayer Layer, IReadOnlyList<int> Inputs, TensorShape OutputShape);
