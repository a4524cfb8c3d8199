namespace Ml.Cnn.Tensors;

/// <summary>Backend-owned memory behind one or more tensors (views share it).</summary>
public abstract class TensorStorage
{
    /// <summary>Capacity in floats.</summary>
    public abstract int Length { get; }

    /// <summary>Copies the first <c>destination.Length</c> values to the host.</summary>
    public abstract void CopyTo(Span<float> destination);

    /// <summary>Overwrites the first <c>source.Length</c> values from the host.</summary>
    public abstract void CopyFrom(ReadOnlySpan<float> source);
}

/// <summary>Storage in a managed host array, used by the CPU backends.</summary>
public sealed class HostStorage(int length) : TensorStorage
{
    /// <summary>The values.</summary>
    public float[] Data { get; } = new float[length];

    /// <inheritdoc />
    public override int Length => Data.Length;

    /// <inheritdoc />
    public override void CopyTo(Span<float> destination) => Data.AsSpan(0, destination.Length).CopyTo(destination);

    /// <inheritdoc />
    public override void CopyFrom(ReadOnlySpan<float> source) => source.CopyTo(Data);
}
