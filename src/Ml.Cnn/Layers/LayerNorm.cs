using Ml.Cnn.Tensors;

namespace Ml.Cnn.Layers;

/// <summary>
/// Layer normalization over channels: every pixel of a [C, H, W] image is normalized across its C channels (ConvNeXt's
/// LayerNorm, PyTorch's <c>LayerNorm(C)</c> on a channels-last view), every [F] vector across its features; then
/// scaled by γ and shifted by β per channel. Unlike <see cref="BatchNorm"/> it uses no batch statistics, so training
/// and evaluation compute the same function.
/// </summary>
public sealed class LayerNorm(float epsilon = 1e-5f) : Layer
{
    private Tensor? _input, _savedMean, _savedInvStd;

    /// <summary>Added to the variance (PyTorch's default 1e-5; ConvNeXt uses 1e-6).</summary>
    public float Epsilon { get; } = epsilon;

    /// <summary>Scale γ, starts at 1.</summary>
    public Parameter Gamma { get; private set; } = null!;
    /// <summary>Shift β, starts at 0.</summary>
    public Parameter Beta { get; private set; } = null!;

    /// <inheritdoc />
    protected override TensorShape OnBuild(TensorShape input)
    {
        if (input.Rank != 1 && input.Rank != 3) throw Error($"expects [C, H, W] or [F] items, got {input}.");
        if (!(Epsilon > 0)) throw Error($"epsilon must be positive, got {Epsilon}.");
        var channels = new TensorShape(input[0]);
        Gamma = AddParameter("gamma", channels, decays: false, (values, _) => values.Fill(1));
        Beta = AddParameter("beta", channels, decays: false);
        return input;
    }

    /// <inheritdoc />
    protected override Tensor OnForward(Tensor x, bool training)
    {
        _input = x;
        var positions = new TensorShape(x.Shape.N, x.Shape.ItemLength / x.Shape[1]);
        _savedMean = Buffer("saved mean", positions);
        _savedInvStd = Buffer("saved inverse std", positions);
        var y = OutputBuffer(x.Shape.N);
        Backend.LayerNormForward(x, Gamma.Value, Beta.Value, Epsilon, y, _savedMean, _savedInvStd);
        return y;
    }

    /// <inheritdoc />
    protected override Tensor OnBackward(Tensor dy)
    {
        var dx = InputGradientBuffer(dy.Shape.N);
        Backend.LayerNormBackward(_input ?? throw Error("backward called before forward."), dy, Gamma.Value, _savedMean!, _savedInvStd!,
            dx, Gamma.Gradient, Beta.Gradient);
        return dx;
    }
}
