using Ml.Cnn.Backends;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Training;

/// <summary>
/// The per-batch losses and right answers of a training or evaluation pass, kept where the backend keeps its tensors
/// in a window of slots and read to the host in one transfer when the window is full and when the pass ends: a GPU
/// synchronises once per <see cref="DeviceBatches"/> batches rather than several times per batch. A host backend's
/// window is one batch (a read costs nothing there), so progress, divergence checks and cancellation act on every
/// batch. Read in batch order, the figures add up exactly as one read per batch would.
/// </summary>
internal sealed class MetricsWindow : IDisposable
{
    private readonly IBackend _backend;

    public MetricsWindow(IBackend backend)
    {
        _backend = backend;
        Size = backend is HostBackend ? 1 : DeviceBatches;
        _values = backend.Allocate(new TensorShape(2 * Size)); // slots [0, Size) hold losses, [Size, 2·Size) right answers
    }

    /// <summary>Batches per read on a device backend.</summary>
    public const int DeviceBatches = 16;

    /// <summary>Batches per read on this backend.</summary>
    public int Size { get; }

    /// <summary>What the host knows of a batch when it starts: its index, items, counted labels and learning rate.</summary>
    public readonly record struct Batch(int Index, int Items, long Labelled, float LearningRate);

    private readonly Tensor _values;
    private readonly List<Batch> _pending = [];

    /// <summary>The tensor the losses and counts are added into.</summary>
    public Tensor Values => _values;

    /// <summary>Whether the window has no free slot left.</summary>
    public bool Full => _pending.Count == Size;

    /// <summary>The slot of the right answers of the batch whose loss goes to <paramref name="slot"/>.</summary>
    public int CorrectSlot(int slot) => Size + slot;

    /// <summary>Takes the next slot for <paramref name="batch"/>: its loss goes there, its right answers to <see cref="CorrectSlot"/>.</summary>
    public int Next(Batch batch)
    {
        if (Full) throw new InvalidOperationException("The metrics window is full: read it first.");
        if (_pending.Count == 0) _backend.Fill(_values, 0);
        _pending.Add(batch);
        return _pending.Count - 1;
    }

    /// <summary>Reads the window (one transfer) and hands each pending batch's loss and right answers over in order.</summary>
    public void Read(Action<Batch, float, long> each)
    {
        if (_pending.Count == 0) return;
        var values = _values.ToArray();
        var pending = _pending.ToArray();
        _pending.Clear();
        for (int i = 0; i < pending.Length; i++) each(pending[i], values[i], (long)values[Size + i]);
    }

    /// <inheritdoc />
    public void Dispose() => _values.Dispose();
}
