using Ml.Cnn.Backends;
using Ml.Cnn.Backends.Cpu;
using Ml.Cnn.Backends.Reference;
using Ml.Cnn.Core;
using Ml.Cnn.Tensors;
using Xunit;

namespace Ml.Cnn.Tests.Support;

public static class Numerics
{
    /// <summary>Asserts |actual − expected| ≤ abs + rel·|expected| elementwise, reporting the worst element.</summary>
    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what, double rel = 1e-4, double abs = 1e-5)
    {
        var e = expected.ToArray();
        AssertWithin(e, actual, i => abs + rel * Math.Abs(e[i]), what, $"(rel {rel}, abs {abs})");
    }

    public static void AssertClose(Tensor expected, Tensor actual, string what, double rel = 1e-4, double abs = 1e-5) =>
        AssertClose(expected.ToArray(), actual.ToArray(), what, rel, abs);

    /// <summary>
    /// Asserts |actual − expected| ≤ rel·bound + abs elementwise, bound[i] being Σ|term| of element i's sum: a sum's
    /// rounding error scales with that, not with the sum (which cancels towards zero), so this is the measure for
    /// algorithms that round differently from a plain sum, such as Winograd convolution.
    /// </summary>
    public static void AssertWithinBound(Tensor expected, Tensor actual, Tensor bound, string what, double rel, double abs = 1e-5)
    {
        var b = bound.ToArray();
        AssertWithin(expected.ToArray(), actual.ToArray(), i => abs + rel * b[i], what, $"(within {rel} of Σ|term|)");
    }

    /// <summary>Asserts |actual − expected| ≤ tolerance(i) elementwise (NaN never passes), reporting the worst element.</summary>
    private static void AssertWithin(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, Func<int, double> tolerance, string what, string rule)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: expected {expected.Length} values, got {actual.Length}.");
        int worst = -1;
        double worstExcess = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double diff = Math.Abs((double)actual[i] - expected[i]);
            double excess = diff - tolerance(i);
            if (excess > worstExcess || double.IsNaN(diff)) { worstExcess = double.IsNaN(diff) ? double.PositiveInfinity : excess; worst = i; }
        }
        Assert.True(worst < 0, worst < 0 ? "" : $"{what}: element {worst} is {actual[worst]}, expected {expected[worst]} {rule}.");
    }

    public static float[] RandomNormal(Rng rng, int count, double scale = 1)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = (float)(rng.NextGaussian() * scale);
        return values;
    }

    /// <summary>
    /// Distinct values at least <paramref name="spacing"/> apart and away from zero, shuffled: finite differences
    /// then never cross a ReLU kink or swap a max-pooling winner.
    /// </summary>
    public static float[] Spaced(Rng rng, int count, float spacing = 0.01f)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = (i - count / 2 + 0.5f) * spacing;
        rng.Shuffle(values.AsSpan());
        return values;
    }

    /// <summary>A fixture file of raw little-endian float32 values.</summary>
    public static float[] ReadFloats(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var values = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
        return values;
    }

    /// <summary>
    /// What a backend's loss (or count) adds into its slot: computed into slot 1 of three, whose neighbours must keep
    /// their values (a slot is written, not the tensor).
    /// </summary>
    public static float LossValue(IBackend backend, Action<Tensor, int> compute)
    {
        var slots = TensorOf(backend, [7, 0, 11], 3);
        compute(slots, 1);
        var values = slots.ToArray();
        Xunit.Assert.Equal(7, values[0]);
        Xunit.Assert.Equal(11, values[2]);
        return values[1];
    }

    public static Tensor TensorOf(IBackend backend, float[] values, params int[] shape)
    {
        var t = backend.Allocate(new TensorShape(shape));
        t.CopyFrom(values);
        return t;
    }
}

/// <summary>The backends every operator suite runs on.</summary>
public static class TestBackends
{
    /// <summary>
    /// The xUnit collection of every test class that uses a shared GPU backend: a backend is one stream with its own
    /// scratch, not safe to use from two threads at once, so those classes run one after another.
    /// </summary>
    public const string GpuCollection = "GPU backend on ILGPU's CPU accelerator";

    /// <summary>
    /// Set to a CUDA device's number, the GPU tests run on that device instead of ILGPU's CPU accelerator
    /// (<c>ML_CNN_TEST_CUDA_DEVICE=0 dotnet test --filter FullyQualifiedName~Gpu</c>, or eng/gpu where no SDK is).
    /// </summary>
    public const string CudaDeviceVariable = "ML_CNN_TEST_CUDA_DEVICE";

    private static int? CudaDevice => Environment.GetEnvironmentVariable(CudaDeviceVariable) is { Length: > 0 } id ? int.Parse(id) : null;

    // GPU backends, one of each for the whole run (their kernels compile once). On ILGPU's CPU accelerator: groups of 2
    // threads (fast), and ILGPU's default groups of 16, whose reduction trees and GEMM tiles are deeper.
    private static readonly Lazy<Ml.Cnn.Gpu.GpuBackend> GpuOnCpu = new(NewGpu);
    private static readonly Lazy<Ml.Cnn.Gpu.GpuBackend> GpuOnCpuWideGroups = new(() => CudaDevice is not null ? GpuOnCpu.Value
        : Ml.Cnn.Gpu.GpuBackend.CpuAccelerator(ILGPU.Runtime.CPU.CPUAcceleratorMode.Auto, null));

    /// <summary>A GPU backend of its own (for tests of memory): on the CUDA device when one is named, else on the CPU.</summary>
    public static Ml.Cnn.Gpu.GpuBackend NewGpu() =>
        CudaDevice is { } id ? Ml.Cnn.Gpu.GpuBackend.Cuda(id) : Ml.Cnn.Gpu.GpuBackend.CpuAccelerator();

    public static IBackend Create(string name) => name switch
    {
        "reference" => new ReferenceBackend(),
        "cpu1" => new CpuBackend(1),
        "cpu2" => new CpuBackend(2),
        "gpu-on-cpu" => GpuOnCpu.Value,
        "gpu-on-cpu-wide-groups" => GpuOnCpuWideGroups.Value,
        _ => throw new ArgumentException(name),
    };
}

/// <summary>
/// Kernel selection without assuming the processor: the geometry must be one the kernel is written for, and the
/// kernel must run exactly where this processor has its vector width. The test then goes on through whichever
/// path ran, so on every ISA it checks that path's arithmetic.
/// </summary>
public static class KernelSelection
{
    /// <param name="runsHere">Whether this processor has a vector width the kernel is written for.</param>
    public static void AssertSelected(string kernel, bool fits, bool applies, bool runsHere)
    {
        Assert.True(fits, $"{kernel} is not written for this geometry: the test no longer covers it.");
        Assert.True(applies == runsHere,
            $"{kernel} {(applies ? "runs" : "does not run")} on {Ml.Cnn.Backends.Cpu.CpuIsa.Describe()}.");
    }
}
