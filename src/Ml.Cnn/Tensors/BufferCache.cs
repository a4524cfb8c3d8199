using Ml.Cnn.Backends;

namespace Ml.Cnn.Tensors;

/// <summary>
/// Reusable tensors keyed by role and shape. Training alternates between the full batch size, the epoch's last
/// partial batch and the evaluation batch; keeping a few shapes per role means no buffer is reallocated every epoch
/// (each reallocation of a large buffer lands on the large-object heap, which is only collected in full GCs).
/// </summary>
internal sealed class BufferCache(IBackend backend, int shapesPerRole = 3)
{
    private readonly List<(string Role, TensorShape Shape, Tensor Tensor)> _entries = [];

    public Tensor Get(string role, TensorShape shape)
    {
        for (int i = _entries.Count - 1; i >= 0; i--)
        {
            var entry = _entries[i];
            if (entry.Role != role || entry.Shape != shape) continue;
            _entries.RemoveAt(i);
            _entries.Add(entry); // most recently used last
            return entry.Tensor;
        }
        var tensor = backend.Allocate(shape);
        _entries.Add((role, shape, tensor));
        if (_entries.Count(e => e.Role == role) > shapesPerRole)
            _entries.RemoveAt(_entries.FindIndex(e => e.Role == role));
        return tensor;
    }
}
