using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Layers;
using Ml.Cnn.Losses;
using Ml.Cnn.Tensors;
using Xunit;
using static Ml.Cnn.Tests.Support.Numerics;

namespace Ml.Cnn.Tests.Operators;

public sealed class L2RegularizationTests
{
    [Fact]
    public void AddsLambdaTimesWeightsToDecayingGradientsAndReturnsHalfLambdaSumOfSquares()
    {
        var backend = new CpuBackend(1);
        var weight = new Parameter("weight", TensorOf(backend, [1, -2, 3], 3), decays: true);
        var bias = new Parameter("bias", TensorOf(backend, [5], 1), decays: false);
        weight.Gradient.CopyFrom([0.5f, 0.5f, 0.5f]);
        float penalty = L2Regularization.Apply([weight, bias], 0.1f);
        Assert.Equal(0.5f * 0.1f * 14, penalty, 6);
        AssertClose([0.6f, 0.3f, 0.8f], weight.Gradient.ToArray(), "weight gradient");
        Assert.Equal([0f], bias.Gradient.ToArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => L2Regularization.Apply([weight], -1));
    }
}
