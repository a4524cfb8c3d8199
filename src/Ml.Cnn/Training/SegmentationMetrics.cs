using Ml.Cnn.Data;

namespace Ml.Cnn.Training;

/// <summary>
/// Pixel-level quality of predicted masks: pixel accuracy, each class's intersection over union (IoU = TP / (TP +
/// FP + FN)) and their mean, from the confusion matrix over every labelled pixel. Pixels labelled
/// <see cref="ImageDataset.IgnoredLabel"/> in the truth count nowhere. A class absent from both truth and prediction
/// has no IoU (NaN) and is left out of the mean, as in torchmetrics' and MMSegmentation's mean IoU.
/// </summary>
public sealed class SegmentationMetrics
{
    private SegmentationMetrics(long[,] confusion)
    {
        ConfusionMatrix = confusion;
        int classes = confusion.GetLength(0);
        long correct = 0, total = 0;
        var iou = new double[classes];
        for (int c = 0; c < classes; c++)
        {
            long truth = 0, predicted = 0;
            for (int k = 0; k < classes; k++) (truth, predicted) = (truth + confusion[c, k], predicted + confusion[k, c]);
            long union = truth + predicted - confusion[c, c];
            iou[c] = union == 0 ? double.NaN : (double)confusion[c, c] / union;
            correct += confusion[c, c];
            total += truth;
        }
        PerClassIoU = iou;
        PixelAccuracy = total == 0 ? double.NaN : (double)correct / total;
        var present = iou.Where(v => !double.IsNaN(v)).ToArray();
        MeanIoU = present.Length == 0 ? double.NaN : present.Average();
        LabelledPixels = total;
    }

    /// <summary>[truth, predicted] pixel counts.</summary>
    public long[,] ConfusionMatrix { get; }

    /// <summary>The share of labelled pixels whose predicted class is right.</summary>
    public double PixelAccuracy { get; }

    /// <summary>IoU per class (NaN for a class neither labelled nor predicted anywhere).</summary>
    public IReadOnlyList<double> PerClassIoU { get; }

    /// <summary>The mean of <see cref="PerClassIoU"/> over the classes that have one.</summary>
    public double MeanIoU { get; }

    /// <summary>Pixels that counted (labelled, not ignored).</summary>
    public long LabelledPixels { get; }

    /// <summary>
    /// Metrics of predicted masks against true masks, pixel for pixel (equal lengths; any number of images laid end
    /// to end). Labels must be class indices in [0, <paramref name="classes"/>) or, in the truth, the ignored label.
    /// </summary>
    public static SegmentationMetrics Compute(ReadOnlySpan<int> truth, ReadOnlySpan<int> predicted, int classes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(classes, 1);
        if (truth.Length != predicted.Length)
            throw new ArgumentException($"{truth.Length} true labels but {predicted.Length} predicted ones.", nameof(predicted));
        var confusion = new long[classes, classes];
        for (int i = 0; i < truth.Length; i++)
        {
            int t = truth[i], p = predicted[i];
            if (t == ImageDataset.IgnoredLabel) continue;
            if ((uint)t >= classes)
                throw new ArgumentException($"True label {i} is {t}, expected a class in [0, {classes - 1}] or {ImageDataset.IgnoredLabel}.", nameof(truth));
            if ((uint)p >= classes)
                throw new ArgumentException($"Predicted label {i} is {p}, expected a class in [0, {classes - 1}].", nameof(predicted));
            confusion[t, p]++;
        }
        return new SegmentationMetrics(confusion);
    }

    /// <summary>The class of highest score at each pixel of [N, classes, H, W] scores laid out item after item.</summary>
    public static int[] PredictMasks(ReadOnlySpan<float> scores, int classes, int pixels)
    {
        if (scores.Length % (classes * pixels) != 0)
            throw new ArgumentException($"{scores.Length} scores are not whole items of {classes} × {pixels}.", nameof(scores));
        int items = scores.Length / (classes * pixels);
        var masks = new int[items * pixels];
        for (int n = 0; n < items; n++)
            for (int p = 0; p < pixels; p++)
            {
                int best = 0, at = n * classes * pixels + p;
                for (int c = 1; c < classes; c++)
                    if (scores[at + c * pixels] > scores[at + best * pixels]) best = c;
                masks[n * pixels + p] = best;
            }
        return masks;
    }
}
