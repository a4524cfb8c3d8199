using Ml.Cnn.Data;
using Ml.Cnn.Tensors;
using Xunit;

namespace Ml.Cnn.Tests.Training;

public sealed class ImageDatasetTests
{
    [Fact]
    public void EightBitImagesAreStoredOneBytePerValueAndReadBackExactly()
    {
        var data = Idx.LoadFromFolder(Path.Combine(AppContext.BaseDirectory, "data", "fashion-mnist-subset"), "t10k");
        Assert.True(data.IsCompact);
        var item = data.GetItem(7);
        Assert.All(item, v => Assert.Equal(MathF.Round(v * 255) * (1f / 255), v)); // exactly as Idx scales bytes
        Assert.Contains(item, v => v > 0 && v < 1);
    }

    [Fact]
    public void CompactStorageIsLosslessAndFallsBackToFloatsBeyond256Values()
    {
        var shape = new TensorShape(1, 4, 4);
        // 300 items whose values repeat 200 distinct floats (including −0 and 0, which must stay distinct).
        var values = Enumerable.Range(0, 300 * 16).Select(i => i % 200 == 0 ? -0f : i % 200 == 1 ? 0f : MathF.Sqrt(i % 200) * 0.37f).ToArray();
        var compact = new ImageDataset(shape, values, new float[300]);
        Assert.True(compact.IsCompact);
        AssertSameBits(values, compact);

        // A 257th distinct value in the last item switches the whole set to floats, still exactly.
        values[^1] = 1e-9f;
        values[^2] = 2e-9f;
        values[^3] = 123.456f;
        values[^4] = -7.5f;
        var distinct = values.Select(BitConverter.SingleToInt32Bits).Distinct().Count();
        var full = new ImageDataset(shape, values.Concat(Enumerable.Range(0, 16 * 60).Select(i => 1000f + i)).ToArray(), new float[360]);
        Assert.False(full.IsCompact);
        Assert.True(distinct < 257);
        AssertSameBits(values, full);
        Assert.Equal(1000f + 16 * 60 - 1, full.GetItem(359)[15]);
    }

    [Fact]
    public void NonFiniteValuesAreRefusedNamingTheItem()
    {
        var values = new float[32];
        values[21] = float.NaN;
        var error = Assert.Throws<ArgumentException>(() => new ImageDataset(new TensorShape(1, 4, 4), values, new float[2]));
        Assert.Contains("Feature 5 of item 1", error.Message);
    }

    private static void AssertSameBits(float[] expected, ImageDataset data)
    {
        for (int i = 0; i < expected.Length / 16; i++)
        {
            var item = data.GetItem(i);
            for (int j = 0; j < 16; j++)
                Assert.Equal(BitConverter.SingleToInt32Bits(expected[i * 16 + j]), BitConverter.SingleToInt32Bits(item[j]));
        }
    }
}
