namespace Ml.Cnn.Tensors;

/// <summary>
/// Backend-owned memory behind one or more tensors (views share it). Device storage releases its memory on
/// <see cref="Dispose"/>; host storage has nothing to release.
/// </summary>
public abstract class TensorStorage : IDisposable
{
    /// <summary>Capacity in floats.</summary>
    public abstract int Length { get; }

    /// <summary>Copies the first <c>destination.Length</c> values to the host.</summary>
    public abstract void CopyTo(Span<float> destination);

    /// <summary>Overwrites the first <c>source.Length</c> values from the host.</summary>
    public abstract void CopyFrom(ReadOnlySpan<float> source);

    /// <summary>Releases the memory; the tensors over it must not be used afterwards.</summary>
    public virtual void Dispose() => GC.SuppressFinalize(this);
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
