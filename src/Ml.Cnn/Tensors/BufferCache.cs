using Ml.Cnn.Backends;

namespace Ml.Cnn.Tensors;

/// <summary>
/// Reusable tensors by role. Each role keeps one block of memory, grown to the largest shape asked for, and hands out
/// a tensor of the requested shape over its front: the epoch's last partial batch and evaluation batches no larger
/// than the training batch reuse the training batch's memory instead of holding copies of every activation, and
/// nothing is reallocated epoch after epoch (large reallocations land on the large-object heap, which only full GCs
/// reclaim). A tensor's contents are only valid until the next request for its role with another shape.
/// </summary>
internal sealed class BufferCache(IBackend backend) : IDisposable
{
    private readonly Dictionary<string, Tensor> _current = [];

    public Tensor Get(string role, TensorShape shape)
    {
        if (_current.TryGetValue(role, out var tensor))
        {
            if (tensor.Shape == shape) return tensor;
            if (tensor.Storage.Length >= shape.Length) return _current[role] = new Tensor(backend, tensor.Storage, shape);
            tensor.Dispose();
        }
        return _current[role] = backend.Allocate(shape);
    }

    /// <summary>Releases every role's memory.</summary>
    public void Dispose()
    {
        foreach (var tensor in _current.Values) tensor.Dispose();
        _current.Clear();
    }
}
