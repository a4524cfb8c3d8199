using Ml.Cnn.Backends;
using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Backends.Reference;
using Ml.Cnn.Core;
using Ml.Cnn.Tensors;
using Xunit;
using Ml.Cnn.Tests.Support;
using static Ml.Cnn.Tests.Support.Numerics;

namespace Ml.Cnn.Tests.Kernels;

/// <summary>Convolution kernels keep per-thread scratch between calls: nothing a call leaves there may reach a later one.</summary>
public sealed class ConvolutionScratchTests
{
    [Fact]
    public void WeightGradientReadsNothingLeftInItsScratchByAnEarlierCall()
    {
        // NaN images leave NaN in the thread's padded-image and transposed-gradient scratch; a later call on smaller
        // padded images must not pick any of it up.
        var cpu = new CpuBackend(1);
        var reference = new ReferenceBackend();
        // Unpadded 13×21 images take the scratch the padded 11×19 ones will, and start with NaN rows, not zero borders.
        var large = new ConvGeometry(8, 5, 13, 21, 20, 3, 3, 1, 1, 0, 0);
        var small = new ConvGeometry(3, 5, 11, 19, 20, 3, 3, 1, 1, 1, 1);
        KernelSelection.AssertSelected("The direct weight gradient", DirectConvolution.FitsWeightGradient(small),
            DirectConvolution.AppliesToWeightGradient(small), DirectConvolution.Bits > 0);
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

    [Fact]
    public void WinogradReadsNothingLeftInItsScratchByAnEarlierCall()
    {
        // A wide NaN image fills the thread's tile and padding scratch with NaN; a later, narrower map's short
        // chunks of tiles and its padding must not pick any of it up.
        var cpu = new CpuBackend(1);
        var reference = new ReferenceBackend();
        var large = new ConvGeometry(2, 20, 12, 40, 20, 5, 5, 1, 1, 2, 2);
        var small = new ConvGeometry(3, 20, 7, 10, 20, 5, 5, 1, 1, 1, 1);
        KernelSelection.AssertSelected("Winograd (large map)", WinogradConvolution.Fits(large), WinogradConvolution.Applies(large), DirectConvolution.Bits > 0);
        KernelSelection.AssertSelected("Winograd (small map)", WinogradConvolution.Fits(small), WinogradConvolution.Applies(small), DirectConvolution.Bits > 0);
        var poisoned = cpu.Allocate(new TensorShape(2, 20, 12, 40));
        cpu.Fill(poisoned, float.NaN);
        var weights = cpu.Allocate(new TensorShape(20, 20, 5, 5));
        cpu.Fill(weights, float.NaN);
        cpu.ConvForward(large, poisoned, weights, null, cpu.Allocate(new TensorShape(2, 20, 12, 40)));
        cpu.ConvBackwardWeights(large, poisoned, cpu.Allocate(new TensorShape(2, 20, 12, 40)), cpu.Allocate(new TensorShape(20, 20, 5, 5)), null);

        var rng = new Rng(6);
        float[] x = RandomNormal(rng, 3 * 20 * 7 * 10), w = RandomNormal(rng, 20 * 20 * 25), dy = RandomNormal(rng, 3 * 20 * 5 * 8);
        var expected = reference.Allocate(new TensorShape(3, 20, 5, 8));
        reference.ConvForward(small, TensorOf(reference, x, 3, 20, 7, 10), TensorOf(reference, w, 20, 20, 5, 5), null, expected);
        var actual = cpu.Allocate(new TensorShape(3, 20, 5, 8));
        cpu.ConvForward(small, TensorOf(cpu, x, 3, 20, 7, 10), TensorOf(cpu, w, 20, 20, 5, 5), null, actual);
        AssertClose(expected, actual, "forward after a NaN call", abs: 1e-3);
        var expectedGradient = reference.Allocate(new TensorShape(20, 20, 5, 5));
        reference.ConvBackwardWeights(small, TensorOf(reference, x, 3, 20, 7, 10), TensorOf(reference, dy, 3, 20, 5, 8), expectedGradient, null);
        var actualGradient = cpu.Allocate(new TensorShape(20, 20, 5, 5));
        cpu.ConvBackwardWeights(small, TensorOf(cpu, x, 3, 20, 7, 10), TensorOf(cpu, dy, 3, 20, 5, 8), actualGradient, null);
        AssertClose(expectedGradient, actualGradient, "weight gradient after a NaN call", abs: 1e-3);
    }
}
