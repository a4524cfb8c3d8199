using Ml.Cnn.Backends;
using Ml.Cnn.Core;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Layers;

/// <summary>
/// Transposed ("fractionally strided") 2-D convolution over NCHW input, PyTorch's ConvTranspose2d: the learned
/// upsampling of FCN and U-Net decoders. Output size (H − 1)·stride − 2·padding + dilation·(kernel − 1) +
/// outputPadding + 1. It is the adjoint of the <see cref="Conv2d"/> that maps its output back to its input, so it
/// runs on that convolution's kernels: forward is the convolution's data gradient, the data gradient its forward
/// pass, the weight gradient its weight gradient with the two roles swapped.
/// </summary>
public sealed class ConvTranspose2d : Layer
{
    private ConvGeometry _geometry;
    private Tensor? _input;

    /// <summary>Declares a transposed convolution with a square kernel.</summary>
    public ConvTranspose2d(int outChannels, int kernelSize, int stride = 1, int padding = 0, int outputPadding = 0,
        int dilation = 1, int groups = 1, bool bias = true, WeightInit init = WeightInit.HeNormal)
    {
        OutChannels = outChannels;
        KernelSize = (kernelSize, kernelSize);
        Stride = (stride, stride);
        Padding = (padding, padding);
        OutputPadding = (outputPadding, outputPadding);
        Dilation = (dilation, dilation);
        Groups = groups;
        HasBias = bias;
        Init = init;
    }

    /// <summary>Output channels.</summary>
    public int OutChannels { get; }
    /// <summary>Kernel height and width.</summary>
    public (int H, int W) KernelSize { get; }
    /// <summary>Stride: the upsampling factor.</summary>
    public (int H, int W) Stride { get; }
    /// <summary>Padding removed from each side of the full output.</summary>
    public (int H, int W) Padding { get; }
    /// <summary>Rows and columns added at the bottom and right, to reach sizes a stride leaves ambiguous.</summary>
    public (int H, int W) OutputPadding { get; }
    /// <summary>Dilation.</summary>
    public (int H, int W) Dilation { get; }
    /// <summary>Channel groups.</summary>
    public int Groups { get; }
    /// <summary>Whether a bias is added.</summary>
    public bool HasBias { get; }
    /// <summary>Weight initialization.</summary>
    public WeightInit Init { get; }

    /// <summary>[InChannels, OutChannels / Groups, kH, kW], PyTorch's layout.</summary>
    public Parameter Weight { get; private set; } = null!;
    /// <summary>[OutChannels], or null without bias.</summary>
    public Parameter? Bias { get; private set; }

    /// <inheritdoc />
    protected override TensorShape OnBuild(TensorShape input)
    {
        RequireRank(input, 3, "[C, H, W] images");
        int c = input[0], h = input[1], w = input[2];
        if (Conv2d.OptionProblem(c, OutChannels, KernelSize, Stride, Padding, Dilation, Groups) is { } problem) throw Error(problem);
        if (OutputPadding.H < 0 || OutputPadding.W < 0 || OutputPadding.H >= Stride.H || OutputPadding.W >= Stride.W)
            throw Error($"output padding must lie in [0, stride), got {OutputPadding} with stride {Stride}.");
        int outH = (h - 1) * Stride.H - 2 * Padding.H + Dilation.H * (KernelSize.H - 1) + OutputPadding.H + 1;
        int outW = (w - 1) * Stride.W - 2 * Padding.W + Dilation.W * (KernelSize.W - 1) + OutputPadding.W + 1;
        if (outH <= 0 || outW <= 0)
            throw Error($"the padding {Padding} leaves no output for input {input} (output {outH}x{outW}).");
        // The convolution this layer transposes: from the [OutChannels, outH, outW] output back to the input.
        _geometry = new ConvGeometry(1, OutChannels, outH, outW, c, KernelSize.H, KernelSize.W, Stride.H, Stride.W,
            Padding.H, Padding.W, Dilation.H, Dilation.W, Groups);
        int receptive = KernelSize.H * KernelSize.W;
        int fanIn = c / Groups * receptive, fanOut = OutChannels / Groups * receptive;
        Weight = AddParameter("weight", new TensorShape(c, OutChannels / Groups, KernelSize.H, KernelSize.W), decays: true,
            (values, rng) => WeightInitializer.Fill(values, Init, fanIn, fanOut, rng));
        Bias = HasBias ? AddParameter("bias", new TensorShape(OutChannels), decays: false) : null;
        return new TensorShape(OutChannels, outH, outW);
    }

    /// <inheritdoc />
    public override long MultiplyAdds => (long)InputShape.Length * (OutChannels / Groups) * KernelSize.H * KernelSize.W;

    /// <inheritdoc />
    protected override Tensor OnForward(Tensor x, bool training)
    {
        _input = x;
        var y = OutputBuffer(x.Shape.N);
        Backend.ConvBackwardData(_geometry with { Batch = x.Shape.N }, x, Weight.Value, y);
        if (Bias is not null) Backend.AddChannelBias(Bias.Value, y);
        return y;
    }

    /// <inheritdoc />
    protected override Tensor? OnBackward(Tensor dy)
    {
        var x = _input ?? throw Error("backward called before forward.");
        var g = _geometry with { Batch = dy.Shape.N };
        Backend.ConvBackwardWeights(g, dy, x, Weight.Gradient, null);
        if (Bias is not null) Backend.ChannelSums(dy, Bias.Gradient);
        if (!ComputesInputGradient) return null;
        var dx = InputGradientBuffer(dy.Shape.N);
        Backend.ConvForward(g, dy, Weight.Value, null, dx);
        return dx;
    }
}
