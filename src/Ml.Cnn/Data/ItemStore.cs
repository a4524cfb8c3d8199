namespace Ml.Cnn.Data;

/// <summary>
/// A dataset's item values, appended one item at a time and kept in chunks (no contiguous array of the whole set, no
/// copy when the set grows). While the values take at most 256 distinct floats — every 8-bit image set, however it
/// was scaled — each value is stored as a one-byte code into a palette: lossless, at a quarter of the memory. The first
/// item that brings a 257th value turns the store into plain floats.
/// </summary>
internal sealed class ItemStore
{
    private const int ItemsPerChunk = 1024;
    private readonly int _itemLength;
    private readonly List<byte[]> _codeChunks = [];
    private readonly List<float[]> _valueChunks = [];
    private readonly List<float> _palette = [];
    private readonly Dictionary<int, byte> _codes = []; // keyed by the float's bits, so 0 and −0 stay distinct

    public ItemStore(int itemLength) => _itemLength = itemLength;

    /// <summary>Number of items.</summary>
    public int Count { get; private set; }

    /// <summary>Whether values are stored as palette codes (one byte each).</summary>
    public bool IsPalette => _valueChunks.Count == 0 && (Count == 0 || _codeChunks.Count > 0);

    /// <summary>Bytes held by the values (for memory reports).</summary>
    public long ValueBytes => IsPalette ? (long)_codeChunks.Count * ItemsPerChunk * _itemLength : (long)_valueChunks.Count * ItemsPerChunk * _itemLength * sizeof(float);

    public void Add(ReadOnlySpan<float> item)
    {
        if (item.Length != _itemLength) throw new ArgumentException($"Items have {_itemLength} values, got {item.Length}.", nameof(item));
        int slot = Count % ItemsPerChunk;
        if (IsPalette && TryEncode(item, out var codes))
        {
            if (slot == 0) _codeChunks.Add(new byte[ItemsPerChunk * _itemLength]);
            codes.CopyTo(_codeChunks[^1].AsSpan(slot * _itemLength));
        }
        else
        {
            if (IsPalette) SwitchToValues();
            if (slot == 0) _valueChunks.Add(new float[ItemsPerChunk * _itemLength]);
            item.CopyTo(_valueChunks[^1].AsSpan(slot * _itemLength));
        }
        Count++;
    }

    public void CopyItem(int index, Span<float> destination)
    {
        if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index), index, $"The dataset has {Count} items.");
        int offset = index % ItemsPerChunk * _itemLength;
        if (!IsPalette)
        {
            _valueChunks[index / ItemsPerChunk].AsSpan(offset, _itemLength).CopyTo(destination);
            return;
        }
        var codes = _codeChunks[index / ItemsPerChunk].AsSpan(offset, _itemLength);
        var palette = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_palette);
        for (int i = 0; i < codes.Length; i++) destination[i] = palette[codes[i]];
    }

    [ThreadStatic] private static byte[]? t_codes;

    private bool TryEncode(ReadOnlySpan<float> item, out ReadOnlySpan<byte> codes)
    {
        var buffer = t_codes is { } b && b.Length >= item.Length ? b : t_codes = new byte[item.Length];
        // Runs of equal values (background pixels) skip the lookup; NaN's bits never match a (finite) value.
        int last = BitConverter.SingleToInt32Bits(float.NaN);
        byte lastCode = 0;
        for (int i = 0; i < item.Length; i++)
        {
            int bits = BitConverter.SingleToInt32Bits(item[i]);
            if (bits != last)
            {
                if (!_codes.TryGetValue(bits, out lastCode))
                {
                    if (_palette.Count == 256) { codes = default; return false; }
                    lastCode = (byte)_palette.Count;
                    _codes[bits] = lastCode;
                    _palette.Add(item[i]);
                }
                last = bits;
            }
            buffer[i] = lastCode;
        }
        codes = buffer.AsSpan(0, item.Length);
        return true;
    }

    private void SwitchToValues()
    {
        for (int chunk = 0; chunk < _codeChunks.Count; chunk++)
        {
            var values = new float[ItemsPerChunk * _itemLength];
            var codes = _codeChunks[chunk];
            for (int i = 0; i < codes.Length; i++) values[i] = _palette[codes[i]];
            _valueChunks.Add(values);
        }
        _codeChunks.Clear();
        _palette.Clear();
        _codes.Clear();
    }
}
