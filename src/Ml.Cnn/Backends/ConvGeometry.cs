namespace Ml.Cnn.Backends;

/// <summary>
/// Everything a 2-D convolution kernel needs to know about its shapes, validated once by the layer.
/// Weights are laid out [OutChannels, InChannels / Groups, KernelH, KernelW], as in PyTorch and ONNX.
/// </summary>
public readonly record struct ConvGeometry(
    int Batch, int InChannels, int InH, int InW, int OutChannels,
    int KernelH, int KernelW, int StrideH, int StrideW, int PadH, int PadW,
    int DilationH = 1, int DilationW = 1, int Groups = 1)
{
    /// <summary>Output height: floor((H + 2p − d(k − 1) − 1) / s) + 1.</summary>
    public int OutH => (InH + 2 * PadH - DilationH * (KernelH - 1) - 1) / StrideH + 1;

    /// <summary>Output width.</summary>
    public int OutW => (InW + 2 * PadW - DilationW * (KernelW - 1) - 1) / StrideW + 1;

    /// <summary>Input channels seen by one group.</summary>
    public int GroupInChannels => InChannels / Groups;

    /// <summary>Output channels produced by one group.</summary>
    public int GroupOutChannels => OutChannels / Groups;

    /// <summary>Rows of one group's im2col matrix: (Cin / groups) · kH · kW.</summary>
    public int PatchSize => GroupInChannels * KernelH * KernelW;

    /// <summary>Number of weights.</summary>
    public int WeightLength => OutChannels * PatchSize;
}

/// <summary>Shapes of a 2-D max or average pooling, with PyTorch's ceil-mode and count-include-pad rules.</summary>
public readonly record struct PoolGeometry(
    int Batch, int Channels, int InH, int InW,
    int KernelH, int KernelW, int StrideH, int StrideW, int PadH, int PadW,
    bool CeilMode = false, bool CountIncludePad = true)
{
    /// <summary>Output height.</summary>
    public int OutH => OutputSize(InH, KernelH, StrideH, PadH, CeilMode);

    /// <summary>Output width.</summary>
    public int OutW => OutputSize(InW, KernelW, StrideW, PadW, CeilMode);

    /// <summary>
    /// PyTorch's average window: the divisor counts padding (clipped to the padded input) when count-include-pad is
    /// set, only real pixels otherwise.
    /// </summary>
    internal (int Y0, int Y1, int X0, int X1, int Divisor) AverageWindow(int oy, int ox)
    {
        int y0 = oy * StrideH - PadH, x0 = ox * StrideW - PadW;
        int y1 = Math.Min(y0 + KernelH, InH + PadH), x1 = Math.Min(x0 + KernelW, InW + PadW);
        int paddedCount = (y1 - y0) * (x1 - x0);
        y0 = Math.Max(y0, 0); x0 = Math.Max(x0, 0);
        y1 = Math.Min(y1, InH); x1 = Math.Min(x1, InW);
        int divisor = CountIncludePad ? paddedCount : (y1 - y0) * (x1 - x0);
        return (y0, y1, x0, x1, divisor);
    }

    // PyTorch: in ceil mode the last window must start inside the input or its left padding.
    internal static int OutputSize(int input, int kernel, int stride, int pad, bool ceilMode)
    {
        int span = input + 2 * pad - kernel;
        int size = (ceilMode ? (span + stride - 1) / stride : span / stride) + 1;
        if (ceilMode && (size - 1) * stride >= input + pad) size--;
        return size;
    }
}
