using Ml.Cnn.Tensors;

namespace Ml.Cnn.Layers;

/// <summary>
/// Multi-head scaled dot-product self-attention over the H·W positions of its input (the tokens of a vision
/// transformer, kept as a [C, 1, T] image): the input's 3C channels are the queries, keys and values, as the 1×1
/// convolution before it projects them (PyTorch's <c>MultiheadAttention</c> in-projection), and each of the
/// <see cref="Heads"/> heads attends with its own C / heads channels. The output has C channels, ready for the
/// out-projection. Parameter-free: the projections are ordinary 1×1 convolutions around it.
/// </summary>
public sealed class SelfAttention : Layer
{
    private Tensor? _input, _probabilities;

    /// <summary>Attends with <paramref name="heads"/> heads; the scores are scaled by <paramref name="scale"/> (1/√d by default).</summary>
    public SelfAttention(int heads, float? scale = null)
    {
        if (heads < 1) throw new ArgumentOutOfRangeException(nameof(heads), heads, "Attention needs at least one head.");
        if (scale is { } s && !(s > 0 && float.IsFinite(s)))
            throw new ArgumentOutOfRangeException(nameof(scale), scale, "The score scale must be positive and finite.");
        (Heads, _scale) = (heads, scale);
    }

    private readonly float? _scale;

    /// <summary>The number of heads.</summary>
    public int Heads { get; }

    /// <summary>The factor on the dot products: 1/√d with d the channels per head, unless given.</summary>
    public float Scale => _scale ?? 1 / MathF.Sqrt(InputShape[0] / 3 / Heads);

    /// <inheritdoc />
    protected override TensorShape OnBuild(TensorShape input)
    {
        RequireRank(input, 3, "[3C, H, W] queries, keys and values");
        if (input[0] % (3 * Heads) != 0)
            throw Error($"expects 3·C channels with C a multiple of its {Heads} heads, got {input[0]} channels.");
        return new TensorShape(input[0] / 3, input[1], input[2]);
    }

    private TensorShape ScoresShape(int batch) => new(batch, Heads, OutputShape[1] * OutputShape[2], OutputShape[1] * OutputShape[2]);

    /// <inheritdoc />
    protected override Tensor OnForward(Tensor x, bool training)
    {
        _input = x;
        _probabilities = Buffer("probabilities", ScoresShape(x.Shape.N));
        var y = OutputBuffer(x.Shape.N);
        Backend.AttentionForward(x, Heads, Scale, _probabilities, y);
        return y;
    }

    /// <inheritdoc />
    protected override Tensor OnBackward(Tensor dy)
    {
        var dx = InputGradientBuffer(dy.Shape.N);
        Backend.AttentionBackward(_input ?? throw Error("backward called before forward."), _probabilities!, dy, Heads, Scale,
            Buffer("score gradients", ScoresShape(dy.Shape.N)), dx);
        return dx;
    }
}
