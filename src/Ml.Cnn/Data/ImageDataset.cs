using Ml.Cnn.Tensors;

namespace Ml.Cnn.Data;

/// <summary>
/// Items of one shape (e.g. [1, 28, 28] images, CHW) with one target each: a class index for classification, or a
/// vector of <see cref="TargetLength"/> values for regression. Held in memory as flat float arrays.
/// </summary>
public sealed class ImageDataset
{
    /// <summary>Creates a dataset; validates that the arrays agree with the shapes and hold finite values.</summary>
    public ImageDataset(TensorShape itemShape, float[] features, float[] targets, int targetLength = 1, int classCount = 0)
    {
        ArgumentNullException.ThrowIfNull(itemShape);
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(targets);
        if (targetLength <= 0) throw new ArgumentOutOfRangeException(nameof(targetLength), targetLength, "Each item needs at least one target value.");
        if (features.Length % itemShape.Length != 0)
            throw new ArgumentException($"Features hold {features.Length} values, not a multiple of the item size {itemShape.Length} ({itemShape}).", nameof(features));
        int count = features.Length / itemShape.Length;
        if (targets.Length != count * targetLength)
            throw new ArgumentException($"{count} items need {count * targetLength} target values, got {targets.Length}.", nameof(targets));
        for (int i = 0; i < features.Length; i++)
            if (!float.IsFinite(features[i]))
                throw new ArgumentException($"Feature {i % itemShape.Length} of item {i / itemShape.Length} is {features[i]}; features must be finite.", nameof(features));
        if (classCount > 0)
            for (int i = 0; i < count; i++)
                if (!(targets[i] >= 0 && targets[i] < classCount && targets[i] == MathF.Floor(targets[i])))
                    throw new ArgumentException($"Label of item {i} is {targets[i]}, expected a class index in [0, {classCount - 1}].", nameof(targets));
        ItemShape = itemShape;
        Features = features;
        Targets = targets;
        TargetLength = targetLength;
        ClassCount = classCount;
        Count = count;
    }

    /// <summary>Shape of one item, without the batch dimension.</summary>
    public TensorShape ItemShape { get; }

    /// <summary>All items' values, item after item.</summary>
    public float[] Features { get; }

    /// <summary>All targets: class indices (as floats) or regression vectors.</summary>
    public float[] Targets { get; }

    /// <summary>Values per target (1 for classification).</summary>
    public int TargetLength { get; }

    /// <summary>Number of classes for classification, 0 for regression.</summary>
    public int ClassCount { get; }

    /// <summary>Number of items.</summary>
    public int Count { get; }

    /// <summary>One item's values.</summary>
    public ReadOnlySpan<float> Item(int index) => Features.AsSpan(index * ItemShape.Length, ItemShape.Length);

    /// <summary>The items at <paramref name="indices"/>, copied.</summary>
    public ImageDataset Subset(IReadOnlyList<int> indices)
    {
        int size = ItemShape.Length;
        var features = new float[indices.Count * size];
        var targets = new float[indices.Count * TargetLength];
        for (int i = 0; i < indices.Count; i++)
        {
            Item(indices[i]).CopyTo(features.AsSpan(i * size, size));
            Targets.AsSpan(indices[i] * TargetLength, TargetLength).CopyTo(targets.AsSpan(i * TargetLength, TargetLength));
        }
        return new ImageDataset(ItemShape, features, targets, TargetLength, ClassCount);
    }
}
