using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Core;
using Ml.Cnn.Data;
using Ml.Cnn.Training;
using Xunit;

namespace Ml.Cnn.Tests.Training;

public sealed class AugmentationAndScheduleTests
{
    // A 1×3×3 image:  1 2 3 / 4 5 6 / 7 8 9
    private static float[] Image() => [1, 2, 3, 4, 5, 6, 7, 8, 9];

    [Fact]
    public void PrefetchedBatchesAreTheBatchesAssembledOneAfterAnother()
    {
        // What the trainer does (fill the next batch in the background while one trains) against one batch after another:
        // the same augmented values, the same targets and the same random draws, so the same model.
        var data = TrainingData.Blobs(50, 3, size: 8);
        var augmentation = new Augmentation { HorizontalFlip = true, CropPadding = 2 };
        var order = Enumerable.Range(0, 50).Reverse().ToArray();
        var (inline, prefetched) = (new Rng(7), new Rng(7));
        using var one = new BatchAssembler(data, 16, null, augmentation, new CpuBackend(1));
        using var other = new BatchAssembler(data, 16, null, augmentation, new CpuBackend(1));
        var (x, y) = other.Assemble(order.AsSpan(0, 16), prefetched);
        for (int start = 0; start < 50; start += 16)
        {
            int count = Math.Min(16, 50 - start);
            var (expectedX, expectedY) = one.Assemble(order.AsSpan(start, count), inline);
            if (start > 0) (x, y) = other.UploadPrefetched();
            if (start + 16 < 50) other.Prefetch(order.AsMemory(start + 16, Math.Min(16, 50 - start - 16)), prefetched);
            Assert.Equal(expectedX.ToArray(), x.ToArray());
            Assert.Equal(expectedY.ToArray(), y.ToArray());
            Assert.Equal(one.HostTargets(count).ToArray(), other.HostTargets(count).ToArray());
        }
        Assert.Equal(inline.GetState(), prefetched.GetState());
    }

    [Fact]
    public void Flips()
    {
        var image = Image();
        Augmentation.FlipHorizontal(image, 1, 3, 3);
        Assert.Equal([3f, 2, 1, 6, 5, 4, 9, 8, 7], image);
        image = Image();
        Augmentation.FlipVertical(image, 1, 3, 3);
        Assert.Equal([7f, 8, 9, 4, 5, 6, 1, 2, 3], image);
    }

    [Fact]
    public void ShiftIsACropOfThePaddedImage()
    {
        var output = new float[9];
        Augmentation.Shift(Image(), output, 1, 3, 3, dx: 1, dy: -1);
        Assert.Equal([0f, 4, 5, 0, 7, 8, 0, 0, 0], output);
    }

    [Fact]
    public void RotationByNinetyDegreesPermutesPixels()
    {
        var output = new float[9];
        Augmentation.Rotate(Image(), output, 1, 3, 3, 90);
        // Counter-clockwise: the right column becomes the top row.
        Assert.Equal([3f, 6, 9, 2, 5, 8, 1, 4, 7], output.Select(v => MathF.Round(v, 4)).ToArray());
        Augmentation.Rotate(Image(), output, 1, 3, 3, 0);
        Assert.Equal(Image(), output);
    }

    [Fact]
    public void BrightnessAndContrast()
    {
        var image = Image();
        Augmentation.AdjustBrightness(image, 0.5f);
        Assert.Equal([1.5f, 2.5f, 3.5f, 4.5f, 5.5f, 6.5f, 7.5f, 8.5f, 9.5f], image);
        image = Image();
        Augmentation.AdjustContrast(image, 1, 2);
        Assert.Equal([-3f, -1, 1, 3, 5, 7, 9, 11, 13], image);
    }

    [Fact]
    public void RandomAugmentationChangesEveryEpochButIsSeeded()
    {
        var augmentation = new Augmentation { HorizontalFlip = true, CropPadding = 1, MaxRotationDegrees = 10, Brightness = 0.1f, Contrast = 0.1f };
        float[] Draw(Rng rng)
        {
            var image = Image();
            augmentation.Apply(image, new float[9], 1, 3, 3, rng);
            return image;
        }
        var rng = new Rng(1);
        var first = Draw(rng);
        Assert.NotEqual(first, Draw(rng));
        Assert.Equal(first, Draw(new Rng(1)));
    }

    [Fact]
    public void ScheduleValues()
    {
        var step = new LearningRateSchedule { Kind = ScheduleKind.StepDecay, StepEpochs = 2, Factor = 0.1f };
        Assert.Equal(0.1f, step.Rate(0.1f, 1, 5, 10, 6), 6);
        Assert.Equal(0.01f, step.Rate(0.1f, 2, 0, 10, 6), 6);
        Assert.Equal(0.001f, step.Rate(0.1f, 5, 9, 10, 6), 6);

        var cosine = new LearningRateSchedule { Kind = ScheduleKind.Cosine, MinRate = 0 };
        Assert.Equal(1f, cosine.Rate(1, 0, 0, 10, 4), 6);
        Assert.Equal(0.5f, cosine.Rate(1, 2, 0, 10, 4), 6);
        Assert.Equal(0.5f * (1 + MathF.Cos(MathF.PI * 3.5f / 4)), cosine.Rate(1, 3, 5, 10, 4), 6);

        var warm = new LearningRateSchedule { WarmupEpochs = 2 };
        Assert.Equal(1f / 20, warm.Rate(1, 0, 0, 10, 5), 6);
        Assert.Equal(11f / 20, warm.Rate(1, 1, 0, 10, 5), 6);
        Assert.Equal(1f, warm.Rate(1, 2, 0, 10, 5), 6);

        var plateau = new LearningRateSchedule { Kind = ScheduleKind.ReduceOnPlateau, Patience = 1, Factor = 0.5f };
        foreach (var loss in new[] { 1.0f, 0.9f, 0.95f, 0.92f }) plateau.EndEpoch(loss);
        Assert.Equal(0.5f, plateau.Rate(1, 4, 0, 10, 10), 6);
        plateau.EndEpoch(0.91f);
        Assert.Equal(0.5f, plateau.Rate(1, 5, 0, 10, 10), 6);
    }

    [Fact]
    public void NormalizationUsesTrainingStatistics()
    {
        var data = new ImageDataset(new Ml.Cnn.Tensors.TensorShape(2, 1, 2), [0, 2, 10, 10, 4, 6, 30, 30], [0, 1], classCount: 2);
        var normalization = ChannelNormalization.Fit(data);
        Assert.Equal([3f, 20f], normalization.Mean);
        Assert.Equal(Math.Sqrt(5), normalization.Std[0], 4);
        Assert.Equal(10, normalization.Std[1], 4);
        var item = data.GetItem(0);
        normalization.Apply(item);
        Assert.Equal(-3 / Math.Sqrt(5), item[0], 4);
        Assert.Equal(-1, item[2], 4);
    }
}
