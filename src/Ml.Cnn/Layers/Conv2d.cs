using Ml.Cnn.Backends;
using Ml.Cnn.Core;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Layers;

/// <summary>2-D convolution over NCHW input with stride, zero padding, dilation and groups (PyTorch's Conv2d).</summary>
public sealed class Conv2d : Layer
{
    private ConvGeometry _geometry;
    private Tensor? _input;

    /// <summary>Declares a convolution with a square kernel.</summary>
    public Conv2d(int outChannels, int kernelSize, int stride = 1, int padding = 0, int dilation = 1, int groups = 1,
        bool bias = true, WeightInit init = WeightInit.HeNormal)
        : this(outChannels, (kernelSize, kernelSize), (stride, stride), (padding, padding), (dilation, dilation), groups, bias, init) { }

    /// <summary>Declares a convolution with rectangular kernel, stride, padding and dilation (height, width).</summary>
    public Conv2d(int outChannels, (int H, int W) kernelSize, (int H, int W) stride, (int H, int W) padding,
        (int H, int W) dilation, int groups = 1, bool bias = true, WeightInit init = WeightInit.HeNormal)
    {
        OutChannels = outChannels;
        KernelSize = kernelSize;
        Stride = stride;
        Padding = padding;
        Dilation = dilation;
        Groups = groups;
        HasBias = bias;
        Init = init;
    }

    /// <summary>Output channels.</summary>
    public int OutChannels { get; }
    /// <summary>Kernel height and width.</summary>
    public (int H, int W) KernelSize { get; }
    /// <summary>Stride.</summary>
    public (int H, int W) Stride { get; }
    /// <summary>Zero padding on each side.</summary>
    public (int H, int W) Padding { get; }
    /// <summary>Dilation.</summary>
    public (int H, int W) Dilation { get; }
    /// <summary>Channel groups (depthwise when equal to the input channels).</summary>
    public int Groups { get; }
    /// <summary>Whether a bias is added.</summary>
    public bool HasBias { get; }
    /// <summary>Weight initialization.</summary>
    public WeightInit Init { get; }

    /// <summary>
    /// The bias's starting value (0 by default): a detector's heatmap starts at a low prior probability, −log((1 − π)/π),
    /// so the many background cells do not swamp its first steps (RetinaNet's π = 0.01).
    /// </summary>
    public float InitialBias { get; init; }

    /// <summary>[OutChannels, InChannels / Groups, kH, kW].</summary>
    public Parameter Weight { get; private set; } = null!;
    /// <summary>[OutChannels], or null without bias.</summary>
    public Parameter? Bias { get; private set; }

    /// <summary>The resolved geometry for a batch of one (after Build).</summary>
    public ConvGeometry Geometry => _geometry;

    /// <inheritdoc />
    protected override TensorShape OnBuild(TensorShape input)
    {
        RequireRank(input, 3, "[C, H, W] images");
        int c = input[0], h = input[1], w = input[2];
        if (OptionProblem(c, OutChannels, KernelSize, Stride, Padding, Dilation, Groups) is { } problem) throw Error(problem);
        int spanH = Dilation.H * (KernelSize.H - 1) + 1, spanW = Dilation.W * (KernelSize.W - 1) + 1;
        if (spanH > h + 2 * Padding.H || spanW > w + 2 * Padding.W)
            throw Error($"kernel extent {spanH}x{spanW} is larger than the padded input {h + 2 * Padding.H}x{w + 2 * Padding.W} (input {input}, padding {Padding}).");
        _geometry = new ConvGeometry(1, c, h, w, OutChannels, KernelSize.H, KernelSize.W, Stride.H, Stride.W,
            Padding.H, Padding.W, Dilation.H, Dilation.W, Groups);
        int receptive = KernelSize.H * KernelSize.W, fanIn = c / Groups * receptive, fanOut = OutChannels / Groups * receptive;
        Weight = AddParameter("weight", new TensorShape(OutChannels, c / Groups, KernelSize.H, KernelSize.W), decays: true,
            (values, rng) => WeightInitializer.Fill(values, Init, fanIn, fanOut, rng));
        Bias = HasBias ? AddParameter("bias", new TensorShape(OutChannels), decays: false, (values, _) => values.Fill(InitialBias)) : null;
        return new TensorShape(OutChannels, _geometry.OutH, _geometry.OutW);
    }

    /// <summary>
    /// What is wrong with a convolution's options for <paramref name="inChannels"/> input channels, or null: the one
    /// set of checks that <see cref="Conv2d"/> and <see cref="ConvTranspose2d"/> share.
    /// </summary>
    internal static string? OptionProblem(int inChannels, int outChannels, (int H, int W) kernel, (int H, int W) stride, (int H, int W) padding,
        (int H, int W) dilation, int groups)
    {
        if (outChannels <= 0) return $"output channels must be positive, got {outChannels}.";
        if (kernel.H <= 0 || kernel.W <= 0) return $"kernel size must be positive, got {kernel}.";
        if (stride.H <= 0 || stride.W <= 0) return $"stride must be positive, got {stride}.";
        if (padding.H < 0 || padding.W < 0) return $"padding must not be negative, got {padding}.";
        if (dilation.H <= 0 || dilation.W <= 0) return $"dilation must be positive, got {dilation}.";
        if (groups <= 0 || inChannels % groups != 0 || outChannels % groups != 0)
            return $"groups ({groups}) must divide both input channels ({inChannels}) and output channels ({outChannels}).";
        return null;
    }

    /// <inheritdoc />
    public override long MultiplyAdds => (long)OutputShape.Length * _geometry.PatchSize;

    /// <inheritdoc />
    protected override Tensor OnForward(Tensor x, bool training)
    {
        _input = x;
        var y = OutputBuffer(x.Shape.N);
        Backend.ConvForward(_geometry with { Batch = x.Shape.N }, x, Weight.Value, Bias?.Value, y);
        return y;
    }

    /// <inheritdoc />
    protected override Tensor? OnBackward(Tensor dy)
    {
        var x = _input ?? throw Error("backward called before forward.");
        var g = _geometry with { Batch = dy.Shape.N };
        Backend.ConvBackwardWeights(g, x, dy, Weight.Gradient, Bias?.Gradient);
        if (!ComputesInputGradient) return null;
        var dx = InputGradientBuffer(dy.Shape.N);
        Backend.ConvBackwardData(g, dy, Weight.Value, dx);
        return dx;
    }
}
