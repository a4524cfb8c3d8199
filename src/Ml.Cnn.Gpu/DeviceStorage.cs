using ILGPU;
using ILGPU.Runtime;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Gpu;

/// <summary>A tensor's memory on an ILGPU accelerator; disposing it returns the memory to the device at once.</summary>
internal sealed class DeviceStorage : TensorStorage
{
    private readonly GpuBackend _owner;
    private MemoryBuffer1D<float, Stride1D.Dense>? _buffer;

    public DeviceStorage(GpuBackend owner, int length)
    {
        _owner = owner;
        Length = length;
        _buffer = owner.Accelerator.Allocate1D<float>(Math.Max(length, 1));
        _buffer.MemSetToZero();
        owner.CountAllocation(_buffer.LengthInBytes);
    }

    public override int Length { get; }

    public GpuBackend Owner => _owner;

    /// <summary>The first <paramref name="length"/> values, for kernels.</summary>
    public ArrayView<float> View(int length) =>
        (_buffer ?? throw new ObjectDisposedException(nameof(Tensor), "The tensor's device memory was released.")).View.SubView(0, length);

    public override void CopyTo(Span<float> destination)
    {
        if (destination.Length == 0) return;
        _owner.CountRead();
        View(destination.Length).CopyToCPU(destination);
    }

    public override void CopyFrom(ReadOnlySpan<float> source)
    {
        if (source.Length > 0) View(source.Length).CopyFromCPU(source);
    }

    public override void Dispose()
    {
        if (_buffer is null) return;
        _owner.CountAllocation(-_buffer.LengthInBytes);
        _buffer.Dispose();
        _buffer = null;
        base.Dispose();
    }
}
