using Ml.Cnn.Backends;
using Ml.Cnn.Core;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Layers;

/// <summary>A pointwise nonlinearity; see <see cref="Relu"/>, <see cref="LeakyRelu"/>, <see cref="Elu"/>, <see cref="Sigmoid"/>, <see cref="Tanh"/>.</summary>
public abstract class Activation(ActivationKind kind, float alpha) : Layer
{
    private Tensor? _input, _output;

    /// <summary>The function.</summary>
    public ActivationKind Kind { get; } = kind;

    /// <summary>The negative slope (leaky ReLU) or saturation (ELU); unused by the others.</summary>
    public float Alpha { get; } = alpha;

    /// <inheritdoc />
    protected override TensorShape OnBuild(TensorShape input) => input;

    /// <inheritdoc />
    protected override Tensor OnForward(Tensor x, bool training)
    {
        _input = x;
        _output = OutputBuffer(x.Shape.N);
        Backend.ActivationForward(Kind, Alpha, x, _output);
        return _output;
    }

    /// <inheritdoc />
    protected override Tensor OnBackward(Tensor dy)
    {
        var dx = InputGradientBuffer(dy.Shape.N);
        Backend.ActivationBackward(Kind, Alpha, _input ?? throw Error("backward called before forward."), _output!, dy, dx);
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
