using Ml.Cnn.Core;
using Ml.Cnn.Data;
using Ml.Cnn.Tensors;

namespace Ml.Cnn.Tests.Training;

/// <summary>Small synthetic image sets whose classes a tiny CNN can learn in seconds.</summary>
internal static class TrainingData
{
    /// <summary>Class c has a bright 3×3 blob in quadrant c, plus noise.</summary>
    public static ImageDataset Blobs(int count, ulong seed, int size = 8)
    {
        var rng = new Rng(seed);
        var features = new float[count * size * size];
        var labels = new float[count];
        for (int i = 0; i < count; i++)
        {
            int label = i % 4;
            labels[i] = label;
            var image = features.AsSpan(i * size * size, size * size);
            for (int p = 0; p < image.Length; p++) image[p] = (float)(rng.NextDouble() * 0.3);
            int y0 = (label / 2) * size / 2 + rng.NextInt(size / 2 - 2), x0 = (label % 2) * size / 2 + rng.NextInt(size / 2 - 2);
            for (int dy = 0; dy < 3; dy++)
                for (int dx = 0; dx < 3; dx++) image[(y0 + dy) * size + x0 + dx] += 1;
        }
        return new ImageDataset(new TensorShape(1, size, size), features, labels, classCount: 4);
    }

    /// <summary>Pure noise with random labels: only memorization fits it.</summary>
    public static ImageDataset Noise(int count, ulong seed)
    {
        var rng = new Rng(seed);
        var features = Enumerable.Range(0, count * 64).Select(_ => (float)rng.NextGaussian()).ToArray();
        var labels = Enumerable.Range(0, count).Select(_ => (float)rng.NextInt(4)).ToArray();
        return new ImageDataset(new TensorShape(1, 8, 8), features, labels, classCount: 4);
    }
}
