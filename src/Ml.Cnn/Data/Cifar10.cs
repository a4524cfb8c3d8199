using Ml.Cnn.Tensors;

namespace Ml.Cnn.Data;

/// <summary>
/// Reads CIFAR-10's binary batches (data_batch_1.bin … test_batch.bin): records of one label byte followed by
/// 3×32×32 pixel bytes in CHW order. Malformed files raise <see cref="InvalidDataException"/>.
/// </summary>
public static class Cifar10
{
    private const int ImageBytes = 3 * 32 * 32, RecordBytes = ImageBytes + 1;

    /// <summary>CIFAR-10's class names, in label order.</summary>
    public static IReadOnlyList<string> Classes { get; } = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

    /// <summary>Loads one or more batch files as [3, 32, 32] items with pixels multiplied by <paramref name="scale"/>.</summary>
    public static ImageDataset Load(IEnumerable<string> files, float scale = 1f / 255)
    {
        var items = new ItemStore(ImageBytes);
        var item = new float[ImageBytes];
        var labels = new List<float>();
        foreach (var file in files)
        {
            var bytes = File.ReadAllBytes(file);
            if (bytes.Length == 0 || bytes.Length % RecordBytes != 0)
                throw new InvalidDataException($"'{file}': {bytes.Length} bytes is not a whole number of CIFAR-10 records ({RecordBytes} bytes each: a label and a 3x32x32 image); the file is truncated or not a CIFAR-10 batch.");
            for (int offset = 0; offset < bytes.Length; offset += RecordBytes)
            {
                byte label = bytes[offset];
                if (label >= Classes.Count)
                    throw new InvalidDataException($"'{file}': record {offset / RecordBytes} has label {label}; CIFAR-10 labels are 0–9.");
                labels.Add(label);
                for (int i = 0; i < ImageBytes; i++) item[i] = bytes[offset + 1 + i] * scale;
                items.Add(item);
            }
        }
        return new ImageDataset(new TensorShape(3, 32, 32), items, [.. labels], classCount: Classes.Count);
    }
}
