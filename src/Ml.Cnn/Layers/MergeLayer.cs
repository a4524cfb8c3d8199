using Ml.Cnn.Backends;
using Ml.Cnn.Core;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Layers;

/// <summary>
/// A parameter-free layer that joins several branches (Inception's concatenation, ResNet's residual add).
/// Per-item shapes exclude the batch dimension, as for <see cref="Layer"/>.
/// </summary>
public abstract class MergeLayer : NetworkLayer
{
    /// <summary>Per-item input shapes after <see cref="Build"/>.</summary>
    public IReadOnlyList<TensorShape> InputShapes { get; private set; } = [];

    /// <summary>Binds to a backend and validates the input shapes.</summary>
    public void Build(IBackend backend, IReadOnlyList<TensorShape> inputShapes)
    {
        if (inputShapes.Count < 2) throw Error($"needs at least two inputs, got {inputShapes.Count}.");
        Bind(backend);
        InputShapes = inputShapes.ToArray();
        OutputShape = OnBuild(InputShapes);
    }

    internal override void BuildNode(IBackend backend, IReadOnlyList<TensorShape> inputShapes, Rng? rng, bool inputIsData) =>
        Build(backend, inputShapes);

    internal override void ResizeNode(IReadOnlyList<TensorShape> inputShapes)
    {
        var previous = InputShapes;
        InputShapes = inputShapes.ToArray();
        try
        {
            OutputShape = OnBuild(InputShapes);
        }
        catch
        {
            InputShapes = previous;
            throw;
        }
    }

    internal override Tensor ForwardNode(IReadOnlyList<Tensor> inputs, bool training) => Forward(inputs);

    internal override void BackwardNode(Tensor dy, Tensor?[] inputGradients)
    {
        var parts = Backward(dy);
        for (int k = 0; k < parts.Count; k++) inputGradients[k] = parts[k];
    }

    /// <summary>Validates the inputs and returns the output shape.</summary>
    protected abstract TensorShape OnBuild(IReadOnlyList<TensorShape> inputShapes);

    /// <summary>Joins the branches.</summary>
    public Tensor Forward(IReadOnlyList<Tensor> inputs)
    {
        if (inputs.Count != InputShapes.Count) throw Error($"built for {InputShapes.Count} inputs, got {inputs.Count}.");
        for (int i = 0; i < inputs.Count; i++)
            if (inputs[i].Shape != InputShapes[i].Prepend(inputs[0].Shape.N))
                throw Error($"input {i}: expected [N, {string.Join(", ", InputShapes[i].Dims)}] with N = {inputs[0].Shape.N}, got {inputs[i].Shape}.");
        var output = Buffer("output", OutputShape.Prepend(inputs[0].Shape.N));
        OnForward(inputs, output);
        return output;
    }

    /// <summary>Writes the join of <paramref name="inputs"/> into <paramref name="output"/>.</summary>
    protected abstract void OnForward(IReadOnlyList<Tensor> inputs, Tensor output);

    /// <summary>Splits the output gradient into one gradient per input.</summary>
    public abstract IReadOnlyList<Tensor> Backward(Tensor dy);

}

/// <summary>Concatenates [Cᵢ, H, W] inputs along channels (Inception).</summary>
public sealed class Concat : MergeLayer
{
    /// <inheritdoc />
    protected override TensorShape OnBuild(IReadOnlyList<TensorShape> inputShapes)
    {
        var first = inputShapes[0];
        foreach (var s in inputShapes)
            if (s.Rank != first.Rank || !s.Dims.Skip(1).SequenceEqual(first.Dims.Skip(1)))
                throw Error($"inputs must agree in every dimension but channels, got {string.Join(" and ", inputShapes)}.");
        var dims = first.Dims.ToArray();
        dims[0] = inputShapes.Sum(s => s[0]);
        return new TensorShape(dims);
    }

    /// <inheritdoc />
    protected override void OnForward(IReadOnlyList<Tensor> inputs, Tensor output)
    {
        int offset = 0;
        foreach (var input in inputs)
        {
            Backend.CopyChannels(input, 0, output, offset, input.Shape[1]);
            offset += input.Shape[1];
        }
    }

    /// <inheritdoc />
    public override IReadOnlyList<Tensor> Backward(Tensor dy)
    {
        var gradients = InputShapes.Select((s, i) => Buffer($"input gradient {i}", s.Prepend(dy.Shape.N))).ToArray();
        int offset = 0;
        foreach (var g in gradients)
        {
            Backend.CopyChannels(dy, offset, g, 0, g.Shape[1]);
            offset += g.Shape[1];
        }
        return gradients;
    }
}

/// <summary>Elementwise sum of equally shaped inputs (residual connections).</summary>
public sealed class Add : MergeLayer
{
    /// <inheritdoc />
    protected override TensorShape OnBuild(IReadOnlyList<TensorShape> inputShapes)
    {
        if (inputShapes.Any(s => s != inputShapes[0]))
            throw Error($"inputs must have equal shapes, got {string.Join(" and ", inputShapes)}.");
        return inputShapes[0];
    }

    /// <inheritdoc />
    protected override void OnForward(IReadOnlyList<Tensor> inputs, Tensor output)
    {
        Backend.Add(inputs[0], inputs[1], output);
        for (int i = 2; i < inputs.Count; i++) Backend.Axpy(1, inputs[i], output);
    }

    /// <summary>The sum passes its gradient unchanged to every input (the same tensor, read-only for callers).</summary>
    public override IReadOnlyList<Tensor> Backward(Tensor dy) => Enumerable.Repeat(dy, InputShapes.Count).ToArray();
}

/// <summary>
/// Elementwise product of two inputs: equal shapes, or [C, H, W] by a per-channel gate ([C, 1, 1] or [C]) broadcast
/// over the plane, in either order, as squeeze-and-excitation blocks scale their input.
/// </summary>
public sealed class Multiply : MergeLayer
{
    private int _gate = 1;
    private Tensor? _a, _b;

    /// <inheritdoc />
    protected override TensorShape OnBuild(IReadOnlyList<TensorShape> inputShapes)
    {
        if (inputShapes.Count != 2) throw Error($"multiplies two inputs, got {inputShapes.Count}.");
        _gate = 1;
        if (inputShapes[0] == inputShapes[1]) return inputShapes[0];
        static bool Gates(TensorShape gate, TensorShape full) => full.Rank == 3 && gate.Length == full[0]
            && (gate.Rank == 1 || gate.Rank == 3 && gate[1] == 1 && gate[2] == 1);
        _gate = Gates(inputShapes[1], inputShapes[0]) ? 1 : Gates(inputShapes[0], inputShapes[1]) ? 0
            : throw Error($"inputs must have equal shapes or be [C, H, W] and a [C, 1, 1] gate, got {string.Join(" and ", inputShapes)}.");
        return inputShapes[1 - _gate];
    }

    /// <summary>Which input is the per-channel gate (1 when the shapes are equal).</summary>
    public int GateIndex => _gate;

    /// <inheritdoc />
    protected override void OnForward(IReadOnlyList<Tensor> inputs, Tensor output)
    {
        (_a, _b) = (inputs[1 - _gate], inputs[_gate]);
        Backend.Multiply(_a, _b, output);
    }

    /// <inheritdoc />
    public override IReadOnlyList<Tensor> Backward(Tensor dy)
    {
        if (_a is null || _b is null) throw Error("backward called before forward.");
        var da = Buffer("input gradient (full)", _a.Shape);
        var db = Buffer("input gradient (gate)", _b.Shape);
        Backend.MultiplyBackward(_a, _b, dy, da, db);
        return _gate == 1 ? [da, db] : [db, da];
    }
}

/// <summary>
/// Crops its first input's plane to the second input's height and width, centred (the extra row or column of an odd
/// difference is cut at the bottom or right): the original U-Net's crop of encoder features to the decoder's size
/// before they are joined, on any input size. The second input only gives the size; it receives no gradient.
/// </summary>
public sealed class Crop : MergeLayer
{
    private int _top, _left;

    /// <inheritdoc />
    protected override TensorShape OnBuild(IReadOnlyList<TensorShape> inputShapes)
    {
        if (inputShapes.Count != 2) throw Error($"crops one input to the size of another, got {inputShapes.Count} inputs.");
        var (x, reference) = (inputShapes[0], inputShapes[1]);
        if (x.Rank != 3 || reference.Rank != 3 || reference[1] > x[1] || reference[2] > x[2])
            throw Error($"crops a [C, H, W] input to a smaller or equal [C', H', W'] plane, got {x} and {reference}.");
        (_top, _left) = ((x[1] - reference[1]) / 2, (x[2] - reference[2]) / 2);
        return new TensorShape(x[0], reference[1], reference[2]);
    }

    /// <summary>The rows and columns cut from the top and the left.</summary>
    public (int Top, int Left) Offset => (_top, _left);

    /// <inheritdoc />
    protected override void OnForward(IReadOnlyList<Tensor> inputs, Tensor output) =>
        Backend.CopyWindow(inputs[0], _top, _left, output, 0, 0, OutputShape[1], OutputShape[2]);

    /// <inheritdoc />
    public override IReadOnlyList<Tensor> Backward(Tensor dy)
    {
        var dx = Buffer("input gradient 0", InputShapes[0].Prepend(dy.Shape.N));
        var none = Buffer("input gradient 1", InputShapes[1].Prepend(dy.Shape.N));
        Backend.Fill(dx, 0);
        Backend.Fill(none, 0);
        Backend.CopyWindow(dy, 0, 0, dx, _top, _left, OutputShape[1], OutputShape[2]);
        return [dx, none];
    }
}
