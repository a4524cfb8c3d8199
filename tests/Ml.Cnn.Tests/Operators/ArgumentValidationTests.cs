using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Core;
using Ml.Cnn.Layers;
using Ml.Cnn.Losses;
using Ml.Cnn.Optimizers;
using Ml.Cnn.Tensors;
using Xunit;
using static Ml.Cnn.Tests.Support.Numerics;

namespace Ml.Cnn.Tests.Operators;

/// <summary>Bad arguments fail early with an ArgumentException that names the layer and both shapes or values.</summary>
public sealed class ArgumentValidationTests
{
    private readonly CpuBackend _backend = new(1);

    private ArgumentException BuildFails(Layer layer, params int[] itemShape) =>
        Assert.ThrowsAny<ArgumentException>(() => layer.Build(_backend, new TensorShape(itemShape), new Rng(1)));

    [Fact]
    public void KernelLargerThanPaddedInput()
    {
        var error = BuildFails(new Conv2d(4, 7, padding: 1) { Name = "conv1" }, 3, 4, 4);
        Assert.Contains("conv1", error.Message);
        Assert.Contains("7x7", error.Message);
        Assert.Contains("6x6", error.Message);
        Assert.Contains("[3, 4, 4]", error.Message);
    }

    [Fact]
    public void ZeroStride()
    {
        Assert.Contains("stride must be positive", BuildFails(new Conv2d(4, 3, stride: 0) { Name = "c" }, 3, 8, 8).Message);
        Assert.Contains("stride must be positive", BuildFails(new MaxPool2d(2, stride: 0) { Name = "p" }, 3, 8, 8).Message);
    }

    [Fact]
    public void NegativePadding()
    {
        Assert.Contains("padding must not be negative, got (-1, -1)", BuildFails(new Conv2d(4, 3, padding: -1), 3, 8, 8).Message);
        Assert.Contains("padding must not be negative", BuildFails(new AvgPool2d(3, padding: -1), 3, 8, 8).Message);
    }

    [Fact]
    public void GroupsThatDoNotDivideChannels()
    {
        var error = BuildFails(new Conv2d(6, 3, groups: 4) { Name = "grouped" }, 6, 8, 8);
        Assert.Contains("grouped", error.Message);
        Assert.Contains("groups (4)", error.Message);
    }

    [Fact]
    public void WrongRank()
    {
        var error = BuildFails(new Conv2d(4, 3) { Name = "conv" }, 10);
        Assert.Contains("[C, H, W]", error.Message);
        Assert.Contains("[10]", error.Message);
    }

    [Fact]
    public void MismatchedInputAtForward()
    {
        var conv = new Conv2d(4, 3) { Name = "conv2" };
        conv.Build(_backend, new TensorShape(3, 8, 8), new Rng(1));
        var wrong = _backend.Allocate(new TensorShape(2, 3, 9, 8));
        var error = Assert.ThrowsAny<ArgumentException>(() => conv.Forward(wrong, true));
        Assert.Contains("conv2", error.Message);
        Assert.Contains("[N, 3, 8, 8]", error.Message);
        Assert.Contains("[2, 3, 9, 8]", error.Message);
    }

    [Fact]
    public void MismatchedGradientAtBackward()
    {
        var dense = new Dense(5) { Name = "fc" };
        dense.Build(_backend, new TensorShape(7), new Rng(1));
        dense.Forward(_backend.Allocate(new TensorShape(2, 7)), true);
        var error = Assert.ThrowsAny<ArgumentException>(() => dense.Backward(_backend.Allocate(new TensorShape(2, 6))));
        Assert.Contains("fc", error.Message);
        Assert.Contains("[N, 5]", error.Message);
    }

    [Fact]
    public void MergeLayersRejectIncompatibleBranches()
    {
        var concat = new Concat { Name = "mixed" };
        var error = Assert.ThrowsAny<ArgumentException>(() => concat.Build(_backend, [new TensorShape(3, 8, 8), new TensorShape(2, 7, 8)]));
        Assert.Contains("mixed", error.Message);
        Assert.Contains("[2, 7, 8]", error.Message);
        Assert.ThrowsAny<ArgumentException>(() => new Add().Build(_backend, [new TensorShape(3, 8, 8), new TensorShape(4, 8, 8)]));
    }

    [Fact]
    public void LossesRejectBadTargets()
    {
        var scores = TensorOf(_backend, new float[12], 3, 4);
        var grad = _backend.Allocate(scores.Shape);
        var outOfRange = Assert.ThrowsAny<ArgumentException>(() => new SoftmaxCrossEntropyLoss().Compute(scores, TensorOf(_backend, [0, 4, 1], 3), grad));
        Assert.Contains("label 1 is 4", outOfRange.Message);
        Assert.Contains("[0, 3]", outOfRange.Message);
        Assert.ThrowsAny<ArgumentException>(() => new MulticlassHingeLoss().Compute(scores, TensorOf(_backend, [0, 1], 2), grad));
        Assert.ThrowsAny<ArgumentException>(() => new MeanSquaredErrorLoss().Compute(scores, TensorOf(_backend, new float[11], 11), grad));
    }

    [Fact]
    public void OptimizerHyperparameters()
    {
        Assert.ThrowsAny<ArgumentException>(() => new Sgd([], 0));
        Assert.ThrowsAny<ArgumentException>(() => new Sgd([], 0.1f, momentum: 1.5f));
        Assert.ThrowsAny<ArgumentException>(() => new Sgd([], 0.1f, nesterov: true));
        Assert.ThrowsAny<ArgumentException>(() => new Adam([], weightDecay: -1));
        Assert.Contains("rate must be in [0, 1), got 1", BuildFails(new Dropout(1f), 4).Message);
    }
}
