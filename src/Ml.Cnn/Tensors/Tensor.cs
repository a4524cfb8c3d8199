using Ml.Cnn.Backends;

namespace Ml.Cnn.Tensors;

/// <summary>
/// A dense float32 tensor owned by a backend. Its memory lives wherever the backend keeps it (host arrays for the
/// CPU backends, device buffers for a GPU backend); <see cref="ToArray"/> and <see cref="CopyFrom"/> are the only
/// host transfers, so a training step never round-trips through the host per operation. Views made by
/// <see cref="Reshape"/> share their storage; disposing any of them releases that storage for all.
/// </summary>
public sealed class Tensor : IDisposable
{
    /// <summary>
    /// Wraps <paramref name="storage"/> as a tensor of <paramref name="backend"/>: how a backend in another assembly
    /// (the GPU backend) makes the tensors its <see cref="IBackend.Allocate"/> returns. The storage must hold at least
    /// <paramref name="shape"/>'s element count.
    /// </summary>
    public Tensor(IBackend backend, TensorStorage storage, TensorShape shape)
    {
        if (shape.Length > storage.Length)
            throw new ArgumentException($"Shape {shape} needs {shape.Length} elements but the storage holds {storage.Length}.");
        Backend = backend;
        Storage = storage;
        Shape = shape;
    }

    /// <summary>The backend that owns the memory and runs operations on it.</summary>
    public IBackend Backend { get; }

    /// <summary>The dimensions.</summary>
    public TensorShape Shape { get; }

    /// <summary>Number of elements.</summary>
    public int Length => Shape.Length;

    /// <summary>The backend-owned memory behind the tensor, which its backend unwraps to run kernels on.</summary>
    public TensorStorage Storage { get; }

    /// <summary>Releases the storage now (device memory is scarce; host arrays would wait for the GC).</summary>
    public void Dispose() => Storage.Dispose();

    /// <summary>A view with another shape of the same length over the same memory (no copy).</summary>
    public Tensor Reshape(TensorShape shape)
    {
        if (shape.Length != Length)
            throw new ArgumentException($"Cannot reshape {Shape} ({Length} elements) to {shape} ({shape.Length} elements).", nameof(shape));
        return new Tensor(Backend, Storage, shape);
    }

    /// <summary>Copies the values to a new host array (row-major).</summary>
    public float[] ToArray()
    {
        var result = new float[Length];
        Storage.CopyTo(result);
        return result;
    }

    /// <summary>Overwrites the values from a host span of exactly <see cref="Length"/> elements.</summary>
    public void CopyFrom(ReadOnlySpan<float> values)
    {
        if (values.Length != Length)
            throw new ArgumentException($"Tensor {Shape} needs {Length} values, got {values.Length}.", nameof(values));
        Storage.CopyFrom(values);
    }

    /// <summary>Shape and backend, for debugging.</summary>
    public override string ToString() => $"Tensor{Shape} on {Backend.Name}";
}
