using Ml.Cnn.Backends;
using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Core;
using Ml.Cnn.Data;
using Ml.Cnn.Gpu;
using Ml.Cnn.Layers;
using Ml.Cnn.Networks;
using Ml.Cnn.Tensors;
using Ml.Cnn.Tests.Training;
using Ml.Cnn.Training;
using Ml.Cnn.Zoo;
using Xunit;
using Ml.Cnn.Tests.Support;
using static Ml.Cnn.Tests.Support.Numerics;

namespace Ml.Cnn.Tests.Gpu;

/// <summary>
/// Whole networks on the GPU backend, its kernels run by ILGPU's CPU accelerator: they train as on the CPU backend,
/// with no operation left to the host fallback, and hold their device memory flat.
/// </summary>
[Collection(TestBackends.GpuCollection)]
public sealed class GpuTrainingTests
{
    private static TrainerOptions Options(int epochs) => new()
    {
        Epochs = epochs, BatchSize = 16, LearningRate = 0.02f, Momentum = 0.9f, Seed = 5, ValidationFraction = 0,
    };

    [Fact]
    public void LeNet5TrainedOnTheCpuAcceleratorEqualsTheCpuBackendsRun()
    {
        var data = TrainingData.Blobs(64, 11, size: 28);
        var gpu = (GpuBackend)TestBackends.Create("gpu-on-cpu");
        using var onGpu = Network.Create(ModelZoo.LeNet5(4), gpu, data.ItemShape, seed: 3);
        using var onCpu = Network.Create(ModelZoo.LeNet5(4), new CpuBackend(1), data.ItemShape, seed: 3);

        var gpuRun = Trainer.Train(onGpu, data, Options(2)); // 8 steps
        var cpuRun = Trainer.Train(onCpu, data, Options(2));

        Assert.Empty(gpu.Fallbacks);
        Assert.Equal(cpuRun.History.Select(h => (double)h.TrainingLoss), gpuRun.History.Select(h => (double)h.TrainingLoss),
            new ToleranceComparer(1e-4));
        foreach (var ((name, cpuParameter), gpuParameter) in onCpu.NamedParameters.Zip(onGpu.Parameters))
            AssertClose(cpuParameter.Value.ToArray(), gpuParameter.Value.ToArray(), $"LeNet-5 {name} after 8 steps", rel: 1e-4, abs: 1e-4);
        Assert.NotEqual(Network.Create(ModelZoo.LeNet5(4), new CpuBackend(1), data.ItemShape, seed: 3).Parameters.First().Value.ToArray(),
            onGpu.Parameters.First().Value.ToArray());
    }

    [Fact]
    public void TrainingReadsTheDeviceOncePerWindowOfBatchesNotEveryBatch()
    {
        // 64 items in batches of 2: 32 steps, each of which used to read its labels, its loss and its scores.
        var data = TrainingData.Blobs(64, 12, size: 12);
        using var gpu = TestBackends.NewGpu();
        using var network = Network.Create(NetworkBuilder.Sequential(new Conv2d(4, 3, padding: 1), new Relu(), new GlobalAvgPool(),
            new Dense(4)), gpu, data.ItemShape, seed: 1);
        var progress = new List<TrainingProgress>();
        long before = gpu.HostReads;
        var run = Trainer.Train(network, data, new TrainerOptions
        {
            Epochs = 1, BatchSize = 2, LearningRate = 0.02f, ValidationFraction = 0, Seed = 2, Progress = new SynchronousProgress(progress.Add),
        });
        long reads = gpu.HostReads - before;
        // Two windows of 16 batches' losses and right answers, and the end of the epoch's one norm over the weights.
        Assert.Equal(32 / MetricsWindow.DeviceBatches + 1, reads);
        // Every batch is still counted and reported, in order.
        Assert.Equal(Enumerable.Range(1, 32), progress.Where(p => !p.EpochEnd).Select(p => p.Batch));
        Assert.InRange(run.History[0].TrainingAccuracy, 0.0, 1.0);
    }

    /// <summary>
    /// One of each family of the zoo (every layer kind the zoo builds: convolutions plain, grouped, depthwise and
    /// transposed, batch and local response norms, every pooling, concatenation, residual sums, upsampling, dropout),
    /// DenseNet at a small growth and depth to keep the suite fast; VGG adds no layer kind to these.
    /// </summary>
    public static TheoryData<string, int, int> ZooFamilies => new()
    {
        { "mlp", 1, 28 }, { "reference-cnn", 1, 28 }, { "alexnet", 3, 64 }, { "googlenet", 3, 32 },
        { "resnet18", 3, 32 }, { "resnet20", 3, 16 }, { "densenet", 3, 32 }, { "mobilenet-v2", 3, 32 },
        { "seg:fcn8s", 3, 32 }, { "seg:unet", 3, 32 }, { "det:centernet", 3, 32 },
    };

    [Theory, MemberData(nameof(ZooFamilies))]
    public void ZooNetworksRunWithoutFallingBackAndScoreAsOnTheCpu(string name, int channels, int size)
    {
        NetworkBuilder Definition() => name.Split(':') switch
        {
            ["seg", var n] => ModelZoo.GetSegmentation(n, 3),
            ["det", var n] => ModelZoo.GetDetection(n, 3),
            ["densenet"] => ModelZoo.DenseNet(8, [2, 2], 16, 5),
            _ => ModelZoo.Get(name, 5),
        };
        var gpu = (GpuBackend)TestBackends.Create("gpu-on-cpu");
        var shape = new TensorShape(channels, size, size);
        using var onGpu = Network.Create(Definition(), gpu, shape, seed: 9);
        using var onCpu = Network.Create(Definition(), new CpuBackend(1), shape, seed: 9);
        var rng = new Rng(4);
        var x = RandomNormal(rng, 2 * shape.Length);

        // Scoring compares outputs: in evaluation mode batch norm is affine, so rounding differences stay small
        // (in training mode, batch statistics of two items amplify them beyond any fixed tolerance).
        var yCpu = onCpu.Forward(TensorOf(onCpu.Backend, x, 2, channels, size, size), training: false);
        var yGpu = onGpu.Forward(TensorOf(gpu, x, 2, channels, size, size), training: false);
        AssertClose(yCpu.ToArray(), yGpu.ToArray(), $"{name} scores", rel: 1e-3, abs: 1e-4);

        // A training step's forward and backward run every backward kernel.
        var y = onGpu.Forward(TensorOf(gpu, x, 2, channels, size, size), training: true);
        onGpu.Backward(TensorOf(gpu, RandomNormal(rng, y.Length), [.. y.Shape.Dims]));
        foreach (var p in onGpu.Parameters.Where(p => p.Trainable))
            Assert.True(double.IsFinite(gpu.SumOfSquares(p.Gradient)), $"{name} {p.Name} gradient is not finite");
        Assert.Empty(gpu.Fallbacks);
    }

    [Theory]
    [InlineData("convnext")] // layer normalization over channels, GELU and 7×7 depthwise convolutions
    [InlineData("vit")]      // class token, position embedding, multi-head self-attention
    public void AnImportedTransformerEraNetworkGivesPyTorchsOutputsAndTrainsWithoutFallingBack(string family)
    {
        string Fixture(string file) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "torchvision", file);
        var gpu = (GpuBackend)TestBackends.Create("gpu-on-cpu");
        using var network = Ml.Cnn.Onnx.OnnxImporter.Import(Fixture(family + ".onnx"), gpu);
        var x = TensorOf(gpu, ReadFloats(Fixture(family + ".x.f32")), [2, .. network.InputShape.Dims]);
        AssertClose(ReadFloats(Fixture(family + ".y.f32")), network.Forward(x, training: false).ToArray(), $"{family} output",
            rel: 1e-4, abs: 1e-4);
        var y = network.Forward(x, training: true);
        network.Backward(TensorOf(gpu, RandomNormal(new Rng(2), y.Length), [.. y.Shape.Dims]));
        Assert.True(double.IsFinite(gpu.SumOfSquares(network.Parameters.Select(p => p.Gradient).ToArray())));
        Assert.Empty(gpu.Fallbacks);
    }

    [Fact]
    public void AnOperationTakenAwayFromTheGpuIsCountedAndGivesTheSameTraining()
    {
        // A small fully convolutional net that upsamples, trained on the kernels and with upsampling forced onto the host.
        var rng = new Rng(8);
        var features = RandomNormal(rng, 32 * 8 * 8);
        var masks = Enumerable.Range(0, 32 * 8 * 8).Select(i => (float)((i / 8 % 8 + i % 8) / 5)).ToArray();
        var data = new ImageDataset(new TensorShape(1, 8, 8), features, masks, targetLength: 64, classCount: 3);
        var losses = new List<float>();
        foreach (bool takenAway in new[] { false, true })
        {
            using var gpu = TestBackends.NewGpu();
            if (takenAway) gpu.HostOperations.UnionWith(["UpsampleForward", "UpsampleBackward"]);
            using var network = Network.Create(NetworkBuilder.Sequential(
                new Conv2d(4, 3, padding: 1), new Relu(), new MaxPool2d(2), new Upsample(2, UpsampleMode.Bilinear), new Conv2d(3, 1)),
                gpu, data.ItemShape, seed: 2);
            var run = Trainer.Train(network, data, new TrainerOptions { Epochs = 1, BatchSize = 4, LearningRate = 0.05f, ValidationFraction = 0 });
            losses.Add(run.History[^1].TrainingLoss);
            if (takenAway)
            {
                Assert.Equal(8, gpu.Fallbacks["UpsampleForward"]);
                Assert.Equal(8, gpu.Fallbacks["UpsampleBackward"]);
                Assert.Equal(2, gpu.Fallbacks.Count);
            }
            else Assert.Empty(gpu.Fallbacks);
        }
        Assert.Equal(losses[0], losses[1], 1e-5f);
    }

    [Fact]
    public void TwoHundredStepsHoldDeviceMemoryFlatAndDisposingReturnsIt()
    {
        var data = TrainingData.Blobs(400, 3); // 8×8 images, 50 batches of 8 an epoch
        using var gpu = TestBackends.NewGpu();
        var network = Network.Create(NetworkBuilder.Sequential(
            new Conv2d(4, 3, padding: 1), new BatchNorm(), new Relu(), new MaxPool2d(2), new Dropout(0.2f), new Dense(4)),
            gpu, data.ItemShape, seed: 1);

        var (memory, tensors) = (new List<long>(), new List<long>());
        var options = new TrainerOptions
        {
            Epochs = 4, BatchSize = 8, LearningRate = 0.02f, Momentum = 0.9f, ValidationFraction = 0, // 4 × 50 = 200 steps
            Progress = new Progress(p =>
            {
                if (p.EpochEnd) return;
                memory.Add(gpu.DeviceMemoryInUse);
                tensors.Add(gpu.DeviceMemoryInUse - gpu.ScratchMemoryInUse);
            }),
        };
        Trainer.Train(network, data, options);
        Assert.Equal(200, memory.Count);
        // Tensors are all allocated by the first step; scratch is sized within the first epoch (the end-of-epoch
        // checks add theirs); after that nothing more is allocated.
        Assert.All(tensors.Skip(1), t => Assert.Equal(tensors[1], t));
        Assert.All(memory.Skip(50), m => Assert.Equal(memory[50], m));
        network.Dispose();
        // The network, its optimizer state and the batches are released; the backend keeps only its scratch.
        Assert.True(gpu.ScratchMemoryInUse > 0);
        Assert.Equal(gpu.ScratchMemoryInUse, gpu.DeviceMemoryInUse);
    }

    private sealed class ToleranceComparer(double tolerance) : IEqualityComparer<double>
    {
        public bool Equals(double a, double b) => Math.Abs(a - b) <= tolerance * Math.Max(1, Math.Abs(a));
        public int GetHashCode(double value) => 0;
    }

    private sealed class Progress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
