using Ml.Cnn.Backends;
using Ml.Cnn.Core;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Layers;

/// <summary>Shared validation for the 2-D pooling layers (PyTorch's output-size, ceil-mode and padding rules).</summary>
public abstract class Pool2d : Layer
{
    private protected PoolGeometry _geometry;
    private protected Tensor? _input;

    private protected Pool2d(int kernelSize, int? stride, int padding, bool ceilMode)
    {
        KernelSize = kernelSize;
        Stride = stride ?? kernelSize;
        Padding = padding;
        CeilMode = ceilMode;
    }

    /// <summary>Square window size.</summary>
    public int KernelSize { get; }
    /// <summary>Step between windows (defaults to the window size).</summary>
    public int Stride { get; }
    /// <summary>Implicit padding on each side.</summary>
    public int Padding { get; }
    /// <summary>Round the output size up instead of down.</summary>
    public bool CeilMode { get; }

    private protected virtual bool CountIncludePad => true;

    /// <inheritdoc />
    protected override TensorShape OnBuild(TensorShape input)
    {
        RequireRank(input, 3, "[C, H, W] images");
        if (KernelSize <= 0) throw Error($"kernel size must be positive, got {KernelSize}.");
        if (Stride <= 0) throw Error($"stride must be positive, got {Stride}.");
        if (Padding < 0) throw Error($"padding must not be negative, got {Padding}.");
        if (Padding * 2 > KernelSize) throw Error($"padding ({Padding}) must be at most half the kernel size ({KernelSize}).");
        if (KernelSize > input[1] + 2 * Padding || KernelSize > input[2] + 2 * Padding)
            throw Error($"kernel {KernelSize}x{KernelSize} is larger than the padded input {input[1] + 2 * Padding}x{input[2] + 2 * Padding} (input {input}).");
        _geometry = new PoolGeometry(1, input[0], input[1], input[2], KernelSize, KernelSize, Stride, Stride, Padding, Padding,
            CeilMode, CountIncludePad);
        return new TensorShape(input[0], _geometry.OutH, _geometry.OutW);
    }
}

/// <summary>Max pooling.</summary>
public sealed class MaxPool2d(int kernelSize, int? stride = null, int padding = 0, bool ceilMode = false)
    : Pool2d(kernelSize, stride, padding, ceilMode)
{
    /// <inheritdoc />
    protected override Tensor OnForward(Tensor x, bool training)
    {
        _input = x;
        var y = OutputBuffer(x.Shape.N);
        Backend.MaxPoolForward(_geometry with { Batch = x.Shape.N }, x, y);
        return y;
    }

    /// <inheritdoc />
    protected override Tensor OnBackward(Tensor dy)
    {
        var dx = InputGradientBuffer(dy.Shape.N);
        Backend.MaxPoolBackward(_geometry with { Batch = dy.Shape.N }, _input ?? throw Error("backward called before forward."), dy, dx);
        return dx;
    }
}

/// <summary>Average pooling; <paramref name="countIncludePad"/> divides by the full window, padding included.</summary>
public sealed class AvgPool2d(int kernelSize, int? stride = null, int padding = 0, bool ceilMode = false, bool countIncludePad = true)
    : Pool2d(kernelSize, stride, padding, ceilMode)
{
    private protected override bool CountIncludePad => countIncludePad;

    /// <summary>Whether padding counts in the divisor.</summary>
    public bool IncludesPadding => countIncludePad;

    /// <inheritdoc />
    protected override Tensor OnForward(Tensor x, bool training)
    {
        var y = OutputBuffer(x.Shape.N);
        Backend.AvgPoolForward(_geometry with { Batch = x.Shape.N }, x, y);
        return y;
    }

    /// <inheritdoc />
    protected override Tensor OnBackward(Tensor dy)
    {
        var dx = InputGradientBuffer(dy.Shape.N);
        Backend.AvgPoolBackward(_geometry with { Batch = dy.Shape.N }, dy, dx);
        return dx;
    }
}

/// <summary>Averages each channel over H×W: [C, H, W] → [C] (or [C, 1, 1]).</summary>
public sealed class GlobalAvgPool(bool keepSpatialDims = false) : Layer
{
    /// <summary>Output [C, 1, 1] rather than [C] (for a squeeze-and-excitation gate that convolutions read next).</summary>
    public bool KeepSpatialDims { get; } = keepSpatialDims;

    /// <inheritdoc />
    protected override TensorShape OnBuild(TensorShape input)
    {
        RequireRank(input, 3, "[C, H, W] images");
        return KeepSpatialDims ? new TensorShape(input[0], 1, 1) : new TensorShape(input[0]);
    }

    /// <inheritdoc />
    protected override Tensor OnForward(Tensor x, bool training)
    {
        var y = OutputBuffer(x.Shape.N);
        Backend.GlobalAvgPoolForward(x, y);
        return y;
    }

    /// <inheritdoc />
    protected override Tensor OnBackward(Tensor dy)
    {
        var dx = InputGradientBuffer(dy.Shape.N);
        Backend.GlobalAvgPoolBackward(dy, dx);
        return dx;
    }
}
