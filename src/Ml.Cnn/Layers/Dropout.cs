using Ml.Cnn.Core;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Layers;

/// <summary>
/// Inverted dropout: in training each element is zeroed with probability <see cref="Rate"/> and the survivors are
/// scaled by 1 / (1 − rate), so evaluation is the identity.
/// </summary>
public sealed class Dropout(float rate) : Layer
{
    private Rng? _rng;
    private ulong _seed;
    private bool _dropped;

    /// <summary>Probability of zeroing an element.</summary>
    public float Rate { get; } = rate;

    /// <inheritdoc />
    protected override TensorShape OnBuild(TensorShape input) =>
        Rate >= 0 && Rate < 1 ? input : throw Error($"rate must be in [0, 1), got {Rate}.");

    /// <inheritdoc />
    protected override void OnAllocate(Rng rng) => _rng = new Rng(rng.NextUInt64());

    /// <summary>The layer's own generator, so checkpoints can save and restore its position.</summary>
    public Rng Random => _rng ?? throw Error("not built.");

    /// <inheritdoc />
    public override Rng? Generator => _rng;

    /// <inheritdoc />
    protected override Tensor OnForward(Tensor x, bool training)
    {
        _dropped = training && Rate > 0;
        if (!_dropped) return x;
        _seed = Random.NextUInt64();
        var y = OutputBuffer(x.Shape.N);
        Backend.DropoutForward(x, y, Rate, _seed);
        return y;
    }

    /// <inheritdoc />
    protected override Tensor OnBackward(Tensor dy)
    {
        if (!_dropped) return dy;
        var dx = InputGradientBuffer(dy.Shape.N);
        Backend.DropoutBackward(dy, dx, Rate, _seed);
        return dx;
    }
}
