using Ml.Cnn.Core;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Layers;

/// <summary>Softmax over the features of each item (class probabilities from scores).</summary>
public sealed class Softmax : Layer
{
    private Tensor? _output;

    /// <inheritdoc />
    protected override TensorShape OnBuild(TensorShape input)
    {
        RequireRank(input, 1, "[classes] score vectors");
        return input;
    }

    /// <inheritdoc />
    protected override Tensor OnForward(Tensor x, bool training)
    {
        _output = OutputBuffer(x.Shape.N);
        Backend.SoftmaxForward(x, _output);
        return _output;
    }

    /// <inheritdoc />
    protected override Tensor OnBackward(Tensor dy)
    {
        var dx = InputGradientBuffer(dy.Shape.N);
        Backend.SoftmaxBackward(_output ?? throw Error("backward called before forward."), dy, dx);
        return dx;
    }
}

/// <summary>Reshapes [C, H, W] items to [C·H·W] without copying.</summary>
public sealed class Flatten : Layer
{
    /// <inheritdoc />
    protected override TensorShape OnBuild(TensorShape input) => new(input.Length);

    /// <inheritdoc />
    protected override Tensor OnForward(Tensor x, bool training) => x.Reshape(OutputShape.Prepend(x.Shape.N));

    /// <inheritdoc />
    protected override Tensor OnBackward(Tensor dy) => dy.Reshape(InputShape.Prepend(dy.Shape.N));
}
