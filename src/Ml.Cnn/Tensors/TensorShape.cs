namespace Ml.Cnn.Tensors;

/// <summary>The dimensions of a tensor, outermost first (NCHW for images, [N, features] for vectors).</summary>
public sealed class TensorShape : IEquatable<TensorShape>
{
    private readonly int[] _dims;

    /// <summary>Creates a shape; every dimension must be positive.</summary>
    public TensorShape(params int[] dims)
    {
        ArgumentNullException.ThrowIfNull(dims);
        if (dims.Length == 0) throw new ArgumentException("A tensor shape needs at least one dimension.", nameof(dims));
        long length = 1;
        foreach (var d in dims)
        {
            if (d <= 0) throw new ArgumentException($"Tensor dimensions must be positive, got [{string.Join(", ", dims)}].", nameof(dims));
            length *= d;
        }
        if (length > int.MaxValue) throw new ArgumentException($"Tensor [{string.Join(", ", dims)}] has more than {int.MaxValue} elements.", nameof(dims));
        _dims = (int[])dims.Clone();
        Length = (int)length;
    }

    /// <summary>Number of dimensions.</summary>
    public int Rank => _dims.Length;

    /// <summary>Total number of elements.</summary>
    public int Length { get; }

    /// <summary>The size of dimension <paramref name="axis"/>.</summary>
    public int this[int axis] => _dims[axis];

    /// <summary>The dimensions as a read-only list.</summary>
    public IReadOnlyList<int> Dims => _dims;

    /// <summary>Batch size (dimension 0).</summary>
    public int N => _dims[0];

    /// <summary>Elements per batch item: the product of every dimension after the first.</summary>
    public int ItemLength => Length / _dims[0];

    /// <summary>This shape with <paramref name="batch"/> as a new outermost dimension.</summary>
    public TensorShape Prepend(int batch) => new([batch, .. _dims]);

    /// <summary>This shape without its outermost dimension (the per-item shape of a batch).</summary>
    public TensorShape DropBatch() => _dims.Length > 1
        ? new TensorShape(_dims[1..])
        : throw new InvalidOperationException($"Shape {this} has no dimension after the batch.");

    /// <inheritdoc />
    public bool Equals(TensorShape? other) => other is not null && _dims.AsSpan().SequenceEqual(other._dims);

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as TensorShape);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (var d in _dims) hash.Add(d);
        return hash.ToHashCode();
    }

    /// <summary>Formats as [N, C, H, W].</summary>
    public override string ToString() => "[" + string.Join(", ", _dims) + "]";

    /// <summary>Value equality.</summary>
    public static bool operator ==(TensorShape? a, TensorShape? b) => a is null ? b is null : a.Equals(b);

    /// <summary>Value inequality.</summary>
    public static bool operator !=(TensorShape? a, TensorShape? b) => !(a == b);
}
