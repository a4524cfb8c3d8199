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
public abstract class Layer : NetworkLayer
{
    /// <summary>Per-item input shape after <see cref="Build"/>.</summary>
    public TensorShape InputShape { get; private set; } = null!;

    /// <summary>
    /// Whether <see cref="Backward"/> must produce ∂loss/∂input. A network clears it on its first layer, whose input is
    /// data, so convolutions and dense layers skip that product; other layers return it regardless.
    /// </summary>
    public bool ComputesInputGradient { get; set; } = true;

    /// <inheritdoc />
    public override IReadOnlyList<Parameter> Parameters => _parameters;
    private readonly List<Parameter> _parameters = [];
    // While resizing: the parameters OnBuild must declare again, with the same names and shapes.
    private List<Parameter>? _kept;
    private TensorShape? _keptFor;

    /// <summary>
    /// Binds to a backend and input shape, validating arguments and declaring parameters; with a generator it also
    /// allocates and initializes them. Without one only shapes are known (for summaries and parameter counts).
    /// </summary>
    public void Build(IBackend backend, TensorShape inputShape, Rng? rng)
    {
        Bind(backend);
        InputShape = inputShape;
        _parameters.Clear();
        OutputShape = OnBuild(inputShape);
        if (rng is null) return;
        foreach (var p in _parameters) p.Allocate(backend, rng);
        OnAllocate(rng);
    }

    /// <summary>
    /// Builds again for another input size, keeping the parameters, their values and the layer's state. Throws when
    /// a parameter's shape depends on the input size (a dense layer after the last convolution): only fully
    /// convolutional layers take inputs of another size.
    /// </summary>
    public void Resize(TensorShape inputShape)
    {
        if (InputShape is null) throw Error("resized before it was built.");
        var kept = _parameters.ToList();
        var previous = InputShape;
        (_kept, _keptFor) = (kept, previous);
        _parameters.Clear();
        try
        {
            InputShape = inputShape;
            OutputShape = OnBuild(inputShape);
        }
        catch
        {
            // Declared again for the size that fitted, from the kept parameters.
            _parameters.Clear();
            InputShape = previous;
            OutputShape = OnBuild(previous);
            throw;
        }
        finally
        {
            (_kept, _keptFor) = (null, null);
        }
    }

    /// <summary>Validates the per-item input shape, declares parameters, and returns the per-item output shape.</summary>
    protected abstract TensorShape OnBuild(TensorShape inputShape);

    /// <summary>Allocates non-parameter state (running statistics, generators) once parameters exist.</summary>
    protected virtual void OnAllocate(Rng rng) { }

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
        if (_kept is not null)
        {
            var existing = _kept[_parameters.Count];
            if (existing.Name != name || existing.Shape != shape)
                throw Error($"its {existing.Name} is {existing.Shape} for input {_keptFor}, input {InputShape} needs " +
                    $"{name} {shape}: only a fully convolutional network takes inputs of another size.");
            _parameters.Add(existing);
            return existing;
        }
        var parameter = new Parameter(name, shape, decays, initializer);
        _parameters.Add(parameter);
        return parameter;
    }

    /// <summary>The layer's output buffer for a batch of <paramref name="batch"/>, reused across calls.</summary>
    protected Tensor OutputBuffer(int batch) => Buffer("output", OutputShape.Prepend(batch));

    /// <summary>The input-gradient buffer for a batch of <paramref name="batch"/>, reused across calls.</summary>
    protected Tensor InputGradientBuffer(int batch) => Buffer("input gradient", InputShape.Prepend(batch));

    internal override void BuildNode(IBackend backend, IReadOnlyList<TensorShape> inputShapes, Rng? rng, bool inputIsData)
    {
        // The network input is data: its gradient is never needed.
        ComputesInputGradient = !inputIsData;
        Build(backend, inputShapes[0], rng);
    }

    internal override void ResizeNode(IReadOnlyList<TensorShape> inputShapes) => Resize(inputShapes[0]);

    internal override Tensor ForwardNode(IReadOnlyList<Tensor> inputs, bool training) => Forward(inputs[0], training);

    internal override void BackwardNode(Tensor dy, Tensor?[] inputGradients) => inputGradients[0] = Backward(dy);

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
