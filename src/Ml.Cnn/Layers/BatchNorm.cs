using Ml.Cnn.Core;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Layers;

/// <summary>
/// Batch normalization over [C, H, W] images (per channel) or [F] vectors (per feature). Training uses batch
/// statistics and updates running ones with PyTorch's momentum convention; evaluation uses the running statistics.
/// </summary>
public sealed class BatchNorm(float momentum = 0.1f, float epsilon = 1e-5f) : Layer
{
    private Tensor? _input, _savedMean, _savedInvStd;
    private bool _trainingForward;

    /// <summary>Weight of the newest batch in the running statistics.</summary>
    public float Momentum { get; } = momentum;
    /// <summary>Added to the variance.</summary>
    public float Epsilon { get; } = epsilon;

    /// <summary>Scale γ, starts at 1.</summary>
    public Parameter Gamma { get; private set; } = null!;
    /// <summary>Shift β, starts at 0.</summary>
    public Parameter Beta { get; private set; } = null!;
    /// <summary>Running mean, starts at 0.</summary>
    public Tensor RunningMean { get; private set; } = null!;
    /// <summary>Running (unbiased) variance, starts at 1.</summary>
    public Tensor RunningVariance { get; private set; } = null!;

    /// <inheritdoc />
    public override IReadOnlyList<Tensor> Buffers => [RunningMean, RunningVariance];

    /// <inheritdoc />
    protected override TensorShape OnBuild(TensorShape input)
    {
        if (input.Rank != 1 && input.Rank != 3) throw Error($"expects [C, H, W] or [F] items, got {input}.");
        if (!(Momentum >= 0 && Momentum <= 1)) throw Error($"momentum must be in [0, 1], got {Momentum}.");
        if (!(Epsilon > 0)) throw Error($"epsilon must be positive, got {Epsilon}.");
        var channels = new TensorShape(input[0]);
        Gamma = AddParameter("gamma", channels, decays: false, (values, _) => values.Fill(1));
        Beta = AddParameter("beta", channels, decays: false);
        return input;
    }

    /// <inheritdoc />
    protected override void OnAllocate(Rng rng)
    {
        var channels = Gamma.Shape;
        RunningMean = Backend.Allocate(channels);
        RunningVariance = Backend.Allocate(channels);
        Backend.Fill(RunningVariance, 1);
        // Per-batch statistics are scratch, held (and released with the network) by the layer's buffers.
        _savedMean = Buffer("saved mean", channels);
        _savedInvStd = Buffer("saved inverse std", channels);
    }

    /// <inheritdoc />
    protected override Tensor OnForward(Tensor x, bool training)
    {
        _input = x;
        _trainingForward = training;
        var y = OutputBuffer(x.Shape.N);
        if (training)
        {
            if (x.Shape.N * (x.Shape.ItemLength / x.Shape[1]) < 2)
                throw Error($"training needs more than one value per channel, got input {x.Shape}.");
            Backend.BatchNormTrainForward(x, Gamma.Value, Beta.Value, y, _savedMean!, _savedInvStd!, RunningMean, RunningVariance, Momentum, Epsilon);
        }
        else
            Backend.BatchNormEvalForward(x, Gamma.Value, Beta.Value, RunningMean, RunningVariance, Epsilon, y, _savedMean!, _savedInvStd!);
        return y;
    }

    /// <inheritdoc />
    protected override Tensor OnBackward(Tensor dy)
    {
        var dx = InputGradientBuffer(dy.Shape.N);
        Backend.BatchNormBackward(_input ?? throw Error("backward called before forward."), dy, Gamma.Value, _savedMean!, _savedInvStd!, _trainingForward,
            dx, Gamma.Gradient, Beta.Gradient);
        return dx;
    }
}
