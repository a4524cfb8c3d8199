using Ml.Cnn.Core;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Layers;

/// <summary>
/// AlexNet's local response normalization across channels, in PyTorch's form:
/// y = x / (k + α/n · Σ x²)^β over a window of n neighbouring channels.
/// </summary>
public sealed class LocalResponseNorm(int size, float alpha = 1e-4f, float beta = 0.75f, float k = 1f) : Layer
{
    private Tensor? _input, _output, _scale;

    /// <summary>Window size n in channels.</summary>
    public int Size { get; } = size;
    /// <summary>α.</summary>
    public float Alpha { get; } = alpha;
    /// <summary>β.</summary>
    public float Beta { get; } = beta;
    /// <summary>k.</summary>
    public float K { get; } = k;

    /// <inheritdoc />
    protected override TensorShape OnBuild(TensorShape input)
    {
        RequireRank(input, 3, "[C, H, W] images");
        if (Size <= 0) throw Error($"size must be positive, got {Size}.");
        return input;
    }

    /// <inheritdoc />
    protected override Tensor OnForward(Tensor x, bool training)
    {
        _input = x;
        _output = OutputBuffer(x.Shape.N);
        _scale = Buffer("scale", x.Shape);
        Backend.LrnForward(x, _output, _scale, Size, Alpha, Beta, K);
        return _output;
    }

    /// <inheritdoc />
    protected override Tensor OnBackward(Tensor dy)
    {
        var dx = InputGradientBuffer(dy.Shape.N);
        Backend.LrnBackward(_input ?? throw Error("backward called before forward."), _output!, _scale!, dy, dx, Size, Alpha, Beta);
        return dx;
    }
}
