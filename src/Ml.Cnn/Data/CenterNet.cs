namespace Ml.Cnn.Data;

/// <summary>A detector's answer: a box, its class and its confidence in [0, 1].</summary>
public readonly record struct Detection(ObjectBox Box, float Score);

/// <summary>
/// The anchor-free "objects as points" encoding of CenterNet (Zhou, Wang and Krähenbühl, 2019) at an output stride:
/// a detector's output map holds, per cell, one heatmap logit per class (an object's centre falls in that cell) and
/// four box values — the centre's offset within the cell (x, y) and the box's width and height in cells. Training
/// targets add four weights, nonzero only at object centres: 1 for the offsets and <see cref="SizeWeight"/> for the
/// sizes. Layout per item: [classes + 4, h, w] for outputs, [classes + 8, h, w] for targets.
/// </summary>
public static class CenterNet
{
    /// <summary>The weight of the size regression beside the offset's (CenterNet's 0.1).</summary>
    public const float SizeWeight = 0.1f;

    /// <summary>Output channels per cell: one heatmap per class and the four box values.</summary>
    public static int OutputChannels(int classes) => classes + 4;

    /// <summary>Target channels per cell: the output's and the four regression weights.</summary>
    public static int TargetChannels(int classes) => classes + 8;

    /// <summary>
    /// The training target of one image's objects on an h × w output map of <paramref name="stride"/> pixels per
    /// cell. Two objects whose centres fall in one cell keep the first one's box (the heatmap marks both classes).
    /// </summary>
    public static float[] Encode(IReadOnlyList<ObjectBox> objects, int classes, int height, int width, int stride)
    {
        int plane = height * width;
        var target = new float[TargetChannels(classes) * plane];
        foreach (var o in objects)
        {
            if ((uint)o.Label >= classes)
                throw new ArgumentException($"An object is labelled {o.Label}; expected a class in [0, {classes - 1}].", nameof(objects));
            if (o.IsEmpty)
                throw new ArgumentException($"Box ({o.X0}, {o.Y0}, {o.X1}, {o.Y1}) is empty: x1 must exceed x0 and y1 y0.", nameof(objects));
            float cx = (o.X0 + o.X1) / 2 / stride, cy = (o.Y0 + o.Y1) / 2 / stride;
            int x = Math.Clamp((int)cx, 0, width - 1), y = Math.Clamp((int)cy, 0, height - 1), cell = y * width + x;
            target[o.Label * plane + cell] = 1;
            if (target[(classes + 4) * plane + cell] != 0) continue;
            float[] values = [cx - x, cy - y, (o.X1 - o.X0) / stride, (o.Y1 - o.Y0) / stride];
            float[] weights = [1, 1, SizeWeight, SizeWeight];
            for (int k = 0; k < 4; k++)
            {
                target[(classes + k) * plane + cell] = values[k];
                target[(classes + 4 + k) * plane + cell] = weights[k];
            }
        }
        return target;
    }

    /// <summary>
    /// Mirrors one image's [classes + 8, h, w] target as <see cref="Encode"/> would write it for the mirrored image
    /// (whose sides are the map's times the stride): the maps flip, and a centre's offset o within its cell becomes
    /// 1 − o along the flipped axis, since w − (x + o) = (w − 1 − x) + (1 − o). (A centre on a cell border, o = 0,
    /// stays in the mirrored cell with offset 1, where Encode would put it in the next cell with offset 0: the same box.)
    /// </summary>
    public static void Flip(Span<float> target, int classes, int height, int width, bool horizontal)
    {
        int channels = TargetChannels(classes), plane = height * width;
        if (target.Length != channels * plane)
            throw new ArgumentException($"{target.Length} target values are not [{channels}, {height}, {width}].", nameof(target));
        if (horizontal) Augmentation.FlipHorizontal(target, channels, height, width);
        else Augmentation.FlipVertical(target, channels, height, width);
        int axis = horizontal ? 0 : 1;
        var offset = target.Slice((classes + axis) * plane, plane);
        var weight = target.Slice((classes + 4 + axis) * plane, plane);
        for (int cell = 0; cell < plane; cell++)
            if (weight[cell] > 0) offset[cell] = 1 - offset[cell];
    }

    /// <summary>
    /// The detections in one image's [classes + 4, h, w] output: cells whose class probability σ(logit) is at least
    /// <paramref name="minScore"/> and no lower than any of its eight neighbours' (CenterNet's 3×3 peak test), then
    /// non-maximum suppression per class at <paramref name="nmsIoU"/> (1 keeps everything), then the
    /// <paramref name="maxDetections"/> best (COCO's limit counts detections after suppression). Boxes are clipped
    /// to the image. An output that is not finite (a diverged network) is refused rather than turned into detections.
    /// </summary>
    public static List<Detection> Decode(ReadOnlySpan<float> output, int classes, int height, int width, int stride,
        float minScore = 0.05f, int maxDetections = 100, float nmsIoU = 0.5f)
    {
        int plane = height * width;
        if (output.Length != OutputChannels(classes) * plane)
            throw new ArgumentException($"{output.Length} output values are not [{OutputChannels(classes)}, {height}, {width}].", nameof(output));
        int bad = output.IndexOfAnyExceptInRange(float.MinValue, float.MaxValue);
        if (bad >= 0)
            throw new ArgumentException($"The detector's output is {output[bad]} at channel {bad / plane}, cell ({bad % plane / width}, " +
                $"{bad % width}) (y, x); a network's outputs must be finite.", nameof(output));
        var peaks = new List<(int Class, int Cell, float Score)>();
        for (int c = 0; c < classes; c++)
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                {
                    float logit = output[c * plane + y * width + x];
                    float score = 1 / (1 + MathF.Exp(-logit));
                    if (score < minScore || !IsPeak(output.Slice(c * plane, plane), height, width, x, y)) continue;
                    peaks.Add((c, y * width + x, score));
                }
        var candidates = new List<Detection>();
        foreach (var p in peaks)
        {
            int x = p.Cell % width, y = p.Cell / width;
            float cx = (x + output[classes * plane + p.Cell]) * stride, cy = (y + output[(classes + 1) * plane + p.Cell]) * stride;
            float w = Math.Max(0, output[(classes + 2) * plane + p.Cell]) * stride, h = Math.Max(0, output[(classes + 3) * plane + p.Cell]) * stride;
            var box = new ObjectBox(p.Class, Math.Clamp(cx - w / 2, 0, width * stride), Math.Clamp(cy - h / 2, 0, height * stride),
                Math.Clamp(cx + w / 2, 0, width * stride), Math.Clamp(cy + h / 2, 0, height * stride));
            candidates.Add(new Detection(box, p.Score));
        }
        return NonMaximumSuppression(candidates, nmsIoU).Take(maxDetections).ToList();
    }

    /// <summary>
    /// Greedy non-maximum suppression within each class: in order of score, a detection is kept unless it overlaps a
    /// kept one of its class by more than <paramref name="iou"/>. The result is ordered by score.
    /// </summary>
    public static List<Detection> NonMaximumSuppression(IEnumerable<Detection> detections, float iou)
    {
        var kept = new List<Detection>();
        foreach (var d in detections.OrderByDescending(d => d.Score))
            if (!kept.Any(k => k.Box.Label == d.Box.Label && k.Box.IoU(d.Box) > iou)) kept.Add(d);
        return kept;
    }

    private static bool IsPeak(ReadOnlySpan<float> heat, int height, int width, int x, int y)
    {
        float value = heat[y * width + x];
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++)
            {
                int ny = y + dy, nx = x + dx;
                if ((dx != 0 || dy != 0) && ny >= 0 && ny < height && nx >= 0 && nx < width && heat[ny * width + nx] > value) return false;
            }
        return true;
    }
}
