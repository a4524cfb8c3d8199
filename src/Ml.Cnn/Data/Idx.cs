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
    private const int DeflateMaxRatio = 1032;
    // 16 megapixels: a 4096×4096 image. Larger declared sizes are a corrupt header, not a dataset.
    private const long MaxImagePixels = 1 << 24;

    /// <summary>Fashion-MNIST's class names, in label order.</summary>
    public static IReadOnlyList<string> FashionMnistClasses { get; } =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>
    /// Loads an images file and its labels file as a dataset of [1, rows, cols] items with pixel values multiplied by
    /// <paramref name="scale"/> (1/255 maps bytes to [0, 1]). Pixels stream straight into the dataset, which keeps
    /// them one byte each: Fashion-MNIST's training images take 47 MB, not 188.
    /// </summary>
    public static ImageDataset Load(string imagesPath, string labelsPath, float scale = 1f / 255, int classCount = 10)
    {
        var labels = ReadLabels(labelsPath);
        using var stream = Open(imagesPath, out long capacity);
        var (count, rows, cols, expected) = ReadImagesHeader(imagesPath, stream, capacity);
        if (labels.Length != count)
            throw new InvalidDataException($"'{imagesPath}' holds {count} images but '{labelsPath}' holds {labels.Length} labels.");
        int size = rows * cols;
        var items = new ItemStore(size);
        var pixels = new byte[size];
        var item = new float[size];
        for (int image = 0; image < count; image++)
        {
            for (int filled = 0; filled < size;)
            {
                int n = Read(imagesPath, stream, pixels.AsSpan(filled));
                if (n == 0)
                    throw new InvalidDataException($"'{imagesPath}': the header declares {count} images of {rows}x{cols} ({expected} bytes) but only {(long)image * size + filled} bytes follow: the file is truncated.");
                filled += n;
            }
            for (int i = 0; i < size; i++) item[i] = pixels[i] * scale;
            items.Add(item);
        }
        if (Read(imagesPath, stream, new byte[1]) != 0)
            throw new InvalidDataException($"'{imagesPath}': the header declares {count} images of {rows}x{cols} ({expected} bytes) but the file is longer than declared.");
        var targets = new float[count];
        for (int i = 0; i < count; i++)
        {
            if (labels[i] >= classCount)
                throw new InvalidDataException($"'{labelsPath}': label {i} is {labels[i]}, but there are only {classCount} classes.");
            targets[i] = labels[i];
        }
        return new ImageDataset(new TensorShape(1, rows, cols), items, targets, classCount: classCount);
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
        using var stream = Open(path, out long capacity);
        var (count, rows, cols, expected) = ReadImagesHeader(path, stream, capacity);
        if (expected > Array.MaxLength)
            throw new InvalidDataException($"'{path}': {count} images of {rows}x{cols} ({expected} bytes) do not fit one array; load them with Idx.Load.");
        return (count, rows, cols, ReadPayload(path, stream, expected, $"{count} images of {rows}x{cols}"));
    }

    /// <summary>The labels of an IDX1 file.</summary>
    public static byte[] ReadLabels(string path)
    {
        using var stream = Open(path, out long capacity);
        var header = ReadHeader(path, stream, LabelsMagic, 8, "labels (IDX1, unsigned bytes)");
        int count = ReadDimension(path, header, 4, "label count");
        CheckCapacity(path, count, capacity, $"{count} labels");
        return ReadPayload(path, stream, count, $"{count} labels");
    }

    /// <summary>
    /// The image count, size and payload length the header declares, refused before anything is allocated when the
    /// file cannot hold that payload: a header field cannot size an allocation.
    /// </summary>
    private static (int Count, int Rows, int Cols, long Payload) ReadImagesHeader(string path, Stream stream, long capacity)
    {
        var header = ReadHeader(path, stream, ImagesMagic, 16, "images (IDX3, unsigned bytes)");
        int count = ReadDimension(path, header, 4, "image count");
        int rows = ReadDimension(path, header, 8, "row count");
        int cols = ReadDimension(path, header, 12, "column count");
        long pixels = (long)rows * cols;
        if (pixels > MaxImagePixels)
            throw new InvalidDataException($"'{path}': the header declares images of {rows}x{cols} pixels; at most {MaxImagePixels} pixels an image are read.");
        long payload = count * pixels;
        CheckCapacity(path, payload, capacity, $"{count} images of {rows}x{cols}");
        return (count, rows, cols, payload);
    }

    private static void CheckCapacity(string path, long declared, long capacity, string what)
    {
        if (declared > capacity)
            throw new InvalidDataException(
                $"'{path}': the header declares {what} ({declared} bytes), more than the file can hold (at most {capacity} bytes): the file is truncated or its header corrupt.");
    }

    private static byte[] ReadPayload(string path, Stream stream, long expected, string declared)
    {
        var payload = new byte[expected];
        int read = 0;
        while (read < expected)
        {
            int n = Read(path, stream, payload.AsSpan(read));
            if (n == 0)
                throw new InvalidDataException($"'{path}': the header declares {declared} ({expected} bytes) but only {read} bytes follow: the file is truncated.");
            read += n;
        }
        if (Read(path, stream, new byte[1]) != 0)
            throw new InvalidDataException($"'{path}': the header declares {declared} ({expected} bytes) but the file is longer than declared.");
        return payload;
    }

    /// <summary>
    /// The file, decompressed on the fly when it starts with gzip's magic bytes, and the most payload bytes it can
    /// hold: its length past the shortest header, or for gzip that times deflate's largest expansion (1032:1).
    /// </summary>
    private static Stream Open(string path, out long capacity)
    {
        var file = File.OpenRead(path);
        Span<byte> magic = stackalloc byte[2];
        int n = file.Read(magic);
        file.Position = 0;
        bool gzip = n == 2 && magic[0] == 0x1F && magic[1] == 0x8B;
        capacity = gzip ? file.Length * DeflateMaxRatio : Math.Max(0, file.Length - 8);
        return gzip ? new GZipStream(file, CompressionMode.Decompress) : file;
    }

    private static int Read(string path, Stream stream, Span<byte> buffer)
    {
        try
        {
            return stream.Read(buffer);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"'{path}': the gzip stream is corrupt ({e.Message}).", e);
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException($"'{path}': the gzip stream is truncated.", e);
        }
    }

    private static byte[] ReadHeader(string path, Stream stream, int magic, int headerLength, string kind)
    {
        var header = new byte[headerLength];
        int read = 0;
        while (read < headerLength)
        {
            int n = Read(path, stream, header.AsSpan(read));
            if (n == 0) throw new InvalidDataException($"'{path}': {read} bytes is too short for an IDX header ({headerLength} bytes).");
            read += n;
        }
        int actual = BinaryPrimitives.ReadInt32BigEndian(header);
        if (actual != magic)
            throw new InvalidDataException($"'{path}': magic number 0x{actual:X8}, expected 0x{magic:X8} for {kind}.");
        return header;
    }

    private static int ReadDimension(string path, byte[] bytes, int offset, string what)
    {
        int value = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(offset));
        if (value < 0) throw new InvalidDataException($"'{path}': the {what} is {value}.");
        return value;
    }
}
