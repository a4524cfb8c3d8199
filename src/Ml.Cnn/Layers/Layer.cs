using Ml.Cnn.Backends;
using Ml.Cnn.Core;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Layers;

/// <summary>
/// A single-input layer. It is declared without knowing its input (as in Keras), then <see cref="Build"/> binds it to
/// a backend and a per-item input shape, validates, and allocates parameters. Forward keeps what backward needs;
/// backward writes parameter gradients and returns the gradient with respect to the input.
/// Shapes passed to <see cref="Build"/> exclude the batch dimension.
/// </summary>
public abstract class Layer
{
    private BufferCache? _buffers;

    /// <summary>The layer's name in summaries and messages; set by the network when left empty.</summary>
    public string Name { get; set; } = "";

    /// <summary>The backend after <see cref="Build"/>.</summary>
    public IBackend Backend => _backend ?? throw new InvalidOperationException($"Layer '{DisplayName}' is not built yet.");
    private IBackend? _backend;

    /// <summary>Per-item input shape after <see cref="Build"/>.</summary>
    public TensorShape InputShape { get; private set; } = null!;

    /// <summary>Per-item output shape after <see cref="Build"/>.</summary>
    public TensorShape OutputShape { get; private set; } = null!;

    /// <summary>
    /// Whether <see cref="Backward"/> must produce ∂loss/∂input. A network clears it on its first layer, whose input is
    /// data, so convolutions and dense layers skip that product; other layers return it regardless.
    /// </summary>
    public bool ComputesInputGradient { get; set; } = true;

    /// <summary>Trainable tensors (empty for most layers).</summary>
    public IReadOnlyList<Parameter> Parameters => _parameters;
    private readonly List<Parameter> _parameters = [];

    /// <summary>Name for messages: the given name, or the layer type.</summary>
    protected string DisplayName => string.IsNullOrEmpty(Name) ? GetType().Name : $"{Name} ({GetType().Name})";

    /// <summary>
    /// Binds to a backend and input shape, validating arguments and declaring parameters; with a generator it also
    /// allocates and initializes them. Without one only shapes are known (for summaries and parameter counts).
    /// </summary>
    public void Build(IBackend backend, TensorShape inputShape, Rng? rng)
    {
        _backend = backend;
        InputShape = inputShape;
        _parameters.Clear();
        OutputShape = OnBuild(inputShape);
        _buffers = new BufferCache(backend);
        if (rng is null) return;
        foreach (var p in _parameters) p.Allocate(backend, rng);
        OnAllocate(rng);
    }

    /// <summary>Validates the per-item input shape, declares parameters, and returns the per-item output shape.</summary>
    protected abstract TensorShape OnBuild(TensorShape inputShape);

    /// <summary>Allocates non-parameter state (running statistics, generators) once parameters exist.</summary>
    protected virtual void OnAllocate(Rng rng) { }

    /// <summary>Non-trainable state that training changes (batch-norm running statistics), for checkpoints.</summary>
    public virtual IReadOnlyList<Tensor> Buffers => [];

    /// <summary>The layer's own random generator (dropout), so checkpoints can save its position; null if none.</summary>
    public virtual Rng? Generator => null;

    /// <summary>Multiply-accumulate operations of one item's forward pass (for summaries).</summary>
    public virtual long MultiplyAdds => 0;

    /// <summary>Runs the layer on a batch.</summary>
    public Tensor Forward(Tensor x, bool training)
    {
        CheckBatchShape(x, InputShape, "input");
        return OnForward(x, training);
    }

    /// <summary>
    /// Given ∂loss/∂output, writes parameter gradients and returns ∂loss/∂input (null when
    /// <see cref="ComputesInputGradient"/> is off and the layer skipped it).
    /// </summary>
    public Tensor? Backward(Tensor dy)
    {
        CheckBatchShape(dy, OutputShape, "output gradient");
        return OnBackward(dy);
    }

    /// <summary>The forward computation; <paramref name="x"/> has been validated.</summary>
    protected abstract Tensor OnForward(Tensor x, bool training);

    /// <summary>The backward computation for the most recent forward call.</summary>
    protected abstract Tensor? OnBackward(Tensor dy);

    /// <summary>Declares a parameter; <paramref name="initializer"/> fills it when allocated (zeros without one).</summary>
    protected Parameter AddParameter(string name, TensorShape shape, bool decays, Action<Span<float>, Rng>? initializer = null)
    {
        var parameter = new Parameter(name, shape, decays, initializer);
        _parameters.Add(parameter);
        return parameter;
    }

    /// <summary>The layer's output buffer for a batch of <paramref name="batch"/>, reused across calls.</summary>
    protected Tensor OutputBuffer(int batch) => Buffer("output", OutputShape.Prepend(batch));

    /// <summary>The input-gradient buffer for a batch of <paramref name="batch"/>, reused across calls.</summary>
    protected Tensor InputGradientBuffer(int batch) => Buffer("input gradient", InputShape.Prepend(batch));

    /// <summary>A tensor of <paramref name="shape"/> for <paramref name="role"/>, reused across calls of the same shape.</summary>
    protected Tensor Buffer(string role, TensorShape shape) =>
        (_buffers ?? throw new InvalidOperationException($"Layer '{DisplayName}' is not built yet.")).Get(role, shape);

    /// <summary>An ArgumentException that names this layer.</summary>
    protected ArgumentException Error(string message) => new($"Layer '{DisplayName}': {message}");

    /// <summary>Throws unless the input has the expected rank (C,H,W = 3, features = 1).</summary>
    protected void RequireRank(TensorShape input, int rank, string what)
    {
        if (input.Rank != rank) throw Error($"expects {what} (rank {rank} per item), got per-item shape {input}.");
    }

    private void CheckBatchShape(Tensor t, TensorShape itemShape, string what)
    {
        if (t.Backend != Backend)
            throw Error($"{what} lives on backend '{t.Backend.Name}' but the layer was built on '{Backend.Name}'.");
        if (t.Shape.Rank != itemShape.Rank + 1 || t.Shape.ItemLength != itemShape.Length ||
            !t.Shape.Dims.Skip(1).SequenceEqual(itemShape.Dims))
            throw Error($"expected {what} of shape [N, {string.Join(", ", itemShape.Dims)}], got {t.Shape}.");
    }
}
