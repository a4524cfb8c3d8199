using Ml.Cnn.Backends;
using Ml.Cnn.Core;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Layers;

/// <summary>
/// A pointwise nonlinearity; see <see cref="Relu"/>, <see cref="LeakyRelu"/>, <see cref="Elu"/>, <see cref="Sigmoid"/>,
/// <see cref="Tanh"/>, <see cref="Clip"/>, <see cref="HardSigmoid"/>, <see cref="HardSwish"/>, <see cref="Silu"/>, <see cref="Gelu"/>.
/// </summary>
public abstract class Activation(ActivationKind kind, float alpha, float beta = 0) : Layer
{
    private Tensor? _input, _output;

    /// <summary>The function.</summary>
    public ActivationKind Kind { get; } = kind;

    /// <summary>The negative slope (leaky ReLU), saturation (ELU), lower bound (clip) or slope (hard sigmoid); unused by the others.</summary>
    public float Alpha { get; } = alpha;

    /// <summary>The upper bound (clip) or offset (hard sigmoid); unused by the others.</summary>
    public float Beta { get; } = beta;

    /// <inheritdoc />
    protected override TensorShape OnBuild(TensorShape input) => input;

    /// <inheritdoc />
    protected override Tensor OnForward(Tensor x, bool training)
    {
        _input = x;
        _output = OutputBuffer(x.Shape.N);
        Backend.ActivationForward(Kind, Alpha, Beta, x, _output);
        return _output;
    }

    /// <inheritdoc />
    protected override Tensor OnBackward(Tensor dy)
    {
        var dx = InputGradientBuffer(dy.Shape.N);
        Backend.ActivationBackward(Kind, Alpha, Beta, _input ?? throw Error("backward called before forward."), _output!, dy, dx);
        return dx;
    }
}

/// <summary>max(0, x).</summary>
public sealed class Relu() : Activation(ActivationKind.Relu, 0);

/// <summary>x for x &gt; 0, slope·x otherwise (PyTorch's default slope 0.01).</summary>
public sealed class LeakyRelu(float negativeSlope = 0.01f) : Activation(ActivationKind.LeakyRelu, negativeSlope);

/// <summary>x for x &gt; 0, α(eˣ − 1) otherwise.</summary>
public sealed class Elu(float alpha = 1f) : Activation(ActivationKind.Elu, alpha);

/// <summary>1 / (1 + e⁻ˣ).</summary>
public sealed class Sigmoid() : Activation(ActivationKind.Sigmoid, 0);

/// <summary>tanh(x).</summary>
public sealed class Tanh() : Activation(ActivationKind.Tanh, 0);

/// <summary>min(max(x, min), max); the default is ReLU6, MobileNetV2's activation.</summary>
public sealed class Clip : Activation
{
    /// <summary>Clamps to [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public Clip(float min = 0, float max = 6) : base(ActivationKind.Clip, min, max)
    {
        if (!(min <= max)) throw new ArgumentOutOfRangeException(nameof(max), max, $"Clip's max ({max}) must not be below its min ({min}).");
    }

    /// <summary>The lower bound.</summary>
    public float Min => Alpha;

    /// <summary>The upper bound.</summary>
    public float Max => Beta;
}

/// <summary>max(0, min(1, αx + β)); the defaults are PyTorch's hardsigmoid (ONNX's own default α is 0.2).</summary>
public sealed class HardSigmoid(float alpha = 1f / 6, float beta = 0.5f) : Activation(ActivationKind.HardSigmoid, alpha, beta);

/// <summary>x · max(0, min(1, x / 6 + 1/2)) (MobileNetV3's activation).</summary>
public sealed class HardSwish() : Activation(ActivationKind.HardSwish, 0);

/// <summary>x · σ(x), also called swish (EfficientNet's activation).</summary>
public sealed class Silu() : Activation(ActivationKind.Silu, 0);

/// <summary>x · Φ(x), Φ the standard normal distribution function (ConvNeXt's activation; PyTorch's exact GELU).</summary>
public sealed class Gelu() : Activation(ActivationKind.Gelu, 0);
