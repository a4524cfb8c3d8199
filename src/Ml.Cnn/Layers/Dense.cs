using Ml.Cnn.Core;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Layers;

/// <summary>Fully connected layer y = x·Wᵀ + b over the flattened item (PyTorch's Linear; W is [out, in]).</summary>
public sealed class Dense(int outFeatures, bool bias = true, WeightInit init = WeightInit.HeNormal) : Layer
{
    private Tensor? _input;

    /// <summary>Output features.</summary>
    public int OutFeatures { get; } = outFeatures;

    /// <summary>[out, in].</summary>
    public Parameter Weight { get; private set; } = null!;
    /// <summary>[out], or null without bias.</summary>
    public Parameter? Bias { get; private set; }

    /// <inheritdoc />
    protected override TensorShape OnBuild(TensorShape input)
    {
        if (OutFeatures <= 0) throw Error($"output features must be positive, got {OutFeatures}.");
        int inFeatures = input.Length;
        Weight = AddParameter("weight", new TensorShape(OutFeatures, inFeatures), decays: true,
            (values, rng) => WeightInitializer.Fill(values, init, inFeatures, OutFeatures, rng));
        Bias = bias ? AddParameter("bias", new TensorShape(OutFeatures), decays: false) : null;
        return new TensorShape(OutFeatures);
    }

    /// <inheritdoc />
    public override long MultiplyAdds => (long)InputShape.Length * OutFeatures;

    /// <inheritdoc />
    protected override Tensor OnForward(Tensor x, bool training)
    {
        _input = x;
        var y = OutputBuffer(x.Shape.N);
        Backend.DenseForward(x, Weight.Value, Bias?.Value, y);
        return y;
    }

    /// <inheritdoc />
    protected override Tensor? OnBackward(Tensor dy)
    {
        var dx = ComputesInputGradient ? InputGradientBuffer(dy.Shape.N) : null;
        Backend.DenseBackward(_input ?? throw Error("backward called before forward."), Weight.Value, dy, dx, Weight.Gradient, Bias?.Gradient);
        return dx;
    }
}
