using Ml.Cnn.Backends;
using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Backends.Reference;
using Ml.Cnn.Core;
using Ml.Cnn.Tensors;
using Xunit;
using static Ml.Cnn.Tests.Support.Numerics;

namespace Ml.Cnn.Tests.Kernels;

public sealed class DirectConvolutionTests
{
    [Fact]
    public void WeightGradientReadsNothingLeftInItsScratchByAnEarlierCall()
    {
        // A full 8-image pass over NaN inputs leaves NaN in the thread's padded-image scratch; a later 3-image pass
        // must not pick any of it up past its last image.
        var cpu = new CpuBackend(1);
        var reference = new ReferenceBackend();
        // Unpadded 13×21 images take the scratch the padded 11×19 ones will, and start with NaN rows, not zero borders.
        var large = new ConvGeometry(8, 5, 13, 21, 20, 3, 3, 1, 1, 0, 0);
        var small = new ConvGeometry(3, 5, 11, 19, 20, 3, 3, 1, 1, 1, 1);
        Assert.True(DirectConvolution.AppliesToWeightGradient(small));
        var poisoned = cpu.Allocate(new TensorShape(8, 5, 13, 21));
        cpu.Fill(poisoned, float.NaN);
        cpu.ConvBackwardWeights(large, poisoned, cpu.Allocate(new TensorShape(8, 20, 11, 19)), cpu.Allocate(new TensorShape(20, 5, 3, 3)), null);

        var rng = new Rng(5);
        float[] x = RandomNormal(rng, 3 * 5 * 11 * 19), dy = RandomNormal(rng, 3 * 20 * 11 * 19);
        var expected = reference.Allocate(new TensorShape(20, 5, 3, 3));
        reference.ConvBackwardWeights(small, TensorOf(reference, x, 3, 5, 11, 19), TensorOf(reference, dy, 3, 20, 11, 19), expected, null);
        var actual = cpu.Allocate(new TensorShape(20, 5, 3, 3));
        cpu.ConvBackwardWeights(small, TensorOf(cpu, x, 3, 5, 11, 19), TensorOf(cpu, dy, 3, 20, 11, 19), actual, null);
        AssertClose(expected, actual, "weight gradient after a NaN pass", abs: 1e-3);
    }
}
