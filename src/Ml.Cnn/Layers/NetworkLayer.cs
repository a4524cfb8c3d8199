using Ml.Cnn.Backends;
using Ml.Cnn.Core;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Layers;

/// <summary>
/// What a network node runs: a single-input <see cref="Layer"/> or a <see cref="MergeLayer"/> that joins branches.
/// The network builds, runs and backpropagates every node through these members, so it never asks which kind a
/// node is. Per-item shapes exclude the batch dimension.
/// </summary>
public abstract class NetworkLayer
{
    private IBackend? _backend;
    private BufferCache? _buffers;

    private protected NetworkLayer() { }

    /// <summary>The layer's name in summaries and messages; set by the network when left empty.</summary>
    public string Name { get; set; } = "";

    /// <summary>The backend after the layer is built.</summary>
    public IBackend Backend => _backend ?? throw new InvalidOperationException($"Layer '{DisplayName}' is not built yet.");

    /// <summary>Per-item output shape after the layer is built.</summary>
    public TensorShape OutputShape { get; private protected set; } = null!;

    /// <summary>Trainable tensors (none for most layers).</summary>
    public virtual IReadOnlyList<Parameter> Parameters => [];

    /// <summary>Non-trainable state that training changes (batch-norm running statistics), for checkpoints.</summary>
    public virtual IReadOnlyList<Tensor> Buffers => [];

    /// <summary>The layer's own random generator (dropout), so checkpoints can save its position; null if none.</summary>
    public virtual Rng? Generator => null;

    /// <summary>Multiply-accumulate operations of one item's forward pass (for summaries).</summary>
    public virtual long MultiplyAdds => 0;

    /// <summary>Name for messages: the given name, or the layer type.</summary>
    protected string DisplayName => string.IsNullOrEmpty(Name) ? GetType().Name : $"{Name} ({GetType().Name})";

    /// <summary>A tensor of <paramref name="shape"/> for <paramref name="role"/>, reused across calls of the same shape.</summary>
    protected Tensor Buffer(string role, TensorShape shape) =>
        (_buffers ?? throw new InvalidOperationException($"Layer '{DisplayName}' is not built yet.")).Get(role, shape);

    /// <summary>An ArgumentException that names this layer.</summary>
    protected ArgumentException Error(string message) => new($"Layer '{DisplayName}': {message}");

    /// <summary>Binds to a backend: the first step of building.</summary>
    private protected void Bind(IBackend backend)
    {
        _backend = backend;
        _buffers = new BufferCache(backend);
    }

    /// <summary>Releases the reusable activation buffers (the network's Dispose).</summary>
    internal void ReleaseMemory() => _buffers?.Dispose();

    /// <summary>Builds for the node's input shapes; <paramref name="inputIsData"/> when its one input is the network's.</summary>
    internal abstract void BuildNode(IBackend backend, IReadOnlyList<TensorShape> inputShapes, Rng? rng, bool inputIsData);

    /// <summary>Builds again for other input sizes, keeping parameters and state.</summary>
    internal abstract void ResizeNode(IReadOnlyList<TensorShape> inputShapes);

    /// <summary>Runs the node on its inputs' activations.</summary>
    internal abstract Tensor ForwardNode(IReadOnlyList<Tensor> inputs, bool training);

    /// <summary>Fills one gradient per input (null where the layer skipped it) from the output gradient.</summary>
    internal abstract void BackwardNode(Tensor dy, Tensor?[] inputGradients);
}
