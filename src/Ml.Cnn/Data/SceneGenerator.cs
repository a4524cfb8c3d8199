using Ml.Cnn.Core;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Data;

/// <summary>
/// An object's class and box in pixels (x0, y0 the top-left corner; x1, y1 exclusive, so x1 − x0 is the width): the
/// generator's ground truth and a detector's answer.
/// </summary>
public readonly record struct ObjectBox(int Label, float X0, float Y0, float X1, float Y1)
{
    /// <summary>Whether the box has no area (x1 ≤ x0 or y1 ≤ y0, or a NaN side).</summary>
    public bool IsEmpty => !(X1 > X0 && Y1 > Y0);

    /// <summary>The box's area in pixels.</summary>
    public float Area => Math.Max(0, X1 - X0) * Math.Max(0, Y1 - Y0);

    /// <summary>The intersection over union of the two boxes (their labels play no part).</summary>
    public float IoU(in ObjectBox other)
    {
        float iw = Math.Min(X1, other.X1) - Math.Max(X0, other.X0), ih = Math.Min(Y1, other.Y1) - Math.Max(Y0, other.Y0);
        if (iw <= 0 || ih <= 0) return 0;
        float intersection = iw * ih;
        return intersection / (Area + other.Area - intersection);
    }
}

/// <summary>
/// One generated image with its dense and sparse annotations: <see cref="Mask"/> holds 0 for background and the
/// class + 1 of the object painted last at each pixel; <see cref="Objects"/> the objects in paint order.
/// </summary>
public sealed record Scene(float[] Image, int[] Mask, IReadOnlyList<ObjectBox> Objects);

/// <summary>How <see cref="SceneGenerator"/> composes its scenes.</summary>
public sealed class SceneGeneratorOptions
{
    /// <summary>Canvas width in pixels.</summary>
    public int Width { get; set; } = 64;

    /// <summary>Canvas height in pixels.</summary>
    public int Height { get; set; } = 64;

    /// <summary>The fewest objects in a scene.</summary>
    public int MinObjects { get; set; } = 1;

    /// <summary>The most objects in a scene (fewer when they do not fit without covering one another).</summary>
    public int MaxObjects { get; set; } = 4;

    /// <summary>The smallest factor by which a source item is resized.</summary>
    public float MinScale { get; set; } = 0.75f;

    /// <summary>The largest factor by which a source item is resized.</summary>
    public float MaxScale { get; set; } = 1.5f;

    /// <summary>An item's pixels whose mean over channels exceed this belong to the object; the rest are see-through.</summary>
    public float Threshold { get; set; } = 0.1f;

    /// <summary>The most an object's box may overlap an earlier one (intersection over union), so none hides another.</summary>
    public float MaxOverlap { get; set; } = 0.3f;

    /// <summary>The seed: the same seed, source and options give the same scenes.</summary>
    public ulong Seed { get; set; }

    internal void Validate(ImageDataset source)
    {
        if (source.ItemShape.Rank != 3 || source.ClassCount <= 0 || source.IsPerPixel)
            throw new ArgumentException($"The source must hold classified [C, H, W] images, got items {source.ItemShape} with " +
                $"{source.ClassCount} classes and {source.TargetLength} targets each.", nameof(source));
        if (source.Count == 0) throw new ArgumentException("The source holds no items.", nameof(source));
        int largest = (int)MathF.Round(Math.Max(source.ItemShape[1], source.ItemShape[2]) * MaxScale);
        Require(Width > 0 && Height > 0, nameof(Width), $"{Width}x{Height}", "must be positive");
        Require(MinObjects >= 1 && MaxObjects >= MinObjects, nameof(MaxObjects), $"{MinObjects}..{MaxObjects}",
            "must satisfy 1 ≤ MinObjects ≤ MaxObjects");
        Require(MinScale > 0 && MaxScale >= MinScale, nameof(MaxScale), $"{MinScale}..{MaxScale}", "must satisfy 0 < MinScale ≤ MaxScale");
        Require(largest <= Math.Min(Width, Height), nameof(MaxScale), $"{MaxScale}",
            $"makes items of {largest} pixels, larger than the {Width}x{Height} canvas");
        Require(Threshold is >= 0 and < 1, nameof(Threshold), $"{Threshold}", "must lie in [0, 1)");
        Require(MaxOverlap is >= 0 and <= 1, nameof(MaxOverlap), $"{MaxOverlap}", "must lie in [0, 1]");
    }

    private static void Require(bool condition, string option, string actual, string rule)
    {
        if (!condition) throw new ArgumentOutOfRangeException(option, actual, $"{option} is {actual}; it {rule}.");
    }
}

/// <summary>
/// Segmentation and detection data made from a classification set: each scene places one to four of its items,
/// resized by a random factor, at random positions on a blank canvas (non-square if asked), and records the
/// per-pixel class mask and each object's tight box. Deterministic for a seed; users smoke-test their own
/// pipelines with it, and the samples and tests train on it.
/// </summary>
public static class SceneGenerator
{
    private const int PlacementAttempts = 20;

    /// <summary>Generates <paramref name="count"/> scenes from the items of <paramref name="source"/>.</summary>
    public static IReadOnlyList<Scene> Generate(ImageDataset source, int count, SceneGeneratorOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        options ??= new SceneGeneratorOptions();
        options.Validate(source);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var rng = new Rng(options.Seed ^ 0x5CE7E_0000_0001UL);
        var scenes = new Scene[count];
        for (int i = 0; i < count; i++) scenes[i] = Compose(source, options, rng);
        return scenes;
    }

    /// <summary>
    /// A segmentation set: items [C, H, W], one label per pixel (0 background, class + 1 for objects), so
    /// <see cref="ImageDataset.ClassCount"/> is the source's classes + 1.
    /// </summary>
    public static ImageDataset ToSegmentationSet(IReadOnlyList<Scene> scenes, int channels, int height, int width, int sourceClasses)
    {
        ArgumentNullException.ThrowIfNull(scenes);
        int plane = height * width;
        var features = new float[scenes.Count * channels * plane];
        var targets = new float[scenes.Count * plane];
        for (int i = 0; i < scenes.Count; i++)
        {
            if (scenes[i].Image.Length != channels * plane || scenes[i].Mask.Length != plane)
                throw new ArgumentException($"Scene {i} is not {channels}x{height}x{width}.", nameof(scenes));
            scenes[i].Image.CopyTo(features, i * channels * plane);
            for (int p = 0; p < plane; p++) targets[i * plane + p] = scenes[i].Mask[p];
        }
        return new ImageDataset(new TensorShape(channels, height, width), features, targets, plane, sourceClasses + 1);
    }

    private static Scene Compose(ImageDataset source, SceneGeneratorOptions o, Rng rng)
    {
        int channels = source.ItemShape[0], plane = o.Width * o.Height;
        var image = new float[channels * plane];
        var mask = new int[plane];
        var objects = new List<ObjectBox>();
        int wanted = o.MinObjects + rng.NextInt(o.MaxObjects - o.MinObjects + 1);
        var item = new float[source.ItemShape.Length];
        for (int k = 0; k < wanted; k++)
            for (int attempt = 0; attempt < PlacementAttempts; attempt++)
            {
                int index = rng.NextInt(source.Count);
                float scale = o.MinScale + (float)rng.NextDouble() * (o.MaxScale - o.MinScale);
                int h = Math.Max(1, (int)MathF.Round(source.ItemShape[1] * scale));
                int w = Math.Max(1, (int)MathF.Round(source.ItemShape[2] * scale));
                int top = rng.NextInt(o.Height - h + 1), left = rng.NextInt(o.Width - w + 1);
                source.CopyItem(index, item);
                var resized = Interpolation.ResizeBilinear(item, channels, source.ItemShape[1], source.ItemShape[2], h, w);
                var box = TightBox(resized, channels, h, w, o.Threshold);
                if (box is not var (x0, y0, x1, y1)) continue; // a blank item has no object to place
                var placed = new ObjectBox((int)source.Targets[index], left + x0, top + y0, left + x1, top + y1);
                if (objects.Any(other => other.IoU(placed) > o.MaxOverlap)) continue;
                Paint(resized, channels, h, w, top, left, placed.Label + 1, o, image, mask);
                objects.Add(placed);
                break;
            }
        return new Scene(image, mask, objects);
    }

    private static float Mean(float[] values, int channels, int plane, int at)
    {
        float sum = 0;
        for (int c = 0; c < channels; c++) sum += values[c * plane + at];
        return sum / channels;
    }

    private static (int X0, int Y0, int X1, int Y1)? TightBox(float[] item, int channels, int h, int w, float threshold)
    {
        int x0 = w, y0 = h, x1 = 0, y1 = 0;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                if (Mean(item, channels, h * w, y * w + x) > threshold)
                    (x0, y0, x1, y1) = (Math.Min(x0, x), Math.Min(y0, y), Math.Max(x1, x + 1), Math.Max(y1, y + 1));
        return x1 > x0 ? (x0, y0, x1, y1) : null;
    }

    private static void Paint(float[] item, int channels, int h, int w, int top, int left, int label,
        SceneGeneratorOptions o, float[] image, int[] mask)
    {
        int plane = o.Width * o.Height;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                if (Mean(item, channels, h * w, y * w + x) <= o.Threshold) continue;
                int at = (top + y) * o.Width + left + x;
                for (int c = 0; c < channels; c++) image[c * plane + at] = item[c * h * w + y * w + x];
                mask[at] = label;
            }
    }
}
