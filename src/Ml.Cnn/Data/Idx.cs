using System.Buffers.Binary;
using System.IO.Compression;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Data;

/// <summary>
/// Reads the IDX files of MNIST and Fashion-MNIST (raw or gzip-compressed, detected from the content). Malformed
/// files raise <see cref="InvalidDataException"/> naming the file and what is wrong.
/// </summary>
public static class Idx
{
    private const int ImagesMagic = 0x00000803, LabelsMagic = 0x00000801;

    /// <summary>Fashion-MNIST's class names, in label order.</summary>
    public static IReadOnlyList<string> FashionMnistClasses { get; } =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>
    /// Loads an images file and its labels file as a dataset of [1, rows, cols] items with pixel values multiplied by
    /// <paramref name="scale"/> (1/255 maps bytes to [0, 1]).
    /// </summary>
    public static ImageDataset Load(string imagesPath, string labelsPath, float scale = 1f / 255, int classCount = 10)
    {
        var (count, rows, cols, pixels) = ReadImages(imagesPath);
        var labels = ReadLabels(labelsPath);
        if (labels.Length != count)
            throw new InvalidDataException($"'{imagesPath}' holds {count} images but '{labelsPath}' holds {labels.Length} labels.");
        var features = new float[pixels.Length];
        for (int i = 0; i < pixels.Length; i++) features[i] = pixels[i] * scale;
        var targets = new float[count];
        for (int i = 0; i < count; i++)
        {
            if (labels[i] >= classCount)
                throw new InvalidDataException($"'{labelsPath}': label {i} is {labels[i]}, but there are only {classCount} classes.");
            targets[i] = labels[i];
        }
        return new ImageDataset(new TensorShape(1, rows, cols), features, targets, classCount: classCount);
    }

    /// <summary>Loads "{prefix}-images-idx3-ubyte[.gz]" and "{prefix}-labels-idx1-ubyte[.gz]" from a folder ("train", "t10k").</summary>
    public static ImageDataset LoadFromFolder(string folder, string prefix, float scale = 1f / 255, int classCount = 10) =>
        Load(Find(folder, $"{prefix}-images-idx3-ubyte"), Find(folder, $"{prefix}-labels-idx1-ubyte"), scale, classCount);

    private static string Find(string folder, string name)
    {
        foreach (var candidate in new[] { name + ".gz", name })
        {
            string path = Path.Combine(folder, candidate);
            if (File.Exists(path)) return path;
        }
        throw new FileNotFoundException($"Neither '{name}.gz' nor '{name}' exists in '{folder}'.", Path.Combine(folder, name));
    }

    /// <summary>The images of an IDX3 file: count, rows, columns and the pixel bytes.</summary>
    public static (int Count, int Rows, int Cols, byte[] Pixels) ReadImages(string path)
    {
        var bytes = ReadAllBytes(path);
        CheckHeader(path, bytes, ImagesMagic, 16, "images (IDX3, unsigned bytes)");
        int count = ReadDimension(path, bytes, 4, "image count");
        int rows = ReadDimension(path, bytes, 8, "row count");
        int cols = ReadDimension(path, bytes, 12, "column count");
        long expected = (long)count * rows * cols;
        if (bytes.Length - 16 != expected)
            throw new InvalidDataException($"'{path}': the header declares {count} images of {rows}x{cols} ({expected} bytes) but {bytes.Length - 16} bytes follow: the file is {(bytes.Length - 16 < expected ? "truncated" : "longer than declared")}.");
        return (count, rows, cols, bytes[16..]);
    }

    /// <summary>The labels of an IDX1 file.</summary>
    public static byte[] ReadLabels(string path)
    {
        var bytes = ReadAllBytes(path);
        CheckHeader(path, bytes, LabelsMagic, 8, "labels (IDX1, unsigned bytes)");
        int count = ReadDimension(path, bytes, 4, "label count");
        if (bytes.Length - 8 != count)
            throw new InvalidDataException($"'{path}': the header declares {count} labels but {bytes.Length - 8} bytes follow: the file is {(bytes.Length - 8 < count ? "truncated" : "longer than declared")}.");
        return bytes[8..];
    }

    private static byte[] ReadAllBytes(string path)
    {
        var raw = File.ReadAllBytes(path);
        if (raw.Length < 2 || raw[0] != 0x1F || raw[1] != 0x8B) return raw;
        try
        {
            using var gzip = new GZipStream(new MemoryStream(raw), CompressionMode.Decompress);
            using var result = new MemoryStream();
            gzip.CopyTo(result);
            return result.ToArray();
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"'{path}': the gzip stream is corrupt or truncated ({e.Message}).", e);
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException($"'{path}': the gzip stream is truncated.", e);
        }
    }

    private static void CheckHeader(string path, byte[] bytes, int magic, int headerLength, string kind)
    {
        if (bytes.Length < headerLength)
            throw new InvalidDataException($"'{path}': {bytes.Length} bytes is too short for an IDX header ({headerLength} bytes).");
        int actual = BinaryPrimitives.ReadInt32BigEndian(bytes);
        if (actual != magic)
            throw new InvalidDataException($"'{path}': magic number 0x{actual:X8}, expected 0x{magic:X8} for {kind}.");
    }

    private static int ReadDimension(string path, byte[] bytes, int offset, string what)
    {
        int value = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(offset));
        if (value < 0) throw new InvalidDataException($"'{path}': the {what} is {value}.");
        return value;
    }
}
