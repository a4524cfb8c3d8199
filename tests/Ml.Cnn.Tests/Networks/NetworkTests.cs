using Ml.Cnn.Backends;
using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Core;
using Ml.Cnn.Layers;
using Ml.Cnn.Losses;
using Ml.Cnn.Networks;
using Ml.Cnn.Tensors;
using Ml.Cnn.Tests.Support;
using Ml.Cnn.Zoo;
using Xunit;
using static Ml.Cnn.Tests.Support.Numerics;

namespace Ml.Cnn.Tests.Networks;

public sealed class NetworkTests
{
    private readonly IBackend _backend = new CpuBackend(2);

    [Fact]
    public void LeNet5NetworkMatchesPyTorch()
    {
        var f = TorchFixture.Load("net_lenet5");
        var network = Network.Create(ModelZoo.LeNet5(10), _backend, new TensorShape(1, 28, 28), seed: 1);
        // PyTorch Sequential indices of the layers with parameters, in order.
        var torchIndices = new[] { 0, 3, 7, 9, 11 };
        var layers = network.Nodes.Select(n => n.Layer).OfType<Layer>().Where(l => l.Parameters.Count > 0).ToArray();
        for (int i = 0; i < layers.Length; i++)
            foreach (var p in layers[i].Parameters) p.Value.CopyFrom(f.Values($"param_{torchIndices[i]}_{p.Name}"));

        var logits = network.Forward(TensorOf(_backend, f.Values("x"), f.Shape("x")), training: true);
        AssertClose(f.Values("logits"), logits.ToArray(), "logits");
        var gradient = _backend.Allocate(logits.Shape);
        new SoftmaxCrossEntropyLoss().Compute(logits, TensorOf(_backend, f.Values("labels"), 4), gradient);
        network.Backward(gradient);
        for (int i = 0; i < layers.Length; i++)
            foreach (var p in layers[i].Parameters)
                AssertClose(f.Values($"grad_{torchIndices[i]}_{p.Name}"), p.Gradient.ToArray(), $"grad_{torchIndices[i]}_{p.Name}");
    }

    public static TheoryData<string> Backends() => new() { "reference", "cpu" };

    [Theory, MemberData(nameof(Backends))]
    public void ASmallerBatchAfterALargerOneGivesWhatAFreshNetworkGives(string backendName)
    {
        // Smaller batches reuse the front of the larger batch's buffers: nothing may read past a tensor's own length
        // or depend on the buffers starting at zero.
        IBackend Backend() => backendName == "cpu" ? new CpuBackend(2) : new Ml.Cnn.Backends.Reference.ReferenceBackend();
        NetworkBuilder Definition()
        {
            var b = new NetworkBuilder();
            var stem = b.Chain(b.Input, new Conv2d(4, 3, padding: 1), new BatchNorm(), new Relu());
            var branch = b.Chain(stem, new Conv2d(4, 3, padding: 1), new Elu());
            b.Chain(b.Merge(new Add(), stem, branch), new MaxPool2d(2), new LocalResponseNorm(3, 0.01f, 0.75f, 2f), new Flatten(), new Dense(5));
            return b;
        }
        var reused = Network.Create(Definition(), Backend(), new TensorShape(2, 6, 6), seed: 8);
        var fresh = Network.Create(Definition(), Backend(), new TensorShape(2, 6, 6), seed: 8);
        var rng = new Rng(2);
        Step(reused, RandomNormal(rng, 9 * 72), 9, [0, 1, 2, 3, 4, 0, 1, 2, 3]);
        var x = RandomNormal(rng, 4 * 72);
        float[] labels = [4, 3, 2, 1];
        var (reusedOutput, reusedGradients) = Step(reused, x, 4, labels);
        var (freshOutput, freshGradients) = Step(fresh, x, 4, labels);
        Assert.Equal(freshOutput, reusedOutput);
        Assert.Equal(freshGradients, reusedGradients);

        static (float[] Output, float[][] Gradients) Step(Network network, float[] x, int n, float[] labels)
        {
            var output = network.Forward(TensorOf(network.Backend, x, n, 2, 6, 6), training: true);
            var gradient = network.Backend.Allocate(output.Shape);
            new SoftmaxCrossEntropyLoss().Compute(output, TensorOf(network.Backend, labels, n), gradient);
            network.Backward(gradient);
            return (output.ToArray(), network.Parameters.Select(p => p.Gradient.ToArray()).ToArray());
        }
    }

    [Fact]
    public void GradientsThroughBranchesAndResidualsMatchFiniteDifferences()
    {
        // A DAG with fan-out: the stem feeds two branches, a concat, and a residual add around them.
        var b = new NetworkBuilder();
        var stem = b.Chain(b.Input, new Conv2d(4, 3, padding: 1), new Tanh());
        var left = b.Add(new Conv2d(2, 1), stem);
        var right = b.Chain(stem, new Conv2d(2, 3, padding: 1), new Sigmoid());
        var joined = b.Merge(new Concat(), left, right);
        var residual = b.Merge(new Add(), joined, stem);
        b.Chain(residual, new BatchNorm(), new GlobalAvgPool(), new Dense(3));
        var network = Network.Create(b, new CpuBackend(1), new TensorShape(2, 5, 5), seed: 3);

        var rng = new Rng(4);
        var x = TensorOf(network.Backend, RandomNormal(rng, 3 * 2 * 25), 3, 2, 5, 5);
        var labels = TensorOf(network.Backend, [0, 2, 1], 3);
        var loss = new SoftmaxCrossEntropyLoss();
        var outputGradient = network.Backend.Allocate(new TensorShape(3, 3));
        double Objective()
        {
            var scratch = network.Backend.Allocate(new TensorShape(3, 3));
            return loss.Compute(network.Forward(x, true), labels, scratch);
        }
        loss.Compute(network.Forward(x, true), labels, outputGradient);
        network.Backward(outputGradient);
        foreach (var p in network.Parameters)
        {
            var analytic = p.Gradient.ToArray();
            var values = p.Value.ToArray();
            for (int i = 0; i < values.Length; i++)
            {
                float original = values[i];
                values[i] = original + 1e-2f; p.Value.CopyFrom(values);
                double plus = Objective();
                values[i] = original - 1e-2f; p.Value.CopyFrom(values);
                double minus = Objective();
                values[i] = original; p.Value.CopyFrom(values);
                double numeric = (plus - minus) / 2e-2;
                Assert.True(Math.Abs(numeric - analytic[i]) <= 2e-3 + 2e-2 * Math.Abs(numeric),
                    $"{p.Name}[{i}]: analytic {analytic[i]}, finite difference {numeric}");
            }
        }
    }

    [Fact]
    public void ForwardToANamedLayerReturnsItsActivations()
    {
        var network = Network.Create(ModelZoo.LeNet5(10), _backend, new TensorShape(1, 28, 28), seed: 1);
        var x = _backend.Allocate(new TensorShape(2, 1, 28, 28));
        Assert.Equal(new TensorShape(2, 84), network.ForwardTo(x, false, "dense2").Shape);
        Assert.Throws<KeyNotFoundException>(() => network.ForwardTo(x, false, "nope"));
    }

    [Fact]
    public void WrongInputShapeNamesBothShapes()
    {
        var network = Network.Create(ModelZoo.LeNet5(10), _backend, new TensorShape(1, 28, 28), seed: 1);
        var error = Assert.Throws<ArgumentException>(() => network.Forward(_backend.Allocate(new TensorShape(2, 3, 28, 28)), false));
        Assert.Contains("[N, 1, 28, 28]", error.Message);
        Assert.Contains("[2, 3, 28, 28]", error.Message);
    }

    [Fact]
    public void SameSeedSameWeights()
    {
        float[] Weights(ulong seed) => Network.Create(ModelZoo.ResNet(18, 10), new CpuBackend(1), new TensorShape(3, 32, 32), seed)
            .Parameters.First().Value.ToArray();
        Assert.Equal(Weights(7), Weights(7));
        Assert.NotEqual(Weights(7), Weights(8));
    }
}
