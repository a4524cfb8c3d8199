using Ml.Cnn.Data;

namespace Ml.Cnn.Training;

/// <summary>
/// Mean average precision of detections, as COCO defines it (pycocotools' COCOeval, bounding boxes, all areas): per
/// image and class the detections are taken in order of score (at most <see cref="MaxDetections"/>), each matched to
/// the unmatched true box of its class it overlaps most, if that IoU reaches the threshold; over all images, precision
/// is made non-increasing in recall and read at the 101 recalls 0, 0.01, …, 1 (0 past the highest recall reached);
/// AP is their mean, and mAP the mean over classes that have true boxes. <see cref="MAP50"/> takes IoU 0.5,
/// <see cref="MAP50_95"/> averages the ten thresholds 0.5, 0.55, …, 0.95 (names as in ML.NET's ObjectDetectionMetrics).
/// </summary>
public sealed class ObjectDetectionMetrics
{
    /// <summary>Detections per image and class that count (COCO's maxDets).</summary>
    public const int MaxDetections = 100;

    private static readonly float[] Thresholds = Enumerable.Range(0, 10).Select(i => 0.5f + 0.05f * i).ToArray();

    private ObjectDetectionMetrics(double[,] ap, int[] truthCounts)
    {
        int classes = truthCounts.Length;
        var present = Enumerable.Range(0, classes).Where(c => truthCounts[c] > 0).ToArray();
        PerClassAP50 = Enumerable.Range(0, classes).Select(c => truthCounts[c] > 0 ? ap[c, 0] : double.NaN).ToArray();
        MAP50 = present.Length == 0 ? double.NaN : present.Average(c => ap[c, 0]);
        MAP50_95 = present.Length == 0 ? double.NaN : present.Average(c => Enumerable.Range(0, Thresholds.Length).Average(t => ap[c, t]));
        TrueBoxes = truthCounts.Sum();
    }

    /// <summary>Mean average precision at IoU 0.5.</summary>
    public double MAP50 { get; }

    /// <summary>Mean average precision over IoU 0.5 to 0.95 in steps of 0.05 (COCO's headline figure).</summary>
    public double MAP50_95 { get; }

    /// <summary>Average precision at IoU 0.5 per class (NaN for a class without true boxes).</summary>
    public IReadOnlyList<double> PerClassAP50 { get; }

    /// <summary>True boxes in all images.</summary>
    public int TrueBoxes { get; }

    /// <summary>The metrics of <paramref name="detections"/> against <paramref name="truth"/>, image by image.</summary>
    public static ObjectDetectionMetrics Compute(IReadOnlyList<IReadOnlyList<ObjectBox>> truth, IReadOnlyList<IReadOnlyList<Detection>> detections,
        int classes)
    {
        ArgumentNullException.ThrowIfNull(truth);
        ArgumentNullException.ThrowIfNull(detections);
        if (truth.Count != detections.Count)
            throw new ArgumentException($"{truth.Count} images of true boxes but {detections.Count} of detections.", nameof(detections));
        var truthCounts = new int[classes];
        foreach (var image in truth)
            foreach (var box in image)
                truthCounts[(uint)box.Label < classes ? box.Label
                    : throw new ArgumentException($"A true box is labelled {box.Label}; expected a class in [0, {classes - 1}].", nameof(truth))]++;
        var ap = new double[classes, Thresholds.Length];
        for (int c = 0; c < classes; c++)
            for (int t = 0; t < Thresholds.Length; t++)
                ap[c, t] = truthCounts[c] == 0 ? double.NaN : AveragePrecision(truth, detections, c, Thresholds[t], truthCounts[c]);
        return new ObjectDetectionMetrics(ap, truthCounts);
    }

    private static double AveragePrecision(IReadOnlyList<IReadOnlyList<ObjectBox>> truth, IReadOnlyList<IReadOnlyList<Detection>> detections,
        int label, float threshold, int truthCount)
    {
        var scored = new List<(float Score, bool TruePositive)>();
        for (int image = 0; image < truth.Count; image++)
        {
            var boxes = truth[image].Where(b => b.Label == label).ToArray();
            var matched = new bool[boxes.Length];
            // A stable sort: ties keep their given order, as COCO's mergesort does.
            foreach (var d in detections[image].Where(d => d.Box.Label == label).OrderByDescending(d => d.Score).Take(MaxDetections))
            {
                int best = -1;
                float bestIoU = Math.Min(threshold, 1 - 1e-10f);
                for (int g = 0; g < boxes.Length; g++)
                {
                    if (matched[g]) continue;
                    float iou = boxes[g].IoU(d.Box);
                    if (iou >= bestIoU) (best, bestIoU) = (g, iou);
                }
                if (best >= 0) matched[best] = true;
                scored.Add((d.Score, best >= 0));
            }
        }
        var ordered = scored.Select((s, i) => (s, i)).OrderByDescending(p => p.s.Score).ThenBy(p => p.i).Select(p => p.s).ToArray();
        var precision = new double[ordered.Length];
        var recall = new double[ordered.Length];
        int tp = 0, fp = 0;
        for (int i = 0; i < ordered.Length; i++)
        {
            if (ordered[i].TruePositive) tp++; else fp++;
            recall[i] = (double)tp / truthCount;
            precision[i] = (double)tp / (tp + fp);
        }
        for (int i = ordered.Length - 2; i >= 0; i--) precision[i] = Math.Max(precision[i], precision[i + 1]);
        double sum = 0;
        for (int r = 0; r <= 100; r++)
        {
            double target = r * 0.01; // np.linspace(0, 1, 101), as pycocotools reads recalls
            int at = Array.FindIndex(recall, v => v >= target);
            sum += at < 0 ? 0 : precision[at];
        }
        return sum / 101;
    }
}
