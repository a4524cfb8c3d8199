using Ml.Cnn.Tensors;

namespace Ml.Cnn.Data;

/// <summary>
/// Items of one shape (e.g. [1, 28, 28] images, CHW) with one target each: a class index for classification, a
/// class index per pixel for segmentation (<see cref="TargetLength"/> = H·W, <see cref="IgnoredLabel"/> allowed), or a
/// vector of <see cref="TargetLength"/> values for regression. Item values are held as one byte each (with a
/// palette) when the set has at most 256 distinct values, as 8-bit images do; as floats otherwise.
/// </summary>
public sealed class ImageDataset
{
    /// <summary>Creates a dataset; validates that the arrays agree with the shapes and hold finite values.</summary>
    public ImageDataset(TensorShape itemShape, float[] features, float[] targets, int targetLength = 1, int classCount = 0)
    {
        ArgumentNullException.ThrowIfNull(itemShape);
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(targets);
        if (features.Length % itemShape.Length != 0)
            throw new ArgumentException($"Features hold {features.Length} values, not a multiple of the item size {itemShape.Length} ({itemShape}).", nameof(features));
        var items = new ItemStore(itemShape.Length);
        for (int start = 0; start < features.Length; start += itemShape.Length)
            items.Add(CheckFinite(features.AsSpan(start, itemShape.Length), start / itemShape.Length, nameof(features)));
        (ItemShape, _items, Targets, TargetLength, ClassCount, Count) = Validate(itemShape, items, targets, targetLength, classCount);
    }

    internal ImageDataset(TensorShape itemShape, ItemStore items, float[] targets, int targetLength = 1, int classCount = 0) =>
        (ItemShape, _items, Targets, TargetLength, ClassCount, Count) = Validate(itemShape, items, targets, targetLength, classCount);

    private readonly ItemStore _items;

    private static (TensorShape, ItemStore, float[], int, int, int) Validate(TensorShape itemShape, ItemStore items, float[] targets, int targetLength, int classCount)
    {
        ArgumentNullException.ThrowIfNull(targets);
        if (targetLength <= 0) throw new ArgumentOutOfRangeException(nameof(targetLength), targetLength, "Each item needs at least one target value.");
        int count = items.Count;
        if (targets.Length != count * targetLength)
            throw new ArgumentException($"{count} items need {count * targetLength} target values, got {targets.Length}.", nameof(targets));
        if (classCount > 0 && targetLength == 1)
            for (int i = 0; i < count; i++)
                if (!(targets[i] >= 0 && targets[i] < classCount && targets[i] == MathF.Floor(targets[i])))
                    throw new ArgumentException($"Label of item {i} is {targets[i]}, expected a class index in [0, {classCount - 1}].", nameof(targets));
        if (classCount > 0 && targetLength > 1)
            for (int i = 0; i < targets.Length; i++)
                if (targets[i] != IgnoredLabel && !(targets[i] >= 0 && targets[i] < classCount && targets[i] == MathF.Floor(targets[i])))
                    throw new ArgumentException($"Label {i % targetLength} of item {i / targetLength} is {targets[i]}, expected a class " +
                        $"index in [0, {classCount - 1}] or {IgnoredLabel} (ignored).", nameof(targets));
        return (itemShape, items, targets, targetLength, classCount, count);
    }

    /// <summary>Returns <paramref name="item"/> after checking that every value is finite.</summary>
    internal static ReadOnlySpan<float> CheckFinite(ReadOnlySpan<float> item, int index, string parameter)
    {
        for (int i = 0; i < item.Length; i++)
            if (!float.IsFinite(item[i]))
                throw new ArgumentException($"Feature {i} of item {index} is {item[i]}; features must be finite.", parameter);
        return item;
    }

    /// <summary>The label of pixels that no loss or metric counts (unlabelled, borders): PyTorch's ignore_index.</summary>
    public const int IgnoredLabel = -100;

    /// <summary>Whether each item has one class index per pixel (segmentation masks).</summary>
    public bool IsPerPixel => ClassCount > 0 && TargetLength > 1;

    /// <summary>Shape of one item, without the batch dimension.</summary>
    public TensorShape ItemShape { get; }

    /// <summary>All targets: class indices (as floats) or regression vectors.</summary>
    public float[] Targets { get; }

    /// <summary>Values per target (1 for classification).</summary>
    public int TargetLength { get; }

    /// <summary>Number of classes for classification, 0 for regression.</summary>
    public int ClassCount { get; }

    /// <summary>Number of items.</summary>
    public int Count { get; }

    /// <summary>Whether item values are stored one byte each (at most 256 distinct values).</summary>
    public bool IsCompact => _items.IsPalette;

    /// <summary>Copies item <paramref name="index"/>'s values into <paramref name="destination"/>.</summary>
    public void CopyItem(int index, Span<float> destination)
    {
        if (destination.Length < ItemShape.Length)
            throw new ArgumentException($"Items have {ItemShape.Length} values; the destination holds {destination.Length}.", nameof(destination));
        _items.CopyItem(index, destination);
    }

    /// <summary>Item <paramref name="index"/>'s values, as a new array.</summary>
    public float[] GetItem(int index)
    {
        var values = new float[ItemShape.Length];
        _items.CopyItem(index, values);
        return values;
    }

    /// <summary>The items at <paramref name="indices"/>, copied.</summary>
    public ImageDataset Subset(IReadOnlyList<int> indices)
    {
        var items = new ItemStore(ItemShape.Length);
        var item = new float[ItemShape.Length];
        var targets = new float[indices.Count * TargetLength];
        for (int i = 0; i < indices.Count; i++)
        {
            _items.CopyItem(indices[i], item);
            items.Add(item);
            Targets.AsSpan(indices[i] * TargetLength, TargetLength).CopyTo(targets.AsSpan(i * TargetLength, TargetLength));
        }
        return new ImageDataset(ItemShape, items, targets, TargetLength, ClassCount);
    }
}
