using Ml.Cnn.Data;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Losses;

/// <summary>
/// A training objective: the mean loss over a batch and its gradient with respect to the network output. The value is
/// computed where the backend keeps its tensors; <see cref="Compute(Tensor, Tensor, Tensor)"/> reads it back at once,
/// <see cref="Compute(Tensor, Tensor, Tensor, Tensor, int, bool)"/> leaves it there for a later read of many batches'.
/// </summary>
public abstract class Loss
{
    private Tensor? _value;

    /// <summary>Validates shapes and labels, computes the loss and gradient, and returns the loss (one read from the backend).</summary>
    public float Compute(Tensor output, Tensor target, Tensor outputGradient)
    {
        if (_value is null || _value.Backend != output.Backend) _value = output.Backend.Allocate(new TensorShape(1));
        output.Backend.Fill(_value, 0);
        Compute(output, target, outputGradient, _value, 0);
        return _value.ToArray()[0];
    }

    /// <summary>
    /// Validates shapes (and, with <paramref name="checkLabels"/>, the labels' values: a read of the targets), computes
    /// the gradient and adds the loss to <paramref name="losses"/>[<paramref name="slot"/>] without reading it.
    /// </summary>
    public void Compute(Tensor output, Tensor target, Tensor outputGradient, Tensor losses, int slot, bool checkLabels = true)
    {
        if (outputGradient.Shape != output.Shape)
            throw new ArgumentException($"{GetType().Name}: gradient shape {outputGradient.Shape} must equal output shape {output.Shape}.", nameof(outputGradient));
        if (slot < 0 || slot >= losses.Length)
            throw new ArgumentOutOfRangeException(nameof(slot), slot, $"{GetType().Name}: the losses tensor {losses.Shape} has no slot {slot}.");
        Validate(output, target, checkLabels);
        Evaluate(output, target, outputGradient, losses, slot);
    }

    /// <summary>
    /// Throws an ArgumentException when the target does not fit the output; the labels' values are checked only when
    /// <paramref name="labels"/> is set.
    /// </summary>
    protected abstract void Validate(Tensor output, Tensor target, bool labels);

    /// <summary>
    /// Throws an ArgumentException (naming the loss as <paramref name="name"/>) unless a network of per-item output
    /// <paramref name="output"/> can train on <paramref name="data"/> with this loss: checked once, before training.
    /// </summary>
    internal abstract void CheckFits(TensorShape output, ImageDataset data, string name);

    private protected static ArgumentException PerPixelData(ImageDataset data, string name) =>
        new($"The data has a class label per pixel ({data.TargetLength} each); {name} does not score pixel labels.", nameof(data));

    /// <summary>The backend computation: adds the loss to losses[slot] and writes the gradient.</summary>
    protected abstract void Evaluate(Tensor output, Tensor target, Tensor outputGradient, Tensor losses, int slot);
}

/// <summary>Losses whose target is one class index per item (stored as floats, shape [N]).</summary>
public abstract class ClassificationLoss : Loss
{
    internal override void CheckFits(TensorShape output, ImageDataset data, string name)
    {
        if (data.ClassCount == 0) throw new ArgumentException($"{name} needs class labels, but the data has regression targets.", nameof(data));
        if (data.IsPerPixel) throw PerPixelData(data, name);
        if (output.Length != data.ClassCount)
            throw new ArgumentException($"The network outputs {output.Length} scores but the data has {data.ClassCount} classes.", nameof(data));
    }

    /// <inheritdoc />
    protected override void Validate(Tensor output, Tensor target, bool labels)
    {
        if (output.Shape.Rank != 2)
            throw new ArgumentException($"{GetType().Name}: expected scores of shape [N, classes], got {output.Shape}.", nameof(output));
        if (target.Length != output.Shape.N)
            throw new ArgumentException($"{GetType().Name}: expected {output.Shape.N} labels for scores {output.Shape}, got labels {target.Shape}.", nameof(target));
        if (!labels) return;
        int classes = output.Shape[1];
        var values = target.ToArray();
        for (int i = 0; i < values.Length; i++)
            if (!(values[i] >= 0 && values[i] < classes) || values[i] != MathF.Floor(values[i]))
                throw new ArgumentException($"{GetType().Name}: label {i} is {values[i]}, expected a class index in [0, {classes - 1}].", nameof(target));
    }
}

/// <summary>Losses whose target has the output's shape.</summary>
public abstract class RegressionLoss : Loss
{
    internal override void CheckFits(TensorShape output, ImageDataset data, string name)
    {
        if (data.IsPerPixel) throw PerPixelData(data, name);
        if (output.Length != data.TargetLength)
            throw new ArgumentException($"The network outputs {output.Length} values but each target has {data.TargetLength}.", nameof(data));
    }

    /// <inheritdoc />
    protected override void Validate(Tensor output, Tensor target, bool labels)
    {
        if (target.Length != output.Length)
            throw new ArgumentException($"{GetType().Name}: target {target.Shape} must have as many values as output {output.Shape}.", nameof(target));
    }
}

/// <summary>Softmax followed by cross-entropy, computed with a stable log-sum-exp.</summary>
public sealed class SoftmaxCrossEntropyLoss : ClassificationLoss
{
    /// <inheritdoc />
    protected override void Evaluate(Tensor output, Tensor target, Tensor outputGradient, Tensor losses, int slot) =>
        output.Backend.SoftmaxCrossEntropy(output, target, outputGradient, losses, slot);
}

/// <summary>The multiclass SVM loss Σ_{j≠y} max(0, s_j − s_y + 1), averaged over the batch.</summary>
public sealed class MulticlassHingeLoss : ClassificationLoss
{
    /// <inheritdoc />
    protected override void Evaluate(Tensor output, Tensor target, Tensor outputGradient, Tensor losses, int slot) =>
        output.Backend.MulticlassHinge(output, target, outputGradient, losses, slot);
}

/// <summary>Mean squared error over all elements.</summary>
public sealed class MeanSquaredErrorLoss : RegressionLoss
{
    /// <inheritdoc />
    protected override void Evaluate(Tensor output, Tensor target, Tensor outputGradient, Tensor losses, int slot) =>
        output.Backend.MeanSquaredError(output, target, outputGradient, losses, slot);
}

/// <summary>Mean absolute error (L1) over all elements.</summary>
public sealed class L1Loss : RegressionLoss
{
    /// <inheritdoc />
    protected override void Evaluate(Tensor output, Tensor target, Tensor outputGradient, Tensor losses, int slot) =>
        output.Backend.MeanAbsoluteError(output, target, outputGradient, losses, slot);
}

/// <summary>Binary cross-entropy on logits (sigmoid folded in for stability), averaged over all elements.</summary>
public sealed class BinaryCrossEntropyWithLogitsLoss : RegressionLoss
{
    /// <inheritdoc />
    protected override void Evaluate(Tensor output, Tensor target, Tensor outputGradient, Tensor losses, int slot) =>
        output.Backend.BinaryCrossEntropyWithLogits(output, target, outputGradient, losses, slot);
}

/// <summary>
/// Softmax cross-entropy at every pixel, for segmentation: scores [N, classes, H, W] against one class index per
/// pixel ([N, H·W] or [N, H, W], stored as floats). Pixels labelled <see cref="IgnoreLabel"/> (unlabelled, borders)
/// add nothing; <see cref="ClassWeights"/> make rare classes count more. The mean is over the counted pixels,
/// weighted as in PyTorch's <c>cross_entropy(weight=…, ignore_index=…)</c>.
/// </summary>
public sealed class PixelCrossEntropyLoss : Loss
{
    /// <summary>The default <see cref="IgnoreLabel"/>: PyTorch's ignore_index.</summary>
    public const int DefaultIgnoreLabel = ImageDataset.IgnoredLabel;

    private readonly float[]? _classWeights;
    private Tensor? _weights;

    /// <summary>A per-pixel cross-entropy; <paramref name="classWeights"/> holds one positive weight per class.</summary>
    public PixelCrossEntropyLoss(int ignoreLabel = DefaultIgnoreLabel, float[]? classWeights = null)
    {
        if (classWeights is not null)
            for (int i = 0; i < classWeights.Length; i++)
                if (!(classWeights[i] >= 0) || float.IsPositiveInfinity(classWeights[i]))
                    throw new ArgumentOutOfRangeException(nameof(classWeights), classWeights[i],
                        $"class weight {i} is {classWeights[i]}; weights must be finite and not negative.");
        IgnoreLabel = ignoreLabel;
        _classWeights = classWeights?.ToArray();
    }

    /// <summary>The label of pixels that do not count.</summary>
    public int IgnoreLabel { get; }

    internal override void CheckFits(TensorShape output, ImageDataset data, string name)
    {
        if (!data.IsPerPixel)
            throw new ArgumentException($"{name} needs a class label per pixel, but the data has {data.TargetLength} target(s) per item.", nameof(data));
        if (output.Rank != 3 || output[0] != data.ClassCount || output[1] * output[2] != data.TargetLength)
            throw new ArgumentException($"The network outputs {output} but the data has {data.ClassCount} classes and " +
                $"{data.TargetLength} pixel labels per item: a segmentation network outputs [classes, H, W].", nameof(data));
    }

    /// <summary>The per-class weights, or null for equal weights.</summary>
    public IReadOnlyList<float>? ClassWeights => _classWeights;

    /// <inheritdoc />
    protected override void Validate(Tensor output, Tensor target, bool labels)
    {
        if (output.Shape.Rank != 4)
            throw new ArgumentException($"{nameof(PixelCrossEntropyLoss)}: expected scores of shape [N, classes, H, W], got {output.Shape}.", nameof(output));
        int classes = output.Shape[1], pixels = output.Shape[2] * output.Shape[3];
        if (target.Length != output.Shape.N * pixels)
            throw new ArgumentException($"{nameof(PixelCrossEntropyLoss)}: expected {output.Shape.N} × {pixels} pixel labels for scores " +
                $"{output.Shape}, got labels {target.Shape}.", nameof(target));
        if (_classWeights is not null && _classWeights.Length != classes)
            throw new ArgumentException($"{nameof(PixelCrossEntropyLoss)}: {_classWeights.Length} class weights for {classes} classes.", nameof(output));
        if (!labels) return;
        var values = target.ToArray();
        for (int i = 0; i < values.Length; i++)
        {
            float label = values[i];
            if (label == IgnoreLabel) continue;
            if (!(label >= 0 && label < classes) || label != MathF.Floor(label))
                throw new ArgumentException($"{nameof(PixelCrossEntropyLoss)}: pixel {i % pixels} of item {i / pixels} is labelled {label}, " +
                    $"expected a class index in [0, {classes - 1}] or the ignore label {IgnoreLabel}.", nameof(target));
        }
    }

    /// <inheritdoc />
    protected override void Evaluate(Tensor output, Tensor target, Tensor outputGradient, Tensor losses, int slot)
    {
        if (_classWeights is not null && (_weights is null || _weights.Backend != output.Backend))
        {
            _weights = output.Backend.Allocate(new TensorShape(_classWeights.Length));
            _weights.CopyFrom(_classWeights);
        }
        output.Backend.PixelSoftmaxCrossEntropy(output, target, _weights, IgnoreLabel, outputGradient, losses, slot);
    }
}

/// <summary>
/// CenterNet's detection objective on [N, classes + 4, h, w] outputs against [N, classes + 8, h, w] targets
/// (<see cref="CenterNet"/>'s layout): the sigmoid focal loss of the class heatmaps (α = 0.25, γ = 2, as in
/// torchvision's <c>sigmoid_focal_loss</c>) plus the weighted L1 loss of the offsets and sizes at object centres, summed
/// and divided by the number of objects in the batch (at least 1), as RetinaNet normalizes by its positives.
/// </summary>
public sealed class CenterNetLoss(int classes, float alpha = 0.25f, float gamma = 2f) : Loss
{
    private readonly Dictionary<string, Tensor> _buffers = [];
    private readonly Dictionary<Backends.IBackend, Tensor> _objects = [];

    /// <summary>Object classes (heatmap channels).</summary>
    public int Classes { get; } = classes > 0 ? classes : throw new ArgumentOutOfRangeException(nameof(classes), classes, "At least one class.");

    /// <summary>The focal loss's weight of positives (negative: no weighting).</summary>
    public float Alpha { get; } = alpha <= 1 && !float.IsNaN(alpha) ? alpha
        : throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "Expected at most 1 (a negative value weighs nothing).");

    /// <summary>The focal loss's focusing exponent (0: plain cross-entropy).</summary>
    public float Gamma { get; } = gamma >= 0 && float.IsFinite(gamma) ? gamma
        : throw new ArgumentOutOfRangeException(nameof(gamma), gamma, "Expected a finite exponent of at least 0.");

    internal override void CheckFits(TensorShape output, ImageDataset data, string name)
    {
        if (output.Rank != 3 || output[0] != CenterNet.OutputChannels(Classes))
            throw new ArgumentException($"A CenterNet detector outputs [classes + 4, h, w]; the network outputs {output}.", nameof(data));
        int expected = CenterNet.TargetChannels(Classes) * output[1] * output[2];
        if (data.ClassCount != 0 || data.TargetLength != expected)
            throw new ArgumentException($"CenterNet targets for {Classes} classes on a {output[1]}×{output[2]} map hold {expected} values per item " +
                $"(CenterNet.Encode); the data has {data.TargetLength}{(data.ClassCount > 0 ? " class labels" : "")}.", nameof(data));
    }

    /// <inheritdoc />
    protected override void Validate(Tensor output, Tensor target, bool labels)
    {
        if (output.Shape.Rank != 4 || output.Shape[1] != CenterNet.OutputChannels(Classes))
            throw new ArgumentException($"{nameof(CenterNetLoss)}: expected outputs [N, {CenterNet.OutputChannels(Classes)}, h, w] for {Classes} classes, " +
                $"got {output.Shape}.", nameof(output));
        int plane = output.Shape[2] * output.Shape[3];
        if (target.Length != output.Shape.N * CenterNet.TargetChannels(Classes) * plane)
            throw new ArgumentException($"{nameof(CenterNetLoss)}: expected {output.Shape.N} × {CenterNet.TargetChannels(Classes)} × {plane} target " +
                $"values for outputs {output.Shape}, got {target.Shape}.", nameof(target));
    }

    /// <inheritdoc />
    protected override void Evaluate(Tensor output, Tensor target, Tensor outputGradient, Tensor losses, int slot)
    {
        var backend = output.Backend;
        int n = output.Shape.N, h = output.Shape[2], w = output.Shape[3];
        var targets = new Tensor(backend, target.Storage, new TensorShape(n, CenterNet.TargetChannels(Classes), h, w));
        Tensor Buffer(string role, int channels)
        {
            var shape = new TensorShape(n, channels, h, w);
            if (!_buffers.TryGetValue(role, out var buffer) || buffer.Shape != shape || buffer.Backend != backend)
                _buffers[role] = buffer = backend.Allocate(shape);
            return buffer;
        }
        Tensor Channels(string role, Tensor source, int offset, int channels)
        {
            var part = Buffer(role, channels);
            backend.CopyChannels(source, offset, part, 0, channels);
            return part;
        }
        var (heat, heatTarget) = (Channels("heat", output, 0, Classes), Channels("heat target", targets, 0, Classes));
        var (box, boxTarget) = (Channels("box", output, Classes, 4), Channels("box target", targets, Classes, 4));
        var boxWeight = Channels("box weight", targets, Classes + 4, 4);
        var (heatGradient, boxGradient) = (Buffer("heat gradient", Classes), Buffer("box gradient", 4));
        // Objects: the centre cells, where the x-offset weight is 1; their count scales both sums (one read per batch).
        if (!_objects.TryGetValue(backend, out var objects)) _objects[backend] = objects = backend.Allocate(new TensorShape(4));
        backend.ChannelSums(boxWeight, objects);
        float scale = 1f / Math.Max(1, objects.ToArray()[0]);
        backend.SigmoidFocalLoss(heat, heatTarget, Alpha, Gamma, scale, heatGradient, losses, slot);
        backend.WeightedAbsoluteError(box, boxTarget, boxWeight, scale, boxGradient, losses, slot);
        backend.CopyChannels(heatGradient, 0, outputGradient, 0, Classes);
        backend.CopyChannels(boxGradient, 0, outputGradient, Classes, 4);
    }
}
