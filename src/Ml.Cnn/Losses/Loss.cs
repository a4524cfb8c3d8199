using Ml.Cnn.Tensors;

namespace Ml.Cnn.Losses;

/// <summary>
/// A training objective: <see cref="Compute"/> returns the mean loss over the batch and writes its gradient with
/// respect to the network output.
/// </summary>
public abstract class Loss
{
    /// <summary>Validates shapes and labels, then computes the loss and gradient.</summary>
    public float Compute(Tensor output, Tensor target, Tensor outputGradient)
    {
        if (outputGradient.Shape != output.Shape)
            throw new ArgumentException($"{GetType().Name}: gradient shape {outputGradient.Shape} must equal output shape {output.Shape}.", nameof(outputGradient));
        Validate(output, target);
        return Evaluate(output, target, outputGradient);
    }

    /// <summary>Throws an ArgumentException when the target does not fit the output.</summary>
    protected abstract void Validate(Tensor output, Tensor target);

    /// <summary>The backend computation.</summary>
    protected abstract float Evaluate(Tensor output, Tensor target, Tensor outputGradient);
}

/// <summary>Losses whose target is one class index per item (stored as floats, shape [N]).</summary>
public abstract class ClassificationLoss : Loss
{
    /// <inheritdoc />
    protected override void Validate(Tensor output, Tensor target)
    {
        if (output.Shape.Rank != 2)
            throw new ArgumentException($"{GetType().Name}: expected scores of shape [N, classes], got {output.Shape}.", nameof(output));
        if (target.Length != output.Shape.N)
            throw new ArgumentException($"{GetType().Name}: expected {output.Shape.N} labels for scores {output.Shape}, got labels {target.Shape}.", nameof(target));
        int classes = output.Shape[1];
        var labels = target.ToArray();
        for (int i = 0; i < labels.Length; i++)
            if (!(labels[i] >= 0 && labels[i] < classes) || labels[i] != MathF.Floor(labels[i]))
                throw new ArgumentException($"{GetType().Name}: label {i} is {labels[i]}, expected a class index in [0, {classes - 1}].", nameof(target));
    }
}

/// <summary>Losses whose target has the output's shape.</summary>
public abstract class RegressionLoss : Loss
{
    /// <inheritdoc />
    protected override void Validate(Tensor output, Tensor target)
    {
        if (target.Length != output.Length)
            throw new ArgumentException($"{GetType().Name}: target {target.Shape} must have as many values as output {output.Shape}.", nameof(target));
    }
}

/// <summary>Softmax followed by cross-entropy, computed with a stable log-sum-exp.</summary>
public sealed class SoftmaxCrossEntropyLoss : ClassificationLoss
{
    /// <inheritdoc />
    protected override float Evaluate(Tensor output, Tensor target, Tensor outputGradient) =>
        output.Backend.SoftmaxCrossEntropy(output, target, outputGradient);
}

/// <summary>The multiclass SVM loss Σ_{j≠y} max(0, s_j − s_y + 1), averaged over the batch.</summary>
public sealed class MulticlassHingeLoss : ClassificationLoss
{
    /// <inheritdoc />
    protected override float Evaluate(Tensor output, Tensor target, Tensor outputGradient) =>
        output.Backend.MulticlassHinge(output, target, outputGradient);
}

/// <summary>Mean squared error over all elements.</summary>
public sealed class MeanSquaredErrorLoss : RegressionLoss
{
    /// <inheritdoc />
    protected override float Evaluate(Tensor output, Tensor target, Tensor outputGradient) =>
        output.Backend.MeanSquaredError(output, target, outputGradient);
}

/// <summary>Mean absolute error (L1) over all elements.</summary>
public sealed class L1Loss : RegressionLoss
{
    /// <inheritdoc />
    protected override float Evaluate(Tensor output, Tensor target, Tensor outputGradient) =>
        output.Backend.MeanAbsoluteError(output, target, outputGradient);
}

/// <summary>Binary cross-entropy on logits (sigmoid folded in for stability), averaged over all elements.</summary>
public sealed class BinaryCrossEntropyWithLogitsLoss : RegressionLoss
{
    /// <inheritdoc />
    protected override float Evaluate(Tensor output, Tensor target, Tensor outputGradient) =>
        output.Backend.BinaryCrossEntropyWithLogits(output, target, outputGradient);
}
