using System.Buffers.Binary;
using Ml.Cnn.Core;

namespace Ml.Cnn.Fuzzing;

/// <summary>
/// Seeded mutants of a file, the same for the tests' corpora and the fuzz benchmark: truncations, bit flips (every
/// other one inside the header), zeroed runs, appended bytes, and each 4-byte word of the header set to hostile
/// values (0, −1, 2³¹−1, 2²⁴, 30000, 2³¹) in the format's byte order.
/// </summary>
public static class Mutants
{
    private static readonly uint[] HostileWords = [0, uint.MaxValue, int.MaxValue, 1 << 24, 30000, 0x80000000];

    public static IEnumerable<byte[]> Of(byte[] original, ulong seed, int each, int headerBytes, bool bigEndian)
    {
        var rng = new Rng(seed);
        for (int i = 0; i < each; i++) yield return original[..rng.NextInt(original.Length)];
        for (int i = 0; i < each; i++)
        {
            var m = (byte[])original.Clone();
            m[rng.NextInt(Math.Min(m.Length, i % 2 == 0 ? headerBytes : m.Length))] ^= (byte)(1 << rng.NextInt(8));
            yield return m;
        }
        for (int i = 0; i < each / 2; i++)
        {
            var m = (byte[])original.Clone();
            int start = rng.NextInt(m.Length);
            Array.Clear(m, start, Math.Min(1 + rng.NextInt(256), m.Length - start));
            yield return m;
        }
        yield return [.. original, .. new byte[1000]];
        foreach (uint value in HostileWords)
            for (int offset = 0; offset + 4 <= Math.Min(headerBytes, original.Length); offset += 4)
            {
                var m = (byte[])original.Clone();
                if (bigEndian) BinaryPrimitives.WriteUInt32BigEndian(m.AsSpan(offset), value);
                else BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(offset), value);
                yield return m;
            }
    }
}
