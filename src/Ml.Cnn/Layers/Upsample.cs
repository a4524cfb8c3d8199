using Ml.Cnn.Backends;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Layers;

/// <summary>
/// Enlarges each plane by whole factors, with nearest or bilinear interpolation (PyTorch's
/// <c>nn.Upsample(scale_factor, mode)</c> with align_corners = false; ONNX's Resize with half-pixel coordinates).
/// Parameter-free: FCN's fixed bilinear upsampling of class scores, U-Net's nearest-neighbour decoder.
/// </summary>
public sealed class Upsample(int scaleFactor = 2, UpsampleMode mode = UpsampleMode.Nearest) : Layer
{
    /// <summary>The factor by which height and width grow.</summary>
    public int ScaleFactor { get; } = scaleFactor;

    /// <summary>How new pixels are interpolated.</summary>
    public UpsampleMode Mode { get; } = mode;

    /// <inheritdoc />
    protected override TensorShape OnBuild(TensorShape input)
    {
        RequireRank(input, 3, "[C, H, W] images");
        if (ScaleFactor < 1) throw Error($"scale factor must be at least 1, got {ScaleFactor}.");
        if (!Enum.IsDefined(Mode)) throw Error($"unknown mode {Mode}.");
        return new TensorShape(input[0], input[1] * ScaleFactor, input[2] * ScaleFactor);
    }

    /// <inheritdoc />
    protected override Tensor OnForward(Tensor x, bool training)
    {
        var y = OutputBuffer(x.Shape.N);
        Backend.UpsampleForward(Mode, x, y);
        return y;
    }

    /// <inheritdoc />
    protected override Tensor? OnBackward(Tensor dy)
    {
        var dx = InputGradientBuffer(dy.Shape.N);
        Backend.UpsampleBackward(Mode, dy, dx);
        return dx;
    }
}
