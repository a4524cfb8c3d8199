using Ml.Cnn.Backends;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Neighbors;

/// <summary>
/// The query–reference dot products of <see cref="KnnSearch"/> computed by a device backend's
/// <see cref="IBackend.MatMul"/>: the references go up once, a block of rows per tensor, each block of queries once;
/// the products come back to the host, where the shortlist and the exact re-ranking run as they do on the CPU, so the
/// neighbours found are the CPU's.
/// </summary>
internal sealed class DeviceProducts : IDisposable
{
    private readonly IBackend _backend;
    private readonly Tensor[] _references;
    private readonly int _dimension;
    private readonly Dictionary<(int Queries, int References), Tensor> _products = [];
    private Tensor? _queries;

    public DeviceProducts(IBackend backend, float[] vectors, int count, int dimension, int blockRows)
    {
        (_backend, _dimension) = (backend, dimension);
        _references = new Tensor[(count + blockRows - 1) / blockRows];
        for (int b = 0; b < _references.Length; b++)
        {
            int rows = Math.Min(blockRows, count - b * blockRows);
            _references[b] = backend.Allocate(new TensorShape(rows, dimension));
            _references[b].CopyFrom(vectors.AsSpan(b * blockRows * dimension, rows * dimension));
        }
    }

    /// <summary>The backend the products run on.</summary>
    public IBackend Backend => _backend;

    /// <summary>Uploads the next block of <paramref name="count"/> queries.</summary>
    public void SetQueries(ReadOnlySpan<float> queries, int count)
    {
        if (_queries?.Shape[0] != count)
        {
            _queries?.Dispose();
            _queries = _backend.Allocate(new TensorShape(count, _dimension));
        }
        _queries.CopyFrom(queries[..(count * _dimension)]);
    }

    /// <summary>products[i, j] ← query i · reference j of block <paramref name="block"/>, row-major.</summary>
    public void Multiply(int block, Span<float> products)
    {
        var references = _references[block];
        (int Queries, int References) key = (_queries!.Shape[0], references.Shape[0]);
        if (!_products.TryGetValue(key, out var result))
            _products[key] = result = _backend.Allocate(new TensorShape(key.Queries, key.References));
        _backend.MatMul(_queries, false, references, true, result);
        result.Storage.CopyTo(products[..result.Length]);
    }

    public void Dispose()
    {
        foreach (var t in _references) t.Dispose();
        foreach (var t in _products.Values) t.Dispose();
        _products.Clear();
        _queries?.Dispose();
    }
}
