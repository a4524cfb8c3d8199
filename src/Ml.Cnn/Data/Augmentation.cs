using Ml.Cnn.Core;

namespace Ml.Cnn.Data;

/// <summary>
/// Random transformations applied to training images (CHW) only, drawn afresh for every image in every epoch.
/// Applied in this order: flips, crop, rotation, brightness, contrast. Pixels that come from outside the image are 0.
/// </summary>
public sealed class Augmentation
{
    /// <summary>Mirror left–right with probability ½.</summary>
    public bool HorizontalFlip { get; init; }

    /// <summary>Mirror top–bottom with probability ½.</summary>
    public bool VerticalFlip { get; init; }

    /// <summary>
    /// Random crop of the original size after zero-padding every side by this many pixels — the same as a random
    /// translation by up to this many pixels in each direction. 0 turns it off.
    /// </summary>
    public int CropPadding { get; init; }

    /// <summary>Rotation by a uniform angle in ±this many degrees about the centre (bilinear). 0 turns it off.</summary>
    public float MaxRotationDegrees { get; init; }

    /// <summary>Adds a uniform offset in ±this value (in the features' own units, e.g. 0.1 for pixels in [0, 1]).</summary>
    public float Brightness { get; init; }

    /// <summary>Scales each image's deviation from its mean by a uniform factor in [1 − c, 1 + c].</summary>
    public float Contrast { get; init; }

    /// <summary>Whether crops or rotation are on: they move objects off the cells a detector's targets hold them in.</summary>
    public bool CropsOrRotates => CropPadding > 0 || MaxRotationDegrees > 0;

    /// <summary>Whether any transformation is enabled.</summary>
    public bool Enabled => HorizontalFlip || VerticalFlip || CropPadding > 0 || MaxRotationDegrees > 0 || Brightness > 0 || Contrast > 0;

    internal void Validate(Tensors.TensorShape itemShape)
    {
        int side = itemShape.Rank == 3 ? Math.Min(itemShape[1], itemShape[2]) : 0;
        Training.TrainerOptions.Require(CropPadding >= 0 && (CropPadding == 0 || CropPadding < side), "Augmentation.CropPadding", CropPadding,
            $"must be in [0, {Math.Max(0, side - 1)}] for images of {itemShape}");
        Training.TrainerOptions.Require(MaxRotationDegrees is >= 0 and <= 180, "Augmentation.MaxRotationDegrees", MaxRotationDegrees,
            "must be in [0, 180]");
        Training.TrainerOptions.Require(Brightness >= 0 && float.IsFinite(Brightness), "Augmentation.Brightness", Brightness,
            "must be a non-negative number");
        Training.TrainerOptions.Require(Contrast is >= 0 and <= 1, "Augmentation.Contrast", Contrast, "must be in [0, 1]");
    }

    /// <summary>
    /// Brightness is an offset in the features' own units: one larger than the data's whole range (max − min) washes
    /// every image out, so it is refused as a mistake of units (0.1 is meant for pixels in [0, 1], 25 for 0–255).
    /// </summary>
    internal void ValidateRange(ImageDataset data)
    {
        if (Brightness == 0) return;
        float min = float.PositiveInfinity, max = float.NegativeInfinity;
        var item = new float[data.ItemShape.Length];
        for (int i = 0; i < data.Count; i++)
        {
            data.CopyItem(i, item);
            foreach (var v in item) (min, max) = (Math.Min(min, v), Math.Max(max, v));
        }
        Training.TrainerOptions.Require(Brightness <= max - min, "Augmentation.Brightness", Brightness,
            $"must not exceed the data's range ({min} to {max})");
    }

    /// <summary>
    /// Transforms <paramref name="image"/> ([channels, height, width]) in place; <paramref name="scratch"/> has its size.
    /// With <paramref name="pixelLabels"/> ([height, width], a segmentation mask) flips and crops move the labels with
    /// the pixels, and pixels shifted in from outside are labelled <see cref="ImageDataset.IgnoredLabel"/>; rotation,
    /// which would blend labels, is not applied to masked images (options validation refuses it). With
    /// <paramref name="detectionClasses"/> &gt; 0, <paramref name="pixelLabels"/> is instead a CenterNet target of that
    /// many classes at <paramref name="detectionStride"/> pixels per cell, which flips move as well (options validation
    /// refuses crops and rotation for it).
    /// </summary>
    public void Apply(Span<float> image, Span<float> scratch, int channels, int height, int width, Rng rng, Span<float> pixelLabels = default,
        int detectionClasses = 0, int detectionStride = 1)
    {
        bool labels = !pixelLabels.IsEmpty && detectionClasses == 0, boxes = !pixelLabels.IsEmpty && detectionClasses > 0;
        int rows = height / detectionStride, columns = width / detectionStride;
        if (HorizontalFlip && rng.NextDouble() < 0.5)
        {
            FlipHorizontal(image, channels, height, width);
            if (labels) FlipHorizontal(pixelLabels, 1, height, width);
            if (boxes) CenterNet.Flip(pixelLabels, detectionClasses, rows, columns, horizontal: true);
        }
        if (VerticalFlip && rng.NextDouble() < 0.5)
        {
            FlipVertical(image, channels, height, width);
            if (labels) FlipVertical(pixelLabels, 1, height, width);
            if (boxes) CenterNet.Flip(pixelLabels, detectionClasses, rows, columns, horizontal: false);
        }
        if (CropPadding > 0)
        {
            int dx = rng.NextInt(2 * CropPadding + 1) - CropPadding, dy = rng.NextInt(2 * CropPadding + 1) - CropPadding;
            Shift(image, scratch, channels, height, width, dx, dy);
            scratch.CopyTo(image);
            if (labels)
            {
                Shift(pixelLabels, scratch, 1, height, width, dx, dy, ImageDataset.IgnoredLabel);
                scratch[..pixelLabels.Length].CopyTo(pixelLabels);
            }
        }
        if (MaxRotationDegrees > 0 && !labels)
        {
            Rotate(image, scratch, channels, height, width, (float)((rng.NextDouble() * 2 - 1) * MaxRotationDegrees));
            scratch.CopyTo(image);
        }
        if (Brightness > 0) AdjustBrightness(image, (float)((rng.NextDouble() * 2 - 1) * Brightness));
        if (Contrast > 0) AdjustContrast(image, channels, (float)(1 + (rng.NextDouble() * 2 - 1) * Contrast));
    }

    /// <summary>Mirrors every row.</summary>
    public static void FlipHorizontal(Span<float> image, int channels, int height, int width)
    {
        for (int row = 0; row < channels * height; row++) image.Slice(row * width, width).Reverse();
    }

    /// <summary>Mirrors every column.</summary>
    public static void FlipVertical(Span<float> image, int channels, int height, int width)
    {
        for (int c = 0; c < channels; c++)
            for (int y = 0; y < height / 2; y++)
            {
                var top = image.Slice((c * height + y) * width, width);
                var bottom = image.Slice((c * height + height - 1 - y) * width, width);
                for (int x = 0; x < width; x++) (top[x], bottom[x]) = (bottom[x], top[x]);
            }
    }

    /// <summary>
    /// output[y, x] = image[y − dy, x − dx], <paramref name="fill"/> (0) where that falls outside: content moves right by
    /// dx and down by dy.
    /// </summary>
    public static void Shift(ReadOnlySpan<float> image, Span<float> output, int channels, int height, int width, int dx, int dy, float fill = 0)
    {
        for (int c = 0; c < channels; c++)
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                {
                    int sy = y - dy, sx = x - dx;
                    output[(c * height + y) * width + x] = sy >= 0 && sy < height && sx >= 0 && sx < width
                        ? image[(c * height + sy) * width + sx] : fill;
                }
    }

    /// <summary>Rotates counter-clockwise by <paramref name="degrees"/> about the image centre, bilinearly.</summary>
    public static void Rotate(ReadOnlySpan<float> image, Span<float> output, int channels, int height, int width, float degrees)
    {
        double radians = degrees * Math.PI / 180, cos = Math.Cos(radians), sin = Math.Sin(radians);
        double cy = (height - 1) / 2.0, cx = (width - 1) / 2.0;
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                // Inverse mapping: where in the source does this output pixel come from? (y grows downwards.)
                double sx = cos * (x - cx) - sin * (y - cy) + cx;
                double sy = sin * (x - cx) + cos * (y - cy) + cy;
                int x0 = (int)Math.Floor(sx), y0 = (int)Math.Floor(sy);
                double fx = sx - x0, fy = sy - y0;
                for (int c = 0; c < channels; c++)
                {
                    var channel = image.Slice(c * height * width, height * width);
                    double value = (1 - fy) * ((1 - fx) * Pixel(channel, y0, x0, height, width) + fx * Pixel(channel, y0, x0 + 1, height, width))
                                 + fy * ((1 - fx) * Pixel(channel, y0 + 1, x0, height, width) + fx * Pixel(channel, y0 + 1, x0 + 1, height, width));
                    output[(c * height + y) * width + x] = (float)value;
                }
            }
    }

    private static double Pixel(ReadOnlySpan<float> channel, int y, int x, int height, int width) =>
        y >= 0 && y < height && x >= 0 && x < width ? channel[y * width + x] : 0;

    /// <summary>Adds <paramref name="delta"/> to every value.</summary>
    public static void AdjustBrightness(Span<float> image, float delta)
    {
        for (int i = 0; i < image.Length; i++) image[i] += delta;
    }

    /// <summary>Scales each channel's deviation from its mean by <paramref name="factor"/>.</summary>
    public static void AdjustContrast(Span<float> image, int channels, float factor)
    {
        int plane = image.Length / channels;
        for (int c = 0; c < channels; c++)
        {
            var channel = image.Slice(c * plane, plane);
            double mean = 0;
            foreach (var v in channel) mean += v;
            float m = (float)(mean / plane);
            for (int i = 0; i < channel.Length; i++) channel[i] = m + (channel[i] - m) * factor;
        }
    }
}
